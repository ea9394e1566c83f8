// Dataset materialisation on the host, one scm_sample per index.
#include "underspec/sweep/dataset.hpp"

#include "underspec/sweep/sweep.hpp"

namespace underspec {

TrainDomain train_domain(const ExperimentConfig& config, Regime regime) {
  TrainDomain d{static_cast<float>(config.data.train_factor), false, 0.0f, 0.0f};
  if (regime == Regime::domain_randomization) {
    d.randomized = true;
    d.factor_lo = static_cast<float>(config.domain_randomization.factor_range[0]);
    d.factor_hi = static_cast<float>(config.domain_randomization.factor_range[1]);
  }
  return d;
}

std::vector<TestDomain> test_domains(const ExperimentConfig& config) {
  std::vector<TestDomain> domains{{DatasetId::iid_test, static_cast<float>(config.data.iid_factor)},
                                  {DatasetId::ood_test, static_cast<float>(config.data.ood_factor)}};
  for (double factor : config.data.stress_factors) domains.push_back({DatasetId::ood_test, static_cast<float>(factor)});
  return domains;
}

static void store(Dataset& d, std::size_t i, const Sample& s) {
  d.x1[i] = s.x1;
  d.x2[i] = s.x2;
  d.x3[i] = s.x3;
  d.y[i] = s.y;
}

Dataset make_training_set(const ExperimentConfig& config, Regime regime, std::uint32_t slot) {
  const ScmParams scm = scm_params(config.data);
  const TrainDomain domain = train_domain(config, regime);
  Dataset d;
  d.resize(static_cast<std::size_t>(config.data.n_train));
  for (std::size_t i = 0; i < d.size(); ++i)
    store(d, i, training_sample(scm, domain, config.data.seed, slot, static_cast<std::uint32_t>(i)));
  return d;
}

Dataset make_domain_set(const ExperimentConfig& config, DatasetId set, float factor, std::int64_t n) {
  const ScmParams scm = scm_params(config.data);
  Dataset d;
  d.resize(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < d.size(); ++i)
    store(d, i, scm_sample(scm, factor, config.data.seed, set, 0u, static_cast<std::uint32_t>(i)));
  return d;
}

Dataset make_test_set(const ExperimentConfig& config, DatasetId set) {
  const double factor = set == DatasetId::ood_test ? config.data.ood_factor : config.data.iid_factor;
  return make_domain_set(config, set, static_cast<float>(factor), config.data.n_test);
}

}  // namespace underspec
