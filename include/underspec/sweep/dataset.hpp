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

Dataset make_training_set(const ExperimentConfig& config, Regime regime, std::uint32_t slot);
Dataset make_test_set(const ExperimentConfig& config, DatasetId set);  // iid_test or ood_test
// Any domain (a factor) and set id; used for test sets and for stress tests.
Dataset make_domain_set(const ExperimentConfig& config, DatasetId set, float factor, std::int64_t n);

}  // namespace underspec
