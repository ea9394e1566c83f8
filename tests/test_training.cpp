// Training and evaluation end to end on the CPU backend: convergence to least squares,
// RMSE against its closed form, the study's qualitative findings, and determinism.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/stats/stats.hpp"

namespace underspec {
namespace {

// Least squares of y on (x1, x2, x3, 1) by the normal equations in double.
std::array<double, 4> least_squares(const Dataset& d) {
  double A[4][5] = {};
  for (std::size_t i = 0; i < d.size(); ++i) {
    const double x[4] = {d.x1[i], d.x2[i], d.x3[i], 1.0};
    for (int r = 0; r < 4; ++r) {
      for (int c = 0; c < 4; ++c) A[r][c] += x[r] * x[c];
      A[r][4] += x[r] * d.y[i];
    }
  }
  for (int col = 0; col < 4; ++col)  // Gauss-Jordan; the Gram matrix is well conditioned here
    for (int r = 0; r < 4; ++r)
      if (r != col) {
        const double f = A[r][col] / A[col][col];
        for (int c = 0; c < 5; ++c) A[r][c] -= f * A[col][c];
      }
  return {A[0][4] / A[0][0], A[1][4] / A[1][1], A[2][4] / A[2][2], A[3][4] / A[3][3]};
}

TEST(Training, PerceptronReachesLeastSquaresAndThePopulationOptimum) {
  ExperimentConfig config;
  config.train.epochs = 300;
  config.train.lr = 1e-2;
  config.train.step_size = 50;  // decay 1e-2 -> 3e-4 so the last epochs settle
  const NetShape shape = net_shape(config, ModelKind::perceptron);
  const ReplicaSpec replica{0, 0, ModelKind::perceptron, Regime::baseline, 0, 0};
  const Dataset train = make_training_set(config, Regime::baseline, 0);
  TrainWorkspace ws(shape, config.train.batch_size);
  const std::vector<float> params = train_replica(config, shape, replica, train, ws);

  const std::array<double, 4> ls = least_squares(train);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(params[i], ls[i], 2e-3) << "parameter " << i;
  // Population optimum: w3 = 1 / (1 + sigma^2), sigma = 1 / factor; the rest (1 - w3) (1, 2, 3).
  const double sigma = 1.0 / config.data.train_factor, w3 = 1.0 / (1.0 + sigma * sigma);
  const std::array<double, 4> population{1 - w3, 2 * (1 - w3), w3, 3 * (1 - w3)};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(ls[i], population[i], 0.06) << "parameter " << i;
}

// Expected MSE of y_hat = w.x + b on a domain with spurious strength `factor`.
double analytic_rmse(const std::array<double, 4>& w, const DataConfig& data, double factor) {
  const double c1 = data.coefficients[0], c2 = data.coefficients[1];
  const double a1 = w[0] + (w[2] - 1) * c1, a2 = w[1] + (w[2] - 1) * c2, a0 = w[3] + (w[2] - 1) * data.intercept;
  const double noise = (w[2] - 1) * data.noise_std, spurious = w[2] / factor;
  return std::sqrt(a1 * a1 + a2 * a2 + a0 * a0 + noise * noise + spurious * spurious);
}

TEST(Evaluation, RmseMatchesClosedFormOnLargeTestSets) {
  ExperimentConfig config;
  const NetShape shape = net_shape(config, ModelKind::perceptron);
  TrainWorkspace ws(shape, 64);
  const int n = 400000;
  for (const std::array<double, 4>& w :
       {std::array<double, 4>{0.9, 1.8, 0.05, 2.5}, std::array<double, 4>{0.0, 0.0, 1.0, 0.0},
        std::array<double, 4>{1.0, 2.0, 0.0, 3.0}})
    for (double factor : {0.1, 0.2, 1.0}) {
      const Dataset test = make_domain_set(config, DatasetId::ood_test, static_cast<float>(factor), n);
      const std::vector<float> params(w.begin(), w.end());
      const double expected = analytic_rmse(w, config.data, factor);
      // The MSE of Gaussian errors has relative standard error sqrt(2 / n); RMSE half that.
      EXPECT_NEAR(evaluate_rmse(shape, params.data(), test, ws) / expected, 1.0, 5 * std::sqrt(0.5 / n))
          << "factor " << factor;
    }
}

struct GroupStats {
  double iid_mean, ood_mean, w3_mean;
};

GroupStats group(const std::vector<ReplicaResult>& results, const Sweep& sweep, Regime regime) {
  std::vector<double> iid, ood, w3;
  for (const ReplicaResult& r : results)
    if (sweep.replicas[r.id].regime == regime) {
      iid.push_back(r.iid_rmse);
      ood.push_back(r.ood_rmse);
      w3.push_back(r.params[2]);
    }
  return {summarize(iid).mean, summarize(ood).mean, summarize(w3).mean};
}

TEST(SeedExperiment, QualitativeFindingsHoldForPerceptrons) {
  ExperimentConfig config;
  config.sweep.models = {ModelKind::perceptron};
  const Sweep sweep = make_sweep(config);
  const std::vector<ReplicaResult> results = make_cpu_backend(2)->train_replicas(sweep, sweep.replicas);
  const GroupStats base = group(results, sweep, Regime::baseline);
  const GroupStats dr = group(results, sweep, Regime::domain_randomization);
  const GroupStats aug = group(results, sweep, Regime::augmentation);
  EXPECT_GT(base.ood_mean, 1.2 * base.iid_mean);  // the spurious shortcut fails out of domain
  for (const GroupStats& remedy : {dr, aug}) {
    EXPECT_LT(remedy.ood_mean - remedy.iid_mean, 0.25 * (base.ood_mean - base.iid_mean));
    EXPECT_GT(base.w3_mean, 2 * remedy.w3_mean);  // ... because the baseline leans on x3
  }
}

ExperimentConfig small_config(int seeds) {
  ExperimentConfig config;
  config.data.n_train = 300;
  config.data.n_test = 200;
  config.train.epochs = 3;
  config.train.batch_size = 32;
  config.mlp.hidden = {16, 8};
  config.sweep.seeds = seeds;
  return config;
}

void expect_identical(const ReplicaResult& a, const ReplicaResult& b) {
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.iid_rmse, b.iid_rmse);
  EXPECT_EQ(a.ood_rmse, b.ood_rmse);
}

TEST(Determinism, SameResultsForAnyThreadCountAndSubset) {
  const ExperimentConfig config = small_config(3);
  const Sweep sweep = make_sweep(config);
  const auto one = make_cpu_backend(1)->train_replicas(sweep, sweep.replicas);
  const auto two = make_cpu_backend(2)->train_replicas(sweep, sweep.replicas);
  ASSERT_EQ(one.size(), two.size());
  for (std::size_t i = 0; i < one.size(); ++i) expect_identical(one[i], two[i]);
  // A replica trained alone, in reverse order, gives the same answer.
  for (std::size_t i = sweep.replicas.size(); i-- > 0;) {
    const auto alone = make_cpu_backend(1)->train_replicas(sweep, std::span(&sweep.replicas[i], 1));
    expect_identical(alone[0], one[i]);
  }
}

TEST(Determinism, GrowingTheSweepKeepsEarlierSeeds) {
  const ExperimentConfig small = small_config(2), large = small_config(4);
  const Sweep a = make_sweep(small), b = make_sweep(large);
  const auto ra = make_cpu_backend(2)->train_replicas(a, a.replicas);
  const auto rb = make_cpu_backend(2)->train_replicas(b, b.replicas);
  for (const ReplicaSpec& spec : a.replicas)
    for (const ReplicaSpec& other : b.replicas)
      if (spec.model == other.model && spec.regime == other.regime && spec.seed == other.seed)
        expect_identical(ra[spec.id], rb[other.id]);
}

TEST(Determinism, PerReplicaDataDiffersBetweenSeedsButNotBetweenRuns) {
  ExperimentConfig config = small_config(2);
  config.data.per_replica = true;
  config.sweep.models = {ModelKind::perceptron};
  config.sweep.regimes = {Regime::baseline};
  const Sweep sweep = make_sweep(config);
  const auto first = make_cpu_backend(2)->train_replicas(sweep, sweep.replicas);
  const auto again = make_cpu_backend(1)->train_replicas(sweep, sweep.replicas);
  expect_identical(first[1], again[1]);
  config.data.per_replica = false;
  const Sweep shared_sweep = make_sweep(config);
  const auto shared = make_cpu_backend(1)->train_replicas(shared_sweep, shared_sweep.replicas);
  EXPECT_NE(first[0].params, shared[0].params);
}

}  // namespace
}  // namespace underspec
