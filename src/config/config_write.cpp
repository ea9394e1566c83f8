// ExperimentConfig -> TOML (config.toml of every run, examples/seed.toml) and JSON.
// Floats are written in the shortest form that parses back to the same double, so a
// resolved config repeats its run exactly.
#include <toml++/toml.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <sstream>

#include "underspec/config/config_io.hpp"

namespace underspec {
namespace {

std::string number(double x) {
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";  // keep it a TOML float
  return s;
}

template <class T, class F>
std::string list(const T& items, F&& format) {
  std::string s = "[";
  for (const auto& item : items) s += (s.size() > 1 ? ", " : "") + format(item);
  return s + "]";
}
std::string numbers(const auto& xs) {
  return list(xs, [](double x) { return number(x); });
}
std::string quoted(const char* name) { return std::string("\"") + name + "\""; }

// `key = value` padded so the comments line up.
class TomlWriter {
 public:
  void comment(const char* text) { out_ << "# " << text << '\n'; }
  void table(const char* name) { out_ << (out_.tellp() > 0 ? "\n[" : "[") << name << "]\n"; }
  void key(const char* name, const std::string& value, const char* comment) {
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
  w.table("data");
  w.key("n_train", std::to_string(c.data.n_train), "training samples per dataset");
  w.key("n_test", std::to_string(c.data.n_test), "samples in each test set (IID and OOD)");
  w.key("coefficients", numbers(c.data.coefficients), "y = c1*x1 + c2*x2 + intercept + noise");
  w.key("intercept", number(c.data.intercept), "intercept of y");
  w.key("noise_std", number(c.data.noise_std), "standard deviation of the noise on y");
  w.key("train_factor", number(c.data.train_factor), "x3 = y + N(0,1)/factor on the training domain");
  w.key("iid_factor", number(c.data.iid_factor), "factor of the IID test domain");
  w.key("ood_factor", number(c.data.ood_factor), "factor of the OOD test domain");
  w.key("seed", std::to_string(c.data.seed), "keys the training and test data");
  w.key("per_replica", c.data.per_replica ? "true" : "false", "true: each replica draws its own training set");

  w.table("train");
  w.key("epochs", std::to_string(c.train.epochs), "passes over the training set");
  w.key("batch_size", std::to_string(c.train.batch_size), "samples per step; the last batch may be smaller");
  w.key("lr", number(c.train.lr), "Adam learning rate");
  w.key("betas", numbers(c.train.betas), "Adam moment decay rates, each in [0, 1)");
  w.key("eps", number(c.train.eps), "Adam epsilon");
  w.key("step_size", std::to_string(c.train.step_size), "StepLR: epochs between learning-rate decays");
  w.key("gamma", number(c.train.gamma), "StepLR: learning-rate multiplier per decay");

  w.table("sweep");
  w.key("seeds", std::to_string(c.sweep.seeds), "replicas per (model, regime)");
  w.key("models", list(c.sweep.models, [](ModelKind m) { return quoted(to_string(m)); }), "any of: perceptron, mlp");
  w.key("regimes", list(c.sweep.regimes, [](Regime r) { return quoted(to_string(r)); }),
        "any of the three, see README.md");
  w.key("seed", std::to_string(c.sweep.seed), "replica seeds are seed, seed + 1, ...");

  w.table("model.mlp");
  w.key("hidden", list(c.mlp.hidden, [](int n) { return std::to_string(n); }), "hidden layer widths (ReLU)");

  w.table("regime.domain_randomization");
  w.key("factor_range", numbers(c.domain_randomization.factor_range), "each training sample draws factor ~ U(lo, hi)");

  w.table("regime.augmentation");
  w.key("noise_std", number(c.augmentation.noise_std), "x3 += N(0, noise_std^2) at every step");
  return w.str();
}

nlohmann::json config_to_json(const ExperimentConfig& config) { return to_json(toml::parse(config_to_toml(config))); }

}  // namespace underspec
