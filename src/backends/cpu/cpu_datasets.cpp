// Dataset sharing for the CPU backend (see cpu_datasets.hpp).
#include "cpu_datasets.hpp"

#include <exception>
#include <functional>

namespace underspec {
namespace {

// The bytes of every input of a generation, so equal keys mean equal samples.
template <class... T>
std::string key_of(const T&... parts) {
  std::string key;
  (key.append(reinterpret_cast<const char*>(&parts), sizeof parts), ...);
  return key;
}

}  // namespace

CpuDatasets::CpuDatasets(const Sweep& sweep, std::span<const ReplicaSpec> replicas, int threads) {
  std::vector<std::pair<Dataset*, std::function<Dataset()>>> pending;
  const auto share = [&](const std::string& key, std::function<Dataset()> make) -> const Dataset* {
    auto [it, fresh] = sets_.try_emplace(key, nullptr);
    if (fresh) {
      it->second = std::make_unique<Dataset>();
      pending.emplace_back(it->second.get(), std::move(make));
    }
    return it->second.get();
  };
  for (const ReplicaSpec& r : replicas) {
    const ExperimentConfig& c = sweep.config_of(r);
    const ScmParams scm = scm_params(c.data);
    const auto n_test = c.data.n_test;
    if (!tests_.count(r.cell)) {
      TestSets t;
      for (const TestDomain d : test_domains(c))
        t.sets.push_back(share(key_of(scm, c.data.seed, d.set, d.factor, n_test),
                               [&c, d] { return make_domain_set(c, d.set, d.factor, c.data.n_test); }));
      tests_.emplace(r.cell, std::move(t));
    }
    if (!c.data.per_replica && !train_.count({r.cell, r.regime})) {
      const TrainDomain d = train_domain(c, r.regime);
      const Regime regime = r.regime;
      train_.emplace(std::make_pair(r.cell, r.regime),
                     share(key_of(scm, c.data.seed, d.factor, d.randomized, d.factor_lo, d.factor_hi, c.data.n_train),
                           [&c, regime] { return make_training_set(c, regime, 0u); }));
    }
  }
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::size_t i = 0; i < pending.size(); ++i) {
    try {
      *pending[i].first = pending[i].second();
    } catch (...) {
#pragma omp critical(underspec_cpu_datasets)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

const Dataset* CpuDatasets::shared_train_set(const ReplicaSpec& replica) const {
  const auto it = train_.find({replica.cell, replica.regime});
  return it == train_.end() ? nullptr : it->second;
}

}  // namespace underspec
