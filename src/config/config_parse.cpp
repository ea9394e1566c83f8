// Strict TOML -> ExperimentConfig, through the setters of config_keys.cpp; anything not in
// the key table is an error, so a typo never silently runs the defaults.
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "config_keys.hpp"

namespace underspec {
namespace {

using namespace config_detail;

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
      throw ConfigError(
          location(k.source()) + ": unknown " + (node.is_table() ? "table" : "key") + " '" + key + "'" +
          (dotted_name ? " (a quoted name with a dot is one name; write the key unquoted)" : did_you_mean(key)));
    }
  }
}

// Text toml++ (3.3) asserts on instead of reporting, kept out of its reach (found by
// tests/fuzz; in a release build the assertion is an assumption, i.e. undefined behaviour):
// control characters (TOML allows none but tab and line ends), non-ASCII text outside
// comments (toml++'s is_non_ascii_horizontal_whitespace reaches an unreachable point for
// U+00A1..U+0499, e.g. U+0497 in a key or U+0393 after a malformed value; every string a
// config holds is ASCII anyway), and a table header whose
// '[' or '[[' is followed by something that cannot start a key (`[` then a line end), and a
// '}' that closes no inline table (`x = [0.2, }`: toml++ asserts in parse_value).
// Returns "" or what is wrong, with `line:col: `.
std::string unparsable_by_tomlpp(std::string_view text) {
  std::size_t line = 1, column = 1;
  const auto at = [&](const std::string& what) {
    return std::to_string(line) + ":" + std::to_string(column) + ": TOML syntax error: " + what;
  };
  const auto key_start = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '"' || c == '\'' || c == ']';
  };
  int depth = 0;           // open '[' of array values
  int braces = 0;          // open '{' of inline tables
  bool line_start = true;  // only horizontal space so far on this line
  std::string_view quote;  // the open string's delimiter
  bool comment = false, header = false;
  for (std::size_t i = 0; i < text.size(); ++i, ++column) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7F) {
      char code[8];
      std::snprintf(code, sizeof code, "%04X", static_cast<unsigned>(u));
      return at(std::string("control character U+") + code + " is not allowed");
    }
    if (c == '\n') {
      comment = header = false;
      if (quote.size() == 1) quote = {};  // a one-line string does not go on (toml++ reports it)
      line_start = true;
      ++line;
      column = 0;
      continue;
    }
    if (comment) continue;
    if (!quote.empty()) {
      if (u >= 0x80) return at("non-ASCII character (a config's strings are ASCII)");
      if (quote[0] == '"' && c == '\\') {
        ++i, ++column;
        if (i < text.size() && text[i] == '\n') --i, --column;  // a line-ending backslash
        continue;
      }
      if (text.substr(i, quote.size()) == quote) {
        i += quote.size() - 1;
        column += quote.size() - 1;
        quote = {};
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') continue;
    if (u >= 0x80) return at("non-ASCII character outside a string or comment");
    const bool first = line_start;
    line_start = false;
    if (c == '#') {
      comment = true;
    } else if (c == '"' || c == '\'') {
      const std::string_view three = c == '"' ? "\"\"\"" : "\'\'\'";
      quote = text.substr(i, 3) == three ? three : three.substr(0, 1);
      i += quote.size() - 1;
      column += quote.size() - 1;
    } else if (c == '[' && first && depth == 0) {  // a table header
      std::size_t j = i + 1;
      if (j < text.size() && text[j] == '[') ++j;
      while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
      if (j < text.size() && !key_start(text[j])) {
        column += j - i;
        return at("expected a key in the table header");
      }
      header = true;  // its brackets are not arrays
    } else if (c == '[' && !header) {
      ++depth;
    } else if (c == ']' && depth > 0 && !header) {
      --depth;
    } else if (c == '{') {
      ++braces;
    } else if (c == '}') {
      if (braces == 0) return at("'}' closes no inline table");
      --braces;
    }
  }
  return {};
}

toml::table parse_toml(std::string_view text, std::string_view source) {
  if (const std::string problem = unparsable_by_tomlpp(text); !problem.empty())
    throw ConfigError(std::string(source) + ":" + problem);
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

// The first '=' outside a quoted key segment (`sweep.grid."a=b"=[1]`), or npos.
std::size_t find_assignment(std::string_view s) {
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (quote) {
      if (s[i] == quote) quote = 0;
    } else if (s[i] == '"' || s[i] == '\'') {
      quote = s[i];
    } else if (s[i] == '=') {
      return i;
    }
  }
  return std::string_view::npos;
}

// `sweep.grid."train.lr"`, `sweep.grid.'train.lr'` or `sweep.grid.train.lr` -> `train.lr`.
bool grid_axis_of(std::string_view key, std::string& axis) {
  const std::string prefix = std::string(kGridKey) + ".";
  if (!key.starts_with(prefix)) return false;
  std::string_view rest = key.substr(prefix.size());
  if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
    if (rest.size() < 3 || rest.back() != rest.front()) return false;
    rest = rest.substr(1, rest.size() - 2);
    if (rest.find_first_of("\"'\\") != std::string_view::npos) return false;
  }
  if (rest.empty()) return false;
  axis = rest;
  return true;
}

