// cuBLAS strided-batched training (see train_cublas.hpp).
//
// Row-major [rows][cols] arrays are column-major [cols][rows] to cuBLAS, so with
// W_l row-major [fan_in][fan_out], act_l row-major [batch][width_l], delta [batch][fan_out]:
//   forward   act_l^T   = W_l^T  act_{l-1}^T        gemm(N, N, fan_out, batch, fan_in)
//   weights   dW_l^T    = delta^T act_{l-1}         gemm(N, T, fan_out, fan_in, batch)
//   errors    dprev^T   = W_l delta^T               gemm(T, N, fan_in, batch, fan_out)
#include <algorithm>
#include <vector>

#include "cublas_api.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "train_cublas.hpp"

namespace underspec::cuda {
namespace {

constexpr unsigned kThreads = 256;
// Every batched product is issued in slices of exactly this many replicas (the last one
// padded with zero replicas): cuBLAS picks its kernel (split-K or not, tile shape) from the
// problem, batch count included, so a varying count would make a replica's bits depend on
// how many replicas share its chunk (seen on an H200: chunks of 1 and 5 differed from 12).
constexpr int kSliceReplicas = 1024;

unsigned blocks_for(std::size_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

__global__ void init_kernel(NetShape shape, const ReplicaJob* jobs, int n_replicas, float* params, float* m, float* v) {
  const int n_params = param_count(shape);
  const std::size_t total = static_cast<std::size_t>(n_replicas) * n_params;
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= total) return;
  const auto r = static_cast<int>(k / n_params), i = static_cast<int>(k % n_params);
  params[k] = init_param(shape, jobs[r].seed, i);
  m[k] = 0.0f;
  v[k] = 0.0f;
}

__global__ void gather_kernel(const ReplicaJob* jobs, const DatasetView* datasets, int n_replicas,
                              float augmentation_std, std::uint32_t epoch, std::uint32_t start, int batch,
                              int batch_capacity, float* act0, float* targets) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= static_cast<std::size_t>(n_replicas) * batch) return;
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

__global__ void adam_kernel(float* params, const float* grads, float* m, float* v, std::size_t n, AdamStep step) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k < n) adam_update(params[k], grads[k], m[k], v[k], step);
}

}  // namespace

