// One thread per sample; blockIdx.y strides over the jobs (datasets).
#include "cuda_check.hpp"
#include "generate.hpp"

namespace underspec::cuda {
namespace {

__global__ void generate_kernel(ScmParams scm, std::uint32_t data_seed, const GenerateJob* jobs, int n_jobs) {
  const std::uint32_t index = blockIdx.x * blockDim.x + threadIdx.x;
  for (int j = static_cast<int>(blockIdx.y); j < n_jobs; j += static_cast<int>(gridDim.y)) {
    const GenerateJob job = jobs[j];
    if (index >= job.n) continue;
    const Sample s = job.set == DatasetId::train
                         ? training_sample(scm, job.domain, data_seed, job.slot, index)
                         : scm_sample(scm, job.domain.factor, data_seed, job.set, job.slot, index);
    job.x1[index] = s.x1;
    job.x2[index] = s.x2;
    job.x3[index] = s.x3;
    job.y[index] = s.y;
  }
}

}  // namespace

void launch_generate(const ScmParams& scm, std::uint32_t data_seed, const GenerateJob* jobs, int n_jobs,
                     std::uint32_t max_n, cudaStream_t stream) {
  if (n_jobs <= 0 || max_n == 0) return;
  constexpr unsigned kThreads = 256;
  const dim3 grid((max_n + kThreads - 1) / kThreads, static_cast<unsigned>(n_jobs < 65535 ? n_jobs : 65535));
  generate_kernel<<<grid, kThreads, 0, stream>>>(scm, data_seed, jobs, n_jobs);
  US_CUDA_CHECK_LAUNCH("generate_kernel");
}

}  // namespace underspec::cuda
