// The GPU's bootstrap resamples (defined by the CUDA library, kernels/cuda_bootstrap.cu), for
// the stats library's device hook (underspec/stats/bootstrap_device.hpp).
#pragma once

#include <atomic>
#include <cstddef>

#include "underspec/stats/bootstrap_device.hpp"

namespace underspec {

// Groups of at least this many values (nx + ny) go to the GPU when a run trains on the CUDA
// backend. The CPU spends ~8 ns per value and resample and thread (4000 * n * 8 ns: ~65 ms a
// thread at n = 2048; README's 10^5-replica timing); the GPU pays a fixed cost per group (six
// allocations, uploads, a launch per chunk, the download: ~1 ms) and, running one resample per
// thread (4000 threads, about a warp per SM: latency-bound), a few memory round trips per
// value. Below ~2000 values the fixed cost and the mutex's queueing outweigh what it saves.
// An estimate, not a measurement: the CUDA path has not run on a GPU yet. Both sides give the
// same bits, so the threshold decides speed only.
inline constexpr std::size_t kCudaBootstrapMinValues = 2048;

// Device scratch of one call is bounded by min(free device memory / 2, this).
inline constexpr std::size_t kCudaBootstrapMaxScratchBytes = std::size_t{1} << 30;

// The kBootstrapResamples values of resample_statistic on GPU `device` (-1: the calling
// thread's current device), chunked so the scratch stays within
// min(free / 2, max_scratch_bytes); NaN past a stop. Calls are serialised by a mutex
// (OpenMP threads may call it at once: they take turns on the GPU). Throws CudaError.
void cuda_bootstrap_resamples(int device, BootstrapStatistic statistic, const BootstrapData& data, PhiloxKey key,
                              const std::atomic<bool>* stop, double* out,
                              std::size_t max_scratch_bytes = kCudaBootstrapMaxScratchBytes);

// The hook for ScopedBootstrapDevice: cuda_bootstrap_resamples on `device` for groups of at
// least kCudaBootstrapMinValues values.
BootstrapDevice cuda_bootstrap_device(int device);

}  // namespace underspec
