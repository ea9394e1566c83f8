// The training and evaluation of ONE replica by a GROUP of cooperating ranks, written once
// as US_HD code over the shared math of model.hpp and adam.hpp, and used by both backends:
//   SerialGroup  one rank: the CPU backend (a thread per replica, the CPU's SIMD products);
//   CtaGroup / WarpGroup (kernels/device_groups.cuh): a CUDA CTA or warp per replica;
//   HostGroup    every rank of a phase in turn on the CPU, so the GPU's exact work split
//                is tested by the CPU suite (tests/test_group_trainer.cpp).
// A group executes a sequence of phases and synchronises between them. Groups differ only
// in how a phase's work is dealt to ranks, never in what is computed.
//
// Why results are equal bit for bit across groups: every output element of every product
// is computed by exactly one rank with fmaf in ascending p from the same initial value
// (gemm_tile / gemm_block, or the CPU tiles proven equal to them); bias gradients are
// summed by one rank in ascending batch order; Adam is element-wise. Only the evaluation's
// double-precision sum of squares is reduced in a different (fixed) order.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>

#include "underspec/core/adam.hpp"
#include "underspec/core/hd.hpp"
#include "underspec/core/model.hpp"
#include "underspec/core/permutation.hpp"
#include "underspec/core/scm.hpp"

namespace underspec {

// One dataset in structure-of-arrays form (device or host memory).
struct DatasetView {
  const float* x1;
  const float* x2;
  const float* x3;
  const float* y;
  std::uint32_t n;
};

// What differs between the replicas of one launch.
struct ReplicaJob {
  std::uint32_t seed;     // keys init, shuffle and augmentation
  std::uint32_t augment;  // 1 for the augmentation regime
  std::uint32_t dataset;  // index into the launch's dataset table
  std::uint32_t run;      // index into the launch's TrainRun table (fused CUDA launches mix grid cells)
};

// The training settings of one grid cell: what the replicas of that cell share.
struct TrainRun {
  int epochs;
  int batch_size;
  float augmentation_std;
  const AdamStep* adam_steps;  // [epochs * steps_per_epoch]: step number k+1 at index k
  // Host trainers may pass no table (adam_steps null): each step's scalars are then computed
  // as make_adam_table computes them (same function, same bits) from these, so that nothing
  // grows with epochs x steps. Device code always reads a table (pow in double on the GPU need
  // not round as the host's does).
  AdamHyper hyper{};
  StepLr schedule{};
};

// Where one replica's working set lives (shared memory or a global scratch slice).
struct ReplicaState {
  float* params;
  float* grads;  // serial groups only: parallel groups apply Adam as each gradient is made
  float* moment1;
  float* moment2;
  float* targets;    // [batch]
  BatchBuffers buf;  // act[0..L], delta_a, delta_b, weights_t as in model.hpp
  // Parallel groups only (group_overlapped_step): the next minibatch's features and targets,
  // gathered while this one finishes; the output layer's errors; a second transposed weight
  // matrix for nets of four or more layers.
  float* next_input = nullptr;  // [batch][kFeatures]
  float* next_targets = nullptr;
  float* out_delta = nullptr;  // [batch]
  float* weights_t2 = nullptr;
};

US_HD_INLINE int steps_per_epoch(std::uint32_t n, int batch_size) {
  return static_cast<int>((n + static_cast<std::uint32_t>(batch_size) - 1u) / static_cast<std::uint32_t>(batch_size));
}

// One rank does everything, with the product `Gemm` (the CPU backend passes its SIMD tiles).
template <class Gemm = PortableGemm>
struct SerialGroup {
  static constexpr bool kSerial = true;
  static constexpr int size = 1;
  Gemm gemm{};
  template <class Phase>
  US_HD_INLINE void run(Phase&& phase) const {
    phase(0);
  }
};

// The ranks of a phase executed one after another on the host (tests of the GPU's split).
// `order` runs them ascending (0), descending (1) or in a shuffled order (any other value
// seeds it): a phase whose result depends on the order its ranks run in has a race on the
// GPU, and changes bits here. Given the shared array's range, operand() throws for a pointer
// outside it: the CPU's check of what a kernel told that its operands are in shared memory
// (DeviceGroup<..., true>) takes for granted.
struct HostGroup {
  static constexpr bool kSerial = false;
  int size;
  unsigned order = 0;
  const float* shared_begin = nullptr;  // null: operands may be anywhere
  const float* shared_end = nullptr;
  template <class T>
  T* operand(T* p) const {
    const std::less<const void*> before;  // a total order, also across unrelated arrays
    if (shared_begin != nullptr && (before(p, shared_begin) || !before(p, shared_end)))
      throw std::logic_error("HostGroup: a product operand outside the shared array");
    return p;
  }
  template <class Phase>
  void run(Phase&& phase) const {
    if (order == 0) {
      for (int rank = 0; rank < size; ++rank) phase(rank);
    } else if (order == 1) {
      for (int rank = size - 1; rank >= 0; --rank) phase(rank);
    } else {
      // A fixed permutation of the ranks: rank k runs at step (k * stride + offset) % size,
      // with stride odd and coprime to size (found by trying), different per `order`.
      int stride = static_cast<int>(order % 97u) * 2 + 1;
      while (gcd(stride, size) != 1) stride += 2;
      const int offset = static_cast<int>(order % static_cast<unsigned>(size > 0 ? size : 1));
      for (int k = 0; k < size; ++k) phase(static_cast<int>((static_cast<long long>(k) * stride + offset) % size));
    }
  }

