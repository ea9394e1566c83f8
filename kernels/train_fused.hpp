// Fused training: ONE launch trains a chunk of replicas for all epochs. The replicas share a
// network shape but may come from different grid cells: each reads its training settings
// (epochs, batch size, augmentation, Adam/StepLR table) from runs[job.run].
//   MLP:        a CTA per replica (cuda_plan::fused_threads threads); each thread computes
//               4x4 output tiles of every product with gemm_tile (group_trainer.hpp);
//               one kernel for every shape (layer widths read from the shape).
//   perceptron: a warp per replica, four replicas per CTA, same trainer code.
// The working set (params, activations, grads, Adam moments) lives in dynamic shared
// memory as far as it fits (cuda_plan::fused_launch_layout), the rest in a per-replica
// global scratch slice. Parameters are initialised in the kernel (init_param) and the
// final ones written to params_out[replica * param_count].
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "underspec/backends/cuda_memory.hpp"
#include "underspec/core/group_trainer.hpp"

namespace underspec::cuda {

struct FusedTrainLaunch {
  NetShape shape;
  const TrainRun* runs;         // device table indexed by job.run (one per grid cell); adam_steps on the device
  const ReplicaJob* jobs;       // device, n_replicas
  const DatasetView* datasets;  // device table indexed by job.dataset
  int n_replicas;
  cuda_plan::FusedLayout layout;
  float* scratch;     // device, n_replicas * layout.global_floats (may be null when 0)
  float* params_out;  // device, n_replicas * param_count(shape)
  // The <true> kernels when operands_in_shared(layout); false: always the generic ones
  // (UNDERSPEC_CUDA_SHARED_OPERANDS=0, to measure the difference).
  bool shared_operands = true;
};

// Perceptron kernel for n_layers == 1, else the MLP kernel.
void launch_fused_train(const FusedTrainLaunch& launch, cudaStream_t stream);

}  // namespace underspec::cuda
