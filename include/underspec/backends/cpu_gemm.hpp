// The CPU's register-blocked products: the same contract as gemm_block in model.hpp
// (every element accumulated with fmaf in ascending p, so results are bit-identical), with
// SIMD tiles whose accumulators stay in registers across all of P: AVX2 tiles of up to
// 6 rows x 16 columns (12 ymm registers) and, where AVX-512 is compiled in, 6 x 64 and
// 12 x 32 tiles (24 zmm registers). On x86-64 without FMA (the portable level) the tiles
// emulate fmaf exactly in double precision with SSE2 (SoftFma2 below) instead of calling the
// C library's fmaf for every element. This is how the work is spread on an x86 core, not
// what is computed; tests check the equality with the portable path. Host-only.
//
// Compiled once per instruction set: only src/backends/cpu/isa/cpu_kernels_isa.cpp includes
// this file, once per ISA level, with UNDERSPEC_CPU_ISA_NS naming a namespace of its own
// (cpu_isa_portable, cpu_isa_avx2, cpu_isa_avx512). Everything here is inside that
// namespace, so the linker never merges an inline function compiled with -mavx512f into the
// copy another ISA level calls. Everyone else goes through cpu_kernels.hpp.
#pragma once

#if !defined(UNDERSPEC_CPU_ISA_NS)
#error "cpu_gemm.hpp is compiled per ISA level (src/backends/cpu/isa/); include cpu_kernels.hpp instead"
#endif

#include <cstdint>

#include "underspec/core/model.hpp"

#if defined(__AVX2__) && defined(__FMA__) && !defined(__CUDACC__)
#include <immintrin.h>
#define UNDERSPEC_HAVE_AVX2_GEMM 1
#if defined(__AVX512F__)
#define UNDERSPEC_HAVE_AVX512_GEMM 1
#endif
#elif defined(__x86_64__) && defined(__SSE2__) && !defined(__FMA__) && !defined(__CUDACC__)
#include <emmintrin.h>
#define UNDERSPEC_HAVE_SOFT_FMA_GEMM 1
#endif

#define US_SIMD inline __attribute__((always_inline))

namespace underspec::UNDERSPEC_CPU_ISA_NS {

#if defined(UNDERSPEC_HAVE_SOFT_FMA_GEMM)

// fmaf(a, b, c) exactly, without an FMA instruction: a * b is exact in double (24 + 24 bits
// < 53), and s = a * b + c rounded to double, moved to the neighbour of odd last bit when
// inexact (round to odd: Boldo & Melquiond, "Emulation of FMA and correctly rounded sums:
// proved algorithms using rounding to odd", IEEE TC 2008), then rounded to float, is the
// correctly rounded result (53 >= 24 + 2). TwoSum gives the exact error of s: when it is
// non-zero, the exact sum lies strictly between s and its neighbour on the error's side, and
// the odd one of the two is s truncated towards zero (one step down when the error points to
// zero) with the last bit set. Infinities and NaNs have a NaN error and are left alone.
US_SIMD float soft_fmaf(float a, float b, float c) {
  const double product = static_cast<double>(a) * static_cast<double>(b), addend = c;
  const double s = product + addend;
  const double bv = s - product, av = s - bv;
  const double err = (product - av) + (addend - bv);
  auto bits = __builtin_bit_cast(std::uint64_t, s);
  if (__builtin_fabs(err) > 0.0) {
    bits -= (bits ^ __builtin_bit_cast(std::uint64_t, err)) >> 63;
    bits |= 1u;
  }
  return static_cast<float>(__builtin_bit_cast(double, bits));
}

// Two floats held exactly in the two doubles of an SSE2 register, with soft_fmaf's steps.
struct SoftFma2 {
  using V = __m128d;
  static constexpr int kLanes = 2, kAccumulators = 8;
  static US_SIMD V zero() { return _mm_setzero_pd(); }
  static US_SIMD V load(const float* p) {
    return _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static US_SIMD void store(float* p, V v) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_castps_si128(_mm_cvtpd_ps(v)));
  }
  static US_SIMD V broadcast(const float* p) { return _mm_set1_pd(static_cast<double>(*p)); }
  static US_SIMD V fmadd(V a, V b, V c) {
    const V product = _mm_mul_pd(a, b);
    const V s = _mm_add_pd(product, c);
    const V bv = _mm_sub_pd(s, product);
    const V av = _mm_sub_pd(s, bv);
    const V err = _mm_add_pd(_mm_sub_pd(product, av), _mm_sub_pd(c, bv));
    const V magnitude = _mm_andnot_pd(_mm_castsi128_pd(_mm_set1_epi64x(INT64_MIN)), err);
    const __m128i inexact = _mm_castpd_si128(_mm_cmplt_pd(zero(), magnitude));  // false for NaN
    const __m128i bits = _mm_castpd_si128(s);
    const __m128i down = _mm_and_si128(_mm_srli_epi64(_mm_xor_si128(bits, _mm_castpd_si128(err)), 63), inexact);
    const __m128i odd = _mm_or_si128(_mm_sub_epi64(bits, down), _mm_and_si128(inexact, _mm_set1_epi64x(1)));
    return _mm_cvtps_pd(_mm_cvtpd_ps(_mm_castsi128_pd(odd)));  // round to float; held exactly
  }
  // As apply_epilogue: maxpd returns its second operand for NaN and -0, so both map to +0.
  static US_SIMD V relu(V x) { return _mm_max_pd(x, zero()); }
  static US_SIMD V gate(V error, V activation) { return _mm_and_pd(error, _mm_cmpgt_pd(activation, zero())); }
};