 private:
  static int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }
};

// The first of items first, first + size, ... that `rank` takes of a job whose items are
// dealt round-robin starting `offset` items into a phase: jobs that share a phase then
// spread over all ranks instead of all starting at rank 0.
US_HD_INLINE int first_item(int rank, int offset, int size) { return ((rank - offset) % size + size) % size; }

// A product's A, B and C through the group's operand(): a kernel may know them in shared
// memory (DeviceGroup), a test checks that they are (HostGroup).
template <class Group>
US_HD_INLINE GemmArgs group_operands(const Group& g, GemmArgs a) {
  a.A = g.operand(a.A);
  a.B = g.operand(a.B);
  a.C = g.operand(a.C);
  return a;
}

// C = product for rows [0, M) x columns [0, N) with the epilogue of `a`. A serial group
// computes it whole; otherwise its items are dealt round-robin to the ranks (from `offset`,
// see first_item): TM x TN tiles, or single elements when there are too few tiles to give
// every other rank one, since a thin product's time is its longest chain of fmaf's, not its
// work. Returns how many items it dealt (the same on every rank).
template <int TM, int TN, class Group>
US_HD_INLINE int group_gemm(const Group& g, const GemmArgs& a, int M, int N, int rank, int offset = 0) {
  if constexpr (Group::kSerial) {
    g.gemm(a, 0, M, 0, N);
    return 1;
  } else {
    const GemmArgs ga = group_operands(g, a);
    const int tiles_i = (M + TM - 1) / TM, tiles_j = (N + TN - 1) / TN;
    if (2 * tiles_i * tiles_j <= g.size) {
      for (int e = first_item(rank, offset, g.size); e < M * N; e += g.size) gemm_tile<1, 1>(ga, e / N, e % N);
      return M * N;
    }
    for (int tile = first_item(rank, offset, g.size); tile < tiles_i * tiles_j; tile += g.size) {
      const int i0 = (tile / tiles_j) * TM, j0 = (tile % tiles_j) * TN;
      const int i1 = i0 + TM < M ? i0 + TM : M, j1 = j0 + TN < N ? j0 + TN : N;
      if (i1 - i0 == TM && j1 - j0 == TN)
        gemm_tile<TM, TN>(ga, i0, j0);
      else
        gemm_tile_edge<TM, TN>(ga, i0, j0, i1 - i0, j1 - j0);
    }
    return tiles_i * tiles_j;
  }
}

