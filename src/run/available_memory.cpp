// The memory this process may still take (available_memory.hpp).
#include "underspec/run/available_memory.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

namespace underspec {
namespace fs = std::filesystem;
namespace {

// The first number of a file (a cgroup's limit or usage); nullopt when it is missing,
// unreadable, or "max" (cgroup v2's no limit).
std::optional<double> read_number(const fs::path& file) {
  std::ifstream in(file);
  double value = 0;
  if (!(in >> value)) return std::nullopt;
  return value;
}

// The page cache a group could give back: its file pages (active or not: the kernel
// reclaims both) less shared memory (tmpfs, which counts as file but cannot be dropped).
double reclaimable(const fs::path& stat, const std::string& file_key, const std::string& shmem_key) {
  std::ifstream in(stat);
  std::string name;
  double value = 0, file = 0, shmem = 0;
  while (in >> name >> value) {
    if (name == file_key) file = value;
    if (name == shmem_key) shmem = value;
  }
  return std::max(0.0, file - shmem);
}

// MemAvailable of meminfo in bytes, or 0 when unknown.
double meminfo_available(const fs::path& meminfo) {
  std::ifstream in(meminfo);
  std::string name, unit;
  double kib = 0;
  while (in >> name >> kib >> unit)
    if (name == "MemAvailable:") return kib * 1024.0;
  return 0;
}

// The least room (limit - (used - reclaimable cache)) of `group` and its ancestors within the
// hierarchy mounted at `mount`, and the group that has it; +infinity when none has a limit.
struct CgroupFiles {
  const char *limit, *usage, *stat, *file, *shmem;
};
struct Room {
  double bytes = std::numeric_limits<double>::infinity();
  std::string group;
};
Room least_room(const fs::path& mount, const std::string& group, const CgroupFiles& files) {
  Room room;
  fs::path name = fs::path(group).lexically_normal();
  for (;;) {
    const fs::path rel = name.relative_path();
    const fs::path dir = rel.empty() ? mount : mount / rel;
    const std::optional<double> limit = read_number(dir / files.limit);
    const std::optional<double> usage = read_number(dir / files.usage);
    // cgroup v1 writes "no limit" as the largest page-aligned 64-bit count (~9.2e18).
    if (limit && usage && *limit < 4e18) {
      const double here = *limit - std::max(0.0, *usage - reclaimable(dir / files.stat, files.file, files.shmem));
      if (here < room.bytes) room = Room{here, name.string()};
    }
    if (rel.empty()) break;
    name = name.parent_path();
    if (!name.relative_path().empty() && name.filename().empty()) name = name.parent_path();  // "a/b/" -> "a/b"
  }
  return room;
}

}  // namespace

AvailableMemory available_memory(const fs::path& root) {
  AvailableMemory available{meminfo_available(root / "proc/meminfo"), ""};
  Room room;
  std::ifstream cgroups(root / "proc/self/cgroup");
  // Lines "ID:CONTROLLERS:PATH": v2's is "0::PATH", v1's memory controller "N:memory:PATH".
  for (std::string line; std::getline(cgroups, line);) {
    const std::size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1), path = line.substr(second + 1);
    std::stringstream list(controllers);
    bool memory = false;
    for (std::string c; std::getline(list, c, ',');) memory = memory || c == "memory";
    Room here;
    if (controllers.empty())
      here = least_room(root / "sys/fs/cgroup", path, {"memory.max", "memory.current", "memory.stat", "file", "shmem"});
    else if (memory)
      here =
          least_room(root / "sys/fs/cgroup/memory", path,
                     {"memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "total_cache", "total_shmem"});
    if (here.bytes < room.bytes) room = here;
  }
  if (room.bytes < std::numeric_limits<double>::infinity() && (available.bytes <= 0 || room.bytes < available.bytes))
    available = AvailableMemory{std::max(1.0, room.bytes), "memory control group " + room.group};  // 0 means unknown
  return available;
}

}  // namespace underspec
