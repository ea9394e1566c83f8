// The bootstrap's resamples on the GPU (cuda_bootstrap.hpp): the group's values and orders
// are uploaded once, then bootstrap_thrust::transform_resamples runs chunk after chunk on one
// stream, each resample's counts (and Spearman's ranks) in device scratch.
#include <thrust/execution_policy.h>
#include <thrust/system/cuda/execution_policy.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "bootstrap_thrust.hpp"
#include "cuda_check.hpp"
#include "cuda_stream.hpp"
#include "device_buffer.hpp"
#include "underspec/backends/cuda_bootstrap.hpp"

namespace underspec {
namespace {

// One group at a time on the GPU: each call sizes its scratch from the free memory it sees,
// which concurrent calls would over-commit; the OpenMP threads that wait meanwhile hold only
// large groups (small ones stay on the CPU), each of which keeps the GPU busy.
std::mutex gpu_mutex;

// Restores the calling thread's current device (an OpenMP thread of the statistics).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    US_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device >= 0 && device != previous_) US_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { static_cast<void>(cudaSetDevice(previous_)); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

template <class T>
cuda::DeviceBuffer<T> upload(const T* host, int count, cudaStream_t stream) {
  cuda::DeviceBuffer<T> buffer(static_cast<std::size_t>(count));
  if (count > 0) buffer.upload(host, static_cast<std::size_t>(count), stream);
  return buffer;
}

}  // namespace

void cuda_bootstrap_resamples(int device, BootstrapStatistic statistic, const BootstrapData& data, PhiloxKey key,
                              const std::atomic<bool>* stop, double* out, std::size_t max_scratch_bytes) {
  const std::lock_guard lock(gpu_mutex);
  const DeviceGuard guard(device);
  const cuda::CudaStream stream;
  const bool spearman = statistic == BootstrapStatistic::spearman;
  // Uploaded once for all chunks. The orders are Spearman's only.
  const auto x = upload(data.x, data.nx, stream.get());
  const auto y = upload(data.y, data.y ? data.ny : 0, stream.get());
  const auto x_order = upload(data.x_order, spearman ? data.nx : 0, stream.get());
  const auto y_order = upload(data.y_order, spearman ? data.ny : 0, stream.get());
  const BootstrapData on_device{x.data(), data.nx, y.data(), data.ny, x_order.data(), y_order.data()};

  std::size_t free = 0, total = 0;
  US_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  const std::size_t per_resample = bootstrap_thrust::scratch_bytes_per_resample(statistic, data.nx, data.ny);
  const std::size_t chunk = bootstrap_thrust::chunk_resamples(per_resample, std::min(free / 2, max_scratch_bytes));
  const std::size_t stride = static_cast<std::size_t>(data.nx) + static_cast<std::size_t>(data.ny);
  const cuda::DeviceBuffer<int> counts(chunk * stride);
  const cuda::DeviceBuffer<double> ranks(spearman ? chunk * stride : 0);
  const cuda::DeviceBuffer<double> values(kBootstrapResamples);

  // thrust::cuda::par.on(stream) synchronises the stream after each transform (the uploads
  // before the first one are on the same stream): a chunk's scratch is free for the next.
  const std::uint32_t done =
      bootstrap_thrust::transform_resamples(thrust::cuda::par.on(stream.get()), statistic, on_device, key,
                                            counts.data(), ranks.data(), chunk, values.data(), stop);
  US_CUDA_CHECK(cudaGetLastError());
  values.download(out, done, stream.get());
  US_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  std::fill(out + done, out + kBootstrapResamples, std::numeric_limits<double>::quiet_NaN());
}

namespace {

void device_resamples(int device, BootstrapStatistic statistic, const BootstrapData& data, PhiloxKey key,
                      const std::atomic<bool>* stop, double* out) {
  cuda_bootstrap_resamples(device, statistic, data, key, stop, out);
}

}  // namespace

BootstrapDevice cuda_bootstrap_device(int device) {
  return BootstrapDevice{&device_resamples, device, kCudaBootstrapMinValues};
}

}  // namespace underspec
