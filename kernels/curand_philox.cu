// See curand_philox.hpp.
#include <curand_kernel.h>

#include "cuda_check.hpp"
#include "curand_philox.hpp"

namespace underspec::cuda {
namespace {

__device__ PhiloxBlock curand_philox_block(PhiloxCounter c, PhiloxKey k) {
  curandStatePhilox4_32_10_t state;
  const unsigned long long seed = (static_cast<unsigned long long>(k.k1) << 32) | k.k0;
  const unsigned long long subsequence = (static_cast<unsigned long long>(c.c3) << 32) | c.c2;
  const unsigned long long offset = ((static_cast<unsigned long long>(c.c1) << 32) | c.c0) * 4ull;
  curand_init(seed, subsequence, offset, &state);
  const uint4 r = curand4(&state);
  return PhiloxBlock{{r.x, r.y, r.z, r.w}};
}

__global__ void philox_pair_kernel(const PhiloxCounter* counters, const PhiloxKey* keys, PhiloxBlock* curand_out,
                                   PhiloxBlock* ours_out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  curand_out[i] = curand_philox_block(counters[i], keys[i]);
  ours_out[i] = philox4x32_10(counters[i], keys[i]);
}

}  // namespace

void launch_philox_pair(const PhiloxCounter* counters, const PhiloxKey* keys, PhiloxBlock* curand_out,
                        PhiloxBlock* ours_out, int n, cudaStream_t stream) {
  if (n <= 0) return;
  philox_pair_kernel<<<(n + 127) / 128, 128, 0, stream>>>(counters, keys, curand_out, ours_out, n);
  US_CUDA_CHECK_LAUNCH("philox_pair_kernel");
}

}  // namespace underspec::cuda
