// Running a sweep on a Slurm cluster: `underspec slurm` writes an array job (one task per
// shard, each resuming its shard's directory) and a merge job that depends on it, and can
// submit both; `underspec status` reports how far a sweep (or a plain run) has come.
//
// Layout of a Slurm sweep directory DIR:
//   config.toml        the resolved config every task runs
//   slurm.json         shard count, the binary, the array limit, every submission's job ids
//                      (slurm_queue.hpp)
//   run.sbatch         the array job; merge.sbatch the merge job
//   shards/<i>/        shard i's run directory (`underspec run --shard i/N --resume`)
//   logs/shard-<i>.out, .err, merge.out, .err   the tasks' logs
//   merged/            the merged outputs (`underspec merge DIR/shards/* --out DIR/merged`)
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "underspec/config/config.hpp"
#include "underspec/outputs/shell_words.hpp"  // shell_quote, used by its callers too

namespace underspec {

struct SlurmOptions {
  std::filesystem::path dir;     // absolute
  std::filesystem::path binary;  // absolute path of the underspec binary the tasks run
  std::uint32_t shards = 1;
  std::string partition, time, account, qos, mem;
  int gpus_per_task = 0;  // > 0: CUDA backend; else CPU with SLURM_CPUS_PER_TASK threads
  int cpus_per_task = 0;
  int array_limit = 0;                   // > 0: at most this many tasks at once (`%K`)
  std::vector<std::string> sbatch_args;  // to both jobs (a reservation, a cluster, mail)
  std::string job_name = "underspec";    // the array's; the merge job is <job_name>-merge
  int signal_grace_seconds = 120;        // SIGTERM this long before the time limit
};

// Slurm's --time formats, "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S", or UNLIMITED /
// INFINITE: the limit in seconds (0: none); nullopt when the text is none of them.
std::optional<long> parse_slurm_time(std::string_view text);
// How long before the time limit a task gets SIGTERM to save its checkpoint: 120 s, or a
// tenth of a short limit (at least 10 s; Slurm rounds a limit up to whole minutes).
int signal_grace_for(long limit_seconds);

// With a time limit (limit_seconds > 0) and CPU tasks: the longest shard's wall time,
// estimated here (time_estimate.hpp, with --cpus-per-task threads), as a line for people, and
// a warning when it exceeds the limit less the grace period. Empty without a limit.
struct ShardTimeCheck {
  std::string line, warning;
};
ShardTimeCheck check_shard_time(const SlurmOptions& options, const ExperimentConfig& config, long limit_seconds);

// Slurm's --mem syntax: a whole number of megabytes, or of K, M, G or T (binary units, an
// optional B after them; kilobytes round up to a megabyte as Slurm does): bytes (0: all of
// a node's memory); nullopt when the text is not one.
std::optional<double> parse_slurm_memory(std::string_view text);

// A task's host memory: the largest shard's estimate (the run's own, estimate_host_memory,
// with --cpus-per-task threads, else Slurm's default of one CPU), as a line for people; `error` when what the task asks
// for is less (--mem, or --mem-per-cpu / --mem-per-gpu as --sbatch-arg times its CPUs / GPUs), naming what to change;
// and the merge job's need (the whole sweep's rows), with a warning when --mem-per-cpu (which merge.sbatch gets too)
// gives it less. Throws UsageError for a size that is not Slurm's, or for --mem beside --mem-per-cpu/-gpu.
struct ShardMemoryCheck {
  std::string line, error, merge_line, merge_warning;
};
ShardMemoryCheck check_shard_memory(const SlurmOptions& options, const ExperimentConfig& config);

// The texts of DIR/run.sbatch and DIR/merge.sbatch (pure functions of the options).
std::string slurm_array_script(const SlurmOptions& options);
std::string slurm_merge_script(const SlurmOptions& options);
// The command that runs shard `index` by hand, outside Slurm.
std::string slurm_shard_command(const SlurmOptions& options, std::uint32_t index);

// `underspec slurm`: checks the options (UsageError), reserves options.dir, writes the config
// and the scripts, and with `submit` submits them as submit_sweep does. When sbatch refuses
// the array job, nothing is left: the directory is removed. Returns the exit status.
int slurm_prepare(SlurmOptions options, const ExperimentConfig& config, bool submit, std::ostream& out,
                  std::ostream& err);

// `underspec submit DIR`: submits what the sweep in DIR still lacks: one array job of the shards
// that are neither done nor queued nor running (--array=<list>%K), and a merge job after it and
// after any array job of the sweep still running. With every shard done or queued it submits
// only a merge (when none is queued). Records each job id in DIR/slurm.json for `status`.
int submit_sweep(const std::filesystem::path& dir, std::ostream& out, std::ostream& err);

// Runs `sbatch --parsable ARGS...`; returns the job id. Throws std::runtime_error with
// sbatch's message when it fails.
std::string sbatch_submit(const std::vector<std::string>& args);

// Runs a command (argv), capturing stdout and stderr together; returns the exit status
// (127 when it cannot be started).
int run_capture(const std::vector<std::string>& argv, std::string& output);

// `underspec status DIR`: prints the state of a Slurm sweep or of a run directory. Throws
// UsageError when DIR is neither. `program`: the binary as invoked (shell-quoted), which the
// printed resume command of a stopped run starts with.
int print_status(const std::filesystem::path& dir, std::ostream& out, const std::string& program = "underspec");

}  // namespace underspec
