// The CUDA backend's host-side logic, which runs without a GPU: options, the Adam table,
// layouts, chunk planning, grouping, the error type, and the no-device path.
#include <curand.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cuda_backend.hpp"
#include "underspec/backends/cuda_error.hpp"
#include "underspec/backends/cuda_memory.hpp"
#include "underspec/backends/cuda_plan.hpp"
#include "underspec/core/rng.hpp"

namespace underspec {
namespace {

using namespace cuda_plan;

NetShape mlp_shape(std::vector<int> hidden) {
  ExperimentConfig c;
  c.mlp.hidden = std::move(hidden);
  return net_shape(c, ModelKind::mlp);
}

TEST(CudaHostPlan, VariantNamesRoundTrip) {
  for (TrainVariant v : {TrainVariant::fused, TrainVariant::cublas}) {
    TrainVariant parsed = TrainVariant::cublas;
    ASSERT_TRUE(parse_train_variant(to_string(v), parsed));
    EXPECT_EQ(parsed, v);
  }
  TrainVariant out = TrainVariant::fused;
  EXPECT_FALSE(parse_train_variant("tensorcore", out));
}

// H100/H200: 227 KiB per block opt-in, 228 KiB per SM; two CTAs get 113 KiB each, which
// pushes a 3-64-64-1 replica's gradients and Adam moments to global memory.
TEST(CudaHostPlan, FusedSharedBudgetFitsTwoCtasPerSm) {
  EXPECT_EQ(fused_shared_budget(232448, 233472, 1), 232448u);
  EXPECT_EQ(fused_shared_budget(232448, 233472, 2), 233472u / 2 - 1024);
  EXPECT_EQ(fused_shared_budget(48 * 1024, 233472, 2), 48u * 1024);  // never above the block limit
  ExperimentConfig c;
  const FusedLayout two =
      plan_fused_layout(net_shape(c, ModelKind::mlp), 64, 256, fused_shared_budget(232448, 233472, 2));
  EXPECT_LE(two.shared_floats * sizeof(float), 233472u / 2 - 1024);
  EXPECT_GT(two.global_floats, 0u);
  CudaBackendOptions options;
  EXPECT_EQ(options.fused_ctas_per_sm, 2);
  ctas_per_sm_from_env("1", options);
  EXPECT_EQ(options.fused_ctas_per_sm, 1);
  ctas_per_sm_from_env(nullptr, options);
  EXPECT_EQ(options.fused_ctas_per_sm, 1);
  EXPECT_THROW(ctas_per_sm_from_env("3", options), std::invalid_argument);
}

TEST(CudaHostPlan, ConcurrentGroupsFromEnvironment) {
  CudaBackendOptions options;
  EXPECT_EQ(options.concurrent_groups, kMaxConcurrentGroups);
  concurrent_groups_from_env("1", options);
  EXPECT_EQ(options.concurrent_groups, 1);
  concurrent_groups_from_env("", options);
  EXPECT_EQ(options.concurrent_groups, 1);
  concurrent_groups_from_env(std::to_string(kMaxConcurrentGroups).c_str(), options);
  EXPECT_EQ(options.concurrent_groups, kMaxConcurrentGroups);
  for (const char* bad : {"0", "-1", "2x", " 2", "99"}) {
    try {
      concurrent_groups_from_env(bad, options);
      FAIL() << bad;
    } catch (const std::invalid_argument& e) {  // names the variable, the value and the range
      const std::string what = e.what();
      EXPECT_NE(what.find("UNDERSPEC_CUDA_CONCURRENT_GROUPS"), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("expected 1 to 4"), std::string::npos) << what;
    }
  }
  EXPECT_EQ(options.concurrent_groups, kMaxConcurrentGroups);  // a bad value changes nothing
}

TEST(CudaHostPlan, SharedOperandsFromEnvironment) {
  CudaBackendOptions options;
  EXPECT_TRUE(options.shared_operands);
  shared_operands_from_env("0", options);
  EXPECT_FALSE(options.shared_operands);
  shared_operands_from_env(nullptr, options);
  EXPECT_FALSE(options.shared_operands);
  shared_operands_from_env("1", options);
  EXPECT_TRUE(options.shared_operands);
  try {
    shared_operands_from_env("yes", options);
    FAIL();
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("UNDERSPEC_CUDA_SHARED_OPERANDS"), std::string::npos) << what;
    EXPECT_NE(what.find("'yes'"), std::string::npos) << what;
  }
}

TEST(CudaHostPlan, OptionsFromEnvironment) {
  const CudaBackendOptions defaults = options_from_env(nullptr, nullptr);
  EXPECT_EQ(defaults.variant, TrainVariant::fused);  // default by design; bench/gpu must confirm
  EXPECT_EQ(defaults.max_chunk_replicas, 0u);
  const CudaBackendOptions set = options_from_env("cublas", "123");
  EXPECT_EQ(set.variant, TrainVariant::cublas);
  EXPECT_EQ(set.max_chunk_replicas, 123u);
  try {
    options_from_env("fast", nullptr);
    FAIL();
  } catch (const std::invalid_argument& e) {  // names the variable, the value and the valid ones
    const std::string what = e.what();
    EXPECT_NE(what.find("UNDERSPEC_CUDA_VARIANT"), std::string::npos) << what;
    EXPECT_NE(what.find("'fast'"), std::string::npos) << what;
    EXPECT_NE(what.find("expected fused or cublas"), std::string::npos) << what;
  }
  EXPECT_THROW(options_from_env(nullptr, "0"), std::invalid_argument);
  EXPECT_THROW(options_from_env(nullptr, "12x"), std::invalid_argument);
  try {
    options_from_env(nullptr, "-3");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("UNDERSPEC_CUDA_CHUNK"), std::string::npos);
  }
}

