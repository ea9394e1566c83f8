// Group statistics (see stats.hpp).
#include "underspec/stats/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace underspec {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double mean_of(std::span<const double> v) {
  double sum = 0.0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}
double variance_of(std::span<const double> v) {
  if (v.size() < 2) return kNaN;
  // Exactly 0 for equal values (the mean's rounding would leave ~1e-17 v): a ratio over this
  // std is then recognisably undefined, as in the bootstrap's weighted_std.
  if (std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); })) return 0.0;
  const double m = mean_of(v);
  double squares = 0.0;
  for (double x : v) squares += (x - m) * (x - m);
  return squares / static_cast<double>(v.size() - 1);
}

// Continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz's method).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300, kEps = 1e-16;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0, d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < kEps) break;
  }
  return h;
}

}  // namespace

double quantile_sorted(std::span<const double> sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto lower = static_cast<std::size_t>(std::floor(position));
  const std::size_t upper = std::min(lower + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(lower);
  if (fraction == 0.0) return sorted[lower];  // the same value, and no 0 * inf
  return sorted[lower] + fraction * (sorted[upper] - sorted[lower]);
}

Summary summarize(std::span<const double> values) {
  Summary s;
  s.count = static_cast<int>(values.size());
  if (values.empty()) {
    s.mean = s.std = s.min = s.q1 = s.median = s.q3 = s.max = kNaN;
    return s;
  }
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  s.mean = mean_of(sorted);
  s.std = std::sqrt(variance_of(sorted));  // NaN for one value
  s.min = sorted.front();
  s.max = sorted.back();
  s.q1 = quantile_sorted(sorted, 0.25);
  s.median = quantile_sorted(sorted, 0.5);
  s.q3 = quantile_sorted(sorted, 0.75);
  return s;
}

double incomplete_beta(double a, double b, double x) {
  if (!(a > 0.0) || !(b > 0.0) || std::isnan(x)) return kNaN;
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  // The continued fraction converges quickly for x < (a + 1) / (a + b + 2); use the symmetry
  // I_x(a, b) = 1 - I_{1-x}(b, a) beyond it.
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b;
}

double t_cdf(double t, double df) {
  if (std::isnan(t) || !(df > 0.0)) return kNaN;
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).
  const double tail = 0.5 * incomplete_beta(0.5 * df, 0.5, df / (df + t * t));
  return t > 0 ? 1.0 - tail : tail;
}

double t_quantile(double p, double df) {
  if (!(p > 0.0 && p < 1.0) || !(df > 0.0)) return kNaN;
  if (p == 0.5) return 0.0;
  // Solve the upper tail 0.5 I_x(df/2, 1/2) = q for t > 0 by bisection on t (the tail is
  // monotone; ~1100 halvings at most reach adjacent doubles), then apply the sign.
  const double q = p > 0.5 ? 1.0 - p : p;
  const auto upper_tail = [df](double t) { return 0.5 * incomplete_beta(0.5 * df, 0.5, df / (df + t * t)); };
  double lo = 0.0, hi = 1.0;
  while (upper_tail(hi) > q && hi < 1e300) hi *= 2.0;
  for (int i = 0; i < 2000; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (upper_tail(mid) > q ? lo : hi) = mid;
  }
  const double t = 0.5 * (lo + hi);
  return p > 0.5 ? t : -t;
}

double f_cdf(double f, double df1, double df2) {
  if (std::isnan(f) || !(df1 > 0.0) || !(df2 > 0.0)) return kNaN;
  if (f <= 0.0) return 0.0;
  return incomplete_beta(0.5 * df1, 0.5 * df2, df1 * f / (df1 * f + df2));
}

double f_sf(double f, double df1, double df2) {
  if (std::isnan(f) || !(df1 > 0.0) || !(df2 > 0.0)) return kNaN;
  if (f <= 0.0) return 1.0;
  if (std::isinf(f)) return 0.0;
  return incomplete_beta(0.5 * df2, 0.5 * df1, df2 / (df2 + df1 * f));
}

Interval mean_t_interval(std::span<const double> values, double level) {
  if (values.size() < 2) return {kNaN, kNaN};
  const double n = static_cast<double>(values.size());
  const double m = mean_of(values);
  const double half = t_quantile(0.5 + 0.5 * level, n - 1.0) * std::sqrt(variance_of(values) / n);
  return {m - half, m + half};
}

