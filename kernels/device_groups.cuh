// The device executors of cuda_group_trainer.hpp: a phase runs on every rank of the group,
// then the group synchronises. The host compilation pass never calls run() (it is only
// reached from __global__ functions), hence the __CUDA_ARCH__ guard.
#pragma once

#include <cuda_runtime.h>

#include "underspec/cuda_group_trainer.hpp"
#include "underspec/cuda_plan.hpp"

namespace underspec::cuda {

// All threads of the CTA form one group.
struct CtaGroup {
  int rank;
  int size;
  template <class Phase>
  __host__ __device__ void run(Phase&& phase) const {
#if defined(__CUDA_ARCH__)
    phase(rank);
    __syncthreads();
#else
    static_cast<void>(phase);
#endif
  }
};

// One warp forms a group (several independent groups per CTA).
struct WarpGroup {
  int rank;
  int size;
  template <class Phase>
  __host__ __device__ void run(Phase&& phase) const {
#if defined(__CUDA_ARCH__)
    phase(rank);
    __syncwarp();
#else
    static_cast<void>(phase);
#endif
  }
};

}  // namespace underspec::cuda
