// Distributions, tests and intervals of stats.hpp and bootstrap.hpp against known values
// (published tables, closed forms and hand-computed small cases).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "underspec/stats/bootstrap.hpp"
#include "underspec/stats/stats.hpp"

namespace underspec {
namespace {

TEST(Inference, IncompleteBetaClosedForms) {
  for (double x : {0.01, 0.3, 0.5, 0.77, 0.999}) {
    EXPECT_NEAR(incomplete_beta(1, 1, x), x, 1e-15);
    EXPECT_NEAR(incomplete_beta(3.5, 1, x), std::pow(x, 3.5), 1e-14);
    EXPECT_NEAR(incomplete_beta(1, 2.5, x), 1 - std::pow(1 - x, 2.5), 1e-14);
    EXPECT_NEAR(incomplete_beta(2.5, 4, x) + incomplete_beta(4, 2.5, 1 - x), 1.0, 1e-14);
  }
  EXPECT_EQ(incomplete_beta(2, 3, 0), 0.0);
  EXPECT_EQ(incomplete_beta(2, 3, 1), 1.0);
}

TEST(Inference, StudentTQuantilesMatchTables) {
  EXPECT_NEAR(t_quantile(0.975, 1), 12.706204736174707, 1e-9);
  EXPECT_NEAR(t_quantile(0.975, 9), 2.2621571627982053, 1e-9);
  EXPECT_NEAR(t_quantile(0.975, 30), 2.0422724563012373, 1e-9);
  EXPECT_NEAR(t_quantile(0.975, 1e6), 1.9599663568141066, 1e-9);  // -> the normal quantile
  EXPECT_NEAR(t_quantile(0.025, 9), -2.2621571627982053, 1e-9);
  EXPECT_EQ(t_quantile(0.5, 4), 0.0);
  EXPECT_TRUE(std::isnan(t_quantile(0.975, 0)));
  EXPECT_TRUE(std::isnan(t_quantile(1.0, 3)));
}

TEST(Inference, StudentTCdfClosedForms) {
  for (double t : {-30.0, -2.0, -0.3, 0.0, 0.7, 4.0}) {
    EXPECT_NEAR(t_cdf(t, 1), 0.5 + std::atan(t) / std::numbers::pi, 1e-14) << t;  // Cauchy
    EXPECT_NEAR(t_cdf(t, 2), 0.5 + t / (2 * std::sqrt(2 + t * t)), 1e-14) << t;
  }
  for (double df : {1.0, 2.5, 9.0, 30.0, 200.0})
    for (double p : {0.001, 0.025, 0.3, 0.9, 0.975}) EXPECT_NEAR(t_cdf(t_quantile(p, df), df), p, 1e-13);
}

TEST(Inference, FDistributionKnownValues) {
  // F(2, d2) has the closed-form tail (1 + 2f / d2)^(-d2 / 2).
  EXPECT_NEAR(f_sf(3.0, 2, 10), std::pow(1.6, -5), 1e-15);
  EXPECT_NEAR(f_cdf(3.0, 2, 10), 1 - std::pow(1.6, -5), 1e-15);
  // The 95% point of F(1, 10) (tables: 4.96) is the square of t_{0.975, 10}.
  EXPECT_NEAR(f_cdf(4.9646027437307145, 1, 10), 0.95, 1e-12);
  const double t = 1.7;
  EXPECT_NEAR(f_sf(t * t, 1, 7), 2 * t_cdf(-t, 7), 1e-14);
  EXPECT_NEAR(f_cdf(1.3, 4, 12) + f_sf(1.3, 4, 12), 1.0, 1e-15);
  EXPECT_EQ(f_cdf(0, 3, 4), 0.0);
  EXPECT_EQ(f_sf(0, 3, 4), 1.0);
}

TEST(Inference, MeanTInterval) {
  const std::vector<double> v{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};  // mean 5.5, s^2 = 55/6
  const Interval ci = mean_t_interval(v);
  const double half = 2.2621571627982053 * std::sqrt(55.0 / 6.0 / 10.0);
  EXPECT_NEAR(ci.low, 5.5 - half, 1e-9);
  EXPECT_NEAR(ci.high, 5.5 + half, 1e-9);
  EXPECT_TRUE(std::isnan(mean_t_interval(std::vector<double>{1.0}).low));
}

TEST(Inference, AverageRanksAndSpearmanWithTies) {
  EXPECT_EQ(average_ranks(std::vector<double>{10, 20, 20, 5, 20}), (std::vector<double>{2, 4, 4, 1, 4}));
  // x ranks 1, 2.5, 2.5, 4; y ranks 1, 3, 2, 4: rho = 4.5 / sqrt(4.5 * 5).
  const std::vector<double> x{1, 2, 2, 3}, y{1, 3, 2, 4};
  EXPECT_NEAR(spearman(x, y), 4.5 / std::sqrt(22.5), 1e-15);
  EXPECT_NEAR(spearman(x, std::vector<double>{4, 3, 2, 1}), -4.5 / std::sqrt(22.5), 1e-15);
  EXPECT_DOUBLE_EQ(spearman(std::vector<double>{1, 2, 3}, std::vector<double>{10, 200, 3000}), 1.0);
  EXPECT_TRUE(std::isnan(spearman(std::vector<double>{1, 1, 1}, std::vector<double>{1, 2, 3})));
}

TEST(Inference, WelchDegreesOfFreedomAndInterval) {
  // var 1 over 10 and var 4 over 20: (0.1 + 0.2)^2 / (0.01/9 + 0.04/19).
  EXPECT_NEAR(welch_df(1, 10, 4, 20), 0.09 / (0.01 / 9 + 0.04 / 19), 1e-12);
  EXPECT_NEAR(welch_df(1, 10, 4, 20), 27.981818181818184, 1e-9);
  const std::vector<double> a{1, 2, 3, 4}, b{2, 4, 6, 8, 10};  // means 2.5, 6; vars 5/3, 10
  const WelchResult w = welch(a, b);
  EXPECT_DOUBLE_EQ(w.difference, 3.5);
  const double se = std::sqrt(5.0 / 3.0 / 4.0 + 10.0 / 5.0);
  EXPECT_NEAR(w.se, se, 1e-15);
  EXPECT_NEAR(w.df, welch_df(5.0 / 3.0, 4, 10, 5), 1e-12);
  EXPECT_NEAR(w.ci.high - w.difference, t_quantile(0.975, w.df) * se, 1e-12);
  EXPECT_NEAR(w.p_value, 2 * t_cdf(-3.5 / se, w.df), 1e-15);
}

TEST(Inference, BrownForsytheHandComputed) {
  // Medians 3 and 3: |x - 3| = {2, 1, 0, 1, 7} and {1, 1, 0, 0, 0}; means 2.2 and 0.4,
  // between 5 * 0.81 * 2 = 8.1, within 30.8 + 1.2 = 32: F = 8 * 8.1 / 32 = 2.025 on (1, 8).
  const std::vector<double> a{1, 2, 3, 4, 10}, b{2, 2, 3, 3, 3};
  const BrownForsytheResult r = brown_forsythe(a, b);
  EXPECT_NEAR(r.statistic, 2.025, 1e-14);
  EXPECT_EQ(r.df1, 1.0);
  EXPECT_EQ(r.df2, 8.0);
  EXPECT_NEAR(r.p_value, 2 * t_cdf(-std::sqrt(2.025), 8), 1e-14);  // F(1, d) = t_d^2
  EXPECT_NEAR(r.p_value, 0.1925328746027822, 1e-12);               // scipy.stats.levene
  // Even sizes: the median is the mean of the middle two. {0, 1, 3, 10} (median 2) against
  // {5, 5, 6, 6} (median 5.5): deviations {2, 1, 1, 8} and {0.5, 0.5, 0.5, 0.5}.
  const BrownForsytheResult e = brown_forsythe(std::vector<double>{0, 1, 3, 10}, std::vector<double>{5, 5, 6, 6});
  // means 3 and 0.5, grand 1.75: between 4 * 1.5625 * 2 = 12.5; within 1 + 4 + 4 + 25 = 34.
  EXPECT_NEAR(e.statistic, 6 * 12.5 / 34, 1e-14);
  EXPECT_EQ(e.df2, 6.0);
}

TEST(Inference, BrownForsytheUndefinedHasNoDegreesOfFreedom) {
  // One value per group: df2 = N - k = 0 is no F distribution; an empty group has no df1 either.
  const BrownForsytheResult one = brown_forsythe(std::vector<double>{1}, std::vector<double>{2});
  EXPECT_EQ(one.df1, 1.0);
  EXPECT_TRUE(std::isnan(one.df2));
  EXPECT_TRUE(std::isnan(one.p_value));
  const BrownForsytheResult none = brown_forsythe(std::vector<double>{}, std::vector<double>{});
  EXPECT_TRUE(std::isnan(none.df1));
  EXPECT_TRUE(std::isnan(none.df2));  // was N - 2 = -2
  EXPECT_TRUE(std::isnan(none.p_value));
  const BrownForsytheResult half = brown_forsythe(std::vector<double>{}, std::vector<double>{1, 2, 3});
  EXPECT_TRUE(std::isnan(half.df1));
  EXPECT_TRUE(std::isnan(half.df2));
}

TEST(Inference, BrownForsytheWithoutSpreadWithinGroupsIsUndefined) {
  // Two values per group: each group's deviations from its median are equal, so nothing
  // varies within the groups. The residue of rounding must not become F ~ 1e29, p ~ 0.
  for (const auto& [a, b] : std::vector<std::pair<std::vector<double>, std::vector<double>>>{
           {{3.1, 3.7}, {2.9, 3.05}}, {{1.0, 1.0}, {2.0, 2.0}}, {{0.1, 0.3}, {0.7, 0.71}}}) {
    const BrownForsytheResult r = brown_forsythe(a, b);
    EXPECT_TRUE(std::isnan(r.statistic)) << r.statistic;
    EXPECT_TRUE(std::isnan(r.p_value)) << r.p_value;
    EXPECT_EQ(r.df1, 1.0);
    EXPECT_EQ(r.df2, static_cast<double>(a.size() + b.size()) - 2.0);
  }
  // One group of 2 next to a larger one still has spread within the groups: defined.
  const BrownForsytheResult mixed = brown_forsythe(std::vector<double>{1, 2}, std::vector<double>{1, 4, 9});
  EXPECT_FALSE(std::isnan(mixed.p_value));
}

// Expands a resample's counts into the values it holds.
std::vector<double> expand(const std::vector<double>& v, const std::vector<int>& counts) {
  std::vector<double> out;
  for (std::size_t i = 0; i < v.size(); ++i) out.insert(out.end(), static_cast<std::size_t>(counts[i]), v[i]);
  return out;
}

TEST(Bootstrap, ResampleStatisticIsTheStatisticOfTheExpandedResample) {
  const std::vector<double> x{0.5, 1.5, 1.5, 2.0, 7.0, 3.0, 3.0, 0.1, 9.0}, y{2, 1, 1, 5, 5, 0, 3, 3, 8};
  std::vector<int> xo(x.size()), yo(y.size());
  for (int i = 0; i < static_cast<int>(x.size()); ++i) xo[i] = yo[i] = i;
  std::stable_sort(xo.begin(), xo.end(), [&](int i, int j) { return x[i] < x[j]; });
  std::stable_sort(yo.begin(), yo.end(), [&](int i, int j) { return y[i] < y[j]; });
  const int n = static_cast<int>(x.size());
  const BootstrapData d{x.data(), n, y.data(), n, xo.data(), yo.data()};
  std::vector<int> counts(2 * x.size());
  std::vector<double> ranks(2 * x.size());
  const PhiloxKey key = bootstrap_key(3, 0, 1, BootstrapStatistic::spearman);
  for (std::uint32_t b = 0; b < 50; ++b) {
    const double rho = resample_statistic(BootstrapStatistic::spearman, d, key, b, {counts.data(), ranks.data()});
    std::vector<int> c(counts.begin(), counts.begin() + n);
    // The same draws, paired: each drawn index contributes its (x, y) pair.
    std::vector<double> rx, ry;
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < c[i]; ++k) {
        rx.push_back(x[i]);
        ry.push_back(y[i]);
      }
    const double expected = spearman(rx, ry);
    if (std::isnan(expected))
      EXPECT_TRUE(std::isnan(rho));
    else
      EXPECT_NEAR(rho, expected, 1e-12) << b;
    const double s = resample_statistic(BootstrapStatistic::std_dev, d, key, b, {counts.data(), ranks.data()});
    EXPECT_NEAR(s, summarize(expand(x, c)).std, 1e-12);
  }
}

TEST(Bootstrap, DrawsAreUniformOverIndices) {
  std::vector<int> counts(7), total(7);
  for (std::uint32_t b = 0; b < 2000; ++b) {
    bootstrap_counts(PhiloxKey{1, 2}, b, 0, 7, counts.data());
    for (int i = 0; i < 7; ++i) total[i] += counts[i];
  }
  for (int t : total) EXPECT_NEAR(t, 2000, 150);  // 14000 draws over 7 indices, sd ~ 41
}

// The draws are the documented scheme (bootstrap.hpp), whatever the loop that makes them:
// draw k = floor(u * n / 2^32), u = Philox(counter (resample, k / 4, lane, 0), key)[k % 4].
TEST(Bootstrap, CountsAreTheDocumentedDraws) {
  const PhiloxKey key{3, 0xB5000000u};
  for (const int n : {1, 2, 3, 4, 5, 7, 8, 13, 1001})
    for (const std::uint32_t lane : {0u, 1u}) {
      std::vector<int> counts(n, -1), expected(n, 0);
      bootstrap_counts(key, 17, lane, n, counts.data());
      for (int k = 0; k < n; ++k) {
        const PhiloxBlock b = philox4x32_10(PhiloxCounter{17, static_cast<std::uint32_t>(k / 4), lane, 0}, key);
        ++expected[static_cast<std::size_t>((std::uint64_t{b.v[k % 4]} * static_cast<std::uint64_t>(n)) >> 32)];
      }
      EXPECT_EQ(counts, expected) << "n = " << n << ", lane " << lane;
    }
}

TEST(Bootstrap, IntervalsAreDeterministicAndDependOnTheKey) {
  const std::vector<double> x{1.0, 1.3, 0.7, 2.2, 1.9, 0.4, 1.1, 1.6, 0.9, 1.4};
  const PhiloxKey key = bootstrap_key(0, 0, 0, BootstrapStatistic::std_dev);
  const Interval a = bootstrap_interval(BootstrapStatistic::std_dev, x, {}, key);
  const Interval b = bootstrap_interval(BootstrapStatistic::std_dev, x, {}, key);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  const double s = summarize(x).std;
  EXPECT_LT(a.low, s);
  EXPECT_GT(a.high, s);
  const Interval other =
      bootstrap_interval(BootstrapStatistic::std_dev, x, {}, bootstrap_key(1, 0, 0, BootstrapStatistic::std_dev));
  EXPECT_NE(a.low, other.low);
  // Undefined below two values.
  EXPECT_TRUE(std::isnan(bootstrap_interval(BootstrapStatistic::std_dev, std::vector<double>{1.0}, {}, key).low));
  EXPECT_TRUE(
      std::isnan(bootstrap_interval(BootstrapStatistic::two_sample_std_ratio, std::vector<double>{1.0}, x, key).high));
}

// Ctrl-C during the statistics of a 3x10^5-replica group took 11 s to be heard (the stop was
// checked between groups only): the check now runs within an interval, and a check that never
// throws changes nothing.
TEST(Bootstrap, AStopCheckEndsAnIntervalEarlyAndOtherwiseChangesNothing) {
  std::vector<double> x(20000), y(20000);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = std::sin(0.37 * static_cast<double>(i));
    y[i] = x[i] + std::cos(1.3 * static_cast<double>(i));
  }
  const PhiloxKey key = bootstrap_key(0, 0, 0, BootstrapStatistic::spearman);
  std::atomic<int> checks{0};
  EXPECT_THROW(bootstrap_interval(BootstrapStatistic::spearman, x, y, key, 0.95,
                                  [&] {
                                    if (++checks >= 2) throw std::runtime_error("stop");
                                  }),
               std::runtime_error);
  EXPECT_LT(checks.load(), 10);  // it stopped at once, not after all 4000 resamples
  const Interval plain = bootstrap_interval(BootstrapStatistic::spearman, x, y, key);
  const Interval checked = bootstrap_interval(BootstrapStatistic::spearman, x, y, key, 0.95, [] {});
  EXPECT_EQ(plain.low, checked.low);
  EXPECT_EQ(plain.high, checked.high);
}

