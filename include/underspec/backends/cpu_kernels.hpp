// The CPU backend's hot code (the group trainer run by one rank, the test-set scoring, and the
// bootstrap's resamples), compiled once per x86 instruction-set level in translation units of
// their own (src/backends/cpu/isa/): `avx512` (-mavx512f/vl/bw/dq -mfma), `avx2` (-mavx2 -mfma) and
// `portable` (no flags: any x86-64, and the only level on other machines). The binary is
// portable; the level is chosen once at run time from what the CPU supports, or forced with
// the environment variable UNDERSPEC_CPU_KERNELS=auto|avx512|avx2|portable.
//
// Every level computes the same thing bit for bit (the products' contract in model.hpp:
// explicit fused multiply-adds in a fixed order; the portable level gets fmaf from the C
// library, a slow call on x86-64 without -mfma). Tests compare the levels.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "underspec/core/group_trainer.hpp"
#include "underspec/stats/bootstrap.hpp"

namespace underspec {

enum class CpuIsa { portable, avx2, avx512 };

// The entry points of one level.
struct CpuKernels {
  CpuIsa isa;
  const char* name;  // "avx512", "avx2+fma", "portable"
  // group_train_replica / group_sum_squares with a one-rank group and this level's products.
  void (*train)(const NetShape& shape, const TrainRun& run, const ReplicaJob& job, const DatasetView& data,
                const ReplicaState& state);
  double (*sum_squares)(const NetShape& shape, const DatasetView& data, int rows, const EvalState& state);
  // group_replay_until_non_finite (core/group_replay.hpp) with this level's products.
  bool (*replay)(const NetShape& shape, const TrainRun& run, const ReplicaJob& job, const DatasetView& data,
                 const ReplicaState& state, int* epoch, int* step);
  // The products and the transposition alone (tests).
  void (*gemm)(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end);
  void (*transpose)(const float* src, int rows, int cols, float* dst);
  // bootstrap_lanes (stats/bootstrap_lanes.hpp): resamples first .. first + kBootstrapLanes - 1.
  void (*bootstrap)(BootstrapStatistic statistic, const BootstrapData& data, PhiloxKey key, std::uint32_t first,
                    BootstrapLaneScratch scratch, double* out);
};

// Asking for a level this CPU (or this build) lacks, or an unknown name.
class CpuKernelsError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A value of UNDERSPEC_CPU_KERNELS that names no level (a typo): bad input, exit 2, where a
// level this CPU lacks is a runtime failure (exit 1).
class CpuKernelsUnknown : public CpuKernelsError {
  using CpuKernelsError::CpuKernelsError;
};

inline constexpr const char* kCpuKernelsVariable = "UNDERSPEC_CPU_KERNELS";

// The environment value that names a level: "avx512", "avx2", "portable".
const char* isa_name(CpuIsa isa);

// The levels this build holds and this CPU (and its OS) can run, widest first; portable is
// always there.
std::vector<CpuIsa> supported_cpu_isas();

// The level for a value of UNDERSPEC_CPU_KERNELS (null or "" or "auto": the widest of
// `supported`). Throws CpuKernelsError naming the variable and the supported levels.
CpuIsa choose_cpu_isa(const char* request, const std::vector<CpuIsa>& supported);

// A level's entry points; throws CpuKernelsError when it is not supported here.
const CpuKernels& cpu_kernels(CpuIsa isa);

// The level in use: UNDERSPEC_CPU_KERNELS or the best supported, chosen on the first call
// (thread-safe); throws CpuKernelsError (and again on every call) when the variable asks for
// what this CPU cannot run.
const CpuKernels& active_cpu_kernels();

// "avx2+fma (auto)", "portable (UNDERSPEC_CPU_KERNELS=portable)", or "unusable: " and the
// error; with list_supported, "; this CPU supports avx512, avx2, portable" inside the
// parentheses. Never throws.
std::string cpu_kernels_description(bool list_supported = false);

}  // namespace underspec
