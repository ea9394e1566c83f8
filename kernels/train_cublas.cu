// cuBLAS strided-batched training (see train_cublas.hpp).
//
// Row-major [rows][cols] arrays are column-major [cols][rows] to cuBLAS, so with
// W_l row-major [fan_in][fan_out], act_l row-major [batch][width_l], delta [batch][fan_out]:
//   forward   act_l^T   = W_l^T  act_{l-1}^T        gemm(N, N, fan_out, batch, fan_in)
//   weights   dW_l^T    = delta^T act_{l-1}         gemm(N, T, fan_out, fan_in, batch)
//   errors    dprev^T   = W_l delta^T               gemm(T, N, fan_in, batch, fan_out)
#include <algorithm>
#include <string>
#include <vector>

#include "cublas_api.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "train_cublas.hpp"
#include "underspec/backends/cuda_memory.hpp"

namespace underspec::cuda {
namespace {

constexpr unsigned kThreads = 256;
// Every batched product is issued in slices of exactly this many replicas (the last one
// padded with zero replicas): cuBLAS picks its kernel (split-K or not, tile shape) from the
// problem, batch count included, so a varying count would make a replica's bits depend on
// how many replicas share its chunk (seen on an H200: chunks of 1 and 5 differed from 12).
constexpr int kSliceReplicas = static_cast<int>(cuda_plan::kCublasSliceReplicas);

int padded_replicas(int replicas) {
  return static_cast<int>(cuda_plan::cublas_padded_replicas(static_cast<std::size_t>(replicas)));
}

unsigned blocks_for(std::size_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

__global__ void init_kernel(NetShape shape_arg, const ReplicaJob* jobs, int n_replicas, float* params, float* m,
                            float* v) {
  // init_param indexes the widths at run time: from shared memory, not a stack copy of the argument.
  __shared__ NetShape shape;
  if (threadIdx.x == 0) shape = shape_arg;
  __syncthreads();
  const int n_params = param_count(shape);
  const std::size_t total = static_cast<std::size_t>(n_replicas) * n_params;
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= total) return;
  const auto r = static_cast<int>(k / n_params), i = static_cast<int>(k % n_params);
  params[k] = init_param(shape, jobs[r].seed, i);
  m[k] = 0.0f;
  v[k] = 0.0f;
}

// The step's epoch, start and rows come from the table at the device counter (cursor[0]);
// `batch` is the rows this launch (and the step's products) were shaped for. A table entry
// with other rows means the host replayed the wrong graph: flagged in cursor[1], checked
// after training.
__global__ void gather_kernel(const ReplicaJob* jobs, const DatasetView* datasets, int n_replicas,
                              float augmentation_std, const cuda_plan::CublasStep* steps, std::uint32_t* cursor,
                              int batch, int batch_capacity, float* act0, float* targets) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= static_cast<std::size_t>(n_replicas) * batch) return;
  const cuda_plan::CublasStep& step = steps[cursor[0]];
  if (step.rows != static_cast<std::uint32_t>(batch)) {
    cursor[1] = 1;
    return;
  }
  const std::uint32_t epoch = step.epoch, start = step.start;
  const auto r = static_cast<int>(k / batch), b = static_cast<int>(k % batch);
  const ReplicaJob job = jobs[r];
  const DatasetView data = datasets[job.dataset];
  const EpochPermutation perm = make_epoch_permutation(data.n, job.seed, epoch);
  const std::size_t row0 = static_cast<std::size_t>(r) * batch_capacity;
  gather_rows(data, perm, job, augmentation_std, epoch, start, b, batch, b + 1, act0 + row0 * kFeatures,
              targets + row0);
}

// act[r][b][j] += bias_r[j], then ReLU for hidden layers.
__global__ void bias_activation_kernel(float* act, int width, int batch, int batch_capacity, const float* params,
                                       int n_params, int bias_offset, int n_replicas, int hidden) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t per_replica = static_cast<std::size_t>(batch) * width;
  if (k >= per_replica * n_replicas) return;
  const auto r = static_cast<int>(k / per_replica), e = static_cast<int>(k % per_replica);
  float& x = act[static_cast<std::size_t>(r) * batch_capacity * width + e];
  x = x + params[static_cast<std::size_t>(r) * n_params + bias_offset + e % width];
  if (hidden) x = relu(x);
}

