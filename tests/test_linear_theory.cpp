// The closed forms of linear_theory.hpp against least squares and Monte Carlo on 10^6
// samples of the SCM.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

#include "underspec/stats/linear_theory.hpp"

namespace underspec {
namespace {

constexpr int kSamples = 1'000'000;

// One SCM sample with x3's noise drawn by `noise` (u such that x3 = y + u).
template <class Noise>
std::array<double, 4> sample(const DataConfig& d, std::mt19937_64& rng, Noise&& noise) {
  std::normal_distribution<double> n01;
  const double x1 = n01(rng), x2 = n01(rng);
  const double y = d.coefficients[0] * x1 + d.coefficients[1] * x2 + d.intercept + d.noise_std * n01(rng);
  return {x1, x2, y + noise(rng), y};
}

// Least squares of y on (x1, x2, x3, 1) over kSamples samples (normal equations, Gaussian
// elimination with partial pivoting).
template <class Noise>
LinearWeights least_squares(const DataConfig& d, Noise noise, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  double a[4][5] = {};
  for (int i = 0; i < kSamples; ++i) {
    const auto s = sample(d, rng, noise);
    const double f[4] = {s[0], s[1], s[2], 1.0};
    for (int r = 0; r < 4; ++r) {
      for (int c = 0; c < 4; ++c) a[r][c] += f[r] * f[c];
      a[r][4] += f[r] * s[3];
    }
  }
  for (int c = 0; c < 4; ++c) {
    int pivot = c;
    for (int r = c + 1; r < 4; ++r)
      if (std::fabs(a[r][c]) > std::fabs(a[pivot][c])) pivot = r;
    for (int k = 0; k < 5; ++k) std::swap(a[c][k], a[pivot][k]);
    for (int r = 0; r < 4; ++r) {
      if (r == c) continue;
      const double m = a[r][c] / a[c][c];
      for (int k = 0; k < 5; ++k) a[r][k] -= m * a[c][k];
    }
  }
  return {a[0][4] / a[0][0], a[1][4] / a[1][1], a[2][4] / a[2][2], a[3][4] / a[3][3]};
}

void expect_close(const LinearWeights& got, const LinearWeights& want, double tol) {
  for (int p = 0; p < 4; ++p) EXPECT_NEAR(got[p], want[p], tol) << "parameter " << p;
}

TEST(LinearTheory, OptimumFormula) {
  DataConfig d;                                              // c = (1, 2), b = 3, s = 1
  const LinearWeights w = ls_optimum(d, 1.0 / (0.2 * 0.2));  // v = 25: w3 = 1/26
  EXPECT_NEAR(w[2], 1.0 / 26, 1e-15);
  EXPECT_NEAR(w[0], 25.0 / 26, 1e-15);
  EXPECT_NEAR(w[1], 50.0 / 26, 1e-15);
  EXPECT_NEAR(w[3], 75.0 / 26, 1e-15);
}

TEST(LinearTheory, RegimeNoiseVariances) {
  ExperimentConfig c;
  c.data.train_factor = 0.5;
  c.domain_randomization.factor_range = {0.1, 0.4};
  c.augmentation.noise_std = 3.0;
  EXPECT_DOUBLE_EQ(train_x3_noise_variance(c, Regime::baseline), 4.0);
  EXPECT_DOUBLE_EQ(train_x3_noise_variance(c, Regime::domain_randomization), 1.0 / (0.1 * 0.4));
  EXPECT_DOUBLE_EQ(train_x3_noise_variance(c, Regime::augmentation), 4.0 + 9.0);
}

TEST(LinearTheory, OptimumIsLeastSquaresOfEachRegime) {
  ExperimentConfig c;
  c.data.coefficients = {1.5, -0.5};
  c.data.intercept = 2.0;
  c.data.noise_std = 1.2;
  c.data.train_factor = 0.8;  // x3 informative: w3 far from 0 and 1
  c.domain_randomization.factor_range = {0.5, 2.0};
  c.augmentation.noise_std = 1.5;
  const DataConfig& d = c.data;
  const double f = d.train_factor;
  std::normal_distribution<double> n01;
  // Baseline: u = z / f.
  expect_close(least_squares(
                   d, [&](std::mt19937_64& r) { return n01(r) / f; }, 1),
               ls_optimum(d, train_x3_noise_variance(c, Regime::baseline)), 5e-3);
  // Domain randomization: u = z / F with F ~ U(a, b) per sample.
  std::uniform_real_distribution<double> factor(c.domain_randomization.factor_range[0],
                                                c.domain_randomization.factor_range[1]);
  expect_close(least_squares(
                   d, [&](std::mt19937_64& r) { return n01(r) / factor(r); }, 2),
               ls_optimum(d, train_x3_noise_variance(c, Regime::domain_randomization)), 5e-3);
  // Augmentation: u = z / f + sigma_aug z'.
  expect_close(least_squares(
                   d, [&](std::mt19937_64& r) { return n01(r) / f + 1.5 * n01(r); }, 3),
               ls_optimum(d, train_x3_noise_variance(c, Regime::augmentation)), 5e-3);
}

TEST(LinearTheory, ExpectedRmseMatchesMonteCarlo) {
  DataConfig d;
  d.coefficients = {1.0, 2.0};
  d.intercept = 3.0;
  d.noise_std = 1.0;
  const LinearWeights w{0.4, 1.1, 0.55, 1.7};  // any model, not an optimum
  for (double factor : {0.2, 0.1, 1.0}) {
    std::mt19937_64 rng(7);
    std::normal_distribution<double> n01;
    double squares = 0.0;
    for (int i = 0; i < kSamples; ++i) {
      const auto s = sample(d, rng, [&](std::mt19937_64& r) { return n01(r) / factor; });
      const double e = s[3] - (w[0] * s[0] + w[1] * s[1] + w[2] * s[2] + w[3]);
      squares += e * e;
    }
    const double mc = std::sqrt(squares / kSamples);
    EXPECT_NEAR(expected_rmse(d, w, x3_noise_variance(factor)), mc, 3e-3 * mc) << factor;
  }
  // The optimum of a domain is the best linear model there: expected MSE = (1 - w3) s^2.
  const LinearWeights opt = ls_optimum(d, 25.0);
  EXPECT_NEAR(expected_mse(d, opt, 25.0), (1 - opt[2]) * 1.0, 1e-12);
}

}  // namespace
}  // namespace underspec
