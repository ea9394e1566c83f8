// Host-side planning of the CUDA backend (see cuda_plan.hpp); no CUDA calls, CPU-tested.
#include "underspec/backends/cuda_plan.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "underspec/core/group_trainer.hpp"

namespace underspec::cuda_plan {

const char* to_string(TrainVariant variant) {
  switch (variant) {
    case TrainVariant::fused:
      return "fused";
    case TrainVariant::cublas:
      return "cublas";
  }
  return "?";
}

bool parse_train_variant(const std::string& name, TrainVariant& out) {
  for (TrainVariant v : {TrainVariant::fused, TrainVariant::cublas})
    if (name == to_string(v)) {
      out = v;
      return true;
    }
  return false;
}

CudaBackendOptions options_from_env(const char* variant_value, const char* chunk_value) {
  CudaBackendOptions options;
  if (variant_value && *variant_value && !parse_train_variant(variant_value, options.variant))
    throw std::invalid_argument(std::string("UNDERSPEC_CUDA_VARIANT: unknown variant '") + variant_value +
                                "' (expected fused or cublas)");
  if (chunk_value && *chunk_value) {
    const std::string text(chunk_value);
    std::size_t chunk = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), chunk);
    if (error != std::errc{} || end != text.data() + text.size() || chunk == 0)
      throw std::invalid_argument("UNDERSPEC_CUDA_CHUNK: expected a positive replica count, got '" + text + "'");
    options.max_chunk_replicas = chunk;
  }
  return options;
}

std::size_t fused_shared_budget(std::size_t per_block_optin, std::size_t per_sm, int ctas_per_sm) {
  constexpr std::size_t kReservedPerCta = 1024;
  if (ctas_per_sm <= 1 || per_sm == 0) return per_block_optin;
  const std::size_t share = per_sm / static_cast<std::size_t>(ctas_per_sm);
  return std::min(per_block_optin, share > kReservedPerCta ? share - kReservedPerCta : 0);
}

void ctas_per_sm_from_env(const char* value, CudaBackendOptions& options) {
  if (value == nullptr || *value == 0) return;
  const std::string text = value;
  if (text != "1" && text != "2")
    throw std::invalid_argument("UNDERSPEC_CUDA_CTAS_PER_SM: expected 1 or 2, got '" + text + "'");
  options.fused_ctas_per_sm = text == "1" ? 1 : 2;
}

namespace {
// A 0|1 switch from the environment: none for a null or empty value; anything else throws
// std::invalid_argument naming `variable`.
std::optional<bool> switch_from_env(const char* variable, const char* value) {
  if (value == nullptr || *value == 0) return std::nullopt;
  const std::string text = value;
  if (text != "0" && text != "1")
    throw std::invalid_argument(std::string(variable) + ": expected 0 or 1, got '" + text + "'");
  return text == "1";
}
}  // namespace

void cublas_graph_from_env(const char* value, CudaBackendOptions& options) {
  if (const std::optional<bool> on = switch_from_env("UNDERSPEC_CUDA_GRAPH", value)) options.cublas_graph = *on;
}

void concurrent_groups_from_env(const char* value, CudaBackendOptions& options) {
  if (value == nullptr || *value == 0) return;
  const std::string text = value;
  int groups = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), groups);
  if (error != std::errc{} || end != text.data() + text.size() || groups < 1 || groups > kMaxConcurrentGroups)
    throw std::invalid_argument("UNDERSPEC_CUDA_CONCURRENT_GROUPS: expected 1 to " +
                                std::to_string(kMaxConcurrentGroups) + ", got '" + text + "'");
  options.concurrent_groups = groups;
}

void shared_operands_from_env(const char* value, CudaBackendOptions& options) {
  if (const std::optional<bool> on = switch_from_env("UNDERSPEC_CUDA_SHARED_OPERANDS", value))
    options.shared_operands = *on;
}

int fused_threads(const NetShape& shape, int batch_size) {
  const std::size_t tiles =
      static_cast<std::size_t>((batch_size + 3) / 4) * static_cast<std::size_t>((max_width(shape) + 3) / 4);
  const std::size_t rounded = (tiles + 31) / 32 * 32;
  return static_cast<int>(std::clamp<std::size_t>(rounded, 64, 256));
}

