// The hook through which a device (the CUDA library) evaluates a group's bootstrap resamples.
//
// The stats library has no link dependency on CUDA: the CUDA library hands it a function
// (cuda_bootstrap_device(), include/underspec/backends/cuda_bootstrap.hpp) and `underspec run`
// installs it for the run when the run trains on the CUDA backend. The device computes the
// same US_HD resample_statistic per resample, so every value, and the percentile interval the
// host then selects from them (percentile_interval, unchanged), is bit-identical to the
// CPU's: which side computes a group is a question of speed only.
#pragma once

#include <atomic>
#include <cstddef>

#include "underspec/core/rng.hpp"
#include "underspec/stats/bootstrap.hpp"

namespace underspec {

// Writes the kBootstrapResamples values of resample_statistic(statistic, data, key, b, .) to
// out[b] (data: host pointers, sizes allowing the statistic); once `stop` reads true the
// resamples left are NaN. Throws on a device error. Must be safe to call from several
// threads at once (summarize_groups calls it from OpenMP threads).
using BootstrapDeviceResamples = void (*)(int device, BootstrapStatistic statistic, const BootstrapData& data,
                                          PhiloxKey key, const std::atomic<bool>* stop, double* out);

struct BootstrapDevice {
  BootstrapDeviceResamples resamples = nullptr;
  int device = 0;  // the device ordinal handed to `resamples`
  // Groups of at least this many values (nx + ny) go to the device under BootstrapPath::lanes
  // (the default); smaller ones stay on the CPU, where they are cheaper than a device round trip.
  std::size_t min_values = 0;
};

// The installed device (resamples == nullptr: none, the default).
BootstrapDevice bootstrap_device();

// Installs `device` for the scope's lifetime (the previous one afterwards). Not meant to
// overlap across threads: a run installs it once, before its statistics.
class ScopedBootstrapDevice {
 public:
  explicit ScopedBootstrapDevice(const BootstrapDevice& device);
  ~ScopedBootstrapDevice();
  ScopedBootstrapDevice(const ScopedBootstrapDevice&) = delete;
  ScopedBootstrapDevice& operator=(const ScopedBootstrapDevice&) = delete;

 private:
  BootstrapDevice previous_;
};

}  // namespace underspec
