// Writing outputs so that a crash or an error never leaves a half-written file behind: files
// go to a temporary name in the same directory and are renamed into place (whole directories:
// staging_dir.hpp).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string_view>

namespace underspec {

class OutputError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Replaces `path` with `contents` via a temporary file in the same directory + rename.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

// Creates and removes the temporary file write_file_atomic(path, ...) would make, so that a
// command can refuse up front a path it could only fail to write at the end (an access()
// test passes for root where nothing can be created, e.g. /proc). OutputError with the reason.
void probe_file_atomic(const std::filesystem::path& path);

// An output directory that cannot be used: not empty, or being written by another process.
// (The CLI reports it as a usage error, exit 2.)
class OutputDirTaken : public OutputError {
  using OutputError::OutputError;
};

// Gives `path` the mode a plain create would (`mode` less the umask): mkstemp and mkdtemp make
// 0600 and 0700.
void set_default_mode(const std::filesystem::path& path, unsigned mode);

// Throws OutputDirTaken when `dir` exists and is not an empty directory.
void require_free_output_dir(const std::filesystem::path& dir);

// Creates the directory `dir` and its parents; true when this call made it, false when `dir`
// already was a directory (empty or not: the caller decides). With `rename_if_taken`, a taken
// name gets `-2`, `-3`, ... appended instead (into `dir`): mkdir is atomic, so two commands
// started at once never get the same directory. OutputError when it cannot be created.
bool make_output_dir(std::filesystem::path& dir, bool rename_if_taken);

}  // namespace underspec
