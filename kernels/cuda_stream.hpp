// An owned non-blocking CUDA stream. Non-blocking: it does not synchronise with the legacy
// default stream; and unlike that stream it can be captured into a CUDA graph.
#pragma once

#include "cuda_check.hpp"

namespace underspec::cuda {

class CudaStream {
 public:
  CudaStream() { US_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  ~CudaStream() { static_cast<void>(cudaStreamDestroy(stream_)); }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_{};
};

}  // namespace underspec::cuda
