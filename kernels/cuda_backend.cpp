// The CUDA backend's host side: device checks, datasets on the device, chunking, and the
// launches of generation, training (fused or cuBLAS) and evaluation.
// Run on an NVIDIA H200 (tests/gpu, bench/gpu-check.sh): bit-identical to the CPU backend.
// Launch groups trained concurrently (below) came after that run and have not run on a GPU.
//
// A backend is bound to one device (cudaSetDevice at the start of train(), in the calling
// thread). Per train() call, the requested replicas are grouped into launch groups
// (cuda_plan::launch_groups): every replica of one network shape, whatever its grid cell, so
// a 50-cell x 100-seed grid fills the GPU like one 5000-replica experiment. Each replica
// reads its cell's training settings from a per-launch TrainRun table (ReplicaJob::run) and
// is scored on its cell's test sets. (The cuBLAS variant steps its MLP replicas in lockstep,
// so its groups also share the cell.) Test sets (IID, OOD, one per data.stress_factors) and
// shared training sets are generated on the device once per distinct set of generation
// inputs and reused across cells. Each group is trained in chunks that fit the device
// memory budget (or the configured maximum); after each chunk its results go to the sink,
// and *stop is checked before the next chunk. Up to options.concurrent_groups groups train
// at the same time, each from its own host thread on its own stream, sharing the dataset
// cache and the sink under locks and the free memory in equal parts; their per-chunk
// buffers are stream-ordered, because cudaMalloc and cudaFree would wait for every stream.
// Evaluation scores two test domains per launch; a cell with fewer domains than the group's
// largest repeats its last one. Nothing a replica computes depends on its chunk, group or
// position.
#include "underspec/backends/cuda_backend.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <compare>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cublas_api.hpp"
#include "cublas_handle.hpp"
#include "cuda_check.hpp"
#include "cuda_memory_check.hpp"
#include "cuda_stream.hpp"
#include "device_buffer.hpp"
#include "evaluate.hpp"
#include "generate.hpp"
#include "train_cublas.hpp"
#include "train_fused.hpp"
#include "underspec/backends/cuda_memory.hpp"
#include "underspec/backends/cuda_sweep_memory.hpp"
#include "underspec/backends/multi_backend.hpp"
#include "underspec/run/deal_chunks.hpp"
#include "underspec/sweep/dataset.hpp"

namespace underspec {
namespace {

using cuda::DeviceBuffer;
using namespace cuda_plan;

// n samples as four device arrays.
struct DeviceDataset {
  DeviceBuffer<float> storage;
  std::uint32_t n = 0;
  DatasetView view() const {
    float* p = storage.data();
    return DatasetView{p, p + n, p + 2 * std::size_t{n}, p + 3 * std::size_t{n}, n};
  }
};

cuda::GenerateJob generate_job(float* base, std::uint32_t n, DatasetId set, std::uint32_t slot, const TrainDomain& d) {
  return cuda::GenerateJob{base, base + n, base + 2 * std::size_t{n}, base + 3 * std::size_t{n}, n, set, slot, d};
}

void run_generate(const ExperimentConfig& config, const std::vector<cuda::GenerateJob>& jobs, std::uint32_t max_n,
                  cudaStream_t stream) {
  if (jobs.empty()) return;
  DeviceBuffer<cuda::GenerateJob> device_jobs = cuda::to_device_ordered(jobs, stream);
  cuda::launch_generate(scm_params(config.data), config.data.seed, device_jobs.data(), static_cast<int>(jobs.size()),
                        max_n, stream);
  US_CUDA_CHECK(cudaStreamSynchronize(stream));  // the data is then ready for every stream
}

// UNDERSPEC_CUDA_PROFILE=1: CUDA events around each chunk's training and evaluation, printed
// to stderr (device time, not the host's view). Off: no events are created.
class PhaseEvents {
 public:
  explicit PhaseEvents(bool on) : on_(on) {}
  PhaseEvents(const PhaseEvents&) = delete;
  PhaseEvents& operator=(const PhaseEvents&) = delete;
  ~PhaseEvents() {
    for (int k = 0; k < count_; ++k) static_cast<void>(cudaEventDestroy(events_[k]));
  }
  void mark(cudaStream_t stream) {
    if (!on_ || count_ == kMax) return;
    US_CUDA_CHECK(cudaEventCreate(&events_[count_]));
    US_CUDA_CHECK(cudaEventRecord(events_[count_++], stream));
  }
  // Milliseconds between marks a and b (after the stream has passed b).
  float ms(int a, int b) const {
    float out = 0.0f;
    if (on_ && b < count_) US_CUDA_CHECK(cudaEventElapsedTime(&out, events_[a], events_[b]));
    return out;
  }

