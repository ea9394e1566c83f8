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
  // Shard 0 is the largest (balanced contiguous ranges, the first ones longer).
  const ShardRange largest = shard_range(static_cast<std::uint32_t>(sweep.replicas.size()), 0, o.shards);
  const int threads = o.cpus_per_task > 0 ? o.cpus_per_task : omp_get_max_threads();
  const TimeEstimate e = estimate_run_time(sweep, largest, "cpu", threads);
  const std::string where = o.cpus_per_task > 0 ? "" : " (this machine's thread count: no --cpus-per-task)";
  check.line = "time per task: " + format_estimate_duration(e.total()) + " for the largest shard (" +
               std::to_string(largest.end - largest.begin) + " replicas) on " + std::to_string(e.threads) +
               (e.threads == 1 ? " CPU thread" : " CPU threads") + where + ", calibrated on this machine; --time is " +
               std::to_string(limit_seconds) + " s";
  // The task stops signal_grace_seconds early to save its checkpoint.
  const double usable = static_cast<double>(limit_seconds - o.signal_grace_seconds);
  if (e.total() > usable)
    check.warning = "the largest shard's estimated time (" + format_estimate_duration(e.total()) + ") exceeds --time " +
                    o.time + " less the " + std::to_string(o.signal_grace_seconds) +
                    " s kept to save the checkpoint; tasks will be stopped and need `underspec submit` again: use "
                    "more --shards or a longer --time";
  return check;
}

}  // namespace underspec
