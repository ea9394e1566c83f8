// A move-only owner of a CUDA graph captured from a stream and its executable instance
// (like DeviceBuffer: destruction never throws).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "cuda_check.hpp"

namespace underspec::cuda {

class CudaGraph {
 public:
  CudaGraph() = default;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  CudaGraph(CudaGraph&& other) noexcept
      : graph_(std::exchange(other.graph_, nullptr)), exec_(std::exchange(other.exec_, nullptr)) {}
  CudaGraph& operator=(CudaGraph&& other) noexcept {
    if (this != &other) {
      release();
      graph_ = std::exchange(other.graph_, nullptr);
      exec_ = std::exchange(other.exec_, nullptr);
    }
    return *this;
  }
  ~CudaGraph() { release(); }

  // Captures what enqueue() issues on `stream` (a created stream: the legacy default stream
  // cannot be captured), instantiates it and uploads it to the device, so that the first
  // launch costs no more than the others. Thread-local capture mode: only this thread's
  // capture-unsafe calls (cudaMalloc, synchronisation) fail meanwhile, not those of other
  // host threads (one per device with several GPUs). If enqueue() throws, the capture is
  // ended so that the stream stays usable, and the exception propagates.
  template <class Enqueue>
  static CudaGraph capture(cudaStream_t stream, Enqueue&& enqueue) {
    US_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    CudaGraph out;
    try {
      enqueue();
    } catch (...) {
      cudaGraph_t broken = nullptr;
      static_cast<void>(cudaStreamEndCapture(stream, &broken));
      if (broken) static_cast<void>(cudaGraphDestroy(broken));
      throw;
    }
    US_CUDA_CHECK(cudaStreamEndCapture(stream, &out.graph_));
    US_CUDA_CHECK(cudaGraphInstantiate(&out.exec_, out.graph_, 0));
    US_CUDA_CHECK(cudaGraphUpload(out.exec_, stream));
    return out;
  }

  void launch(cudaStream_t stream) const { US_CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

  // Nodes of `type` in the captured graph (e.g. cudaGraphNodeTypeMemAlloc: an allocation at
  // every replay).
  std::size_t count_nodes(cudaGraphNodeType type) const {
    std::size_t n = 0;
    US_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &n));
    std::vector<cudaGraphNode_t> nodes(n);
    if (n) US_CUDA_CHECK(cudaGraphGetNodes(graph_, nodes.data(), &n));
    std::size_t count = 0;
    for (cudaGraphNode_t node : nodes) {
      cudaGraphNodeType t{};
      US_CUDA_CHECK(cudaGraphNodeGetType(node, &t));
      count += t == type;
    }
    return count;
  }

 private:
  void release() noexcept {
    if (exec_) static_cast<void>(cudaGraphExecDestroy(exec_));
    if (graph_) static_cast<void>(cudaGraphDestroy(graph_));
    exec_ = nullptr;
    graph_ = nullptr;
  }
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace underspec::cuda
