// The fused training and evaluation of ONE replica by a GROUP of cooperating threads (a
// CUDA warp or CTA), written once as US_HD code over the shared math of model.hpp and
// adam.hpp. A group executes a sequence of phases; between phases it synchronises
// (__syncwarp / __syncthreads on the device). `HostGroup` runs every rank of a phase in
// turn on the CPU, so the exact work split and phase order the GPU uses is tested by the
// CPU test suite against the CPU backend (tests/test_cuda_host_group_trainer.cpp).
//
// Why the results equal the CPU's bit for bit: every output element of every product is
// computed by exactly one rank with gemm_tile/gemm_block, i.e. with fmaf in ascending p
// from the same initial value; bias gradients are summed by one rank in ascending batch
// order; Adam is element-wise. Only the evaluation's double-precision sum of squares is
// reduced in a different (fixed) order.
#pragma once

#include <cstdint>

#include "underspec/adam.hpp"
#include "underspec/hd.hpp"
#include "underspec/model.hpp"
#include "underspec/permutation.hpp"
#include "underspec/scm.hpp"

namespace underspec::cuda_math {

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
  std::uint32_t pad;
};

// What all replicas of one launch share.
struct TrainRun {
  int epochs;
  int batch_size;
  float augmentation_std;
  const AdamStep* adam_steps;  // [epochs * steps_per_epoch]: step number k+1 at index k
};

// Where one replica's working set lives (shared memory or a global scratch slice).
struct ReplicaState {
  float* params;
  float* grads;
  float* moment1;
  float* moment2;
  float* targets;    // [batch]
  BatchBuffers buf;  // act[0..L], delta_a, delta_b, weights_t as in model.hpp
};

// Hidden widths: compile-time W > 0 (all hidden layers W wide), or W == 0 (read the shape).
template <int W>
US_HD_INLINE int layer_width(const NetShape& s, int l) {
  if constexpr (W > 0) {
    return l == 0 ? kFeatures : (l == s.n_layers ? 1 : W);
  } else {
    return s.width[l];
  }
}

US_HD_INLINE int steps_per_epoch(std::uint32_t n, int batch_size) {
  return static_cast<int>((n + static_cast<std::uint32_t>(batch_size) - 1u) / static_cast<std::uint32_t>(batch_size));
}

// A group executed rank after rank on the host (for tests; identical phase structure).
struct HostGroup {
  int size;
  template <class Phase>
  void run(Phase&& phase) const {
    for (int rank = 0; rank < size; ++rank) phase(rank);
  }
};

enum class Epilogue { none, relu, relu_mask };

// C = product for rows [0, M) x columns [0, N), tiles of TM x TN dealt round-robin to the
// ranks; each element is computed by one rank with the shared per-element order. The
// epilogue is element-wise: ReLU of C, or C zeroed where mask (same layout as C) <= 0.
template <int TM, int TN>
US_HD_INLINE void group_gemm(const GemmArgs& g, int M, int N, int rank, int size, Epilogue epilogue,
                             const float* mask) {
  const int tiles_i = (M + TM - 1) / TM, tiles_j = (N + TN - 1) / TN;
  for (int tile = rank; tile < tiles_i * tiles_j; tile += size) {
    const int i0 = (tile / tiles_j) * TM, j0 = (tile % tiles_j) * TN;
    const int i1 = i0 + TM < M ? i0 + TM : M, j1 = j0 + TN < N ? j0 + TN : N;
    if (i1 - i0 == TM && j1 - j0 == TN)
      gemm_tile<TM, TN>(g, i0, j0);
    else
      gemm_block(g, i0, i1, j0, j1);
    if (epilogue == Epilogue::none) continue;
    for (int i = i0; i < i1; ++i)
      for (int j = j0; j < j1; ++j) {
        float& c = g.C[i * g.ldc + j];
        const float gate = epilogue == Epilogue::relu ? c : mask[i * g.ldc + j];
        c = gate > 0.0f ? c : 0.0f;
      }
  }
}

// Row `b` of the minibatch that starts at `start`: the permuted sample, with x3 augmented
// exactly as the CPU trainer does (augmentation_noise draws the same Philox word).
US_HD_INLINE void gather_row(const DatasetView& data, const EpochPermutation& perm, const ReplicaJob& job,
                             float augmentation_std, std::uint32_t epoch, std::uint32_t start, int b, float* features,
                             float* targets) {
  const std::uint32_t position = start + static_cast<std::uint32_t>(b);
  const std::uint32_t i = permuted_index(perm, position);
  float x3 = data.x3[i];
  if (job.augment) x3 += augmentation_noise(augmentation_std, job.seed, epoch, position);
  features[b * kFeatures + 0] = data.x1[i];
  features[b * kFeatures + 1] = data.x2[i];
  features[b * kFeatures + 2] = x3;
  targets[b] = data.y[i];
}

// Forward pass of `rows` rows through all layers: input act_in[0] (rows x 3), layer l
// writes act_out(l). One phase per layer.
template <int W, int TM, int TN, class Group, class ActOf>
US_HD_INLINE void group_forward(const Group& g, const NetShape& shape, const float* params, int rows, ActOf act) {
  for (int l = 1; l <= shape.n_layers; ++l) {
    const int fan_in = layer_width<W>(shape, l - 1), fan_out = layer_width<W>(shape, l);
    const GemmArgs ga{fan_in,
                      act(l - 1),
                      fan_in,
                      1,
                      params + weight_offset(shape, l),
                      fan_out,
                      act(l),
                      fan_out,
                      GemmInit::bias,
                      params + bias_offset(shape, l)};
    const Epilogue epilogue = l < shape.n_layers ? Epilogue::relu : Epilogue::none;
    g.run([&](int rank) { group_gemm<TM, TN>(ga, rows, fan_out, rank, g.size, epilogue, nullptr); });
  }
}

