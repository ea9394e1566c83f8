// Filling a whole output directory at once, for the commands that cannot resume (merge, score).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "underspec/outputs/atomic_file.hpp"

namespace underspec {

// The name prefix of a staging directory inside an existing target, and the file in it that
// lists what its commit moves out (see StagingDir).
inline constexpr std::string_view kStagingInsidePrefix = ".underspec-partial-";
inline constexpr std::string_view kStagingManifest = ".underspec-commit";

// Everything is written in a hidden staging directory and moved onto the target only when
// complete, so an error, a signal or a kill never leaves a half-written target, and running
// the same command again just works.
//
// A target this call creates is staged beside it (`.NAME.underspec-partial-XXXXXX`) and
// commit() renames the whole directory onto it. An existing (empty) target is staged inside
// (`NAME/.underspec-partial-XXXXXX`): rename(2) cannot replace a mount point, the current
// directory (`--out .`) or, in a sticky directory such as /tmp, a directory of another user,
// and this way the target keeps its owner, mode and mount. commit() then moves the entries
// from the staging directory into the target one by one, `last` last (the run directory's
// checkpoint, then the file that marks the outputs finished), after writing their names to
// the staging directory's manifest (merge and score hold a second Ctrl-C until it is done:
// HoldSecondSignal). A commit cut short all the same (kill -9, power loss) is rolled back by
// the next StagingDir of that target: the entries its manifest names are removed with the
// staging directory.
//
// The constructor reserves the target up front (make_output_dir; an existing one must be empty
// but for such leftovers, a trailing slash names the same target) and holds an flock on it, so
// a second writer is refused at once (`underspec status` probes that lock); holding it, it
// removes the staging directories a killed writer left, then creates its own. OutputDirTaken
// when the target is not empty or is locked; OutputError when something cannot be created.
class StagingDir {
 public:
  explicit StagingDir(std::filesystem::path target, bool rename_if_taken = false);
  ~StagingDir();  // unless committed: removes the staging dir, and the target when it made it
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return staging_; }
  // The reserved directory (with rename_if_taken, the name it got).
  const std::filesystem::path& target() const { return target_; }
  // Moves the outputs onto the target (see above). OutputError, the target as it was, when
  // something was put there meanwhile or a move fails.
  void commit(const std::vector<std::string>& last = {});
  // True when the outputs are staged inside the existing target (see above).
  bool inside() const { return inside_; }

 private:
  void release();
  void move_entries_out(const std::vector<std::string>& last);

  std::filesystem::path target_, staging_;
  int lock_fd_ = -1;
  bool created_ = false, committed_ = false, inside_ = false;
};

// The order in which commit() moves `names` into an existing target: by name, but those in
// `last` after all others, in the order `last` gives.
std::vector<std::string> staging_commit_order(std::vector<std::string> names, const std::vector<std::string>& last);

// The first staging directory a killed merge or score left inside `dir` ("" when none).
std::string staging_leftover(const std::filesystem::path& dir);

// True when `dir` holds nothing but what a killed merge or score left inside it: staging
// directories, and the entries an unfinished commit had moved out of them (which the next
// StagingDir removes). A commit that had finished leaves finished outputs: false.
bool only_staging_leftovers(const std::filesystem::path& dir);

}  // namespace underspec
