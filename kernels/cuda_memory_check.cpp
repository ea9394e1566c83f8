// Device queries and the device-memory check before a run (cuda_memory_check.hpp).
#include "cuda_memory_check.hpp"

#include <cuda_runtime.h>

#include "cuda_check.hpp"
#include "underspec/backends/backend.hpp"

namespace underspec {
namespace cuda {

using namespace cuda_plan;

DeviceOffer query_device(int device, const CudaBackendOptions& options) {
  US_CUDA_CHECK(cudaSetDevice(device));
  int per_block = 0, per_sm = 0, major = 0;
  US_CUDA_CHECK(cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  US_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  US_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  cudaDeviceProp properties{};
  US_CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
  DeviceOffer offer;
  const auto block = static_cast<std::size_t>(per_block);
  offer.shared =
      SharedLimits{block, fused_shared_budget(block, static_cast<std::size_t>(per_sm), options.fused_ctas_per_sm)};
  offer.compute_major = major;
  US_CUDA_CHECK(cudaMemGetInfo(&offer.free_bytes, &offer.total_bytes));
  offer.label = "GPU " + std::to_string(device) + " (" + properties.name + ")";
  return offer;
}

DeviceOffer reference_sm90_device(const CudaBackendOptions& options) {
  // An H200's: 227 KiB per block opt-in, 228 KiB per SM.
  constexpr std::size_t kPerBlock = 232448, kPerSm = 233472;
  DeviceOffer offer;
  offer.shared = SharedLimits{kPerBlock, fused_shared_budget(kPerBlock, kPerSm, options.fused_ctas_per_sm)};
  offer.compute_major = 9;
  offer.label = "an sm_90 GPU";
  return offer;
}

SweepDeviceMemory plan_on(const DeviceOffer& offer, const CudaBackendOptions& options, const Sweep& sweep,
                          std::span<const ReplicaSpec> replicas) {
  return plan_sweep_device_memory(sweep, replicas, options.variant, offer.shared, offer.compute_major);
}

}  // namespace cuda
}  // namespace underspec