// Rows b = first, first + stride, ... of the minibatch that starts at `start`: sample
// index_of(b), with x3 augmented by augmentation_noise. With stride 1 one Philox block serves
// four consecutive positions (the same words augmentation_noise draws).
template <class IndexOf>
US_HD_INLINE void gather_rows_of(const DatasetView& data, IndexOf&& index_of, const ReplicaJob& job,
                                 float augmentation_std, std::uint32_t epoch, std::uint32_t start, int first,
                                 int stride, int batch, float* features, float* targets) {
  const PhiloxKey aug_key = make_key(job.seed, Stream::augmentation);
  Normal4 noise{};
  for (int b = first; b < batch; b += stride) {
    const std::uint32_t position = start + static_cast<std::uint32_t>(b);
    const std::uint32_t i = index_of(b);
    float x3 = data.x3[i];
    if (job.augment) {
      if (stride != 1) {  // rows of one rank are not consecutive: the one normal each uses
        x3 += augmentation_std *
              box_muller_one(philox4x32_10(augmentation_counter(epoch, position), aug_key), position & 3u);
      } else {
        if (b == first || (position & 3u) == 0) noise = normal4(augmentation_counter(epoch, position), aug_key);
        x3 += augmentation_std * normal4_pick(noise, position & 3u);
      }
    }
    features[b * kFeatures + 0] = data.x1[i];
    features[b * kFeatures + 1] = data.x2[i];
    features[b * kFeatures + 2] = x3;
    targets[b] = data.y[i];
  }
}

// gather_rows_of for the permuted samples of the epoch.
US_HD_INLINE void gather_rows(const DatasetView& data, const EpochPermutation& perm, const ReplicaJob& job,
                              float augmentation_std, std::uint32_t epoch, std::uint32_t start, int first, int stride,
                              int batch, float* features, float* targets) {
  gather_rows_of(
      data, [&](int b) { return permuted_index(perm, start + static_cast<std::uint32_t>(b)); }, job, augmentation_std,
      epoch, start, first, stride, batch, features, targets);
}

// The whole minibatch: its rows dealt to the ranks, or, by a serial group, 64 rows at a time
// with their indices computed together (permuted_indices, vectorised).
template <class Group>
US_HD_INLINE void group_gather_rows(const Group& g, const DatasetView& data, const EpochPermutation& perm,
                                    const ReplicaJob& job, float augmentation_std, std::uint32_t epoch,
                                    std::uint32_t start, int batch, float* features, float* targets) {
  if constexpr (Group::kSerial) {
    constexpr int kChunk = 64;
    std::uint32_t index[kChunk];
    for (int b0 = 0; b0 < batch; b0 += kChunk) {
      const int b1 = b0 + kChunk < batch ? b0 + kChunk : batch;
      permuted_indices(perm, start + static_cast<std::uint32_t>(b0), b1 - b0, index);
      gather_rows_of(
          data, [&](int b) { return index[b - b0]; }, job, augmentation_std, epoch, start, b0, 1, b1, features,
          targets);
    }
  } else {
    g.run([&](int rank) {
      gather_rows(data, perm, job, augmentation_std, epoch, start, rank, g.size, batch, features, targets);
    });
  }
}

// Forward pass of `rows` rows through all layers: input act(0) (rows x 3), layer l writes
// act(l). One phase per layer.
// Layer l's forward product: act(l) = act(l-1) W_l + b_l, ReLU on hidden layers.
US_HD_INLINE GemmArgs forward_args(const NetShape& shape, const float* params, int l, const float* in, float* out) {
  const int fan_in = shape.width[l - 1], fan_out = shape.width[l];
  GemmArgs ga{fan_in,
              in,
              fan_in,
              1,
              params + weight_offset(shape, l),
              fan_out,
              out,
              fan_out,
              GemmInit::bias,
              params + bias_offset(shape, l)};
  if (l < shape.n_layers) ga.epilogue = GemmEpilogue::relu;
  return ga;
}

template <int TM, int TN, class Group, class ActOf>
US_HD_INLINE void group_forward(const Group& g, const NetShape& shape, const float* params, int rows, ActOf act) {
  for (int l = 1; l <= shape.n_layers; ++l) {
    const GemmArgs ga = forward_args(shape, params, l, act(l - 1), act(l));
    g.run([&](int rank) { group_gemm<TM, TN>(g, ga, rows, shape.width[l], rank); });
  }
}