 private:
  static constexpr int kMax = 4;
  bool on_;
  int count_ = 0;
  cudaEvent_t events_[kMax]{};
};

// The device datasets of one train() call, keyed by their generation inputs, shared by the
// launch groups' threads (one at a time).
class DatasetCache {
 public:
  // Views of the requested datasets of `config`, generating the missing ones on `stream`;
  // they are ready on every stream when this returns.
  std::vector<DatasetView> get(const ExperimentConfig& config, const std::vector<DatasetRequest>& requests,
                               cudaStream_t stream) {
    const std::lock_guard lock(mutex_);
    std::vector<cuda::GenerateJob> jobs;
    std::uint32_t max_n = 0;
    std::vector<const DeviceDataset*> found;
    for (const DatasetRequest& r : requests) {
      auto it = sets_.find(dataset_key(config, r));
      if (it == sets_.end()) {
        it = sets_.emplace(dataset_key(config, r), make_dataset(r.n)).first;
        jobs.push_back(generate_job(it->second.storage.data(), r.n, r.set, 0u, r.domain));
        max_n = std::max(max_n, r.n);
      }
      found.push_back(&it->second);
    }
    run_generate(config, jobs, max_n, stream);
    std::vector<DatasetView> views;
    for (const DeviceDataset* d : found) views.push_back(d->view());
    return views;
  }

  static DeviceDataset make_dataset(std::uint32_t n) {
    DeviceDataset d;
    d.storage = DeviceBuffer<float>(4 * std::size_t{n});
    d.n = n;
    return d;
  }

 private:
  std::mutex mutex_;
  std::map<DatasetKey, DeviceDataset> sets_;  // map: views stay valid as sets are added
};

// What one grid cell brings to a launch group: its test sets, its shared training sets, and
// its training settings (a TrainRun whose Adam table lives on the device).
struct CellData {
  std::vector<DatasetView> tests;       // IID, OOD, stress...
  std::map<Regime, DatasetView> train;  // shared training sets (empty with data.per_replica)
  std::vector<AdamStep> adam_host;
  DeviceBuffer<AdamStep> adam_device;
  TrainRun run{};           // adam_steps: adam_device
  std::uint32_t run_index;  // position in the group's TrainRun table
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, const CudaBackendOptions& options)
      : device_(device), options_(options), profile_(std::getenv("UNDERSPEC_CUDA_PROFILE") != nullptr) {}
  std::string name() const override { return "cuda"; }
  int threads() const override { return 1; }

