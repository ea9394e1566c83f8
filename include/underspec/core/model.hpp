// The networks: a stack of dense layers, ReLU between them, one output. A perceptron is
// the stack with no hidden layer (3 -> 1); the study's MLP is 3 -> 64 -> 64 -> 1.
//
// Parameter layout (one flat float array per replica): for each layer l = 1..L, its weights
// W_l stored input-major as [fan_in][fan_out], then its bias b_l[fan_out]. Input-major
// weights make the inner loop of every product run over contiguous outputs.
#pragma once

#include <cstdint>

#include "underspec/core/adam.hpp"
#include "underspec/core/hd.hpp"
#include "underspec/core/rng.hpp"

namespace underspec {

constexpr int kFeatures = 3;   // x1, x2, x3
constexpr int kMaxLayers = 8;  // dense layers, including the output layer

struct NetShape {
  int n_layers = 1;                            // dense layers; width has n_layers + 1 entries
  int width[kMaxLayers + 1] = {kFeatures, 1};  // width[0] = inputs, width[n_layers] = 1
};

US_HD_INLINE int weight_offset(const NetShape& s, int layer) {  // layer in 1..n_layers
  int offset = 0;
  for (int l = 1; l < layer; ++l) offset += (s.width[l - 1] + 1) * s.width[l];
  return offset;
}
US_HD_INLINE int bias_offset(const NetShape& s, int layer) {
  return weight_offset(s, layer) + s.width[layer - 1] * s.width[layer];
}
US_HD_INLINE int param_count(const NetShape& s) { return weight_offset(s, s.n_layers + 1); }
US_HD_INLINE int max_width(const NetShape& s) {
  int w = 0;
  for (int l = 0; l <= s.n_layers; ++l) w = s.width[l] > w ? s.width[l] : w;
  return w;
}

// PyTorch's default nn.Linear initialisation: weights and biases ~ U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)). Parameter `index` of the flat array draws word index%4 of the Philox
// block at counter (index/4, n_layers): the perceptron and the MLP of one seed differ.
US_HD_INLINE float init_param(const NetShape& s, std::uint32_t seed, int index) {
  int layer = 1;
  while (layer < s.n_layers && index >= weight_offset(s, layer + 1)) ++layer;
  const float bound = 1.0f / sqrtf(static_cast<float>(s.width[layer - 1]));
  const PhiloxBlock b = philox4x32_10(
      PhiloxCounter{static_cast<std::uint32_t>(index) >> 2, static_cast<std::uint32_t>(s.n_layers), 0u, 0u},
      make_key(seed, Stream::init));
  const float u = uniform_open01(philox_word(b, static_cast<std::uint32_t>(index) & 3u));
  return bound * fmaf(2.0f, u, -1.0f);
}

// ---------------------------------------------------------------------------------------
// Dense products. Every product in training and evaluation has the form
//     C[i][j] = init(i, j) + sum_{p = 0..P-1} A(i, p) * B[p][j]
// with B row-major and A read through strides, accumulated with fmaf in ascending p. That
// per-element order is the contract: the CPU's register-blocked tiles and a GPU thread's
// slice compute every element with the same sequence of roundings.
enum class GemmInit { zero, bias, accumulate };
// Element-wise work applied as a tile is stored: ReLU of C, or C zeroed where `mask` (same
// layout as C) is not positive (the ReLU derivative in back-propagation), or (adam) the
// product is a weight gradient and C the weights: Adam updates C with it, with the moments
// at the same index in moment1/moment2 (the GPU's trainer; no gradient array is stored).
enum class GemmEpilogue { none = 0, relu, relu_mask, adam };

struct GemmArgs {
  int P;
  const float* A;
  int a_row_stride, a_col_stride;  // A(i, p) = A[i * a_row_stride + p * a_col_stride]
  const float* B;
  int ldb;
  float* C;
  int ldc;
  GemmInit init;
  const float* bias;  // bias[j], for GemmInit::bias
  GemmEpilogue epilogue = GemmEpilogue::none;
  const float* mask = nullptr;  // for GemmEpilogue::relu_mask
  float* moment1 = nullptr;     // for GemmEpilogue::adam: same layout as C
  float* moment2 = nullptr;
  const AdamStep* adam = nullptr;
};

// ReLU, and its derivative applied to a back-propagated error: the error passes where the
// layer's activation is positive. NaN and -0 map to +0 (the CPU's SIMD epilogue matches).
US_HD_INLINE float relu(float x) { return x > 0.0f ? x : 0.0f; }
US_HD_INLINE float relu_gate(float error, float activation) { return activation > 0.0f ? error : 0.0f; }

US_HD_INLINE float apply_epilogue(const GemmArgs& g, float value, int i, int j) {
  if (g.epilogue == GemmEpilogue::relu) return relu(value);
  if (g.epilogue == GemmEpilogue::relu_mask) return relu_gate(value, g.mask[i * g.ldc + j]);
  return value;
}

// C[i][j] from a finished accumulator: through apply_epilogue, or as a gradient that Adam
// applies to C[i][j] (the same adam_update as the separate pass, so the same bits). `adam`
// is the tile's copy of *g.adam, loaded once before its stores.
US_HD_INLINE void store_result(const GemmArgs& g, float value, int i, int j, const AdamStep& adam) {
  const int e = i * g.ldc + j;
  if (g.epilogue == GemmEpilogue::adam)
    adam_update_at(g.C + e, value, g.moment1 + e, g.moment2 + e, adam);
  else
    g.C[e] = apply_epilogue(g, value, i, j);
}

// Adam on a tile row of N gradients (GemmEpilogue::adam) starting at element e of C: every
// parameter and moment loaded first, all updated, then stored, so the row costs one memory
// round trip rather than one per element (the compiler cannot tell the pointers apart).
template <int N>
US_HD_INLINE void adam_update_row(const GemmArgs& g, const float (&grad)[N], int e, const AdamStep& adam) {
  float param[N], m[N], v[N];
  US_UNROLL(16)
  for (int j = 0; j < N; ++j) {
    param[j] = g.C[e + j];
    m[j] = g.moment1[e + j];
    v[j] = g.moment2[e + j];
  }
  US_UNROLL(16)
  for (int j = 0; j < N; ++j) adam_update(param[j], grad[j], m[j], v[j], adam);
  US_UNROLL(16)
  for (int j = 0; j < N; ++j) {
    g.C[e + j] = param[j];
    g.moment1[e + j] = m[j];
    g.moment2[e + j] = v[j];
  }
}

US_HD_INLINE AdamStep tile_adam_step(const GemmArgs& g) {
  return g.epilogue == GemmEpilogue::adam ? *g.adam : AdamStep{};
}

// Four consecutive floats loaded as one: a 16-byte load on the GPU (LDS.128 / LDG.128). On
// the CPU the same code runs in the HostGroup tests, so the vector paths below are CPU-tested
// for their bits before any GPU runs them.
struct Floats4 {
  float v[4];
};
US_HD_INLINE bool aligned16(const float* x) { return (reinterpret_cast<std::uintptr_t>(x) & 15u) == 0; }
US_HD_INLINE Floats4 load4(const float* x) {
#if defined(__CUDA_ARCH__)
  const float4 t = *reinterpret_cast<const float4*>(x);
  return {{t.x, t.y, t.z, t.w}};
#else
  return {{x[0], x[1], x[2], x[3]}};
#endif
}

// The leading steps of a 4 x 4 tile's product with 16-byte loads where the operands allow it
// (rows of B, and A's four rows or four columns, contiguous and aligned). Each accumulator
// still takes its fmaf's in ascending p, so the bits are those of the scalar loop. kStride > 0:
// the run-time strides equal it (the caller checked), so each load's address is a register
// plus a constant and the loop holds no address arithmetic (sm_90 SASS: 79-81 instructions
// per 64 FMAs instead of 85-94). Each returns the first p left to the scalar loop.
template <int kStride>
US_HD_INLINE int vector_steps_a_columns(const GemmArgs& g, const float* a, const float* b, float (&acc)[4][4]) {
  const int a_step = kStride > 0 ? kStride : g.a_col_stride, b_step = kStride > 0 ? kStride : g.ldb;
  for (int p = 0; p < g.P; ++p) {
    const Floats4 av = load4(a + p * a_step), bv = load4(b + p * b_step);
    US_UNROLL(4)
    for (int i = 0; i < 4; ++i) {
      US_UNROLL(4)
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av.v[i], bv.v[j], acc[i][j]);
    }
  }
  return g.P;
}