// grad_bias[j] = sum_b delta[b][j] in ascending b, one rank per column (a serial group
// sweeps rows so the loop vectorises; the per-element order is the same).
template <class Group>
US_HD_INLINE void group_bias_grad(const Group& g, const float* delta, int batch, int fan_out, float* grad_bias,
                                  int rank) {
  if constexpr (Group::kSerial) {
    if (fan_out < 8) {  // too narrow to vectorise (the output layer): each sum in a register
      for (int j = 0; j < fan_out; ++j) grad_bias[j] = bias_grad(delta, batch, fan_out, j);
      return;
    }
    for (int j = 0; j < fan_out; ++j) grad_bias[j] = 0.0f;
    for (int b = 0; b < batch; ++b)
      for (int j = 0; j < fan_out; ++j) grad_bias[j] += delta[b * fan_out + j];
  } else {
    for (int j = rank; j < fan_out; j += g.size) grad_bias[j] = bias_grad(delta, batch, fan_out, j);
  }
}

template <class Group>
US_HD_INLINE void group_transpose(const Group& g, const float* w, int fan_in, int fan_out, float* w_t, int rank) {
  if constexpr (Group::kSerial) {
    g.gemm.transpose(w, fan_in, fan_out, w_t);
  } else {
    for (int e = rank; e < fan_in * fan_out; e += g.size) w_t[(e % fan_out) * fan_in + e / fan_out] = w[e];
  }
}

// Gradients of the batch's mean squared error (after group_forward) into `grads` (the
// parameter layout); buf.delta_a / delta_b / weights_t are scratch.
template <int TM, int TN, class Group>
US_HD_INLINE void group_backward(const Group& g, const NetShape& shape, const float* params, const float* targets,
                                 const BatchBuffers& buf, int batch, float* grads) {
  const float two_over_batch = 2.0f / static_cast<float>(batch);
  const float* predictions = buf.act[shape.n_layers];
  g.run([&](int rank) {
    for (int b = rank; b < batch; b += g.size) buf.delta_a[b] = mse_grad(predictions[b], targets[b], two_over_batch);
  });
  float* delta = buf.delta_a;
  float* delta_prev = buf.delta_b;
  for (int l = shape.n_layers; l >= 1; --l) {
    const int fan_in = shape.width[l - 1], fan_out = shape.width[l];
    // dW[k][j] = sum_b act[l-1][b][k] * delta[b][j]; db[j] = sum_b delta[b][j]
    const GemmArgs gw{batch,   buf.act[l - 1], 1,      fan_in, delta, fan_out, grads + weight_offset(shape, l),
                      fan_out, GemmInit::zero, nullptr};
    g.run([&](int rank) {
      group_gemm<TM, TN>(g, gw, fan_in, fan_out, rank);
      group_bias_grad(g, delta, batch, fan_out, grads + bias_offset(shape, l), rank);
      if (l > 1) group_transpose(g, params + weight_offset(shape, l), fan_in, fan_out, buf.weights_t, rank);
    });
    if (l == 1) break;  // no gradient with respect to the data
    // delta_prev[b][k] = relu'(act[l-1][b][k]) * sum_j delta[b][j] * W[k][j]
    const GemmArgs gd{fan_out,    delta,  fan_out,        1,       buf.weights_t,           fan_in,
                      delta_prev, fan_in, GemmInit::zero, nullptr, GemmEpilogue::relu_mask, buf.act[l - 1]};
    g.run([&](int rank) { group_gemm<TM, TN>(g, gd, batch, fan_in, rank); });
    float* t = delta;
    delta = delta_prev;
    delta_prev = t;
  }
}