// Applies a parsed value to `key` (as --set spells keys). A table key takes an inline table
// (`data={n_train=10, seed=3}`), applied entry by entry as if each were its own --set.
void apply_node(ExperimentConfig& config, const std::string& key, const toml::node& node, const std::string& origin) {
  const auto fail = [&](const std::string& what) { throw ConfigError(origin + ": " + what); };
  std::string axis;
  if (grid_axis_of(key, axis)) return set_grid_axis(config, axis, Field(node, axis_name(axis), &origin));
  if (const KeySpec* spec = find_key(key)) return spec->set(Field(node, key, &origin), config);
  if (!is_table(key)) fail("unknown key '" + key + "'" + did_you_mean(key));
  const toml::table* table = node.as_table();
  if (!table)
    fail(key + ": is a table; set one of its keys (--set " + key + ".KEY=VALUE) or give an inline table (--set '" +
         key + "={KEY = VALUE, ...}')");
  for (auto&& [k, child] : *table) {
    const std::string name(k.str());
    if (name.find('.') != std::string::npos) fail("unknown key '" + key + ".\"" + name + "\"'");
    apply_node(config, key + "." + name, child, origin);
  }
}

// Applies `value` (TOML value text) to `key`; errors start with `origin`.
void apply_text(ExperimentConfig& config, const std::string& key, std::string_view value, const std::string& origin) {
  const auto fail = [&](const std::string& what) { throw ConfigError(origin + ": " + what); };
  std::string axis;
  if (!grid_axis_of(key, axis) && !find_key(key) && !is_table(key))
    fail("unknown key '" + key + "'" + did_you_mean(key));
  if (value.empty()) fail(key + ": missing value");
  // Checked as the document toml++ parses: the value alone would start a line, where
  // `[ [32], [64] ]` or `[+1e-3]` reads as a malformed table header.
  const std::string doc = "v = " + std::string(value) + "\n";
  if (const std::string problem = unparsable_by_tomlpp(doc); !problem.empty())
    fail(key + ": not a TOML value (" + problem.substr(problem.find("error: ") + 7) + ")");
  toml::table parsed;
  try {
    parsed = toml::parse(std::string_view(doc), std::string_view("--set"));
  } catch (const toml::parse_error& e) {
    fail(key + ": not a TOML value (" + std::string(e.description()) + ")");
  }
  if (parsed.size() != 1 || !parsed.contains("v")) fail(key + ": expected a single TOML value");
  apply_node(config, key, *parsed.get("v"), origin);
}

}  // namespace

ExperimentConfig parse_config(std::string_view text, std::string_view source) {
  constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";  // written by many Windows editors; TOML allows none
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
  ExperimentConfig config;
  apply_table(parse_toml(text, source), "", config);
  return config;
}

ExperimentConfig load_config(const std::filesystem::path& path) {
  if (path == "-") {  // the config on standard input
    struct stat st {};
    if (::fstat(STDIN_FILENO, &st) != 0)  // closed (`<&-`): not an empty, all-defaults config
      throw ConfigError(std::string("-: cannot read the config from standard input: ") + std::strerror(errno));
    std::ostringstream text;
    text << std::cin.rdbuf();  // sets failbit on empty input, which is a valid (all-defaults) config
    if (std::cin.bad()) throw ConfigError("-: cannot read the config from standard input");
    return parse_config(text.str(), "<stdin>");
  }
  // Refuse what is not a readable regular file before opening it: a directory would read as
  // an empty (all-defaults) config and a FIFO would block.
  const std::string where = path.string() + ": ";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) throw ConfigError(where + "no such config file");
    if (err == ELOOP) throw ConfigError(where + "cannot read the config file: too many levels of symbolic links");
    throw ConfigError(where + "cannot read the config file: " + std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) throw ConfigError(where + "is a directory, not a config file");
  if (!S_ISREG(st.st_mode))
    throw ConfigError(
        where + "is not a regular file (" +
        (S_ISFIFO(st.st_mode) ? "a FIFO; use `-` to read the config from standard input" : "a device or socket") + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(where + "cannot open the config file: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();  // sets failbit on an empty file, which is a valid (all-defaults) config
  if (in.bad()) throw ConfigError(where + "cannot read the config file");
  return parse_config(text.str(), path.string());
}

void apply_override(ExperimentConfig& config, std::string_view assignment) {
  const std::string origin = "--set " + std::string(assignment);
  const auto eq = find_assignment(assignment);
  if (eq == std::string_view::npos) throw ConfigError(origin + ": expected key=value");
  apply_text(config, std::string(trim(assignment.substr(0, eq))), trim(assignment.substr(eq + 1)), origin);
}

void apply_value(ExperimentConfig& config, std::string_view key, std::string_view toml_value) {
  const std::string k(trim(key));
  apply_text(config, k, trim(toml_value), k + " = " + std::string(toml_value));
}

ExperimentConfig resolve_config(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  ExperimentConfig config = path.empty() ? ExperimentConfig{} : load_config(path);
  for (const std::string& o : overrides) apply_override(config, o);
  // Where a key was last set, for a message about keys together: the last --set that names it
  // (or a table above it), else its place in the file (read again: this is the error path).
  const auto where = [&](const std::string& key) -> std::string {
    for (auto o = overrides.rbegin(); o != overrides.rend(); ++o) {
      const auto eq = find_assignment(*o);
      const std::string k(trim(std::string_view(*o).substr(0, eq)));
      if (eq != std::string_view::npos && (k == key || key.starts_with(k + "."))) return "--set " + *o;
    }
    if (path.empty() || path == "-") return "";
    try {
      const toml::table file = toml::parse_file(path.string());
      for (std::string k = key; !k.empty();
           k = k.substr(0, k.find_last_of('.') == std::string::npos ? 0 : k.find_last_of('.')))
        if (const toml::node* node = file.at_path(k).node()) return location(node->source());
    } catch (const std::exception&) {
    }
    return "";
  };
  validate_config(config, where);
  return config;
}

}  // namespace underspec
