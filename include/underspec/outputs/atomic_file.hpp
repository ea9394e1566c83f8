// Writing outputs so that a crash or an error never leaves a half-written file or
// directory behind: files go to a temporary name in the same directory and are renamed
// into place; a directory that cannot be resumed is filled in a hidden sibling and renamed last.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
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

// Throws OutputDirTaken when `dir` exists and is not an empty directory.
void require_free_output_dir(const std::filesystem::path& dir);

// Creates the directory `dir` and its parents; true when this call made it, false when `dir`
// already was a directory (empty or not: the caller decides). With `rename_if_taken`, a taken
// name gets `-2`, `-3`, ... appended instead (into `dir`): mkdir is atomic, so two commands
// started at once never get the same directory. OutputError when it cannot be created.
bool make_output_dir(std::filesystem::path& dir, bool rename_if_taken);

// Fills a directory all at once, for commands that cannot resume (merge, score): everything is
// written in a hidden staging directory and moved onto the target only when complete, so an
// error, a signal or a kill never leaves a half-written target, and running the same command
// again just works.
//
// A target this call creates is staged beside it (`.NAME.underspec-partial-XXXXXX`) and
// commit() renames the whole directory onto it. An existing (empty) target is staged inside
// (`NAME/.underspec-partial-XXXXXX`) and commit() moves the entries out of it one by one
// (rename(2) within one directory; `last`, e.g. the file that marks the outputs finished, last
// of all): rename(2) cannot replace a mount point, the current directory (`--out .`) or, in a
// sticky directory such as /tmp, a directory of another user, and this way the target keeps
// its owner, mode and mount.
//
// The constructor reserves the target up front (make_output_dir; an existing one must be empty,
// a trailing slash names the same target) and holds an flock on it, so a second writer is
// refused at once (`underspec status` probes that lock); holding it, it removes the staging
// directories a killed writer left, then creates its own. OutputDirTaken when the target is
// not empty or is locked; OutputError when something cannot be created.
// The name prefix of a staging directory inside an existing target (what a killed writer may
// leave there; the next StagingDir removes it, and inspecting the target ignores it).
inline constexpr std::string_view kStagingInsidePrefix = ".underspec-partial-";

class StagingDir {
 public:
  explicit StagingDir(std::filesystem::path target, bool rename_if_taken = false);
  ~StagingDir();  // unless committed: removes the staging dir, and the target when it made it
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return staging_; }
  // The reserved directory (with rename_if_taken, the name it got).
  const std::filesystem::path& target() const { return target_; }
  // Moves the outputs onto the target: the staging directory, with the mode a plain mkdir
  // gives, renamed onto the target it created (rename(2) replaces it atomically when still
  // empty, and refuses otherwise), or its entries moved into the existing target, `last`
  // last. OutputError, the target as it was, when something was put there meanwhile.
  void commit(const std::string& last = {});
  // True when the outputs are staged inside the existing target (see above).
  bool inside() const { return inside_; }

 private:
  void release();
  void move_entries_out(const std::string& last);

  std::filesystem::path target_, staging_;
  int lock_fd_ = -1;
  bool created_ = false, committed_ = false, inside_ = false;
};

}  // namespace underspec
