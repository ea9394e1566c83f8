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
  // Refuses a sweep of more than `memory_limit` replicas, as a device that cannot hold them.
  void require_memory(const Sweep&, std::span<const ReplicaSpec> replicas) const override {
    if (replicas.size() > memory_limit) throw DeviceMemoryShort("worker holds " + std::to_string(memory_limit));
  }
  int calls = 0;
  std::size_t memory_limit = SIZE_MAX;

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

// Any worker may be dealt any chunk, so the sweep must fit each of them: the first that
// cannot refuses it, before any training.
TEST(MultiBackend, EveryWorkerMustHoldTheSweep) {
  const Sweep sweep = make_sweep(small_sweep());
  std::mutex m;
  std::multiset<std::uint32_t> seen;
  std::vector<std::unique_ptr<Backend>> workers;
  for (int w = 0; w < 3; ++w) workers.push_back(std::make_unique<RecordingWorker>(m, seen));
  static_cast<RecordingWorker&>(*workers[2]).memory_limit = sweep.replicas.size() - 1;
  const auto multi = make_multi_backend(std::move(workers));
  const std::span<const ReplicaSpec> all(sweep.replicas);
  EXPECT_NO_THROW(multi->require_memory(sweep, all.first(all.size() - 1)));
  try {
    multi->require_memory(sweep, all);
    ADD_FAILURE() << "a sweep one worker cannot hold was accepted";
  } catch (const DeviceMemoryShort& e) {
    EXPECT_STREQ(e.what(), ("worker holds " + std::to_string(all.size() - 1)).c_str());
  }
  EXPECT_TRUE(seen.empty());  // nothing trained
}

}  // namespace
}  // namespace underspec
