// Shared helpers of the GPU tests: the skip guard and CPU reference runs.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cuda_backend.hpp"

#define UNDERSPEC_REQUIRE_GPU()                                                        \
  do {                                                                                 \
    std::string why_no_gpu;                                                            \
    if (!::underspec::cuda_backend_available(&why_no_gpu)) GTEST_SKIP() << why_no_gpu; \
  } while (0)

namespace underspec::gpu_test {

inline std::vector<ReplicaResult> run_cpu(const Sweep& sweep, std::span<const ReplicaSpec> replicas) {
  return make_cpu_backend(0)->train_replicas(sweep, replicas);
}

inline cuda_plan::CudaBackendOptions options_of(cuda_plan::TrainVariant variant, std::size_t max_chunk = 0) {
  cuda_plan::CudaBackendOptions options;
  options.variant = variant;
  options.max_chunk_replicas = max_chunk;
  return options;
}

inline std::vector<ReplicaResult> run_cuda(const Sweep& sweep, std::span<const ReplicaSpec> replicas,
                                           cuda_plan::TrainVariant variant, std::size_t max_chunk = 0) {
  return make_cuda_backend(options_of(variant, max_chunk))->train_replicas(sweep, replicas);
}

inline double relative(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-3); }

// Parameters within rel_params (relative, floor 1e-3 absolute scale) and RMSEs (IID, OOD and
// every stress domain) within rel_rmse.
inline void expect_close(const std::vector<ReplicaResult>& gpu, const std::vector<ReplicaResult>& cpu,
                         double rel_params, double rel_rmse) {
  ASSERT_EQ(gpu.size(), cpu.size());
  for (std::size_t k = 0; k < gpu.size(); ++k) {
    ASSERT_EQ(gpu[k].id, cpu[k].id);
    ASSERT_EQ(gpu[k].params.size(), cpu[k].params.size());
    EXPECT_LE(relative(gpu[k].iid_rmse, cpu[k].iid_rmse), rel_rmse) << "replica " << cpu[k].id;
    EXPECT_LE(relative(gpu[k].ood_rmse, cpu[k].ood_rmse), rel_rmse) << "replica " << cpu[k].id;
    ASSERT_EQ(gpu[k].stress_rmse.size(), cpu[k].stress_rmse.size()) << "replica " << cpu[k].id;
    for (std::size_t s = 0; s < cpu[k].stress_rmse.size(); ++s)
      EXPECT_LE(relative(gpu[k].stress_rmse[s], cpu[k].stress_rmse[s]), rel_rmse)
          << "replica " << cpu[k].id << " stress domain " << s;
    for (std::size_t i = 0; i < cpu[k].params.size(); ++i)
      ASSERT_LE(relative(gpu[k].params[i], cpu[k].params[i]), rel_params)
          << "replica " << cpu[k].id << " parameter " << i << ": " << gpu[k].params[i] << " vs " << cpu[k].params[i];
  }
}

// The fused variants (and every perceptron, which the cuBLAS variant also trains fused)
// reproduce the CPU bit for bit: parameters and every RMSE. Mismatches are counted and the
// largest difference printed. MLPs of the cuBLAS variant (its own summation order) are held
// to 1e-3 relative.
inline void expect_matches_cpu(std::span<const ReplicaSpec> replicas, const std::vector<ReplicaResult>& gpu,
                               const std::vector<ReplicaResult>& cpu, cuda_plan::TrainVariant variant) {
  ASSERT_EQ(gpu.size(), replicas.size());
  ASSERT_EQ(cpu.size(), replicas.size());
  std::size_t mismatches = 0, compared = 0;
  double largest = 0.0;
  std::string where;
  const auto count = [&](double g, double c, std::uint32_t id, const char* what, std::size_t i) {
    ++compared;
    if (g == c || (std::isnan(g) && std::isnan(c))) return;
    ++mismatches;
    if (relative(g, c) > largest || where.empty()) {
      largest = std::max(largest, relative(g, c));
      where = "replica " + std::to_string(id) + " " + what + " " + std::to_string(i);
    }
  };
  for (std::size_t k = 0; k < replicas.size(); ++k) {
    ASSERT_EQ(gpu[k].id, cpu[k].id);
    if (variant == cuda_plan::TrainVariant::cublas && replicas[k].model == ModelKind::mlp) {
      expect_close({gpu[k]}, {cpu[k]}, 1e-3, 1e-3);
      continue;
    }
    ASSERT_EQ(gpu[k].params.size(), cpu[k].params.size());
    ASSERT_EQ(gpu[k].stress_rmse.size(), cpu[k].stress_rmse.size());
    for (std::size_t i = 0; i < cpu[k].params.size(); ++i)
      count(gpu[k].params[i], cpu[k].params[i], cpu[k].id, "parameter", i);
    count(gpu[k].iid_rmse, cpu[k].iid_rmse, cpu[k].id, "iid_rmse", 0);
    count(gpu[k].ood_rmse, cpu[k].ood_rmse, cpu[k].id, "ood_rmse", 0);
    for (std::size_t s = 0; s < cpu[k].stress_rmse.size(); ++s)
      count(gpu[k].stress_rmse[s], cpu[k].stress_rmse[s], cpu[k].id, "stress_rmse", s);
  }
  EXPECT_EQ(mismatches, 0u) << "of " << compared << " numbers (" << cuda_plan::to_string(variant)
                            << "); largest relative difference " << largest << " at " << where;
}

}  // namespace underspec::gpu_test