// One minibatch: forward, backward, Adam. The features and targets of the batch are
// already in st.buf.act[0] / st.targets.
template <int TM, int TN, class Group>
US_HD_INLINE void group_train_step(const Group& g, const NetShape& shape, const ReplicaState& st, int batch,
                                   const AdamStep& adam) {
  const BatchBuffers& buf = st.buf;
  group_forward<TM, TN>(g, shape, st.params, batch, [&](int l) { return buf.act[l]; });
  group_backward<TM, TN>(g, shape, st.params, st.targets, buf, batch, st.grads);
  const int n_params = param_count(shape);
  g.run([&](int rank) {
    for (int i = rank; i < n_params; i += g.size)
      adam_update(st.params[i], st.grads[i], st.moment1[i], st.moment2[i], adam);
  });
}

// ---------------------------------------------------------------------------------------
// The step of parallel groups (a GPU CTA or warp per replica): the same products, errors and
// Adam updates as group_train_step, in 2L phases instead of 3L + 2, so fewer barriers:
//   forward      one phase per layer; the output layer's phase also makes its errors;
//   backward k   (k = 1..L) the error of hidden layer h = L - k (reading W_{h+1} through a
//                transposed copy made one phase earlier, or directly for the width-1 output
//                layer), the transposed copy of W_h for the next phase, and the gradient of
//                every layer whose weights no later phase reads, applied by Adam as it is
//                made (GemmEpilogue::adam; no gradient array);
//   the first backward phase, the lightest, also gathers the next minibatch into the other
//   input buffer (no phase of this step reads it).
// Layer l is updated in phase L - l + 1 (l < L) or min(2, L) (the output layer, whose
// weights phase 1 reads directly). Within a phase no rank writes what another reads; the
// HostGroup tests run every phase's ranks in several orders to keep it so.

// Which layer's error and transposed weights use which buffer: alternate by parity, so that
// a phase writes the buffer two phases back, not the one the next phase reads.
US_HD_INLINE float* hidden_delta(const ReplicaState& st, int h) { return (h & 1) ? st.buf.delta_a : st.buf.delta_b; }
US_HD_INLINE float* transposed_weights(const ReplicaState& st, int l) {
  return (l & 1) ? st.weights_t2 : st.buf.weights_t;
}

// w_t[j][i] = w[i][j] (w: rows x cols), items first, first + stride, ... of it. Item e is
// element (32 bi + lane, 32 bj + (lane + s) % 32) of 32 x 32 block (bi, bj), lane = e % 32,
// s = e / 32 % 32: 32 consecutive items walk a diagonal, whose rows and columns are all
// different mod 32, so a warp's reads and writes of 64-wide rows hit 32 different banks
// (row by row or column by column, one of the two would hit one bank 32 times). Returns the
// item count (the blocks cover the matrix; items past its edge do nothing).
US_HD_INLINE int transpose_diagonals(const float* w, int rows, int cols, float* w_t, int first, int stride) {
  const int blocks_j = (cols + 31) / 32;
  const int items = ((rows + 31) / 32) * blocks_j * 1024;
  for (int e = first; e < items; e += stride) {
    const int lane = e & 31, s = (e >> 5) & 31, block = e >> 10;
    const int i = (block / blocks_j) * 32 + lane, j = (block % blocks_j) * 32 + ((lane + s) & 31);
    if (i < rows && j < cols) w_t[j * rows + i] = w[i * cols + j];
  }
  return items;
}

// The phase (1..L) of the backward pass in which layer l's parameters are updated.
US_HD_INLINE int update_phase(int n_layers, int l) {
  if (l < n_layers) return n_layers - l + 1;
  return n_layers < 2 ? n_layers : 2;
}

