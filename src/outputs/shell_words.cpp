// Shell quoting (see shell_words.hpp).
#include "underspec/outputs/shell_words.hpp"

namespace underspec {

std::string shell_quote(const std::string& text) {
  constexpr const char* kSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./+:=@%,";
  if (!text.empty() && text.find_first_not_of(kSafe) == std::string::npos) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string shell_path(const std::string& path) {
  return shell_quote(!path.empty() && path.front() == '-' ? "./" + path : path);
}

std::string shell_command(int argc, const char* const* argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += shell_quote(argv[i]);
  }
  return s;
}

}  // namespace underspec
