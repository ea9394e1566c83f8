// The bootstrap's resamples on the GPU (kernels/cuda_bootstrap.cu) against the CPU: every
// value bit for bit and the same intervals, directly and through the stats library's device
// hook, with small scratch budgets (many chunks) and from several threads at once.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../cli_fixture.hpp"
#include "gpu_test_support.hpp"
#include "underspec/backends/cuda_bootstrap.hpp"
#include "underspec/stats/bootstrap.hpp"
#include "underspec/stats/bootstrap_device.hpp"

namespace underspec {
namespace {

constexpr BootstrapStatistic kStatistics[] = {BootstrapStatistic::std_dev, BootstrapStatistic::paired_std_ratio,
                                              BootstrapStatistic::spearman, BootstrapStatistic::two_sample_std_ratio};

std::vector<double> sample(int n, bool ties, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(1.0, 0.3);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (double& x : v) x = ties ? static_cast<double>(rng() % 5) * 0.5 : normal(rng);
  return v;
}

std::vector<int> order_of(const std::vector<double>& v) {
  std::vector<int> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return v[i] < v[j]; });
  return order;
}

std::uint64_t bits(double v) { return std::bit_cast<std::uint64_t>(v); }

TEST(GpuBootstrap, EveryResampleAndIntervalEqualsTheCpus) {
  UNDERSPEC_REQUIRE_GPU();
  for (BootstrapStatistic s : kStatistics)
    for (int n : {2, 3, 17, 1000, 10000})
      for (bool ties : {false, true}) {
        const std::vector<double> x = sample(n, ties, 7);
        const std::vector<double> y =
            s == BootstrapStatistic::std_dev
                ? std::vector<double>{}
                : sample(s == BootstrapStatistic::two_sample_std_ratio ? n / 2 + 2 : n, ties, 8);
        const std::vector<int> xo = order_of(x), yo = order_of(y);
        const BootstrapData d{x.data(), n, y.data(), static_cast<int>(y.size()), xo.data(), yo.data()};
        const PhiloxKey key = bootstrap_key(2, 0, 1, s);
        const std::string what =
            "statistic " + std::to_string(static_cast<int>(s)) + " n " + std::to_string(n) + (ties ? " ties" : "");
        const std::vector<double> cpu = bootstrap_resamples(s, x, y, key, nullptr, BootstrapPath::reference);
        // A budget of ~3 resamples' scratch: the chunk loop runs about 1300 times.
        const std::size_t small = 3 * (x.size() + y.size()) * (sizeof(int) + sizeof(double));
        for (std::size_t budget : {kCudaBootstrapMaxScratchBytes, small}) {
          if (n == 10000 && budget == small) continue;  // 1300 launches of 3 threads: slow, nothing new
          std::vector<double> gpu(kBootstrapResamples);
          cuda_bootstrap_resamples(0, s, d, key, nullptr, gpu.data(), budget);
          int mismatches = 0;
          for (std::size_t b = 0; b < gpu.size(); ++b)
            if (bits(gpu[b]) != bits(cpu[b]) && ++mismatches <= 3)
              ADD_FAILURE() << what << " resample " << b << ": " << gpu[b] << " vs " << cpu[b];
          EXPECT_EQ(mismatches, 0) << what << " budget " << budget;
          const Interval on_gpu = percentile_interval(gpu);
          const Interval on_cpu = bootstrap_interval(s, x, y, key);
          EXPECT_EQ(bits(on_gpu.low), bits(on_cpu.low)) << what;
          EXPECT_EQ(bits(on_gpu.high), bits(on_cpu.high)) << what;
        }
      }
}

// Through the hook as `underspec run --device cuda` installs it, from OpenMP-like concurrent
// callers (the GPU mutex serialises them): the same intervals as without the hook.
TEST(GpuBootstrap, HookFromSeveralThreadsGivesTheCpusIntervals) {
  UNDERSPEC_REQUIRE_GPU();
  const int n = 4000;  // above kCudaBootstrapMinValues
  std::vector<Interval> cpu, gpu(8);
  std::vector<std::vector<double>> xs, ys;
  for (int g = 0; g < 8; ++g) {
    xs.push_back(sample(n, g % 2 == 1, 100u + static_cast<std::uint64_t>(g)));
    ys.push_back(sample(n, false, 200u + static_cast<std::uint64_t>(g)));
    const auto s = kStatistics[g % 4];
    cpu.push_back(bootstrap_interval(s, xs[g], s == BootstrapStatistic::std_dev ? std::vector<double>{} : ys[g],
                                     bootstrap_key(static_cast<std::uint32_t>(g), 0, 0, s)));
  }
  {
    const ScopedBootstrapDevice scope(cuda_bootstrap_device(0));
    std::vector<std::thread> threads;
    for (int g = 0; g < 8; ++g)
      threads.emplace_back([&, g] {
        const auto s = kStatistics[g % 4];
        gpu[g] = bootstrap_interval(s, xs[g], s == BootstrapStatistic::std_dev ? std::vector<double>{} : ys[g],
                                    bootstrap_key(static_cast<std::uint32_t>(g), 0, 0, s));
      });
    for (std::thread& t : threads) t.join();
  }
  for (int g = 0; g < 8; ++g) {
    EXPECT_EQ(bits(gpu[g].low), bits(cpu[g].low)) << "group " << g;
    EXPECT_EQ(bits(gpu[g].high), bits(cpu[g].high)) << "group " << g;
  }
}

TEST(GpuBootstrap, StopBeforeTheFirstChunkLeavesNaN) {
  UNDERSPEC_REQUIRE_GPU();
  const std::vector<double> x = sample(3000, false, 3);
  const std::vector<int> xo = order_of(x);
  const BootstrapData d{x.data(), 3000, nullptr, 0, xo.data(), nullptr};
  const std::atomic<bool> stop{true};
  std::vector<double> out(kBootstrapResamples, 0.0);
  cuda_bootstrap_resamples(0, BootstrapStatistic::std_dev, d, {}, &stop, out.data());
  for (double v : out) ASSERT_TRUE(std::isnan(v));
}

// `underspec run --device cuda` end to end: 1100 perceptron seeds per regime make the paired
// and two-sample statistics' groups (2200 values) go to the GPU, std's (1100) stay on the CPU;
// the statistics must be byte-identical to the same run's with UNDERSPEC_CUDA_BOOTSTRAP=0
// (the default).
TEST_F(Cli, GpuBootstrapRunGivesTheCpusStatistics) {
  UNDERSPEC_REQUIRE_GPU();
  const std::string args =
      "run --device cuda --no-report --progress none --set sweep.seeds=1100 --set 'sweep.models=[\"perceptron\"]' "
      "--set data.n_train=200 --set data.n_test=100 --set train.epochs=2 --out ";
  const CliResult gpu = run(args + "gpu", "UNDERSPEC_CUDA_BOOTSTRAP=1");
  ASSERT_EQ(gpu.status, 0) << gpu.err;
  const CliResult cpu = run(args + "cpu", "UNDERSPEC_CUDA_BOOTSTRAP=0");
  ASSERT_EQ(cpu.status, 0) << cpu.err;
  for (const char* file : {"replicas.csv", "summary.csv", "comparisons.csv"})
    EXPECT_EQ(read(cwd() / "gpu" / file), read(cwd() / "cpu" / file)) << file;
}

}  // namespace
}  // namespace underspec
