// The CUDA backend's host side: device checks, datasets on the device, chunking, and the
// launches of generation, training (fused or cuBLAS) and evaluation. NOT YET RUN ON A GPU.
//
// Per call: the test sets and (unless data.per_replica) one training set per regime are
// generated on the device once; replicas are grouped by model (a launch trains one
// shape) and each group is trained in chunks that fit the device memory budget (or the
// configured maximum). Nothing a replica computes depends on its chunk or position.
#include "underspec/backends/cuda_backend.hpp"

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

#include "cublas_api.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "evaluate.hpp"
#include "generate.hpp"
#include "train_cublas.hpp"
#include "train_fused.hpp"
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
  DeviceBuffer<cuda::GenerateJob> device_jobs = cuda::to_device(jobs, stream);
  cuda::launch_generate(scm_params(config.data), config.data.seed, device_jobs.data(), static_cast<int>(jobs.size()),
                        max_n, stream);
  US_CUDA_CHECK(cudaStreamSynchronize(stream));  // before device_jobs is freed
}

class Stream {
 public:
  Stream() { US_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { static_cast<void>(cudaStreamDestroy(stream_)); }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_{};
};

class CublasHandle {
 public:
  CublasHandle() { US_CUBLAS_CHECK(cuda::cublas().create(&handle_)); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  ~CublasHandle() { static_cast<void>(cuda::cublas().destroy(handle_)); }
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_{};
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options) : options_(options) {}
  std::string name() const override { return "cuda"; }
  int threads() const override { return 1; }