TEST(CudaHostPlan, AdamTableFollowsStepNumberAndStepLr) {
  TrainConfig train;
  train.epochs = 5;
  train.batch_size = 64;
  train.step_size = 2;
  const std::uint32_t n = 130;  // 3 steps per epoch, the last of 2 samples
  const std::vector<AdamStep> table = make_adam_table(train, n);
  ASSERT_EQ(table.size(), 15u);
  const AdamHyper hyper{train.lr, train.betas[0], train.betas[1], train.eps};
  const StepLr schedule{train.step_size, train.gamma};
  for (int k = 0; k < 15; ++k) {
    const AdamStep expected = make_adam_step(hyper, step_lr(train.lr, schedule, k / 3), k + 1);
    EXPECT_EQ(table[static_cast<std::size_t>(k)].step_size, expected.step_size) << k;
    EXPECT_EQ(table[static_cast<std::size_t>(k)].bias2_sqrt_inv, expected.bias2_sqrt_inv) << k;
  }
  EXPECT_FLOAT_EQ(table[14].step_size / table[0].step_size,
                  static_cast<float>(0.25 * (1 - 0.9) / (1 - std::pow(0.9, 15))));
}

TEST(CudaHostPlan, FusedLayoutPlacesRegionsGreedilyWithoutOverlap) {
  const NetShape shape = mlp_shape({64, 64});
  const int n_params = param_count(shape);
  // Everything fits on an H200 (227 KB opt-in).
  const FusedLayout all = plan_fused_layout(shape, 64, 256, 227 * 1024);
  for (int r = 0; r < kRegionCount; ++r) EXPECT_TRUE(all.in_shared[r]) << r;
  EXPECT_EQ(all.global_floats, 0u);
  EXPECT_EQ(all.size[kParams], static_cast<std::size_t>(n_params + 3) / 4 * 4);  // padded to 16 bytes
  EXPECT_LE(all.shared_floats * 4, 227u * 1024);
  // Every region and buffer starts on a 16-byte boundary (the GPU's vector loads).
  for (int r = 0; r < kRegionCount; ++r) EXPECT_EQ(all.offset[r] % 4, 0u) << r;
  for (int l = 0; l <= shape.n_layers; ++l) EXPECT_EQ(all.act_offset[l] % 4, 0u) << l;
  EXPECT_EQ(all.delta_a_offset % 4 + all.delta_b_offset % 4 + all.weights_t_offset % 4 + all.targets_offset % 4, 0u);
  const FusedLayout ragged = plan_fused_layout(mlp_shape({5, 9, 3}), 7, 64, 0);
  for (int l = 0; l <= 3; ++l) EXPECT_EQ(ragged.act_offset[l] % 4, 0u) << l;
  EXPECT_EQ(ragged.global_floats % 4, 0u);
  // A small budget: params first, then activations; the rest global.
  const FusedLayout some = plan_fused_layout(shape, 64, 256, static_cast<std::size_t>(n_params) * 4 + 100);
  EXPECT_TRUE(some.in_shared[kParams]);
  EXPECT_FALSE(some.in_shared[kActivations]);
  EXPECT_FALSE(some.in_shared[kMoment2]);
  // Regions of each memory never overlap.
  for (const FusedLayout& l : {all, some, plan_fused_layout(shape, 64, 256, 0)}) {
    std::size_t shared = 0, global = 0;
    for (int r = 0; r < kRegionCount; ++r) {
      std::size_t& end = l.in_shared[r] ? shared : global;
      EXPECT_EQ(l.offset[r], end) << r;
      end += l.size[r];
    }
    EXPECT_EQ(shared, l.shared_floats);
    EXPECT_EQ(global, l.global_floats);
  }
  // Activations region holds act[0..L], two deltas, the transposed hidden weights, the
  // targets, the next minibatch's input and targets, and the output errors.
  EXPECT_EQ(all.size[kActivations], 64u * (3 + 64 + 64 + 1) + 2u * 64 * 64 + 64u * 64 + 64u + 64u * 3 + 64u + 64u);
  EXPECT_EQ(all.next_input_offset % 4 + all.next_targets_offset % 4 + all.out_delta_offset % 4, 0u);
  // Transposed weights: none with one hidden layer (the output column is its own
  // transpose), one matrix with two, two with three or more.
  const auto transposed_floats = [](const FusedLayout& l) { return l.targets_offset - l.weights_t_offset; };
  EXPECT_EQ(transposed_floats(plan_fused_layout(mlp_shape({64}), 64, 256, 0)), 0u);
  EXPECT_EQ(transposed_floats(all), 64u * 64);
  EXPECT_EQ(transposed_floats(plan_fused_layout(mlp_shape({8, 64, 16}), 64, 256, 0)), 2u * 64 * 64);
  EXPECT_EQ(transposed_floats(plan_fused_layout(mlp_shape({8, 8, 8, 8}), 64, 256, 0)), 2u * 8 * 8);
}

