// Closed forms for linear models of the SCM (scm.hpp): x1, x2 ~ N(0, 1);
// y = c1 x1 + c2 x2 + b + s e; x3 = y + u with u independent, mean 0, variance v
// (u = z / f: v = 1 / f^2 for a fixed factor).
//
// Population least squares on (x1, x2, x3, 1): the residual r = y - w.x - beta must be
// uncorrelated with every feature. Cov(r, x1) = (1 - w3) c1 - w1 = 0 gives w1 = c1 (1 - w3)
// (likewise w2); then r = (1 - w3) s e - w3 u + const, and Cov(r, x3) = (1 - w3) s^2 - w3 v = 0
// gives w3 = s^2 / (s^2 + v); E[r] = 0 gives beta = b (1 - w3). Only second moments enter,
// so this holds for non-Gaussian u too (domain randomization's mixture).
//
// Expected squared error of any linear model (w1, w2, w3, beta) on a domain with variance v:
// y - yhat = a1 x1 + a2 x2 + (1 - w3) s e - w3 u + d with a_k = c_k (1 - w3) - w_k and
// d = b (1 - w3) - beta, all terms independent with mean 0 but d, so
// E[(y - yhat)^2] = a1^2 + a2^2 + (1 - w3)^2 s^2 + w3^2 v + d^2.
#pragma once

#include <array>

#include "underspec/config/config.hpp"

namespace underspec {

using LinearWeights = std::array<double, 4>;  // w_x1, w_x2, w_x3, bias

// Variance of the noise on x3 in the training data of a regime: baseline 1/f^2 (f =
// data.train_factor); domain randomization over U(a, b): E[1/f^2] = 1/(ab); augmentation:
// 1/f^2 + sigma_aug^2.
double train_x3_noise_variance(const ExperimentConfig& config, Regime regime);
// Variance of the noise on x3 of a test domain with factor f: 1/f^2.
double x3_noise_variance(double factor);

LinearWeights ls_optimum(const DataConfig& data, double x3_noise_var);
double expected_mse(const DataConfig& data, const LinearWeights& w, double x3_noise_var);
// sqrt(expected_mse): the RMSE of the model on infinitely many test samples.
double expected_rmse(const DataConfig& data, const LinearWeights& w, double x3_noise_var);

}  // namespace underspec
