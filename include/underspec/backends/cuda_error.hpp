// The typed error of the CUDA backend: which call failed, where, and CUDA's name for the
// error. Plain C++ (no CUDA headers), so host code and tests can catch and inspect it.
#pragma once

#include <stdexcept>
#include <string>

namespace underspec {

class CudaError : public std::runtime_error {
 public:
  CudaError(std::string call, std::string file, int line, std::string error_name, std::string detail = {});
  const std::string& call() const { return call_; }
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& error_name() const { return error_name_; }

 private:
  std::string call_, file_;
  int line_;
  std::string error_name_;
};

}  // namespace underspec
