// The structural causal model: sample moments against their closed forms, domain
// randomization's factor distribution, and augmentation touching only x3.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/sweep/dataset.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {
namespace {

struct Moments {
  double mean_x1, var_x1, mean_y, var_y, var_x3, corr_x3_y;
};

Moments moments(const Dataset& d) {
  const double n = static_cast<double>(d.size());
  double sx1 = 0, sy = 0, sx3 = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    sx1 += d.x1[i];
    sy += d.y[i];
    sx3 += d.x3[i];
  }
  const double mx1 = sx1 / n, my = sy / n, mx3 = sx3 / n;
  double vx1 = 0, vy = 0, vx3 = 0, cov = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    vx1 += (d.x1[i] - mx1) * (d.x1[i] - mx1);
    vy += (d.y[i] - my) * (d.y[i] - my);
    vx3 += (d.x3[i] - mx3) * (d.x3[i] - mx3);
    cov += (d.x3[i] - mx3) * (d.y[i] - my);
  }
  return Moments{mx1, vx1 / n, my, vy / n, vx3 / n, cov / std::sqrt(vy * vx3)};
}

class ScmMoments : public ::testing::TestWithParam<double> {};

TEST_P(ScmMoments, MatchClosedForm) {
  const double factor = GetParam();
  ExperimentConfig config;
  const int n = 200000;
  const Moments m = moments(make_domain_set(config, DatasetId::iid_test, static_cast<float>(factor), n));
  // y = x1 + 2 x2 + 3 + e: E[y] = 3, Var[y] = 1 + 4 + 1; x3 = y + n / factor.
  const double var_y = 6.0, var_x3 = var_y + 1.0 / (factor * factor);
  const double se = 1.0 / std::sqrt(static_cast<double>(n));
  EXPECT_NEAR(m.mean_x1, 0.0, 5 * se);
  EXPECT_NEAR(m.var_x1, 1.0, 5 * std::sqrt(2.0) * se);
  EXPECT_NEAR(m.mean_y, 3.0, 5 * std::sqrt(var_y) * se);
  EXPECT_NEAR(m.var_y / var_y, 1.0, 5 * std::sqrt(2.0) * se);
  EXPECT_NEAR(m.var_x3 / var_x3, 1.0, 5 * std::sqrt(2.0) * se);
  EXPECT_NEAR(m.corr_x3_y, std::sqrt(var_y / var_x3), 5 * se);
}

INSTANTIATE_TEST_SUITE_P(Factors, ScmMoments, ::testing::Values(0.05, 0.1, 0.2, 1.0));

TEST(Scm, CoefficientsAndInterceptComeFromConfig) {
  ExperimentConfig config;
  config.data.coefficients = {-1.5, 0.5};
  config.data.intercept = -2.0;
  config.data.noise_std = 0.0;
  const Dataset d = make_domain_set(config, DatasetId::iid_test, 1.0f, 100);
  for (std::size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d.y[i], -1.5 * d.x1[i] + 0.5 * d.x2[i] - 2.0, 1e-5);
}

TEST(Scm, TestSetsDifferAndTrainingSetIsSharedByBaselineAndAugmentation) {
  ExperimentConfig config;
  config.data.n_train = config.data.n_test = 64;
  const Dataset iid = make_test_set(config, DatasetId::iid_test);
  const Dataset ood = make_test_set(config, DatasetId::ood_test);
  EXPECT_NE(iid.x1, ood.x1);
  EXPECT_EQ(make_training_set(config, Regime::baseline, 0).x3, make_training_set(config, Regime::augmentation, 0).x3);
  EXPECT_NE(make_training_set(config, Regime::baseline, 0).x3, make_training_set(config, Regime::baseline, 1).x3);
  config.data.seed = 1;
  EXPECT_NE(iid.x1, make_test_set(config, DatasetId::iid_test).x1);
}