TEST(Bootstrap, AResampleOfOneRepeatedValueHasExactlyZeroStd) {
  // 3 * 0.1 / 3 is not 0.1 in double: without the exact check the std would be ~1e-17.
  const std::vector<double> v{0.1, 0.7, 0.3};
  const std::vector<int> one{3, 0, 0}, two{0, 2, 1};
  EXPECT_EQ(weighted_std(v.data(), one.data(), 3), 0.0);
  EXPECT_GT(weighted_std(v.data(), two.data(), 3), 0.1);
  EXPECT_EQ(summarize(std::vector<double>{0.1, 0.1, 0.1}).std, 0.0);
}

// The QA case: groups of 3, where 1 resample in 9 draws the baseline's one value three times.
// Those resamples have an undefined ratio (std 0 below) and are left out, as README says,
// instead of counting as +inf and making the upper end infinite (null in the outputs).
TEST(Bootstrap, StdRatioLeavesOutResamplesWithoutBaselineSpread) {
  const std::vector<double> base{0.1, 0.7, 0.3}, remedy{0.25, 0.4, 0.2};
  for (const BootstrapStatistic statistic :
       {BootstrapStatistic::two_sample_std_ratio, BootstrapStatistic::paired_std_ratio}) {
    const PhiloxKey key = bootstrap_key(0, 1, 2, statistic);
    const std::vector<int> order{0, 2, 1};  // unused by the ratios
    const BootstrapData d{base.data(), 3, remedy.data(), 3, order.data(), order.data()};
    std::vector<int> counts(6);
    std::vector<double> ranks(6), defined;
    int undefined = 0;
    for (int b = 0; b < kBootstrapResamples; ++b) {
      const double r =
          resample_statistic(statistic, d, key, static_cast<std::uint32_t>(b), {counts.data(), ranks.data()});
      ASSERT_FALSE(std::isinf(r)) << b;
      if (std::isnan(r)) {
        ++undefined;
        // Only a baseline resample of one value is undefined (the remedy's has std 0: ratio 0).
        EXPECT_EQ(*std::max_element(counts.begin(), counts.begin() + 3), 3) << b;
      } else {
        defined.push_back(r);
      }
    }
    EXPECT_NEAR(undefined, kBootstrapResamples / 9.0, 60) << static_cast<int>(statistic);  // sd ~ 20
    std::sort(defined.begin(), defined.end());
    const Interval ci = bootstrap_interval(statistic, base, remedy, key);
    ASSERT_TRUE(std::isfinite(ci.low) && std::isfinite(ci.high)) << static_cast<int>(statistic);
    EXPECT_EQ(ci.low, quantile_sorted(defined, 0.025));
    EXPECT_EQ(ci.high, quantile_sorted(defined, 0.975));
    // Sensible: below the largest defined resample ratio and above the point estimate.
    EXPECT_LE(ci.high, defined.back());
    EXPECT_GT(ci.high, summarize(remedy).std / summarize(base).std);
  }
  // A baseline without any spread leaves every resample undefined: NaN ends (null, documented).
  const Interval none = bootstrap_interval(BootstrapStatistic::two_sample_std_ratio, std::vector<double>{0.1, 0.1, 0.1},
                                           remedy, bootstrap_key(0, 1, 2, BootstrapStatistic::two_sample_std_ratio));
  EXPECT_TRUE(std::isnan(none.low) && std::isnan(none.high));
}

}  // namespace
}  // namespace underspec
