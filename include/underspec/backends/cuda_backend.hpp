// The CUDA backend with explicit options (variant, chunk size); make_cuda_backend() of
// backend.hpp reads them from UNDERSPEC_CUDA_VARIANT / UNDERSPEC_CUDA_CHUNK instead.
#pragma once

#include <memory>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cuda_plan.hpp"

namespace underspec {

// Throws BackendUnavailable when no device is usable.
std::unique_ptr<Backend> make_cuda_backend(const cuda_plan::CudaBackendOptions& options);

}  // namespace underspec
