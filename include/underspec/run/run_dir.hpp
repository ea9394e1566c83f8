// The output directory of a run: what is there before we start (nothing, an interrupted
// run to resume, or something that is not ours), reserving it, and the checks that make
// sure a resume continues the same run.
#pragma once

#include <filesystem>
#include <string>

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

// How a command writes its output directory: into it (run, slurm), or all at once from a
// staging directory (merge, score: StagingDir), whose leftovers in it do not count as content.
enum class OutputUse { fill, replace };

// Throws UsageError when `dir` cannot be used: not a directory, not empty and not a run
// (or a run but `resume` is false), unreadable config or state.
// A missing directory must be creatable (its nearest existing ancestor a writable directory),
// an existing empty one (or a reservation cut short) writable.
RunDirectory inspect_run_dir(const std::filesystem::path& dir, bool resume);

// The checks of inspect_run_dir(dir, false) for the new output directory of a command that
// cannot continue a run (merge, score, slurm): a run already there is refused with advice
// that fits those commands (another --out), not --resume. An existing empty `dir` must be
// writable as `use` needs.
void require_new_output_dir(const std::filesystem::path& dir, OutputUse use);

// What is wrong with an input path that should be a directory (or a regular file): "" when
// nothing, else e.g. "does not exist", "is a FIFO, not a directory", "Too many levels of
// symbolic links", "is not readable" (to follow the path's name in a message).
std::string path_problem(const std::filesystem::path& path, bool want_directory);

// Throws UsageError naming what differs (config keys, shard, --save-params).
void require_same_run(const RunDirectory& dir, const ExperimentConfig& config, const CheckpointState& state);

// Checks that the sweep fits in the host memory available now (available_memory: MemAvailable,
// or a memory control group's limit, e.g. a Slurm job's --mem), before its
// replica list is allocated: UsageError with the estimate, the limit and the key to change.
// `sharded`: the run is a shard already (--shard), so splitting it is not suggested.
// `command` ("merge", "score") starts the message; `alternative` ends its advice.
void require_host_memory(const MemoryEstimate& estimate, bool sharded, const std::string& command = {},
                         const std::string& alternative = {});

// Checks that the outputs fit on the file system of `dir` (UsageError with both numbers).
void require_resources(const RunPlan& plan, const std::filesystem::path& dir);

// Creates `dir` (make_output_dir: with `rename_if_taken`, a taken name gets `-2`, `-3`, ...
// appended); an existing one must be empty or hold only an interrupted reservation's files.
void create_output_dir(std::filesystem::path& dir, bool rename_if_taken);

// create_output_dir, then writes config.toml and the checkpoint state, so that an
// interruption from here on can be resumed.
void reserve_run_dir(std::filesystem::path& dir, bool rename_if_taken, const ExperimentConfig& config,
                     const CheckpointState& state);

// Removes what a writer killed mid-write leaves beside the outputs of the run in `dir`
// (`NAME.tmp-XXXXXX` of write_file_atomic, `params.npy.tmp`), so that a resumed run holds
// finished files only. Call it holding the run lock: another process's temporaries are live.
void remove_output_temporaries(const std::filesystem::path& dir);

// Thrown by throw_if_stopped() after SIGINT/SIGTERM (not a std::exception, so that no
// generic handler takes it for an error).
struct Interrupted {
  int signal;
};

// Throws Interrupted after a SIGINT/SIGTERM caught by `signals`.
void throw_if_stopped(const StopSignals& signals);

// The message and exit status of a merge or score stopped by `signal`: nothing was written.
int report_interrupted(const char* command, int signal, const std::filesystem::path& out,
                       const std::string& command_line, std::ostream& err);

// What merge and score say about an input directory that holds no checkpoint (UsageError).
[[noreturn]] void throw_no_checkpoint(const char* command, const std::filesystem::path& dir);

}  // namespace underspec
