// The cuBLAS variant's host side, without a GPU: cuBLAS is opened at run time (the table
// resolves on a machine with the CUDA toolkit, once); the per-step table and the graph
// replay schedule follow the trainers' minibatch schedule; UNDERSPEC_CUDA_GRAPH is parsed
// strictly.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "cublas_api.hpp"
#include "underspec/backends/cublas_steps.hpp"
#include "underspec/backends/cuda_plan.hpp"
#include "underspec/core/adam_schedule.hpp"
#include "underspec/core/group_trainer.hpp"

namespace underspec::cuda {
namespace {

using cuda_plan::CublasStep;
using cuda_plan::GraphRun;

TEST(CublasApi, ResolvesEverySymbolOnce) {
  const CublasApi& api = cublas();
  EXPECT_NE(api.create, nullptr);
  EXPECT_NE(api.sgemm_strided_batched, nullptr);
  EXPECT_NE(api.set_workspace, nullptr);
  EXPECT_NE(api.status_string, nullptr);
  EXPECT_EQ(&api, &cublas());
  EXPECT_STREQ(api.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
}

std::vector<CublasStep> steps_for(int epochs, int batch_size, std::uint32_t n, std::vector<AdamStep>& adam) {
  TrainConfig train;
  train.epochs = epochs;
  train.batch_size = batch_size;
  adam = make_adam_table(train, n);
  return cuda_plan::make_cublas_steps(epochs, batch_size, n, adam);
}

bool same_adam(const AdamStep& a, const AdamStep& b) {
  return a.beta1 == b.beta1 && a.beta2 == b.beta2 && a.one_minus_beta1 == b.one_minus_beta1 &&
         a.one_minus_beta2 == b.one_minus_beta2 && a.step_size == b.step_size && a.bias2_sqrt_inv == b.bias2_sqrt_inv &&
         a.eps == b.eps;
}

// Entry k is the k-th step for_each_minibatch (the CPU and fused trainers' schedule) walks:
// same epoch, start, rows and Adam scalars; the last minibatch of an epoch is the smaller one.
TEST(CublasSteps, TableFollowsTheTrainersMinibatchSchedule) {
  const std::tuple<int, int, std::uint32_t> cases[] = {{3, 48, 700}, {2, 64, 1000}, {2, 64, 40}, {1, 1, 3}};
  for (const auto& [epochs, batch, n] : cases) {
    std::vector<AdamStep> adam;
    const std::vector<CublasStep> steps = steps_for(epochs, batch, n, adam);
    ASSERT_EQ(steps.size(), adam.size());
    const TrainRun run{epochs, batch, 0.0f, adam.data()};
    std::size_t k = 0;
    for_each_minibatch(run, ReplicaJob{7, 0, 0, 0}, n,
                       [&](std::uint32_t epoch, const EpochPermutation&, std::uint32_t start, std::uint32_t rows,
                           const AdamStep& step) {
                         ASSERT_LT(k, steps.size());
                         EXPECT_EQ(steps[k].epoch, epoch) << k;
                         EXPECT_EQ(steps[k].start, start) << k;
                         EXPECT_EQ(steps[k].rows, rows) << k;
                         EXPECT_TRUE(same_adam(steps[k].adam, step)) << k;
                         ++k;
                       });
    EXPECT_EQ(k, steps.size());
  }
}

// 700 = 14 x 48 + 28: per epoch, the 48-row graph 14 times, then the 28-row one.
TEST(CublasSteps, TailMinibatchGetsItsOwnGraph) {
  std::vector<AdamStep> adam;
  const std::vector<CublasStep> steps = steps_for(3, 48, 700, adam);
  const std::vector<GraphRun> runs = cuda_plan::graph_runs(steps);
  ASSERT_EQ(runs.size(), 6u);
  std::size_t total = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].rows, i % 2 ? 28u : 48u) << i;
    EXPECT_EQ(runs[i].count, i % 2 ? 1u : 14u) << i;
    total += runs[i].count;
  }
  EXPECT_EQ(total, steps.size());
  EXPECT_EQ(cuda_plan::graph_shapes(runs), (std::vector<std::uint32_t>{48, 28}));
}

TEST(CublasSteps, OneGraphWhenEveryMinibatchIsAlike) {
  std::vector<AdamStep> adam;
  const std::vector<GraphRun> whole = cuda_plan::graph_runs(steps_for(4, 50, 1000, adam));  // 20 x 50
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].rows, 50u);
  EXPECT_EQ(whole[0].count, 80u);
  const std::vector<GraphRun> small = cuda_plan::graph_runs(steps_for(3, 64, 40, adam));  // fewer samples than a batch
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].rows, 40u);
  EXPECT_EQ(small[0].count, 3u);
  EXPECT_TRUE(cuda_plan::graph_runs(steps_for(0, 64, 1000, adam)).empty());  // no epochs: no graph
  EXPECT_TRUE(cuda_plan::graph_shapes({}).empty());
}

TEST(CublasSteps, RefusesAShortAdamTableAndAZeroBatch) {
  std::vector<AdamStep> adam;
  steps_for(2, 48, 700, adam);
  adam.pop_back();
  EXPECT_THROW(cuda_plan::make_cublas_steps(2, 48, 700, adam), std::invalid_argument);
  EXPECT_THROW(cuda_plan::make_cublas_steps(1, 0, 700, adam), std::invalid_argument);
}

TEST(CublasSteps, GraphSwitchFromEnvironment) {
  cuda_plan::CudaBackendOptions options;
  EXPECT_TRUE(options.cublas_graph);  // graphs by default
  cuda_plan::cublas_graph_from_env("0", options);
  EXPECT_FALSE(options.cublas_graph);
  cuda_plan::cublas_graph_from_env(nullptr, options);  // unset or empty: unchanged
  cuda_plan::cublas_graph_from_env("", options);
  EXPECT_FALSE(options.cublas_graph);
  cuda_plan::cublas_graph_from_env("1", options);
  EXPECT_TRUE(options.cublas_graph);
  for (const char* bad : {"yes", "2", "0 ", "true"}) {
    try {
      cuda_plan::cublas_graph_from_env(bad, options);
      FAIL() << bad;
    } catch (const std::invalid_argument& e) {  // names the variable, the value and the valid ones
      const std::string what = e.what();
      EXPECT_NE(what.find("UNDERSPEC_CUDA_GRAPH"), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("expected 0 or 1"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace underspec::cuda