void train_cublas(cublasHandle_t handle, const CublasTrainLaunch& a, cudaStream_t stream) {
  if (a.n_replicas <= 0) return;
  const NetShape& s = a.shape;
  const int L = s.n_layers, R = a.n_replicas, cap = a.run.batch_size;
  const int padded = (R + kSliceReplicas - 1) / kSliceReplicas * kSliceReplicas;
  const int n_params = param_count(s), widest = max_width(s);
  const std::size_t total_params = static_cast<std::size_t>(R) * n_params;
  US_CUBLAS_CHECK(cublas().set_stream(handle, stream));
  US_CUBLAS_CHECK(cublas().set_math_mode(handle, CUBLAS_PEDANTIC_MATH));

  // Buffers the products read or write hold `padded` replicas; the padding is zeros, so the
  // padded replicas compute zeros and are never read back.
  const auto zeroed = [&](std::size_t floats) {
    DeviceBuffer<float> buffer(floats);
    US_CUDA_CHECK(cudaMemsetAsync(buffer.data(), 0, floats * sizeof(float), stream));
    return buffer;
  };
  const std::size_t padded_params = static_cast<std::size_t>(padded) * n_params;
  DeviceBuffer<float> params_buffer = zeroed(padded_params), grads = zeroed(padded_params);
  DeviceBuffer<float> m(total_params), v(total_params);
  std::vector<DeviceBuffer<float>> act;
  for (int l = 0; l <= L; ++l) act.push_back(zeroed(static_cast<std::size_t>(padded) * cap * s.width[l]));
  const int delta_stride = cap * widest;
  DeviceBuffer<float> targets(static_cast<std::size_t>(R) * cap);
  DeviceBuffer<float> delta_a = zeroed(static_cast<std::size_t>(padded) * delta_stride),
                      delta_b = zeroed(static_cast<std::size_t>(padded) * delta_stride);
  float* params = params_buffer.data();

  init_kernel<<<blocks_for(total_params), kThreads, 0, stream>>>(s, a.jobs, R, params, m.data(), v.data());
  US_CUDA_CHECK_LAUNCH("init_kernel");

  const float one = 1.0f, zero = 0.0f;
  const long long stride_params = n_params, stride_delta = delta_stride;
  const auto stride_act = [&](int l) { return static_cast<long long>(cap) * s.width[l]; };
  // C_r = A_r B_r for every replica r, in fixed-size slices (see kSliceReplicas).
  const auto batched = [&](cublasOperation_t op_a, cublasOperation_t op_b, int rows, int cols, int inner,
                           const float* a_ptr, int lda, long long stride_a, const float* b_ptr, int ldb,
                           long long stride_b, float* c_ptr, int ldc, long long stride_c) {
    for (long long r0 = 0; r0 < padded; r0 += kSliceReplicas)
      US_CUBLAS_CHECK(cublas().sgemm_strided_batched(handle, op_a, op_b, rows, cols, inner, &one, a_ptr + r0 * stride_a,
                                                     lda, stride_a, b_ptr + r0 * stride_b, ldb, stride_b, &zero,
                                                     c_ptr + r0 * stride_c, ldc, stride_c, kSliceReplicas));
  };
  const std::uint32_t n = a.n_train, batch_size = static_cast<std::uint32_t>(cap);
  int step = 0;
  for (int epoch = 0; epoch < a.run.epochs; ++epoch) {
    for (std::uint32_t start = 0; start < n; start += batch_size) {
      const int batch = static_cast<int>(std::min(batch_size, n - start));
      const std::size_t rows = static_cast<std::size_t>(R) * batch;
      gather_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(a.jobs, a.datasets, R, a.run.augmentation_std,
                                                               static_cast<std::uint32_t>(epoch), start, batch, cap,
                                                               act[0].data(), targets.data());
      US_CUDA_CHECK_LAUNCH("gather_kernel");
      for (int l = 1; l <= L; ++l) {
        const int fan_in = s.width[l - 1], fan_out = s.width[l];
        batched(CUBLAS_OP_N, CUBLAS_OP_N, fan_out, batch, fan_in, params + weight_offset(s, l), fan_out, stride_params,
                act[l - 1].data(), fan_in, stride_act(l - 1), act[l].data(), fan_out, stride_act(l));
        bias_activation_kernel<<<blocks_for(rows * fan_out), kThreads, 0, stream>>>(
            act[l].data(), fan_out, batch, cap, params, n_params, bias_offset(s, l), R, l < L ? 1 : 0);
        US_CUDA_CHECK_LAUNCH("bias_activation_kernel");
      }
      output_delta_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(act[L].data(), targets.data(), batch, cap,
                                                                     delta_stride, R, delta_a.data());
      US_CUDA_CHECK_LAUNCH("output_delta_kernel");
      float* delta = delta_a.data();
      float* delta_prev = delta_b.data();
      for (int l = L; l >= 1; --l) {
        const int fan_in = s.width[l - 1], fan_out = s.width[l];
        batched(CUBLAS_OP_N, CUBLAS_OP_T, fan_out, fan_in, batch, delta, fan_out, stride_delta, act[l - 1].data(),
                fan_in, stride_act(l - 1), grads.data() + weight_offset(s, l), fan_out, stride_params);
        bias_grad_kernel<<<blocks_for(static_cast<std::size_t>(R) * fan_out), kThreads, 0, stream>>>(
            delta, fan_out, batch, delta_stride, grads.data(), n_params, bias_offset(s, l), R);
        US_CUDA_CHECK_LAUNCH("bias_grad_kernel");
        if (l == 1) break;
        batched(CUBLAS_OP_T, CUBLAS_OP_N, fan_in, batch, fan_out, params + weight_offset(s, l), fan_out, stride_params,
                delta, fan_out, stride_delta, delta_prev, fan_in, stride_delta);
        relu_mask_kernel<<<blocks_for(rows * fan_in), kThreads, 0, stream>>>(delta_prev, act[l - 1].data(), fan_in,
                                                                             batch, cap, delta_stride, R);
        US_CUDA_CHECK_LAUNCH("relu_mask_kernel");
        std::swap(delta, delta_prev);
      }
      if (step >= a.n_steps) throw CudaError("train_cublas", __FILE__, __LINE__, "step table", "too few Adam steps");
      adam_kernel<<<blocks_for(total_params), kThreads, 0, stream>>>(params, grads.data(), m.data(), v.data(),
                                                                     total_params, a.run.adam_steps[step++]);
      US_CUDA_CHECK_LAUNCH("adam_kernel");
    }
  }
  US_CUDA_CHECK(cudaMemcpyAsync(a.params_out, params, total_params * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  // The scratch buffers are freed on return: wait for the work that uses them.
  US_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace underspec::cuda
