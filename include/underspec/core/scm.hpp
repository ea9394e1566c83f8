// The structural causal model of the study, one sample at a time:
//   x1, x2 ~ N(0, 1);  y = c1*x1 + c2*x2 + intercept + noise_std*N(0, 1);
//   x3 = y + N(0, 1) / factor   (spurious: its strength `factor` depends on the domain).
// A sample is a pure function of (data seed, dataset id, replica slot, index), so datasets
// can be generated in any order, on any backend, and shared or not between replicas.
#pragma once

#include <cstdint>

#include "underspec/core/hd.hpp"
#include "underspec/core/rng.hpp"

namespace underspec {

struct ScmParams {
  float coef_x1 = 1.0f;
  float coef_x2 = 2.0f;
  float intercept = 3.0f;
  float noise_std = 1.0f;
};

struct Sample {
  float x1, x2, x3, y;
};

// Which set of samples: the test sets are shared by every replica; the training set
// is shared by the replicas of a sweep unless data.per_replica gives each seed its own.
enum class DatasetId : std::uint32_t { train = 0, iid_test = 1, ood_test = 2 };

// `slot` is 0 for shared data and 1 + seed for per-replica training data.
US_HD_INLINE PhiloxCounter dataset_counter(DatasetId set, std::uint32_t slot, std::uint32_t index) {
  return PhiloxCounter{index, static_cast<std::uint32_t>(set), slot, 0u};
}

US_HD_INLINE Sample scm_sample(const ScmParams& scm, float factor, std::uint32_t data_seed, DatasetId set,
                               std::uint32_t slot, std::uint32_t index) {
  const Normal4 z = normal4(dataset_counter(set, slot, index), make_key(data_seed, Stream::dataset));
  Sample s;
  s.x1 = z.n[0];
  s.x2 = z.n[1];
  // Explicit fmaf: both backends compute the same roundings (host code is compiled
  // without FMA contraction, device code with --fmad=false).
  s.y = fmaf(scm.noise_std, z.n[2], fmaf(scm.coef_x2, s.x2, fmaf(scm.coef_x1, s.x1, scm.intercept)));
  s.x3 = s.y + z.n[3] / factor;
  return s;
}

// Domain randomization: training sample `index` draws its own factor ~ U(lo, hi).
US_HD_INLINE float randomized_factor(float lo, float hi, std::uint32_t data_seed, std::uint32_t slot,
                                     std::uint32_t index) {
  const PhiloxBlock b =
      philox4x32_10(dataset_counter(DatasetId::train, slot, index), make_key(data_seed, Stream::factor));
  return fmaf(hi - lo, uniform_open01(b.v[0]), lo);
}

// Augmentation: the noise added to x3 of the sample at `position` of epoch `epoch` of the
// replica with seed `seed`. One Philox block serves four consecutive positions.
US_HD_INLINE PhiloxCounter augmentation_counter(std::uint32_t epoch, std::uint32_t position) {
  return PhiloxCounter{position >> 2, epoch, 0u, 0u};
}

US_HD_INLINE float augmentation_noise(float noise_std, std::uint32_t seed, std::uint32_t epoch,
                                      std::uint32_t position) {
  const Normal4 z = normal4(augmentation_counter(epoch, position), make_key(seed, Stream::augmentation));
  return noise_std * z.n[position & 3u];
}

}  // namespace underspec

namespace underspec {

// The domain a training set is drawn from: a fixed factor, or (domain randomization) a
// factor drawn per sample from [factor_lo, factor_hi].
struct TrainDomain {
  float factor;
  bool randomized;
  float factor_lo, factor_hi;
};

US_HD_INLINE Sample training_sample(const ScmParams& scm, const TrainDomain& domain, std::uint32_t data_seed,
                                    std::uint32_t slot, std::uint32_t index) {
  const float factor =
      domain.randomized ? randomized_factor(domain.factor_lo, domain.factor_hi, data_seed, slot, index) : domain.factor;
  return scm_sample(scm, factor, data_seed, DatasetId::train, slot, index);
}

}  // namespace underspec
