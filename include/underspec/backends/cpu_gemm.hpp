// The CPU's register-blocked products: the same contract as gemm_block in model.hpp
// (every element accumulated with fmaf in ascending p, so results are bit-identical), with
// AVX2 tiles of up to 6 rows x 16 columns held in 12 ymm registers across all of P.
// This is how the work is spread on an x86 core, not what is computed; a test checks the
// equality with the portable path. Host-only.
#pragma once

#include "underspec/core/model.hpp"

#if defined(__AVX2__) && defined(__FMA__) && !defined(__CUDACC__)
#include <immintrin.h>
#define UNDERSPEC_HAVE_AVX2_GEMM 1
#endif

namespace underspec {

#if defined(UNDERSPEC_HAVE_AVX2_GEMM)

// TM rows x (8 * NV) columns at (i0, j0).
template <int TM, int NV>
inline void avx2_gemm_tile(const GemmArgs& g, int i0, int j0) {
  // Everything the loop reads is copied into locals, so the compiler can keep the
  // accumulators in registers instead of re-spilling them for possible aliasing.
  const int P = g.P, a_rs = g.a_row_stride, a_cs = g.a_col_stride, ldb = g.ldb, ldc = g.ldc;
  const float* __restrict a = g.A + i0 * a_rs;
  const float* __restrict b = g.B + j0;
  float* __restrict c = g.C + i0 * ldc + j0;
  __m256 acc[TM][NV];
  US_UNROLL(16)
  for (int i = 0; i < TM; ++i) US_UNROLL(4)
  for (int v = 0; v < NV; ++v)
    acc[i][v] = g.init == GemmInit::zero   ? _mm256_setzero_ps()
                : g.init == GemmInit::bias ? _mm256_loadu_ps(g.bias + j0 + 8 * v)
                                           : _mm256_loadu_ps(c + i * ldc + 8 * v);
  for (int p = 0; p < P; ++p) {
    __m256 b_row[NV];
    US_UNROLL(4)
    for (int v = 0; v < NV; ++v) b_row[v] = _mm256_loadu_ps(b + p * ldb + 8 * v);
    US_UNROLL(16)
    for (int i = 0; i < TM; ++i) {
      const __m256 a_ip = _mm256_broadcast_ss(a + i * a_rs + p * a_cs);
      US_UNROLL(4)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(a_ip, b_row[v], acc[i][v]);
    }
  }
  // Epilogues as in apply_epilogue: max(x, +0) and the masked AND both map NaN and -0 to +0.
  const __m256 zero = _mm256_setzero_ps();
  US_UNROLL(16)
  for (int i = 0; i < TM; ++i) US_UNROLL(4)
  for (int v = 0; v < NV; ++v) {
    __m256 out = acc[i][v];
    if (g.epilogue == GemmEpilogue::relu) {
      out = _mm256_max_ps(out, zero);
    } else if (g.epilogue == GemmEpilogue::relu_mask) {
      const __m256 gate = _mm256_loadu_ps(g.mask + (i0 + i) * ldc + j0 + 8 * v);
      out = _mm256_and_ps(out, _mm256_cmp_ps(gate, zero, _CMP_GT_OQ));
    }
    _mm256_storeu_ps(c + i * ldc + 8 * v, out);
  }
}

// dst[c][r] = src[r][c] for one 8 x 8 block (unpack, shuffle, permute: 24 shuffles).
inline void avx2_transpose8x8(const float* src, int ld_src, float* dst, int ld_dst) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

template <int NV>
inline void avx2_gemm_rows(const GemmArgs& g, int i_begin, int i_end, int j0) {
  constexpr int kRows = NV == 2 ? 6 : 12;  // keep 12 accumulators in flight
  int i = i_begin;
  for (; i + kRows <= i_end; i += kRows) avx2_gemm_tile<kRows, NV>(g, i, j0);
  switch (i_end - i) {
    case 11:
      avx2_gemm_tile<11, NV>(g, i, j0);
      break;
    case 10:
      avx2_gemm_tile<10, NV>(g, i, j0);
      break;
    case 9:
      avx2_gemm_tile<9, NV>(g, i, j0);
      break;
    case 8:
      avx2_gemm_tile<8, NV>(g, i, j0);
      break;
    case 7:
      avx2_gemm_tile<7, NV>(g, i, j0);
      break;
    case 6:
      avx2_gemm_tile<6, NV>(g, i, j0);
      break;
    case 5:
      avx2_gemm_tile<5, NV>(g, i, j0);
      break;
    case 4:
      avx2_gemm_tile<4, NV>(g, i, j0);
      break;
    case 3:
      avx2_gemm_tile<3, NV>(g, i, j0);
      break;
    case 2:
      avx2_gemm_tile<2, NV>(g, i, j0);
      break;
    case 1:
      avx2_gemm_tile<1, NV>(g, i, j0);
      break;
    default:
      break;
  }
}

struct CpuGemm {
  void operator()(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) const {
    int j = j_begin;
    for (; j + 16 <= j_end; j += 16) avx2_gemm_rows<2>(g, i_begin, i_end, j);
    for (; j + 8 <= j_end; j += 8) avx2_gemm_rows<1>(g, i_begin, i_end, j);
    if (j < j_end) gemm_block(g, i_begin, i_end, j, j_end);  // narrow remainder (e.g. the output)
  }
  void transpose(const float* src, int rows, int cols, float* dst) const {
    if (rows % 8 != 0 || cols % 8 != 0) return transpose_block(src, rows, cols, dst);
    for (int r0 = 0; r0 < rows; r0 += 8)
      for (int c0 = 0; c0 < cols; c0 += 8) avx2_transpose8x8(src + r0 * cols + c0, cols, dst + c0 * rows + r0, rows);
  }
};

#else
using CpuGemm = PortableGemm;
#endif

}  // namespace underspec
