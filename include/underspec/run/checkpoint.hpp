// Finished replicas on disk while a run goes on, so that no interruption (Ctrl-C, SIGTERM,
// kill -9, a preempted Slurm task, a late error) loses finished work.
//
// Layout of a run directory:
//   config.toml                 the resolved config (written when the directory is reserved)
//   checkpoint/state.json       config hash, shard, replica range, whether params are kept
//   checkpoint/part-NNNNNNNN.bin  segments of finished replicas, each written to a temporary
//                               name, fsync'd and renamed (then the directory fsync'd): a
//                               segment is whole or absent, never torn.
// A segment (format 02) holds records (id, IID/OOD/stress RMSE in double, parameters in
// float, the divergence marker) and ends with a 64-bit FNV-1a checksum of everything
// before it; readers verify it (and still read format 01, without markers).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "underspec/backends/backend.hpp"

namespace underspec {

struct CheckpointState {
  std::string config_hash;
  std::uint32_t shard_index = 0, shard_count = 1;
  std::uint32_t begin = 0, end = 0;  // the replica ids this directory trains
  std::uint64_t total_replicas = 0;  // of the whole sweep
  bool save_params = false;          // segments hold every parameter (else perceptron weights only)
  // The build that created the directory (run_info.hpp's git_commit()); "" in directories
  // made before it was recorded.
  std::string git_commit;
};

// A warning when `dir`'s checkpoint was started by another build than this one ("" when it
// was not, or when either build is unknown): replicas of two builds would be mixed.
std::string other_build_warning(const std::filesystem::path& dir, const CheckpointState& state);

std::filesystem::path checkpoint_dir(const std::filesystem::path& run_dir);
void write_checkpoint_state(const std::filesystem::path& run_dir, const CheckpointState& state);
// nullopt when `run_dir` has no checkpoint; throws CheckpointError when it is unreadable.
std::optional<CheckpointState> read_checkpoint_state(const std::filesystem::path& run_dir);

class CheckpointError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Appends segments to a run directory's checkpoint (numbering continues after existing ones).
class CheckpointWriter {
 public:
  explicit CheckpointWriter(std::filesystem::path run_dir);
  void write_segment(std::span<const ReplicaResult> results);

 private:
  std::filesystem::path dir_;
  std::uint64_t next_ = 0;
};

// Calls `visit` for every record of every segment, segment by segment (in name order),
// one at a time, so a reader never needs all parameters in memory.
void for_each_checkpoint_record(const std::filesystem::path& run_dir,
                                const std::function<void(ReplicaResult&&)>& visit);

// The number of records in the checkpoint's segments, from their headers only (cheap; a replica
// saved twice counts twice). 0 without a checkpoint; throws CheckpointError on a bad header.
std::uint64_t count_checkpoint_records(const std::filesystem::path& run_dir);

}  // namespace underspec
