// How much more memory this process may take: what the machine has available, or less where
// a control group limits it (a Slurm job's --mem, a container's limit). The run checks its
// estimate against this before anything is written.
#pragma once

#include <filesystem>
#include <string>

namespace underspec {

// Bytes, or 0 when unknown: MemAvailable of /proc/meminfo, and, for this process's memory
// control group and each of its ancestors that has a limit (cgroup v2 memory.max, v1
// memory.limit_in_bytes; Slurm limits the job's group, not the task's), the limit less what
// the group uses (its page cache, but for shared memory, is reclaimable: not counted); the least
// of them. `limited_by` names the group when one of them is the least ("" otherwise).
// `root` stands for "/" (tests give a directory that mimics /proc and /sys).
struct AvailableMemory {
  double bytes = 0;
  std::string limited_by;  // "memory control group /slurm/job_5"
};
AvailableMemory available_memory(const std::filesystem::path& root = "/");

}  // namespace underspec
