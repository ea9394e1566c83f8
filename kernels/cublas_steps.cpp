// The cuBLAS variant's step table and graph schedule (see cublas_steps.hpp); no CUDA calls,
// CPU-tested.
#include "underspec/backends/cublas_steps.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace underspec::cuda_plan {

std::vector<CublasStep> make_cublas_steps(int epochs, int batch_size, std::uint32_t n, std::span<const AdamStep> adam) {
  if (batch_size < 1) throw std::invalid_argument("cuBLAS step table: batch size must be positive");
  const auto batch = static_cast<std::uint32_t>(batch_size);
  std::vector<CublasStep> steps;
  for (int epoch = 0; epoch < epochs; ++epoch)
    for (std::uint32_t start = 0; start < n; start += batch) {
      if (steps.size() >= adam.size())
        throw std::invalid_argument("cuBLAS step table: " + std::to_string(adam.size()) +
                                    " Adam steps for more minibatch steps");
      steps.push_back(
          CublasStep{static_cast<std::uint32_t>(epoch), start, std::min(batch, n - start), adam[steps.size()]});
    }
  return steps;
}

std::vector<GraphRun> graph_runs(std::span<const CublasStep> steps) {
  std::vector<GraphRun> runs;
  for (const CublasStep& s : steps)
    if (!runs.empty() && runs.back().rows == s.rows)
      ++runs.back().count;
    else
      runs.push_back(GraphRun{s.rows, 1});
  return runs;
}

std::vector<std::uint32_t> graph_shapes(std::span<const GraphRun> runs) {
  std::vector<std::uint32_t> shapes;
  for (const GraphRun& r : runs)
    if (std::find(shapes.begin(), shapes.end(), r.rows) == shapes.end()) shapes.push_back(r.rows);
  return shapes;
}

}  // namespace underspec::cuda_plan
