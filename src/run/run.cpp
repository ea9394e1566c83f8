// The driver of `underspec run` (see run.hpp). Everything that can be wrong with the
// request is checked before training, so a bad request creates nothing; once training
// starts, finished replicas reach the checkpoint within seconds, so an interruption or a
// late error never loses them, and a resume produces the same bytes as an uninterrupted run.
#include "underspec/run/run.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <optional>
#include <ostream>
#include <string_view>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cuda_bootstrap.hpp"
#include "underspec/backends/divergence_replay.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/file_lock.hpp"
#include "underspec/outputs/outputs.hpp"
#include "underspec/outputs/shell_words.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/finalize.hpp"
#include "underspec/run/plan.hpp"
#include "underspec/run/run_dir.hpp"
#include "underspec/run/run_info.hpp"
#include "underspec/run/stop_signals.hpp"
#include "underspec/run/time_estimate.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kCheckpointInterval = std::chrono::seconds(5);  // at most this much work at risk
constexpr std::size_t kCheckpointMaxRecords = 1 << 16;
// ... and at most this much (MLP parameters with --save-params: 18 KB a replica), so that
// neither the records waiting in memory nor a segment read back (finalize, merge) grow with
// the sweep. estimate_host_memory counts it.
constexpr std::size_t kCheckpointMaxBytes = kCheckpointBufferBytes;

// The time between checkpoint segments: kCheckpointInterval, or UNDERSPEC_CHECKPOINT_SECONDS (a
// number of seconds, fractions allowed, >= 0) so that tests can interrupt runs between segments.
Clock::duration checkpoint_interval() {
  const char* text = std::getenv("UNDERSPEC_CHECKPOINT_SECONDS");
  if (!text || !*text) return kCheckpointInterval;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (*end != '\0' || !(seconds >= 0.0) || seconds > 3600.0) return kCheckpointInterval;
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// UNDERSPEC_CUDA_BOOTSTRAP=1|0 (unset or empty: 0): whether a run on the CUDA backend computes
// large groups' bootstrap resamples on the GPU. Off until measured: a resample per GPU thread,
// its counts in global memory, is latency-bound, and the CPU's lanes on a GPU host's cores may
// well be faster (bench/gpu-check.sh times both). Any other value is a usage error, whatever
// the backend, so that a typo is not silently ignored.
bool gpu_bootstrap_wanted() {
  const char* text = std::getenv("UNDERSPEC_CUDA_BOOTSTRAP");
  const std::string_view value = text ? text : "";
  if (value == "1") return true;
  if (value.empty() || value == "0") return false;
  throw UsageError("UNDERSPEC_CUDA_BOOTSTRAP must be 1 or 0, got '" + std::string(value) + "'");
}

// Keeps what a result row needs in memory (perceptron weights), and what the checkpoint
// needs on disk (every parameter only with --save-params).
std::vector<float> kept_params(const ReplicaSpec& spec, std::vector<float>&& params, bool save_params) {
  if (save_params || spec.model == ModelKind::perceptron) return std::move(params);
  return {};
}

// Receives the backend's results: rows in memory, segments on disk, progress.
class ResultCollector {
 public:
  ResultCollector(const Sweep& sweep, std::uint32_t begin, std::vector<ReplicaResult>& rows, std::vector<bool>& done,
                  CheckpointWriter& writer, ProgressReporter& progress, bool save_params)
      : sweep_(sweep),
        begin_(begin),
        rows_(rows),
        done_(done),
        writer_(writer),
        progress_(progress),
        save_params_(save_params) {}

  void operator()(std::span<const ReplicaResult> results) {
    // Decided before the lock: a replay of a diverged replica takes a training's time.
    std::vector<std::string> diverged = locator_.markers(results);
    std::lock_guard lock(mutex_);
    std::uint64_t steps = 0;
    double work = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const ReplicaResult& r = results[i];
      const std::size_t slot = r.id - begin_;
      if (r.id < begin_ || slot >= rows_.size() || done_[slot])
        throw std::logic_error("backend reported replica " + std::to_string(r.id) + " twice or unasked");
      const ReplicaSpec& spec = sweep_.replicas[r.id];
      ReplicaResult stored = r;
      canonicalize_nans(stored);
      stored.diverged = std::move(diverged[i]);
      stored.params = kept_params(spec, std::vector<float>(r.params), save_params_);
      // The row keeps a perceptron's parameters only: MLPs' live on disk (with --save-params),
      // so the row is made without them (a cleared copy would keep its capacity).
      std::vector<float> params = std::move(stored.params);
      ReplicaResult& row = rows_[slot];
      row = stored;
      if (spec.model == ModelKind::perceptron) row.params = params;
      stored.params = std::move(params);
      done_[slot] = true;
      pending_bytes_ += sizeof(ReplicaResult) + stored.params.size() * sizeof(float);
      pending_.push_back(std::move(stored));
      steps += replica_steps(sweep_.config_of(spec));
      work += replica_work(sweep_.config_of(spec), spec.model);
    }
    progress_.add(results.size(), steps, work);
    if (pending_.size() >= kCheckpointMaxRecords || pending_bytes_ >= kCheckpointMaxBytes ||
        Clock::now() - last_write_ >= interval_)
      flush_locked();
  }
  void flush() {
    std::lock_guard lock(mutex_);
    flush_locked();
  }
  // After an error: keeps what finished if it can, without replacing that error by the same
  // failure again (a full disk fails this write too). Returns how many replicas are saved.
  std::size_t flush_after_error() noexcept {
    std::lock_guard lock(mutex_);
    try {
      flush_locked();
    } catch (...) {  // the records stay pending: not saved
    }
    return static_cast<std::size_t>(std::count(done_.begin(), done_.end(), true)) - pending_.size();
  }

 private:
  void flush_locked() {
    writer_.write_segment(pending_);
    pending_.clear();
    pending_bytes_ = 0;
    last_write_ = Clock::now();
  }
  const Sweep& sweep_;
  DivergenceLocator locator_{sweep_};
  std::uint32_t begin_;
  std::vector<ReplicaResult>& rows_;
  std::vector<bool>& done_;
  CheckpointWriter& writer_;
  ProgressReporter& progress_;
  bool save_params_;
  std::mutex mutex_;
  std::vector<ReplicaResult> pending_;
  std::size_t pending_bytes_ = 0;
  Clock::duration interval_ = checkpoint_interval();
  Clock::time_point last_write_ = Clock::now();
};

