// Kernel-level GPU tests: cuRAND's Philox against ours, generated datasets (training,
// IID/OOD and stress test sets) against the CPU's, evaluation sums against
// evaluate_rmse. Skipped without a device.
#include <algorithm>
#include <cmath>
#include <random>

#include "curand_philox.hpp"
#include "device_buffer.hpp"
#include "evaluate.hpp"
#include "generate.hpp"
#include "gpu_test_support.hpp"
#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/sweep/dataset.hpp"

namespace underspec {
namespace {

using cuda::DeviceBuffer;

TEST(GpuKernels, CurandDevicePhiloxEqualsOurs) {
  UNDERSPEC_REQUIRE_GPU();
  std::mt19937 engine(123);
  const auto rng = [&] { return static_cast<std::uint32_t>(engine()); };
  std::vector<PhiloxCounter> counters;
  std::vector<PhiloxKey> keys;
  for (std::uint32_t i = 0; i < 1000; ++i) {  // the dataset stream's counters and keys
    counters.push_back(dataset_counter(DatasetId::train, i % 7, i));
    keys.push_back(make_key(i % 3, i % 2 ? Stream::dataset : Stream::factor));
  }
  for (int i = 0; i < 1000; ++i) {  // random ones (c1 < 2^30, see curand_philox.hpp)
    counters.push_back(PhiloxCounter{rng(), rng() & 0x3fffffffu, rng(), rng()});
    keys.push_back(PhiloxKey{rng(), rng()});
  }
  const std::size_t n = counters.size();
  DeviceBuffer<PhiloxCounter> dc = cuda::to_device(counters, nullptr);
  DeviceBuffer<PhiloxKey> dk = cuda::to_device(keys, nullptr);
  DeviceBuffer<PhiloxBlock> theirs(n), ours(n);
  cuda::launch_philox_pair(dc.data(), dk.data(), theirs.data(), ours.data(), static_cast<int>(n), nullptr);
  std::vector<PhiloxBlock> a(n), b(n);
  theirs.download(a.data(), n, nullptr);
  ours.download(b.data(), n, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (std::size_t i = 0; i < n; ++i) {
    const PhiloxBlock host = philox4x32_10(counters[i], keys[i]);
    for (int w = 0; w < 4; ++w) {
      ASSERT_EQ(a[i].v[w], host.v[w]) << "cuRAND, entry " << i;
      ASSERT_EQ(b[i].v[w], host.v[w]) << "device philox4x32_10, entry " << i;
    }
  }
}

// Values derived with log/sin/cos may differ in the last ulp of the double computation;
// after rounding to float nearly all are identical. Bound: |gpu - cpu| <= 1e-5 * max(1,
// |cpu|) everywhere, and at most 0.1% of values not bitwise identical.
void expect_same_dataset(const Dataset& cpu, const std::vector<float>& gpu) {
  const std::size_t n = cpu.size();
  ASSERT_EQ(gpu.size(), 4 * n);
  const std::vector<float>* columns[4] = {&cpu.x1, &cpu.x2, &cpu.x3, &cpu.y};
  std::size_t differing = 0;
  for (int c = 0; c < 4; ++c)
    for (std::size_t i = 0; i < n; ++i) {
      const float want = (*columns[c])[i], got = gpu[c * n + i];
      if (want != got) ++differing;
      ASSERT_LE(std::fabs(want - got), 1e-5f * std::max(1.0f, std::fabs(want))) << "column " << c << " index " << i;
    }
  EXPECT_LE(differing, 4 * n / 1000) << differing << " values not bitwise identical";
}

TEST(GpuKernels, GeneratedDatasetsEqualCpu) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig config;
  config.data.n_train = 20000;
  config.data.n_test = 7000;
  const auto n = static_cast<std::uint32_t>(config.data.n_train);
  struct Case {
    Regime regime;
    std::uint32_t slot;
  };
  const Case cases[] = {{Regime::baseline, 0}, {Regime::domain_randomization, 0}, {Regime::baseline, 12}};
  for (const Case& c : cases) {
    DeviceBuffer<float> data(4 * std::size_t{n});
    float* p = data.data();
    const std::vector<cuda::GenerateJob> jobs{
        {p, p + n, p + 2 * n, p + 3 * n, n, DatasetId::train, c.slot, train_domain(config, c.regime)}};
    DeviceBuffer<cuda::GenerateJob> dj = cuda::to_device(jobs, nullptr);
    cuda::launch_generate(scm_params(config.data), config.data.seed, dj.data(), 1, n, nullptr);
    std::vector<float> host(4 * std::size_t{n});
    data.download(host.data(), host.size(), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_same_dataset(make_training_set(config, c.regime, c.slot), host);
  }
  for (DatasetId set : {DatasetId::iid_test, DatasetId::ood_test}) {
    const auto m = static_cast<std::uint32_t>(config.data.n_test);
    DeviceBuffer<float> data(4 * std::size_t{m});
    float* p = data.data();
    TrainDomain d{static_cast<float>(set == DatasetId::ood_test ? config.data.ood_factor : config.data.iid_factor),
                  false, 0.0f, 0.0f};
    const std::vector<cuda::GenerateJob> jobs{{p, p + m, p + 2 * m, p + 3 * m, m, set, 0u, d}};
    DeviceBuffer<cuda::GenerateJob> dj = cuda::to_device(jobs, nullptr);
    cuda::launch_generate(scm_params(config.data), config.data.seed, dj.data(), 1, m, nullptr);
    std::vector<float> host(4 * std::size_t{m});
    data.download(host.data(), host.size(), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_same_dataset(make_test_set(config, set), host);
  }
  for (double stress : {0.05, 1.0}) {  // stress domains: the OOD set id at another factor, as the backend makes them
    const auto m = static_cast<std::uint32_t>(config.data.n_test);
    DeviceBuffer<float> data(4 * std::size_t{m});
    float* p = data.data();
    const TrainDomain d{static_cast<float>(stress), false, 0.0f, 0.0f};
    const std::vector<cuda::GenerateJob> jobs{{p, p + m, p + 2 * m, p + 3 * m, m, DatasetId::ood_test, 0u, d}};
    DeviceBuffer<cuda::GenerateJob> dj = cuda::to_device(jobs, nullptr);
    cuda::launch_generate(scm_params(config.data), config.data.seed, dj.data(), 1, m, nullptr);
    std::vector<float> host(4 * std::size_t{m});
    data.download(host.data(), host.size(), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_same_dataset(make_domain_set(config, DatasetId::ood_test, static_cast<float>(stress), config.data.n_test),
                        host);
  }
}

TEST(GpuKernels, EvaluationSumsEqualCpuForEachWidth) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig config;
  config.data.n_test = 1001;
  const Dataset iid = make_test_set(config, DatasetId::iid_test), ood = make_test_set(config, DatasetId::ood_test);
  std::vector<float> packed;
  for (const Dataset* d : {&iid, &ood})
    for (const std::vector<float>* c : {&d->x1, &d->x2, &d->x3, &d->y})
      packed.insert(packed.end(), c->begin(), c->end());
  DeviceBuffer<float> tests = cuda::to_device(packed, nullptr);
  const std::uint32_t n = 1001;
  const float* t = tests.data();
  int device = 0, limit = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), cudaSuccess);
  for (std::vector<int> hidden : {std::vector<int>{}, {16, 16}, {32, 32}, {64, 64}, {128, 128}, {48, 20}}) {
    config.mlp.hidden = hidden;
    const NetShape shape = net_shape(config, hidden.empty() ? ModelKind::perceptron : ModelKind::mlp);
    const int replicas = 3;
    std::vector<float> params;
    for (int r = 0; r < replicas; ++r) {
      const std::vector<float> p = initial_params(shape, 100u + static_cast<std::uint32_t>(r));
      params.insert(params.end(), p.begin(), p.end());
    }
    DeviceBuffer<float> dp = cuda::to_device(params, nullptr);
    const cuda_plan::EvalLayout layout = cuda_plan::plan_eval_layout(shape, static_cast<std::size_t>(limit));
    DeviceBuffer<float> scratch(replicas * 2 * layout.global_floats);
    DeviceBuffer<double> sums(replicas * 2);
    std::vector<DatasetView> domains;
    for (int r = 0; r < replicas; ++r) {
      domains.push_back({t, t + n, t + 2 * n, t + 3 * n, n});
      domains.push_back({t + 4 * n, t + 5 * n, t + 6 * n, t + 7 * n, n});
    }
    DeviceBuffer<DatasetView> domains_device = cuda::to_device(domains, nullptr);
    cuda::EvaluateLaunch launch{shape, layout, dp.data(), replicas, domains_device.data(), scratch.data(), sums.data()};
    cuda::launch_evaluate(launch, nullptr);
    std::vector<double> host(replicas * 2);
    sums.download(host.data(), host.size(), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    TrainWorkspace workspace(shape, 64);
    for (int r = 0; r < replicas; ++r) {
      const float* pr = params.data() + static_cast<std::size_t>(r) * param_count(shape);
      EXPECT_EQ(std::sqrt(host[2 * r] / n), evaluate_rmse(shape, pr, iid, workspace));
      EXPECT_EQ(std::sqrt(host[2 * r + 1] / n), evaluate_rmse(shape, pr, ood, workspace));
    }
  }
}

}  // namespace
}  // namespace underspec
