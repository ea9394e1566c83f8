// The bootstrap's fast host path (bootstrap_lanes.hpp) against the reference it must equal
// bit for bit: resample_statistic, one resample at a time, at every CPU level this machine
// runs, over sizes around the lane count, ties, constant groups and undefined resamples.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/stats/bootstrap.hpp"
#include "underspec/stats/bootstrap_lanes.hpp"

namespace underspec {
namespace {

constexpr BootstrapStatistic kStatistics[] = {BootstrapStatistic::std_dev, BootstrapStatistic::paired_std_ratio,
                                              BootstrapStatistic::spearman, BootstrapStatistic::two_sample_std_ratio};

// Equal bits; NaN equals NaN (undefined resamples are left out whatever their payload).
bool same(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

std::vector<int> order_of(const std::vector<double>& v) {
  std::vector<int> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return v[i] < v[j]; });
  return order;
}

enum class Kind { normal, ties, constant, one_apart, with_inf };

std::vector<double> values(Kind kind, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (double& x : v) {
    const double z = normal(rng);
    x = kind == Kind::ties ? std::floor(z * 1.5) : kind == Kind::constant || kind == Kind::one_apart ? 0.3 : z;
  }
  if (kind == Kind::one_apart) v[static_cast<std::size_t>(n) / 2] = 0.7;  // most small resamples: no spread
  if (kind == Kind::with_inf) v[0] = INFINITY;
  return v;
}

std::string name(Kind kind) {
  const char* names[] = {"normal", "ties", "constant", "one_apart", "with_inf"};
  return names[static_cast<int>(kind)];
}

// Every level's lanes against resample_statistic, resamples [0, resamples).
void expect_lanes_equal_reference(int nx, int ny, Kind kind, int resamples) {
  const std::vector<double> x = values(kind, nx, 1u + static_cast<unsigned>(nx));
  // y paired with x (same size) for the paired statistics, of size ny for the two-sample one.
  std::vector<double> y = values(kind == Kind::constant ? Kind::ties : kind, nx, 7u);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] += kind == Kind::ties ? 0.0 : 0.5 * x[i];
  const std::vector<double> y2 = values(kind, ny, 11u);
  const std::vector<int> xo = order_of(x), yo = order_of(y), y2o = order_of(y2);
  std::vector<int> ref_counts(static_cast<std::size_t>(nx + std::max(nx, ny)));
  std::vector<double> ref_ranks(ref_counts.size());
  std::vector<std::uint8_t> lane_counts(ref_counts.size() * kBootstrapLanes);
  std::vector<std::int32_t> twice(2 * static_cast<std::size_t>(nx) * kBootstrapLanes);
  const BootstrapScratch ref{ref_counts.data(), ref_ranks.data()};
  for (const CpuIsa isa : supported_cpu_isas()) {
    const CpuKernels& k = cpu_kernels(isa);
    for (const BootstrapStatistic s : kStatistics) {
      const bool two_sample = s == BootstrapStatistic::two_sample_std_ratio;
      const BootstrapData d = two_sample ? BootstrapData{x.data(), nx, y2.data(), ny, xo.data(), y2o.data()}
                                         : BootstrapData{x.data(), nx, y.data(), nx, xo.data(), yo.data()};
      const PhiloxKey key = bootstrap_key(5, 1, 2, s, 1);
      long mismatches = 0, undefined = 0;
      for (int first = 0; first < resamples; first += kBootstrapLanes) {
        double out[kBootstrapLanes];
        k.bootstrap(s, d, key, static_cast<std::uint32_t>(first),
                    BootstrapLaneScratch{lane_counts.data(), twice.data(), ref}, out);
        for (int r = 0; r < kBootstrapLanes; ++r) {
          const double expected = resample_statistic(s, d, key, static_cast<std::uint32_t>(first + r), ref);
          undefined += std::isnan(expected);
          if (!same(out[r], expected) && ++mismatches <= 3)
            ADD_FAILURE() << k.name << " statistic " << static_cast<int>(s) << " n " << nx << "/" << ny << " "
                          << name(kind) << " resample " << first + r << ": " << out[r] << " != " << expected;
        }
      }
      EXPECT_EQ(mismatches, 0) << k.name << " statistic " << static_cast<int>(s) << " n " << nx << " " << name(kind)
                               << " (" << undefined << " undefined)";
    }
  }
}

