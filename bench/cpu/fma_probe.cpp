// See fma_probe.hpp. Every thread runs the widest kernel of fma_chains.hpp the CPU supports.
#include "fma_probe.hpp"

#include <omp.h>

#include <chrono>
#include <cstdint>

#include "fma_chains.hpp"

namespace underspec::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Kernel {
  const char* isa;
  int lanes;
  float (*run)(std::int64_t);
};

Kernel pick_kernel() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {"avx512f", 16, fma_chains_avx512};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"avx2+fma", 8, fma_chains_avx2};
#endif
  return {"generic (4 lanes)", 4, fma_chains_generic};
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

FmaPeak measure_fma_peak(int threads, double seconds) {
  const Kernel kernel = pick_kernel();
  if (threads <= 0) threads = omp_get_max_threads();
  // Calibrate: grow the iteration count until one run takes a tenth of the budget.
  std::int64_t iterations = 1 << 16;
  double t = timed_run(kernel, threads, iterations);
  while (t < seconds / 10) {
    iterations *= 2;
    t = timed_run(kernel, threads, iterations);
  }
  // Best of several runs: the peak is what the hardware can do, so noise only lowers it.
  double best = t;
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    const double r = timed_run(kernel, threads, iterations);
    if (r < best) best = r;
  }
  const double flop = 2.0 * kernel.lanes * kChains * static_cast<double>(iterations) * threads;
  return FmaPeak{kernel.isa, threads, best, flop / best * 1e-9};
}

}  // namespace underspec::bench
