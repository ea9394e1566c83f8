// cuRAND's Philox4_32_10 (device API) evaluated at given (key, counter) pairs next to our
// philox4x32_10, for the gpu test of their equality. Mapping of cuRAND's state:
//   key     = (seed lo, seed hi)
//   counter = (offset/4 lo, offset/4 hi, subsequence lo, subsequence hi)
// so curand_init(seed = k1:k0, subsequence = c3:c2, offset = 4 * (c1:c0)) then curand4
// returns the block of counter (c0, c1, c2, c3). Counters need c1 < 2^30 (offset fits 64 bits).
#pragma once

#include <cuda_runtime.h>

#include "underspec/core/rng.hpp"

namespace underspec::cuda {

// Device arrays of n entries each.
void launch_philox_pair(const PhiloxCounter* counters, const PhiloxKey* keys, PhiloxBlock* curand_out,
                        PhiloxBlock* ours_out, int n, cudaStream_t stream);

}  // namespace underspec::cuda
