// The CPU backend's replica trainer: the shared group trainer (group_trainer.hpp) run by a
// single rank with the CPU's SIMD products (the workspace's kernels, cpu_kernels.hpp), on a
// cache-line aligned workspace. The hot loops themselves are in isa/cpu_kernels_isa.cpp.
#include "underspec/backends/cpu_trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>

#include "underspec/core/adam_schedule.hpp"

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

TrainWorkspace::TrainWorkspace(const NetShape& shape, int batch_capacity, const CpuKernels& kernels)
    : kernels_(kernels), batch_capacity_(batch_capacity), arena_(nullptr, free_arena) {
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

DatasetView view_of(const Dataset& d) {
  return DatasetView{d.x1.data(), d.x2.data(), d.x3.data(), d.y.data(), static_cast<std::uint32_t>(d.size())};
}

TrainRun host_train_run(const ExperimentConfig& config) {
  // No Adam table: the trainer computes each step's scalars as it goes (group_trainer.hpp),
  // so a training's memory does not grow with its epochs.
  const TrainConfig& t = config.train;
  return TrainRun{t.epochs,
                  t.batch_size,
                  static_cast<float>(config.augmentation.noise_std),
                  nullptr,
                  AdamHyper{t.lr, t.betas[0], t.betas[1], t.eps},
                  StepLr{t.step_size, t.gamma}};
}

ReplicaJob host_replica_job(const ReplicaSpec& replica) {
  return ReplicaJob{replica.seed, replica.regime == Regime::augmentation ? 1u : 0u, 0u, 0u};
}

std::vector<float> train_replica(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                                 const Dataset& train, TrainWorkspace& workspace) {
  const TrainRun run = host_train_run(config);
  const ReplicaJob job = host_replica_job(replica);
  const ReplicaState state{workspace.params(),  workspace.grads(),   workspace.moment1(),
                           workspace.moment2(), workspace.targets(), workspace.buffers()};
  workspace.kernels().train(shape, run, job, view_of(train), state);
  return std::vector<float>(workspace.params(), workspace.params() + param_count(shape));
}

double evaluate_rmse(const NetShape& shape, const float* params, const Dataset& test, TrainWorkspace& workspace) {
  const BatchBuffers& buf = workspace.buffers();
  double partials[kEvalLanes];
  const EvalState state{params, buf.act[0], buf.delta_a, buf.delta_b, partials};
  const double sum_squares = workspace.kernels().sum_squares(shape, view_of(test), workspace.batch_capacity(), state);
  return std::sqrt(sum_squares / static_cast<double>(test.size()));
}

}  // namespace underspec
