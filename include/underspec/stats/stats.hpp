// Statistics of a group of replicas: the spread of OOD RMSE across seeds is the
// measurement, so these are computed in double and tested against known inputs.
#pragma once

#include <span>
#include <vector>

namespace underspec {

struct Summary {
  int count = 0;
  // std is the sample standard deviation (n - 1): NaN (undefined) for a single value.
  double mean = 0, std = 0, min = 0, q1 = 0, median = 0, q3 = 0, max = 0;
};

// Quantile with linear interpolation between order statistics (numpy's default, R type 7).
double quantile_sorted(std::span<const double> sorted, double q);
// Sample standard deviation (n - 1); NaN for fewer than two values (never 0: undefined).
Summary summarize(std::span<const double> values);

// --- Distributions ------------------------------------------------------------------
// Regularized incomplete beta function I_x(a, b) (continued fraction, modified Lentz).
double incomplete_beta(double a, double b, double x);
// Student t with `df` degrees of freedom (df > 0, not necessarily an integer).
double t_cdf(double t, double df);
double t_quantile(double p, double df);  // inverse of t_cdf, 0 < p < 1
// F distribution with (df1, df2) degrees of freedom: CDF and upper tail P(F > f).
double f_cdf(double f, double df1, double df2);
double f_sf(double f, double df1, double df2);

// --- Tests and intervals ------------------------------------------------------------
struct Interval {
  double low, high;
};

// Mean with the 95% Student t interval mean ± t_{0.975, n-1} s / sqrt(n); NaN ends for n < 2.
Interval mean_t_interval(std::span<const double> values, double level = 0.95);

// Ranks 1..n, ties given the average of the ranks they span (scipy.stats.rankdata).
std::vector<double> average_ranks(std::span<const double> values);
// Spearman's rank correlation (Pearson correlation of average ranks); NaN when either
// side is constant or n < 2.
double spearman(std::span<const double> x, std::span<const double> y);

// Welch's two-sample t test of mean(b) - mean(a), unequal variances.
struct WelchResult {
  double difference;  // mean(b) - mean(a)
  double se, df, t, p_value;
  Interval ci;  // difference ± t_{(1+level)/2, df} se
};
WelchResult welch(std::span<const double> a, std::span<const double> b, double level = 0.95);
// Welch–Satterthwaite degrees of freedom of two sample variances and sizes.
double welch_df(double var_a, double n_a, double var_b, double n_b);

// Brown–Forsythe test of equal spread (Levene's test centred on the median): one-way ANOVA
// of |x - median| between the groups; p-value from F(df1 = k - 1, df2 = N - k).
struct BrownForsytheResult {
  double statistic, df1, df2, p_value;
};
BrownForsytheResult brown_forsythe(std::span<const double> a, std::span<const double> b);

}  // namespace underspec
