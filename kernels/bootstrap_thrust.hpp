// The bootstrap's resamples with Thrust: one thrust::transform over resample indices whose
// functor calls the US_HD resample_statistic (bootstrap.hpp), the very function the host's
// reference runs, so each value is the CPU's bit for bit (-ffp-contract=off / --fmad=false
// everywhere; no fast-math). Only the values are computed here: the host selects the
// percentiles from them (percentile_interval), so the intervals are the CPU's by construction.
//
// Device-system neutral: cuda_bootstrap.cu compiles it for CUDA (thrust::cuda::par on a
// stream, device memory) and tests/thrust compiles it as host C++ with
// THRUST_DEVICE_SYSTEM_CPP (thrust::cpp::par, host memory), so the CPU tests exercise the
// code the GPU runs, chunk loop included.
#pragma once

#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "underspec/core/hd.hpp"
#include "underspec/core/rng.hpp"
#include "underspec/stats/bootstrap.hpp"

namespace underspec::bootstrap_thrust {

// Scratch per resample: counts (nx + ny ints) and, for Spearman only, ranks (nx + ny doubles).
inline std::size_t scratch_bytes_per_resample(BootstrapStatistic statistic, int nx, int ny) {
  const auto values = static_cast<std::size_t>(nx) + static_cast<std::size_t>(ny);
  return values * (sizeof(int) + (statistic == BootstrapStatistic::spearman ? sizeof(double) : 0));
}

// Resamples evaluated at once: as many as `budget_bytes` of scratch holds, within
// [1, kBootstrapResamples]. One resample over budget still runs alone (its allocation reports
// it if the device cannot hold it).
inline std::size_t chunk_resamples(std::size_t per_resample_bytes, std::size_t budget_bytes) {
  const std::size_t fit = per_resample_bytes == 0 ? kBootstrapResamples : budget_bytes / per_resample_bytes;
  return std::clamp<std::size_t>(fit, 1, kBootstrapResamples);
}

// Resample `resample` of one chunk starting at `first`: its scratch is slot (resample - first)
// of the chunk's, `stride` values apart.
struct ResampleFunctor {
  BootstrapStatistic statistic;
  BootstrapData data;  // pointers into the executing system's memory
  PhiloxKey key;
  int* counts;
  double* ranks;  // null unless Spearman
  std::size_t stride;
  std::uint32_t first;

  US_HD double operator()(std::uint32_t resample) const {
    const std::size_t slot = resample - first;
    const BootstrapScratch scratch{counts + slot * stride, ranks ? ranks + slot * stride : nullptr};
    return resample_statistic(statistic, data, key, resample, scratch);
  }
};

// values[b] for b in [0, kBootstrapResamples), `chunk` resamples per transform; `counts` holds
// chunk * (nx + ny) ints and `ranks` (Spearman) chunk * (nx + ny) doubles. `stop` is read
// before each chunk; returns how many resamples were computed (the rest are left untouched).
// A chunk reuses the previous one's scratch: the policy must run them in order (one stream,
// as thrust::cuda::par.on(stream), which also waits for each).
template <class Policy>
std::uint32_t transform_resamples(const Policy& policy, BootstrapStatistic statistic, const BootstrapData& data,
                                  PhiloxKey key, int* counts, double* ranks, std::size_t chunk, double* values,
                                  const std::atomic<bool>* stop) {
  const auto resamples = static_cast<std::uint32_t>(kBootstrapResamples);
  const auto step = static_cast<std::uint32_t>(std::clamp<std::size_t>(chunk, 1, resamples));
  const ResampleFunctor base{
      statistic, data, key, counts, ranks, static_cast<std::size_t>(data.nx) + static_cast<std::size_t>(data.ny), 0u};
  for (std::uint32_t first = 0; first < resamples; first += step) {
    if (stop && stop->load(std::memory_order_relaxed)) return first;
    const std::uint32_t last = std::min(resamples, first + step);
    ResampleFunctor f = base;
    f.first = first;
    thrust::transform(policy, thrust::counting_iterator<std::uint32_t>(first),
                      thrust::counting_iterator<std::uint32_t>(last), values + first, f);
  }
  return resamples;
}

}  // namespace underspec::bootstrap_thrust
