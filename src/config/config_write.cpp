// ExperimentConfig -> TOML (config.toml of every run, examples/seed.toml) and JSON.
// Floats are written in the shortest form that parses back to the same double, so a
// resolved config repeats its run exactly. The keys, their values' text and their comments
// come from the key table (config_keys.cpp).
#include <toml++/toml.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "config_keys.hpp"

namespace underspec {
namespace {

using namespace config_detail;

// `key = value` padded so the comments line up.
class TomlWriter {
 public:
  void comment(std::string_view text) { out_ << "# " << text << '\n'; }
  void table(std::string_view name) { out_ << (out_.tellp() > 0 ? "\n[" : "[") << name << "]\n"; }
  void key(std::string_view name, const std::string& value, std::string_view comment) {
    std::string line = std::string(name) + " = " + value;
    line.resize(std::max<std::size_t>(line.size() + 1, 40), ' ');
    out_ << line << "# " << comment << '\n';
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

nlohmann::json to_json(const toml::node& node) {
  if (const auto* t = node.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (auto&& [k, v] : *t) j[std::string(k.str())] = to_json(v);
    return j;
  }
  if (const auto* a = node.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const toml::node& v : *a) j.push_back(to_json(v));
    return j;
  }
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* f = node.as_floating_point()) return f->get();
  if (const auto* b = node.as_boolean()) return b->get();
  if (const auto* s = node.as_string()) return s->get();
  return nullptr;  // the writer emits no other types
}

}  // namespace

std::string config_to_toml(const ExperimentConfig& c) {
  TomlWriter w;
  w.comment("underspec experiment: every key, resolved. `underspec run THIS_FILE` repeats the run.");
  w.comment("Keys and their meaning: README.md, section Configuration.");
  std::string_view table;  // the table of the last line written
  const auto line = [&](std::string_view t, std::string_view name, const std::string& value, std::string_view comment) {
    if (t != table) w.table(table = t);
    w.key(name, value, comment);
  };
  for (const KeySpec& k : keys()) {
    if (k.key == kGridKey) {
      for (const GridAxis& axis : c.sweep.grid) {
        std::string values = "[";
        for (const std::string& v : axis.values) values += (values.size() > 1 ? ", " : "") + v;
        line(kGridKey, "\"" + axis.key + "\"", values + "]", k.comment);
      }
    } else if (const std::string value = k.write(c); !value.empty()) {
      line(k.table(), k.name(), value, k.comment);
    }
  }
  return w.str();
}

nlohmann::json config_to_json(const ExperimentConfig& config) { return to_json(toml::parse(config_to_toml(config))); }

}  // namespace underspec
