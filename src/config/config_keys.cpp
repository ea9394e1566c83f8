// The table of config keys: setter, writer and comment of each key, and the grid's axes.
#include "config_keys.hpp"

#include <charconv>
#include <climits>
#include <cmath>
#include <limits>
#include <sstream>

namespace underspec::config_detail {

std::string location(const toml::source_region& r) {
  std::ostringstream s;
  s << (r.path ? *r.path : std::string("<config>")) << ':' << r.begin.line << ':' << r.begin.column;
  return s.str();
}

std::string number(double x) {
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";  // keep it a TOML float
  return s;
}

std::string format(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

// ---- Field ----

void Field::fail(const std::string& what) const { throw ConfigError(where() + ": " + key_ + ": " + what); }

std::string Field::where() const { return origin_ ? *origin_ : location(node_.source()); }

std::string Field::type_name() const {
  std::ostringstream s;
  s << node_.type();
  return s.str();
}

std::int64_t Field::integer(std::int64_t lo, std::int64_t hi) const {
  const auto* v = node_.as_integer();
  if (!v) fail("expected an integer, got " + type_name());
  const std::int64_t x = v->get();
  if (x < lo || x > hi)
    fail("must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(x));
  return x;
}

double Field::number() const {
  double x = 0;
  if (const auto* i = node_.as_integer())
    x = static_cast<double>(i->get());
  else if (const auto* f = node_.as_floating_point())
    x = f->get();
  else
    fail("expected a number, got " + type_name());
  if (!std::isfinite(x)) fail("must be finite");
  require_float_range(x);
  return x == 0 ? 0.0 : x;  // -0 is 0: one value, one canonical text (config hash, grid values)
}

// Training runs in float32: a value that becomes 0, subnormal or infinite there passes every
// double check and then silently breaks training (eps 1e-50 -> 0 gives 0/0, lr 1e-300 -> 0
// learns nothing, 1e300 -> inf), so it is refused here, where the key is known.
void Field::require_float_range(double x) const {
  if (x == 0) return;
  const float f = static_cast<float>(x);
  if (std::isnormal(f)) return;
  const char* side = std::isinf(f) ? "above the largest" : "below the smallest";
  fail(format(x) + " is " + side + " float (training runs in float32: a nonzero magnitude must be in [" +
       format(std::numeric_limits<float>::min()) + ", " + format(std::numeric_limits<float>::max()) + "])");
}

double Field::positive() const {
  const double x = number();
  if (!(x > 0)) fail("must be > 0, got " + format(x));
  return x;
}

double Field::non_negative() const {
  const double x = number();
  if (!(x >= 0)) fail("must be >= 0, got " + format(x));
  return x;
}

bool Field::boolean() const {
  const auto* v = node_.as_boolean();
  if (!v) fail("expected a boolean, got " + type_name());
  return v->get();
}

std::string Field::string() const {
  const auto* v = node_.as_string();
  if (!v) fail("expected a string, got " + type_name());
  return v->get();
}

std::vector<Field> Field::elements(std::size_t min, std::size_t max) const {
  const auto* a = node_.as_array();
  if (!a) fail("expected an array, got " + type_name());
  if (a->size() < min || a->size() > max) {
    const std::string n = min == max        ? std::to_string(min)
                          : max == SIZE_MAX ? "at least " + std::to_string(min)
                                            : std::to_string(min) + " to " + std::to_string(max);
    const bool one = min == max ? min == 1 : (max == SIZE_MAX && min == 1);
    fail("expected " + n + (one ? " entry" : " entries") + ", got " + std::to_string(a->size()));
  }
  std::vector<Field> out;
  for (std::size_t i = 0; i < a->size(); ++i) out.push_back(child((*a)[i], key_ + "[" + std::to_string(i) + "]"));
  return out;
}

std::array<double, 2> Field::number_pair() const {
  const auto e = elements(2, 2);
  return {e[0].number(), e[1].number()};
}

namespace {

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

constexpr std::int64_t kMaxSamples = INT32_MAX;
constexpr std::int64_t kMaxSeeds = 1 << 24;  // keeps replica ids and seeds distinct in 32 bits
constexpr std::int64_t kMaxHiddenWidth = 1024;
constexpr std::size_t kMaxStressFactors = 64;

std::vector<double> stress_factors(const Field& f) {
  std::vector<double> out;
  for (const Field& e : f.elements(0, kMaxStressFactors)) {
    const double x = e.positive();
    for (std::size_t j = 0; j < out.size(); ++j)
      if (out[j] == x) e.fail("duplicate " + format(x) + " (same as [" + std::to_string(j) + "])");
    out.push_back(x);
  }
  return out;
}

std::string seeds_of_model(const ExperimentConfig& c, ModelKind m) {
  const int n = c.sweep.seeds_per_model[static_cast<int>(m)];
  return n > 0 ? std::to_string(n) : std::string();
}

// Collects the leaves of a [sweep.grid] table: `"train.lr" = [...]` and the nested
// `train.lr = [...]` (a table `train` holding `lr`) both give the axis `train.lr`.
void flatten(const toml::table& table, const std::string& prefix, const Field& grid,
             std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (auto&& [k, node] : table) {
    const std::string name = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* t = node.as_table()) {
      if (t->empty()) grid.child(node, axis_name(name)).fail("expected an array of values, got an empty table");
      flatten(*t, name, grid, out);
    } else {
      out.emplace_back(name, &node);
    }
  }
}

// The table is the whole grid: it replaces every axis set before (a file's [sweep.grid] when
// given by --set 'sweep.grid={...}'), so `{}` removes them all. One axis alone is set by
// set_grid_axis (`--set 'sweep.grid."train.lr"=[...]'`).
void set_grid(const Field& f, ExperimentConfig& c) {
  const auto* table = f.node().as_table();
  if (!table) f.fail("expected a table of axes (\"<key>\" = [values, ...])");
  std::vector<std::pair<std::string, const toml::node*>> axes;
  flatten(*table, "", f, axes);
  c.sweep.grid.clear();
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const Field values = f.child(*axes[i].second, axis_name(axes[i].first));
    for (std::size_t j = 0; j < i; ++j)
      if (axes[j].first == axes[i].first) values.fail("axis given twice");
    set_grid_axis(c, axes[i].first, values);
  }
}

const KeySpec kKeys[] = {
    {"data.n_train", [](const Field& f, ExperimentConfig& c) { c.data.n_train = f.integer(1, kMaxSamples); },
     [](const ExperimentConfig& c) { return std::to_string(c.data.n_train); }, "training samples per dataset"},
    {"data.n_test", [](const Field& f, ExperimentConfig& c) { c.data.n_test = f.integer(1, kMaxSamples); },
     [](const ExperimentConfig& c) { return std::to_string(c.data.n_test); }, "samples in each test set (IID and OOD)"},
    {"data.coefficients", [](const Field& f, ExperimentConfig& c) { c.data.coefficients = f.number_pair(); },
     [](const ExperimentConfig& c) { return numbers(c.data.coefficients); }, "y = c1*x1 + c2*x2 + intercept + noise"},
    {"data.intercept", [](const Field& f, ExperimentConfig& c) { c.data.intercept = f.number(); },
     [](const ExperimentConfig& c) { return number(c.data.intercept); }, "intercept of y"},
    {"data.noise_std", [](const Field& f, ExperimentConfig& c) { c.data.noise_std = f.non_negative(); },
     [](const ExperimentConfig& c) { return number(c.data.noise_std); }, "standard deviation of the noise on y"},
    {"data.train_factor", [](const Field& f, ExperimentConfig& c) { c.data.train_factor = f.positive(); },
     [](const ExperimentConfig& c) { return number(c.data.train_factor); },
     "x3 = y + N(0,1)/factor on the training domain", kAllModels,
     bit(Regime::baseline) | bit(Regime::augmentation)},  // domain randomization draws its own
    {"data.iid_factor", [](const Field& f, ExperimentConfig& c) { c.data.iid_factor = f.positive(); },
     [](const ExperimentConfig& c) { return number(c.data.iid_factor); }, "factor of the IID test domain"},
    {"data.ood_factor", [](const Field& f, ExperimentConfig& c) { c.data.ood_factor = f.positive(); },
     [](const ExperimentConfig& c) { return number(c.data.ood_factor); }, "factor of the OOD test domain"},
    {"data.seed", [](const Field& f, ExperimentConfig& c) { c.data.seed = f.uint32(); },
     [](const ExperimentConfig& c) { return std::to_string(c.data.seed); }, "keys the training and test data"},
    {"data.per_replica", [](const Field& f, ExperimentConfig& c) { c.data.per_replica = f.boolean(); },
     [](const ExperimentConfig& c) { return std::string(c.data.per_replica ? "true" : "false"); },
     "true: each replica draws its own training set"},
    {"data.stress_factors", [](const Field& f, ExperimentConfig& c) { c.data.stress_factors = stress_factors(f); },
     [](const ExperimentConfig& c) { return numbers(c.data.stress_factors); },
     "extra OOD test domains (factors), scored without retraining"},
    {"train.epochs", [](const Field& f, ExperimentConfig& c) { c.train.epochs = f.positive_int(); },
     [](const ExperimentConfig& c) { return std::to_string(c.train.epochs); }, "passes over the training set"},
    {"train.batch_size", [](const Field& f, ExperimentConfig& c) { c.train.batch_size = f.positive_int(); },
     [](const ExperimentConfig& c) { return std::to_string(c.train.batch_size); },
     "samples per step; the last batch may be smaller"},
    {"train.lr", [](const Field& f, ExperimentConfig& c) { c.train.lr = f.positive(); },
     [](const ExperimentConfig& c) { return number(c.train.lr); }, "Adam learning rate"},
    {"train.betas",
     [](const Field& f, ExperimentConfig& c) {
       const auto e = f.elements(2, 2);
       std::array<double, 2> betas{};
       for (std::size_t i = 0; i < 2; ++i) {
         betas[i] = e[i].number();
         if (!(betas[i] >= 0 && betas[i] < 1)) e[i].fail("must be in [0, 1)");
       }
       c.train.betas = betas;
     },
     [](const ExperimentConfig& c) { return numbers(c.train.betas); }, "Adam moment decay rates, each in [0, 1)"},
    {"train.eps", [](const Field& f, ExperimentConfig& c) { c.train.eps = f.positive(); },
     [](const ExperimentConfig& c) { return number(c.train.eps); }, "Adam epsilon"},
    {"train.step_size", [](const Field& f, ExperimentConfig& c) { c.train.step_size = f.positive_int(); },
     [](const ExperimentConfig& c) { return std::to_string(c.train.step_size); },
     "StepLR: epochs between learning-rate decays"},
    {"train.gamma", [](const Field& f, ExperimentConfig& c) { c.train.gamma = f.positive(); },
     [](const ExperimentConfig& c) { return number(c.train.gamma); }, "StepLR: learning-rate multiplier per decay"},
    {"sweep.seeds", [](const Field& f, ExperimentConfig& c) { c.sweep.seeds = f.positive_int(kMaxSeeds); },
     [](const ExperimentConfig& c) { return std::to_string(c.sweep.seeds); }, "replicas per (model, regime)"},
    {"sweep.models",
     [](const Field& f, ExperimentConfig& c) { c.sweep.models = f.names(parse_model, "perceptron or mlp"); },
     [](const ExperimentConfig& c) { return list(c.sweep.models, [](ModelKind m) { return quoted(to_string(m)); }); },
     "any of: perceptron, mlp"},
    {"sweep.regimes",
     [](const Field& f, ExperimentConfig& c) {
       c.sweep.regimes = f.names(parse_regime, "baseline, domain_randomization or augmentation");
     },
     [](const ExperimentConfig& c) { return list(c.sweep.regimes, [](Regime r) { return quoted(to_string(r)); }); },
     "any of the three, see README.md"},
    {"sweep.seed", [](const Field& f, ExperimentConfig& c) { c.sweep.seed = f.uint32(); },
     [](const ExperimentConfig& c) { return std::to_string(c.sweep.seed); }, "replica seeds are seed, seed + 1, ..."},
    {"sweep.seeds_per_model.perceptron",
     [](const Field& f, ExperimentConfig& c) {
       c.sweep.seeds_per_model[static_cast<int>(ModelKind::perceptron)] = f.positive_int(kMaxSeeds);
     },
     [](const ExperimentConfig& c) { return seeds_of_model(c, ModelKind::perceptron); },
     "replicas per regime of the perceptron (overrides seeds)"},
    {"sweep.seeds_per_model.mlp",
     [](const Field& f, ExperimentConfig& c) {
       c.sweep.seeds_per_model[static_cast<int>(ModelKind::mlp)] = f.positive_int(kMaxSeeds);
     },
     [](const ExperimentConfig& c) { return seeds_of_model(c, ModelKind::mlp); },
     "replicas per regime of the MLP (overrides seeds)"},
    {kGridKey, set_grid, nullptr, "grid axis: one cell per value"},
    {"model.mlp.hidden",
     [](const Field& f, ExperimentConfig& c) {
       std::vector<int> hidden;
       for (const Field& e : f.elements(1, 7)) hidden.push_back(e.positive_int(kMaxHiddenWidth));
       c.mlp.hidden = hidden;
     },
     [](const ExperimentConfig& c) { return list(c.mlp.hidden, [](int n) { return std::to_string(n); }); },
     "hidden layer widths (ReLU)", bit(ModelKind::mlp)},
    {"regime.domain_randomization.factor_range",
     [](const Field& f, ExperimentConfig& c) {
       const auto e = f.elements(2, 2);
       const double lo = e[0].positive(), hi = e[1].positive();
       if (hi < lo) e[1].fail("must be >= the lower end " + format(lo));
       c.domain_randomization.factor_range = {lo, hi};
     },
     [](const ExperimentConfig& c) { return numbers(c.domain_randomization.factor_range); },
     "each training sample draws factor ~ U(lo, hi)", kAllModels, bit(Regime::domain_randomization)},
    {"regime.augmentation.noise_std",
     [](const Field& f, ExperimentConfig& c) { c.augmentation.noise_std = f.non_negative(); },
     [](const ExperimentConfig& c) { return number(c.augmentation.noise_std); },
     "x3 += N(0, noise_std^2) at every step", kAllModels, bit(Regime::augmentation)},
};

constexpr std::string_view kTables[] = {"data",
                                        "train",
                                        "sweep",
                                        "sweep.seeds_per_model",
                                        "model",
                                        "model.mlp",
                                        "regime",
                                        "regime.domain_randomization",
                                        "regime.augmentation"};

// Optimal string alignment distance: edits, counting a swap of neighbours as one (n_trian).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string_view leaf_of(std::string_view key) { return key.substr(key.rfind('.') + 1); }
std::string_view table_of(std::string_view key) {
  const auto dot = key.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : key.substr(0, dot);
}

// The first letters of a name's words: learning_rate -> lr.
std::string initials(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (i == 0 || name[i - 1] == '_') out += name[i];
  return out;
}

// Known keys whose leaf is `unknown`'s but in another table (train.seeds -> sweep.seeds).
std::vector<std::string_view> same_leaf_elsewhere(std::string_view unknown) {
  std::vector<std::string_view> out;
  for (const KeySpec& k : kKeys)
    if (k.name() == leaf_of(unknown) && k.table() != table_of(unknown)) out.push_back(k.key);
  return out;
}

// The known key or table nearest to `unknown`: by edit distance (at most a third of its
// last name, 1 to 3 edits), or one whose name is the initials of unknown's in the same table.
std::string_view nearest_name(std::string_view unknown) {
  const std::size_t limit = std::clamp<std::size_t>(leaf_of(unknown).size() / 3, 1, 3);
  std::string_view best;
  std::size_t best_distance = limit + 1;
  const auto consider = [&](std::string_view known) {
    const std::size_t d = edit_distance(unknown, known);
    if (d < best_distance) best = known, best_distance = d;
  };
  for (const KeySpec& k : kKeys) consider(k.key);
  for (std::string_view t : kTables) consider(t);
  if (!best.empty()) return best;
  for (const KeySpec& k : kKeys)
    if (k.table() == table_of(unknown) && k.name().size() > 1 && k.name() == initials(leaf_of(unknown))) return k.key;
  return {};
}

}  // namespace

std::string did_you_mean(std::string_view unknown) {
  const std::vector<std::string_view> moved = same_leaf_elsewhere(unknown);
  if (!moved.empty()) {
    std::string names, tables;
    for (std::string_view k : moved) {
      names += (names.empty() ? "'" : " or '") + std::string(k) + "'";
      tables += (tables.empty() ? "[" : " or [") + std::string(table_of(k)) + "]";
    }
    return " (did you mean " + names + "? " + std::string(leaf_of(unknown)) + " belongs in " + tables + ")";
  }
  const std::string_view near = nearest_name(unknown);
  return near.empty() ? std::string() : " (did you mean '" + std::string(near) + "'?)";
}

std::span<const KeySpec> keys() { return kKeys; }

const KeySpec* find_key(std::string_view key) {
  for (const KeySpec& k : kKeys)
    if (k.key == key) return &k;
  return nullptr;
}

bool is_table(std::string_view key) {
  return std::find(std::begin(kTables), std::end(kTables), key) != std::end(kTables);
}

std::string axis_name(std::string_view axis) { return std::string(kGridKey) + ".\"" + std::string(axis) + "\""; }

void set_grid_axis(ExperimentConfig& config, const std::string& axis, const Field& values) {
  if (axis == "sweep" || axis.starts_with("sweep."))
    values.fail("keys of [sweep] cannot be grid axes (the grid varies the experiment, not the sweep)");
  const KeySpec* spec = find_key(axis);
  if (!spec && is_table(axis)) {  // did_you_mean would suggest the table's own name
    const auto first = std::find_if(std::begin(kKeys), std::end(kKeys),
                                    [&](const KeySpec& k) { return k.key.starts_with(axis + "."); });
    values.fail("unknown key '" + axis + "': [" + axis + "] is a table; an axis is one of its keys" +
                (first != std::end(kKeys) ? ", e.g. \"" + std::string(first->key) + "\"" : std::string()));
  }
  if (!spec) values.fail("unknown key '" + axis + "'" + did_you_mean(axis));
  if (const auto* a = values.node().as_array(); a && a->empty()) values.fail("empty list: an axis needs a value");
  GridAxis out{axis, {}};
  for (const Field& e : values.elements(1, SIZE_MAX)) {
    ExperimentConfig scratch;  // the key's own setter checks the value, its writer makes it canonical
    spec->set(e, scratch);
    std::string text = spec->write(scratch);
    for (std::size_t j = 0; j < out.values.size(); ++j)
      if (out.values[j] == text) e.fail("duplicate value " + text + " (same as [" + std::to_string(j) + "])");
    out.values.push_back(std::move(text));
  }
  auto& grid = config.sweep.grid;
  std::erase_if(grid, [&](const GridAxis& g) { return g.key == axis; });
  const auto at = std::find_if(grid.begin(), grid.end(), [&](const GridAxis& g) { return g.key > axis; });
  grid.insert(at, std::move(out));
}

}  // namespace underspec::config_detail
