// The device memory a launch group of the CUDA backend allocates, free of CUDA headers so
// that the CPU test suite checks it. The backend sizes its buffers with these functions
// (fused_launch_layout, plan_eval_layout, cublas_buffers, chunk_buffers) and plans its
// chunks with group_device_memory, which adds up the same sizes: the estimate is an upper
// bound of what a chunk allocates because it is computed from the same numbers.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "underspec/backends/cuda_plan.hpp"

namespace underspec::cuda_plan {

// Perceptron replicas (warps) per CTA of the warp-per-replica kernel: each gets a quarter of
// the CTA's shared memory.
constexpr int kPerceptronWarpsPerBlock = 4;

// The layout the fused training launch uses: the MLP kernel's CTA gets `mlp_shared_bytes`,
// a perceptron warp a kPerceptronWarpsPerBlock-th of it; the kernels' static ReplicaState
// tables come out of the same per-block limit.
FusedLayout fused_launch_layout(const NetShape& shape, int batch_size, std::size_t mlp_shared_bytes);

// The cuBLAS variant issues every batched product in slices of exactly this many replicas
// (train_cublas.cu says why); its replica-indexed buffers are padded to whole slices.
constexpr std::size_t kCublasSliceReplicas = 1024;
std::size_t cublas_padded_replicas(std::size_t replicas);

// The cuBLAS workspace NVIDIA recommends (cublasSetWorkspace): 32 MiB from Hopper on, 4 MiB before.
std::size_t cublas_workspace_bytes(int compute_capability_major);

// Every buffer a CublasTrainer allocates for `max_replicas` (floats, except the bytes).
struct CublasBuffers {
  std::size_t params = 0, grads = 0, moment1 = 0, moment2 = 0, targets = 0, delta_a = 0, delta_b = 0;
  std::vector<std::size_t> act;  // one per layer boundary
  std::size_t workspace_bytes = 0, steps_bytes = 0, cursor_bytes = 0;
  std::size_t bytes() const;
};
CublasBuffers cublas_buffers(const NetShape& shape, int batch_size, std::size_t steps, std::size_t max_replicas,
                             int compute_capability_major);

// The per-chunk buffers of train_chunk, in elements, for `replicas` replicas of which
// `own_sets` bring their own training set of `own_floats` floats in all; `views` dataset
// views, `pairs` evaluation launches (two test domains each); `scratch_floats` and
// `eval_floats` per replica.
struct ChunkBuffers {
  std::size_t own_data = 0, views = 0, jobs = 0, params = 0, scratch = 0, eval_scratch = 0, sums = 0, pair_domains = 0;
  std::size_t bytes() const;
};
ChunkBuffers chunk_buffers(std::size_t replicas, std::size_t own_floats, std::size_t views, std::size_t pairs,
                           std::size_t n_params, std::size_t scratch_floats, std::size_t eval_floats);

// The test-domain pairs a cell's replicas are evaluated on (two domains per launch).
std::size_t eval_pairs(const ExperimentConfig& config);

// The shared memory limits a group is planned within: per block (evaluation) and per fused
// MLP replica (fused_shared_budget).
struct SharedLimits {
  std::size_t per_block = 0;
  std::size_t mlp = 0;
};

// What a chunk of n replicas of a group allocates at most: fixed_bytes + n * per_replica_bytes.
struct GroupMemory {
  std::size_t fixed_bytes = 0;
  std::size_t per_replica_bytes = 0;
  std::size_t bytes(std::size_t replicas) const { return fixed_bytes + replicas * per_replica_bytes; }
};

// The device memory of a chunk of the launch group of `shape` over the grid cells `cells`
// (their configs): the fused layout is planned for the group's largest batch, and every
// other per-replica need is the largest over the cells. For the cuBLAS variant (an MLP
// group holds one cell) the trainer's buffers are counted with up to a slice of padding.
GroupMemory group_device_memory(const NetShape& shape, std::span<const ExperimentConfig* const> cells,
                                TrainVariant variant, SharedLimits limits, int compute_capability_major);

// Host bytes a chunk holds per replica of `shape` from cell `config` until its results reach
// the sink: the downloaded parameters and evaluation sums, and the result (with its own copy
// of the parameters). Not counted: the allocator's bookkeeping of the result's vectors.
std::size_t host_bytes_per_replica(const NetShape& shape, const ExperimentConfig& config);

// The most replicas of a chunk whose host copies fit `host_bytes` (at least one), over the
// group's cells.
std::size_t host_chunk_limit(const NetShape& shape, std::span<const ExperimentConfig* const> cells,
                             std::size_t host_bytes);

// Replicas per chunk: limited by the option (if > 0) and by fraction * free bytes.
std::size_t plan_chunk_replicas(std::size_t n_replicas, const GroupMemory& memory, std::size_t free_bytes,
                                double fraction, std::size_t max_chunk);

}  // namespace underspec::cuda_plan
