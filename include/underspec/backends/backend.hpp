// A backend trains replicas and scores them; backends differ only in how the work is
// spread, never in what is computed (docs/ARCHITECTURE.md).
#pragma once

#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "underspec/sweep/sweep.hpp"

namespace underspec {

struct ReplicaResult {
  std::uint32_t id = 0;
  double iid_rmse = 0.0;
  double ood_rmse = 0.0;
  std::vector<float> params;  // final parameters, layout of model.hpp
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;
  // Train and score `replicas` (any subset of the sweep, in any order); results in the
  // same order. The result of a replica depends only on the config and its spec.
  virtual std::vector<ReplicaResult> train_replicas(const ExperimentConfig& config,
                                                    std::span<const ReplicaSpec> replicas) = 0;
};

class BackendUnavailable : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "cpu", "cuda" or "auto" (CUDA when built in and a device is present, else CPU; the
// fallback is reported through `notice`). threads <= 0: all hardware threads.
std::unique_ptr<Backend> make_backend(const std::string& device, int threads, std::string* notice = nullptr);

std::unique_ptr<Backend> make_cpu_backend(int threads);
// Defined by the CUDA backend when it is compiled in; throws BackendUnavailable otherwise.
std::unique_ptr<Backend> make_cuda_backend();
bool cuda_backend_available(std::string* why);

}  // namespace underspec
