// What a run leaves behind: replicas.csv (one tidy row per replica), stress.csv (one row
// per replica x stress factor), summary.json and summary.csv (statistics per
// (cell, model, regime) group), config.toml, and a table for people. All text is produced
// deterministically (max_digits10), so equal results give equal bytes whatever the shard
// layout, thread count or resume point; only RunInfo differs between runs.
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "underspec/backends/backend.hpp"
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
  double wall_seconds = 0;  // training only
  std::string shard;        // "I/N" for a shard, "" otherwise
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

struct GroupSummary {
  std::uint32_t cell;
  ModelKind model;
  Regime regime;
  Summary iid_rmse, ood_rmse;
  std::vector<Summary> stress_rmse;  // one per data.stress_factors of the cell
  std::vector<Summary> weights;      // perceptrons: one per kWeightNames; empty for MLPs
};

// One group per (cell, model, regime) present, in sweep order.
std::vector<GroupSummary> summarize_groups(const RunRecord& run);

std::string replicas_csv(const RunRecord& run);
std::string stress_csv(const RunRecord& run);
nlohmann::json summary_json(const RunRecord& run, const std::vector<GroupSummary>& groups);
std::string summary_csv(const RunRecord& run, const std::vector<GroupSummary>& groups);
std::string summary_table(const RunRecord& run, const std::vector<GroupSummary>& groups,
                          const std::filesystem::path& dir);

// Writes config.toml, replicas.csv, stress.csv, summary.csv and summary.json (last) into
// the existing directory `dir`, each file atomically.
void write_outputs(const std::filesystem::path& dir, const RunRecord& run, const std::vector<GroupSummary>& groups);

}  // namespace underspec