__global__ void output_delta_kernel(const float* predictions, const float* targets, int batch, int batch_capacity,
                                    int delta_stride, int n_replicas, float* delta) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= static_cast<std::size_t>(n_replicas) * batch) return;
  const auto r = static_cast<int>(k / batch), b = static_cast<int>(k % batch);
  const std::size_t row = static_cast<std::size_t>(r) * batch_capacity + b;
  delta[static_cast<std::size_t>(r) * delta_stride + b] =
      mse_grad(predictions[row], targets[row], 2.0f / static_cast<float>(batch));
}

// grad_bias_r[j] = sum_b delta_r[b][j] in ascending b (as group_backward).
__global__ void bias_grad_kernel(const float* delta, int width, int batch, int delta_stride, float* grads, int n_params,
                                 int bias_offset, int n_replicas) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= static_cast<std::size_t>(n_replicas) * width) return;
  const auto r = static_cast<int>(k / width), j = static_cast<int>(k % width);
  grads[static_cast<std::size_t>(r) * n_params + bias_offset + j] =
      bias_grad(delta + static_cast<std::size_t>(r) * delta_stride, batch, width, j);
}

__global__ void relu_mask_kernel(float* delta, const float* act, int width, int batch, int batch_capacity,
                                 int delta_stride, int n_replicas) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t per_replica = static_cast<std::size_t>(batch) * width;
  if (k >= per_replica * n_replicas) return;
  const auto r = static_cast<int>(k / per_replica), e = static_cast<int>(k % per_replica);
  float& d = delta[static_cast<std::size_t>(r) * delta_stride + e];
  d = relu_gate(d, act[static_cast<std::size_t>(r) * batch_capacity * width + e]);
}

// Adam's scalars of the step at the device counter.
__global__ void adam_kernel(float* params, const float* grads, float* m, float* v, std::size_t n,
                            const cuda_plan::CublasStep* steps, const std::uint32_t* cursor) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k < n) adam_update(params[k], grads[k], m[k], v[k], steps[cursor[0]].adam);
}

// A step's last launch: the next step reads the next table entry.
__global__ void advance_step_kernel(std::uint32_t* cursor) { ++cursor[0]; }

int compute_capability_major() {
  int device = 0, major = 0;
  US_CUDA_CHECK(cudaGetDevice(&device));
  US_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major;
}

}  // namespace

CublasTrainer::CublasTrainer(cublasHandle_t handle, const CublasTrainSetup& setup, cudaStream_t stream)
    : handle_(handle),
      stream_(stream),
      shape_(setup.shape),
      batch_capacity_(setup.batch_size),
      max_replicas_(setup.max_replicas),
      n_params_(param_count(setup.shape)),
      delta_stride_(setup.batch_size * max_width(setup.shape)),
      augmentation_std_(setup.augmentation_std),
      use_graph_(setup.use_graph),
      steps_(cuda_plan::make_cublas_steps(setup.epochs, setup.batch_size, setup.n_train, setup.adam)),
      runs_(cuda_plan::graph_runs(steps_)),
      shapes_(cuda_plan::graph_shapes(runs_)),
      workspace_(cuda_plan::cublas_workspace_bytes(compute_capability_major())),
      steps_device_(to_device(steps_, stream)),
      cursor_(2) {
  if (max_replicas_ <= 0) return;
  // Sized by cuda_plan::cublas_buffers, which the chunk planning counts too.
  const cuda_plan::CublasBuffers sizes = cuda_plan::cublas_buffers(
      shape_, batch_capacity_, steps_.size(), static_cast<std::size_t>(max_replicas_), compute_capability_major());
  params_ = DeviceBuffer<float>(sizes.params);
  grads_ = DeviceBuffer<float>(sizes.grads);
  moment1_ = DeviceBuffer<float>(sizes.moment1);
  moment2_ = DeviceBuffer<float>(sizes.moment2);
  for (std::size_t floats : sizes.act) act_.emplace_back(floats);
  targets_ = DeviceBuffer<float>(sizes.targets);
  delta_a_ = DeviceBuffer<float>(sizes.delta_a);
  delta_b_ = DeviceBuffer<float>(sizes.delta_b);
  bind();
}

CublasTrainer::~CublasTrainer() {
  // Setting the stream returns the handle to cuBLAS's own workspace pool (cublasSetStream),
  // so the handle never keeps a pointer to the workspace freed here.
  static_cast<void>(cublas().set_stream(handle_, nullptr));
}