TEST(CudaHostPlan, FusedThreadsAndEvalLayout) {
  EXPECT_EQ(fused_threads(mlp_shape({64, 64}), 64), 256);
  EXPECT_EQ(fused_threads(mlp_shape({16, 16}), 64), 64);
  EXPECT_EQ(fused_threads(mlp_shape({32, 32}), 64), 128);
  EXPECT_EQ(fused_threads(mlp_shape({128, 128}), 64), 256);
  EXPECT_EQ(fused_threads(mlp_shape({3}), 1), 64);
  const EvalLayout e = plan_eval_layout(mlp_shape({64, 64}), 227 * 1024);
  EXPECT_TRUE(e.params_in_shared);
  EXPECT_TRUE(e.activations_in_shared);
  EXPECT_EQ(e.global_floats, 0u);
  EXPECT_EQ(e.shared_bytes, kEvalLanes * 8 + (e.input_floats + 2 * e.pingpong_floats + e.params_floats) * 4);
  const EvalLayout tight = plan_eval_layout(mlp_shape({64, 64}), 1024);
  EXPECT_FALSE(tight.activations_in_shared);
  EXPECT_FALSE(tight.params_in_shared);
  EXPECT_EQ(tight.global_floats, tight.input_floats + 2 * tight.pingpong_floats);
}

TEST(CudaHostPlan, ChunkPlanning) {
  EXPECT_EQ(plan_chunk_replicas(10000, 1000, 1000000, 0.5, 0), 500u);
  EXPECT_EQ(plan_chunk_replicas(100, 1000, 1000000, 0.5, 0), 100u);
  EXPECT_EQ(plan_chunk_replicas(10000, 1000, 1000000, 0.5, 64), 64u);
  EXPECT_EQ(plan_chunk_replicas(0, 1000, 1000000, 0.5, 0), 0u);
  EXPECT_THROW(plan_chunk_replicas(10, 1000000, 1000, 0.5, 0), std::runtime_error);
  const std::vector<ChunkRange> chunks = split_chunks(10, 4);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].begin, 8u);
  EXPECT_EQ(chunks[2].end, 10u);
  EXPECT_TRUE(split_chunks(0, 4).empty());
  EXPECT_THROW(split_chunks(3, 0), std::invalid_argument);
  ExperimentConfig c;
  const NetShape mlp = net_shape(c, ModelKind::mlp);
  const std::vector<const ExperimentConfig*> cells{&c};
  const SharedLimits limits{227 * 1024, 227 * 1024};
  const std::size_t shared = group_device_memory(mlp, cells, TrainVariant::fused, limits, 9).per_replica_bytes;
  EXPECT_LT(shared, group_device_memory(mlp, cells, TrainVariant::cublas, limits, 9).per_replica_bytes);
  c.data.per_replica = true;
  EXPECT_EQ(group_device_memory(mlp, cells, TrainVariant::fused, limits, 9).per_replica_bytes, shared + 5000u * 16);
}

