// Choosing a backend by name.
#include <stdexcept>

#include "underspec/backends/backend.hpp"

namespace underspec {

std::unique_ptr<Backend> make_backend(const std::string& device, int threads, std::string* notice) {
  if (device == "cpu") return make_cpu_backend(threads);
  if (device == "cuda") {
    std::string why;
    if (!cuda_backend_available(&why)) throw BackendUnavailable("--device cuda: " + why);
    return make_cuda_backend();
  }
  if (device == "auto") {
    std::string why;
    if (cuda_backend_available(&why)) return make_cuda_backend();
    if (notice) *notice = "no usable CUDA device (" + why + "); using the CPU backend";
    return make_cpu_backend(threads);
  }
  throw std::invalid_argument("unknown device '" + device + "' (expected auto, cpu or cuda)");
}

}  // namespace underspec