// gemm_block with soft_fmaf: the columns the SoftFma2 tiles leave (e.g. the output layer's).
inline void soft_gemm_block(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) {
  for (int i = i_begin; i < i_end; ++i)
    for (int j = j_begin; j < j_end; ++j) {
      float acc = g.init == GemmInit::zero ? 0.0f : g.init == GemmInit::bias ? g.bias[j] : g.C[i * g.ldc + j];
      for (int p = 0; p < g.P; ++p)
        acc = soft_fmaf(g.A[i * g.a_row_stride + p * g.a_col_stride], g.B[p * g.ldb + j], acc);
      g.C[i * g.ldc + j] = apply_epilogue(g, acc, i, j);
    }
}

#endif

#if defined(UNDERSPEC_HAVE_AVX2_GEMM)

// One SIMD register of floats and the operations the tiles need. kAccumulators: how many
// accumulator registers a tile keeps in flight (of 16 ymm / 32 zmm).
struct Ymm {
  using V = __m256;
  static constexpr int kLanes = 8, kAccumulators = 12;
  static US_SIMD V zero() { return _mm256_setzero_ps(); }
  static US_SIMD V load(const float* p) { return _mm256_loadu_ps(p); }
  static US_SIMD void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static US_SIMD V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static US_SIMD V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  // As apply_epilogue: max(x, +0) returns its second operand for NaN and -0, so both map to +0.
  static US_SIMD V relu(V x) { return _mm256_max_ps(x, zero()); }
  static US_SIMD V gate(V error, V activation) {
    return _mm256_and_ps(error, _mm256_cmp_ps(activation, zero(), _CMP_GT_OQ));
  }
  // p[0], p[stride], ..., p[7 * stride]
  static US_SIMD V gather(const float* p, int stride) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_i32gather_ps(p, _mm256_mullo_epi32(lanes, _mm256_set1_epi32(stride)), 4);
  }
  // r[c][k] = r[k][c] for the 8 x 8 block in r (unpack, shuffle, permute: 24 shuffles).
  static US_SIMD void transpose(V (&r)[kLanes]) {
    V t[8];
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
      t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
      t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < 8; ++i) r[i] = t[i];
  }
};