template <int kStride>
US_HD_INLINE int vector_steps_a_rows(const GemmArgs& g, const float* a, const float* b, float (&acc)[4][4]) {
  const int a_step = kStride > 0 ? kStride : g.a_row_stride, b_step = kStride > 0 ? kStride : g.ldb;
  const int p_end = g.P & ~3;
  for (int p = 0; p < p_end; p += 4) {
    Floats4 rows[4];
    US_UNROLL(4)
    for (int i = 0; i < 4; ++i) rows[i] = load4(a + i * a_step + p);
    US_UNROLL(4)
    for (int q = 0; q < 4; ++q) {
      const Floats4 bv = load4(b + (p + q) * b_step);
      US_UNROLL(4)
      for (int i = 0; i < 4; ++i) {
        US_UNROLL(4)
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(rows[i].v[q], bv.v[j], acc[i][j]);
      }
    }
  }
  return p_end;
}

template <int TM, int TN>
US_HD_INLINE int gemm_tile_vector_steps(const GemmArgs& g, const float* a, const float* b, float (&acc)[TM][TN]) {
  if constexpr (TM != 4 || TN != 4) {
    return 0;
  } else {
    constexpr int kHot = 64;  // the study's hidden width: its products get constant strides
    if ((g.ldb & 3) != 0 || !aligned16(b) || !aligned16(a)) return 0;
    if (g.a_row_stride == 1 && (g.a_col_stride & 3) == 0) {  // A(0..3, p) contiguous
      if (g.a_col_stride == kHot && g.ldb == kHot) return vector_steps_a_columns<kHot>(g, a, b, acc);
      return vector_steps_a_columns<0>(g, a, b, acc);
    }
    if (g.a_col_stride == 1 && (g.a_row_stride & 3) == 0) {  // A(i, p..p+3) contiguous
      if (g.a_row_stride == kHot && g.ldb == kHot) return vector_steps_a_rows<kHot>(g, a, b, acc);
      return vector_steps_a_rows<0>(g, a, b, acc);
    }
    return 0;
  }
}

