// Checking every CUDA runtime, cuBLAS and cuRAND call and every kernel launch: a failure
// throws underspec::CudaError naming the call, file:line and the library's error name.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>

#include "underspec/backends/cuda_error.hpp"

namespace underspec::cuda {

const char* curand_status_name(curandStatus_t status);

[[noreturn]] void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_curand_error(curandStatus_t status, const char* call, const char* file, int line);

inline void check_cuda(cudaError_t error, const char* call, const char* file, int line) {
  if (error != cudaSuccess) throw_cuda_error(error, call, file, line);
}
[[noreturn]] void throw_launch_error(cudaError_t error, const char* kernel, const char* file, int line);
inline void check_launch(cudaError_t error, const char* kernel, const char* file, int line) {
  if (error != cudaSuccess) throw_launch_error(error, kernel, file, line);
}
inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call, file, line);
}
inline void check_curand(curandStatus_t status, const char* call, const char* file, int line) {
  if (status != CURAND_STATUS_SUCCESS) throw_curand_error(status, call, file, line);
}

}  // namespace underspec::cuda

#define US_CUDA_CHECK(call) ::underspec::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define US_CUBLAS_CHECK(call) ::underspec::cuda::check_cublas((call), #call, __FILE__, __LINE__)
#define US_CURAND_CHECK(call) ::underspec::cuda::check_curand((call), #call, __FILE__, __LINE__)
// After every <<<...>>>: launch configuration errors surface here, asynchronous faults at
// the next checked synchronising call.
#define US_CUDA_CHECK_LAUNCH(kernel_name) \
  ::underspec::cuda::check_launch(cudaGetLastError(), (kernel_name), __FILE__, __LINE__)
