// What a run will do, computed from the config before anything is allocated: replicas,
// work, memory and output sizes. `underspec run --dry-run` prints it; the driver uses it
// to refuse a run whose outputs cannot fit on disk.
#pragma once

#include <filesystem>
#include <string>

#include "underspec/sweep/sweep.hpp"

namespace underspec {

struct RunPlan {
  std::size_t cells = 0;
  std::uint64_t replicas = 0;       // in this run (or shard)
  std::uint64_t already_done = 0;   // of them, finished in the checkpoint of the run resumed
  std::uint64_t replica_steps = 0;  // minibatch updates of those still to train
  double flops = 0;                 // training and scoring, forward + backward
  double host_bytes = 0;            // peak host memory of the driver and CPU backend
  double disk_bytes = 0;            // outputs, checkpoint and report, rounded up generously
  bool save_params = false;
  bool report = false;  // report.html and plots/ are written (a whole run, not a shard)
  std::string device;
  std::string device_memory;  // the CUDA backend's GPU memory lines (describe_cuda_memory), if it trains
};

// Host memory a sweep needs, from the config and its cells alone (before the replica list
// is allocated), with the key that dominates it: what to change when it does not fit.
struct MemoryEstimate {
  double bytes = 0;
  std::string dominant_key;
};
// With save_params, checkpoint records hold every parameter: a run keeps at most
// kCheckpointBufferBytes of them waiting, and a segment read back is at most that size.
inline constexpr std::size_t kCheckpointBufferBytes = std::size_t{32} << 20;
// `shard_replicas`: the replicas this run holds results of (a shard's; 0: the whole sweep).
// `adam_tables`: the backend keeps a training's whole Adam/StepLR table (CUDA, whose kernels
// read it on the device); the CPU computes each step's scalars as it goes.
MemoryEstimate estimate_host_memory(const ExperimentConfig& config, const std::vector<Cell>& cells, int threads,
                                    bool save_params, std::uint64_t shard_replicas = 0, bool adam_tables = false);
// What `merge` holds: every replica's row, the cells, the statistics' bootstrap scratch per
// thread and the process; no datasets, no training.
MemoryEstimate estimate_merge_memory(const ExperimentConfig& config, const std::vector<Cell>& cells, int threads,
                                     bool save_params);
// Whether `device` (auto, cpu, cuda) trains with whole Adam tables: CUDA, or auto with a GPU.
bool device_uses_adam_tables(const std::string& device);

// `done` (empty, or one flag per replica of `range`): replicas a resumed run has finished;
// work and FLOPs count only the others, memory and disk the whole range (the outputs).
RunPlan plan_run(const Sweep& sweep, ShardRange range, bool save_params, bool report, const std::string& device,
                 int threads, const std::vector<bool>& done = {});
struct TimeEstimate;  // time_estimate.hpp
// For people: cells, replicas, work, (with `time`) the wall time, memory, the files and
// their columns.
std::string describe_plan(const RunPlan& plan, const Sweep& sweep, const std::filesystem::path& dir,
                          const TimeEstimate* time = nullptr);

std::string format_bytes(double bytes);  // "1.5 GiB"

}  // namespace underspec
