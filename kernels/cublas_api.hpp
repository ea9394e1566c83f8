// cuBLAS, loaded on first use. Linking libcublas (and the ~0.5 GB libcublasLt behind it)
// costs every start of the program about 0.3 s of mapping, even for `--version` or a CPU
// run; only the cuBLAS training variant needs it, so it is opened with dlopen when that
// variant is first used. A missing library is a CudaError naming it.
#pragma once

#include <cublas_v2.h>

namespace underspec::cuda {

struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  decltype(&cublasSetWorkspace_v2) set_workspace;
  decltype(&cublasSgemmStridedBatched) sgemm_strided_batched;
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;
};

// The process-wide table (thread-safe first load).
const CublasApi& cublas();

}  // namespace underspec::cuda
