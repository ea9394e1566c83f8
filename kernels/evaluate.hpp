// Evaluation: sum of squared errors (double) per replica and domain; replicas of one launch
// may be scored on different test sets (their grid cells'). One CTA per
// (replica, domain); the CTA forwards tiles of test samples with the shared products and
// reduces per-thread partial sums in a fixed tree, so the sums are deterministic. The
// host takes sqrt(sum / n), as cpu_trainer's evaluate_rmse does.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "underspec/backends/cuda_plan.hpp"
#include "underspec/core/group_trainer.hpp"

namespace underspec::cuda {

struct EvaluateLaunch {
  NetShape shape;
  cuda_plan::EvalLayout layout;
  const float* params;  // device, n_replicas * param_count(shape)
  int n_replicas;
  const DatasetView* domains;   // device, [n_replicas][2]: each replica's two test sets of this launch
  float* scratch;               // device, n_replicas * 2 * layout.global_floats (null when 0)
  double* sums;                 // device, n_replicas * 2: [replica][domain]
  bool shared_operands = true;  // as FusedTrainLaunch::shared_operands
};

void launch_evaluate(const EvaluateLaunch& launch, cudaStream_t stream);

}  // namespace underspec::cuda
