// The CPU's FP32 peak, measured: many independent chains of fused multiply-adds on the
// widest vector registers the CPU offers (AVX-512, else AVX2 + FMA, else 4-lane scalar
// code), so the FMA units, not the latency of one chain, limit the rate.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace underspec::benchmark {

struct FmaPeak {
  std::string isa;  // "avx512f", "avx2+fma" or "generic (4 lanes)"
  int threads = 1;
  double seconds = 0;  // wall time of the best timed run
  double gflops = 0;   // 2 FLOP per lane per FMA
};

// The iteration count of the probe's runs: doubled from 2^14 until the faster of two runs,
// timed by `time_run`, takes at least `target` seconds. The faster of two: on a busy machine
// a run can wait for a core, and one such wait would stop the growth at runs of
// microseconds, which then time the waits, not the FMAs.
std::int64_t calibrate_iterations(const std::function<double(std::int64_t)>& time_run, double target);

// Runs the probe on `threads` OpenMP threads (<= 0: all) for about `seconds` of wall time
// and returns the best run: the peak is what the hardware can do, so noise only lowers it.
FmaPeak measure_fma_peak(int threads, double seconds);

}  // namespace underspec::benchmark
