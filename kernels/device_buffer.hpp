// A move-only owner of a cudaMalloc'ed array (no managed memory). Destruction never
// throws: a failing cudaFree during unwinding is ignored.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "cuda_check.hpp"

namespace underspec::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count > 0) US_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
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
    if (data_) static_cast<void>(cudaFree(data_));
    data_ = nullptr;
    count_ = 0;
  }
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

// A buffer holding a copy of `host` (stream-ordered; keep `host` alive until it synchronises).
template <class T>
DeviceBuffer<T> to_device(const std::vector<T>& host, cudaStream_t stream) {
  DeviceBuffer<T> buffer(host.size());
  buffer.upload(host.data(), host.size(), stream);
  return buffer;
}

}  // namespace underspec::cuda
