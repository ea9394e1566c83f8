// The CUDA backend with explicit options (variant, chunk size); make_cuda_backend(gpus) of
// backend.hpp reads them from UNDERSPEC_CUDA_VARIANT / UNDERSPEC_CUDA_CHUNK instead.
#pragma once

#include <memory>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cuda_plan.hpp"

namespace underspec {

// Throws BackendUnavailable when no device is usable. Bound to the current device.
std::unique_ptr<Backend> make_cuda_backend(const cuda_plan::CudaBackendOptions& options);

// A backend bound to `device`: train() calls cudaSetDevice(device) first, in the calling
// thread. Throws BackendUnavailable when no device is usable or `device` is not one.
std::unique_ptr<Backend> make_cuda_device_backend(int device, const cuda_plan::CudaBackendOptions& options);

}  // namespace underspec