TEST(DomainRandomization, FactorIsUniformOnItsRange) {
  const float lo = 0.01f, hi = 0.2f;
  const int n = 100000, bins = 10;
  std::vector<int> histogram(bins, 0);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const float f = randomized_factor(lo, hi, 0, 0, static_cast<std::uint32_t>(i));
    ASSERT_GE(f, lo);
    ASSERT_LE(f, hi);
    sum += f;
    histogram[std::min(bins - 1, static_cast<int>((f - lo) / (hi - lo) * bins))]++;
  }
  EXPECT_NEAR(sum / n, (lo + hi) / 2, 5 * (hi - lo) / std::sqrt(12.0 * n));
  double chi2 = 0;
  for (int count : histogram) chi2 += (count - n / bins) * (count - n / bins) / double(n / bins);
  EXPECT_LT(chi2, 27.9);  // chi-square, 9 degrees of freedom, p = 0.001
}

TEST(DomainRandomization, SharesCausalDrawsWithBaselineAndVariesX3Noise) {
  ExperimentConfig config;
  config.data.n_train = 2000;
  const Dataset base = make_training_set(config, Regime::baseline, 0);
  const Dataset dr = make_training_set(config, Regime::domain_randomization, 0);
  EXPECT_EQ(base.x1, dr.x1);
  EXPECT_EQ(base.y, dr.y);
  // x3 - y = n / factor: with factors in [0.01, 0.2] the spread is larger than with 0.2.
  double spread_base = 0, spread_dr = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    spread_base += std::abs(base.x3[i] - base.y[i]);
    spread_dr += std::abs(dr.x3[i] - dr.y[i]);
  }
  EXPECT_GT(spread_dr, 2 * spread_base);
}

TEST(Augmentation, ChangesOnlyX3WithTheConfiguredNoise) {
  ExperimentConfig config;
  config.data.n_train = 4096;
  const Dataset train = make_training_set(config, Regime::baseline, 0);
  const auto n = static_cast<std::uint32_t>(train.size());
  const EpochPermutation perm = make_epoch_permutation(n, 3, 2);
  std::vector<float> plain(3 * n), augmented(3 * n), y_plain(n), y_aug(n);
  const ReplicaJob plain_job{3, 0, 0, 0}, augmented_job{3, 1, 0, 0};
  gather_rows(view_of(train), perm, plain_job, 10.0f, 2, 0, 0, 1, static_cast<int>(n), plain.data(), y_plain.data());
  gather_rows(view_of(train), perm, augmented_job, 10.0f, 2, 0, 0, 1, static_cast<int>(n), augmented.data(),
              y_aug.data());
  // Rank-strided gathering (as GPU groups do) draws the same noise.
  std::vector<float> strided(3 * n), y_strided(n);
  for (int rank = 0; rank < 7; ++rank)
    gather_rows(view_of(train), perm, augmented_job, 10.0f, 2, 0, rank, 7, static_cast<int>(n), strided.data(),
                y_strided.data());
  EXPECT_EQ(strided, augmented);
  EXPECT_EQ(y_plain, y_aug);
  double sum = 0, sum_sq = 0;
  for (std::uint32_t b = 0; b < n; ++b) {
    EXPECT_EQ(plain[3 * b], augmented[3 * b]);
    EXPECT_EQ(plain[3 * b + 1], augmented[3 * b + 1]);
    const double noise = augmented[3 * b + 2] - plain[3 * b + 2];
    EXPECT_NEAR(noise, augmentation_noise(10.0f, 3, 2, b), 1e-3 * (1 + std::abs(plain[3 * b + 2])));
    sum += noise;
    sum_sq += noise * noise;
  }
  EXPECT_NEAR(sum / n, 0.0, 5 * 10.0 / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(sum_sq / n), 10.0, 0.5);
}

TEST(Augmentation, NoiseIsFreshEveryEpochAndSeed) {
  EXPECT_NE(augmentation_noise(10.0f, 0, 0, 5), augmentation_noise(10.0f, 0, 1, 5));
  EXPECT_NE(augmentation_noise(10.0f, 0, 0, 5), augmentation_noise(10.0f, 1, 0, 5));
  EXPECT_NE(augmentation_noise(10.0f, 0, 0, 5), augmentation_noise(10.0f, 0, 0, 6));
}

}  // namespace
}  // namespace underspec
