// US_HD marks functions shared by the CPU backend and the CUDA kernels: the math is
// written once (docs/ARCHITECTURE.md) and compiled for both.
#pragma once

#if defined(__CUDACC__)
#define US_HD __host__ __device__
#define US_HD_INLINE __host__ __device__ __forceinline__
#else
#define US_HD
#define US_HD_INLINE inline __attribute__((always_inline))
#endif

// A loop-unrolling hint in the dialect of whichever compiler pass reads it.
#define US_PRAGMA(x) _Pragma(#x)
#if defined(__CUDA_ARCH__)
#define US_UNROLL(n) US_PRAGMA(unroll n)
#elif defined(__CUDACC__)
#define US_UNROLL(n)  // nvcc's host pass: its front end knows no GCC pragmas
#elif defined(__GNUC__) && !defined(__clang__)
#define US_UNROLL(n) US_PRAGMA(GCC unroll n)
#else
#define US_UNROLL(n)
#endif

// Unrolling for the GPU only: a loop carrying one dependent chain (a dot product, a sum) whose
// loads the GPU should issue ahead of the chain; the CPU's versions of such loops are its
// SIMD kernels, so the hint would only grow its portable code.
#if defined(__CUDA_ARCH__)
#define US_DEVICE_UNROLL(n) US_PRAGMA(unroll n)
#else
#define US_DEVICE_UNROLL(n)
#endif
