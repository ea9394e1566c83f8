// Re-scoring saved parameters on new test domains (see score.hpp).
#include "underspec/run/score.hpp"

#include <omp.h>

#include <fstream>
#include <map>
#include <optional>
#include <ostream>

#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/backends/divergence_replay.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/npy.hpp"
#include "underspec/outputs/staging_dir.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/finalize.hpp"
#include "underspec/run/plan.hpp"
#include "underspec/run/run_dir.hpp"
#include "underspec/run/run_info.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

constexpr const char* kScoreKeys[] = {"data.stress_factors", "data.iid_factor", "data.ood_factor", "data.n_test"};

int score_into(const fs::path& dir, const std::vector<std::string>& overrides, const RunOptions& options,
               const StopSignals& signals, fs::path& target, std::ostream& out, std::ostream& err) {
  if (const std::string problem = path_problem(dir, true); !problem.empty())
    throw UsageError("score: run directory " + dir.string() + " " + problem);
  // Checked first: inspect_run_dir would call a run without one an occupied output directory.
  std::error_code ec;
  if (!fs::exists(dir / "checkpoint" / "state.json", ec)) throw_no_checkpoint("score", dir);
  const RunDirectory run_dir = inspect_run_dir(dir, true);
  if (!run_dir.has_checkpoint || !fs::exists(dir / "summary.json"))
    throw UsageError("score: " + dir.string() + " is not a finished underspec run");
  ExperimentConfig config = run_dir.config;
  for (const std::string& o : overrides) {
    std::string key = o.substr(0, o.find('='));  // trimmed, as --set reads it
    key.erase(key.find_last_not_of(" \t") + 1);
    key.erase(0, key.find_first_not_of(" \t"));
    if (std::find(std::begin(kScoreKeys), std::end(kScoreKeys), key) == std::end(kScoreKeys))
      throw UsageError("score: --set " + o +
                       ": only data.stress_factors, data.iid_factor, data.ood_factor and "
                       "data.n_test can change without retraining");
    for (const GridAxis& axis : config.sweep.grid)  // the cells would keep their axis values
      if (axis.key == key)
        throw UsageError("score: --set " + o + ": " + key + " is a grid axis of this run; its cells keep their values");
    apply_override(config, o);
  }
  const Sweep sweep = make_sweep(config);
  const ShardRange range{run_dir.state.begin, run_dir.state.end};
  // Its test sets, the parameters it reads and its rows: a run's host memory (parameters
  // held as with --save-params), checked as run checks it, before anything is read.
  require_host_memory(estimate_host_memory(config, sweep.cells, options.threads, true, range.end - range.begin), true,
                      "score");
  // A damaged params.npy is bad input like a missing one: exit 2, before anything is created.
  const fs::path npy_path = dir / "params.npy";
  if (const std::string problem = path_problem(npy_path, false); !problem.empty())
    throw UsageError("score: " + npy_path.string() + " " + problem + " (was the run made with --save-params?)");
  std::vector<std::vector<float>> all_params(range.end - range.begin);
  try {
    NpyFloatMatrixReader params(npy_path);  // checks the header and the file's size
    if (params.rows() != all_params.size())
      throw std::runtime_error(npy_path.string() + ": has " + std::to_string(params.rows()) + " rows for " +
                               std::to_string(all_params.size()) + " replicas");
    for (std::uint32_t k = 0; k < all_params.size(); ++k) all_params[k] = params.row(k);
  } catch (const std::runtime_error& e) {
    throw UsageError(std::string("score: ") + e.what());
  }

  target = options.out.empty() ? default_output_dir(std::chrono::system_clock::now()) : options.out;
  require_new_output_dir(target, OutputUse::replace);
  // Its outputs are a run's (no params.npy): refused up front when they would not fit, as run does.
  const bool shard = run_dir.state.shard_count > 1;
  require_resources(plan_run(sweep, range, false, options.report && !shard, "cpu", 1), target);
  StagingDir staged(target, options.out.empty());  // reserved before the work, as run does
  target = staged.target();

  // The test sets of every cell: IID, OOD, then the stress domains.
  std::vector<std::vector<Dataset>> tests(sweep.cells.size());
  for (std::size_t c = 0; c < sweep.cells.size(); ++c) {
    const ExperimentConfig& cc = sweep.cells[c].config;
    for (const TestDomain d : test_domains(cc))
      tests[c].push_back(make_domain_set(cc, d.set, d.factor, cc.data.n_test));
  }
  std::vector<ReplicaResult> rows(all_params.size());
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  const CpuKernels& kernels = active_cpu_kernels();  // throws before any work, when unusable
  DivergenceLocator locator(sweep);                  // the same text for a diverged replica as the run's
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
  for (std::size_t k = 0; k < rows.size(); ++k) {
    if (signals.requested().load()) continue;  // stopping: skip the rest
    const ReplicaSpec& spec = sweep.replicas[range.begin + k];
    const ExperimentConfig& cc = sweep.config_of(spec);
    const NetShape shape = net_shape(cc, spec.model);
    TrainWorkspace workspace(shape, cc.train.batch_size, kernels);
    ReplicaResult& r = rows[k];
    r.id = spec.id;
    const float* p = all_params[k].data();
    const auto& sets = tests[spec.cell];
    r.iid_rmse = evaluate_rmse(shape, p, sets[0], workspace);
    r.ood_rmse = evaluate_rmse(shape, p, sets[1], workspace);
    for (std::size_t s = 2; s < sets.size(); ++s) r.stress_rmse.push_back(evaluate_rmse(shape, p, sets[s], workspace));
    r.diverged = divergence_of(std::span<const float>(p, static_cast<std::size_t>(param_count(shape))), r,
                               [&] { return locator.where(spec); });
    if (spec.model == ModelKind::perceptron) r.params.assign(p, p + kPerceptronParams);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  throw_if_stopped(signals);

  CheckpointState state{config_hash(config),
                        run_dir.state.shard_index,
                        run_dir.state.shard_count,
                        range.begin,
                        range.end,
                        sweep.replicas.size(),
                        false,
                        git_commit()};
  fs::path staging = staged.path();
  reserve_run_dir(staging, false, config, state);
  CheckpointWriter(staging).write_segment(rows);
  err << "underspec: scored " << rows.size() << " replicas of " << dir.string() << " without training\n";
  RunInfo info{options.version,
               git_commit(),
               options.command_line,
               host_name(),
               utc_timestamp(std::chrono::system_clock::now()),
               "cpu",
               {"cpu"},
               threads,
               seconds,
               shard ? std::to_string(state.shard_index) + "/" + std::to_string(state.shard_count) : "",
               cpu_kernels_description(),
               "scoring"};
  // A scored shard is still a shard: its metadata says so, and its report is the merge's.
  return finalize_run(
      staging, sweep, std::move(rows), info, {}, options.report && !shard, out, err,
      [&] {
        throw_if_stopped(signals);
        const HoldSecondSignal hold;                    // no half-moved outputs
        staged.commit({"checkpoint", "summary.json"});  // last: they mark a run, and a finished one
        return staged.target();
      },
      &signals);
}

}  // namespace

int score_run(const fs::path& dir, const std::vector<std::string>& overrides, const RunOptions& options,
              std::ostream& out, std::ostream& err) {
  StopSignals signals;  // a stop removes what was staged (see StagingDir) and says so
  fs::path target = options.out;
  try {
    return score_into(dir, overrides, options, signals, target, out, err);
  } catch (const Interrupted& stop) {
    return report_interrupted("score", stop.signal, target, options.command_line, err);
  }
}

}  // namespace underspec
