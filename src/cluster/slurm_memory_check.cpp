// `underspec slurm --mem`: Slurm's memory syntax, and does a task's shard fit in it? (see slurm.hpp)
#include <omp.h>

#include <cctype>
#include <cmath>
#include <regex>
#include <string>

#include "underspec/cluster/slurm.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/run/plan.hpp"

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

ShardMemoryCheck check_shard_memory(const SlurmOptions& o, const ExperimentConfig& config, double mem_bytes) {
  const std::uint64_t replicas = replica_count(config);
  const std::uint64_t largest = (replicas + o.shards - 1) / o.shards;
  const int threads = o.cpus_per_task > 0 ? o.cpus_per_task : omp_get_max_threads();
  // The estimate the task itself checks before it starts (run.cpp): the same function.
  const MemoryEstimate e =
      estimate_host_memory(config, make_cells(config), threads, false, largest, o.gpus_per_task > 0);
  ShardMemoryCheck check;
  check.line = "memory per task: about " + format_bytes(e.bytes) + " for the largest shard (" +
               std::to_string(largest) + (largest == 1 ? " replica" : " replicas") + ", " + std::to_string(threads) +
               (threads == 1 ? " thread" : " threads") +
               (o.cpus_per_task > 0 ? "" : ": this machine's count, no --cpus-per-task") + "); " +
               (o.mem.empty()   ? "no --mem: the partition's default applies"
                : mem_bytes > 0 ? "--mem is " + o.mem
                                : "--mem 0: all of a node's memory");
  // The merge holds every shard's rows (merge.cpp checks the same estimate, no training).
  const MemoryEstimate merge = estimate_host_memory(config, make_cells(config), threads, false);
  check.merge_line = "memory of the merge job: about " + format_bytes(merge.bytes) +
                     " (every replica's row; merge.sbatch asks for no --mem: the partition's default applies)";
  if (mem_bytes > 0 && e.bytes > mem_bytes) {
    // Slurm's whole megabytes, in G when round.
    const double mb = std::ceil(e.bytes / (1024.0 * 1024.0));
    const std::string need = std::fmod(mb, 1024) == 0 ? std::to_string(static_cast<long long>(mb / 1024)) + "G"
                                                      : std::to_string(static_cast<long long>(mb)) + "M";
    const bool more_shards = e.dominant_key == "sweep.seeds or sweep.grid" && largest > 1;
    check.error = "--mem " + o.mem + " is less than a task needs: about " + format_bytes(e.bytes) +
                  " for the largest shard (" + std::to_string(largest) + " replicas); give --mem " + need +
                  " or more, or reduce " + e.dominant_key + (more_shards ? " (or use more --shards)" : "");
  }
  return check;
}

}  // namespace underspec
