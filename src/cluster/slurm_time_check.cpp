// `underspec slurm --time`: does a task's shard fit in its time limit? (see slurm.hpp)
#include <omp.h>

#include "underspec/cluster/slurm.hpp"
#include "underspec/run/time_estimate.hpp"

namespace underspec {

ShardTimeCheck check_shard_time(const SlurmOptions& o, const ExperimentConfig& config, long limit_seconds) {
  ShardTimeCheck check;
  if (limit_seconds <= 0) return check;
  if (o.gpus_per_task > 0) {  // GPU speeds are not calibrated here: nothing to compare
    check.line = "time per task: not estimated (GPU tasks; plan calibrates the CPU only)";
    return check;
  }
  const Sweep sweep = make_sweep(config);
  const auto n = static_cast<std::uint32_t>(sweep.replicas.size());
  const int threads = o.cpus_per_task > 0 ? o.cpus_per_task : omp_get_max_threads();
  // One calibration for the whole sweep; the longest shard is not always the largest (a shard
  // of MLPs takes far longer than one of perceptrons).
  const TimeCalibration calibration = calibrate_cpu_time(sweep, ShardRange{0, n}, threads);
  TimeEstimate e;
  std::uint32_t longest = 0;
  for (std::uint32_t i = 0; i < o.shards; ++i) {
    const TimeEstimate shard = estimate_time(calibration, sweep, shard_range(n, i, o.shards));
    if (i == 0 || shard.total() > e.total()) {
      e = shard;
      longest = i;
    }
  }
  const ShardRange range = shard_range(n, longest, o.shards);
  const std::string where = o.cpus_per_task > 0 ? "" : " (this machine's thread count: no --cpus-per-task)";
  check.line = "time per task: " + format_estimate_duration(e.total()) + " for the longest shard (" +
               std::to_string(longest) + ": " + std::to_string(range.end - range.begin) + " replicas) on " +
               std::to_string(e.threads) + (e.threads == 1 ? " CPU thread" : " CPU threads") + where +
               ", calibrated on this machine; --time is " + std::to_string(limit_seconds) + " s";
  // The task stops signal_grace_seconds early to save its checkpoint.
  const double usable = static_cast<double>(limit_seconds - o.signal_grace_seconds);
  if (e.total() > usable)
    check.warning = "the longest shard's estimated time (" + format_estimate_duration(e.total()) + ") exceeds --time " +
                    o.time + " less the " + std::to_string(o.signal_grace_seconds) +
                    " s kept to save the checkpoint; tasks will be stopped and need `underspec submit` again: use "
                    "more --shards or a longer --time";
  return check;
}

}  // namespace underspec
