// dlopen of cuBLAS (see cublas_api.hpp).
#include "cublas_api.hpp"

#include <dlfcn.h>

#include <string>

#include "underspec/backends/cuda_error.hpp"

namespace underspec::cuda {
namespace {

#define US_STRINGIFY2(x) #x
#define US_STRINGIFY(x) US_STRINGIFY2(x)
constexpr const char* kLibrary = "libcublas.so." US_STRINGIFY(CUBLAS_VER_MAJOR);

template <class Function>
Function symbol(void* library, const char* name) {
  void* address = dlsym(library, name);
  if (!address) throw CudaError(std::string("dlsym(") + name + ")", __FILE__, __LINE__, "symbol not found", kLibrary);
  return reinterpret_cast<Function>(address);
}

CublasApi load() {
  void* library = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char* why = dlerror();
    throw CudaError(std::string("dlopen(") + kLibrary + ")", __FILE__, __LINE__, "library not loadable",
                    why ? why : "");
  }
  return CublasApi{
      symbol<decltype(&cublasCreate_v2)>(library, "cublasCreate_v2"),
      symbol<decltype(&cublasDestroy_v2)>(library, "cublasDestroy_v2"),
      symbol<decltype(&cublasSetStream_v2)>(library, "cublasSetStream_v2"),
      symbol<decltype(&cublasSetMathMode)>(library, "cublasSetMathMode"),
      symbol<decltype(&cublasSetWorkspace_v2)>(library, "cublasSetWorkspace_v2"),
      symbol<decltype(&cublasSgemmStridedBatched)>(library, "cublasSgemmStridedBatched"),
      symbol<decltype(&cublasGetStatusName)>(library, "cublasGetStatusName"),
      symbol<decltype(&cublasGetStatusString)>(library, "cublasGetStatusString"),
  };
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load();  // the library stays loaded for the process
  return api;
}

}  // namespace underspec::cuda
