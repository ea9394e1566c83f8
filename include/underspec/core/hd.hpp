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

// A pointer its caller knows to address GPU shared memory, said to the compiler so that its
// loads and stores become ld.shared / st.shared with 32-bit addresses rather than generic
// ones (which it cannot prove for pointers read from a table). Undefined behaviour if false:
// callers decide it from the layout (cuda_plan::operands_in_shared), and HostGroup checks
// the same decision on the CPU. The host ignores it.
template <class T>
US_HD_INLINE T* assume_shared(T* p) {
#if defined(__CUDA_ARCH__)
  __builtin_assume(__isShared(p));
#endif
  return p;
}

// Unrolling for the GPU only: a loop carrying one dependent chain (a dot product, a sum) whose
// loads the GPU should issue ahead of the chain; the CPU's versions of such loops are its
// SIMD kernels, so the hint would only grow its portable code.
#if defined(__CUDA_ARCH__)
#define US_DEVICE_UNROLL(n) US_PRAGMA(unroll n)
#else
#define US_DEVICE_UNROLL(n)
#endif
