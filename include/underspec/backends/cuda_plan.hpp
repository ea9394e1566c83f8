// Host-side planning of the CUDA backend, free of CUDA headers so that the CPU test suite
// runs it: kernel variants and options, the Adam step table, the placement of a replica's
// working set in shared or global memory, evaluation layouts and chunk sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "underspec/config/config.hpp"
#include "underspec/core/adam.hpp"
#include "underspec/core/adam_schedule.hpp"
#include "underspec/core/group_trainer.hpp"
#include "underspec/core/hd.hpp"
#include "underspec/core/model.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec::cuda_plan {

// How MLP replicas are trained (perceptrons always use the warp-per-replica kernel).
//   fused   one launch per chunk; a CTA per replica, one kernel for every shape (layer
//           widths read from the shape at run time). DEFAULT, chosen by design, NOT yet by
//           measurement: bench/gpu must confirm it beats cublas.
//   cublas  per step, cublasSgemmStridedBatched over the chunk's replicas plus small
//           element-wise kernels (the baseline variant of docs/ARCHITECTURE.md).
enum class TrainVariant { fused, cublas };

const char* to_string(TrainVariant variant);
bool parse_train_variant(const std::string& name, TrainVariant& out);

// The most launch groups one device trains at the same time (CudaBackendOptions).
constexpr int kMaxConcurrentGroups = 4;

struct CudaBackendOptions {
  TrainVariant variant = TrainVariant::fused;
  std::size_t max_chunk_replicas = 0;  // 0: as many as fit in device_memory_fraction
  double device_memory_fraction = 0.5;
  // Host memory a launch group's chunk may hold in parameter and result copies until the
  // sink has them (cuda_memory.hpp's host_chunk_limit): without it a chunk of 10^6
  // 3-64-64-1 replicas, which fits an H200, would hold ~36 GB on the host. Chunks do not
  // change results; 1 GiB is ~30000 such replicas, still many waves of the GPU.
  std::size_t host_chunk_bytes = std::size_t{1} << 30;
  // Fused MLP CTAs that should fit on one SM: the layout keeps each replica's shared memory
  // within 1/this of the SM's (regions that do not fit go to global memory), and the kernel
  // is compiled for two (__launch_bounds__), so 1 trades occupancy for shared memory.
  int fused_ctas_per_sm = 2;
  // cuBLAS variant: replay each step from a captured CUDA graph (true) or issue its launches
  // one by one (false; the same kernels, cuBLAS calls and order, so the same bits).
  bool cublas_graph = true;
  // Launch groups (one per network shape: the perceptrons, the MLPs) trained at the same
  // time, each from its own host thread on its own stream, so a group too small to fill the
  // GPU (the seed experiment's 30 perceptrons beside its 30 MLPs) runs beside the others
  // instead of after them. 1: one after another. Results do not depend on it.
  int concurrent_groups = kMaxConcurrentGroups;
  // Kernels told that their operands are in shared memory where the layout puts them there
  // (operands_in_shared); false: the generic kernels everywhere. The same bits either way.
  bool shared_operands = true;
};

// Perceptrons train one lane per replica (lane_train_perceptron) from this many replicas in
// a launch, one warp per replica (the group trainer) below it: a lane walks its samples 32
// times as sequentially, which only pays once lanes fill the GPU. Measured on an H200 (5
// epochs): 1000 replicas 3.5 ms by warps, 16.4 ms by lanes; 10^4 32.9 ms by warps, 16.4 by
// lanes. Both give the same bits.
constexpr int kPerceptronLaneMinReplicas = 4096;
inline bool perceptron_in_lanes(int n_replicas) { return n_replicas >= kPerceptronLaneMinReplicas; }

// The shared memory a fused MLP replica may use: the per-block opt-in limit, or less so that
// ctas_per_sm CTAs fit on one SM (each CTA also reserves 1 KiB of the SM's shared memory).
std::size_t fused_shared_budget(std::size_t per_block_optin, std::size_t per_sm, int ctas_per_sm);

// UNDERSPEC_CUDA_CTAS_PER_SM (1 or 2) into options; a null or empty value keeps it; a bad
// value throws std::invalid_argument naming the variable.
void ctas_per_sm_from_env(const char* value, CudaBackendOptions& options);

// UNDERSPEC_CUDA_GRAPH (1: replay the cuBLAS variant's steps from CUDA graphs, the default;
// 0: launch them one by one) into options; a null or empty value keeps it; any other value
// throws std::invalid_argument naming the variable.
void cublas_graph_from_env(const char* value, CudaBackendOptions& options);

// UNDERSPEC_CUDA_CONCURRENT_GROUPS (1 to kMaxConcurrentGroups) into options; a null or empty
// value keeps it; any other value throws std::invalid_argument naming the variable.
void concurrent_groups_from_env(const char* value, CudaBackendOptions& options);

// UNDERSPEC_CUDA_SHARED_OPERANDS (1, the default, or 0) into options; a null or empty value
// keeps it; any other value throws std::invalid_argument naming the variable.
void shared_operands_from_env(const char* value, CudaBackendOptions& options);

// Options from the environment: UNDERSPEC_CUDA_VARIANT (fused|cublas) and
// UNDERSPEC_CUDA_CHUNK (a positive replica count). Null values keep the defaults; a bad
// value throws std::invalid_argument naming the variable.
CudaBackendOptions options_from_env(const char* variant_value, const char* chunk_value);

// Adam scalars of every step of a training: index k holds step k + 1 at the StepLR rate of
// its epoch, exactly what cpu_trainer computes step by step.
using underspec::make_adam_table;  // adam_schedule.hpp

