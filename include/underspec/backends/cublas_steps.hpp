// The cuBLAS variant's per-step table and its CUDA-graph replay schedule, free of CUDA
// headers so that the CPU test suite checks them.
//
// The cuBLAS variant steps all replicas of a chunk in lockstep. Everything that changes from
// one minibatch step to the next (epoch, first sample, rows, Adam's scalars) lives in this
// table on the device; the step's kernels read entry [*counter] and the step's last kernel
// increments the device counter. So one step's launches can be captured once in a CUDA graph
// and replayed for every step: a graph's kernel arguments are fixed at capture. Only the rows
// of a step change the launch shapes (GEMM sizes, grids), and they take at most two values:
// the batch size and the smaller last minibatch of an epoch. One graph is captured per
// distinct row count and replayed in the runs below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "underspec/core/adam.hpp"

namespace underspec::cuda_plan {

struct CublasStep {
  std::uint32_t epoch;  // 0-based
  std::uint32_t start;  // first position of the epoch's permutation
  std::uint32_t rows;   // samples in this minibatch
  AdamStep adam;        // the scalars of this Adam step (StepLR included)
};

// Every minibatch step of a training in order, as for_each_minibatch walks them: epochs x
// ceil(n / batch_size) entries, entry k with adam[k]. Throws std::invalid_argument when
// batch_size < 1 or adam has fewer entries than steps.
std::vector<CublasStep> make_cublas_steps(int epochs, int batch_size, std::uint32_t n, std::span<const AdamStep> adam);

// Consecutive steps with the same row count: replay the graph of `rows` `count` times.
struct GraphRun {
  std::uint32_t rows;
  std::size_t count;
};
std::vector<GraphRun> graph_runs(std::span<const CublasStep> steps);

// The distinct row counts of `runs` in order of first use (one captured graph each).
std::vector<std::uint32_t> graph_shapes(std::span<const GraphRun> runs);

}  // namespace underspec::cuda_plan
