// The fully resolved description of one run: every key of the TOML config, with the
// study's defaults. Parsing and validation live in src/config_*.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace underspec {

enum class ModelKind { perceptron, mlp };
enum class Regime { baseline, domain_randomization, augmentation };

struct DataConfig {
  std::int64_t n_train = 5000;
  std::int64_t n_test = 5000;
  std::array<double, 2> coefficients{1.0, 2.0};
  double intercept = 3.0;
  double noise_std = 1.0;
  double train_factor = 0.2;
  double iid_factor = 0.2;
  double ood_factor = 0.1;
  std::uint32_t seed = 0;
  bool per_replica = false;
};

struct TrainConfig {
  int epochs = 30;
  int batch_size = 64;
  double lr = 1e-3;
  std::array<double, 2> betas{0.9, 0.999};
  double eps = 1e-8;
  int step_size = 10;
  double gamma = 0.5;
};

struct SweepConfig {
  int seeds = 10;
  std::vector<ModelKind> models{ModelKind::perceptron, ModelKind::mlp};
  std::vector<Regime> regimes{Regime::baseline, Regime::domain_randomization, Regime::augmentation};
  std::uint32_t seed = 0;  // replica seeds are seed, seed + 1, ..., seed + seeds - 1
};

struct MlpConfig {
  std::vector<int> hidden{64, 64};
};

struct DomainRandomizationConfig {
  std::array<double, 2> factor_range{0.01, 0.2};
};

struct AugmentationConfig {
  double noise_std = 10.0;
};

struct ExperimentConfig {
  DataConfig data;
  TrainConfig train;
  SweepConfig sweep;
  MlpConfig mlp;
  DomainRandomizationConfig domain_randomization;
  AugmentationConfig augmentation;
};

const char* to_string(ModelKind model);
const char* to_string(Regime regime);
bool parse_model(const std::string& name, ModelKind& out);
bool parse_regime(const std::string& name, Regime& out);

}  // namespace underspec
