// The CPU backend: OpenMP over replicas, each trained start to finish by one thread with
// the same arithmetic, so results do not depend on the thread count. Datasets are shared
// across replicas and cells (cpu_datasets.hpp). There is no barrier between "chunks": a
// thread that finishes a replica adds it to a pending batch, and the batch goes to the
// sink when it is old enough, so progress and checkpoints follow the work closely. The
// arithmetic runs in the CPU kernels of one instruction-set level (cpu_kernels.hpp), chosen
// when the backend is made.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <utility>

#include "cpu_datasets.hpp"
#include "underspec/backends/backend.hpp"
#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/backends/divergence_replay.hpp"

namespace underspec {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kReportInterval = std::chrono::milliseconds(500);
constexpr std::size_t kMaxPending = 1 << 16;
constexpr std::size_t kMaxPendingBytes = std::size_t{16} << 20;  // MLP parameters: 18 KB a replica

// Finished results waiting for the sink; one thread reports at a time.
class PendingResults {
 public:
  explicit PendingResults(const ResultSink& sink) : sink_(sink) {}
  void add(ReplicaResult&& result) {
    std::lock_guard lock(mutex_);
    bytes_ += sizeof(ReplicaResult) + result.params.size() * sizeof(float);
    pending_.push_back(std::move(result));
    if (pending_.size() >= kMaxPending || bytes_ >= kMaxPendingBytes || Clock::now() - last_ >= kReportInterval)
      flush_locked();
  }
  void flush() {
    std::lock_guard lock(mutex_);
    flush_locked();
  }

 private:
  void flush_locked() {
    last_ = Clock::now();
    if (pending_.empty()) return;
    sink_(pending_);
    pending_.clear();
    bytes_ = 0;
  }
  const ResultSink& sink_;
  std::mutex mutex_;
  std::vector<ReplicaResult> pending_;
  std::size_t bytes_ = 0;
  Clock::time_point last_ = Clock::now();
};

ReplicaResult train_and_score(const Sweep& sweep, const CpuDatasets& datasets, const ReplicaSpec& r,
                              const CpuKernels& kernels) {
  const ExperimentConfig& config = sweep.config_of(r);
  const NetShape shape = net_shape(config, r.model);
  TrainWorkspace workspace(shape, config.train.batch_size, kernels);
  ReplicaResult out;
  out.id = r.id;
  std::optional<Dataset> own;  // with data.per_replica
  const Dataset* train = datasets.shared_train_set(r);
  if (!train) train = &own.emplace(make_training_set(config, r.regime, train_data_slot(config, r)));
  out.params = train_replica(config, shape, r, *train, workspace);
  const std::vector<const Dataset*>& tests = datasets.test_sets(r.cell).sets;
  out.iid_rmse = evaluate_rmse(shape, out.params.data(), *tests[0], workspace);
  out.ood_rmse = evaluate_rmse(shape, out.params.data(), *tests[1], workspace);
  for (std::size_t k = 2; k < tests.size(); ++k)
    out.stress_rmse.push_back(evaluate_rmse(shape, out.params.data(), *tests[k], workspace));
  // Marked here, on this thread, where the training set is at hand: a diverged replica's
  // replay then runs in parallel with the others' training, not in the sink.
  out.diverged =
      divergence_of(out.params, out, [&] { return where_parameters_diverged(config, shape, r, *train, &kernels); });
  return out;
}

class CpuBackend final : public Backend {
 public:
  // kernels: the process's active ones (description: how they were chosen), or a level a
  // caller asked for.
  CpuBackend(int threads, const CpuKernels& kernels, std::string description)
      : threads_(threads > 0 ? threads : omp_get_max_threads()),
        kernels_(kernels),
        description_(std::move(description)) {}
  std::string name() const override { return "cpu"; }
  int threads() const override { return threads_; }
  std::string kernels() const override { return description_; }

  void train(const Sweep& sweep, std::span<const ReplicaSpec> replicas, const ResultSink& sink,
             const std::atomic<bool>* stop) override {
    const CpuDatasets datasets(sweep, replicas, threads_);
    // Largest models first, so the dynamic schedule ends with short tasks.
    std::vector<std::size_t> order(replicas.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    const auto cost = [&](std::size_t i) {
      const ExperimentConfig& c = sweep.config_of(replicas[i]);
      return static_cast<double>(param_count(net_shape(c, replicas[i].model))) * static_cast<double>(replica_steps(c));
    };
    std::vector<double> costs(replicas.size());
    for (std::size_t i = 0; i < replicas.size(); ++i) costs[i] = cost(i);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });

    PendingResults pending(sink);
    std::exception_ptr failure;
    std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
    for (std::size_t k = 0; k < order.size(); ++k) {
      if (failed.load(std::memory_order_relaxed) || (stop && stop->load(std::memory_order_relaxed))) continue;
      try {
        pending.add(train_and_score(sweep, datasets, replicas[order[k]], kernels_));
      } catch (...) {
#pragma omp critical(underspec_cpu_failure)
        if (!failure) failure = std::current_exception();
        failed = true;
      }
    }
    if (failure) {
      try {
        pending.flush();  // finished work still reaches the sink (a checkpoint) before the error
      } catch (...) {
      }
      std::rethrow_exception(failure);
    }
    pending.flush();
  }

 private:
  int threads_;
  const CpuKernels& kernels_;
  std::string description_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  const CpuKernels& kernels = active_cpu_kernels();  // throws here, before any work, when unusable
  return std::make_unique<CpuBackend>(threads, kernels, cpu_kernels_description());
}

std::unique_ptr<Backend> make_cpu_backend(int threads, CpuIsa isa) {
  const CpuKernels& kernels = cpu_kernels(isa);
  return std::make_unique<CpuBackend>(threads, kernels, std::string(kernels.name).append(" (chosen by the caller)"));
}

}  // namespace underspec