TEST(CudaHostPlan, LaunchGroupsShareAShapeAcrossCells) {
  ExperimentConfig c;
  c.sweep.seeds = 1;
  c.sweep.regimes = {Regime::baseline};
  c.sweep.grid = {GridAxis{"train.lr", {"0.001", "0.003"}}};
  const Sweep sweep = make_sweep(c);  // ids: cell 0 perceptron, mlp; cell 1 perceptron, mlp
  ASSERT_EQ(sweep.replicas.size(), 4u);
  const std::vector<ReplicaSpec> mixed{sweep.replicas[3], sweep.replicas[0], sweep.replicas[1], sweep.replicas[2]};
  // Fused: one group per shape, cells mixed, input order kept.
  const auto fused = launch_groups(sweep, mixed, TrainVariant::fused);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(fused[0], (std::vector<std::size_t>{0, 2}));  // MLPs of cells 1 and 0
  EXPECT_EQ(fused[1], (std::vector<std::size_t>{1, 3}));  // perceptrons of cells 0 and 1
  // cuBLAS: MLPs step in lockstep, so each cell is its own group; perceptrons still share.
  const auto cublas = launch_groups(sweep, mixed, TrainVariant::cublas);
  ASSERT_EQ(cublas.size(), 3u);
  EXPECT_EQ(cublas[0], (std::vector<std::size_t>{0}));
  EXPECT_EQ(cublas[1], (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(cublas[2], (std::vector<std::size_t>{2}));
  // Different hidden shapes never share a launch.
  c.sweep.grid = {GridAxis{"model.mlp.hidden", {"[16]", "[16, 16]"}}};
  const Sweep shapes = make_sweep(c);
  EXPECT_EQ(launch_groups(shapes, shapes.replicas, TrainVariant::fused).size(), 3u);
  EXPECT_TRUE(launch_groups(shapes, {}, TrainVariant::fused).empty());
}

TEST(CudaHostPlan, CudaErrorNamesCallLocationAndError) {
  const CudaError e("cudaMalloc(&p, n)", "kernels/x.cu", 42, "cudaErrorMemoryAllocation", "out of memory");
  EXPECT_STREQ(e.what(), "cudaMalloc(&p, n) failed at kernels/x.cu:42: cudaErrorMemoryAllocation (out of memory)");
  EXPECT_EQ(e.line(), 42);
  EXPECT_EQ(e.error_name(), "cudaErrorMemoryAllocation");
}

// This machine (and CI) has no GPU: the backend must say so instead of failing later.
TEST(CudaHostPlan, NoDeviceIsReportedWithAReason) {
  std::string why;
  if (cuda_backend_available(&why)) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(why.empty());
  EXPECT_THROW(make_cuda_backend(), BackendUnavailable);
  EXPECT_THROW(make_cuda_backend(std::vector<int>{0}), BackendUnavailable);
  EXPECT_THROW(make_cuda_backend(CudaBackendOptions{}), BackendUnavailable);
  EXPECT_THROW(make_cuda_device_backend(0, CudaBackendOptions{}), BackendUnavailable);
}

// cuRAND's host generator runs without a GPU. Its Philox4_32_10 output for seed s starts
// with the blocks of counters (0, 0, j, 0), j = 0, 1, ... (one subsequence per block) under
// key (s lo, s hi): the same function as philox4x32_10 (found and pinned here, on the CPU).
TEST(CudaHostPlan, CurandHostPhiloxEqualsOurs) {
  curandGenerator_t gen;
  if (curandCreateGeneratorHost(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS)
    GTEST_SKIP() << "cuRAND host generator unavailable";
  const unsigned long long seed = 0x0000000500000007ull;
  ASSERT_EQ(curandSetPseudoRandomGeneratorSeed(gen, seed), CURAND_STATUS_SUCCESS);
  std::vector<unsigned> bits(16);
  ASSERT_EQ(curandGenerate(gen, bits.data(), bits.size()), CURAND_STATUS_SUCCESS);
  curandDestroyGenerator(gen);
  for (std::uint32_t j = 0; j < 4; ++j) {
    const PhiloxBlock b = philox4x32_10(PhiloxCounter{0, 0, j, 0}, PhiloxKey{7u, 5u});
    for (int k = 0; k < 4; ++k) EXPECT_EQ(bits[4 * j + static_cast<std::size_t>(k)], b.v[k]) << j << " " << k;
  }
}

}  // namespace
}  // namespace underspec
