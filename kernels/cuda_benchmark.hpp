// The CUDA side of `underspec bench` (run_cuda_benchmark in benchmark.hpp) and of
// bench/gpu: the FMA probe kernel that measures the device's FP32 peak, and the timing of
// one training launch (fused or cuBLAS) with CUDA events.
#pragma once

#include <cublas_v2.h>

#include <cstdint>

#include "underspec/backends/cuda_plan.hpp"
#include "underspec/benchmark/benchmark.hpp"

namespace underspec::cuda {

struct GpuFmaPeak {
  double gflops = 0;   // 2 FLOP per FMA
  double seconds = 0;  // the best timed launch
  int blocks = 0, threads = 0, chains = 0;
  std::int64_t iterations = 0;  // per chain and launch
};

// The current device's FP32 FMA rate: every thread runs many independent fmaf chains, with
// enough blocks to fill every SM; launches are timed with CUDA events for about `seconds`
// after calibration, and the best is kept. (fma_probe.cu)
GpuFmaPeak measure_gpu_fma_peak(double seconds);

// The current device's name, SM count and clocks (cudaDeviceGetAttribute: CUDA 13 dropped
// the clock fields of cudaDeviceProp).
benchmark::DeviceInfo cuda_device_info();

// Trains `replicas` replicas of `model` under `config` (one shared training set of
// data.n_train samples, generated first and not timed; augmentation regime, the costliest
// minibatch) with `variant`, timing only the training launch(es) with CUDA events. FLOPs:
// benchmark::train_flop_per_sample_step per replica-sample-step. `handle` is needed for
// TrainVariant::cublas only (MLPs; a perceptron always runs the fused warp kernel), whose
// steps are replayed from CUDA graphs unless cublas_graph is false; its allocations and
// graph captures are not timed.
benchmark::BenchRow time_cuda_training(const ExperimentConfig& config, ModelKind model, cuda_plan::TrainVariant variant,
                                       int replicas, cublasHandle_t handle, double peak_gflops,
                                       bool cublas_graph = true);

}  // namespace underspec::cuda