// One TM x TN tile at (i0, j0): the accumulators stay in registers for all of P.
template <int TM, int TN>
US_HD_INLINE void gemm_tile(const GemmArgs& g, int i0, int j0) {
  float acc[TM][TN];
  US_UNROLL(16)
  for (int i = 0; i < TM; ++i) US_UNROLL(16)
  for (int j = 0; j < TN; ++j)
    acc[i][j] = g.init == GemmInit::zero   ? 0.0f
                : g.init == GemmInit::bias ? g.bias[j0 + j]
                                           : g.C[(i0 + i) * g.ldc + j0 + j];
  const float* a = g.A + i0 * g.a_row_stride;
  const float* b = g.B + j0;
  int p = gemm_tile_vector_steps<TM, TN>(g, a, b, acc);
  US_DEVICE_UNROLL(8)
  for (; p < g.P; ++p) {
    US_UNROLL(16)
    for (int i = 0; i < TM; ++i) {
      const float a_ip = a[i * g.a_row_stride + p * g.a_col_stride];
      US_UNROLL(16)
      for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a_ip, b[p * g.ldb + j], acc[i][j]);
    }
  }
  if (g.epilogue == GemmEpilogue::adam) {
    const AdamStep adam = *g.adam;
    US_UNROLL(16)
    for (int i = 0; i < TM; ++i) adam_update_row<TN>(g, acc[i], (i0 + i) * g.ldc + j0, adam);
    return;
  }
  US_UNROLL(16)
  for (int i = 0; i < TM; ++i) US_UNROLL(16)
  for (int j = 0; j < TN; ++j) g.C[(i0 + i) * g.ldc + j0 + j] = apply_epilogue(g, acc[i][j], i0 + i, j0 + j);
}