#if defined(UNDERSPEC_HAVE_AVX512_GEMM)
struct Zmm {
  using V = __m512;
  static constexpr int kLanes = 16, kAccumulators = 24;
  static US_SIMD V zero() { return _mm512_setzero_ps(); }
  static US_SIMD V load(const float* p) { return _mm512_loadu_ps(p); }
  static US_SIMD void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static US_SIMD V broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static US_SIMD V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  // The all-lanes zero-masked form: the same vmaxps, without GCC 12's false
  // -Wmaybe-uninitialized on _mm512_max_ps's undefined pass-through operand.
  static US_SIMD V relu(V x) { return _mm512_maskz_max_ps(static_cast<__mmask16>(0xFFFF), x, zero()); }
  static US_SIMD V gate(V error, V activation) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(activation, zero(), _CMP_GT_OQ), error);
  }
  // p[0], p[stride], ..., p[15 * stride]
  static US_SIMD V gather(const float* p, int stride) {
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_mask_i32gather_ps(zero(), static_cast<__mmask16>(0xFFFF),
                                    _mm512_mullo_epi32(lanes, _mm512_set1_epi32(stride)), p, 4);
  }
  // r[c][k] = r[k][c] for the 16 x 16 block in r: unpack pairs of rows, then shuffles within
  // 128-bit lanes leave t[4m + s] lane q = column 4q + s of rows 4m..4m+3; a 4 x 4 transpose
  // of 128-bit lanes (shuffle_f32x4) gathers each column's four quarters (64 shuffles).
  // (The all-lanes zero-masked forms, as in relu, for GCC 12's false warnings.)
  static US_SIMD void transpose(V (&r)[kLanes]) {
    constexpr auto all = static_cast<__mmask16>(0xFFFF);
    V t[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
      t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
      r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int s = 0; s < 4; ++s) {  // quarters A = r[s], B = r[4 + s], C = r[8 + s], D = r[12 + s]
      const V ab_low = _mm512_maskz_shuffle_f32x4(all, r[s], r[4 + s], 0x44);
      const V ab_high = _mm512_maskz_shuffle_f32x4(all, r[s], r[4 + s], 0xEE);
      const V cd_low = _mm512_maskz_shuffle_f32x4(all, r[8 + s], r[12 + s], 0x44);
      const V cd_high = _mm512_maskz_shuffle_f32x4(all, r[8 + s], r[12 + s], 0xEE);
      t[s] = _mm512_maskz_shuffle_f32x4(all, ab_low, cd_low, 0x88);
      t[4 + s] = _mm512_maskz_shuffle_f32x4(all, ab_low, cd_low, 0xDD);
      t[8 + s] = _mm512_maskz_shuffle_f32x4(all, ab_high, cd_high, 0x88);
      t[12 + s] = _mm512_maskz_shuffle_f32x4(all, ab_high, cd_high, 0xDD);
    }
    for (int i = 0; i < 16; ++i) r[i] = t[i];
  }
};
#endif
#endif

#if defined(UNDERSPEC_HAVE_AVX2_GEMM) || defined(UNDERSPEC_HAVE_SOFT_FMA_GEMM)

// TM rows x (Vec::kLanes * NV) columns at (i0, j0).
template <class Vec, int TM, int NV>
inline void simd_gemm_tile(const GemmArgs& g, int i0, int j0) {
  using V = typename Vec::V;
  constexpr int L = Vec::kLanes;
  // Everything the loop reads is copied into locals, so the compiler can keep the
  // accumulators in registers instead of re-spilling them for possible aliasing.
  const int P = g.P, a_rs = g.a_row_stride, a_cs = g.a_col_stride, ldb = g.ldb, ldc = g.ldc;
  const float* __restrict a = g.A + i0 * a_rs;
  const float* __restrict b = g.B + j0;
  float* __restrict c = g.C + i0 * ldc + j0;
  V acc[TM][NV];
  US_UNROLL(24)
  for (int i = 0; i < TM; ++i) US_UNROLL(4)
  for (int v = 0; v < NV; ++v)
    acc[i][v] = g.init == GemmInit::zero   ? Vec::zero()
                : g.init == GemmInit::bias ? Vec::load(g.bias + j0 + L * v)
                                           : Vec::load(c + i * ldc + L * v);
  for (int p = 0; p < P; ++p) {
    V b_row[NV];
    US_UNROLL(4)
    for (int v = 0; v < NV; ++v) b_row[v] = Vec::load(b + p * ldb + L * v);
    US_UNROLL(24)
    for (int i = 0; i < TM; ++i) {
      const V a_ip = Vec::broadcast(a + i * a_rs + p * a_cs);
      US_UNROLL(4)
      for (int v = 0; v < NV; ++v) acc[i][v] = Vec::fmadd(a_ip, b_row[v], acc[i][v]);
    }
  }
  US_UNROLL(24)
  for (int i = 0; i < TM; ++i) US_UNROLL(4)
  for (int v = 0; v < NV; ++v) {
    V out = acc[i][v];
    if (g.epilogue == GemmEpilogue::relu) {
      out = Vec::relu(out);
    } else if (g.epilogue == GemmEpilogue::relu_mask) {
      out = Vec::gate(out, Vec::load(g.mask + (i0 + i) * ldc + j0 + L * v));
    }
    Vec::store(c + i * ldc + L * v, out);
  }
}