// A replica's working set of the fused training kernel, region by region. Regions are put
// in shared memory greedily in priority order (params, activations, moment1, moment2)
// while they fit `shared_limit_bytes`; the rest lives in a per-replica slice of global
// scratch. Offsets are in floats. (No gradient region: the group trainer's parallel step
// applies Adam as each gradient is made.)
enum Region { kParams = 0, kActivations = 1, kMoment1 = 2, kMoment2 = 3, kRegionCount = 4 };

struct FusedLayout {
  int threads = 0;  // per replica group (CTA, or 32 for the warp kernel)
  int batch_capacity = 0;
  bool in_shared[kRegionCount] = {};
  std::size_t offset[kRegionCount] = {};        // within shared memory or the global slice
  std::size_t size[kRegionCount] = {};          // floats
  std::size_t act_offset[kMaxLayers + 1] = {};  // within the activations region
  // Within the activations region too; the transposed weights only for nets that need them
  // (three layers: one matrix, four or more: two), else 0 floats at the same offset.
  std::size_t delta_a_offset = 0, delta_b_offset = 0, weights_t_offset = 0, weights_t2_offset = 0;
  std::size_t targets_offset = 0, next_input_offset = 0, next_targets_offset = 0, out_delta_offset = 0;
  std::size_t shared_floats = 0;  // per replica group
  std::size_t global_floats = 0;  // per replica
};

FusedLayout plan_fused_layout(const NetShape& shape, int batch_size, int threads, std::size_t shared_limit_bytes);

// A replica's working set under `layout`: each region in `shared` or in `global` (the
// replica's slice), written into `st`. The kernels keep `st` in shared memory, since the
// trainer indexes its activation table at run time (in registers it would go to the stack);
// the CPU tests use host arrays.
US_HD_INLINE void fill_replica_state(const FusedLayout& layout, const NetShape& shape, float* shared, float* global,
                                     ReplicaState& st) {
  const auto region = [&](int r) { return (layout.in_shared[r] ? shared : global) + layout.offset[r]; };
  st.params = region(kParams);
  st.grads = nullptr;
  st.moment1 = region(kMoment1);
  st.moment2 = region(kMoment2);
  float* act = region(kActivations);
  for (int l = 0; l <= shape.n_layers; ++l) st.buf.act[l] = act + layout.act_offset[l];
  st.buf.delta_a = act + layout.delta_a_offset;
  st.buf.delta_b = act + layout.delta_b_offset;
  st.buf.weights_t = act + layout.weights_t_offset;
  st.weights_t2 = act + layout.weights_t2_offset;
  st.targets = act + layout.targets_offset;
  st.next_input = act + layout.next_input_offset;
  st.next_targets = act + layout.next_targets_offset;
  st.out_delta = act + layout.out_delta_offset;
}

// Whether every operand of the trainer's products (group_gemm's A, B and C: parameters,
// activations, errors, transposed weights, the input rows) is in shared memory under
// `layout`: the parameters and the activations region are. The fused MLP kernel is then
// compiled to address them as shared memory.
US_HD_INLINE bool operands_in_shared(const FusedLayout& layout) {
  return layout.in_shared[kParams] && layout.in_shared[kActivations];
}

US_HD_INLINE ReplicaState replica_state(const FusedLayout& layout, const NetShape& shape, float* shared,
                                        float* global) {
  ReplicaState st{};
  fill_replica_state(layout, shape, shared, global, st);
  return st;
}

// Threads of the CTA that trains one MLP replica: enough for one 4x4 tile per thread of a
// batch x widest-layer product, a multiple of 32, in [64, 256].
int fused_threads(const NetShape& shape, int batch_size);

// Evaluation: one CTA per (replica, domain) forwards tiles of `rows` test samples.
struct EvalLayout {
  int threads = 0;
  int rows = 0;
  bool params_in_shared = false;
  bool activations_in_shared = false;
  std::size_t params_floats = 0, input_floats = 0, pingpong_floats = 0;  // pingpong: each of two
  std::size_t shared_bytes = 0;   // floats in shared memory + kEvalLanes doubles (partials)
  std::size_t global_floats = 0;  // per (replica, domain)
};

EvalLayout plan_eval_layout(const NetShape& shape, std::size_t shared_limit_bytes);

// Whether the evaluation's product operands (the staged parameters, the input rows and the
// ping-pong activations) are all in shared memory under `layout`.
inline bool operands_in_shared(const EvalLayout& layout) {
  return layout.params_in_shared && layout.activations_in_shared;
}

// Replicas per chunk: limited by the option (if > 0) and by fraction * free bytes. (The
// device memory of a launch group: cuda_memory.hpp.)
std::size_t plan_chunk_replicas(std::size_t n_replicas, std::size_t per_replica_bytes, std::size_t free_bytes,
                                double fraction, std::size_t max_chunk);

struct ChunkRange {
  std::size_t begin, end;
};
std::vector<ChunkRange> split_chunks(std::size_t n, std::size_t chunk);

// Positions of `replicas` grouped into what can share launches, each group in input order:
// replicas of one network shape whatever their grid cell (a fused launch reads each
// replica's settings from its cell's TrainRun), except MLPs of the cuBLAS variant, whose
// replicas step in lockstep and so also share the cell.
std::vector<std::vector<std::size_t>> launch_groups(const Sweep& sweep, std::span<const ReplicaSpec> replicas,
                                                    TrainVariant variant);

}  // namespace underspec::cuda_plan
