// Percentile bootstrap of a group's spread statistics, seeded and deterministic.
//
// A resample is a function of (key, resample index) alone: draw k of a sample of size n is
// floor(u * n) for the 32-bit word u = Philox4x32-10(counter = (resample, k / 4, lane, 0),
// key)[k % 4], where lane 0 resamples the first sample and lane 1 the second (two-sample
// statistics resample both independently). The key names the group, (cell, model, regime)
// and the statistic, never the run: equal values give equal intervals whatever the thread
// count, shard layout or merge.
//
// resample_statistic() computes the statistic of one resample from the original values and
// the multiplicity of each value in the resample; it is US_HD and allocation-free (the
// caller hands it scratch space) so a CUDA kernel could evaluate one resample per thread.
// The host drives it (bootstrap_interval in src/stats/bootstrap.cpp) through a vectorised
// copy of the same operations (bootstrap_lanes.hpp) that tests hold to it bit for bit; with the
// CUDA backend, large groups' resamples run on the GPU, one Thrust transform over resample
// indices calling this very function (kernels/bootstrap_thrust.hpp, bootstrap_device.hpp).
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "underspec/core/hd.hpp"
#include "underspec/core/rng.hpp"
#include "underspec/stats/stats.hpp"

namespace underspec {

inline constexpr int kBootstrapResamples = 4000;

enum class BootstrapStatistic : std::uint32_t {
  std_dev = 0,               // std(x)
  paired_std_ratio = 1,      // std(y) / std(x), pairs (x_i, y_i) resampled together
  spearman = 2,              // Spearman's rho of the pairs (x_i, y_i)
  two_sample_std_ratio = 3,  // std(y) / std(x), x and y resampled independently
};

// The values a statistic is computed from. x_order / y_order list the indices of x / y in
// ascending order of value (Spearman only: ranks of a resample come from them in O(n)).
struct BootstrapData {
  const double* x;
  int nx;
  const double* y;  // paired: ny == nx; may be null for std_dev
  int ny;
  const int* x_order;
  const int* y_order;
};

// Scratch: counts of nx + ny ints and ranks of nx + ny doubles.
struct BootstrapScratch {
  int* counts;
  double* ranks;
};

// The host's fast path (bootstrap_lanes.hpp) computes this many resamples at once.
inline constexpr int kBootstrapLanes = 8;

// Its scratch for one thread: `counts` (nx + ny) * kBootstrapLanes bytes, `twice_ranks`
// 2 * nx * kBootstrapLanes ints (Spearman only), and the reference's scratch (its fallback).
struct BootstrapLaneScratch {
  std::uint8_t* counts;
  std::int32_t* twice_ranks;
  BootstrapScratch reference;
};

// Key of a group's bootstrap: k0 = cell; k1 = 0xB5 (tag byte) << 24 | variant << 20 |
// statistic << 16 | model << 8 | regime, where variant tells apart two uses of one
// statistic (0: IID RMSE, 1: OOD RMSE). Data streams use k1 = 1..5 (rng.hpp): no overlap.
US_HD_INLINE PhiloxKey bootstrap_key(std::uint32_t cell, std::uint32_t model, std::uint32_t regime,
                                     BootstrapStatistic statistic, std::uint32_t variant = 0) {
  return PhiloxKey{cell, 0xB5000000u | ((variant & 0xFu) << 20) | (static_cast<std::uint32_t>(statistic) << 16) |
                             ((model & 0xFFu) << 8) | (regime & 0xFFu)};
}

// Key of the std interval of a group's RMSE on stress factor `factor` (its index in
// data.stress_factors, < 256): k0 = cell; k1 = 0xB6 (a tag of its own) << 24 | factor << 16 |
// model << 8 | regime. Its own tag leaves bootstrap_key's intervals as they were.
US_HD_INLINE PhiloxKey stress_bootstrap_key(std::uint32_t cell, std::uint32_t model, std::uint32_t regime,
                                            std::uint32_t factor) {
  return PhiloxKey{cell, 0xB6000000u | ((factor & 0xFFu) << 16) | ((model & 0xFFu) << 8) | (regime & 0xFFu)};
}

// Index in [0, n) from 32 random bits: floor(u * n / 2^32).
US_HD_INLINE int bootstrap_index(std::uint32_t bits, int n) {
  return static_cast<int>((static_cast<std::uint64_t>(bits) * static_cast<std::uint64_t>(n)) >> 32);
}

US_HD_INLINE void bootstrap_counts(PhiloxKey key, std::uint32_t resample, std::uint32_t lane, int n, int* counts) {
  for (int i = 0; i < n; ++i) counts[i] = 0;
  // A block's four words in one go (no run-time indexing of the block: ~2x faster on a CPU).
  const int whole = n & ~3;
  for (int k = 0; k < whole; k += 4) {
    const PhiloxBlock block = philox4x32_10(PhiloxCounter{resample, static_cast<std::uint32_t>(k >> 2), lane, 0u}, key);
    ++counts[bootstrap_index(block.v[0], n)];
    ++counts[bootstrap_index(block.v[1], n)];
    ++counts[bootstrap_index(block.v[2], n)];
    ++counts[bootstrap_index(block.v[3], n)];
  }
  if (whole < n) {
    const PhiloxBlock block =
        philox4x32_10(PhiloxCounter{resample, static_cast<std::uint32_t>(whole >> 2), lane, 0u}, key);
    for (int k = whole; k < n; ++k) ++counts[bootstrap_index(block.v[k & 3], n)];
  }
}

// Sample std (n - 1) of values weighted by integer counts summing to n; NaN for n < 2.
// Exactly 0 when every draw holds one value: (c * v) / c need not round back to v, and the
// residue (~1e-17 v) would make a ratio over it a huge finite number instead of undefined.
US_HD_INLINE double weighted_std(const double* v, const int* counts, int n) {
  if (n < 2) return NAN;
  int first = 0;
  while (counts[first] == 0) ++first;
  bool spread = false;
  for (int i = first + 1; i < n && !spread; ++i) spread = counts[i] != 0 && v[i] != v[first];
  if (!spread) return 0.0;
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += counts[i] * v[i];
  const double mean = sum / n;
  double squares = 0.0;
  for (int i = 0; i < n; ++i) squares += counts[i] * (v[i] - mean) * (v[i] - mean);
  return sqrt(squares / (n - 1));
}

// Average ranks (1..n) within the resample of the values with the given counts: walk the
// original values in ascending order, a run of equal values sharing the mean of its ranks.
US_HD_INLINE void resample_ranks(const double* v, const int* order, const int* counts, int n, double* ranks) {
  int before = 0;
  for (int begin = 0; begin < n;) {
    int end = begin, drawn = 0;
    while (end < n && v[order[end]] == v[order[begin]]) drawn += counts[order[end++]];
    const double rank = before + 0.5 * (drawn + 1);
    for (int k = begin; k < end; ++k) ranks[order[k]] = rank;
    before += drawn;
    begin = end;
  }
}

// std(y) / std(x): undefined (NaN) when the resampled x has no spread. IEEE would give +inf
// (or NaN for 0 / 0); +inf resamples would reach the upper percentile of small groups (a
// group of 3 draws one value in 1/9 of resamples) and make it infinite, not a bound.
US_HD_INLINE double ratio_of_stds(double std_y, double std_x) { return std_x > 0.0 ? std_y / std_x : NAN; }

// The statistic of resample `resample` (0 .. kBootstrapResamples - 1); NaN where undefined
// (a resample without spread: a ratio over a zero std, a rank correlation with a constant side).
US_HD_INLINE double resample_statistic(BootstrapStatistic statistic, const BootstrapData& d, PhiloxKey key,
                                       std::uint32_t resample, BootstrapScratch s) {
  int* cx = s.counts;
  int* cy = s.counts + d.nx;
  switch (statistic) {
    case BootstrapStatistic::std_dev:
      bootstrap_counts(key, resample, 0u, d.nx, cx);
      return weighted_std(d.x, cx, d.nx);
    case BootstrapStatistic::paired_std_ratio:
      bootstrap_counts(key, resample, 0u, d.nx, cx);
      return ratio_of_stds(weighted_std(d.y, cx, d.nx), weighted_std(d.x, cx, d.nx));
    case BootstrapStatistic::two_sample_std_ratio:
      bootstrap_counts(key, resample, 0u, d.nx, cx);
      bootstrap_counts(key, resample, 1u, d.ny, cy);
      return ratio_of_stds(weighted_std(d.y, cy, d.ny), weighted_std(d.x, cx, d.nx));
    case BootstrapStatistic::spearman: {
      const int n = d.nx;
      bootstrap_counts(key, resample, 0u, n, cx);
      double* rx = s.ranks;
      double* ry = s.ranks + n;
      resample_ranks(d.x, d.x_order, cx, n, rx);
      resample_ranks(d.y, d.y_order, cx, n, ry);
      const double m = 0.5 * (n + 1);
      double sxy = 0.0, sxx = 0.0, syy = 0.0;
      for (int i = 0; i < n; ++i) {
        sxy += cx[i] * (rx[i] - m) * (ry[i] - m);
        sxx += cx[i] * (rx[i] - m) * (rx[i] - m);
        syy += cx[i] * (ry[i] - m) * (ry[i] - m);
      }
      return (sxx == 0.0 || syy == 0.0) ? NAN : sxy / sqrt(sxx * syy);
    }
  }
  return NAN;
}

// How the resamples are computed: `lanes` (the default) evaluates kBootstrapLanes of them at
// once with the CPU level's vector code (bootstrap_lanes.hpp), or hands a group of at least
// the installed device's min_values to that device (bootstrap_device.hpp); `reference` calls
// resample_statistic once per resample on the host; `device` hands every group to the
// installed device (std::logic_error when none is). All give the same bits; the last two are
// for tests and the benchmark.
enum class BootstrapPath { lanes, reference, device };

// The kBootstrapResamples values of the statistic, resample b at index b (NaN where
// undefined); empty when the sizes allow no statistic (as bootstrap_interval's NaN). Once
// `stop` reads true the resamples left are NaN.
std::vector<double> bootstrap_resamples(BootstrapStatistic statistic, std::span<const double> x,
                                        std::span<const double> y, PhiloxKey key,
                                        const std::atomic<bool>* stop = nullptr,
                                        BootstrapPath path = BootstrapPath::lanes);

// The percentile interval (type-7 quantiles 0.5 -+ level / 2) of resample values, NaN ones
// left out (NaN ends when all are or there are none); reorders `values`. Always the host's:
// a device only computes the values, so its intervals are the CPU's by construction.
Interval percentile_interval(std::vector<double>& values, double level = 0.95);

// Host driver: the 95% percentile interval (type-7 quantiles 0.025 and 0.975) of the
// statistic over kBootstrapResamples resamples; resamples where it is NaN are left out
// (NaN ends when all are). Paired statistics take y of x's size. Once `stop` (if given)
// reads true, the resamples left are skipped and the interval is NaN: a stop request need
// not wait for a large group's 4000 resamples (seconds each statistic at 10^5 replicas).
Interval bootstrap_interval(BootstrapStatistic statistic, std::span<const double> x, std::span<const double> y,
                            PhiloxKey key, double level = 0.95, const std::atomic<bool>* stop = nullptr);

}  // namespace underspec
