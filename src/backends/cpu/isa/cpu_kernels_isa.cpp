// One instruction-set level of the CPU backend's hot code (cpu_kernels.hpp). src/CMakeLists.txt
// compiles this file once per level, with UNDERSPEC_CPU_ISA=<portable|avx2|avx512> and that
// level's -m flags, into a namespace of the level's own (cpu_isa_<level>).
//
// Keep this file to the group trainer (and its replay), the products and the bootstrap's
// lanes: whatever it defines outside that namespace (an inline function of a shared header or
// of the standard library, compiled here with -mavx512f) could be merged by the linker with
// another level's copy and then run on a CPU without AVX-512. The core math is always_inline, the group
// trainer's templates are instantiated for this level's CpuGemm only (bootstrap_lanes for its
// Level tag), and the test cpu_kernels_isolated (tests/check_cpu_kernel_symbols.sh) checks
// the object files and the binary.
#if !defined(UNDERSPEC_CPU_ISA)
#error "compile with -DUNDERSPEC_CPU_ISA=portable|avx2|avx512 (src/CMakeLists.txt)"
#endif
#define US_ISA_CAT2(a, b) a##b
#define US_ISA_CAT(a, b) US_ISA_CAT2(a, b)
#define UNDERSPEC_CPU_ISA_NS US_ISA_CAT(cpu_isa_, UNDERSPEC_CPU_ISA)

#include "underspec/backends/cpu_gemm.hpp"
#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/core/group_replay.hpp"
#include "underspec/stats/bootstrap_lanes.hpp"

namespace underspec::UNDERSPEC_CPU_ISA_NS {

constexpr CpuIsa kIsa = CpuIsa::UNDERSPEC_CPU_ISA;
#if !defined(UNDERSPEC_HAVE_AVX2_GEMM)
static_assert(kIsa == CpuIsa::portable, "the avx2 and avx512 levels need -mavx2 -mfma");
#endif
#if !defined(UNDERSPEC_HAVE_AVX512_GEMM)
static_assert(kIsa != CpuIsa::avx512, "the avx512 level needs -mavx512f");
#endif

namespace {

void train(const NetShape& shape, const TrainRun& run, const ReplicaJob& job, const DatasetView& data,
           const ReplicaState& state) {
  group_train_replica<0, 0>(SerialGroup<CpuGemm>{}, shape, run, job, data, state);
}

bool replay(const NetShape& shape, const TrainRun& run, const ReplicaJob& job, const DatasetView& data,
            const ReplicaState& state, int* epoch, int* step) {
  return group_replay_until_non_finite<0, 0>(SerialGroup<CpuGemm>{}, shape, run, job, data, state, epoch, step);
}

double sum_squares(const NetShape& shape, const DatasetView& data, int rows, const EvalState& state) {
  return group_sum_squares<0, 0>(SerialGroup<CpuGemm>{}, shape, data, rows, state);
}

void gemm(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) {
  CpuGemm{}(g, i_begin, i_end, j_begin, j_end);
}

void transpose(const float* src, int rows, int cols, float* dst) { CpuGemm{}.transpose(src, rows, cols, dst); }

struct Level {};  // names this level in bootstrap_lanes' instantiation

void bootstrap(BootstrapStatistic statistic, const BootstrapData& data, PhiloxKey key, std::uint32_t first,
               BootstrapLaneScratch scratch, double* out) {
  bootstrap_lanes<Level>(statistic, data, key, first, scratch, out);
}

}  // namespace

extern const CpuKernels kernels;
const CpuKernels kernels{kIsa,      kIsa == CpuIsa::avx512 ? "avx512" : kIsa == CpuIsa::avx2 ? "avx2+fma" : "portable",
                         train,     sum_squares,
                         replay,    gemm,
                         transpose, bootstrap};

}  // namespace underspec::UNDERSPEC_CPU_ISA_NS
