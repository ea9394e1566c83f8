// What a run leaves behind: replicas.csv (one tidy row per replica), summary.json and
// summary.csv (statistics per (model, regime) group), config.toml, and a table for people.
// All text is produced deterministically (max_digits10), so equal results give equal bytes.
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "underspec/backends/backend.hpp"
#include "underspec/config/config.hpp"
#include "underspec/stats/stats.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {

struct RunRecord {
  ExperimentConfig config;
  std::vector<ReplicaSpec> replicas;   // the sweep
  std::vector<ReplicaResult> results;  // results[i] belongs to replicas[i]
  std::string backend;
  int threads = 0;
  double wall_seconds = 0;  // training only
  std::string version;
};

inline constexpr const char* kWeightNames[] = {"x1", "x2", "x3", "bias"};

struct GroupSummary {
  ModelKind model;
  Regime regime;
  Summary iid_rmse, ood_rmse;
  std::vector<Summary> weights;  // perceptrons: one per kWeightNames; empty for MLPs
};

// One group per (model, regime), in sweep order (models outer, regimes inner).
std::vector<GroupSummary> summarize_groups(const RunRecord& run);

std::string replicas_csv(const RunRecord& run);
nlohmann::json summary_json(const RunRecord& run, const std::vector<GroupSummary>& groups);
std::string summary_csv(const std::vector<GroupSummary>& groups);
std::string summary_table(const RunRecord& run, const std::vector<GroupSummary>& groups,
                          const std::filesystem::path& dir);

// Writes config.toml, replicas.csv, summary.json and summary.csv into `dir`, which appears
// complete or not at all. Throws OutputError if `dir` exists and is not empty.
void write_outputs(const std::filesystem::path& dir, const RunRecord& run, const std::vector<GroupSummary>& groups);

}  // namespace underspec
