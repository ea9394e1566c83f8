// US_HD marks functions shared by the CPU backend and the CUDA kernels: the math is
// written once (DESIGN.md §3) and compiled for both.
#pragma once

#if defined(__CUDACC__)
#define US_HD __host__ __device__
#define US_HD_INLINE __host__ __device__ __forceinline__
#else
#define US_HD
#define US_HD_INLINE inline __attribute__((always_inline))
#endif
