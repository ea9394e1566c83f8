// An owner (neither copied nor moved) of a cuBLAS handle (created through the dlopen'ed table, cublas_api.hpp).
// Creation failures throw CudaError; destruction never throws.
#pragma once

#include "cublas_api.hpp"
#include "cuda_check.hpp"

namespace underspec::cuda {

class CublasHandle {
 public:
  CublasHandle() { US_CUBLAS_CHECK(cublas().create(&handle_)); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  ~CublasHandle() { static_cast<void>(cublas().destroy(handle_)); }
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_{};
};

}  // namespace underspec::cuda
