// CudaError's message: "<call> failed at <file>:<line>: <error name>[ (<detail>)]".
#include "underspec/backends/cuda_error.hpp"

#include <utility>

namespace underspec {

static std::string cuda_error_message(const std::string& call, const std::string& file, int line,
                                      const std::string& error_name, const std::string& detail) {
  std::string message = call + " failed at " + file + ":" + std::to_string(line) + ": " + error_name;
  if (!detail.empty()) message += " (" + detail + ")";
  return message;
}

CudaError::CudaError(std::string call, std::string file, int line, std::string error_name, std::string detail)
    : std::runtime_error(cuda_error_message(call, file, line, error_name, detail)),
      call_(std::move(call)),
      file_(std::move(file)),
      line_(line),
      error_name_(std::move(error_name)) {}

}  // namespace underspec