// The handle's stream, workspace and math mode, set again before each use since another
// trainer may share the handle. The same workspace in both paths: cuBLAS may choose its
// kernels by the workspace it has.
void CublasTrainer::bind() const {
  US_CUBLAS_CHECK(cublas().set_stream(handle_, stream_));  // resets the workspace: set it after
  US_CUBLAS_CHECK(cublas().set_workspace(handle_, workspace_.data(), workspace_.size()));
  US_CUBLAS_CHECK(cublas().set_math_mode(handle_, CUBLAS_PEDANTIC_MATH));
}

void CublasTrainer::prepare(const ReplicaJob* jobs, const DatasetView* datasets, int n_replicas) {
  if (n_replicas > max_replicas_)
    throw CudaError("CublasTrainer::prepare", __FILE__, __LINE__, "chunk size",
                    std::to_string(n_replicas) + " replicas for a trainer of " + std::to_string(max_replicas_));
  graphs_.clear();
  jobs_ = jobs;
  datasets_ = datasets;
  replicas_ = n_replicas;
  padded_ = n_replicas > 0 ? padded_replicas(n_replicas) : 0;
  if (n_replicas <= 0) return;
  bind();
  // The products read `padded_` replicas; the padding must be zeros (then it computes zeros
  // and stays zero), also where an earlier, larger chunk left values.
  const auto zero = [&](const DeviceBuffer<float>& buffer, std::size_t per_replica) {
    US_CUDA_CHECK(
        cudaMemsetAsync(buffer.data(), 0, static_cast<std::size_t>(padded_) * per_replica * sizeof(float), stream_));
  };
  const auto cap = static_cast<std::size_t>(batch_capacity_);
  zero(params_, static_cast<std::size_t>(n_params_));
  zero(grads_, static_cast<std::size_t>(n_params_));
  for (int l = 0; l <= shape_.n_layers; ++l) zero(act_[static_cast<std::size_t>(l)], cap * shape_.width[l]);
  zero(delta_a_, static_cast<std::size_t>(delta_stride_));
  zero(delta_b_, static_cast<std::size_t>(delta_stride_));
  if (use_graph_)
    for (std::uint32_t rows : shapes_)
      graphs_.push_back(CudaGraph::capture(stream_, [&] { enqueue_step(static_cast<int>(rows)); }));
}

std::size_t CublasTrainer::graph_memory_nodes() const {
  std::size_t n = 0;
  for (const CudaGraph& g : graphs_)
    n += g.count_nodes(cudaGraphNodeTypeMemAlloc) + g.count_nodes(cudaGraphNodeTypeMemFree);
  return n;
}

// C_r = A_r B_r for every replica r, in fixed-size slices (see kSliceReplicas).
void CublasTrainer::gemm(cublasOperation_t op_a, cublasOperation_t op_b, int rows, int cols, int inner, const float* a,
                         int lda, long long stride_a, const float* b, int ldb, long long stride_b, float* c, int ldc,
                         long long stride_c) const {
  const float one = 1.0f, zero = 0.0f;  // host pointer mode: a graph keeps the values
  for (long long r0 = 0; r0 < padded_; r0 += kSliceReplicas)
    US_CUBLAS_CHECK(cublas().sgemm_strided_batched(handle_, op_a, op_b, rows, cols, inner, &one, a + r0 * stride_a, lda,
                                                   stride_a, b + r0 * stride_b, ldb, stride_b, &zero, c + r0 * stride_c,
                                                   ldc, stride_c, kSliceReplicas));
}