// Layer l's gradient, applied to its weights and bias by Adam, as one job of a phase dealt
// from `offset`; returns the offset after it.
template <int TM, int TN, class Group>
US_HD_INLINE int update_layer(const Group& g, const NetShape& shape, const ReplicaState& st, const float* input,
                              const float* delta, int batch, const AdamStep& adam, int l, int rank, int offset) {
  const int fan_in = shape.width[l - 1], fan_out = shape.width[l];
  const int w = weight_offset(shape, l), bias = bias_offset(shape, l);
  GemmArgs gw{
      batch,  l == 1 ? input : st.buf.act[l - 1], 1, fan_in, delta, fan_out, st.params + w, fan_out, GemmInit::zero,
      nullptr};
  gw.epilogue = GemmEpilogue::adam;
  gw.moment1 = st.moment1 + w;
  gw.moment2 = st.moment2 + w;
  gw.adam = &adam;
  offset += group_gemm<TM, TN>(g, gw, fan_in, fan_out, rank, offset);
  const AdamStep step = adam;  // in registers for the loop (stores to the moments could alias it)
  const float* errors = g.operand(delta);
  float* bias_params = g.operand(st.params + bias);
  for (int j = first_item(rank, offset, g.size); j < fan_out; j += g.size)
    adam_update_at(bias_params + j, bias_grad(errors, batch, fan_out, j), st.moment1 + bias + j, st.moment2 + bias + j,
                   step);
  return offset + fan_out;
}

// One minibatch of a parallel group: input/targets hold its rows; gather_next(rank, offset)
// gathers the next minibatch's rows dealt from `offset` (in the first backward phase).
template <int TM, int TN, class Group, class GatherNext>
US_HD_INLINE void group_overlapped_step(const Group& g, const NetShape& shape, const ReplicaState& st,
                                        const float* input, const float* targets, int batch, const AdamStep& adam,
                                        GatherNext&& gather_next) {
  const int L = shape.n_layers;
  const auto act = [&](int l) -> const float* { return l == 0 ? input : st.buf.act[l]; };
  for (int l = 1; l < L; ++l) {
    const GemmArgs ga = forward_args(shape, st.params, l, act(l - 1), st.buf.act[l]);
    g.run([&](int rank) { group_gemm<TM, TN>(g, ga, batch, shape.width[l], rank); });
  }
  // The output layer (width 1): one rank per row makes the prediction, then its error.
  const GemmArgs out = group_operands(g, forward_args(shape, st.params, L, act(L - 1), st.buf.act[L]));
  const float two_over_batch = 2.0f / static_cast<float>(batch);
  g.run([&](int rank) {
    const float* rows_targets = g.operand(targets);
    float* out_delta = g.operand(st.out_delta);
    for (int b = rank; b < batch; b += g.size) {
      gemm_tile<1, 1>(out, b, 0);
      out_delta[b] = mse_grad(out.C[b * out.ldc], rows_targets[b], two_over_batch);
    }
  });
  for (int k = 1; k <= L; ++k) {
    const int h = L - k;  // the hidden layer whose error this phase makes (none when 0)
    g.run([&](int rank) {
      int offset = 0;
      if (h >= 1) {
        // delta_h[b][i] = relu'(act_h[b][i]) * sum_j delta_{h+1}[b][j] * W_{h+1}[i][j]
        const int fan_in = shape.width[h], fan_out = shape.width[h + 1];
        const bool output = h + 1 == L;  // W_L is one column: its transpose is itself
        const GemmArgs gd{fan_out,
                          output ? st.out_delta : hidden_delta(st, h + 1),
                          fan_out,
                          1,
                          output ? st.params + weight_offset(shape, L) : transposed_weights(st, h + 1),
                          fan_in,
                          hidden_delta(st, h),
                          fan_in,
                          GemmInit::zero,
                          nullptr,
                          GemmEpilogue::relu_mask,
                          st.buf.act[h]};
        offset += group_gemm<TM, TN>(g, gd, batch, fan_in, rank, offset);
        if (h >= 2)  // W_h^T, read by the next phase while Adam updates W_h
          offset += transpose_diagonals(g.operand(st.params + weight_offset(shape, h)), shape.width[h - 1], fan_in,
                                        g.operand(transposed_weights(st, h)), first_item(rank, offset, g.size), g.size);
      }
      if (k >= 2 && update_phase(L, L - k + 1) == k)
        offset = update_layer<TM, TN>(g, shape, st, input, hidden_delta(st, L - k + 1), batch, adam, L - k + 1, rank,
                                      offset);
      if (update_phase(L, L) == k)
        offset = update_layer<TM, TN>(g, shape, st, input, st.out_delta, batch, adam, L, rank, offset);
      if (k == 1) gather_next(rank, offset);
    });
  }
}

