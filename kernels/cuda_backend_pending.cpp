// Temporary: the CUDA backend is being built (issue 3); until then --device cuda says so.
#include "underspec/backend.hpp"

namespace underspec {

bool cuda_backend_available(std::string* why) {
  if (why) *why = "the CUDA backend is not built yet";
  return false;
}

std::unique_ptr<Backend> make_cuda_backend() { throw BackendUnavailable("the CUDA backend is not built yet"); }

}  // namespace underspec
