// Fused training kernels (see train_fused.hpp). MLPs: one CTA per replica, the phase
// structure CPU-tested via HostGroup. Perceptrons: one lane per replica
// (perceptron_lane.hpp, CPU-tested against the CPU backend bit for bit).
#include "cuda_check.hpp"
#include "device_groups.cuh"
#include "dynamic_shared.hpp"
#include "train_fused.hpp"
#include "underspec/core/perceptron_lane.hpp"

namespace underspec::cuda {
namespace {

constexpr int kTile = 4;                                             // 4x4 output tile per thread and product
constexpr int kWarpsPerBlock = cuda_plan::kPerceptronWarpsPerBlock;  // perceptron: replicas per CTA
constexpr int kLaneThreads = 128;                                    // perceptron: replicas (lanes) per CTA
// <= 64 registers; 8 x 25.5 KiB of lane scratch also fit an SM's shared memory (228 KiB)
constexpr int kLaneCtasPerSm = 8;

constexpr int kMlpMaxThreads = 256;  // fused_threads' ceiling
constexpr int kMlpCtasPerSm = 2;     // registers capped (<= 128) so two CTAs fit an SM

// OperandsShared: cuda_plan::operands_in_shared(a.layout), so the products load and store
// shared memory as such (DeviceGroup); otherwise through generic pointers.
template <bool OperandsShared>
__global__ void __launch_bounds__(kMlpMaxThreads, kMlpCtasPerSm) fused_mlp_kernel(FusedTrainLaunch a) {
  extern __shared__ float shared[];
  const int replica = static_cast<int>(blockIdx.x);
  if (replica >= a.n_replicas) return;
  const ReplicaJob job = a.jobs[replica];
  const DatasetView data = a.datasets[job.dataset];
  float* global = a.scratch ? a.scratch + static_cast<std::size_t>(replica) * a.layout.global_floats : nullptr;
  // In shared memory: the trainer indexes its pointer tables at run time (see fill_replica_state).
  __shared__ ReplicaState st;
  if (threadIdx.x == 0) cuda_plan::fill_replica_state(a.layout, a.shape, shared, global, st);
  __syncthreads();
  const CtaGroup<OperandsShared> group{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x)};
  group_train_replica<kTile, kTile>(group, a.shape, a.runs[job.run], job, data, st);
  const int n_params = param_count(a.shape);
  float* out = a.params_out + static_cast<std::size_t>(replica) * n_params;
  for (int i = group.rank; i < n_params; i += group.size) out[i] = st.params[i];
}

// One warp per replica (the group trainer with 32 ranks): fewer sequential steps per sample
// than a lane, so faster while too few replicas exist to fill the GPU with lanes.
// OperandsShared as in fused_mlp_kernel.
template <bool OperandsShared>
__global__ void warp_perceptron_kernel(FusedTrainLaunch a) {
  extern __shared__ float shared[];
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int replica = static_cast<int>(blockIdx.x) * kWarpsPerBlock + warp;
  if (replica >= a.n_replicas) return;  // whole warps leave; groups never span warps
  const ReplicaJob job = a.jobs[replica];
  const DatasetView data = a.datasets[job.dataset];
  float* global = a.scratch ? a.scratch + static_cast<std::size_t>(replica) * a.layout.global_floats : nullptr;
  __shared__ ReplicaState states[kWarpsPerBlock];  // as in fused_mlp_kernel
  ReplicaState& st = states[warp];
  if (threadIdx.x % 32 == 0)
    cuda_plan::fill_replica_state(a.layout, a.shape, shared + static_cast<std::size_t>(warp) * a.layout.shared_floats,
                                  global, st);
  __syncwarp();
  const WarpGroup<OperandsShared> group{static_cast<int>(threadIdx.x) % 32, 32};
  group_train_replica<kTile, kTile>(group, a.shape, a.runs[job.run], job, data, st);
  const int n_params = param_count(a.shape);
  float* out = a.params_out + static_cast<std::size_t>(replica) * n_params;
  for (int i = group.rank; i < n_params; i += group.size) out[i] = st.params[i];
}

// One lane per replica: weights and gradients in registers, the rest in the lane's column
// of shared memory (perceptron_lane.hpp); no barriers.
__global__ void __launch_bounds__(kLaneThreads, kLaneCtasPerSm) lane_perceptron_kernel(FusedTrainLaunch a) {
  const int replica = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (replica >= a.n_replicas) return;
  const ReplicaJob job = a.jobs[replica];
  __shared__ std::uint32_t scratch[kLaneScratchWords * kLaneThreads];  // lane-major: no bank conflicts
  lane_train_perceptron(a.shape, a.runs[job.run], job, a.datasets[job.dataset],
                        a.params_out + static_cast<std::size_t>(replica) * 4, scratch + threadIdx.x, kLaneThreads);
}

template <class Kernel>
void launch_with_shared(Kernel kernel, const char* name, unsigned blocks, unsigned threads, std::size_t shared_bytes,
                        const FusedTrainLaunch& a, cudaStream_t stream) {
  allow_dynamic_shared(kernel, shared_bytes);
  kernel<<<blocks, threads, shared_bytes, stream>>>(a);
  US_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

void launch_fused_train(const FusedTrainLaunch& a, cudaStream_t stream) {
  if (a.n_replicas <= 0) return;
  const auto n = static_cast<unsigned>(a.n_replicas);
  const std::size_t shared_bytes = a.layout.shared_floats * sizeof(float);
  if (a.shape.n_layers == 1) {
    if (cuda_plan::perceptron_in_lanes(a.n_replicas)) {
      lane_perceptron_kernel<<<(n + kLaneThreads - 1) / kLaneThreads, kLaneThreads, 0, stream>>>(a);
      US_CUDA_CHECK_LAUNCH("lane_perceptron_kernel");
    } else {
      const unsigned blocks = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
      if (a.shared_operands && cuda_plan::operands_in_shared(a.layout))
        launch_with_shared(warp_perceptron_kernel<true>, "warp_perceptron_kernel<true>", blocks, 32 * kWarpsPerBlock,
                           shared_bytes * kWarpsPerBlock, a, stream);
      else
        launch_with_shared(warp_perceptron_kernel<false>, "warp_perceptron_kernel<false>", blocks, 32 * kWarpsPerBlock,
                           shared_bytes * kWarpsPerBlock, a, stream);
    }
    return;
  }
  const auto threads = static_cast<unsigned>(a.layout.threads);
  if (a.shared_operands && cuda_plan::operands_in_shared(a.layout))
    launch_with_shared(fused_mlp_kernel<true>, "fused_mlp_kernel<true>", n, threads, shared_bytes, a, stream);
  else
    launch_with_shared(fused_mlp_kernel<false>, "fused_mlp_kernel<false>", n, threads, shared_bytes, a, stream);
}

}  // namespace underspec::cuda