// The minibatch schedule of every trainer (group_train_replica, lane_train_perceptron): per
// epoch a fresh permutation, then minibatches of run.batch_size (the last one smaller), the
// k-th with Adam step run.adam_steps[k] (StepLR included).
// epoch_start(epoch, permutation) runs first in every epoch (a trainer that keeps the
// permutation elsewhere than in registers stores it there); step(epoch, permutation, start,
// rows, adam) runs one minibatch.
template <class EpochStart, class Step>
US_HD_INLINE void for_each_epoch_minibatch(const TrainRun& run, const ReplicaJob& job, std::uint32_t n,
                                           EpochStart&& epoch_start, Step&& step) {
  const auto batch_size = static_cast<std::uint32_t>(run.batch_size);
#ifdef __CUDA_ARCH__
  int k = 0;
#else
  std::int64_t k = 0;  // without a table, epochs x steps may pass INT_MAX
#endif
  for (int epoch = 0; epoch < run.epochs; ++epoch) {
    const auto e = static_cast<std::uint32_t>(epoch);
    const EpochPermutation perm = make_epoch_permutation(n, job.seed, e);
    epoch_start(e, perm);
#ifdef __CUDA_ARCH__
    for (std::uint32_t start = 0; start < n; start += batch_size)
      step(e, perm, start, batch_size < n - start ? batch_size : n - start, run.adam_steps[k++]);
#else
    const double lr = run.adam_steps ? 0.0 : step_lr(run.hyper.lr, run.schedule, epoch);
    for (std::uint32_t start = 0; start < n; start += batch_size) {
      const std::uint32_t rows = batch_size < n - start ? batch_size : n - start;
      if (run.adam_steps) {
        step(e, perm, start, rows, run.adam_steps[k++]);
      } else {
        const AdamStep adam = make_adam_step(run.hyper, lr, ++k);
        step(e, perm, start, rows, adam);
      }
    }
#endif
  }
}

template <class Step>
US_HD_INLINE void for_each_minibatch(const TrainRun& run, const ReplicaJob& job, std::uint32_t n, Step&& step) {
  for_each_epoch_minibatch(
      run, job, n, [](std::uint32_t, const EpochPermutation&) {}, step);
}

// The whole training of one replica (all epochs): initialisation, then for every epoch a
// fresh permutation and its minibatches (the last one smaller), with adam_steps[k] the
// scalars of step k + 1 (StepLR included).
template <int TM, int TN, class Group>
US_HD_INLINE void group_train_replica(const Group& g, const NetShape& shape, const TrainRun& run, const ReplicaJob& job,
                                      const DatasetView& data, const ReplicaState& st) {
  const int n_params = param_count(shape);
  g.run([&](int rank) {
    for (int i = rank; i < n_params; i += g.size) {
      st.params[i] = init_param(shape, job.seed, i);
      st.moment1[i] = 0.0f;
      st.moment2[i] = 0.0f;
    }
  });
  if constexpr (Group::kSerial) {
    for_each_minibatch(run, job, data.n,
                       [&](std::uint32_t epoch, const EpochPermutation& perm, std::uint32_t start, std::uint32_t rows,
                           const AdamStep& adam) {
                         const int batch = static_cast<int>(rows);
                         group_gather_rows(g, data, perm, job, run.augmentation_std, epoch, start, batch, st.buf.act[0],
                                           st.targets);
                         group_train_step<TM, TN>(g, shape, st, batch, adam);
                       });
  } else {
#ifndef __CUDA_ARCH__
    // pending_adam below points into the table: a group of several ranks needs one.
    if (run.adam_steps == nullptr) throw std::logic_error("group_train_replica: a parallel group needs an Adam table");
#endif
    // Minibatch k is gathered during step k - 1 (the first on its own), into the input
    // buffer that step does not read.
    float* input = st.buf.act[0];
    float* targets = st.targets;
    float* next_input = st.next_input;
    float* next_targets = st.next_targets;
    int pending_batch = 0;
    const AdamStep* pending_adam = nullptr;
    for_each_minibatch(run, job, data.n,
                       [&](std::uint32_t epoch, const EpochPermutation& perm, std::uint32_t start, std::uint32_t rows,
                           const AdamStep& adam) {
                         const int batch = static_cast<int>(rows);
                         if (pending_adam == nullptr) {
                           g.run([&](int rank) {
                             gather_rows(data, perm, job, run.augmentation_std, epoch, start, rank, g.size, batch,
                                         input, targets);
                           });
                         } else {
                           group_overlapped_step<TM, TN>(
                               g, shape, st, input, targets, pending_batch, *pending_adam, [&](int rank, int offset) {
                                 gather_rows(data, perm, job, run.augmentation_std, epoch, start,
                                             first_item(rank, offset, g.size), g.size, batch, next_input, next_targets);
                               });
                           float* t = input;
                           input = next_input;
                           next_input = t;
                           t = targets;
                           targets = next_targets;
                           next_targets = t;
                         }
                         pending_batch = batch;
                         pending_adam = &adam;
                       });
    if (pending_adam != nullptr)
      group_overlapped_step<TM, TN>(g, shape, st, input, targets, pending_batch, *pending_adam, [](int, int) {});
  }
}

