// What a device offers a run (shared-memory limits, compute capability, free memory), and
// the check, before anything is written, that a run's datasets and launch groups fit it
// (cuda_sweep_memory.hpp plans them).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "underspec/backends/cuda_sweep_memory.hpp"

namespace underspec::cuda {

struct DeviceOffer {
  cuda_plan::SharedLimits shared;  // per block (opt-in) and per fused MLP replica
  int compute_major = 0;
  std::size_t free_bytes = 0, total_bytes = 0;
  std::string label;  // "GPU 0 (NVIDIA H200)"
};
// Makes `device` current in the calling thread and asks it.
DeviceOffer query_device(int device, const cuda_plan::CudaBackendOptions& options);

// An sm_90 GPU's limits (an H200's), for plans made where there is no GPU; no free memory.
DeviceOffer reference_sm90_device(const cuda_plan::CudaBackendOptions& options);

// The plan of `replicas` on `offer`.
cuda_plan::SweepDeviceMemory plan_on(const DeviceOffer& offer, const cuda_plan::CudaBackendOptions& options,
                                     const Sweep& sweep, std::span<const ReplicaSpec> replicas);

}  // namespace underspec::cuda
