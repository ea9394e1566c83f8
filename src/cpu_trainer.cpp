// The host training loop: shuffle, gather (and augment) a minibatch, forward, backward,
// Adam, with StepLR per epoch. The arithmetic is the shared US_HD code.
#include "underspec/cpu_trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>

#include "underspec/adam.hpp"
#include "underspec/cpu_gemm.hpp"
#include "underspec/permutation.hpp"

namespace underspec {

namespace {
constexpr std::size_t kLineFloats = 64 / sizeof(float);
std::size_t round_to_line(std::size_t floats) { return (floats + kLineFloats - 1) / kLineFloats * kLineFloats; }
void free_arena(float* p) { std::free(p); }
}  // namespace

float* TrainWorkspace::carve(std::size_t floats) {
  float* p = arena_.get() + used_;
  used_ += round_to_line(floats);
  return p;
}

TrainWorkspace::TrainWorkspace(const NetShape& shape, int batch_capacity)
    : batch_capacity_(batch_capacity), arena_(nullptr, free_arena) {
  const auto width = static_cast<std::size_t>(max_width(shape));
  const auto batch = static_cast<std::size_t>(batch_capacity);
  const auto n_params = static_cast<std::size_t>(param_count(shape));
  std::size_t total = round_to_line(batch) + 4 * round_to_line(n_params) + 2 * round_to_line(batch * width) +
                      round_to_line(width * width);
  for (int l = 0; l <= shape.n_layers; ++l) total += round_to_line(batch * static_cast<std::size_t>(shape.width[l]));
  capacity_ = total;
  arena_.reset(static_cast<float*>(std::aligned_alloc(64, total * sizeof(float))));
  if (!arena_) throw std::bad_alloc();
  std::fill(arena_.get(), arena_.get() + total, 0.0f);
  params_ = carve(n_params);
  grads_ = carve(n_params);
  moment1_ = carve(n_params);
  moment2_ = carve(n_params);
  targets_ = carve(batch);
  for (int l = 0; l <= shape.n_layers; ++l) buffers_.act[l] = carve(batch * static_cast<std::size_t>(shape.width[l]));
  buffers_.delta_a = carve(batch * width);
  buffers_.delta_b = carve(batch * width);
  buffers_.weights_t = carve(width * width);
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
  float* p = workspace.params();  // aligned copy for the duration of the training
  std::copy(params.begin(), params.end(), p);
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
      forward_batch(shape, p, buf, batch, CpuGemm{});
      backward_batch(shape, p, workspace.targets(), buf, batch, workspace.grads(), CpuGemm{});
      const AdamStep s = make_adam_step(hyper, lr, ++step);
      adam_update_range(p, workspace.grads(), workspace.moment1(), workspace.moment2(), n_params, s);
    }
  }
  std::copy(p, p + n_params, params.begin());
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