// The last `rows` (< the full tile height) rows at i, with a tile of exactly that height.
template <class Vec, int NV, int TM>
inline void simd_gemm_tail(const GemmArgs& g, int rows, int i, int j0) {
  if constexpr (TM > 0) {
    if (rows == TM) return simd_gemm_tile<Vec, TM, NV>(g, i, j0);
    simd_gemm_tail<Vec, NV, TM - 1>(g, rows, i, j0);
  }
}

// Rows [i_begin, i_end) of the (Vec::kLanes * NV) columns at j0.
template <class Vec, int NV>
inline void simd_gemm_rows(const GemmArgs& g, int i_begin, int i_end, int j0) {
  constexpr int kRows = Vec::kAccumulators / NV;
  int i = i_begin;
  for (; i + kRows <= i_end; i += kRows) simd_gemm_tile<Vec, kRows, NV>(g, i, j0);
  if (i < i_end) simd_gemm_tail<Vec, NV, kRows - 1>(g, i_end - i, i, j0);
}

#endif

#if defined(UNDERSPEC_HAVE_AVX2_GEMM)

// dst[c][r] = src[r][c] for one 8 x 8 block.
inline void avx2_transpose8x8(const float* src, int ld_src, float* dst, int ld_dst) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
  Ymm::transpose(r);
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * ld_dst, r[i]);
}

// Columns too few for a row tile (the output layer's single column): a register holds one
// column of Vec::kLanes consecutive rows, NR registers (row blocks) are in flight, and every
// element still takes its fused multiply-adds in ascending p. With a_row_stride 1 (the
// weight gradients) a block's A(i, p) are contiguous; with a_col_stride 1 (the forward pass)
// kLanes x kLanes blocks of A are transposed in registers, and the p past the last whole
// block are gathered.
template <class Vec, int NR>
inline void simd_gemm_column(const GemmArgs& g, int i0, int j) {
  using V = typename Vec::V;
  constexpr int L = Vec::kLanes;
  const int P = g.P, a_rs = g.a_row_stride, a_cs = g.a_col_stride, ldb = g.ldb, ldc = g.ldc;
  const float* __restrict a = g.A + i0 * a_rs;
  const float* __restrict b = g.B + j;
  alignas(64) float lanes[NR * L];
  for (int r = 0; r < NR * L; ++r)
    lanes[r] = g.init == GemmInit::zero ? 0.0f : g.init == GemmInit::bias ? g.bias[j] : g.C[(i0 + r) * ldc + j];
  V acc[NR];
  US_UNROLL(4)
  for (int k = 0; k < NR; ++k) acc[k] = Vec::load(lanes + k * L);
  int p = 0;
  if (a_rs == 1) {
    for (; p < P; ++p) {
      const V b_p = Vec::broadcast(b + p * ldb);
      US_UNROLL(4)
      for (int k = 0; k < NR; ++k) acc[k] = Vec::fmadd(Vec::load(a + p * a_cs + k * L), b_p, acc[k]);
    }
  } else if (a_cs == 1) {
    for (; p + L <= P; p += L) {
      US_UNROLL(4)
      for (int k = 0; k < NR; ++k) {
        V block[L];  // rows k*L.., columns p..: transposed to columns of rows
        US_UNROLL(16)
        for (int r = 0; r < L; ++r) block[r] = Vec::load(a + (k * L + r) * a_rs + p);
        Vec::transpose(block);
        US_UNROLL(16)
        for (int q = 0; q < L; ++q) acc[k] = Vec::fmadd(block[q], Vec::broadcast(b + (p + q) * ldb), acc[k]);
      }
    }
  }
  for (; p < P; ++p) {
    const V b_p = Vec::broadcast(b + p * ldb);
    US_UNROLL(4)
    for (int k = 0; k < NR; ++k) acc[k] = Vec::fmadd(Vec::gather(a + k * L * a_rs + p * a_cs, a_rs), b_p, acc[k]);
  }
  US_UNROLL(4)
  for (int k = 0; k < NR; ++k) Vec::store(lanes + k * L, acc[k]);
  for (int r = 0; r < NR * L; ++r) g.C[(i0 + r) * ldc + j] = apply_epilogue(g, lanes[r], i0 + r, j);
}

