// The GPU bootstrap's Thrust code (kernels/bootstrap_thrust.hpp) compiled as host C++ with
// THRUST_DEVICE_SYSTEM_CPP: every resample value must be resample_statistic's bit for bit,
// and the intervals bootstrap_interval's, for each statistic, size, ties, constant groups and
// undefined resamples, with the chunk loop exercised (chunks far below 4000). Also the device
// hook of the stats library (bootstrap_device.hpp), driven by that same code. This executable
// does not link the CUDA library: the stats library needs none.
#include <gtest/gtest.h>
#include <thrust/system/cpp/execution_policy.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bootstrap_thrust.hpp"
#include "underspec/stats/bootstrap.hpp"
#include "underspec/stats/bootstrap_device.hpp"

namespace underspec {
namespace {

static_assert(THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CPP);

constexpr BootstrapStatistic kStatistics[] = {BootstrapStatistic::std_dev, BootstrapStatistic::paired_std_ratio,
                                              BootstrapStatistic::spearman, BootstrapStatistic::two_sample_std_ratio};

std::string name_of(BootstrapStatistic s) {
  switch (s) {
    case BootstrapStatistic::std_dev:
      return "std_dev";
    case BootstrapStatistic::paired_std_ratio:
      return "paired_std_ratio";
    case BootstrapStatistic::spearman:
      return "spearman";
    case BootstrapStatistic::two_sample_std_ratio:
      return "two_sample_std_ratio";
  }
  return "?";
}

enum class Shape { distinct, ties, constant };

// n values of the shape: distinct reals, a few repeated levels, or one value.
std::vector<double> values_of(Shape shape, int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(1.0, 0.3);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (double& x : v) {
    if (shape == Shape::distinct) x = normal(rng);
    if (shape == Shape::ties) x = static_cast<double>(rng() % 4) * 0.25 + 0.5;
    if (shape == Shape::constant) x = 0.7;
  }
  return v;
}

std::vector<int> order_of(const std::vector<double>& v) {
  std::vector<int> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return v[i] < v[j]; });
  return order;
}

// The second sample: x's size for paired statistics, another size for the two-sample ratio.
std::vector<double> second_sample(BootstrapStatistic s, Shape shape, int n) {
  if (s == BootstrapStatistic::std_dev) return {};
  const int ny = s == BootstrapStatistic::two_sample_std_ratio ? n / 2 + 2 : n;
  return values_of(shape, ny, 1000u + static_cast<std::uint64_t>(n));
}

// The Thrust path on the host: the values of all kBootstrapResamples resamples, `chunk` at a time.
std::vector<double> thrust_resamples(BootstrapStatistic s, const BootstrapData& d, PhiloxKey key, std::size_t chunk,
                                     const std::atomic<bool>* stop = nullptr, std::uint32_t* done = nullptr) {
  const std::size_t stride = static_cast<std::size_t>(d.nx) + static_cast<std::size_t>(d.ny);
  std::vector<int> counts(chunk * stride);
  std::vector<double> ranks(s == BootstrapStatistic::spearman ? chunk * stride : 0);
  std::vector<double> values(kBootstrapResamples, -1.0);
  const std::uint32_t n = bootstrap_thrust::transform_resamples(
      thrust::cpp::par, s, d, key, counts.data(), ranks.empty() ? nullptr : ranks.data(), chunk, values.data(), stop);
  if (done) *done = n;
  return values;
}

void expect_same_bits(double a, double b, const std::string& what) {
  EXPECT_EQ(std::bit_cast<std::uint64_t>(a), std::bit_cast<std::uint64_t>(b)) << what << ": " << a << " vs " << b;
}

struct Case {
  BootstrapStatistic statistic;
  Shape shape;
  int n;
};