// Partial sums of an evaluation: sample i adds to lane i % kEvalLanes. A fixed number of
// lanes, independent of how many threads a backend runs, is what makes the CPU's and the
// GPU's RMSEs the same bits.
constexpr int kEvalLanes = 64;

// Evaluation buffers: input rows (rows x 3), two ping-pong activation buffers (rows x
// max width) and kEvalLanes double partial sums.
struct EvalState {
  const float* params;
  float* input;
  float* ping;
  float* pong;
  double* partials;
};

// Sum over the dataset of (prediction - y)^2 in double. Lane l adds the squared errors of
// samples l, l + kEvalLanes, ... in ascending order, then a fixed tree adds the lanes: the
// result depends on the data alone, not on the tile rows, the group size or timing.
// Returns the sum (valid on every rank after the last phase; in partials[0]).
template <int TM, int TN, class Group>
US_HD_INLINE double group_sum_squares(const Group& g, const NetShape& shape, const DatasetView& data, int rows,
                                      const EvalState& st) {
  g.run([&](int rank) {
    for (int lane = rank; lane < kEvalLanes; lane += g.size) st.partials[lane] = 0.0;
  });
  const auto act = [&](int l) -> float* { return l == 0 ? st.input : ((l & 1) ? st.ping : st.pong); };
  for (std::uint32_t start = 0; start < data.n; start += static_cast<std::uint32_t>(rows)) {
    const int count = static_cast<int>(
        static_cast<std::uint32_t>(rows) < data.n - start ? static_cast<std::uint32_t>(rows) : data.n - start);
    g.run([&](int rank) {
      for (int b = rank; b < count; b += g.size) {
        const std::uint32_t i = start + static_cast<std::uint32_t>(b);
        st.input[b * kFeatures + 0] = data.x1[i];
        st.input[b * kFeatures + 1] = data.x2[i];
        st.input[b * kFeatures + 2] = data.x3[i];
      }
    });
    group_forward<TM, TN>(g, shape, st.params, count, act);
    const float* predictions = act(shape.n_layers);
    g.run([&](int rank) {
      for (int lane = rank; lane < kEvalLanes; lane += g.size) {
        const int first = static_cast<int>((static_cast<std::uint32_t>(lane) + kEvalLanes - start % kEvalLanes) %
                                           kEvalLanes);  // first b with (start + b) % kEvalLanes == lane
        for (int b = first; b < count; b += kEvalLanes) {
          const double error = static_cast<double>(predictions[b]) - data.y[start + static_cast<std::uint32_t>(b)];
          st.partials[lane] += error * error;
        }
      }
    });
  }
  for (int half = kEvalLanes / 2; half > 0; half /= 2)
    g.run([&](int rank) {
      for (int lane = rank; lane < half; lane += g.size) st.partials[lane] += st.partials[lane + half];
    });
  return st.partials[0];
}

}  // namespace underspec