// A TM x TN tile cut by the edge of C (only rows x cols of it exist): each existing element
// gets gemm_tile's chain of fmaf's; rows and columns past the edge repeat the last existing
// one and are not stored. Parallel groups use it for their edge tiles instead of gemm_block,
// whose CPU-shaped 6 x 16 tiles would cost a GPU kernel registers and a stack frame.
template <int TM, int TN>
US_HD_INLINE void gemm_tile_edge(const GemmArgs& g, int i0, int j0, int rows, int cols) {
  int a_row[TM], b_col[TN];
  US_UNROLL(16)
  for (int i = 0; i < TM; ++i) a_row[i] = (i < rows ? i : rows - 1) * g.a_row_stride;
  US_UNROLL(16)
  for (int j = 0; j < TN; ++j) b_col[j] = j < cols ? j : cols - 1;
  float acc[TM][TN];
  US_UNROLL(16)
  for (int i = 0; i < TM; ++i) US_UNROLL(16)
  for (int j = 0; j < TN; ++j) {
    const int ic = i < rows ? i : rows - 1;
    acc[i][j] = g.init == GemmInit::zero   ? 0.0f
                : g.init == GemmInit::bias ? g.bias[j0 + b_col[j]]
                                           : g.C[(i0 + ic) * g.ldc + j0 + b_col[j]];
  }
  const float* a = g.A + i0 * g.a_row_stride;
  const float* b = g.B + j0;
  US_DEVICE_UNROLL(4)
  for (int p = 0; p < g.P; ++p) {
    US_UNROLL(16)
    for (int i = 0; i < TM; ++i) {
      const float a_ip = a[a_row[i] + p * g.a_col_stride];
      US_UNROLL(16)
      for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a_ip, b[p * g.ldb + b_col[j]], acc[i][j]);
    }
  }
  const AdamStep adam = tile_adam_step(g);
  US_UNROLL(16)
  for (int i = 0; i < TM; ++i) US_UNROLL(16)
  for (int j = 0; j < TN; ++j)
    if (i < rows && j < cols) store_result(g, acc[i][j], i0 + i, j0 + j, adam);
}

template <int TN>
US_HD_INLINE void gemm_rows(const GemmArgs& g, int i_begin, int i_end, int j0) {
  constexpr int kTm = 6;  // 6 x 16 floats = 12 AVX2 accumulators, the x86 sweet spot
  int i = i_begin;
  for (; i + kTm <= i_end; i += kTm) gemm_tile<kTm, TN>(g, i, j0);
  for (; i + 2 <= i_end; i += 2) gemm_tile<2, TN>(g, i, j0);
  for (; i < i_end; ++i) gemm_tile<1, TN>(g, i, j0);
}

// C rows [i_begin, i_end) x columns [j_begin, j_end). The result does not depend on how
// a caller splits the ranges.
US_HD_INLINE void gemm_block(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) {
  int j = j_begin;
  for (; j + 16 <= j_end; j += 16) gemm_rows<16>(g, i_begin, i_end, j);
  for (; j + 8 <= j_end; j += 8) gemm_rows<8>(g, i_begin, i_end, j);
  for (; j < j_end; ++j) gemm_rows<1>(g, i_begin, i_end, j);
}

// dst[c][r] = src[r][c] in 8 x 8 blocks, so neither side strides through memory alone.
US_HD_INLINE void transpose_block(const float* src, int rows, int cols, float* dst) {
  for (int r0 = 0; r0 < rows; r0 += 8)
    for (int c0 = 0; c0 < cols; c0 += 8) {
      const int r1 = r0 + 8 < rows ? r0 + 8 : rows, c1 = c0 + 8 < cols ? c0 + 8 : cols;
      for (int c = c0; c < c1; ++c)
        for (int r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
    }
}

// The portable product: what GPU threads call, and the reference for the CPU's SIMD tiles
// (cpu_gemm.hpp), which must agree with it bit for bit.
struct PortableGemm {
  US_HD_INLINE void operator()(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) const {
    gemm_block(g, i_begin, i_end, j_begin, j_end);
  }
  US_HD_INLINE void transpose(const float* src, int rows, int cols, float* dst) const {
    transpose_block(src, rows, cols, dst);
  }
};

// ---------------------------------------------------------------------------------------
// The buffers of one minibatch (caller-owned, row-major [batch][width]); the passes over
// them are in group_trainer.hpp.
//   act[l] for l = 0..L: act[0] holds the batch's features, act[L] the predictions;
//   delta_a, delta_b: [batch][max_width] scratch for back-propagated errors;
//   weights_t: [max_width * max_width] scratch for a transposed weight matrix.
struct BatchBuffers {
  float* act[kMaxLayers + 1];
  float* delta_a;
  float* delta_b;
  float* weights_t;
};

// d(MSE)/d(prediction) for the mean over the batch: 2 (yhat - y) / batch.
US_HD_INLINE float mse_grad(float prediction, float target, float two_over_batch) {
  return two_over_batch * (prediction - target);
}

// A bias gradient: sum_b delta[b][j] over the batch in ascending b (every backend's order).
US_HD_INLINE float bias_grad(const float* delta, int batch, int width, int j) {
  float sum = 0.0f;
  US_DEVICE_UNROLL(8)
  for (int b = 0; b < batch; ++b) sum += delta[b * width + j];
  return sum;
}

}  // namespace underspec