// Compares the Thrust path at the given chunk with resample_statistic, resample by resample,
// and its percentile interval with bootstrap_interval's (the CPU's default path).
void check_case(const Case& c, std::size_t chunk) {
  const std::vector<double> x = values_of(c.shape, c.n, static_cast<std::uint64_t>(c.n));
  const std::vector<double> y = second_sample(c.statistic, c.shape, c.n);
  const std::vector<int> xo = order_of(x), yo = order_of(y);
  const BootstrapData d{x.data(), c.n, y.data(), static_cast<int>(y.size()), xo.data(), yo.data()};
  const PhiloxKey key = bootstrap_key(3, 1, 2, c.statistic, 1);
  const std::string what = name_of(c.statistic) + " shape " + std::to_string(static_cast<int>(c.shape)) + " n " +
                           std::to_string(c.n) + " chunk " + std::to_string(chunk);

  std::vector<double> values = thrust_resamples(c.statistic, d, key, chunk);
  std::vector<int> counts(x.size() + y.size());
  std::vector<double> ranks(x.size() + y.size());
  int mismatches = 0;
  for (std::uint32_t b = 0; b < kBootstrapResamples; ++b) {
    const double expected = resample_statistic(c.statistic, d, key, b, BootstrapScratch{counts.data(), ranks.data()});
    if (std::bit_cast<std::uint64_t>(values[b]) != std::bit_cast<std::uint64_t>(expected) && ++mismatches <= 3)
      ADD_FAILURE() << what << " resample " << b << ": " << values[b] << " vs " << expected;
  }
  EXPECT_EQ(mismatches, 0) << what;

  const Interval cpu = bootstrap_interval(c.statistic, x, y, key);
  const Interval gpu_path = percentile_interval(values);
  expect_same_bits(gpu_path.low, cpu.low, what + " low");
  expect_same_bits(gpu_path.high, cpu.high, what + " high");
}

TEST(BootstrapThrustCpp, EveryResampleIsResampleStatisticsBitForBit) {
  for (BootstrapStatistic s : kStatistics)
    for (int n : {2, 3, 5, 17, 100, 1000, 10000}) check_case({s, Shape::distinct, n}, n < 1000 ? 7 : 613);
}

TEST(BootstrapThrustCpp, TiesAndConstantGroups) {
  for (BootstrapStatistic s : kStatistics)
    for (int n : {2, 3, 9, 100, 1000}) {
      check_case({s, Shape::ties, n}, 13);
      check_case({s, Shape::constant, n}, 13);
    }
}

// Undefined resamples are really there: a group of 3 draws one value in 1/9 of resamples.
TEST(BootstrapThrustCpp, UndefinedResamplesAreNaNOnBothPaths) {
  const std::vector<double> x{1.0, 2.0, 4.0}, y{0.5, 3.0, 2.0};
  const std::vector<int> xo = order_of(x), yo = order_of(y);
  const BootstrapData d{x.data(), 3, y.data(), 3, xo.data(), yo.data()};
  for (BootstrapStatistic s : {BootstrapStatistic::paired_std_ratio, BootstrapStatistic::spearman}) {
    const std::vector<double> values = thrust_resamples(s, d, bootstrap_key(0, 0, 0, s), 5);
    const auto undefined = std::count_if(values.begin(), values.end(), [](double v) { return std::isnan(v); });
    EXPECT_GT(undefined, 200) << name_of(s);
    EXPECT_LT(undefined, kBootstrapResamples) << name_of(s);
  }
}

TEST(BootstrapThrustCpp, ChunkSizesGiveTheSameValues) {
  const Case c{BootstrapStatistic::spearman, Shape::ties, 257};
  const std::vector<double> x = values_of(c.shape, c.n, 9), y = values_of(c.shape, c.n, 10);
  const std::vector<int> xo = order_of(x), yo = order_of(y);
  const BootstrapData d{x.data(), c.n, y.data(), c.n, xo.data(), yo.data()};
  const PhiloxKey key = bootstrap_key(0, 0, 0, c.statistic);
  const std::vector<double> whole = thrust_resamples(c.statistic, d, key, kBootstrapResamples);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{999}, std::size_t{4001}}) {
    const std::vector<double> v = thrust_resamples(c.statistic, d, key, chunk);
    for (std::size_t b = 0; b < v.size(); ++b)
      ASSERT_EQ(std::bit_cast<std::uint64_t>(v[b]), std::bit_cast<std::uint64_t>(whole[b]))
          << "chunk " << chunk << " resample " << b;
  }
}