// An exclusive lock on the run's checkpoint state for as long as the run goes on, so that a
// second process (a resume submitted twice) cannot write segments beside it. A lock found
// taken is tried again for half a second: `underspec status` probes it for an instant.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir) : lock_(checkpoint_dir(dir) / "state.json", O_RDONLY, dir, 50) {}

 private:
  ExclusiveLock lock_;
};

// The replicas of `range` that the checkpoint in `dir` holds, for a dry run of a resume (read
// without the run lock: segments appear whole, by rename, so a running run does not harm it).
std::vector<bool> finished_replicas(const std::filesystem::path& dir, ShardRange range) {
  std::vector<bool> done(range.end - range.begin, false);
  for_each_checkpoint_record(dir, [&](ReplicaResult&& r) {
    if (r.id < range.begin || r.id >= range.end)
      throw CheckpointError("checkpoint holds replica " + std::to_string(r.id) + " outside this run's range");
    done[r.id - range.begin] = true;
  });
  return done;
}

// The command that continues the run in `dir`, for pasting into a shell.
std::string resume_command(const RunOptions& options, const std::filesystem::path& dir) {
  std::string cmd = options.program + " run --resume " + shell_path(dir.string());
  if (options.shard)
    cmd += " --shard " + std::to_string(options.shard->index) + "/" + std::to_string(options.shard->count);
  if (options.save_params) cmd += " --save-params";
  return cmd;
}

// Inside a task of a Slurm sweep (DIR/shards/<i>, DIR/slurm.json), the way on is not a
// resume by hand: a preempted task is requeued by Slurm itself, and anything else (a time
// limit, scancel, an error) is mended by submitting the unfinished shards again.
std::string slurm_hint(const std::filesystem::path& dir) {
  const char* job = std::getenv("SLURM_JOB_ID");
  const std::filesystem::path run = std::filesystem::absolute(dir).lexically_normal();
  const std::filesystem::path sweep = run.parent_path().parent_path();
  std::error_code ec;
  if (!job || !*job || run.parent_path().filename() != "shards" || !std::filesystem::exists(sweep / "slurm.json", ec))
    return "";
  return "\nunderspec: (Slurm requeues a preempted task by itself; after a time limit, scancel or an error: "
         "underspec submit " +
         shell_path(sweep.string()) + ")";
}

}  // namespace

bool is_device_name(const std::string& device) { return device == "auto" || device == "cpu" || device == "cuda"; }

std::filesystem::path default_output_dir(std::chrono::system_clock::time_point now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &utc);
  const std::filesystem::path base = std::filesystem::path("runs") / stamp;
  std::filesystem::path dir = base;
  for (int suffix = 2; std::filesystem::exists(dir); ++suffix) dir = base.string() + "-" + std::to_string(suffix);
  return dir;
}

