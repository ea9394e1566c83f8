// Closed forms for linear models of the SCM (see linear_theory.hpp).
#include "underspec/stats/linear_theory.hpp"

#include <cmath>

namespace underspec {

double x3_noise_variance(double factor) { return 1.0 / (factor * factor); }

double train_x3_noise_variance(const ExperimentConfig& config, Regime regime) {
  switch (regime) {
    case Regime::baseline:
      return x3_noise_variance(config.data.train_factor);
    case Regime::domain_randomization: {
      // E[1/f^2] for f ~ U(a, b): (1/(b - a)) * integral_a^b f^-2 df = 1/(ab).
      const auto [a, b] = config.domain_randomization.factor_range;
      return 1.0 / (a * b);
    }
    case Regime::augmentation:
      return x3_noise_variance(config.data.train_factor) +
             config.augmentation.noise_std * config.augmentation.noise_std;
  }
  return std::nan("");
}

LinearWeights ls_optimum(const DataConfig& data, double v) {
  const double s2 = data.noise_std * data.noise_std;
  const double w3 = s2 / (s2 + v);
  return {data.coefficients[0] * (1.0 - w3), data.coefficients[1] * (1.0 - w3), w3, data.intercept * (1.0 - w3)};
}

double expected_mse(const DataConfig& data, const LinearWeights& w, double v) {
  const double s2 = data.noise_std * data.noise_std;
  const double a1 = data.coefficients[0] * (1.0 - w[2]) - w[0];
  const double a2 = data.coefficients[1] * (1.0 - w[2]) - w[1];
  const double d = data.intercept * (1.0 - w[2]) - w[3];
  return a1 * a1 + a2 * a2 + (1.0 - w[2]) * (1.0 - w[2]) * s2 + w[2] * w[2] * v + d * d;
}

double expected_rmse(const DataConfig& data, const LinearWeights& w, double v) {
  return std::sqrt(expected_mse(data, w, v));
}

}  // namespace underspec