  void train(const Sweep& sweep, std::span<const ReplicaSpec> replicas, const ResultSink& sink,
             const std::atomic<bool>* stop) override {
    if (replicas.empty()) return;
    const auto stopped = [stop] { return stop != nullptr && stop->load(); };
    for (const ReplicaSpec& r : replicas)
      if (r.cell >= sweep.cells.size())
        throw std::out_of_range("replica " + std::to_string(r.id) + " names cell " + std::to_string(r.cell) +
                                " of a sweep with " + std::to_string(sweep.cells.size()));
    const cuda::DeviceOffer offer = cuda::query_device(device_, options_);
    // One worker thread per launch group at a time, each on its own stream, so that a group
    // too small to fill the GPU runs beside the others; the sink hears one at a time.
    const std::vector<std::vector<std::size_t>> groups = launch_groups(sweep, replicas, options_.variant);
    // Without stream-ordered memory pools every allocation would wait for the other groups.
    const int concurrent = cuda::memory_pools_supported() ? std::max(1, options_.concurrent_groups) : 1;
    // As many at a time as fit with every dataset in place (the free memory is shared).
    const SweepDeviceMemory memory = cuda::plan_on(offer, options_, sweep, replicas);
    const int fit = groups_that_fit(memory, offer.free_bytes, options_.device_memory_fraction,
                                    static_cast<int>(std::min<std::size_t>(groups.size(), concurrent)));
    if (fit == 0)  // require_memory said it fits: something else took the memory since
      throw std::runtime_error(
          device_memory_shortfall(memory, offer.free_bytes, options_.device_memory_fraction, offer.label));
    const int workers = fit;
    if (memory.groups.size() != groups.size())
      throw std::logic_error("the device-memory plan holds " + std::to_string(memory.groups.size()) +
                             " launch groups for " + std::to_string(groups.size()));
    DatasetCache cache;
    std::vector<std::unique_ptr<cuda::CublasHandle>> cublas(static_cast<std::size_t>(workers));
    std::mutex sink_mutex;
    const ResultSink serial = [&](std::span<const ReplicaResult> done) {
      const std::lock_guard lock(sink_mutex);
      sink(done);
    };
    const auto started = std::chrono::steady_clock::now();
    deal_chunks(
        groups.size(), workers,
        [&](int worker, std::size_t g) {
          US_CUDA_CHECK(cudaSetDevice(device_));  // the current device is a host thread's
          // The group's equal share of what is free once every dataset and its own tables are
          // in place: what groups_that_fit counted (free memory read again while other groups
          // hold their chunks would be less, and could refuse a replica that fits).
          const std::size_t held = memory.dataset_total() + memory.groups[g].table_bytes;
          const std::size_t share =
              offer.free_bytes > held ? (offer.free_bytes - held) / static_cast<std::size_t>(workers) : 0;
          train_group(sweep, replicas, groups[g], GroupLimits{offer.shared, offer.compute_major, share}, cache,
                      cublas[static_cast<std::size_t>(worker)], serial, stopped);
        },
        stop);
    if (profile_)
      std::fprintf(stderr, "cuda device %d: %zu launch groups, %d at a time: %.2f ms (host wall)\n", device_,
                   groups.size(), workers,
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
  }

  void require_memory(const Sweep& sweep, std::span<const ReplicaSpec> replicas) const override {
    if (replicas.empty()) return;
    const cuda::DeviceOffer offer = cuda::query_device(device_, options_);
    const SweepDeviceMemory memory = cuda::plan_on(offer, options_, sweep, replicas);
    if (groups_that_fit(memory, offer.free_bytes, options_.device_memory_fraction, 1) == 0)
      throw DeviceMemoryShort(
          device_memory_shortfall(memory, offer.free_bytes, options_.device_memory_fraction, offer.label));
  }

 private:
  // What every launch group of one train() call is planned within.
  struct GroupLimits {
    SharedLimits shared;     // per block (opt-in) and per fused MLP replica
    int compute_major;       // the device's compute capability (the cuBLAS workspace depends on it)
    std::size_t free_share;  // the free device memory this group's chunks are planned within
  };

  // One launch group, chunk after chunk, on its own stream. Buffers made and freed here are
  // stream-ordered, so that this group never waits for another group's kernels.
  template <class Stopped>
  void train_group(const Sweep& sweep, std::span<const ReplicaSpec> replicas, const std::vector<std::size_t>& group,
                   const GroupLimits& limits, DatasetCache& cache, std::unique_ptr<cuda::CublasHandle>& cublas,
                   const ResultSink& sink, const Stopped& stopped) const {
    if (stopped()) return;
    cuda::CudaStream stream;
    const ReplicaSpec& first = replicas[group.front()];
    const NetShape shape = net_shape(sweep.config_of(first), first.model);
    // The cells of the group, their data and TrainRuns; sizes are planned for the largest.
    std::map<std::uint32_t, CellData> cells;
    std::vector<TrainRun> runs;
    std::vector<const ExperimentConfig*> configs;
    for (std::size_t k : group) {
      const std::uint32_t c = replicas[k].cell;
      if (cells.count(c)) continue;
      const ExperimentConfig& config = sweep.cells[c].config;
      CellData& cell = cells[c];
      cell_data(config, replicas, group, c, cache, stream.get(), cell);
      cell.run_index = static_cast<std::uint32_t>(runs.size());
      runs.push_back(cell.run);
      configs.push_back(&config);
    }
    // What a chunk allocates, from the functions that size its buffers (cuda_memory.hpp).
    const GroupMemory memory =
        group_device_memory(shape, configs, options_.variant, limits.shared, limits.compute_major);
    const DeviceBuffer<TrainRun> runs_device = cuda::to_device_ordered(runs, stream.get());  // `runs` outlives the copy
    const bool use_cublas = shape.n_layers > 1 && options_.variant == TrainVariant::cublas;
    if (use_cublas && !cublas) cublas = std::make_unique<cuda::CublasHandle>();

    // The host holds a chunk's parameters twice until the sink has them: bound that too.
    const std::size_t host_limit = host_chunk_limit(shape, configs, options_.host_chunk_bytes);
    const std::size_t max_chunk =
        options_.max_chunk_replicas > 0 ? std::min(options_.max_chunk_replicas, host_limit) : host_limit;
    const std::size_t chunk =
        plan_chunk_replicas(group.size(), memory, limits.free_share, options_.device_memory_fraction, max_chunk);
    // The cuBLAS trainer allocates all its memory here, once for the group's chunks, so
    // that training allocates nothing. (A group of the cuBLAS variant holds one cell.)
    std::optional<cuda::CublasTrainer> trainer;
    if (use_cublas) {
      if (cells.size() != 1)
        throw std::logic_error("a cuBLAS launch group spans " + std::to_string(cells.size()) + " cells");
      const CellData& cell = cells.begin()->second;
      const auto n_train = static_cast<std::uint32_t>(sweep.cells[cells.begin()->first].config.data.n_train);
      trainer.emplace(cublas->get(),
                      cuda::CublasTrainSetup{shape, cell.run.epochs, cell.run.batch_size, cell.run.augmentation_std,
                                             n_train, cell.adam_host, static_cast<int>(chunk), options_.cublas_graph},
                      stream.get());
    }
    for (const ChunkRange& range : split_chunks(group.size(), chunk)) {
      if (stopped()) return;
      const std::vector<std::size_t> members(group.begin() + static_cast<std::ptrdiff_t>(range.begin),
                                             group.begin() + static_cast<std::ptrdiff_t>(range.end));
      sink(train_chunk(sweep, replicas, members, shape, limits.shared, cells, runs_device,
                       trainer ? &*trainer : nullptr, stream.get()));
    }
  }

  // Cell `c`'s test sets, the shared training sets its replicas in `group` need (from
  // `cache` or generated now), and its TrainRun.
  static void cell_data(const ExperimentConfig& config, std::span<const ReplicaSpec> replicas,
                        const std::vector<std::size_t>& group, std::uint32_t c, DatasetCache& cache,
                        cudaStream_t stream, CellData& cell) {
    std::vector<Regime> regimes;
    if (!config.data.per_replica)
      for (std::size_t k : group)
        if (replicas[k].cell == c && std::find(regimes.begin(), regimes.end(), replicas[k].regime) == regimes.end())
          regimes.push_back(replicas[k].regime);
    const std::vector<DatasetRequest> requests = cell_datasets(config, regimes);
    const std::size_t n_tests = requests.size() - regimes.size();
    const std::vector<DatasetView> views = cache.get(config, requests, stream);
    cell.tests.assign(views.begin(), views.begin() + static_cast<std::ptrdiff_t>(n_tests));
    for (std::size_t i = 0; i < regimes.size(); ++i) cell.train.emplace(regimes[i], views[n_tests + i]);
    cell.adam_host = make_adam_table(config.train, static_cast<std::uint32_t>(config.data.n_train));
    cell.adam_device = cuda::to_device_ordered(cell.adam_host, stream);
    cell.run = TrainRun{config.train.epochs, config.train.batch_size, static_cast<float>(config.augmentation.noise_std),
                        cell.adam_device.data()};
  }

  std::vector<ReplicaResult> train_chunk(const Sweep& sweep, std::span<const ReplicaSpec> replicas,
                                         const std::vector<std::size_t>& members, const NetShape& shape,
                                         const SharedLimits& shared, const std::map<std::uint32_t, CellData>& cells,
                                         const DeviceBuffer<TrainRun>& runs_device, cuda::CublasTrainer* trainer,
                                         cudaStream_t stream) const {
    const auto n_replicas = static_cast<int>(members.size());
    const int n_params = param_count(shape);

    // Training sets and jobs: shared sets by (cell, regime), or one generated set per
    // replica (generated per cell: the generation kernel takes one cell's SCM and seed).
    std::vector<DatasetView> views;
    std::vector<ReplicaJob> jobs(members.size());
    std::map<std::pair<std::uint32_t, Regime>, std::uint32_t> shared_view;
    std::size_t own_floats = 0;
    for (std::size_t k : members) {
      const ExperimentConfig& config = sweep.config_of(replicas[k]);
      if (config.data.per_replica) own_floats += 4 * static_cast<std::size_t>(config.data.n_train);
    }
    DeviceBuffer<float> own_data(own_floats, stream);
    std::map<std::uint32_t, std::vector<cuda::GenerateJob>> generate;  // by cell
    std::size_t own_used = 0;
    for (std::size_t k = 0; k < members.size(); ++k) {
      const ReplicaSpec& r = replicas[members[k]];
      const ExperimentConfig& config = sweep.config_of(r);
      const CellData& cell = cells.at(r.cell);
      std::uint32_t dataset = 0;
      if (config.data.per_replica) {
        const auto n_train = static_cast<std::uint32_t>(config.data.n_train);
        float* base = own_data.data() + own_used;
        own_used += 4 * std::size_t{n_train};
        generate[r.cell].push_back(
            generate_job(base, n_train, DatasetId::train, train_data_slot(config, r), train_domain(config, r.regime)));
        dataset = static_cast<std::uint32_t>(views.size());
        views.push_back(DatasetView{base, base + n_train, base + 2 * std::size_t{n_train},
                                    base + 3 * std::size_t{n_train}, n_train});
      } else {
        const auto [it, added] = shared_view.emplace(std::make_pair(r.cell, r.regime), views.size());
        if (added) views.push_back(cell.train.at(r.regime));
        dataset = it->second;
      }
      jobs[k] = ReplicaJob{r.seed, r.regime == Regime::augmentation ? 1u : 0u, dataset, cell.run_index};
    }
    for (const auto& [c, gen] : generate) {
      std::uint32_t max_n = 0;
      for (const cuda::GenerateJob& j : gen) max_n = std::max(max_n, j.n);
      run_generate(sweep.cells[c].config, gen, max_n, stream);
    }
    DeviceBuffer<DatasetView> views_device = cuda::to_device_ordered(views, stream);
    DeviceBuffer<ReplicaJob> jobs_device = cuda::to_device_ordered(jobs, stream);
    // Sized by chunk_buffers, as group_device_memory counts them; the fused layout for the
    // largest batch of the group's cells.
    int max_batch = 1;
    for (const auto& [c, cell] : cells) max_batch = std::max(max_batch, cell.run.batch_size);
    const FusedLayout layout = fused_launch_layout(shape, max_batch, shared.mlp);
    std::size_t n_pairs = 1;
    for (std::size_t k : members) n_pairs = std::max(n_pairs, (cells.at(replicas[k].cell).tests.size() + 1) / 2);
    const EvalLayout eval_layout = plan_eval_layout(shape, shared.per_block);
    const ChunkBuffers sizes =
        chunk_buffers(members.size(), own_floats, views.size(), n_pairs, static_cast<std::size_t>(n_params),
                      trainer ? 0 : layout.global_floats, eval_layout.global_floats);
    DeviceBuffer<float> params(sizes.params, stream);
    if (trainer) trainer->prepare(jobs_device.data(), views_device.data(), n_replicas);  // graphs: not timed
    PhaseEvents events(profile_);
    events.mark(stream);  // training starts

    if (trainer) {
      trainer->train(params.data());
    } else {
      const DeviceBuffer<float> scratch(sizes.scratch, stream);  // freed in stream order
      cuda::launch_fused_train(
          cuda::FusedTrainLaunch{shape, runs_device.data(), jobs_device.data(), views_device.data(), n_replicas, layout,
                                 scratch.data(), params.data(), options_.shared_operands},
          stream);
    }

    events.mark(stream);  // training done, evaluation starts

    // Evaluation, two domains per launch: sums[pair][replica][domain of the pair]; a replica
    // whose cell has fewer test sets repeats its last one. The launches run in stream order,
    // so they share one scratch buffer.
    DeviceBuffer<float> eval_scratch(sizes.eval_scratch, stream);
    DeviceBuffer<double> sums(sizes.sums, stream);
    std::vector<DeviceBuffer<DatasetView>> pair_domains;
    for (std::size_t p = 0; p < n_pairs; ++p) {
      std::vector<DatasetView> domains;
      for (std::size_t k : members) {
        const std::vector<DatasetView>& tests = cells.at(replicas[k].cell).tests;
        for (std::size_t d = 0; d < 2; ++d) domains.push_back(tests[std::min(2 * p + d, tests.size() - 1)]);
      }
      pair_domains.push_back(cuda::to_device_ordered(domains, stream));  // kept until the launches are done
      cuda::EvaluateLaunch eval{shape,
                                eval_layout,
                                params.data(),
                                n_replicas,
                                pair_domains.back().data(),
                                eval_scratch.data(),
                                sums.data() + p * members.size() * 2,
                                options_.shared_operands};
      cuda::launch_evaluate(eval, stream);
    }

    events.mark(stream);  // evaluation done
    std::vector<float> host_params(params.size());
    std::vector<double> host_sums(sums.size());
    params.download(host_params.data(), host_params.size(), stream);
    sums.download(host_sums.data(), host_sums.size(), stream);
    US_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (profile_)
      std::fprintf(stderr, "cuda device %d: %d replicas of %s: train %.2f ms, evaluate %.2f ms\n", device_, n_replicas,
                   shape_name(shape).c_str(), events.ms(0, 1), events.ms(1, 2));
    std::vector<ReplicaResult> results(members.size());
    for (std::size_t k = 0; k < members.size(); ++k) {
      const ReplicaSpec& r = replicas[members[k]];
      const ExperimentConfig& config = sweep.config_of(r);
      const double n_test = static_cast<double>(config.data.n_test);
      const auto rmse = [&](std::size_t domain) {
        return std::sqrt(host_sums[(domain / 2 * members.size() + k) * 2 + domain % 2] / n_test);
      };
      ReplicaResult& out = results[k];
      out.id = r.id;
      out.iid_rmse = rmse(0);
      out.ood_rmse = rmse(1);
      out.stress_rmse.resize(config.data.stress_factors.size());
      for (std::size_t s = 0; s < out.stress_rmse.size(); ++s) out.stress_rmse[s] = rmse(2 + s);
      const auto first = host_params.begin() + static_cast<std::ptrdiff_t>(k * static_cast<std::size_t>(n_params));
      out.params.assign(first, first + n_params);
    }
    return results;
  }

  int device_;
  CudaBackendOptions options_;
  bool profile_;
};

int device_count() {
  int count = 0;
  US_CUDA_CHECK(cudaGetDeviceCount(&count));
  return count;
}

void require_device(int device, int count) {
  if (device < 0 || device >= count)
    throw BackendUnavailable("CUDA backend: GPU " + std::to_string(device) + " does not exist (" +
                             std::to_string(count) + " CUDA device" + (count == 1 ? "" : "s") + " visible)");
}

void require_cuda() {
  std::string why;
  if (!cuda_backend_available(&why)) throw BackendUnavailable("CUDA backend: " + why);
}

}  // namespace

bool cuda_backend_available(std::string* why) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    // Without an NVIDIA driver (a login node, a CPU machine) the runtime reports an old driver.
    const char* hint =
        error == cudaErrorInsufficientDriver || error == cudaErrorNoDevice ? "; no NVIDIA driver on this machine?" : "";
    if (why)
      *why = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) +
             ")" + hint;
    static_cast<void>(cudaGetLastError());  // clear the sticky-free error state
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  return true;
}

