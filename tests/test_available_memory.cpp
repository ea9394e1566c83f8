// The memory a run may take: MemAvailable, or less where a memory control group (cgroup v1 or
// v2, the process's own or an ancestor, as Slurm's job group) limits it. On trees that mimic
// /proc and /sys; tests/test_harden_cli.cpp runs underspec in a real, limited group.
#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.hpp"
#include "underspec/run/available_memory.hpp"

namespace underspec {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

class AvailableMemoryTest : public TempDirTest {
 protected:
  void write(const std::string& path, const std::string& text) {
    std::filesystem::create_directories((dir_ / path).parent_path());
    std::ofstream(dir_ / path) << text;
  }
  void meminfo(double mib) {
    write("proc/meminfo", "MemTotal:       25000000 kB\nMemFree:        1000 kB\nMemAvailable:   " +
                              std::to_string(static_cast<long>(mib * 1024)) + " kB\n");
  }
};

TEST_F(AvailableMemoryTest, WithoutControlGroupsItIsMemAvailable) {
  meminfo(4096);
  const AvailableMemory m = available_memory(dir_);
  EXPECT_EQ(m.bytes, 4096 * kMiB);
  EXPECT_EQ(m.limited_by, "");
  EXPECT_EQ(available_memory(dir_ / "nothing-here").bytes, 0);  // unknown
}

// Slurm (cgroup v2) limits the job's group; the task's group below it has no limit ("max").
// Its page cache (active or not) is reclaimable, so not counted as used.
TEST_F(AvailableMemoryTest, AnAncestorsV2LimitBinds) {
  meminfo(100000);
  write("proc/self/cgroup", "0::/system.slice/slurmstepd.scope/job_5/step_0/user/task_0\n");
  const std::string job = "sys/fs/cgroup/system.slice/slurmstepd.scope/job_5/";
  write(job + "memory.max", "1073741824\n");
  write(job + "memory.current", "536870912\n");
  write(job + "memory.stat", "anon 100\nfile 268435456\ninactive_file 1\nactive_file 268435455\nshmem 0\n");
  write(job + "step_0/user/task_0/memory.max", "max\n");
  write(job + "step_0/user/task_0/memory.current", "4096\n");
  const AvailableMemory m = available_memory(dir_);
  EXPECT_EQ(m.bytes, 768 * kMiB);
  EXPECT_EQ(m.limited_by, "memory control group /system.slice/slurmstepd.scope/job_5");
  // Shared memory (tmpfs) counts as file pages but cannot be given back.
  write(job + "memory.stat", "anon 100\nfile 268435456\nshmem 134217728\n");
  EXPECT_EQ(available_memory(dir_).bytes, 640 * kMiB);
}

// cgroup v1: the memory controller's line; "no limit" is the largest page-aligned count.
TEST_F(AvailableMemoryTest, AV1LimitBindsAndItsNoLimitDoesNot) {
  meminfo(100000);
  write("proc/self/cgroup", "5:devices:/\n4:memory:/slurm/uid_0/job_7\n3:cpuset:/\n0::/\n");
  write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  write("sys/fs/cgroup/memory/memory.usage_in_bytes", "900000000\n");
  write("sys/fs/cgroup/memory/slurm/uid_0/job_7/memory.limit_in_bytes", "2147483648\n");
  write("sys/fs/cgroup/memory/slurm/uid_0/job_7/memory.usage_in_bytes", "1073741824\n");
  write("sys/fs/cgroup/memory/slurm/uid_0/job_7/memory.stat",
        "cache 5\ntotal_cache 536870912\ntotal_shmem 536870912\n");
  const AvailableMemory m = available_memory(dir_);
  EXPECT_EQ(m.bytes, 1024 * kMiB);
  EXPECT_EQ(m.limited_by, "memory control group /slurm/uid_0/job_7");
  // Where the machine has less than the group allows, the machine's figure stands.
  meminfo(512);
  EXPECT_EQ(available_memory(dir_).bytes, 512 * kMiB);
  EXPECT_EQ(available_memory(dir_).limited_by, "");
}

// A group at its limit leaves nothing (one byte: 0 would read as "unknown").
TEST_F(AvailableMemoryTest, AFullGroupLeavesNothing) {
  meminfo(100000);
  write("proc/self/cgroup", "0::/box\n");
  write("sys/fs/cgroup/box/memory.max", "1000000\n");
  write("sys/fs/cgroup/box/memory.current", "2000000\n");
  EXPECT_EQ(available_memory(dir_).bytes, 1);
}

}  // namespace
}  // namespace underspec