std::vector<double> average_ranks(std::span<const double> values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return values[i] < values[j]; });
  std::vector<double> ranks(values.size());
  for (std::size_t begin = 0; begin < order.size();) {
    std::size_t end = begin + 1;
    while (end < order.size() && values[order[end]] == values[order[begin]]) ++end;
    const double rank = 0.5 * static_cast<double>(begin + 1 + end);  // mean of begin+1 .. end
    for (std::size_t k = begin; k < end; ++k) ranks[order[k]] = rank;
    begin = end;
  }
  return ranks;
}

double spearman(std::span<const double> x, std::span<const double> y) {
  if (x.size() != y.size() || x.size() < 2) return kNaN;
  const std::vector<double> rx = average_ranks(x), ry = average_ranks(y);
  const double m = 0.5 * static_cast<double>(x.size() + 1);
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (rx[i] - m) * (ry[i] - m);
    sxx += (rx[i] - m) * (rx[i] - m);
    syy += (ry[i] - m) * (ry[i] - m);
  }
  if (sxx == 0.0 || syy == 0.0) return kNaN;
  return sxy / std::sqrt(sxx * syy);
}

double welch_df(double var_a, double n_a, double var_b, double n_b) {
  const double ua = var_a / n_a, ub = var_b / n_b;
  return (ua + ub) * (ua + ub) / (ua * ua / (n_a - 1.0) + ub * ub / (n_b - 1.0));
}

WelchResult welch(std::span<const double> a, std::span<const double> b, double level) {
  WelchResult r{};
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  r.difference = (a.empty() || b.empty()) ? kNaN : mean_of(b) - mean_of(a);
  const double va = variance_of(a), vb = variance_of(b);  // NaN for n < 2
  r.se = std::sqrt(va / na + vb / nb);
  r.df = welch_df(va, na, vb, nb);
  r.t = r.difference / r.se;
  r.p_value = std::isnan(r.t) || std::isnan(r.df) ? kNaN : 2.0 * t_cdf(-std::fabs(r.t), r.df);
  const double half = t_quantile(0.5 + 0.5 * level, r.df) * r.se;
  r.ci = {r.difference - half, r.difference + half};
  return r;
}

BrownForsytheResult brown_forsythe(std::span<const double> a, std::span<const double> b) {
  const auto deviations = [](std::span<const double> v) {
    std::vector<double> sorted(v.begin(), v.end());
    std::sort(sorted.begin(), sorted.end());
    const double median = quantile_sorted(sorted, 0.5);
    std::vector<double> z;
    for (double x : v) z.push_back(std::fabs(x - median));
    return z;
  };
  const std::vector<double> za = deviations(a), zb = deviations(b);
  const double na = static_cast<double>(za.size()), nb = static_cast<double>(zb.size()), n = na + nb;
  // Degrees of freedom the test cannot have are NaN (null in the outputs), never 0 or
  // negative: df1 = k - 1 needs both groups, df2 = N - k needs N > 2.
  BrownForsytheResult r{kNaN, kNaN, kNaN, kNaN};
  if (za.empty() || zb.empty()) return r;
  r.df1 = 1.0;
  if (n < 3) return r;
  r.df2 = n - 2.0;
  const double ma = mean_of(za), mb = mean_of(zb), m = (na * ma + nb * mb) / n;
  const double between = na * (ma - m) * (ma - m) + nb * (mb - m) * (mb - m);
  double within = 0.0, squares = 0.0;
  for (double z : za) within += (z - ma) * (z - ma), squares += z * z;
  for (double z : zb) within += (z - mb) * (z - mb), squares += z * z;
  // No spread of the deviations within the groups (as always with 2 values per group: both
  // lie one distance from their median): the test is undefined. Rounding leaves a residue of
  // ~1e-32, which would give F ~ 1e29 and p ~ 0, a confident answer from nothing.
  if (!(within > 1e-12 * squares)) return r;
  r.statistic = (n - 2.0) * between / within;
  r.p_value = f_sf(r.statistic, r.df1, r.df2);
  return r;
}

}  // namespace underspec
