// One perceptron replica trained by one thread, sample by sample: the streaming form of
// group_train_replica for the 3-1 shape, on the same minibatch schedule
// (for_each_epoch_minibatch). It performs the same operations in the same order (forward
// fmaf chain over the features from the bias, mse_grad, weight gradients as fmaf chains over
// the batch in ascending order, the bias gradient as a plain sum, Adam), so it reproduces the
// group trainer and the CPU backend bit for bit; the GPU runs it one lane per replica, with
// no barriers. The weights and gradients live in registers; what the sample loop does not
// touch (Adam's moments, the epoch's permutation, the seed) lives in a scratch column (the
// GPU: shared memory), and every kLaneIndexChunk samples the lane computes the chunk's
// sample indices and augmentation noises into it, then re-reads its data set's pointers: so
// the double-precision Box-Muller runs with little else live (64 registers, not 80).
// (Fetching four samples' data at once was measured on an H200: no faster, and 106
// registers instead of 90.)
#pragma once

#include <bit>
#include <cstdint>

#include "underspec/core/group_trainer.hpp"

namespace underspec {

// Samples whose indices (and augmentation noises) a lane computes together before using them.
constexpr int kLaneIndexChunk = 16;

// A lane's scratch column (the GPU: shared memory), in 32-bit words at the caller's stride.
// To the compiler a value read back from it is new at every read (the loops store into the
// same column), so it cannot keep it, or what it derives from it, in registers between uses:
// hence the seed's copy there (see lane_noises).
constexpr int kLaneIndexOffset = 0;                                    // the chunk's sample indices
constexpr int kLaneNoiseOffset = kLaneIndexOffset + kLaneIndexChunk;   // their augmentation noises
constexpr int kLaneMomentOffset = kLaneNoiseOffset + kLaneIndexChunk;  // Adam: m0 m1 m2 mb v0 v1 v2 vb
constexpr int kLanePermOffset = kLaneMomentOffset + 8;                 // mask, shift, round_keys[4], multipliers[4]
constexpr int kLaneSeedOffset = kLanePermOffset + 10;                  // job.seed
constexpr int kLaneScratchWords = kLaneSeedOffset + 1;

// A float in a scratch word (its bits: no type punning through pointers).
US_HD_INLINE void lane_store(std::uint32_t* word, float value) { *word = std::bit_cast<std::uint32_t>(value); }
US_HD_INLINE float lane_load(const std::uint32_t* word) { return std::bit_cast<float>(*word); }

// The epoch's permutation into / out of the scratch column (n is the data set's).
US_HD_INLINE void lane_store_permutation(const EpochPermutation& p, std::uint32_t* scratch, int stride) {
  std::uint32_t* at = scratch + kLanePermOffset * stride;
  at[0] = p.mask;
  at[stride] = p.shift;
  for (int r = 0; r < 4; ++r) {
    at[(2 + r) * stride] = p.round_keys[r];
    at[(6 + r) * stride] = p.multipliers[r];
  }
}

US_HD_INLINE EpochPermutation lane_load_permutation(std::uint32_t n, const std::uint32_t* scratch, int stride) {
  const std::uint32_t* at = scratch + kLanePermOffset * stride;
  EpochPermutation p;
  p.n = n;
  p.mask = at[0];
  p.shift = at[stride];
  for (int r = 0; r < 4; ++r) {
    p.round_keys[r] = at[(2 + r) * stride];
    p.multipliers[r] = at[(6 + r) * stride];
  }
  return p;
}

// augmentation_std * normal for positions first .. first + count - 1 of the epoch, into the
// scratch column's noise words: one Box-Muller block per four positions, the normals the
// group trainer's gather draws (gather_rows_of with stride 1), and the same product that
// the sample then adds. The seed is read from the scratch column for every block: from a
// register, the GPU compiler shares the Philox key schedule (seed + r * Weyl constant) with
// the initialisation's and the shuffle's and keeps it in registers for the whole training.
US_HD_INLINE void lane_noises(std::uint32_t epoch, std::uint32_t first, int count, float augmentation_std,
                              std::uint32_t* scratch, int stride) {
  std::uint32_t* noise = scratch + kLaneNoiseOffset * stride;
  US_UNROLL(1)
  for (int q = 0; q < count;) {
    const std::uint32_t position = first + static_cast<std::uint32_t>(q);
    const Normal4 n4 = normal4(augmentation_counter(epoch, position),
                               make_key(scratch[kLaneSeedOffset * stride], Stream::augmentation));
    if ((position & 3u) == 0 && q + 4 <= count) {  // a whole block (every one when 4 divides the batch size)
      for (int j = 0; j < 4; ++j) lane_store(noise + (q + j) * stride, augmentation_std * n4.n[j]);
      q += 4;
    } else {
      do {  // the block's positions in the chunk: up to the next multiple of four
        lane_store(noise + q * stride,
                   augmentation_std * normal4_pick(n4, (first + static_cast<std::uint32_t>(q)) & 3u));
        ++q;
      } while (q < count && ((first + static_cast<std::uint32_t>(q)) & 3u) != 0);
    }
  }
}

// adam_update of parameter j (0..3) with its moments in the scratch column.
US_HD_INLINE void lane_adam(float& param, float grad, std::uint32_t* moment, int j, int stride, const AdamStep& adam) {
  float m = lane_load(moment + j * stride), v = lane_load(moment + (4 + j) * stride);
  adam_update(param, grad, m, v, adam);
  lane_store(moment + j * stride, m);
  lane_store(moment + (4 + j) * stride, v);
}

// Trains the perceptron `shape` (3 inputs, 1 output: param_count == 4, weights then bias)
// and writes its final parameters to params_out[0..4). `scratch` is kLaneScratchWords words
// at `stride` (the GPU: a lane's column of shared memory).
US_HD_INLINE void lane_train_perceptron(const NetShape& shape, const TrainRun& run, const ReplicaJob& job,
                                        const DatasetView& data, float* params_out, std::uint32_t* scratch,
                                        int stride) {
  const std::uint32_t n = data.n;
  float w0 = init_param(shape, job.seed, 0), w1 = init_param(shape, job.seed, 1), w2 = init_param(shape, job.seed, 2);
  float bias = init_param(shape, job.seed, 3);
  std::uint32_t* moment = scratch + kLaneMomentOffset * stride;
  for (int j = 0; j < 8; ++j) lane_store(moment + j * stride, 0.0f);
  scratch[kLaneSeedOffset * stride] = job.seed;
  const std::uint32_t* index = scratch + kLaneIndexOffset * stride;
  const std::uint32_t* noise = scratch + kLaneNoiseOffset * stride;
  for_each_epoch_minibatch(
      run, job, n, [&](std::uint32_t, const EpochPermutation& perm) { lane_store_permutation(perm, scratch, stride); },
      [&](std::uint32_t epoch, const EpochPermutation&, std::uint32_t start, std::uint32_t batch,
          const AdamStep& adam) {
        const float two_over_batch = 2.0f / static_cast<float>(batch);
        float g0 = 0.0f, g1 = 0.0f, g2 = 0.0f, gb = 0.0f;
        const float *x1s = nullptr, *x2s = nullptr, *x3s = nullptr, *ys = nullptr;
        for (std::uint32_t b = 0; b < batch; ++b) {
          const auto k = static_cast<int>(b % kLaneIndexChunk);
          if (k == 0) {
            const std::uint32_t position = start + b, left = batch - b;
            const int count = left < kLaneIndexChunk ? static_cast<int>(left) : kLaneIndexChunk;
            walked_indices(lane_load_permutation(n, scratch, stride), position, count,
                           scratch + kLaneIndexOffset * stride, stride);
            if (job.augment) lane_noises(epoch, position, count, run.augmentation_std, scratch, stride);
            // Read here, after the walk and Box-Muller, not held through them: the compiler
            // cannot hoist loads out of this branch (it would need to know `data` readable).
            x1s = data.x1;
            x2s = data.x2;
            x3s = data.x3;
            ys = data.y;
          }
          const std::uint32_t i = index[k * stride];
          const float x1 = x1s[i], x2 = x2s[i];
          float x3 = x3s[i];
          if (job.augment) x3 += lane_load(noise + k * stride);
          const float prediction = fmaf(x3, w2, fmaf(x2, w1, fmaf(x1, w0, bias)));
          const float delta = mse_grad(prediction, ys[i], two_over_batch);
          g0 = fmaf(x1, delta, g0);
          g1 = fmaf(x2, delta, g1);
          g2 = fmaf(x3, delta, g2);
          gb += delta;
        }
        lane_adam(w0, g0, moment, 0, stride, adam);
        lane_adam(w1, g1, moment, 1, stride, adam);
        lane_adam(w2, g2, moment, 2, stride, adam);
        lane_adam(bias, gb, moment, 3, stride, adam);
      });
  params_out[0] = w0;
  params_out[1] = w1;
  params_out[2] = w2;
  params_out[3] = bias;
}

}  // namespace underspec
