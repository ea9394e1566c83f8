// One perceptron replica trained by one thread, sample by sample, in registers: the
// streaming form of group_train_replica for the 3-1 shape, on the same minibatch schedule
// (for_each_minibatch). It performs the same operations in the same order (forward fmaf
// chain over the features from the bias, mse_grad, weight gradients as fmaf chains over the
// batch in ascending order, the bias gradient as a plain sum, Adam), so it reproduces the
// group trainer and the CPU backend bit for bit; the GPU runs it one lane per replica, with
// no shared memory and no barriers. (Fetching four samples' data at once was measured on an
// H200: no faster, and 106 registers instead of 90.)
#pragma once

#include <cstdint>

#include "underspec/core/group_trainer.hpp"

namespace underspec {

// Samples whose indices a lane computes together (walked_indices) before using them.
constexpr int kLaneIndexChunk = 16;

// Trains the perceptron `shape` (3 inputs, 1 output: param_count == 4, weights then bias)
// and writes its final parameters to params_out[0..4). `index` is scratch for
// kLaneIndexChunk sample indices at `index_stride` (the GPU: a lane's column of shared memory).
US_HD_INLINE void lane_train_perceptron(const NetShape& shape, const TrainRun& run, const ReplicaJob& job,
                                        const DatasetView& data, float* params_out, std::uint32_t* index,
                                        int index_stride) {
  float w0 = init_param(shape, job.seed, 0), w1 = init_param(shape, job.seed, 1), w2 = init_param(shape, job.seed, 2);
  float bias = init_param(shape, job.seed, 3);
  float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, mb = 0.0f, v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, vb = 0.0f;
  const PhiloxKey aug_key = make_key(job.seed, Stream::augmentation);
  for_each_minibatch(run, job, data.n,
                     [&](std::uint32_t epoch, const EpochPermutation& perm, std::uint32_t start, std::uint32_t batch,
                         const AdamStep& adam) {
                       const float two_over_batch = 2.0f / static_cast<float>(batch);
                       float g0 = 0.0f, g1 = 0.0f, g2 = 0.0f, gb = 0.0f;
                       Normal4 noise{};
                       for (std::uint32_t b = 0; b < batch; ++b) {
                         const std::uint32_t position = start + b;
                         const auto k = static_cast<int>(b % kLaneIndexChunk);
                         if (k == 0) {
                           const std::uint32_t left = batch - b;
                           walked_indices(perm, position,
                                          left < kLaneIndexChunk ? static_cast<int>(left) : kLaneIndexChunk, index,
                                          index_stride);
                         }
                         const std::uint32_t i = index[k * index_stride];
                         const float x1 = data.x1[i], x2 = data.x2[i];
                         float x3 = data.x3[i];
                         if (job.augment) {
                           if (b == 0 || (position & 3u) == 0)
                             noise = normal4(augmentation_counter(epoch, position), aug_key);
                           x3 += run.augmentation_std * normal4_pick(noise, position & 3u);
                         }
                         const float prediction = fmaf(x3, w2, fmaf(x2, w1, fmaf(x1, w0, bias)));
                         const float delta = mse_grad(prediction, data.y[i], two_over_batch);
                         g0 = fmaf(x1, delta, g0);
                         g1 = fmaf(x2, delta, g1);
                         g2 = fmaf(x3, delta, g2);
                         gb += delta;
                       }
                       adam_update(w0, g0, m0, v0, adam);
                       adam_update(w1, g1, m1, v1, adam);
                       adam_update(w2, g2, m2, v2, adam);
                       adam_update(bias, gb, mb, vb, adam);
                     });
  params_out[0] = w0;
  params_out[1] = w1;
  params_out[2] = w2;
  params_out[3] = bias;
}

}  // namespace underspec