// One minibatch step of `batch` rows: the launches a graph captures, or that are issued
// directly without graphs.
void CublasTrainer::enqueue_step(int batch) {
  const NetShape& s = shape_;
  const int L = s.n_layers, R = replicas_, cap = batch_capacity_;
  const std::size_t rows = static_cast<std::size_t>(R) * batch;
  const std::size_t total_params = static_cast<std::size_t>(R) * n_params_;
  const long long stride_params = n_params_, stride_delta = delta_stride_;
  const auto stride_act = [&](int l) { return static_cast<long long>(cap) * s.width[l]; };
  const auto act = [&](int l) { return act_[static_cast<std::size_t>(l)].data(); };
  float* params = params_.data();
  float* grads = grads_.data();
  gather_kernel<<<blocks_for(rows), kThreads, 0, stream_>>>(jobs_, datasets_, R, augmentation_std_,
                                                            steps_device_.data(), cursor_.data(), batch, cap, act(0),
                                                            targets_.data());
  US_CUDA_CHECK_LAUNCH("gather_kernel");
  for (int l = 1; l <= L; ++l) {
    const int fan_in = s.width[l - 1], fan_out = s.width[l];
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, fan_out, batch, fan_in, params + weight_offset(s, l), fan_out, stride_params,
         act(l - 1), fan_in, stride_act(l - 1), act(l), fan_out, stride_act(l));
    bias_activation_kernel<<<blocks_for(rows * fan_out), kThreads, 0, stream_>>>(
        act(l), fan_out, batch, cap, params, n_params_, bias_offset(s, l), R, l < L ? 1 : 0);
    US_CUDA_CHECK_LAUNCH("bias_activation_kernel");
  }
  output_delta_kernel<<<blocks_for(rows), kThreads, 0, stream_>>>(act(L), targets_.data(), batch, cap, delta_stride_, R,
                                                                  delta_a_.data());
  US_CUDA_CHECK_LAUNCH("output_delta_kernel");
  float* delta = delta_a_.data();
  float* delta_prev = delta_b_.data();
  for (int l = L; l >= 1; --l) {
    const int fan_in = s.width[l - 1], fan_out = s.width[l];
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, fan_out, fan_in, batch, delta, fan_out, stride_delta, act(l - 1), fan_in,
         stride_act(l - 1), grads + weight_offset(s, l), fan_out, stride_params);
    bias_grad_kernel<<<blocks_for(static_cast<std::size_t>(R) * fan_out), kThreads, 0, stream_>>>(
        delta, fan_out, batch, delta_stride_, grads, n_params_, bias_offset(s, l), R);
    US_CUDA_CHECK_LAUNCH("bias_grad_kernel");
    if (l == 1) break;
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, fan_in, batch, fan_out, params + weight_offset(s, l), fan_out, stride_params, delta,
         fan_out, stride_delta, delta_prev, fan_in, stride_delta);
    relu_mask_kernel<<<blocks_for(rows * fan_in), kThreads, 0, stream_>>>(delta_prev, act(l - 1), fan_in, batch, cap,
                                                                          delta_stride_, R);
    US_CUDA_CHECK_LAUNCH("relu_mask_kernel");
    std::swap(delta, delta_prev);
  }
  adam_kernel<<<blocks_for(total_params), kThreads, 0, stream_>>>(params, grads, moment1_.data(), moment2_.data(),
                                                                  total_params, steps_device_.data(), cursor_.data());
  US_CUDA_CHECK_LAUNCH("adam_kernel");
  advance_step_kernel<<<1, 1, 0, stream_>>>(cursor_.data());
  US_CUDA_CHECK_LAUNCH("advance_step_kernel");
}

void CublasTrainer::train(float* params_out) {
  if (replicas_ < 0) throw CudaError("CublasTrainer::train", __FILE__, __LINE__, "not prepared");
  if (replicas_ == 0) return;
  bind();
  const std::size_t total_params = static_cast<std::size_t>(replicas_) * n_params_;
  US_CUDA_CHECK(cudaMemsetAsync(cursor_.data(), 0, cursor_.size() * sizeof(std::uint32_t), stream_));
  init_kernel<<<blocks_for(total_params), kThreads, 0, stream_>>>(shape_, jobs_, replicas_, params_.data(),
                                                                  moment1_.data(), moment2_.data());
  US_CUDA_CHECK_LAUNCH("init_kernel");
  if (use_graph_) {
    for (const cuda_plan::GraphRun& run : runs_) {
      const auto shape = std::find(shapes_.begin(), shapes_.end(), run.rows) - shapes_.begin();
      for (std::size_t k = 0; k < run.count; ++k) graphs_[static_cast<std::size_t>(shape)].launch(stream_);
    }
  } else {
    for (const cuda_plan::CublasStep& step : steps_) enqueue_step(static_cast<int>(step.rows));
  }
  US_CUDA_CHECK(
      cudaMemcpyAsync(params_out, params_.data(), total_params * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  std::uint32_t cursor[2] = {};
  cursor_.download(cursor, 2, stream_);
  US_CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (cursor[0] != steps_.size() || cursor[1] != 0)
    throw CudaError("CublasTrainer::train", __FILE__, __LINE__, "step table",
                    "the device passed " + std::to_string(cursor[0]) + " of " + std::to_string(steps_.size()) +
                        " steps" + (cursor[1] ? ", some with other rows than their launch" : ""));
}
}  // namespace underspec::cuda
