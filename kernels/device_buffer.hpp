// A move-only owner of a device array (no managed memory): cudaMalloc'ed, or stream-ordered
// (cudaMallocAsync / cudaFreeAsync on one stream). cudaMalloc and cudaFree synchronise the
// whole device, so buffers made and freed while other streams run (a launch group's chunks,
// trained beside another group's) are stream-ordered: valid on their stream only, until it
// is synchronised. Destruction never throws: a failing free during unwinding is ignored.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "cuda_check.hpp"

namespace underspec::cuda {

// Whether the current device has stream-ordered memory pools (cudaMallocAsync); asked once
// per device. Without them a stream-ordered DeviceBuffer falls back to cudaMalloc/cudaFree.
inline bool memory_pools_supported() {
  int device = 0;
  US_CUDA_CHECK(cudaGetDevice(&device));
  static std::mutex mutex;
  static std::map<int, bool> known;
  const std::lock_guard lock(mutex);
  const auto it = known.find(device);
  if (it != known.end()) return it->second;
  int supported = 0;
  US_CUDA_CHECK(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device));
  return known[device] = supported != 0;
}

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count > 0) US_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
  }
  // Stream-ordered: allocated when `stream` reaches this point, freed when it reaches the
  // destructor's point (plain cudaMalloc'ed on a device without memory pools).
  DeviceBuffer(std::size_t count, cudaStream_t stream) : count_(count), stream_(stream) {
    if (count == 0) return;
    ordered_ = memory_pools_supported();
    if (ordered_)
      US_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), count * sizeof(T), stream));
    else
      US_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        count_(std::exchange(other.count_, 0)),
        stream_(other.stream_),
        ordered_(other.ordered_) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
      stream_ = other.stream_;
      ordered_ = other.ordered_;
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  T* data() const { return data_; }
  std::size_t size() const { return count_; }

  void upload(const T* host, std::size_t count, cudaStream_t stream) {
    if (count > count_) throw CudaError("DeviceBuffer::upload", __FILE__, __LINE__, "size", "more than allocated");
    if (count) US_CUDA_CHECK(cudaMemcpyAsync(data_, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  void download(T* host, std::size_t count, cudaStream_t stream) const {
    if (count > count_) throw CudaError("DeviceBuffer::download", __FILE__, __LINE__, "size", "more than allocated");
    if (count) US_CUDA_CHECK(cudaMemcpyAsync(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
  }

 private:
  void release() noexcept {
    if (data_) static_cast<void>(ordered_ ? cudaFreeAsync(data_, stream_) : cudaFree(data_));
    data_ = nullptr;
    count_ = 0;
  }
  T* data_ = nullptr;
  std::size_t count_ = 0;
  cudaStream_t stream_ = nullptr;
  bool ordered_ = false;
};

// A buffer holding a copy of `host` (stream-ordered; keep `host` alive until it synchronises).
template <class T>
DeviceBuffer<T> to_device(const std::vector<T>& host, cudaStream_t stream) {
  DeviceBuffer<T> buffer(host.size());
  buffer.upload(host.data(), host.size(), stream);
  return buffer;
}

// The same, stream-ordered (valid on `stream` only until it is synchronised).
template <class T>
DeviceBuffer<T> to_device_ordered(const std::vector<T>& host, cudaStream_t stream) {
  DeviceBuffer<T> buffer(host.size(), stream);
  buffer.upload(host.data(), host.size(), stream);
  return buffer;
}

}  // namespace underspec::cuda
