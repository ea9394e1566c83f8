// Dealing a sweep's chunks to several devices: one host thread per worker takes the next
// chunk index from a shared counter, so a faster device simply takes more chunks and no
// static split can leave one device idle while another still has a queue.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>

namespace underspec {

// Calls work(worker, chunk) once for every chunk in [0, n_chunks), spread over n_workers
// threads (worker 0 runs on the calling thread; at most n_chunks workers are started).
// Workers stop taking chunks once none is left, once *stop is true (chunks already started
// finish), or once any work() has thrown; then all threads are joined and the first
// exception is rethrown. n_workers < 1: std::invalid_argument.
void deal_chunks(std::size_t n_chunks, int n_workers, const std::function<void(int worker, std::size_t chunk)>& work,
                 const std::atomic<bool>* stop = nullptr);

}  // namespace underspec
