// See cpu_fma_probe.hpp. Each instruction set's kernel is a function compiled for it with
// a target attribute (the rest of the file keeps the build's flags); the probe picks the
// widest the CPU supports at run time. The FMAs are spelled out (intrinsics, std::fma), so
// the project's -ffp-contract=off does not matter here.
#include "underspec/benchmark/cpu_fma_probe.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace underspec::benchmark {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kChains = 12;  // 4-cycle FMA latency x 2 pipes = 8 in flight, with margin
// m < 1 keeps every value finite and normal for any iteration count.
constexpr float kMul = 0.999999f, kAdd = 1e-6f;

// Each kernel returns the sum of its accumulators, so the work cannot be optimised away.
#if defined(__x86_64__)
// AVX code lives in namespaces named after its level, the only place the portable binary's
// check (tests/check_cpu_kernel_symbols.sh) allows it; it runs only after pick_kernel() has
// asked the CPU.
namespace cpu_isa_avx512 {
__attribute__((target("avx512f"))) float chains(std::int64_t iterations) {
  __m512 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_ps(1.0f + static_cast<float>(k));
  const __m512 m = _mm512_set1_ps(kMul), c = _mm512_set1_ps(kAdd);
  for (std::int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, c);
  float total = 0;
  for (int k = 0; k < kChains; ++k) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, acc[k]);
    for (float v : lanes) total += v;
  }
  return total;
}

}  // namespace cpu_isa_avx512

namespace cpu_isa_avx2 {
__attribute__((target("avx2,fma"))) float chains(std::int64_t iterations) {
  __m256 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm256_set1_ps(1.0f + static_cast<float>(k));
  const __m256 m = _mm256_set1_ps(kMul), c = _mm256_set1_ps(kAdd);
  for (std::int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, c);
  float total = 0;
  for (int k = 0; k < kChains; ++k) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc[k]);
    for (float v : lanes) total += v;
  }
  return total;
}
}  // namespace cpu_isa_avx2
#endif

float chains_generic(std::int64_t iterations) {
  constexpr int kLanes = 4;
  float acc[kChains][kLanes];
  for (int k = 0; k < kChains; ++k)
    for (int j = 0; j < kLanes; ++j) acc[k][j] = 1.0f + static_cast<float>(k);
  for (std::int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k)
      for (int j = 0; j < kLanes; ++j) acc[k][j] = std::fma(acc[k][j], kMul, kAdd);
  float total = 0;
  for (int k = 0; k < kChains; ++k)
    for (int j = 0; j < kLanes; ++j) total += acc[k][j];
  return total;
}

struct Kernel {
  const char* isa;
  int lanes;
  float (*run)(std::int64_t);
};

Kernel pick_kernel() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {"avx512f", 16, cpu_isa_avx512::chains};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"avx2+fma", 8, cpu_isa_avx2::chains};
#endif
  return {"generic (4 lanes)", 4, chains_generic};
}

volatile float g_sink;

// Wall seconds for every thread to run `iterations`.
double timed_run(const Kernel& kernel, int threads, std::int64_t iterations) {
  const auto start = Clock::now();
#pragma omp parallel num_threads(threads)
  {
    const float r = kernel.run(iterations);
#pragma omp critical(underspec_fma_sink)
    g_sink = g_sink + r;
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

std::int64_t calibrate_iterations(const std::function<double(std::int64_t)>& time_run, double target) {
  std::int64_t iterations = 1 << 14;
  double t = std::min(time_run(iterations), time_run(iterations));
  while (t < target) {
    iterations *= 2;
    t = std::min(time_run(iterations), time_run(iterations));
  }
  return iterations;
}

FmaPeak measure_fma_peak(int threads, double seconds) {
  const Kernel kernel = pick_kernel();
  if (threads <= 0) threads = omp_get_max_threads();
  // Calibrated on one thread, whose runs hold only FMAs: on a busy machine a run of several
  // threads also waits for each to get a core, which can take longer than the target itself.
  const std::int64_t iterations =
      calibrate_iterations([&](std::int64_t n) { return timed_run(kernel, 1, n); }, seconds / 10);
  double best = timed_run(kernel, threads, iterations);
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    const double r = timed_run(kernel, threads, iterations);
    if (r < best) best = r;
  }
  const double flop = 2.0 * kernel.lanes * kChains * static_cast<double>(iterations) * threads;
  return FmaPeak{kernel.isa, threads, best, flop / best * 1e-9};
}

}  // namespace underspec::benchmark
