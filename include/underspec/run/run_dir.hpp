// The output directory of a run: what is there before we start (nothing, an interrupted
// run to resume, or something that is not ours), reserving it, and the checks that make
// sure a resume continues the same run.
#pragma once

#include <filesystem>

#include "underspec/config/config.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/plan.hpp"
#include "underspec/run/stop_signals.hpp"

namespace underspec {

struct RunDirectory {
  std::filesystem::path path;
  bool has_checkpoint = false;
  // A resume found only what an interrupted reservation leaves (config.toml, temporary files,
  // no checkpoint state yet): it is reserved again, with that config.toml when it was complete.
  bool has_config = false;
  ExperimentConfig config;  // its config.toml, with a checkpoint (or has_config)
  CheckpointState state;
};

// Throws UsageError when `dir` cannot be used: not a directory, not empty and not a run
// (or a run but `resume` is false), unreadable config or state.
// A missing directory must be creatable (its nearest existing ancestor a writable directory).
RunDirectory inspect_run_dir(const std::filesystem::path& dir, bool resume);

// The checks of inspect_run_dir(dir, false) for the new output directory of a command that
// cannot continue a run (merge, score, slurm): a run already there is refused with advice
// that fits those commands (another --out), not --resume.
void require_new_output_dir(const std::filesystem::path& dir);

// What is wrong with an input path that should be a directory (or a regular file): "" when
// nothing, else e.g. "does not exist", "is a FIFO, not a directory", "Too many levels of
// symbolic links", "is not readable" (to follow the path's name in a message).
std::string path_problem(const std::filesystem::path& path, bool want_directory);

// Throws UsageError naming what differs (config keys, shard, --save-params).
void require_same_run(const RunDirectory& dir, const ExperimentConfig& config, const CheckpointState& state);

// Checks that the sweep fits in the host memory available now (MemAvailable), before its
// replica list is allocated: UsageError with the estimate, the limit and the key to change.
void require_host_memory(const MemoryEstimate& estimate);

// Checks that the outputs fit on the file system of `dir` (UsageError with both numbers).
void require_resources(const RunPlan& plan, const std::filesystem::path& dir);

// Creates `dir` (it must not exist or be empty; with `rename_if_taken`, a taken name gets
// `-2`, `-3`, ... appended): mkdir is atomic, so two commands never share a directory.
void create_output_dir(std::filesystem::path& dir, bool rename_if_taken);

// create_output_dir, then writes config.toml and the checkpoint state, so that an
// interruption from here on can be resumed.
void reserve_run_dir(std::filesystem::path& dir, bool rename_if_taken, const ExperimentConfig& config,
                     const CheckpointState& state);

// Thrown by StagedOutputDir::check() after SIGINT/SIGTERM (not a std::exception, so that no
// generic handler takes it for an error).
struct Interrupted {
  int signal;
};

// Throws Interrupted after a SIGINT/SIGTERM caught by `signals`.
void throw_if_stopped(const StopSignals& signals);

// The output directory of merge and score, which cannot be resumed: they build everything in
// a hidden sibling (.NAME.underspec-partial-XXXXXX) and rename it onto the reserved, empty
// `out` only when complete, so an interruption or an error never leaves a half-written `out`
// and rerunning the same command just works.
class StagedOutputDir {
 public:
  // Reserves `out` up front (create_output_dir, then an flock on it so that a second merge or
  // score into it is refused at once; stale siblings of a killed one are removed) and creates
  // the staging directory. UsageError when `out` is taken.
  StagedOutputDir(std::filesystem::path out, bool rename_if_taken, const StopSignals& signals);
  ~StagedOutputDir();  // unless published: removes the staging dir, and `out` when it made it
  StagedOutputDir(const StagedOutputDir&) = delete;
  StagedOutputDir& operator=(const StagedOutputDir&) = delete;

  const std::filesystem::path& staging() const { return staging_; }
  const std::filesystem::path& out() const { return out_; }
  // Throws Interrupted after a SIGINT/SIGTERM.
  void check() const;
  // check(), then renames the staging directory onto `out`; returns `out`.
  std::filesystem::path publish();

 private:
  void release();

  std::filesystem::path out_, staging_;
  const StopSignals& signals_;
  int fd_ = -1;
  bool created_ = false, published_ = false;
};

// The message and exit status of a merge or score stopped by `signal`: nothing was written.
int report_interrupted(const char* command, int signal, const std::filesystem::path& out,
                       const std::string& command_line, std::ostream& err);

// What merge and score say about an input directory that holds no checkpoint (UsageError).
[[noreturn]] void throw_no_checkpoint(const char* command, const std::filesystem::path& dir);

}  // namespace underspec
