// `underspec slurm --mem`: Slurm's memory syntax, and does a task's shard fit in it? (see slurm.hpp)
#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>
#include <string>

#include "underspec/cluster/slurm.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/run/plan.hpp"
#include "underspec/run/run.hpp"

namespace underspec {

std::optional<double> parse_slurm_memory(std::string_view text) {
  // sbatch's str_to_mbytes: digits, then nothing (MB) or K, M, G, T, each optionally with B.
  static const std::regex memory(R"((\d{1,15})(?:([KkMmGgTt])[Bb]?)?)");
  std::cmatch m;
  if (!std::regex_match(text.begin(), text.end(), m, memory)) return std::nullopt;
  double mb = std::stod(m[1].str());
  switch (m[2].matched ? std::toupper(static_cast<unsigned char>(m[2].str()[0])) : 'M') {
    case 'K':
      mb = std::ceil(mb / 1024);
      break;
    case 'G':
      mb *= 1024;
      break;
    case 'T':
      mb *= 1024 * 1024;
      break;
    default:
      break;
  }
  return mb * 1024 * 1024;
}

namespace {

// A task's memory as the options ask for it: --mem, or --mem-per-cpu / --mem-per-gpu given
// as --sbatch-arg (times the task's CPUs or GPUs). 0 bytes: not asked (or all of a node).
struct TaskMemory {
  double bytes = 0;
  std::string asked;  // "--mem 4G", "--mem-per-cpu=1G x 4 CPUs"; "" when not asked
};

double parse_or_refuse(const std::string& option, const std::string& value) {
  const std::optional<double> bytes = parse_slurm_memory(value);
  if (!bytes)
    throw UsageError(option + " " + value +
                     ": not a Slurm memory size (megabytes, or a number with K, M, G or T, e.g. 4G or 500M)");
  return *bytes;
}

// `merge`: the merge job's, which gets no --mem and no GPU (merge.sbatch), but every --sbatch-arg.
TaskMemory task_memory(const SlurmOptions& o, bool merge) {
  TaskMemory m;
  if (!o.mem.empty() && !merge) m = TaskMemory{parse_or_refuse("--mem", o.mem), "--mem " + o.mem};
  for (const std::string& arg : o.sbatch_args) {
    const std::size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    if (name != "--mem-per-cpu" && name != "--mem-per-gpu") continue;
    if (!o.mem.empty())
      throw UsageError("--mem and --sbatch-arg=" + name + " ask for a task's memory twice (sbatch refuses both)");
    const bool cpu = name == "--mem-per-cpu";
    const double per = parse_or_refuse("--sbatch-arg=" + name, eq == std::string::npos ? "" : arg.substr(eq + 1));
    const int count = cpu ? std::max(1, o.cpus_per_task) : merge ? 0 : o.gpus_per_task;
    if (count == 0) continue;  // memory per GPU of a task without GPUs: sbatch's to judge
    m = TaskMemory{per * count,
                   arg + " x " + std::to_string(count) + (cpu ? " CPU" : " GPU") + (count == 1 ? "" : "s")};
  }
  return m;
}

}  // namespace

ShardMemoryCheck check_shard_memory(const SlurmOptions& o, const ExperimentConfig& config) {
  const TaskMemory asked = task_memory(o, false), merge_asked = task_memory(o, true);
  const std::uint64_t replicas = replica_count(config);
  const std::uint64_t largest = (replicas + o.shards - 1) / o.shards;
  // A task's CPUs: --cpus-per-task, else Slurm's default of one (not this machine's count).
  const int threads = std::max(1, o.cpus_per_task);
  // The estimate the task itself checks before it starts (run.cpp): the same function.
  const MemoryEstimate e =
      estimate_host_memory(config, make_cells(config), threads, false, largest, o.gpus_per_task > 0);
  ShardMemoryCheck check;
  check.line = "memory per task: about " + format_bytes(e.bytes) + " for the largest shard (" +
               std::to_string(largest) + (largest == 1 ? " replica" : " replicas") + ", " + std::to_string(threads) +
               (threads == 1 ? " thread" : " threads") +
               (o.cpus_per_task > 0 ? "" : ": Slurm's default without --cpus-per-task") + "); " +
               (asked.asked.empty() ? "no --mem: the partition's default applies"
                : asked.bytes > 0   ? asked.asked + " is " + format_bytes(asked.bytes)
                                    : asked.asked + ": all of a node's memory");
  // The merge holds every shard's rows (merge.cpp checks the same estimate).
  const MemoryEstimate merge = estimate_merge_memory(config, make_cells(config), threads, false);
  check.merge_line = "memory of the merge job: about " + format_bytes(merge.bytes) + " (every replica's row; " +
                     (merge_asked.asked.empty() ? "merge.sbatch asks for no --mem: the partition's default applies)"
                                                : merge_asked.asked + " is " + format_bytes(merge_asked.bytes) + ")");
  if (merge_asked.bytes > 0 && merge.bytes > merge_asked.bytes)
    check.merge_warning = "the merge job needs about " + format_bytes(merge.bytes) + " but " + merge_asked.asked +
                          " gives it " + format_bytes(merge_asked.bytes) +
                          ": it will be refused; merge by hand where the memory is, or ask for more per CPU";
  if (asked.bytes > 0 && e.bytes > asked.bytes) {
    // Slurm's whole megabytes, in G when round.
    const double mb = std::ceil(e.bytes / (1024.0 * 1024.0));
    const std::string need = std::fmod(mb, 1024) == 0 ? std::to_string(static_cast<long long>(mb / 1024)) + "G"
                                                      : std::to_string(static_cast<long long>(mb)) + "M";
    const bool more_shards = e.dominant_key == "sweep.seeds or sweep.grid" && largest > 1;
    check.error = asked.asked + " is less than a task needs: about " + format_bytes(e.bytes) +
                  " for the largest shard (" + std::to_string(largest) + " replicas); give --mem " + need +
                  " or more, or reduce " + e.dominant_key + (more_shards ? " (or use more --shards)" : "");
  }
  return check;
}

}  // namespace underspec
