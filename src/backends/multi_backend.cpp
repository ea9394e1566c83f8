// Chunks of replicas dealt to several backends (see multi_backend.hpp).
#include "underspec/backends/multi_backend.hpp"

#include <mutex>
#include <stdexcept>

#include "underspec/run/deal_chunks.hpp"

namespace underspec {
namespace {

class MultiBackend final : public Backend {
 public:
  MultiBackend(std::vector<std::unique_ptr<Backend>> workers, int chunks_per_worker)
      : workers_(std::move(workers)), chunks_per_worker_(chunks_per_worker) {
    if (workers_.empty()) throw std::invalid_argument("make_multi_backend: no worker backends");
    if (chunks_per_worker_ < 1) throw std::invalid_argument("make_multi_backend: chunks_per_worker must be >= 1");
  }
  std::string name() const override { return workers_.front()->name(); }
  int threads() const override {
    int n = 0;
    for (const auto& w : workers_) n += w->threads();
    return n;
  }

  // Any worker may get any chunk, so each must hold them all.
  void require_memory(const Sweep& sweep, std::span<const ReplicaSpec> replicas) const override {
    for (const auto& w : workers_) w->require_memory(sweep, replicas);
  }

  void train(const Sweep& sweep, std::span<const ReplicaSpec> replicas, const ResultSink& sink,
             const std::atomic<bool>* stop) override {
    const std::size_t pieces = workers_.size() * static_cast<std::size_t>(chunks_per_worker_);
    const std::size_t chunk = std::max<std::size_t>(1, (replicas.size() + pieces - 1) / pieces);
    const std::size_t n_chunks = (replicas.size() + chunk - 1) / chunk;
    std::mutex sink_mutex;  // the sink hears one worker at a time
    const ResultSink serial = [&](std::span<const ReplicaResult> done) {
      std::lock_guard lock(sink_mutex);
      sink(done);
    };
    deal_chunks(
        n_chunks, static_cast<int>(workers_.size()),
        [&](int worker, std::size_t c) {
          const std::size_t begin = c * chunk, end = std::min(replicas.size(), begin + chunk);
          workers_[static_cast<std::size_t>(worker)]->train(sweep, replicas.subspan(begin, end - begin), serial, stop);
        },
        stop);
  }

 private:
  std::vector<std::unique_ptr<Backend>> workers_;
  int chunks_per_worker_;
};

}  // namespace

std::unique_ptr<Backend> make_multi_backend(std::vector<std::unique_ptr<Backend>> workers, int chunks_per_worker) {
  return std::make_unique<MultiBackend>(std::move(workers), chunks_per_worker);
}

}  // namespace underspec
