// Internal to src/config: the one table of config keys. Each key has, in one place, its
// setter (type and range checks), its writer (the value as canonical TOML text, exactly
// what config.toml holds) and its comment in config.toml. Parsing, --set, config_to_toml,
// differing_keys and the grid all go through this table.
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "underspec/config/config_io.hpp"

namespace underspec::config_detail {

// `file:line:col` of a TOML node or key.
std::string location(const toml::source_region& r);
// A double in the shortest form that parses back to it, kept a TOML float (`3.0`, `0.001`).
std::string number(double x);
// A double for messages (`%g`-like).
std::string format(double x);

// A value being read: the node, its dotted key (for messages) and where it came from:
// its file:line:col, or `origin` (such as `--set ARG`) when that is given.
class Field {
 public:
  Field(const toml::node& node, std::string key, const std::string* origin)
      : node_(node), key_(std::move(key)), origin_(origin) {}

  const toml::node& node() const { return node_; }
  const std::string& key() const { return key_; }
  const std::string* origin() const { return origin_; }
  // The same origin, for another node and key (an element, a grid value).
  Field child(const toml::node& node, std::string key) const { return Field(node, std::move(key), origin_); }

  [[noreturn]] void fail(const std::string& what) const;

  std::int64_t integer(std::int64_t lo, std::int64_t hi) const;
  int positive_int(std::int64_t hi = INT32_MAX) const { return static_cast<int>(integer(1, hi)); }
  std::uint32_t uint32() const { return static_cast<std::uint32_t>(integer(0, UINT32_MAX)); }
  // Integers are accepted where a float is expected (`lr = 1` means 1.0); always finite.
  double number() const;
  double positive() const;
  double non_negative() const;
  bool boolean() const;
  std::string string() const;
  // The elements of an array of min..max entries, each a Field keyed `key[i]`.
  std::vector<Field> elements(std::size_t min, std::size_t max) const;
  std::array<double, 2> number_pair() const;
  // A list of distinct names, each turned into an enum by `parse`.
  template <class T>
  std::vector<T> names(bool (*parse)(const std::string&, T&), const char* expected) const;

 private:
  std::string where() const;
  void require_float_range(double x) const;
  std::string type_name() const;

  const toml::node& node_;
  std::string key_;
  const std::string* origin_;  // e.g. the whole `--set` argument prefixed by `--set `; null for a file
};

template <class T>
std::vector<T> Field::names(bool (*parse)(const std::string&, T&), const char* expected) const {
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

using Setter = void (*)(const Field&, ExperimentConfig&);
// The key's current value as canonical TOML text; "" when the key is not set (then it is
// not written at all: only sweep.seeds_per_model.* can be unset).
using Writer = std::string (*)(const ExperimentConfig&);

// Bit masks of the models (bit = ModelKind) and regimes (bit = Regime) a key's value changes.
inline constexpr unsigned kAllModels = 0b11, kAllRegimes = 0b111;
constexpr unsigned bit(ModelKind m) { return 1u << static_cast<unsigned>(m); }
constexpr unsigned bit(Regime r) { return 1u << static_cast<unsigned>(r); }

struct KeySpec {
  std::string_view key;  // dotted: table, then name (`model.mlp.hidden`)
  Setter set;
  Writer write;  // null for kGridKey, whose lines are the axes
  std::string_view comment;
  // What the value changes: a grid axis over it retrains identical replicas of the others.
  unsigned models = kAllModels, regimes = kAllRegimes;

  bool affects(ModelKind m, Regime r) const { return (models & bit(m)) && (regimes & bit(r)); }

  std::string_view table() const { return key.substr(0, key.rfind('.')); }
  std::string_view name() const { return key.substr(key.rfind('.') + 1); }
};

// The grid: a table of axes, not a value. Its setter takes the table and replaces the whole
// grid with it (`{}` clears it); set_grid_axis sets one axis.
inline constexpr std::string_view kGridKey = "sweep.grid";

// Every key, in the order config.toml writes them (grouped by TOML table).
std::span<const KeySpec> keys();
const KeySpec* find_key(std::string_view key);
// Tables that only hold keys (`data`, `model`, `sweep.seeds_per_model`, ...).
bool is_table(std::string_view key);
// For a message about the unknown key or table `unknown`: " (did you mean 'KEY'?)" naming
// the nearest known one, or the right table for a known name in the wrong one; "" if none.
std::string did_you_mean(std::string_view unknown);

// Sets the grid axis `axis` (a key outside [sweep], e.g. `train.lr`) to the array `values`:
// every value is checked by the key's own setter and stored as its canonical text. Replaces
// an axis of the same key; axes stay sorted by key. `field` supplies the origin.
void set_grid_axis(ExperimentConfig& config, const std::string& axis, const Field& values);
// `sweep.grid."train.lr"`: how messages and differing_keys name an axis.
std::string axis_name(std::string_view axis);

}  // namespace underspec::config_detail