int run_experiment(const RunOptions& options, std::ostream& out, std::ostream& err) {
  if (!is_device_name(options.device))
    throw UsageError("--device must be auto, cpu or cuda, got '" + options.device + "'");
  const auto started = std::chrono::system_clock::now();
  std::filesystem::path dir = options.out;
  if (dir.empty()) {
    if (options.resume) throw UsageError("--resume needs the run directory (--resume DIR or --out DIR)");
    dir = default_output_dir(started);
  }

  // The config: as given, or (resume without CONFIG/--set) the one the directory was started with.
  RunDirectory run_dir = inspect_run_dir(dir, options.resume);
  ExperimentConfig config = options.config;
  if ((run_dir.has_checkpoint || run_dir.has_config) && !options.config_given) config = run_dir.config;
  const ShardSpec shard = options.shard.value_or(ShardSpec{});
  const std::uint64_t shard_replicas = (replica_count(config) + shard.count - 1) / shard.count;  // the largest shard
  require_host_memory(estimate_host_memory(config, make_cells(config), options.threads, options.save_params,
                                           shard_replicas, device_uses_adam_tables(options.device)),
                      options.shard.has_value());
  const Sweep sweep = make_sweep(config);
  const ShardRange range = shard_range(static_cast<std::uint32_t>(sweep.replicas.size()), shard.index, shard.count);
  for (const std::string& w : idle_axis_warnings(config)) err << "underspec: warning: " << w << '\n';
  if (range.begin == range.end)  // valid (merge takes it), but rarely what was meant
    err << "underspec: warning: shard " << shard.index << "/" << shard.count << " holds no replica (the sweep has "
        << sweep.replicas.size() << ")\n";
  CheckpointState state{config_hash(config), shard.index,           shard.count,         range.begin,
                        range.end,           sweep.replicas.size(), options.save_params, git_commit()};
  if (run_dir.has_checkpoint) {
    require_same_run(run_dir, config, state);
    if (const std::string w = other_build_warning(dir, run_dir.state); !w.empty())
      err << "underspec: warning: " << w << '\n';
  }
  if (run_dir.has_config && config_hash(run_dir.config) != state.config_hash) {
    RunDirectory reserved = run_dir;  // interrupted before its checkpoint state: the same checks
    reserved.state = state;
    reserved.state.config_hash = config_hash(run_dir.config);
    require_same_run(reserved, config, state);
  }

  const std::span<const ReplicaSpec> range_replicas =
      std::span(sweep.replicas).subspan(range.begin, range.end - range.begin);
  if (options.dry_run) {
    const std::vector<bool> done = run_dir.has_checkpoint ? finished_replicas(dir, range) : std::vector<bool>{};
    RunPlan plan = plan_run(sweep, range, options.save_params, options.report && !options.shard, options.device,
                            options.threads, done);
    if (device_uses_adam_tables(options.device)) try {
        plan.device_memory = describe_cuda_memory(sweep, range_replicas, options.gpus);
      } catch (const DeviceMemoryShort& e) {
        throw UsageError(e.what());
      }
    const TimeEstimate time = estimate_run_time(sweep, range, options.device, options.threads, done);
    out << describe_plan(plan, sweep, dir, &time) << std::flush;
    return 0;
  }
  const RunPlan plan =
      plan_run(sweep, range, options.save_params, options.report && !options.shard, options.device, options.threads);
  require_resources(plan, dir);

  const bool gpu_bootstrap = gpu_bootstrap_wanted();
  std::string notice;
  const std::unique_ptr<Backend> backend = make_backend(options.device, options.threads, &notice, options.gpus);
  // A run on the CUDA backend computes large groups' bootstrap resamples on its (first) GPU
  // too: the same bits as the CPU's (bootstrap_device.hpp), so only the speed changes.
  std::optional<ScopedBootstrapDevice> gpu_statistics;
  if (backend->name() == "cuda" && gpu_bootstrap)
    gpu_statistics.emplace(cuda_bootstrap_device(options.gpus.empty() ? -1 : options.gpus.front()));

  try {  // a sweep the GPU cannot hold is refused like one the host cannot
    backend->require_memory(sweep, range_replicas);
  } catch (const DeviceMemoryShort& e) {
    throw UsageError(e.what());
  }

  // From here on the directory is ours: reserved, then filled.
  if (!run_dir.has_checkpoint) reserve_run_dir(dir, options.out.empty(), config, state);
  const RunLock lock(dir);
  remove_output_temporaries(dir);  // of a session killed while writing the outputs

  std::vector<ReplicaResult> rows(range.end - range.begin);
  std::vector<bool> done(rows.size(), false);
  std::uint64_t already = 0;
  for_each_checkpoint_record(dir, [&](ReplicaResult&& r) {
    if (r.id < range.begin || r.id >= range.end)
      throw CheckpointError("checkpoint holds replica " + std::to_string(r.id) + " outside this run's range");
    const std::size_t slot = r.id - range.begin;
    if (done[slot]) return;  // the same replica saved twice: identical by determinism
    if (sweep.replicas[r.id].model != ModelKind::perceptron) r.params = std::vector<float>();  // frees it
    rows[slot] = std::move(r);
    done[slot] = true;
    ++already;
  });
  std::vector<ReplicaSpec> todo;
  for (std::uint32_t id = range.begin; id < range.end; ++id)
    if (!done[id - range.begin]) todo.push_back(sweep.replicas[id]);
  // summary.json is written last (write_outputs): with it and every replica done, the run is
  // finished and a resume leaves it alone (its record stays that of the session that ran it).
  if (todo.empty() && std::filesystem::exists(dir / "summary.json")) {
    err << "underspec: " << dir.string() << " is already finished (" << rows.size() << " replicas); nothing to do"
        << (options.report && !options.shard ? " (underspec report DIR redraws the report)" : "") << '\n';
    return 0;
  }
  // The fallback notice only now that there is work: a finished run's resume only says so.
  if (!notice.empty()) err << "underspec: " << notice << '\n';
  if (already > 0)
    err << "underspec: resuming " << dir.string() << ": " << already << " of " << rows.size()
        << " replicas already done\n";

  RunInfo info{options.version,
               git_commit(),
               options.command_line,
               host_name(),
               utc_timestamp(started),
               backend->name(),
               {backend->name()},
               backend->threads(),
               0.0,
               options.shard ? std::to_string(shard.index) + "/" + std::to_string(shard.count) : "",
               backend->kernels()};
  StopSignals signals;  // until the end: the statistics and the report can take a while too
  {
    CheckpointWriter writer(dir);
    double todo_work = 0;
    for (const ReplicaSpec& r : todo) todo_work += replica_work(sweep.config_of(r), r.model);
    ProgressReporter progress(rows.size(), todo.empty() ? ProgressMode::none : options.progress, err,
                              options.stderr_is_terminal, already, todo_work);
    ResultCollector collect(sweep, range.begin, rows, done, writer, progress, options.save_params);
    const auto start = Clock::now();
    try {
      backend->train(sweep, todo, std::ref(collect), &signals.requested());
      collect.flush();  // the last records (a full disk here loses no more than a failure in training)
    } catch (...) {
      const std::size_t saved = collect.flush_after_error();
      progress.finish();
      err << "underspec: training failed (the error is below); " << saved << " of " << rows.size()
          << " replicas are saved in " << dir.string()
          << "\nunderspec: to continue once it is fixed: " << resume_command(options, dir) << slurm_hint(dir) << '\n';
      throw;
    }
    progress.finish();
    info.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const bool all_done = std::find(done.begin(), done.end(), false) == done.end();
    if (signals.requested().load() && !all_done) {  // after the last replica: the statistics hear it
      const int status = 128 + signals.signal();
      std::size_t finished = 0;
      for (bool d : done) finished += d;
      err << "underspec: stopped by signal " << signals.signal() << "; " << finished << " of " << rows.size()
          << " replicas are saved in " << dir.string() << "\nunderspec: to continue: " << resume_command(options, dir)
          << slurm_hint(dir) << '\n';
      return status;
    }
  }
  for (bool d : done)
    if (!d) throw std::runtime_error("backend " + info.backend + " did not train every replica");

  std::vector<std::filesystem::path> param_sources;
  if (options.save_params) param_sources.push_back(dir);
  // A shard's report is the merge's.
  try {
    return finalize_run(dir, sweep, std::move(rows), info, param_sources, options.report && !options.shard, out, err,
                        {}, &signals);
  } catch (const Interrupted& stop) {  // in the statistics: nothing of them was written
    err << "underspec: stopped by signal " << stop.signal << " while computing the statistics; all "
        << (range.end - range.begin) << " replicas are saved in " << dir.string()
        << "\nunderspec: to write the outputs: " << resume_command(options, dir) << '\n';
    return 128 + stop.signal;
  }
}

}  // namespace underspec