// One minibatch: forward, backward (as backward_batch), Adam. The features and targets of
// the batch are already in st.buf.act[0] / st.targets.
template <int W, int TM, int TN, class Group>
US_HD_INLINE void group_train_step(const Group& g, const NetShape& shape, const ReplicaState& st, int batch,
                                   const AdamStep& adam) {
  const int n_layers = shape.n_layers;
  const BatchBuffers& buf = st.buf;
  group_forward<W, TM, TN>(g, shape, st.params, batch, [&](int l) { return buf.act[l]; });

  const float two_over_batch = 2.0f / static_cast<float>(batch);
  const float* predictions = buf.act[n_layers];
  g.run([&](int rank) {
    for (int b = rank; b < batch; b += g.size) buf.delta_a[b] = mse_grad(predictions[b], st.targets[b], two_over_batch);
  });
  float* delta = buf.delta_a;
  float* delta_prev = buf.delta_b;
  for (int l = n_layers; l >= 1; --l) {
    const int fan_in = layer_width<W>(shape, l - 1), fan_out = layer_width<W>(shape, l);
    const float* w = st.params + weight_offset(shape, l);
    float* grad_bias = st.grads + bias_offset(shape, l);
    const GemmArgs gw{batch,   buf.act[l - 1], 1,      fan_in, delta, fan_out, st.grads + weight_offset(shape, l),
                      fan_out, GemmInit::zero, nullptr};
    g.run([&](int rank) {
      group_gemm<TM, TN>(gw, fan_in, fan_out, rank, g.size, Epilogue::none, nullptr);
      for (int j = rank; j < fan_out; j += g.size) {
        float sum = 0.0f;
        for (int b = 0; b < batch; ++b) sum += delta[b * fan_out + j];
        grad_bias[j] = sum;
      }
      if (l > 1)
        for (int e = rank; e < fan_in * fan_out; e += g.size)
          buf.weights_t[(e % fan_out) * fan_in + e / fan_out] = w[e];
    });
    if (l == 1) break;
    const GemmArgs gd{fan_out, delta, fan_out, 1, buf.weights_t, fan_in, delta_prev, fan_in, GemmInit::zero, nullptr};
    const float* act_prev = buf.act[l - 1];
    g.run([&](int rank) { group_gemm<TM, TN>(gd, batch, fan_in, rank, g.size, Epilogue::relu_mask, act_prev); });
    float* t = delta;
    delta = delta_prev;
    delta_prev = t;
  }
  const int n_params = param_count(shape);
  g.run([&](int rank) {
    for (int i = rank; i < n_params; i += g.size)
      adam_update(st.params[i], st.grads[i], st.moment1[i], st.moment2[i], adam);
  });
}

// The whole training of one replica (all epochs), as cpu_trainer's train_replica.
template <int W, int TM, int TN, class Group>
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
  const std::uint32_t n = data.n, batch_size = static_cast<std::uint32_t>(run.batch_size);
  int step = 0;
  for (int epoch = 0; epoch < run.epochs; ++epoch) {
    const auto e = static_cast<std::uint32_t>(epoch);
    const EpochPermutation perm = make_epoch_permutation(n, job.seed, e);
    for (std::uint32_t start = 0; start < n; start += batch_size) {
      const int batch = static_cast<int>(batch_size < n - start ? batch_size : n - start);
      g.run([&](int rank) {
        for (int b = rank; b < batch; b += g.size)
          gather_row(data, perm, job, run.augmentation_std, e, start, b, st.buf.act[0], st.targets);
      });
      group_train_step<W, TM, TN>(g, shape, st, batch, run.adam_steps[step++]);
    }
  }
}

// Evaluation buffers: input rows (rows x 3), two ping-pong activation buffers (rows x
// max width) and one double partial sum per rank.
struct EvalState {
  const float* params;
  float* input;
  float* ping;
  float* pong;
  double* partials;
};

// Sum over the dataset of (prediction - y)^2 in double. Rank r accumulates rows r, r +
// size, ... of every tile, then a fixed-order tree adds the partials: the result depends
// only on (rows, group size), never on timing. Returns the sum (valid on every rank after
// the last phase; in partials[0]).
template <int W, int TM, int TN, class Group>
US_HD_INLINE double group_sum_squares(const Group& g, const NetShape& shape, const DatasetView& data, int rows,
                                      const EvalState& st) {
  g.run([&](int rank) { st.partials[rank] = 0.0; });
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
    group_forward<W, TM, TN>(g, shape, st.params, count, act);
    const float* predictions = act(shape.n_layers);
    g.run([&](int rank) {
      for (int b = rank; b < count; b += g.size) {
        const double error = static_cast<double>(predictions[b]) - data.y[start + static_cast<std::uint32_t>(b)];
        st.partials[rank] += error * error;
      }
    });
  }
  int half = 1;
  while (half * 2 < g.size) half *= 2;
  for (; half > 0; half /= 2)
    g.run([&](int rank) {
      if (rank < half && rank + half < g.size) st.partials[rank] += st.partials[rank + half];
    });
  return st.partials[0];
}

}  // namespace underspec::cuda_math