std::unique_ptr<Backend> make_cuda_device_backend(int device, const CudaBackendOptions& options) {
  require_cuda();
  require_device(device, device_count());
  return std::make_unique<CudaBackend>(device, options);
}

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  require_cuda();
  int device = 0;
  US_CUDA_CHECK(cudaGetDevice(&device));
  return make_cuda_device_backend(device, options);
}

namespace {

// The options of the UNDERSPEC_CUDA_* variables; a bad value throws BackendUnavailable.
CudaBackendOptions options_from_environment() {
  try {
    CudaBackendOptions options =
        options_from_env(std::getenv("UNDERSPEC_CUDA_VARIANT"), std::getenv("UNDERSPEC_CUDA_CHUNK"));
    ctas_per_sm_from_env(std::getenv("UNDERSPEC_CUDA_CTAS_PER_SM"), options);
    cublas_graph_from_env(std::getenv("UNDERSPEC_CUDA_GRAPH"), options);
    concurrent_groups_from_env(std::getenv("UNDERSPEC_CUDA_CONCURRENT_GROUPS"), options);
    shared_operands_from_env(std::getenv("UNDERSPEC_CUDA_SHARED_OPERANDS"), options);
    return options;
  } catch (const std::invalid_argument& e) {
    throw BackendUnavailable(e.what());
  }
}

}  // namespace