TEST(BootstrapLanes, EveryResampleEqualsTheReferenceBitForBit) {
  for (const int n : {2, 3, 4, 5, 7, 8, 9, 13, 31, 257, 1000, 1001})
    for (const Kind kind : {Kind::normal, Kind::ties, Kind::constant, Kind::one_apart, Kind::with_inf})
      expect_lanes_equal_reference(n, n == 2 ? 3 : n - 1, kind, kBootstrapResamples);
}

TEST(BootstrapLanes, LargeGroupsEqualTheReferenceBitForBit) {
  expect_lanes_equal_reference(100000, 99997, Kind::normal, 4 * kBootstrapLanes);
  expect_lanes_equal_reference(100003, 1000, Kind::ties, 2 * kBootstrapLanes);
}

// A count that wrapped (256 draws of one value, out of reach of a test through Philox) is
// caught by the lane's total: the readers refuse the counts, and bootstrap_lanes falls back
// to resample_statistic.
TEST(BootstrapLanes, AWrappedCountIsCaught) {
  const int n = 300;
  std::vector<double> v(n), out(kBootstrapLanes);
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i % 7;
  std::vector<int> order = order_of(v);
  std::vector<std::uint8_t> counts(static_cast<std::size_t>(n) * kBootstrapLanes, 0);
  std::vector<std::int32_t> twice(static_cast<std::size_t>(n) * kBootstrapLanes);
  for (int r = 0; r < kBootstrapLanes; ++r) {  // lane r: every draw on value r + 1
    counts[static_cast<std::size_t>((r + 1) * kBootstrapLanes + r)] = 255;
    counts[static_cast<std::size_t>(r)] = n - 255;
  }
  EXPECT_TRUE(lanes_detail::weighted_std_lanes(v.data(), counts.data(), n, out.data()));
  EXPECT_TRUE(lanes_detail::twice_ranks_lanes(v.data(), order.data(), counts.data(), n, twice.data()));
  counts[3 * kBootstrapLanes + 2] = static_cast<std::uint8_t>(counts[3 * kBootstrapLanes + 2] + 1);  // 256: 0
  counts[2] = static_cast<std::uint8_t>(counts[2] - 1);
  EXPECT_FALSE(lanes_detail::weighted_std_lanes(v.data(), counts.data(), n, out.data()));
  EXPECT_FALSE(lanes_detail::twice_ranks_lanes(v.data(), order.data(), counts.data(), n, twice.data()));
}

// A stop request while a large group's resamples run cuts them short between two groups of
// lanes: well under a second at 10^6 values, where all 4000 take half a minute.
TEST(BootstrapLanes, AStopRequestCutsALargeGroupShort) {
  const std::vector<double> x = values(Kind::normal, 1000000, 5u), y = values(Kind::normal, 1000000, 6u);
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  const Interval cut = bootstrap_interval(BootstrapStatistic::spearman, x, y,
                                          bootstrap_key(0, 0, 0, BootstrapStatistic::spearman), 0.95, &stop);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stopper.join();
  EXPECT_TRUE(std::isnan(cut.low) && std::isnan(cut.high));
  EXPECT_LT(seconds, 3.0);
}

// The driver: the lanes path gives all 4000 resamples of the reference path, at 1 and 2
// threads, and so the same interval.
TEST(BootstrapLanes, TheDriverGivesTheReferenceResamplesAtAnyThreadCount) {
  const int threads = omp_get_max_threads();
  for (const int n : {3, 31, 1001, 20000}) {
    const std::vector<double> x = values(Kind::normal, n, 3u), y = values(Kind::ties, n, 4u);
    for (const BootstrapStatistic s : kStatistics) {
      const PhiloxKey key = bootstrap_key(2, 0, 1, s);
      const std::vector<double> ref = bootstrap_resamples(s, x, y, key, nullptr, BootstrapPath::reference);
      ASSERT_EQ(ref.size(), static_cast<std::size_t>(kBootstrapResamples));
      for (const int t : {1, 2}) {
        omp_set_num_threads(t);
        const std::vector<double> fast = bootstrap_resamples(s, x, y, key);
        ASSERT_EQ(fast.size(), ref.size());
        long mismatches = 0;
        for (std::size_t b = 0; b < ref.size(); ++b) mismatches += !same(fast[b], ref[b]);
        EXPECT_EQ(mismatches, 0) << "n " << n << " statistic " << static_cast<int>(s) << " threads " << t;
      }
    }
  }
  omp_set_num_threads(threads);
}

}  // namespace
}  // namespace underspec
