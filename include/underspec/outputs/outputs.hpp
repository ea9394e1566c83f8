// What a run leaves behind: replicas.csv (one tidy row per replica), stress.csv (one row
// per replica x stress factor), summary.json and summary.csv (statistics per
// (cell, model, regime) group), comparisons.csv (each remedy against the baseline of its
// cell and model), config.toml, and a table for people. All text is produced
// deterministically (max_digits10), so equal results give equal bytes whatever the shard
// layout, thread count or resume point; only RunInfo differs between runs.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "underspec/backends/backend.hpp"
#include "underspec/stats/linear_theory.hpp"
#include "underspec/stats/stats.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {

// About the run itself, not its results: these differ between a run, its shards and
// their merge, and are the only fields of the outputs that may (summary.json "run").
struct RunInfo {
  std::string version, git_commit, command_line, host, started_utc;
  std::string backend;
  std::vector<std::string> devices;
  int threads = 0;
  double wall_seconds = 0;         // training only (scoring only for `score`)
  std::string shard;               // "I/N" for a shard, "" otherwise
  std::string cpu_kernels;         // the CPU's kernels when it computed the results ("avx2+fma (auto)"), else ""
  std::string timed = "training";  // what wall_seconds measured, for the table's last line
};

struct RunRecord {
  const Sweep* sweep = nullptr;
  // Sorted by id; params hold the perceptron weights (MLPs: empty unless saved).
  std::vector<ReplicaResult> results;
  RunInfo info;
  const ReplicaSpec& spec(const ReplicaResult& r) const { return sweep->replicas.at(r.id); }
};

inline constexpr const char* kWeightNames[] = {"x1", "x2", "x3", "bias"};
inline constexpr int kPerceptronParams = 4;

// Inference about one metric (IID or OOD RMSE) of a group. Intervals are 95%; their ends
// are NaN where undefined (n = 1).
struct MetricInference {
  Interval mean_ci;  // Student t
  Interval std_ci;   // bootstrap percentile
  // Seed of the replica with the max / min value; none when every replica diverged (a seed
  // of 0 would read as a real answer).
  std::optional<std::uint32_t> worst_seed, best_seed;
};

// A statistic with its 95% interval.
struct Estimate {
  double value;
  Interval ci;
};

// A remedy regime against the baseline of the same cell and model (OOD RMSE).
struct Comparison {
  std::uint32_t cell;
  ModelKind model;
  Regime remedy;
  int baseline_n, remedy_n;
  WelchResult mean_difference;  // mean(remedy) - mean(baseline), Welch interval
  Estimate std_ratio;           // std(remedy) / std(baseline), independent bootstrap
  BrownForsytheResult equal_spread;
};

struct GroupSummary {
  std::uint32_t cell;
  ModelKind model;
  Regime regime;
  int diverged = 0;  // replicas of the group left out of every statistic (ReplicaResult::diverged)
  Summary iid_rmse, ood_rmse;
  std::vector<Summary> stress_rmse;  // one per data.stress_factors of the cell
  std::vector<Summary> weights;      // perceptrons: one per kWeightNames; empty for MLPs
  // The values themselves, in id order (the comparisons between groups resample them).
  std::vector<double> iid_values, ood_values;
  MetricInference iid_inference, ood_inference;
  std::vector<MetricInference> stress_inference;  // one per stress_rmse, like ood_inference
  Estimate gap;                                   // mean of per-replica OOD - IID, t interval
  Estimate spread_ratio;                          // std(OOD) / std(IID), paired bootstrap
  Estimate spearman;                              // Spearman's rho of (IID, OOD) across seeds, paired bootstrap
  // Perceptrons: the population least-squares weights of the regime's training
  // distribution (linear_theory.hpp) and the variance of x3's noise there.
  LinearWeights optimum{};
  double train_x3_noise_var = 0;
  // A remedy group's comparison with its baseline (see compare_groups), made once by
  // summarize_groups: its bootstrap costs seconds per comparison at 10^5 replicas.
  std::optional<Comparison> versus_baseline;
};

// One group per (cell, model, regime) present, in sweep order, with their comparisons.
// check_stop, if set, runs between groups and after the last (a stop request throws from
// it: the bootstrap of large groups takes minutes); `stop`, the flag behind it, cuts the
// bootstrap under way short, so that a stop is heard within a fraction of a second.
std::vector<GroupSummary> summarize_groups(const RunRecord& run, const std::function<void()>& check_stop = {},
                                           const std::atomic<bool>* stop = nullptr);
// "mlp baseline" (with its cell's grid values when the sweep has a grid): warnings.
std::string group_label(const Sweep& sweep, const GroupSummary& g);
// `x` in at most `width` columns: %.4f (fewer decimals when needed) below 1e5 in magnitude,
// else scientific (%.3e, fewer digits when needed); "—" when not finite.
std::string table_number(double x, int width);
// One comparison per group with a baseline group of the same cell and model, in group order
// (those summarize_groups made).
std::vector<Comparison> compare_groups(const std::vector<GroupSummary>& groups);

std::string replicas_csv(const RunRecord& run);
std::string stress_csv(const RunRecord& run);
nlohmann::json summary_json(const RunRecord& run, const std::vector<GroupSummary>& groups);
std::string summary_csv(const RunRecord& run, const std::vector<GroupSummary>& groups);
std::string comparisons_csv(const RunRecord& run, const std::vector<GroupSummary>& groups);
// The table on stdout. Each block (groups, weights, comparisons, stress) lists at most
// `max_rows` rows, then a line saying how many more there are and which CSV has them all:
// a 2000-cell grid printed 16,000 lines that scrolled the run line off the terminal. 200
// rows keep every group of a grid of up to 33 cells (six groups each) on the screen's log.
inline constexpr std::size_t kTableRowsPerBlock = 200;
std::string summary_table(const RunRecord& run, const std::vector<GroupSummary>& groups,
                          const std::filesystem::path& dir, std::size_t max_rows = kTableRowsPerBlock);

// Writes config.toml, replicas.csv, stress.csv, summary.csv, comparisons.csv and
// summary.json (last) into
// the existing directory `dir`, each file atomically.
void write_outputs(const std::filesystem::path& dir, const RunRecord& run, const std::vector<GroupSummary>& groups);

}  // namespace underspec
