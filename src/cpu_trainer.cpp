// The host training loop: shuffle, gather (and augment) a minibatch, forward, backward,
// Adam, with StepLR per epoch. The arithmetic is the shared US_HD code.
#include "underspec/cpu_trainer.hpp"

#include <algorithm>
#include <cmath>

#include "underspec/adam.hpp"
#include "underspec/cpu_gemm.hpp"
#include "underspec/permutation.hpp"

namespace underspec {

TrainWorkspace::TrainWorkspace(const NetShape& shape, int batch_capacity) : batch_capacity_(batch_capacity) {
  const int width = max_width(shape);
  const auto batch = static_cast<std::size_t>(batch_capacity);
  std::size_t total = 0;
  for (int l = 0; l <= shape.n_layers; ++l) total += batch * static_cast<std::size_t>(shape.width[l]);
  total += 2 * batch * width + static_cast<std::size_t>(width) * width;
  storage_.assign(total, 0.0f);
  float* p = storage_.data();
  for (int l = 0; l <= shape.n_layers; ++l) {
    buffers_.act[l] = p;
    p += batch * static_cast<std::size_t>(shape.width[l]);
  }
  buffers_.delta_a = p;
  p += batch * width;
  buffers_.delta_b = p;
  p += batch * width;
  buffers_.weights_t = p;
  const auto n_params = static_cast<std::size_t>(param_count(shape));
  targets_.assign(batch, 0.0f);
  grads_.assign(n_params, 0.0f);
  moment1_.assign(n_params, 0.0f);
  moment2_.assign(n_params, 0.0f);
}

std::vector<float> initial_params(const NetShape& shape, std::uint32_t seed) {
  std::vector<float> params(static_cast<std::size_t>(param_count(shape)));
  for (int i = 0; i < param_count(shape); ++i) params[static_cast<std::size_t>(i)] = init_param(shape, seed, i);
  return params;
}

void gather_batch(const Dataset& train, const EpochPermutation& perm, std::uint32_t seed, float augmentation_std,
                  std::uint32_t epoch, std::uint32_t start, int batch, float* features, float* targets) {
  const PhiloxKey aug_key = make_key(seed, Stream::augmentation);
  Normal4 noise{};
  for (int b = 0; b < batch; ++b) {
    const std::uint32_t position = start + static_cast<std::uint32_t>(b);
    const std::uint32_t i = permuted_index(perm, position);
    float x3 = train.x3[i];
    if (augmentation_std != 0.0f) {
      // One Philox block serves four positions (the values of augmentation_noise).
      if (b == 0 || (position & 3u) == 0) noise = normal4(augmentation_counter(epoch, position), aug_key);
      x3 += augmentation_std * noise.n[position & 3u];
    }
    features[b * kFeatures + 0] = train.x1[i];
    features[b * kFeatures + 1] = train.x2[i];
    features[b * kFeatures + 2] = x3;
    targets[b] = train.y[i];
  }
}

void train_replica(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                   const Dataset& train, std::vector<float>& params, TrainWorkspace& workspace) {
  const TrainConfig& tc = config.train;
  const AdamHyper hyper{tc.lr, tc.betas[0], tc.betas[1], tc.eps};
  const StepLr schedule{tc.step_size, tc.gamma};
  const bool augment = replica.regime == Regime::augmentation;
  const auto aug_std = static_cast<float>(config.augmentation.noise_std);
  const auto n = static_cast<std::uint32_t>(train.size());
  const int n_params = param_count(shape);
  const BatchBuffers& buf = workspace.buffers();
  float* features = buf.act[0];
  std::fill(workspace.moment1(), workspace.moment1() + n_params, 0.0f);
  std::fill(workspace.moment2(), workspace.moment2() + n_params, 0.0f);
  std::int64_t step = 0;
  for (int epoch = 0; epoch < tc.epochs; ++epoch) {
    const double lr = step_lr(tc.lr, schedule, epoch);
    const EpochPermutation perm = make_epoch_permutation(n, replica.seed, static_cast<std::uint32_t>(epoch));
    for (std::uint32_t start = 0; start < n; start += static_cast<std::uint32_t>(tc.batch_size)) {
      const int batch = static_cast<int>(std::min<std::uint32_t>(static_cast<std::uint32_t>(tc.batch_size), n - start));
      gather_batch(train, perm, replica.seed, augment ? aug_std : 0.0f, static_cast<std::uint32_t>(epoch), start, batch,
                   features, workspace.targets());
      forward_batch(shape, params.data(), buf, batch, CpuGemm{});
      backward_batch(shape, params.data(), workspace.targets(), buf, batch, workspace.grads(), CpuGemm{});
      const AdamStep s = make_adam_step(hyper, lr, ++step);
      adam_update_range(params.data(), workspace.grads(), workspace.moment1(), workspace.moment2(), n_params, s);
    }
  }
}

double evaluate_rmse(const NetShape& shape, const float* params, const Dataset& test, TrainWorkspace& workspace) {
  const BatchBuffers& buf = workspace.buffers();
  const int capacity = workspace.batch_capacity();
  double sum_squares = 0.0;
  for (std::size_t start = 0; start < test.size(); start += static_cast<std::size_t>(capacity)) {
    const int batch = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(capacity), test.size() - start));
    for (int b = 0; b < batch; ++b) {
      const std::size_t i = start + static_cast<std::size_t>(b);
      buf.act[0][b * kFeatures + 0] = test.x1[i];
      buf.act[0][b * kFeatures + 1] = test.x2[i];
      buf.act[0][b * kFeatures + 2] = test.x3[i];
    }
    forward_batch(shape, params, buf, batch, CpuGemm{});
    for (int b = 0; b < batch; ++b) {
      const double error =
          static_cast<double>(buf.act[shape.n_layers][b]) - test.y[start + static_cast<std::size_t>(b)];
      sum_squares += error * error;
    }
  }
  return std::sqrt(sum_squares / static_cast<double>(test.size()));
}

}  // namespace underspec
