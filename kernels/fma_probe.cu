// The GPU's FP32 peak (see cuda_benchmark.hpp). Every thread runs kChains independent
// chains acc = fmaf(acc, m, c): fmaf is one FFMA whatever --fmad says, and independent
// chains plus a full device of warps hide its latency, so the FMA pipes limit the rate.
#include <algorithm>
#include <chrono>

#include "cuda_benchmark.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"

namespace underspec::cuda {
namespace {

constexpr int kChains = 16;
constexpr int kThreads = 256;

__global__ void fma_chains_kernel(int iterations, float m, float c, float* sink) {
  float acc[kChains];
#pragma unroll
  for (int k = 0; k < kChains; ++k) acc[k] = 1.0f + static_cast<float>(k) + 1e-3f * static_cast<float>(threadIdx.x);
#pragma unroll 4
  for (int i = 0; i < iterations; ++i)
#pragma unroll
    for (int k = 0; k < kChains; ++k) acc[k] = fmaf(acc[k], m, c);
  float total = 0;
#pragma unroll
  for (int k = 0; k < kChains; ++k) total += acc[k];
  // Never true (every chain stays near its start, > 1), but the compiler cannot know: the
  // chains must be computed.
  if (total < 0.0f) sink[blockIdx.x] = total;
}

}  // namespace

GpuFmaPeak measure_gpu_fma_peak(double seconds) {
  int device = 0, sms = 0, threads_per_sm = 0;
  US_CUDA_CHECK(cudaGetDevice(&device));
  US_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  US_CUDA_CHECK(cudaDeviceGetAttribute(&threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, device));
  GpuFmaPeak peak;
  peak.threads = kThreads;
  peak.blocks = sms * std::max(1, threads_per_sm / kThreads);
  peak.chains = kChains;
  DeviceBuffer<float> sink(static_cast<std::size_t>(peak.blocks));
  cudaEvent_t start, stop;
  US_CUDA_CHECK(cudaEventCreate(&start));
  US_CUDA_CHECK(cudaEventCreate(&stop));
  // m < 1 and c small keep every value finite and normal for any iteration count.
  const auto timed_ms = [&](int iterations) {
    US_CUDA_CHECK(cudaEventRecord(start, nullptr));
    fma_chains_kernel<<<peak.blocks, kThreads>>>(iterations, 0.999999f, 1e-6f, sink.data());
    US_CUDA_CHECK_LAUNCH("fma_chains_kernel");
    US_CUDA_CHECK(cudaEventRecord(stop, nullptr));
    US_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    US_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return static_cast<double>(ms);
  };
  try {
    // Calibrate (the first launch also loads the module): grow the iteration count until one
    // launch takes a tenth of the budget.
    int iterations = 1 << 10;
    double ms = timed_ms(iterations);
    while (ms < seconds * 1e3 / 10 && iterations < (1 << 30)) {
      iterations *= 2;
      ms = timed_ms(iterations);
    }
    double best = ms;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) best = std::min(best, timed_ms(iterations));
    peak.iterations = iterations;
    peak.seconds = best * 1e-3;
    const double flop = 2.0 * kChains * static_cast<double>(iterations) * peak.blocks * kThreads;
    peak.gflops = flop / peak.seconds * 1e-9;
  } catch (...) {
    static_cast<void>(cudaEventDestroy(start));
    static_cast<void>(cudaEventDestroy(stop));
    throw;
  }
  US_CUDA_CHECK(cudaEventDestroy(start));
  US_CUDA_CHECK(cudaEventDestroy(stop));
  return peak;
}

}  // namespace underspec::cuda
