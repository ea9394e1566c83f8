// The statistics' cost (see BENCHMARKS.md, "Statistics"): the 4000 resamples of one
// bootstrap interval of each kind (bootstrap_resamples: all of an interval but its two order
// statistics) at several group sizes, in nanoseconds per draw (4000 resamples x n draws), on
// one thread, by the lanes path the runs use and by the reference (resample_statistic per
// resample), with a check that both give the same resamples bit for bit; and bootstrap_counts
// against the loop it replaced (a block word picked at run time), side by side in this run,
// with a check that both draw the same counts.
//   underspec_bench_stats [n ...]      (default: 1000 10000 100000)
#include <omp.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string_view>
#include <vector>

#include "underspec/stats/bootstrap.hpp"

namespace {

using namespace underspec;
using Clock = std::chrono::steady_clock;

// The draw loop before the block's words were unrolled: the same draws, one at a time.
void counts_one_word_at_a_time(PhiloxKey key, std::uint32_t resample, std::uint32_t lane, int n, int* counts) {
  for (int i = 0; i < n; ++i) counts[i] = 0;
  PhiloxBlock block{};
  for (int k = 0; k < n; ++k) {
    if ((k & 3) == 0) block = philox4x32_10(PhiloxCounter{resample, static_cast<std::uint32_t>(k >> 2), lane, 0u}, key);
    ++counts[bootstrap_index(block.v[k & 3], n)];
  }
}

template <class F>
double best_seconds(F&& f, int repeats = 3) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  const char* usage = "usage: underspec_bench_stats [n ...]   (default: 1000 10000 100000)\n";
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (arg == "-h" || arg == "--help") {
      std::printf("%s", usage);
      return 0;
    }
    // A group size is a whole number >= 2 (one value has no spread); atoi read "abc" and
    // "--help" as 0 (a table of inf) and a negative size aborted in std::vector.
    char* end = nullptr;
    const long n = std::strtol(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0' || n < 2 || n > 100000000) {
      std::fprintf(stderr, "underspec_bench_stats: group size '%s' is not a whole number in [2, 1e8]\n%s", argv[i],
                   usage);
      return 2;
    }
    sizes.push_back(static_cast<int>(n));
  }
  if (sizes.empty()) sizes = {1000, 10000, 100000};
  std::printf("%8s  %-22s %10s %12s %12s %8s\n", "n", "statistic", "seconds", "ns per draw", "reference", "speedup");
  for (const int n : sizes) {
    std::mt19937 rng(1);
    std::normal_distribution<double> normal;
    std::vector<double> x(n), y(n);
    for (int i = 0; i < n; ++i) {
      x[i] = normal(rng);
      y[i] = x[i] + normal(rng);
    }
    const double draws = static_cast<double>(kBootstrapResamples) * n;
    const char* names[] = {"std", "paired std ratio", "spearman", "two-sample std ratio"};
    for (const auto s : {BootstrapStatistic::std_dev, BootstrapStatistic::paired_std_ratio,
                         BootstrapStatistic::spearman, BootstrapStatistic::two_sample_std_ratio}) {
      // The reference (resample_statistic one resample at a time) and the lanes path, one
      // after the other in this run, with a check that they give the same resamples.
      const PhiloxKey key = bootstrap_key(0, 0, 0, s);
      std::vector<double> ref, fast;
      const double t_ref =
          best_seconds([&] { ref = bootstrap_resamples(s, x, y, key, nullptr, BootstrapPath::reference); }, 1);
      const double t = best_seconds([&] { fast = bootstrap_resamples(s, x, y, key); }, 1);
      long different = 0;
      for (std::size_t b = 0; b < ref.size(); ++b)
        different += !(std::isnan(ref[b]) && std::isnan(fast[b])) &&
                     std::bit_cast<std::uint64_t>(ref[b]) != std::bit_cast<std::uint64_t>(fast[b]);
      std::printf("%8d  %-22s %10.3f %12.1f %12.1f %7.2fx  %s\n", n, names[static_cast<int>(s)], t, 1e9 * t / draws,
                  1e9 * t_ref / draws, t_ref / t, different ? "DIFFERENT RESAMPLES" : "same resamples");
      if (different) return 1;
    }
    // The draw loop alone, both ways, alternating, best of three each.
    std::vector<int> a(n), b(n);
    const PhiloxKey key{1, 2};
    const int resamples = n >= 100000 ? 200 : 2000;
    long mismatches = 0;
    for (int r = 0; r < 4; ++r) {
      bootstrap_counts(key, r, 0, n, a.data());
      counts_one_word_at_a_time(key, r, 0, n, b.data());
      mismatches += a != b;
    }
    const double now = best_seconds([&] {
      for (int r = 0; r < resamples; ++r) bootstrap_counts(key, r, 0, n, a.data());
    });
    const double before = best_seconds([&] {
      for (int r = 0; r < resamples; ++r) counts_one_word_at_a_time(key, r, 0, n, b.data());
    });
    const double per = 1e9 / (static_cast<double>(resamples) * n);
    std::printf("%8d  draws: %.1f ns now, %.1f ns one word at a time: %.2fx (%s)\n", n, now * per, before * per,
                before / now, mismatches ? "DIFFERENT COUNTS" : "same counts");
    if (mismatches) return 1;
  }
  return 0;
}
