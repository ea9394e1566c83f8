// The cuBLAS variant's CUDA graphs (skipped without a device): replaying captured steps
// gives the bits of launching them one by one (UNDERSPEC_CUDA_GRAPH=0), with a smaller last
// minibatch, several epochs and chunks; and training allocates no device memory.
#include <cuda_runtime.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cublas_api.hpp"
#include "cublas_handle.hpp"
#include "cuda_stream.hpp"
#include "device_buffer.hpp"
#include "gpu_test_support.hpp"
#include "train_cublas.hpp"
#include "underspec/core/adam_schedule.hpp"

namespace underspec {
namespace {

using cuda_plan::TrainVariant;

std::vector<ReplicaResult> run_cublas(const Sweep& sweep, bool graph, std::size_t max_chunk) {
  cuda_plan::CudaBackendOptions options = gpu_test::options_of(TrainVariant::cublas, max_chunk);
  options.cublas_graph = graph;
  return make_cuda_backend(options)->train_replicas(sweep, sweep.replicas);
}

// Every parameter and RMSE the same bits; mismatches counted.
void expect_same_bits(const std::vector<ReplicaResult>& a, const std::vector<ReplicaResult>& b) {
  ASSERT_EQ(a.size(), b.size());
  std::size_t differing = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].id, b[k].id);
    differing += a[k].params != b[k].params;
    differing += a[k].iid_rmse != b[k].iid_rmse || a[k].ood_rmse != b[k].ood_rmse;
    differing += a[k].stress_rmse != b[k].stress_rmse;
  }
  EXPECT_EQ(differing, 0u) << "of " << a.size() << " replicas";
}

TEST(GpuCublasGraph, GraphsGiveTheBitsOfOneByOneLaunches) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c;
  c.data.n_test = 500;
  c.train.epochs = 3;
  c.train.step_size = 2;  // StepLR changes Adam's scalars within the run
  c.sweep.models = {ModelKind::mlp};
  c.sweep.seeds = 3;
  c.mlp.hidden = {32, 24};
  // (n_train, batch): a smaller last minibatch (700 = 14 x 48 + 28), none (1000 = 20 x 50),
  // and fewer samples than a batch (40 < 64).
  const std::pair<int, int> cases[] = {{700, 48}, {1000, 50}, {40, 64}};
  for (const auto& [n_train, batch] : cases) {
    c.data.n_train = n_train;
    c.train.batch_size = batch;
    const Sweep sweep = make_sweep(c);
    SCOPED_TRACE("n_train " + std::to_string(n_train) + " batch " + std::to_string(batch));
    const auto launched = run_cublas(sweep, false, 0);
    expect_same_bits(run_cublas(sweep, true, 0), launched);
    expect_same_bits(run_cublas(sweep, true, 4), launched);  // chunks of 4 and 1: a graph per chunk
    gpu_test::expect_matches_cpu(sweep.replicas, launched, gpu_test::run_cpu(sweep, sweep.replicas),
                                 TrainVariant::cublas);
  }
}

// Between prepare() and the end of train(): no memory nodes in the graphs, the same free
// device memory, and the stream-ordered pool (where cuBLAS takes a workspace it lacks)
// never above its use before. A cudaMalloc freed again within train() would escape these
// checks; train() makes no such call (kernels/train_cublas.cu).
TEST(GpuCublasGraph, TrainingAllocatesNothing) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c;
  c.mlp.hidden = {64, 64};
  const NetShape shape = net_shape(c, ModelKind::mlp);
  const std::uint32_t n = 700;
  const int batch = 48, epochs = 2, replicas = 1100;  // two slices of kSliceReplicas
  std::mt19937 engine(5);
  std::normal_distribution<float> normal;
  std::vector<float> samples(4 * std::size_t{n});
  for (float& x : samples) x = normal(engine);
  const cuda::DeviceBuffer<float> data = cuda::to_device(samples, nullptr);
  float* p = data.data();
  const cuda::DeviceBuffer<DatasetView> views =
      cuda::to_device(std::vector<DatasetView>{{p, p + n, p + 2 * n, p + 3 * n, n}}, nullptr);
  std::vector<ReplicaJob> jobs;
  for (int r = 0; r < replicas; ++r) jobs.push_back({static_cast<std::uint32_t>(r), r % 2u, 0u, 0u});
  const cuda::DeviceBuffer<ReplicaJob> jobs_device = cuda::to_device(jobs, nullptr);
  TrainConfig train;
  train.epochs = epochs;
  train.batch_size = batch;
  const std::vector<AdamStep> adam = make_adam_table(train, n);
  const std::size_t n_params = static_cast<std::size_t>(replicas) * param_count(shape);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  int device = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  cudaMemPool_t pool{};
  ASSERT_EQ(cudaDeviceGetMemPool(&pool, device), cudaSuccess);
  const auto pool_value = [&](cudaMemPoolAttr what) {  // a cuuint64_t, as the attributes are
    std::uint64_t value = 0;
    EXPECT_EQ(cudaMemPoolGetAttribute(pool, what, &value), cudaSuccess);
    return value;
  };

  cuda::CublasHandle handle;
  cuda::CudaStream stream;
  std::vector<std::vector<float>> results;
  for (bool graph : {true, false}) {
    SCOPED_TRACE(graph ? "graph" : "one by one");
    cuda::DeviceBuffer<float> params(n_params);
    cuda::CublasTrainer trainer(
        handle.get(), cuda::CublasTrainSetup{shape, epochs, batch, 1.0f, n, adam, replicas, graph}, stream.get());
    trainer.prepare(jobs_device.data(), views.data(), replicas);
    EXPECT_EQ(trainer.graph_count(), graph ? 2u : 0u);  // 48 rows, and the last 28
    if (graph) {
      EXPECT_EQ(trainer.graph_memory_nodes(), 0u);
    }
    // CUDA loads a kernel's module at its first launch (lazy loading, the default), which
    // takes device memory: one untimed run first, so the check below sees train() alone.
    trainer.train(params.data());
    ASSERT_EQ(cudaStreamSynchronize(stream.get()), cudaSuccess);

    std::size_t free_before = 0, free_after = 0, total = 0;
    ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
    const std::uint64_t used_before = pool_value(cudaMemPoolAttrUsedMemCurrent);
    std::uint64_t reset = 0;  // the high-water mark restarts from the current use
    ASSERT_EQ(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &reset), cudaSuccess);
    trainer.train(params.data());
    ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
    EXPECT_EQ(free_after, free_before);
    EXPECT_EQ(pool_value(cudaMemPoolAttrUsedMemHigh), used_before);

    std::vector<float> host(n_params);
    params.download(host.data(), n_params, stream.get());
    ASSERT_EQ(cudaStreamSynchronize(stream.get()), cudaSuccess);
    trainer.train(params.data());  // a second run of the same chunk: the same bits
    std::vector<float> again(n_params);
    params.download(again.data(), n_params, stream.get());
    ASSERT_EQ(cudaStreamSynchronize(stream.get()), cudaSuccess);
    EXPECT_EQ(again, host);
    results.push_back(std::move(host));
  }
  EXPECT_EQ(results[0], results[1]);
}

}  // namespace
}  // namespace underspec
