// What a Slurm sweep directory records of its submissions (DIR/slurm.json), what Slurm says
// of those jobs now, and the state of each shard that follows: shared by `underspec status`
// (which prints it) and `underspec submit` (which submits what is missing).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace underspec {

// One sbatch round: an array job of some shards ("0-3,7", in --array's syntax) and the merge
// job after it. Either may be empty (a round that only merges; a merge that sbatch refused).
struct SlurmSubmission {
  std::string array_job, tasks, merge_job;
};

// DIR/slurm.json. Format 1 (one submission, of every shard) is read as one submission.
struct SlurmRecord {
  std::uint32_t shards = 1;
  std::filesystem::path binary;
  int array_limit = 0;                       // the throttle (%K) every round of the sweep keeps
  std::vector<SlurmSubmission> submissions;  // oldest first
};

// Throws UsageError naming the file when it is missing or not a sweep's record.
SlurmRecord read_slurm_record(const std::filesystem::path& dir);
void write_slurm_record(const std::filesystem::path& dir, const SlurmRecord& record);

// --array syntax for a sorted list of ids: {0,1,2,5,7,8} -> "0-2,5,7-8".
std::string task_list(const std::vector<std::uint32_t>& ids);

// A job as `scontrol show job` reports it; state empty when Slurm does not know it (never
// submitted, or ended longer than MinJobAge ago).
struct SlurmJob {
  std::string id;  // "12" (a job) or "12_3" (an array task)
  std::string state, reason;
  // A task Slurm no longer lists although it still knows its array: what a task cancelled
  // while pending becomes (it leaves no record of its own).
  bool vanished = false;
};
bool is_failed_state(const std::string& state);
// Queued or on a node: the job may still run (or finish) without anyone's help.
bool is_live_state(const std::string& state);

// Slurm's view of every job in the record (later submissions override earlier ones for the
// shards they include): shard index -> its latest task, and the latest merge job.
struct SlurmQueueView {
  std::map<std::uint32_t, SlurmJob> shards;
  SlurmJob merge;
  std::vector<std::string> live_arrays;  // array jobs with a task that is still live
  std::string unreachable;               // scontrol's complaint when Slurm could not be asked
};
SlurmQueueView query_slurm(const SlurmRecord& record);

struct ShardState {
  std::string state;  // done, running, pending, failed, cancelled, stopped, not started
  std::uint64_t done = 0, total = 0;
  SlurmJob job;  // its latest task, as Slurm reports it
};
// The text of a task's log from its latest attempt on: after the last line that starts with
// `header` (each attempt's script prints one first), so an earlier attempt's error is not
// taken for this one's; the whole text when there is no such line.
std::string latest_attempt(const std::string& log, const std::string& header);
inline constexpr const char* kShardLogHeader = "underspec: shard ";  // the scripts' echo lines
inline constexpr const char* kMergeLogHeader = "underspec: merge job ";

// Each shard's state from its directory (summary, checkpoint, run lock), its log and Slurm.
std::vector<ShardState> shard_states(const std::filesystem::path& dir, const SlurmRecord& record,
                                     const SlurmQueueView& view, std::uint32_t replicas);

// The text of a log or record file; "" when it is missing or unreadable.
std::string read_text(const std::filesystem::path& path);
// Whether `p` exists (false when it cannot be told, e.g. a directory without permission).
bool present(const std::filesystem::path& p);

// True when a process holds the run lock of run_dir (an flock on checkpoint/state.json).
bool run_is_locked(const std::filesystem::path& run_dir);
// True while a merge or score holds the lock on its reserved, still empty output directory.
bool output_is_locked(const std::filesystem::path& out_dir);

}  // namespace underspec
