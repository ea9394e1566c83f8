// The machine's FP32 peak, measured: many independent chains of fused multiply-adds on
// the widest vector registers the CPU offers (AVX-512, else AVX2 + FMA), so the FMA units,
// not the latency of one chain, limit the rate.
#pragma once

#include <string>

namespace underspec::bench {

struct FmaPeak {
  std::string isa;  // "avx512f", "avx2+fma" or "scalar"
  int threads = 1;
  double seconds = 0;  // wall time of the measurement
  double gflops = 0;   // 2 FLOP per lane per FMA
};

// Runs the probe on `threads` OpenMP threads for about `seconds` of wall time.
FmaPeak measure_fma_peak(int threads, double seconds);

}  // namespace underspec::bench
