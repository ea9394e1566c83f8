// The cuBLAS baseline (TrainVariant::cublas): per minibatch step, every product of every
// replica of the chunk is one cublasSgemmStridedBatched call per slice of replicas, with
// small element-wise kernels for gathering, bias + ReLU, the output error, bias gradients,
// the ReLU mask and Adam. Same data, permutation, augmentation, step order and Adam table as
// the fused kernels; cuBLAS's summation order is its own, so results agree with the CPU
// within tolerance, not bit for bit. PEDANTIC math mode: no TF32.
//
// A CublasTrainer allocates all its device memory (the cuBLAS workspace included) when it is
// made, once for every chunk of a launch group, so training allocates nothing. Per step,
// what changes (epoch, start, rows, Adam's scalars) is read on the device from the step
// table (cublas_steps.hpp) at a device counter that the step's last kernel advances; so with
// graphs (the default) each step shape is captured once per chunk and replayed, and without
// them the very same launches are issued one by one: both give the same bits.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <span>
#include <vector>

#include "cuda_graph.hpp"
#include "device_buffer.hpp"
#include "underspec/backends/cublas_steps.hpp"
#include "underspec/core/group_trainer.hpp"

namespace underspec::cuda {

// What every chunk of one trainer shares: the cuBLAS variant's groups hold one cell.
struct CublasTrainSetup {
  NetShape shape;
  int epochs;
  int batch_size;
  float augmentation_std;
  std::uint32_t n_train;           // samples of every training set
  std::span<const AdamStep> adam;  // host table of the whole training (make_adam_table)
  int max_replicas;                // the largest chunk
  bool use_graph;
};

class CublasTrainer {
 public:
  // Allocates and uploads everything: parameters, gradients, moments, activations, deltas,
  // targets for max_replicas (padded to whole slices), the step table and counter, and the
  // cuBLAS workspace, bound to `handle` with `stream` (a created stream: graphs cannot be
  // captured on the legacy default stream).
  CublasTrainer(cublasHandle_t handle, const CublasTrainSetup& setup, cudaStream_t stream);
  CublasTrainer(const CublasTrainer&) = delete;
  CublasTrainer& operator=(const CublasTrainer&) = delete;
  ~CublasTrainer();

  // Per chunk, before the timed region: zeroes the slices' padding and, with graphs,
  // captures one graph per step shape (the kernels' arguments include jobs and datasets).
  void prepare(const ReplicaJob* jobs, const DatasetView* datasets, int n_replicas);

  // Trains the prepared chunk into params_out (device, n_replicas x param_count), then waits
  // for the stream and checks that the device counter passed every step of the table.
  void train(float* params_out);

  // Memory allocation and free nodes in the captured graphs: 0, or every replay would
  // allocate (cuBLAS does so when it has no workspace of its own). For the tests.
  std::size_t graph_memory_nodes() const;
  std::size_t graph_count() const { return graphs_.size(); }

 private:
  void bind() const;
  void enqueue_step(int batch);
  void gemm(cublasOperation_t op_a, cublasOperation_t op_b, int rows, int cols, int inner, const float* a, int lda,
            long long stride_a, const float* b, int ldb, long long stride_b, float* c, int ldc,
            long long stride_c) const;

  cublasHandle_t handle_;
  cudaStream_t stream_;
  NetShape shape_;
  int batch_capacity_, max_replicas_, n_params_, delta_stride_;
  float augmentation_std_;
  bool use_graph_;
  std::vector<cuda_plan::CublasStep> steps_;
  std::vector<cuda_plan::GraphRun> runs_;
  std::vector<std::uint32_t> shapes_;  // rows of graphs_[i]

  DeviceBuffer<unsigned char> workspace_;
  DeviceBuffer<cuda_plan::CublasStep> steps_device_;
  DeviceBuffer<std::uint32_t> cursor_;  // [0] the step counter, [1] set when a step's rows differ from its launch's
  DeviceBuffer<float> params_, grads_, moment1_, moment2_, targets_, delta_a_, delta_b_;
  std::vector<DeviceBuffer<float>> act_;

  // The prepared chunk.
  const ReplicaJob* jobs_ = nullptr;
  const DatasetView* datasets_ = nullptr;
  int replicas_ = -1, padded_ = 0;
  std::vector<CudaGraph> graphs_;
};

}  // namespace underspec::cuda
