// The CPU backend: OpenMP over replicas, one replica per thread at a time. Shared datasets
// are generated once per call; results do not depend on the thread count because each
// replica is trained start to finish by one thread with the same arithmetic.
#include <omp.h>

#include <algorithm>
#include <exception>
#include <map>
#include <numeric>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cpu_trainer.hpp"

namespace underspec {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {}
  std::string name() const override { return "cpu"; }
  int threads() const override { return threads_; }

  std::vector<ReplicaResult> train_replicas(const ExperimentConfig& config,
                                            std::span<const ReplicaSpec> replicas) override {
    const Dataset iid = make_test_set(config, DatasetId::iid_test);
    const Dataset ood = make_test_set(config, DatasetId::ood_test);
    // Shared training sets, one per regime (baseline and augmentation draw the same one).
    std::map<Regime, Dataset> shared_train;
    if (!config.data.per_replica)
      for (const ReplicaSpec& r : replicas)
        if (!shared_train.count(r.regime)) shared_train.emplace(r.regime, make_training_set(config, r.regime, 0));

    // Largest models first, so the dynamic schedule ends with short tasks.
    std::vector<std::size_t> order(replicas.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return param_count(net_shape(config, replicas[a].model)) > param_count(net_shape(config, replicas[b].model));
    });

    std::vector<ReplicaResult> results(replicas.size());
    std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
    for (std::size_t k = 0; k < order.size(); ++k) {
      try {
        const ReplicaSpec& r = replicas[order[k]];
        const NetShape shape = net_shape(config, r.model);
        TrainWorkspace workspace(shape, config.train.batch_size);
        std::vector<float> params;
        if (config.data.per_replica) {
          const Dataset train = make_training_set(config, r.regime, train_data_slot(config, r));
          params = train_replica(config, shape, r, train, workspace);
        } else {
          params = train_replica(config, shape, r, shared_train.at(r.regime), workspace);
        }
        ReplicaResult& out = results[order[k]];
        out.id = r.id;
        out.iid_rmse = evaluate_rmse(shape, params.data(), iid, workspace);
        out.ood_rmse = evaluate_rmse(shape, params.data(), ood, workspace);
        out.params = std::move(params);
      } catch (...) {
#pragma omp critical(underspec_cpu_failure)
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return results;
  }

 private:
  int threads_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace underspec
