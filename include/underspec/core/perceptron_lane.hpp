// One perceptron replica trained by one thread, sample by sample, in registers: the
// streaming form of group_train_replica for the 3-1 shape. It performs the same operations
// in the same order (forward fmaf chain over the features from the bias, mse_grad, weight
// gradients as fmaf chains over the batch in ascending order, the bias gradient as a plain
// sum, Adam), so it reproduces the group trainer and the CPU backend bit for bit; the GPU
// runs it one lane per replica, with no shared memory and no barriers.
#pragma once

#include <cstdint>

#include "underspec/core/group_trainer.hpp"

namespace underspec {

// Samples whose loads are issued together. 4 was measured on an H200 at 10^4 replicas: no
// faster (17.2 against 16.4 ms) and 106 registers instead of 90, so fewer lanes per SM.
constexpr std::uint32_t kLanePrefetch = 1;

// v.n[k] without indexing the array at run time (which would put it in local memory).
US_HD_INLINE float normal4_pick(const Normal4& v, std::uint32_t k) {
  return k == 0u ? v.n[0] : k == 1u ? v.n[1] : k == 2u ? v.n[2] : v.n[3];
}

// Trains the perceptron `shape` (3 inputs, 1 output: param_count == 4, weights then bias)
// and writes its final parameters to params_out[0..4).
US_HD_INLINE void lane_train_perceptron(const NetShape& shape, const TrainRun& run, const ReplicaJob& job,
                                        const DatasetView& data, float* params_out) {
  float w0 = init_param(shape, job.seed, 0), w1 = init_param(shape, job.seed, 1), w2 = init_param(shape, job.seed, 2);
  float bias = init_param(shape, job.seed, 3);
  float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, mb = 0.0f, v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, vb = 0.0f;
  const PhiloxKey aug_key = make_key(job.seed, Stream::augmentation);
  const std::uint32_t n = data.n, batch_size = static_cast<std::uint32_t>(run.batch_size);
  int step = 0;
  for (int epoch = 0; epoch < run.epochs; ++epoch) {
    const auto e = static_cast<std::uint32_t>(epoch);
    const EpochPermutation perm = make_epoch_permutation(n, job.seed, e);
    for (std::uint32_t start = 0; start < n; start += batch_size) {
      const std::uint32_t batch = batch_size < n - start ? batch_size : n - start;
      const float two_over_batch = 2.0f / static_cast<float>(batch);
      float g0 = 0.0f, g1 = 0.0f, g2 = 0.0f, gb = 0.0f;
      Normal4 noise{};
      // Samples are fetched four at a time (independent loads in flight together) and then
      // applied one by one in ascending order, which keeps every sum's order.
      for (std::uint32_t b0 = 0; b0 < batch; b0 += kLanePrefetch) {
        float x1[kLanePrefetch] = {}, x2[kLanePrefetch] = {}, x3[kLanePrefetch] = {}, y[kLanePrefetch] = {};
        const std::uint32_t count = batch - b0 < kLanePrefetch ? batch - b0 : kLanePrefetch;
        US_UNROLL(4)
        for (std::uint32_t k = 0; k < kLanePrefetch; ++k) {
          if (k < count) {
            const std::uint32_t i = permuted_index(perm, start + b0 + k);
            x1[k] = data.x1[i];
            x2[k] = data.x2[i];
            x3[k] = data.x3[i];
            y[k] = data.y[i];
          }
        }
        US_UNROLL(4)
        for (std::uint32_t k = 0; k < kLanePrefetch; ++k) {
          if (k >= count) continue;
          const std::uint32_t b = b0 + k;
          const std::uint32_t position = start + b;
          float x3k = x3[k];
          if (job.augment) {
            if (b == 0 || (position & 3u) == 0) noise = normal4(augmentation_counter(e, position), aug_key);
            x3k += run.augmentation_std * normal4_pick(noise, position & 3u);
          }
          const float prediction = fmaf(x3k, w2, fmaf(x2[k], w1, fmaf(x1[k], w0, bias)));
          const float delta = mse_grad(prediction, y[k], two_over_batch);
          g0 = fmaf(x1[k], delta, g0);
          g1 = fmaf(x2[k], delta, g1);
          g2 = fmaf(x3k, delta, g2);
          gb += delta;
        }
      }
      const AdamStep adam = run.adam_steps[step++];
      adam_update(w0, g0, m0, v0, adam);
      adam_update(w1, g1, m1, v1, adam);
      adam_update(w2, g2, m2, v2, adam);
      adam_update(bias, gb, mb, vb, adam);
    }
  }
  params_out[0] = w0;
  params_out[1] = w1;
  params_out[2] = w2;
  params_out[3] = bias;
}

}  // namespace underspec
