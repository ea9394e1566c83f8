// The CUDA backend's device-memory estimate against what a chunk allocates, without a GPU:
// train_chunk sizes its buffers with chunk_buffers (the fused layout for the group's largest
// batch), the CublasTrainer with cublas_buffers; group_device_memory must bound both.
#include <gtest/gtest.h>

#include <vector>

#include "underspec/backends/cuda_memory.hpp"

namespace underspec::cuda_plan {
namespace {

// H200: 227 KiB per block opt-in, 228 KiB per SM, two fused MLP CTAs per SM.
const SharedLimits kH200{232448, fused_shared_budget(232448, 233472, 2)};
constexpr int kHopper = 9;

// The worst chunk of n fused replicas: every one from `cell` (its own training set, its
// test domains), the scratch laid out for the group's largest batch.
std::size_t fused_chunk_allocation(const NetShape& shape, const ExperimentConfig& cell, int group_max_batch,
                                   std::size_t n) {
  const std::size_t own = cell.data.per_replica ? n * 4 * static_cast<std::size_t>(cell.data.n_train) : 0;
  return chunk_buffers(n, own, n, eval_pairs(cell), static_cast<std::size_t>(param_count(shape)),
                       fused_launch_layout(shape, group_max_batch, kH200.mlp).global_floats,
                       plan_eval_layout(shape, kH200.per_block).global_floats)
      .bytes();
}

ExperimentConfig mlp_config() {
  ExperimentConfig c;
  c.mlp.hidden = {64, 64};  // 3-64-64-1
  return c;
}

// One launch group spans a batch-32 cell with its own training sets and a batch-256 cell:
// the scratch is laid out for 256 while the 32-cell's replicas bring their data. Taking the
// larger of the two cells' estimates missed one or the other.
TEST(CudaHostMemory, MixedBatchGroupCountsTheLargestBatchWithEveryCellsData) {
  ExperimentConfig small = mlp_config(), large = mlp_config();
  small.train.batch_size = 32;
  small.data.per_replica = true;
  small.data.n_train = 2000;
  large.train.batch_size = 256;
  const NetShape shape = net_shape(small, ModelKind::mlp);
  ASSERT_GT(fused_launch_layout(shape, 256, kH200.mlp).global_floats,
            fused_launch_layout(shape, 32, kH200.mlp).global_floats);
  const std::vector<const ExperimentConfig*> cells{&small, &large};
  const GroupMemory memory = group_device_memory(shape, cells, TrainVariant::fused, kH200, kHopper);
  for (std::size_t n : {1u, 1000u, 100000u}) {
    EXPECT_EQ(memory.bytes(n), fused_chunk_allocation(shape, small, 256, n)) << n;
    EXPECT_GE(memory.bytes(n), fused_chunk_allocation(shape, large, 256, n)) << n;
  }
}

// The warp-per-replica perceptron kernel gives each warp a quarter of the CTA's shared
// memory (less the static ReplicaState table): a batch of 1024 fits the whole budget but
// not a quarter, so the activations go to global scratch, which the estimate must count.
TEST(CudaHostMemory, WarpPerceptronsGetAQuarterOfTheSharedBudget) {
  ExperimentConfig c;
  c.train.batch_size = 1024;
  const NetShape shape = net_shape(c, ModelKind::perceptron);
  const std::size_t quarter = (kH200.mlp - kPerceptronWarpsPerBlock * sizeof(ReplicaState)) / kPerceptronWarpsPerBlock;
  const FusedLayout launched = fused_launch_layout(shape, 1024, kH200.mlp);
  EXPECT_EQ(launched.global_floats, plan_fused_layout(shape, 1024, 32, quarter).global_floats);
  EXPECT_FALSE(launched.in_shared[kActivations]);
  EXPECT_EQ(plan_fused_layout(shape, 1024, 32, kH200.mlp).global_floats, 0u);  // the whole budget: all shared
  const std::vector<const ExperimentConfig*> cells{&c};
  const GroupMemory memory = group_device_memory(shape, cells, TrainVariant::fused, kH200, kHopper);
  for (std::size_t n : {1u, 4096u, 1000000u})
    EXPECT_EQ(memory.bytes(n), fused_chunk_allocation(shape, c, 1024, n)) << n;
}

// The cuBLAS trainer's buffers: parameters, gradients, activations and errors for whole
// 1024-replica slices, moments and targets per replica, the 32 MiB workspace on Hopper.
TEST(CudaHostMemory, CublasTrainerBuffersArePaddedToSlicesWithGradientsAndWorkspace) {
  const ExperimentConfig c = mlp_config();
  const NetShape shape = net_shape(c, ModelKind::mlp);
  const std::size_t params = 4481;
  ASSERT_EQ(static_cast<std::size_t>(param_count(shape)), params);
  const int batch = c.train.batch_size;
  const CublasBuffers b = cublas_buffers(shape, batch, replica_steps(c), 1500, kHopper);
  EXPECT_EQ(b.params, 2048 * params);
  EXPECT_EQ(b.grads, 2048 * params);
  EXPECT_EQ(b.moment1, 1500 * params);
  EXPECT_EQ(b.delta_a, 2048u * static_cast<std::size_t>(batch) * 64);
  EXPECT_EQ(b.workspace_bytes, 32u << 20);
  EXPECT_EQ(cublas_workspace_bytes(8), 4u << 20);

  const std::vector<const ExperimentConfig*> cells{&c};
  const GroupMemory memory = group_device_memory(shape, cells, TrainVariant::cublas, kH200, kHopper);
  const std::size_t slice = cublas_buffers(shape, batch, replica_steps(c), 1024, kHopper).bytes() -
                            cublas_buffers(shape, batch, replica_steps(c), 0, kHopper).bytes();
  for (std::size_t n : {1u, 1023u, 1024u, 1025u, 1500u, 4096u, 100001u}) {
    const std::size_t allocated =
        chunk_buffers(n, 0, n, eval_pairs(c), params, 0, plan_eval_layout(shape, kH200.per_block).global_floats)
            .bytes() +
        cublas_buffers(shape, batch, replica_steps(c), n, kHopper).bytes();
    EXPECT_GE(memory.bytes(n), allocated) << n;
    EXPECT_LE(memory.bytes(n), allocated + slice + n) << n;  // tight: at most a slice (and rounding) more
  }
}

// 10^6 3-64-64-1 replicas with stress test sets in one chunk: every per-replica buffer,
// the evaluation's per-pair domain tables included, adds up to the estimate exactly.
TEST(CudaHostMemory, LargeChunkEstimateIsEveryBufferOfTheChunk) {
  ExperimentConfig c = mlp_config();
  c.data.stress_factors = {2.0, 4.0};  // four test domains: two evaluation launches
  ASSERT_EQ(eval_pairs(c), 2u);
  const NetShape shape = net_shape(c, ModelKind::mlp);
  const std::vector<const ExperimentConfig*> cells{&c};
  const GroupMemory memory = group_device_memory(shape, cells, TrainVariant::fused, kH200, kHopper);
  EXPECT_EQ(memory.fixed_bytes, 0u);
  EXPECT_EQ(memory.bytes(1000000), fused_chunk_allocation(shape, c, c.train.batch_size, 1000000));
  const ChunkBuffers one = chunk_buffers(1, 0, 1, 2, 4481, 0, 0);
  EXPECT_EQ(one.pair_domains, 4u);  // two launches of two domains
  EXPECT_EQ(one.sums, 4u);
}

// The same chunk on the host: downloaded parameters plus the results' copies, ~36 GB for
// 10^6 3-64-64-1 replicas; a chunk is limited to the options' host bytes instead.
TEST(CudaHostMemory, LargeChunkIsBoundedByHostMemory) {
  const ExperimentConfig c = mlp_config();
  const NetShape shape = net_shape(c, ModelKind::mlp);
  const std::size_t per_replica = host_bytes_per_replica(shape, c);
  EXPECT_GE(per_replica, 2 * 4481 * sizeof(float));
  EXPECT_GE(1000000 * per_replica, std::size_t{35000000000});  // ~36 GB
  const std::vector<const ExperimentConfig*> cells{&c};
  const std::size_t host_bytes = CudaBackendOptions{}.host_chunk_bytes;
  ASSERT_GT(host_bytes, 0u);
  const std::size_t limit = host_chunk_limit(shape, cells, host_bytes);
  EXPECT_LE(limit * per_replica, host_bytes);
  EXPECT_GT((limit + 1) * per_replica, host_bytes);
  EXPECT_LT(limit, 1000000u);
  EXPECT_EQ(host_chunk_limit(shape, cells, 1), 1u);  // a replica at a time at worst
}

TEST(CudaHostMemory, ChunkPlanningLeavesTheFixedBytesOut) {
  const GroupMemory memory{1000, 100};
  EXPECT_EQ(plan_chunk_replicas(100000, memory, 12000, 0.5, 0), 50u);  // (6000 - 1000) / 100
  EXPECT_EQ(plan_chunk_replicas(100000, memory, 12000, 0.5, 8), 8u);
  EXPECT_THROW(plan_chunk_replicas(10, memory, 2000, 0.5, 0), std::runtime_error);
}

}  // namespace
}  // namespace underspec::cuda_plan
