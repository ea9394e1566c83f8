// A backend trains replicas and scores them; backends differ only in how the work is
// spread, never in what is computed (docs/ARCHITECTURE.md).
#pragma once

#include <atomic>
#include <functional>
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
  std::vector<double> stress_rmse;  // one per data.stress_factors of the replica's cell
  std::vector<float> params;        // final parameters, layout of model.hpp
  // "" when its numbers are real, else where they stopped being (divergence_of). A backend may
  // set it (the CPU backend does, replaying on its own threads); the driver decides where not.
  std::string diverged;
};

// Divergence is detected at the end of training, on what every backend returns: a replica
// whose final parameters hold a NaN or infinity, or one of whose RMSEs is not finite or
// beyond float's range, diverged. Returns "" when it did not, else where it was seen:
// "<where>: parameters not finite", with <where> what `locate` returns (called only then:
// "epoch 3 step 17 of 32", DivergenceLocator), or "at end" when it returns "" or there is
// none; "at end: ood_rmse inf" and the like for an RMSE of finite parameters.
// `params`: all its parameters.
std::string divergence_of(std::span<const float> params, const ReplicaResult& scores,
                          const std::function<std::string()>& locate = {});

// Whether every parameter is a finite number.
bool parameters_finite(std::span<const float> params);

// Makes every NaN in a result the one positive quiet NaN. What a NaN's sign and payload
// are depends on the hardware (x86's invalid operations give a negative NaN, a GPU's a
// positive one), so without this a diverged replica's bytes in params.npy and the
// checkpoint would depend on the backend.
void canonicalize_nans(ReplicaResult& result);

// Receives finished replicas (any order, any batch size), from one thread at a time.
using ResultSink = std::function<void(std::span<const ReplicaResult>)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;
  // What runs the arithmetic where a backend has a choice: the CPU's kernels, e.g.
  // "avx2+fma (auto)" (cpu_kernels.hpp); "" otherwise.
  virtual std::string kernels() const { return {}; }
  // Trains and scores `replicas` (any subset of the sweep, in any order, of any cells) and
  // hands every result to `sink` as soon as it is final. When *stop becomes true, starts
  // nothing new and returns after reporting what finished. The result of a replica depends
  // only on its cell's config and its spec.
  virtual void train(const Sweep& sweep, std::span<const ReplicaSpec> replicas, const ResultSink& sink,
                     const std::atomic<bool>* stop = nullptr) = 0;
  // Before anything is written: throws DeviceMemoryShort when `replicas` cannot fit the
  // memory of a device this backend trains on, naming the need, the limit and the config key
  // to reduce. The host's memory is the driver's to check (estimate_host_memory).
  virtual void require_memory(const Sweep& sweep, std::span<const ReplicaSpec> replicas) const {
    static_cast<void>(sweep);
    static_cast<void>(replicas);
  }

  // All results, in the order of `replicas` (tests, benchmarks).
  std::vector<ReplicaResult> train_replicas(const Sweep& sweep, std::span<const ReplicaSpec> replicas);
};

class BackendUnavailable : public std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A run that does not fit a device's memory (Backend::require_memory).
class DeviceMemoryShort : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "cpu", "cuda" or "auto" (CUDA when built in and a device is present, else CPU; the
// fallback is reported through `notice`). threads <= 0: all hardware threads. `gpus`:
// CUDA device ordinals to use (empty: every visible device).
std::unique_ptr<Backend> make_backend(const std::string& device, int threads, std::string* notice = nullptr,
                                      const std::vector<int>& gpus = {});

// Throws CpuKernelsError when UNDERSPEC_CPU_KERNELS asks for kernels this CPU cannot run.
std::unique_ptr<Backend> make_cpu_backend(int threads);
// With the kernels of one instruction-set level (tests, benchmarks); throws CpuKernelsError
// when it is not supported here.
enum class CpuIsa;
std::unique_ptr<Backend> make_cpu_backend(int threads, CpuIsa kernels);
// Defined by the CUDA backend when it is compiled in; throws BackendUnavailable otherwise.
std::unique_ptr<Backend> make_cuda_backend(const std::vector<int>& gpus = {});
bool cuda_backend_available(std::string* why);
// `--dry-run`'s GPU memory lines for `replicas` on the CUDA backend: planned for GPU
// gpus.front() (0 when empty) with its free memory when one is here, else for an sm_90
// GPU's limits. Throws DeviceMemoryShort when a GPU is here and they do not fit it.
std::string describe_cuda_memory(const Sweep& sweep, std::span<const ReplicaSpec> replicas,
                                 const std::vector<int>& gpus = {});

}  // namespace underspec
