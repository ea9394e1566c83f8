// The fully resolved description of one run: every key of the TOML config, with the
// study's defaults. Parsing and validation live in src/config/.
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
  // Extra OOD test domains every replica is scored on (x3 = y + N(0,1)/factor), n_test
  // samples each, without retraining. Empty: none.
  std::vector<double> stress_factors;
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

// One axis of `[sweep.grid]`: a config key outside [sweep] and the values it takes, each
// kept as canonical TOML text (what the key's own writer prints), so `1e-3` and `0.001`
// are the same value and a cell's config is the base config with these texts applied.
struct GridAxis {
  std::string key;
  std::vector<std::string> values;
};

struct SweepConfig {
  int seeds = 10;
  // [sweep.seeds_per_model]: seeds of one model, overriding `seeds`; 0 = not set.
  std::array<int, 2> seeds_per_model{0, 0};  // indexed by ModelKind
  std::vector<ModelKind> models{ModelKind::perceptron, ModelKind::mlp};
  std::vector<Regime> regimes{Regime::baseline, Regime::domain_randomization, Regime::augmentation};
  std::uint32_t seed = 0;  // replica seeds are seed, seed + 1, ..., seed + seeds - 1
  // [sweep.grid], sorted by key (the order TOML tables have once parsed, and the order
  // config.toml writes them); cells = cartesian product.
  std::vector<GridAxis> grid;

  int seeds_of(ModelKind model) const {
    const int n = seeds_per_model[static_cast<int>(model)];
    return n > 0 ? n : seeds;
  }
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
