// The cuBLAS baseline (TrainVariant::cublas): per minibatch step, every product of every
// replica of the chunk is one cublasSgemmStridedBatched call (batch = replicas), with small
// element-wise kernels for gathering, bias + ReLU, the output error, bias gradients, the
// ReLU mask and Adam. Same data, permutation, augmentation, step order and Adam table as
// the fused kernels; cuBLAS's summation order is its own, so results agree with the CPU
// within tolerance, not bit for bit. PEDANTIC math mode: no TF32.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "underspec/core/group_trainer.hpp"

namespace underspec::cuda {

struct CublasTrainLaunch {
  NetShape shape;
  TrainRun run;                 // run.adam_steps: HOST table (scalars passed by value)
  int n_steps;                  // entries of run.adam_steps
  const ReplicaJob* jobs;       // device
  const DatasetView* datasets;  // device
  std::uint32_t n_train;        // samples of every training set
  int n_replicas;
  float* params_out;  // device, n_replicas * param_count(shape)
};

// Allocates its own scratch (grads, moments, activations) for the chunk.
void train_cublas(cublasHandle_t handle, const CublasTrainLaunch& launch, cudaStream_t stream);

}  // namespace underspec::cuda