FusedLayout plan_fused_layout(const NetShape& shape, int batch_size, int threads, std::size_t shared_limit_bytes) {
  FusedLayout layout;
  layout.threads = threads;
  layout.batch_capacity = batch_size;
  const auto batch = static_cast<std::size_t>(batch_size);
  const auto n_params = static_cast<std::size_t>(param_count(shape));
  const auto widest = static_cast<std::size_t>(max_width(shape));
  // Every buffer starts on a 16-byte boundary, so the GPU's products can use vector loads.
  const auto padded = [](std::size_t floats) { return (floats + 3) / 4 * 4; };
  std::size_t act = 0;
  for (int l = 0; l <= shape.n_layers; ++l) {
    layout.act_offset[l] = act;
    act += padded(batch * static_cast<std::size_t>(shape.width[l]));
  }
  // The step of group_trainer.hpp: two hidden errors, transposed hidden weights (none for two
  // layers or fewer: the output layer's one column is its own transpose), the output errors,
  // and a second input and target buffer for the next minibatch.
  const auto transposed = static_cast<std::size_t>(std::clamp(shape.n_layers - 2, 0, 2));
  const auto push = [&](std::size_t floats) {
    const std::size_t at = act;
    act += padded(floats);
    return at;
  };
  layout.delta_a_offset = push(batch * widest);
  layout.delta_b_offset = push(batch * widest);
  layout.weights_t_offset = push(transposed >= 1 ? widest * widest : 0);
  layout.weights_t2_offset = push(transposed >= 2 ? widest * widest : 0);
  layout.targets_offset = push(batch);
  layout.next_input_offset = push(batch * kFeatures);
  layout.next_targets_offset = push(batch);
  layout.out_delta_offset = push(batch);
  layout.size[kParams] = layout.size[kMoment1] = layout.size[kMoment2] = padded(n_params);
  layout.size[kActivations] = act;
  const std::size_t limit_floats = shared_limit_bytes / sizeof(float);
  for (int region : {kParams, kActivations, kMoment1, kMoment2}) {
    const std::size_t size = layout.size[region];
    if (layout.shared_floats + size <= limit_floats) {
      layout.in_shared[region] = true;
      layout.offset[region] = layout.shared_floats;
      layout.shared_floats += size;
    } else {
      layout.offset[region] = layout.global_floats;
      layout.global_floats += size;
    }
  }
  return layout;
}

EvalLayout plan_eval_layout(const NetShape& shape, std::size_t shared_limit_bytes) {
  EvalLayout e;
  e.threads = shape.n_layers == 1 ? 64 : 256;
  e.rows = shape.n_layers == 1 ? 256 : 64;
  e.params_floats = static_cast<std::size_t>(param_count(shape));
  e.input_floats = static_cast<std::size_t>(e.rows) * kFeatures;
  e.pingpong_floats = static_cast<std::size_t>(e.rows) * static_cast<std::size_t>(max_width(shape));
  const std::size_t partial_bytes = static_cast<std::size_t>(kEvalLanes) * sizeof(double);
  const std::size_t act_bytes = (e.input_floats + 2 * e.pingpong_floats) * sizeof(float);
  const std::size_t param_bytes = e.params_floats * sizeof(float);
  std::size_t used = partial_bytes;
  e.activations_in_shared = used + act_bytes <= shared_limit_bytes;
  if (e.activations_in_shared)
    used += act_bytes;
  else
    e.global_floats += e.input_floats + 2 * e.pingpong_floats;
  e.params_in_shared = used + param_bytes <= shared_limit_bytes;
  if (e.params_in_shared) used += param_bytes;
  e.shared_bytes = used;
  return e;
}

std::size_t plan_chunk_replicas(std::size_t n_replicas, std::size_t per_replica_bytes, std::size_t free_bytes,
                                double fraction, std::size_t max_chunk) {
  if (n_replicas == 0) return 0;
  const auto budget = static_cast<std::size_t>(static_cast<double>(free_bytes) * fraction);
  std::size_t chunk = per_replica_bytes ? budget / per_replica_bytes : n_replicas;
  if (chunk == 0)
    throw std::runtime_error("one replica needs " + std::to_string(per_replica_bytes) +
                             " bytes of device memory; only " + std::to_string(budget) + " are available");
  if (max_chunk > 0) chunk = std::min(chunk, max_chunk);
  return std::min(chunk, n_replicas);
}

std::vector<ChunkRange> split_chunks(std::size_t n, std::size_t chunk) {
  if (chunk == 0 && n > 0) throw std::invalid_argument("chunk size must be positive");
  std::vector<ChunkRange> chunks;
  for (std::size_t begin = 0; begin < n; begin += chunk) chunks.push_back({begin, std::min(n, begin + chunk)});
  return chunks;
}

std::vector<std::vector<std::size_t>> launch_groups(const Sweep& sweep, std::span<const ReplicaSpec> replicas,
                                                    TrainVariant variant) {
  std::vector<std::vector<std::size_t>> groups;
  std::map<std::vector<std::int64_t>, std::size_t> group_of;  // key: shape widths (+ cell for cuBLAS MLPs)
  for (std::size_t k = 0; k < replicas.size(); ++k) {
    const ReplicaSpec& r = replicas[k];
    const NetShape shape = net_shape(sweep.config_of(r), r.model);
    std::vector<std::int64_t> key(shape.width, shape.width + shape.n_layers + 1);
    if (variant == TrainVariant::cublas && shape.n_layers > 1) key.push_back(-1 - static_cast<std::int64_t>(r.cell));
    const auto [it, added] = group_of.emplace(std::move(key), groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(k);
  }
  return groups;
}

}  // namespace underspec::cuda_plan
