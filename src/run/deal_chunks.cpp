// The chunk dealer (see deal_chunks.hpp).
#include "underspec/run/deal_chunks.hpp"

#include <algorithm>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace underspec {

void deal_chunks(std::size_t n_chunks, int n_workers, const std::function<void(int worker, std::size_t chunk)>& work,
                 const std::atomic<bool>* stop) {
  if (n_workers < 1) throw std::invalid_argument("deal_chunks: n_workers must be at least 1");
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr first_error;

  auto record = [&](std::exception_ptr error) {
    std::lock_guard lock(error_mutex);
    if (!first_error) first_error = std::move(error);
    failed.store(true);
  };
  auto run_worker = [&](int worker) {
    try {
      while (!failed.load() && !(stop && stop->load())) {
        const std::size_t chunk = next.fetch_add(1);
        if (chunk >= n_chunks) return;
        work(worker, chunk);
      }
    } catch (...) {
      record(std::current_exception());
    }
  };

  const int n_threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(n_workers), n_chunks));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(std::max(n_threads - 1, 0)));
  try {
    for (int worker = 1; worker < n_threads; ++worker) threads.emplace_back(run_worker, worker);
  } catch (...) {
    record(std::current_exception());  // no thread: stop the started ones and report it
  }
  if (n_threads > 0) run_worker(0);
  for (auto& thread : threads) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace underspec
