// The device memory a whole run needs on the CUDA backend, planned from the config before
// anything is allocated, so that a sweep that cannot fit is refused (exit 2, nothing written)
// and `--dry-run` shows the figure. Free of CUDA headers: the CPU test suite checks it.
// The backend asks its dataset cache for cell_datasets() under dataset_key() and sizes each
// launch group's chunks with group_device_memory (cuda_memory.hpp), so the plan adds up the
// numbers the backend allocates by.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "underspec/backends/cuda_memory.hpp"

namespace underspec::cuda_plan {

// "3-64-64-1": a network shape's layer widths.
std::string shape_name(const NetShape& shape);

// A dataset a cell's replicas read on the device (shared, slot 0): a test domain's samples
// (`domain.factor` the domain's, not randomized) or a shared training set.
struct DatasetRequest {
  DatasetId set;
  TrainDomain domain;
  std::uint32_t n;
};

// A cell's device datasets: its test domains in test_domains() order, then the shared
// training set of each of `regimes` (none with data.per_replica: replicas bring their own).
std::vector<DatasetRequest> cell_datasets(const ExperimentConfig& config, std::span<const Regime> regimes);

// Every input of a generated dataset: two requests with equal keys hold the same samples,
// which the device generates and keeps once per train() call.
struct DatasetKey {
  float coefficient0, coefficient1, intercept, noise_std;
  std::uint32_t data_seed;
  DatasetId set;
  float factor;
  bool randomized;
  float factor_lo, factor_hi;
  std::uint32_t n;
  auto operator<=>(const DatasetKey&) const = default;
};
DatasetKey dataset_key(const ExperimentConfig& config, const DatasetRequest& request);

// Device bytes of a dataset of n samples (x1, x2, x3, y as floats).
constexpr std::size_t dataset_bytes(std::uint32_t n) { return 4 * sizeof(float) * std::size_t{n}; }

// What one launch group needs beside the datasets.
struct GroupNeed {
  std::string name;                // "3-64-64-1 (2 cells, 60 replicas)"
  std::size_t replicas = 0;        // in the group
  std::size_t table_bytes = 0;     // its cells' Adam tables and TrainRuns, held while it trains
  std::size_t own_data_bytes = 0;  // of the per-replica bytes: a replica's own training set
  GroupMemory chunk;               // what a chunk of n of its replicas allocates
};

// The device memory of one train() call over `replicas`: every distinct dataset (kept for
// the whole call) and every launch group's need.
struct SweepDeviceMemory {
  std::size_t test_bytes = 0, train_bytes = 0;  // distinct test and shared training sets
  std::vector<GroupNeed> groups;
  std::size_t dataset_total() const { return test_bytes + train_bytes; }
  // The least free memory in which every group, `workers` of them at a time each planning
  // its chunks within `fraction` of an equal share, fits one replica (the chunk planner's
  // own test, plan_chunk_replicas, once all datasets and the group's tables are in place).
  std::size_t needed(int workers, double fraction) const;
  // The group with the largest need at one worker.
  const GroupNeed& largest(double fraction) const;
  // The config key to reduce when `needed(1, fraction)` is too much: the part that weighs
  // most (test sets: data.n_test, training sets: data.n_train, Adam tables: train.epochs...).
  std::string dominant_key(double fraction) const;
};
SweepDeviceMemory plan_sweep_device_memory(const Sweep& sweep, std::span<const ReplicaSpec> replicas,
                                           TrainVariant variant, SharedLimits limits, int compute_major);

// The most launch groups (at most `workers`) that may train at the same time in
// `free_bytes`; 0 when not even one fits.
int groups_that_fit(const SweepDeviceMemory& plan, std::size_t free_bytes, double fraction, int workers);

// Why `plan` does not fit `free_bytes` of `device` ("GPU 0 (NVIDIA H200)"): the need, what
// it is made of, the free memory, and the key to change.
std::string device_memory_shortfall(const SweepDeviceMemory& plan, std::size_t free_bytes, double fraction,
                                    const std::string& device);

// The `--dry-run` lines: datasets, the largest group's first replica and each further one;
// with `free_bytes` > 0 also the largest chunk that fits there.
std::string describe_device_memory(const SweepDeviceMemory& plan, std::size_t free_bytes, double fraction,
                                   const std::string& device);

}  // namespace underspec::cuda_plan
