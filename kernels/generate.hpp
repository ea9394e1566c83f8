// Device data generation: training sets and test sets, sample by sample with the shared
// US_HD functions of scm.hpp (training_sample / scm_sample), so the bits equal the CPU's
// make_training_set / make_test_set by construction.
//
// Why not cuRAND's generators: a sample needs the Philox block of a *specific* counter
// (dataset_counter(set, slot, index)) under a stream key; cuRAND's host/device generators
// produce a sequence with their own counter layout, and re-deriving it would duplicate the
// SCM math. cuRAND's Philox4_32_10 is the same function as ours: curand_philox.cu wraps
// cuRAND's device API (curand_init + curand4) for a given (key, counter) and a gpu test
// checks its bits equal philox4x32_10 on the counters the datasets use.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "underspec/core/scm.hpp"

namespace underspec::cuda {

struct GenerateJob {
  float* x1;
  float* x2;
  float* x3;
  float* y;
  std::uint32_t n;
  DatasetId set;       // train: training_sample with `domain`; tests: scm_sample at domain.factor
  std::uint32_t slot;  // 0 shared, 1 + seed with data.per_replica
  TrainDomain domain;
};

// `jobs` is a device array of n_jobs entries; max_n the largest job's n.
void launch_generate(const ScmParams& scm, std::uint32_t data_seed, const GenerateJob* jobs, int n_jobs,
                     std::uint32_t max_n, cudaStream_t stream);

}  // namespace underspec::cuda
