// Several worker backends behind one (the multi-GPU dealing), tested with CPU workers:
// every replica is trained once, by some worker, and the results do not depend on how
// many workers there are or which one trained what.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>

#include "underspec/backends/multi_backend.hpp"

namespace underspec {
namespace {

ExperimentConfig small_sweep() {
  ExperimentConfig c;
  c.data.n_train = c.data.n_test = 300;
  c.data.stress_factors = {0.05};
  c.train.epochs = 2;
  c.sweep.seeds = 5;
  c.mlp.hidden = {8};
  return c;
}

// A worker that trains on the CPU and records the ids it was given.
class RecordingWorker final : public Backend {
 public:
  RecordingWorker(std::mutex& m, std::multiset<std::uint32_t>& seen) : cpu_(make_cpu_backend(1)), m_(m), seen_(seen) {}
  std::string name() const override { return "stand-in"; }
  int threads() const override { return 1; }
  void train(const Sweep& sweep, std::span<const ReplicaSpec> replicas, const ResultSink& sink,
             const std::atomic<bool>* stop) override {
    {
      std::lock_guard lock(m_);
      for (const ReplicaSpec& r : replicas) seen_.insert(r.id);
      ++calls;
    }
    cpu_->train(sweep, replicas, sink, stop);
  }
  int calls = 0;

 private:
  std::unique_ptr<Backend> cpu_;
  std::mutex& m_;
  std::multiset<std::uint32_t>& seen_;
};

TEST(MultiBackend, ResultsDoNotDependOnTheWorkerCount) {
  const Sweep sweep = make_sweep(small_sweep());
  const auto reference = make_cpu_backend(1)->train_replicas(sweep, sweep.replicas);
  for (int n_workers : {1, 2, 3, 5}) {
    std::mutex m;
    std::multiset<std::uint32_t> seen;
    std::vector<std::unique_ptr<Backend>> workers;
    for (int w = 0; w < n_workers; ++w) workers.push_back(std::make_unique<RecordingWorker>(m, seen));
    const auto multi = make_multi_backend(std::move(workers));
    const auto results = multi->train_replicas(sweep, sweep.replicas);
    ASSERT_EQ(results.size(), reference.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      EXPECT_EQ(results[i].id, reference[i].id);
      EXPECT_EQ(results[i].params, reference[i].params) << "replica " << i << ", " << n_workers << " workers";
      EXPECT_EQ(results[i].ood_rmse, reference[i].ood_rmse);
      EXPECT_EQ(results[i].stress_rmse, reference[i].stress_rmse);
    }
    EXPECT_EQ(seen.size(), sweep.replicas.size());  // each replica dealt exactly once
    EXPECT_EQ(std::set<std::uint32_t>(seen.begin(), seen.end()).size(), sweep.replicas.size());
  }
}

TEST(MultiBackend, StopBeforeStartTrainsNothing) {
  const Sweep sweep = make_sweep(small_sweep());
  std::vector<std::unique_ptr<Backend>> workers;
  workers.push_back(make_cpu_backend(1));
  workers.push_back(make_cpu_backend(1));
  const auto multi = make_multi_backend(std::move(workers));
  const std::atomic<bool> stop{true};
  std::size_t reported = 0;
  multi->train(
      sweep, sweep.replicas, [&](std::span<const ReplicaResult> r) { reported += r.size(); }, &stop);
  EXPECT_EQ(reported, 0u);
  EXPECT_THROW(make_multi_backend({}), std::invalid_argument);
}

}  // namespace
}  // namespace underspec
