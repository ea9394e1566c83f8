// Materialised samples (structure of arrays) for the CPU backend and for tests.
#pragma once

#include <cstdint>
#include <vector>

#include "underspec/config/config.hpp"
#include "underspec/core/scm.hpp"

namespace underspec {

struct Dataset {
  std::vector<float> x1, x2, x3, y;
  std::size_t size() const { return y.size(); }
  void resize(std::size_t n) {
    x1.resize(n);
    x2.resize(n);
    x3.resize(n);
    y.resize(n);
  }
};

TrainDomain train_domain(const ExperimentConfig& config, Regime regime);

// A test set a replica is scored on: which samples, and the factor of x3 on them.
struct TestDomain {
  DatasetId set;
  float factor;
};
// In the order of a replica's scores: IID, OOD, then one per data.stress_factors (the OOD
// samples at that factor, so a stress curve is paired across factors). Every backend and
// `score` build their test sets from this list.
std::vector<TestDomain> test_domains(const ExperimentConfig& config);

Dataset make_training_set(const ExperimentConfig& config, Regime regime, std::uint32_t slot);
Dataset make_test_set(const ExperimentConfig& config, DatasetId set);  // iid_test or ood_test
// Any domain (a factor) and set id; used for test sets and for stress tests.
Dataset make_domain_set(const ExperimentConfig& config, DatasetId set, float factor, std::int64_t n);

}  // namespace underspec
