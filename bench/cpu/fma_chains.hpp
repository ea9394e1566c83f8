// The probe's kernel, compiled once per instruction set by CMakeLists.txt from
// fma_chains.cpp: kChains independent vector accumulators through acc = acc * m + c.
#pragma once

#include <cstdint>

namespace underspec::bench {

constexpr int kChains = 12;  // 4-cycle FMA latency x 2 pipes = 8 in flight, with margin

// Each returns the sum of its accumulators (so the work cannot be optimised away).
float fma_chains_avx512(std::int64_t iterations);   // 16 lanes; x86-64 builds only
float fma_chains_avx2(std::int64_t iterations);     // 8 lanes; x86-64 builds only
float fma_chains_generic(std::int64_t iterations);  // 4 lanes, the build's own flags

}  // namespace underspec::bench
