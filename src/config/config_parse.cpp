// Strict TOML -> ExperimentConfig. Each known key has one setter that checks type and range;
// anything not in the key list is an error, so a typo never silently runs the defaults.
#include <toml++/toml.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "underspec/config/config_io.hpp"

namespace underspec {
namespace {

std::string location(const toml::source_region& r) {
  std::ostringstream s;
  s << (r.path ? *r.path : std::string("<config>")) << ':' << r.begin.line << ':' << r.begin.column;
  return s.str();
}

std::string format(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

// A value being read: the node, its dotted key and where it came from (for messages).
class Field {
 public:
  Field(const toml::node& node, std::string key, const std::string* set_arg)
      : node_(node), key_(std::move(key)), set_arg_(set_arg) {}

  [[noreturn]] void fail(const std::string& what) const { throw ConfigError(where() + ": " + key_ + ": " + what); }

  std::int64_t integer(std::int64_t lo, std::int64_t hi) const {
    const auto* v = node_.as_integer();
    if (!v) fail("expected an integer, got " + type_name());
    const std::int64_t x = v->get();
    if (x < lo || x > hi)
      fail("must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(x));
    return x;
  }
  int positive_int(std::int64_t hi = INT_MAX) const { return static_cast<int>(integer(1, hi)); }
  std::uint32_t uint32() const { return static_cast<std::uint32_t>(integer(0, UINT32_MAX)); }

  // Integers are accepted where a float is expected (`lr = 1` means 1.0).
  double number() const {
    double x = 0;
    if (const auto* i = node_.as_integer())
      x = static_cast<double>(i->get());
    else if (const auto* f = node_.as_floating_point())
      x = f->get();
    else
      fail("expected a number, got " + type_name());
    if (!std::isfinite(x)) fail("must be finite");
    return x;
  }
  double positive() const {
    const double x = number();
    if (!(x > 0)) fail("must be > 0, got " + format(x));
    return x;
  }
  double non_negative() const {
    const double x = number();
    if (!(x >= 0)) fail("must be >= 0, got " + format(x));
    return x;
  }

  bool boolean() const {
    const auto* v = node_.as_boolean();
    if (!v) fail("expected a boolean, got " + type_name());
    return v->get();
  }

  std::string string() const {
    const auto* v = node_.as_string();
    if (!v) fail("expected a string, got " + type_name());
    return v->get();
  }

  // The elements of an array of min..max entries, each a Field keyed `key[i]`.
  std::vector<Field> elements(std::size_t min, std::size_t max) const {
    const auto* a = node_.as_array();
    if (!a) fail("expected an array, got " + type_name());
    if (a->size() < min || a->size() > max) {
      const std::string n = min == max        ? std::to_string(min)
                            : max == SIZE_MAX ? "at least " + std::to_string(min)
                                              : std::to_string(min) + " to " + std::to_string(max);
      fail("expected " + n + " entries, got " + std::to_string(a->size()));
    }
    std::vector<Field> out;
    for (std::size_t i = 0; i < a->size(); ++i)
      out.emplace_back((*a)[i], key_ + "[" + std::to_string(i) + "]", set_arg_);
    return out;
  }
  std::array<double, 2> number_pair() const {
    const auto e = elements(2, 2);
    return {e[0].number(), e[1].number()};
  }

  // A list of distinct names, each turned into an enum by `parse`.
  template <class T>
  std::vector<T> names(bool (*parse)(const std::string&, T&), const char* expected) const {
    std::vector<T> out;
    for (const Field& e : elements(1, SIZE_MAX)) {
      const std::string name = e.string();
      T value;
      if (!parse(name, value)) e.fail("unknown name '" + name + "' (expected " + expected + ")");
      if (std::find(out.begin(), out.end(), value) != out.end()) e.fail("duplicate '" + name + "'");
      out.push_back(value);
    }
    return out;
  }

 private:
  std::string where() const { return set_arg_ ? "--set " + *set_arg_ : location(node_.source()); }
  std::string type_name() const {
    std::ostringstream s;
    s << node_.type();
    return s.str();
  }

  const toml::node& node_;
  std::string key_;
  const std::string* set_arg_;  // the whole `--set` argument, or null for a file
};

using Setter = void (*)(const Field&, ExperimentConfig&);
struct KeySpec {
  std::string_view key;
  Setter set;
};

constexpr std::int64_t kMaxSamples = INT32_MAX;
constexpr std::int64_t kMaxSeeds = 1 << 24;  // keeps replica ids and seeds distinct in 32 bits
constexpr std::int64_t kMaxHiddenWidth = 1024;

const KeySpec kKeys[] = {
    {"data.n_train", [](const Field& f, ExperimentConfig& c) { c.data.n_train = f.integer(1, kMaxSamples); }},
    {"data.n_test", [](const Field& f, ExperimentConfig& c) { c.data.n_test = f.integer(1, kMaxSamples); }},
    {"data.coefficients", [](const Field& f, ExperimentConfig& c) { c.data.coefficients = f.number_pair(); }},
    {"data.intercept", [](const Field& f, ExperimentConfig& c) { c.data.intercept = f.number(); }},
    {"data.noise_std", [](const Field& f, ExperimentConfig& c) { c.data.noise_std = f.non_negative(); }},
    {"data.train_factor", [](const Field& f, ExperimentConfig& c) { c.data.train_factor = f.positive(); }},
    {"data.iid_factor", [](const Field& f, ExperimentConfig& c) { c.data.iid_factor = f.positive(); }},
    {"data.ood_factor", [](const Field& f, ExperimentConfig& c) { c.data.ood_factor = f.positive(); }},
    {"data.seed", [](const Field& f, ExperimentConfig& c) { c.data.seed = f.uint32(); }},
    {"data.per_replica", [](const Field& f, ExperimentConfig& c) { c.data.per_replica = f.boolean(); }},
    {"train.epochs", [](const Field& f, ExperimentConfig& c) { c.train.epochs = f.positive_int(); }},
    {"train.batch_size", [](const Field& f, ExperimentConfig& c) { c.train.batch_size = f.positive_int(); }},
    {"train.lr", [](const Field& f, ExperimentConfig& c) { c.train.lr = f.positive(); }},
    {"train.betas",
     [](const Field& f, ExperimentConfig& c) {
       const auto e = f.elements(2, 2);
       for (std::size_t i = 0; i < 2; ++i) {
         const double b = e[i].number();
         if (!(b >= 0 && b < 1)) e[i].fail("must be in [0, 1)");
         c.train.betas[i] = b;
       }
     }},
    {"train.eps", [](const Field& f, ExperimentConfig& c) { c.train.eps = f.positive(); }},
    {"train.step_size", [](const Field& f, ExperimentConfig& c) { c.train.step_size = f.positive_int(); }},
    {"train.gamma", [](const Field& f, ExperimentConfig& c) { c.train.gamma = f.positive(); }},
    {"sweep.seeds", [](const Field& f, ExperimentConfig& c) { c.sweep.seeds = f.positive_int(kMaxSeeds); }},
    {"sweep.models",
     [](const Field& f, ExperimentConfig& c) { c.sweep.models = f.names(parse_model, "perceptron or mlp"); }},
    {"sweep.regimes",
     [](const Field& f, ExperimentConfig& c) {
       c.sweep.regimes = f.names(parse_regime, "baseline, domain_randomization or augmentation");
     }},
    {"sweep.seed", [](const Field& f, ExperimentConfig& c) { c.sweep.seed = f.uint32(); }},
    {"model.mlp.hidden",
     [](const Field& f, ExperimentConfig& c) {
       std::vector<int> hidden;
       for (const Field& e : f.elements(1, 7)) hidden.push_back(e.positive_int(kMaxHiddenWidth));
       c.mlp.hidden = hidden;
     }},
    {"regime.domain_randomization.factor_range",
     [](const Field& f, ExperimentConfig& c) {
       const auto e = f.elements(2, 2);
       const double lo = e[0].positive(), hi = e[1].positive();
       if (hi < lo) e[1].fail("must be >= the lower end " + format(lo));
       c.domain_randomization.factor_range = {lo, hi};
     }},
    {"regime.augmentation.noise_std",
     [](const Field& f, ExperimentConfig& c) { c.augmentation.noise_std = f.non_negative(); }},
};

constexpr std::string_view kTables[] = {
    "data", "train", "sweep", "model", "model.mlp", "regime", "regime.domain_randomization", "regime.augmentation"};

const KeySpec* find_key(std::string_view key) {
  for (const KeySpec& k : kKeys)
    if (k.key == key) return &k;
  return nullptr;
}
bool is_table(std::string_view key) {
  return std::find(std::begin(kTables), std::end(kTables), key) != std::end(kTables);
}

// Walks a table, applying known keys and rejecting everything else.
void apply_table(const toml::table& table, const std::string& prefix, ExperimentConfig& config) {
  for (auto&& [k, node] : table) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    const bool dotted_name = k.str().find('.') != std::string_view::npos;  // `"data.seed" = 1` is not data.seed
    if (const KeySpec* spec = dotted_name ? nullptr : find_key(key)) {
      spec->set(Field(node, key, nullptr), config);
    } else if (!dotted_name && is_table(key)) {
      if (!node.is_table()) Field(node, key, nullptr).fail("expected a table");
      apply_table(*node.as_table(), key, config);
    } else {
      throw ConfigError(location(k.source()) + ": unknown " + (node.is_table() ? "table" : "key") + " '" + key + "'");
    }
  }
}

toml::table parse_toml(std::string_view text, std::string_view source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(location(e.source()) + ": TOML syntax error: " + std::string(e.description()));
  }
}

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

[[noreturn]] void override_error(const std::string& arg, const std::string& what) {
  throw ConfigError("--set " + arg + ": " + what);
}

}  // namespace

ExperimentConfig parse_config(std::string_view text, std::string_view source) {
  ExperimentConfig config;
  apply_table(parse_toml(text, source), "", config);
  return config;
}

ExperimentConfig load_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!in) throw ConfigError(path.string() + ": cannot open the config file");
  text << in.rdbuf();  // sets failbit on an empty file, which is a valid (all-defaults) config
  return parse_config(text.str(), path.string());
}

void apply_override(ExperimentConfig& config, std::string_view assignment) {
  const std::string arg(assignment);
  const auto eq = assignment.find('=');
  if (eq == std::string_view::npos) override_error(arg, "expected key=value");
  const std::string key(trim(assignment.substr(0, eq)));
  const std::string_view value = trim(assignment.substr(eq + 1));
  const KeySpec* spec = find_key(key);
  if (!spec) override_error(arg, "unknown key '" + key + "'");
  if (value.empty()) override_error(arg, key + ": missing value");
  toml::table parsed;
  try {
    const std::string doc = "v = " + std::string(value) + "\n";
    parsed = toml::parse(std::string_view(doc), std::string_view("--set"));
  } catch (const toml::parse_error& e) {
    override_error(arg, key + ": not a TOML value (" + std::string(e.description()) + ")");
  }
  if (parsed.size() != 1 || !parsed.contains("v")) override_error(arg, key + ": expected a single TOML value");
  spec->set(Field(*parsed.get("v"), key, &arg), config);
}

ExperimentConfig resolve_config(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  ExperimentConfig config = path.empty() ? ExperimentConfig{} : load_config(path);
  for (const std::string& o : overrides) apply_override(config, o);
  return config;
}

}  // namespace underspec
