// One source for every variant of the probe's kernel (see fma_chains.hpp). CMakeLists.txt
// compiles it with FMA_LANES, FMA_NAME and the instruction-set flags of each variant, and
// with -ffp-contract=fast so that a * b + c on GCC vector types is one fused multiply-add
// (the rest of the project computes with -ffp-contract=off).
#include "fma_chains.hpp"

namespace underspec::bench {

using Vec = float __attribute__((vector_size(4 * FMA_LANES)));

float FMA_NAME(std::int64_t iterations) {
  Vec acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = Vec{} + (1.0f + static_cast<float>(k));
  // m < 1 keeps every value finite and normal for any iteration count.
  const Vec m = Vec{} + 0.999999f, c = Vec{} + 1e-6f;
  for (std::int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) acc[k] = acc[k] * m + c;
  float total = 0;
  for (int k = 0; k < kChains; ++k)
    for (int j = 0; j < FMA_LANES; ++j) total += acc[k][j];
  return total;
}

}  // namespace underspec::bench