// Columns [j_begin, j_end) of rows [i_begin, i_end) by simd_gemm_column: four row blocks at a
// time, then fewer; the last rows (< kLanes) by gemm_block.
template <class Vec>
inline void simd_gemm_columns(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) {
  constexpr int L = Vec::kLanes;
  int i = i_begin;
  for (int j = j_begin; j < j_end; ++j) {
    i = i_begin;
    for (; i + 4 * L <= i_end; i += 4 * L) simd_gemm_column<Vec, 4>(g, i, j);
    switch ((i_end - i) / L) {
      case 3:
        simd_gemm_column<Vec, 3>(g, i, j);
        break;
      case 2:
        simd_gemm_column<Vec, 2>(g, i, j);
        break;
      case 1:
        simd_gemm_column<Vec, 1>(g, i, j);
        break;
      default:
        break;
    }
    i += (i_end - i) / L * L;
  }
  if (i < i_end) gemm_block(g, i, i_end, j_begin, j_end);
}

struct CpuGemm {
  void operator()(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) const {
    int j = j_begin;
#if defined(UNDERSPEC_HAVE_AVX512_GEMM)
    for (; j + 64 <= j_end; j += 64) simd_gemm_rows<Zmm, 4>(g, i_begin, i_end, j);
    for (; j + 32 <= j_end; j += 32) simd_gemm_rows<Zmm, 2>(g, i_begin, i_end, j);
    for (; j + 16 <= j_end; j += 16) simd_gemm_rows<Zmm, 1>(g, i_begin, i_end, j);
#endif
    for (; j + 16 <= j_end; j += 16) simd_gemm_rows<Ymm, 2>(g, i_begin, i_end, j);
    for (; j + 8 <= j_end; j += 8) simd_gemm_rows<Ymm, 1>(g, i_begin, i_end, j);
    if (j < j_end) {  // narrow remainder (e.g. the output layer)
#if defined(UNDERSPEC_HAVE_AVX512_GEMM)
      simd_gemm_columns<Zmm>(g, i_begin, i_end, j, j_end);
#else
      simd_gemm_columns<Ymm>(g, i_begin, i_end, j, j_end);
#endif
    }
  }
  void transpose(const float* src, int rows, int cols, float* dst) const {
    if (rows % 8 != 0 || cols % 8 != 0) return transpose_block(src, rows, cols, dst);
    for (int r0 = 0; r0 < rows; r0 += 8)
      for (int c0 = 0; c0 < cols; c0 += 8) avx2_transpose8x8(src + r0 * cols + c0, cols, dst + c0 * rows + r0, rows);
  }
};

#elif defined(UNDERSPEC_HAVE_SOFT_FMA_GEMM)

struct CpuGemm {
  void operator()(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) const {
    int j = j_begin;
    for (; j + 4 <= j_end; j += 4) simd_gemm_rows<SoftFma2, 2>(g, i_begin, i_end, j);
    for (; j + 2 <= j_end; j += 2) simd_gemm_rows<SoftFma2, 1>(g, i_begin, i_end, j);
    if (j < j_end) soft_gemm_block(g, i_begin, i_end, j, j_end);
  }
  void transpose(const float* src, int rows, int cols, float* dst) const { transpose_block(src, rows, cols, dst); }
};

#else

// No SIMD tiles at this level: the portable product, as a type of this namespace (so the
// group trainer's instantiations for it are this level's own).
struct CpuGemm {
  void operator()(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) const {
    gemm_block(g, i_begin, i_end, j_begin, j_end);
  }
  void transpose(const float* src, int rows, int cols, float* dst) const { transpose_block(src, rows, cols, dst); }
};

#endif

}  // namespace underspec::UNDERSPEC_CPU_ISA_NS

#undef US_SIMD
