// The device executors of group_trainer.hpp: a phase runs on every rank of the group,
// then the group synchronises. The host compilation pass never calls run() (it is only
// reached from __global__ functions), hence the __CUDA_ARCH__ guard.
#pragma once

#include <cuda_runtime.h>

#include "underspec/backends/cuda_plan.hpp"
#include "underspec/core/group_trainer.hpp"

namespace underspec::cuda {

enum class GroupScope { cta, warp };

// A group of `size` ranks: all threads of the CTA, or one warp (several groups per CTA).
// OperandsShared: the layout put the parameters and activations in shared memory
// (cuda_plan::operands_in_shared), so every product operand is there, and the compiler is
// told so (assume_shared): ld.shared / st.shared instead of generic loads and stores.
template <GroupScope Scope, bool OperandsShared = false>
struct DeviceGroup {
  static constexpr bool kSerial = false;
  int rank;
  int size;
  template <class T>
  __host__ __device__ T* operand(T* p) const {
    if constexpr (OperandsShared) return assume_shared(p);
    return p;
  }
  template <class Phase>
  __host__ __device__ void run(Phase&& phase) const {
#if defined(__CUDA_ARCH__)
    phase(rank);
    if constexpr (Scope == GroupScope::cta)
      __syncthreads();
    else
      __syncwarp();
#else
    static_cast<void>(phase);
#endif
  }
};

template <bool OperandsShared = false>
using CtaGroup = DeviceGroup<GroupScope::cta, OperandsShared>;
template <bool OperandsShared = false>
using WarpGroup = DeviceGroup<GroupScope::warp, OperandsShared>;

}  // namespace underspec::cuda