TEST(BootstrapThrustCpp, ChunkPlanKeepsScratchWithinTheBudget) {
  using bootstrap_thrust::chunk_resamples;
  using bootstrap_thrust::scratch_bytes_per_resample;
  // 10^6 values: 4 MB of counts per resample, 12 MB with Spearman's ranks (two samples of 10^6).
  EXPECT_EQ(scratch_bytes_per_resample(BootstrapStatistic::std_dev, 1000000, 0), 4000000u);
  EXPECT_EQ(scratch_bytes_per_resample(BootstrapStatistic::spearman, 1000000, 1000000), 24000000u);
  const std::size_t gib = std::size_t{1} << 30;
  EXPECT_EQ(chunk_resamples(4000000, gib), gib / 4000000);  // 268 resamples, 1.07e9 bytes <= 1 GiB
  EXPECT_LE(chunk_resamples(4000000, gib) * 4000000, gib);
  EXPECT_EQ(chunk_resamples(400, gib), static_cast<std::size_t>(kBootstrapResamples));  // all at once
  EXPECT_EQ(chunk_resamples(gib, gib / 2), 1u);                                         // over budget: one at a time
  EXPECT_EQ(chunk_resamples(0, 0), static_cast<std::size_t>(kBootstrapResamples));
}

TEST(BootstrapThrustCpp, StopLeavesTheRestUntouched) {
  const std::vector<double> x = values_of(Shape::distinct, 50, 1);
  const std::vector<int> xo = order_of(x);
  const BootstrapData d{x.data(), 50, nullptr, 0, xo.data(), nullptr};
  const std::atomic<bool> stop{true};
  std::uint32_t done = 99;
  const std::vector<double> v = thrust_resamples(BootstrapStatistic::std_dev, d,
                                                 bootstrap_key(0, 0, 0, BootstrapStatistic::std_dev), 7, &stop, &done);
  EXPECT_EQ(done, 0u);
  EXPECT_EQ(v.front(), -1.0);
}

// A stand-in device for the stats library's hook: the Thrust code on the host, small chunks.
std::atomic<int> device_calls{0};
void host_thrust_device(int device, BootstrapStatistic s, const BootstrapData& d, PhiloxKey key,
                        const std::atomic<bool>* stop, double* out) {
  EXPECT_EQ(device, 5);
  ++device_calls;
  const std::vector<double> v = thrust_resamples(s, d, key, 11, stop);
  std::copy(v.begin(), v.end(), out);
}

TEST(BootstrapThrustCpp, InstalledDeviceTakesLargeGroupsWithTheSameIntervals) {
  const std::size_t min_values = 64;
  for (BootstrapStatistic s : kStatistics)
    for (int n : {3, 40, 200}) {
      const std::vector<double> x = values_of(Shape::ties, n, 21), y = second_sample(s, Shape::distinct, n);
      const PhiloxKey key = bootstrap_key(1, 0, 1, s);
      const Interval cpu = bootstrap_interval(s, x, y, key);
      const int before = device_calls.load();
      Interval with_device{};
      {
        const ScopedBootstrapDevice scope(BootstrapDevice{&host_thrust_device, 5, min_values});
        with_device = bootstrap_interval(s, x, y, key);
      }
      const bool large = x.size() + y.size() >= min_values;
      EXPECT_EQ(device_calls.load() - before, large ? 1 : 0) << name_of(s) << " n " << n;
      expect_same_bits(with_device.low, cpu.low, name_of(s) + " low n " + std::to_string(n));
      expect_same_bits(with_device.high, cpu.high, name_of(s) + " high n " + std::to_string(n));
    }
  EXPECT_EQ(bootstrap_device().resamples, nullptr);  // the scope restored "none"
}

TEST(BootstrapThrustCpp, DevicePathWithoutADeviceIsAnError) {
  const std::vector<double> x{1.0, 2.0, 3.0};
  EXPECT_THROW(bootstrap_resamples(BootstrapStatistic::std_dev, x, {}, {}, nullptr, BootstrapPath::device),
               std::logic_error);
}

}  // namespace
}  // namespace underspec
