// The CUDA backend's device memory, buffer by buffer (see cuda_memory.hpp); no CUDA calls, CPU-tested.
#include "underspec/backends/cuda_memory.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cublas_steps.hpp"
#include "underspec/sweep/dataset.hpp"

namespace underspec::cuda_plan {

FusedLayout fused_launch_layout(const NetShape& shape, int batch_size, std::size_t mlp_shared_bytes) {
  const auto less_static = [&](std::size_t states) {
    const std::size_t bytes = states * sizeof(ReplicaState);
    return mlp_shared_bytes > bytes ? mlp_shared_bytes - bytes : 0;
  };
  if (shape.n_layers == 1)
    return plan_fused_layout(shape, batch_size, 32, less_static(kPerceptronWarpsPerBlock) / kPerceptronWarpsPerBlock);
  return plan_fused_layout(shape, batch_size, fused_threads(shape, batch_size), less_static(1));
}

std::size_t cublas_padded_replicas(std::size_t replicas) {
  return (replicas + kCublasSliceReplicas - 1) / kCublasSliceReplicas * kCublasSliceReplicas;
}

std::size_t cublas_workspace_bytes(int compute_capability_major) {
  return std::size_t{compute_capability_major >= 9 ? 32u : 4u} << 20;
}

std::size_t CublasBuffers::bytes() const {
  const std::size_t floats =
      std::accumulate(act.begin(), act.end(), params + grads + moment1 + moment2 + targets + delta_a + delta_b);
  return floats * sizeof(float) + workspace_bytes + steps_bytes + cursor_bytes;
}

CublasBuffers cublas_buffers(const NetShape& shape, int batch_size, std::size_t steps, std::size_t max_replicas,
                             int compute_capability_major) {
  CublasBuffers b;
  b.workspace_bytes = cublas_workspace_bytes(compute_capability_major);
  b.steps_bytes = steps * sizeof(CublasStep);
  b.cursor_bytes = 2 * sizeof(std::uint32_t);
  if (max_replicas == 0) return b;
  const std::size_t padded = cublas_padded_replicas(max_replicas);
  const auto cap = static_cast<std::size_t>(batch_size);
  const auto params = static_cast<std::size_t>(param_count(shape));
  const std::size_t delta_stride = cap * static_cast<std::size_t>(max_width(shape));
  b.params = b.grads = padded * params;  // the products read and write whole slices
  b.moment1 = b.moment2 = max_replicas * params;
  for (int l = 0; l <= shape.n_layers; ++l) b.act.push_back(padded * cap * static_cast<std::size_t>(shape.width[l]));
  b.targets = max_replicas * cap;
  b.delta_a = b.delta_b = padded * delta_stride;
  return b;
}

std::size_t ChunkBuffers::bytes() const {
  return (own_data + params + scratch + eval_scratch) * sizeof(float) + (views + pair_domains) * sizeof(DatasetView) +
         jobs * sizeof(ReplicaJob) + sums * sizeof(double);
}

ChunkBuffers chunk_buffers(std::size_t replicas, std::size_t own_floats, std::size_t views, std::size_t pairs,
                           std::size_t n_params, std::size_t scratch_floats, std::size_t eval_floats) {
  ChunkBuffers b;
  b.own_data = own_floats;
  b.views = views;
  b.jobs = replicas;
  b.params = replicas * n_params;
  b.scratch = replicas * scratch_floats;
  b.eval_scratch = replicas * 2 * eval_floats;  // two domains per launch
  b.sums = pairs * replicas * 2;
  b.pair_domains = pairs * replicas * 2;
  return b;
}

std::size_t eval_pairs(const ExperimentConfig& config) { return (test_domains(config).size() + 1) / 2; }

GroupMemory group_device_memory(const NetShape& shape, std::span<const ExperimentConfig* const> cells,
                                TrainVariant variant, SharedLimits limits, int compute_capability_major) {
  if (cells.empty()) throw std::invalid_argument("group_device_memory: a launch group has at least one cell");
  int max_batch = 1;
  std::size_t own_floats = 0, pairs = 1;
  for (const ExperimentConfig* c : cells) {
    max_batch = std::max(max_batch, c->train.batch_size);
    if (c->data.per_replica) own_floats = std::max(own_floats, 4 * static_cast<std::size_t>(c->data.n_train));
    pairs = std::max(pairs, eval_pairs(*c));
  }
  const auto n_params = static_cast<std::size_t>(param_count(shape));
  const bool use_cublas = shape.n_layers > 1 && variant == TrainVariant::cublas;
  const std::size_t scratch = use_cublas ? 0 : fused_launch_layout(shape, max_batch, limits.mlp).global_floats;
  const std::size_t eval = plan_eval_layout(shape, limits.per_block).global_floats;
  // One replica: a shared training set's view is used by at least one replica of the chunk,
  // so there are at most as many views as replicas.
  GroupMemory memory;
  memory.per_replica_bytes = chunk_buffers(1, own_floats, 1, pairs, n_params, scratch, eval).bytes();
  if (use_cublas) {
    const ExperimentConfig& c = *cells.front();
    // The trainer grows by one slice per kCublasSliceReplicas replicas: one slice's worth
    // of padding plus the exact per-replica share bound every chunk size.
    const std::size_t steps = replica_steps(c);
    const CublasBuffers none = cublas_buffers(shape, c.train.batch_size, steps, 0, compute_capability_major);
    const CublasBuffers slice =
        cublas_buffers(shape, c.train.batch_size, steps, kCublasSliceReplicas, compute_capability_major);
    const std::size_t slice_bytes = slice.bytes() - none.bytes();
    memory.fixed_bytes = none.bytes() + slice_bytes;
    memory.per_replica_bytes += (slice_bytes + kCublasSliceReplicas - 1) / kCublasSliceReplicas;
  }
  return memory;
}

std::size_t host_bytes_per_replica(const NetShape& shape, const ExperimentConfig& config) {
  const auto params_bytes = static_cast<std::size_t>(param_count(shape)) * sizeof(float);
  const std::size_t sums_bytes = eval_pairs(config) * 2 * sizeof(double);
  const std::size_t result_bytes =
      sizeof(ReplicaResult) + params_bytes + config.data.stress_factors.size() * sizeof(double);
  return params_bytes + sums_bytes + result_bytes;
}

std::size_t host_chunk_limit(const NetShape& shape, std::span<const ExperimentConfig* const> cells,
                             std::size_t host_bytes) {
  std::size_t per_replica = 1;
  for (const ExperimentConfig* c : cells) per_replica = std::max(per_replica, host_bytes_per_replica(shape, *c));
  return std::max<std::size_t>(1, host_bytes / per_replica);
}

std::size_t plan_chunk_replicas(std::size_t n_replicas, const GroupMemory& memory, std::size_t free_bytes,
                                double fraction, std::size_t max_chunk) {
  if (n_replicas == 0) return 0;
  const auto budget = static_cast<std::size_t>(static_cast<double>(free_bytes) * fraction);
  if (memory.fixed_bytes + memory.per_replica_bytes > budget)
    throw std::runtime_error("one replica needs " + std::to_string(memory.bytes(1)) + " bytes of device memory; only " +
                             std::to_string(budget) + " are available");
  return plan_chunk_replicas(n_replicas, memory.per_replica_bytes, budget - memory.fixed_bytes, 1.0, max_chunk);
}

}  // namespace underspec::cuda_plan
