// A kernel's dynamic shared memory ceiling (cudaFuncAttributeMaxDynamicSharedMemorySize) is
// one process-wide attribute per kernel and device, while launch groups on other host
// threads may launch the same kernel with other sizes at the same time. Setting it to each
// launch's own size would let a smaller launch lower it between another thread's setting
// and launching. So it is only ever raised, under a lock: a launch always finds at least
// what it asked for.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <utility>

#include "cuda_check.hpp"

namespace underspec::cuda {

// Lets `kernel` launch with `bytes` of dynamic shared memory on the current device.
template <class Kernel>
void allow_dynamic_shared(Kernel* kernel, std::size_t bytes) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, std::size_t> allowed;  // (kernel, device) -> bytes
  int device = 0;
  US_CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard lock(mutex);
  std::size_t& ceiling = allowed[{reinterpret_cast<const void*>(kernel), device}];
  if (bytes <= ceiling) return;
  US_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  ceiling = bytes;
}

}  // namespace underspec::cuda