  std::vector<ReplicaResult> train_replicas(const ExperimentConfig& config,
                                            std::span<const ReplicaSpec> replicas) override {
    std::vector<ReplicaResult> results(replicas.size());
    if (replicas.empty()) return results;
    int device = 0, shared_limit = 0;
    US_CUDA_CHECK(cudaGetDevice(&device));
    US_CUDA_CHECK(cudaDeviceGetAttribute(&shared_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const auto shared_bytes = static_cast<std::size_t>(shared_limit);
    Stream stream;
    const auto n_train = static_cast<std::uint32_t>(config.data.n_train);
    const auto n_test = static_cast<std::uint32_t>(config.data.n_test);

    // Test sets, and the shared training sets (one per regime present).
    DeviceDataset iid = make_dataset(n_test), ood = make_dataset(n_test);
    std::vector<cuda::GenerateJob> jobs;
    const TrainDomain no_domain{0.0f, false, 0.0f, 0.0f};
    TrainDomain iid_domain = no_domain, ood_domain = no_domain;
    iid_domain.factor = static_cast<float>(config.data.iid_factor);
    ood_domain.factor = static_cast<float>(config.data.ood_factor);
    jobs.push_back(generate_job(iid.storage.data(), n_test, DatasetId::iid_test, 0u, iid_domain));
    jobs.push_back(generate_job(ood.storage.data(), n_test, DatasetId::ood_test, 0u, ood_domain));
    std::map<Regime, DeviceDataset> shared_train;
    if (!config.data.per_replica)
      for (const ReplicaSpec& r : replicas)
        if (!shared_train.count(r.regime)) {
          DeviceDataset& d = shared_train.emplace(r.regime, make_dataset(n_train)).first->second;
          jobs.push_back(generate_job(d.storage.data(), n_train, DatasetId::train, 0u, train_domain(config, r.regime)));
        }
    run_generate(config, jobs, std::max(n_train, n_test), stream.get());

    const std::vector<AdamStep> adam_table = make_adam_table(config.train, n_train);
    DeviceBuffer<AdamStep> adam_device = cuda::to_device(adam_table, stream.get());
    std::unique_ptr<CublasHandle> cublas;

    for (const std::vector<std::size_t>& group : group_by_model(replicas)) {
      const NetShape shape = net_shape(config, replicas[group.front()].model);
      const bool use_cublas = shape.n_layers > 1 && options_.variant == TrainVariant::cublas;
      if (use_cublas && !cublas) cublas = std::make_unique<CublasHandle>();
      std::size_t free_bytes = 0, total_bytes = 0;
      US_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      const std::size_t chunk =
          plan_chunk_replicas(group.size(), bytes_per_replica(shape, config, options_.variant, shared_bytes),
                              free_bytes, options_.device_memory_fraction, options_.max_chunk_replicas);
      for (const ChunkRange& range : split_chunks(group.size(), chunk)) {
        std::vector<std::size_t> members(group.begin() + static_cast<std::ptrdiff_t>(range.begin),
                                         group.begin() + static_cast<std::ptrdiff_t>(range.end));
        train_chunk(config, replicas, members, shape, shared_bytes, shared_train, iid, ood, adam_table, adam_device,
                    cublas.get(), stream.get(), results);
      }
    }
    return results;
  }

 private:
  static DeviceDataset make_dataset(std::uint32_t n) {
    DeviceDataset d;
    d.storage = DeviceBuffer<float>(4 * std::size_t{n});
    d.n = n;
    return d;
  }

  void train_chunk(const ExperimentConfig& config, std::span<const ReplicaSpec> replicas,
                   const std::vector<std::size_t>& members, const NetShape& shape, std::size_t shared_bytes,
                   const std::map<Regime, DeviceDataset>& shared_train, const DeviceDataset& iid,
                   const DeviceDataset& ood, const std::vector<AdamStep>& adam_table,
                   const DeviceBuffer<AdamStep>& adam_device, CublasHandle* cublas, cudaStream_t stream,
                   std::vector<ReplicaResult>& results) const {
    const auto n_replicas = static_cast<int>(members.size());
    const auto n_train = static_cast<std::uint32_t>(config.data.n_train);
    const int n_params = param_count(shape);

    // Training sets and jobs: shared sets by regime, or one generated set per replica.
    std::vector<DatasetView> views;
    std::vector<ReplicaJob> jobs;
    std::map<Regime, std::uint32_t> view_of_regime;
    DeviceBuffer<float> own_data;
    if (config.data.per_replica) {
      own_data = DeviceBuffer<float>(members.size() * 4 * std::size_t{n_train});
      std::vector<cuda::GenerateJob> generate;
      for (std::size_t k = 0; k < members.size(); ++k) {
        const ReplicaSpec& r = replicas[members[k]];
        float* base = own_data.data() + k * 4 * std::size_t{n_train};
        generate.push_back(
            generate_job(base, n_train, DatasetId::train, train_data_slot(config, r), train_domain(config, r.regime)));
        views.push_back(DatasetView{base, base + n_train, base + 2 * std::size_t{n_train},
                                    base + 3 * std::size_t{n_train}, n_train});
      }
      run_generate(config, generate, n_train, stream);
    }
    for (std::size_t k = 0; k < members.size(); ++k) {
      const ReplicaSpec& r = replicas[members[k]];
      std::uint32_t dataset = static_cast<std::uint32_t>(k);
      if (!config.data.per_replica) {
        auto it = view_of_regime.find(r.regime);
        if (it == view_of_regime.end()) {
          it = view_of_regime.emplace(r.regime, static_cast<std::uint32_t>(views.size())).first;
          views.push_back(shared_train.at(r.regime).view());
        }
        dataset = it->second;
      }
      jobs.push_back(ReplicaJob{r.seed, r.regime == Regime::augmentation ? 1u : 0u, dataset, 0u});
    }
    DeviceBuffer<DatasetView> views_device = cuda::to_device(views, stream);
    DeviceBuffer<ReplicaJob> jobs_device = cuda::to_device(jobs, stream);
    DeviceBuffer<float> params(members.size() * static_cast<std::size_t>(n_params));
    const TrainRun run{config.train.epochs, config.train.batch_size, static_cast<float>(config.augmentation.noise_std),
                       adam_device.data()};
    const bool specialise = options_.variant == TrainVariant::fused;

    if (cublas && shape.n_layers > 1) {
      TrainRun host_run = run;
      host_run.adam_steps = adam_table.data();
      cuda::train_cublas(
          cublas->get(),
          cuda::CublasTrainLaunch{shape, host_run, static_cast<int>(adam_table.size()), jobs_device.data(),
                                  views_device.data(), n_train, n_replicas, params.data()},
          stream);
    } else {
      const FusedLayout layout = cuda::fused_layout_for(shape, config.train.batch_size, shared_bytes);
      DeviceBuffer<float> scratch(members.size() * layout.global_floats);
      cuda::launch_fused_train(cuda::FusedTrainLaunch{shape, run, jobs_device.data(), views_device.data(), n_replicas,
                                                      layout, scratch.data(), params.data()},
                               specialise, stream);
      US_CUDA_CHECK(cudaStreamSynchronize(stream));  // before scratch is freed
    }

    const EvalLayout eval_layout = plan_eval_layout(shape, shared_bytes);
    DeviceBuffer<float> eval_scratch(members.size() * 2 * eval_layout.global_floats);
    DeviceBuffer<double> sums(members.size() * 2);
    cuda::EvaluateLaunch eval{
        shape, eval_layout, params.data(), n_replicas, {iid.view(), ood.view()}, eval_scratch.data(), sums.data()};
    cuda::launch_evaluate(eval, specialise || options_.variant == TrainVariant::cublas, stream);

    std::vector<float> host_params(params.size());
    std::vector<double> host_sums(sums.size());
    params.download(host_params.data(), host_params.size(), stream);
    sums.download(host_sums.data(), host_sums.size(), stream);
    US_CUDA_CHECK(cudaStreamSynchronize(stream));
    const double n_test = static_cast<double>(config.data.n_test);
    for (std::size_t k = 0; k < members.size(); ++k) {
      ReplicaResult& out = results[members[k]];
      out.id = replicas[members[k]].id;
      out.iid_rmse = std::sqrt(host_sums[2 * k] / n_test);
      out.ood_rmse = std::sqrt(host_sums[2 * k + 1] / n_test);
      const auto first = host_params.begin() + static_cast<std::ptrdiff_t>(k * static_cast<std::size_t>(n_params));
      out.params.assign(first, first + n_params);
    }
  }

  CudaBackendOptions options_;
};

}  // namespace

bool cuda_backend_available(std::string* why) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    if (why)
      *why =
          std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")";
    static_cast<void>(cudaGetLastError());  // clear the sticky-free error state
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  return true;
}

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  std::string why;
  if (!cuda_backend_available(&why)) throw BackendUnavailable("CUDA backend: " + why);
  return std::make_unique<CudaBackend>(options);
}

std::unique_ptr<Backend> make_cuda_backend() {
  CudaBackendOptions options;
  try {
    options = options_from_env(std::getenv("UNDERSPEC_CUDA_VARIANT"), std::getenv("UNDERSPEC_CUDA_CHUNK"));
  } catch (const std::invalid_argument& e) {
    throw BackendUnavailable(e.what());
  }
  return make_cuda_backend(options);
}

}  // namespace underspec
