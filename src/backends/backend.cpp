// What every backend shares: collecting results in order, and choosing a backend by name.
#include "underspec/backends/backend.hpp"

#include <cfloat>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>

namespace underspec {

std::vector<ReplicaResult> Backend::train_replicas(const Sweep& sweep, std::span<const ReplicaSpec> replicas) {
  std::unordered_map<std::uint32_t, std::size_t> position;
  for (std::size_t i = 0; i < replicas.size(); ++i) position.emplace(replicas[i].id, i);
  std::vector<ReplicaResult> results(replicas.size());
  std::vector<bool> seen(replicas.size(), false);
  train(sweep, replicas, [&](std::span<const ReplicaResult> done) {
    for (const ReplicaResult& r : done) {
      const auto it = position.find(r.id);
      if (it == position.end() || seen[it->second])
        throw std::logic_error("backend " + name() + " reported replica " + std::to_string(r.id) + " twice or unasked");
      seen[it->second] = true;
      results[it->second] = r;
      canonicalize_nans(results[it->second]);
    }
  });
  for (std::size_t i = 0; i < replicas.size(); ++i)
    if (!seen[i])
      throw std::logic_error("backend " + name() + " did not report replica " + std::to_string(replicas[i].id));
  return results;
}

std::unique_ptr<Backend> make_backend(const std::string& device, int threads, std::string* notice,
                                      const std::vector<int>& gpus) {
  if (device == "cpu") return make_cpu_backend(threads);
  if (device == "cuda") {
    std::string why;
    if (!cuda_backend_available(&why)) throw BackendUnavailable("--device cuda: " + why);
    return make_cuda_backend(gpus);
  }
  if (device == "auto") {
    std::string why;
    if (cuda_backend_available(&why)) return make_cuda_backend(gpus);
    if (notice) *notice = "no usable CUDA device (" + why + "); using the CPU backend";
    return make_cpu_backend(threads);
  }
  throw std::invalid_argument("unknown device '" + device + "' (expected auto, cpu or cuda)");
}

void canonicalize_nans(ReplicaResult& result) {
  const auto canonical = [](auto& x) {
    if (std::isnan(x)) x = std::numeric_limits<std::remove_reference_t<decltype(x)>>::quiet_NaN();
  };
  canonical(result.iid_rmse);
  canonical(result.ood_rmse);
  for (double& x : result.stress_rmse) canonical(x);
  for (float& x : result.params) canonical(x);
}

bool parameters_finite(std::span<const float> params) {
  for (float p : params)
    if (!std::isfinite(p)) return false;
  return true;
}

std::string divergence_of(std::span<const float> params, const ReplicaResult& scores,
                          const std::function<std::string()>& locate) {
  if (!parameters_finite(params)) {
    const std::string where = locate ? locate() : std::string();
    return (where.empty() ? std::string("at end") : where) + ": parameters not finite";
  }
  const auto bad = [](double x) -> const char* {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return "inf";
    return std::fabs(x) > static_cast<double>(FLT_MAX) ? "beyond float range" : nullptr;
  };
  if (const char* why = bad(scores.iid_rmse)) return std::string("at end: iid_rmse ") + why;
  if (const char* why = bad(scores.ood_rmse)) return std::string("at end: ood_rmse ") + why;
  for (std::size_t k = 0; k < scores.stress_rmse.size(); ++k)
    if (const char* why = bad(scores.stress_rmse[k])) return "at end: stress_rmse[" + std::to_string(k) + "] " + why;
  return {};
}

}  // namespace underspec
