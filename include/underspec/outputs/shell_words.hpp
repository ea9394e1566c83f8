// Text a user pastes back into a shell: the commands underspec prints (resume hints, the
// run's command line in summary.json, the Slurm scripts) quote what they quote here.
#pragma once

#include <string>

namespace underspec {

// `text` as one POSIX shell word: unchanged when it holds only safe characters, else in
// single quotes.
std::string shell_quote(const std::string& text);

// A path as a shell word that no command-line parser takes for an option: one starting
// with '-' gets "./" in front.
std::string shell_path(const std::string& path);

// argv as one shell command line, each word quoted as needed.
std::string shell_command(int argc, const char* const* argv);

}  // namespace underspec