std::string describe_cuda_memory(const Sweep& sweep, std::span<const ReplicaSpec> replicas,
                                 const std::vector<int>& gpus) {
  const CudaBackendOptions options = options_from_environment();
  const double fraction = options.device_memory_fraction;
  std::string why;
  if (!cuda_backend_available(&why)) {
    const cuda::DeviceOffer offer = cuda::reference_sm90_device(options);
    return describe_device_memory(cuda::plan_on(offer, options, sweep, replicas), 0, fraction, offer.label) +
           "               (planned for an sm_90 GPU's limits: no GPU here)\n";
  }
  const int device = gpus.empty() ? 0 : gpus.front();
  require_device(device, device_count());
  const cuda::DeviceOffer offer = cuda::query_device(device, options);
  const SweepDeviceMemory memory = cuda::plan_on(offer, options, sweep, replicas);
  if (groups_that_fit(memory, offer.free_bytes, fraction, 1) == 0)
    throw DeviceMemoryShort(device_memory_shortfall(memory, offer.free_bytes, fraction, offer.label));
  return describe_device_memory(memory, offer.free_bytes, fraction, offer.label);
}

std::unique_ptr<Backend> make_cuda_backend(const std::vector<int>& gpus) {
  require_cuda();
  const CudaBackendOptions options = options_from_environment();
  const int count = device_count();
  for (int gpu : gpus) require_device(gpu, count);
  // Every visible device unless chosen; several are fed from one queue of chunks.
  std::vector<int> devices = gpus;
  if (devices.empty())
    for (int d = 0; d < count; ++d) devices.push_back(d);
  if (devices.size() == 1) return make_cuda_device_backend(devices.front(), options);
  std::vector<std::unique_ptr<Backend>> workers;
  for (int d : devices) workers.push_back(make_cuda_device_backend(d, options));
  return make_multi_backend(std::move(workers));
}

}  // namespace underspec
