// Evaluation kernel (see evaluate.hpp).
#include "cuda_check.hpp"
#include "device_groups.cuh"
#include "dynamic_shared.hpp"
#include "evaluate.hpp"

namespace underspec::cuda {
namespace {

constexpr int kTile = 4;

// At most 256 threads (plan_eval_layout); registers capped so that two CTAs share an SM.
// OperandsShared: cuda_plan::operands_in_shared(a.layout) (see DeviceGroup).
template <bool OperandsShared>
__global__ void __launch_bounds__(256, 2) evaluate_kernel(EvaluateLaunch a) {
  extern __shared__ double shared_doubles[];  // partials first: 8-byte aligned
  const int replica = static_cast<int>(blockIdx.x), domain = static_cast<int>(blockIdx.y);
  if (replica >= a.n_replicas) return;
  const cuda_plan::EvalLayout& layout = a.layout;
  const CtaGroup<OperandsShared> group{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x)};
  double* partials = shared_doubles;
  float* shared = reinterpret_cast<float*>(shared_doubles + kEvalLanes);
  float* global = a.scratch ? a.scratch + (static_cast<std::size_t>(replica) * 2 + static_cast<std::size_t>(domain)) *
                                              layout.global_floats
                            : nullptr;
  float* act = layout.activations_in_shared ? shared : global;
  const int n_params = param_count(a.shape);
  const float* params = a.params + static_cast<std::size_t>(replica) * n_params;
  if (layout.params_in_shared) {
    float* staged = shared + (layout.activations_in_shared ? layout.input_floats + 2 * layout.pingpong_floats : 0);
    group.run([&](int rank) {
      for (int i = rank; i < n_params; i += group.size) staged[i] = params[i];
    });
    params = staged;
  }
  const EvalState st{params, act, act + layout.input_floats, act + layout.input_floats + layout.pingpong_floats,
                     partials};
  const double sum = group_sum_squares<kTile, kTile>(
      group, a.shape, a.domains[static_cast<std::size_t>(replica) * 2 + static_cast<std::size_t>(domain)], layout.rows,
      st);
  if (group.rank == 0) a.sums[static_cast<std::size_t>(replica) * 2 + static_cast<std::size_t>(domain)] = sum;
}

}  // namespace

void launch_evaluate(const EvaluateLaunch& a, cudaStream_t stream) {
  if (a.n_replicas <= 0) return;
  const dim3 grid(static_cast<unsigned>(a.n_replicas), 2);
  const auto bytes = a.layout.shared_bytes;
  const auto kernel =
      a.shared_operands && cuda_plan::operands_in_shared(a.layout) ? evaluate_kernel<true> : evaluate_kernel<false>;
  allow_dynamic_shared(kernel, bytes);
  kernel<<<grid, static_cast<unsigned>(a.layout.threads), bytes, stream>>>(a);
  US_CUDA_CHECK_LAUNCH("evaluate_kernel");
}

}  // namespace underspec::cuda
