// Writing outputs so that a crash or an error never leaves a half-written file or
// directory behind: files go to a temporary name in the same directory and are renamed
// into place; a run's directory is filled under a sibling temporary name and renamed last.
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

// Throws OutputError when `dir` exists and is not an empty directory.
void require_free_output_dir(const std::filesystem::path& dir);

// A sibling `<dir>.tmp-XXXXXX` that becomes `dir` on commit() and is removed otherwise.
class StagingDir {
 public:
  explicit StagingDir(std::filesystem::path dir);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return staging_; }
  void commit();

 private:
  std::filesystem::path target_, staging_;
  bool committed_ = false;
};

}  // namespace underspec
