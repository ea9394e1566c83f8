// Output files: atomic writes leave nothing half-done; the summaries are summarize() of
// the replica values; the CSV text is exact.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "temp_dir.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/outputs.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

class OutputDir : public TempDirTest {
 protected:
  std::vector<std::string> entries(const fs::path& dir) const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  static std::string read(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

TEST_F(OutputDir, AtomicWriteReplacesAndLeavesNoTemporaries) {
  write_file_atomic(dir_ / "a.txt", "first");
  write_file_atomic(dir_ / "a.txt", "second");
  EXPECT_EQ(read(dir_ / "a.txt"), "second");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"a.txt"});
  EXPECT_THROW(write_file_atomic(dir_ / "missing" / "a.txt", "x"), OutputError);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"a.txt"});
}

TEST_F(OutputDir, StagingDirAppearsOnlyOnCommit) {
  {
    StagingDir staging(dir_ / "run");
    write_file_atomic(staging.path() / "x", "1");
    EXPECT_FALSE(fs::exists(dir_ / "run"));
  }  // not committed: removed
  EXPECT_TRUE(entries(dir_).empty());
  {
    StagingDir staging(dir_ / "run/");  // a trailing slash still stages beside, not inside
    write_file_atomic(staging.path() / "x", "1");
    staging.commit();
  }
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run"});
  EXPECT_EQ(read(dir_ / "run" / "x"), "1");
}

TEST_F(OutputDir, CommitRefusesANonEmptyTarget) {
  fs::create_directory(dir_ / "run");
  std::ofstream(dir_ / "run" / "keep") << "mine";
  {
    StagingDir staging(dir_ / "run");
    write_file_atomic(staging.path() / "x", "1");
    EXPECT_THROW(staging.commit(), OutputError);
  }
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run"});
  EXPECT_EQ(entries(dir_ / "run"), std::vector<std::string>{"keep"});
}

TEST_F(OutputDir, FreeOutputDir) {
  EXPECT_NO_THROW(require_free_output_dir(dir_ / "absent"));
  EXPECT_NO_THROW(require_free_output_dir(dir_));  // empty
  std::ofstream(dir_ / "file") << "x";
  EXPECT_THROW(require_free_output_dir(dir_), OutputError);
  EXPECT_THROW(require_free_output_dir(dir_ / "file"), OutputError);
}

// A small synthetic run: 2 models x 2 regimes x 3 seeds with known values. The sweep
// lives as long as the test program (RunRecord points to it).
RunRecord synthetic_run(const std::vector<double>& stress_factors = {}) {
  ExperimentConfig config;
  config.sweep.seeds = 3;
  config.sweep.regimes = {Regime::baseline, Regime::augmentation};
  config.data.coefficients = {1.5, -2.0};
  config.data.intercept = 0.25;
  config.data.stress_factors = stress_factors;
  static std::vector<std::unique_ptr<Sweep>> sweeps;
  sweeps.push_back(std::make_unique<Sweep>(make_sweep(config)));
  RunRecord run;
  run.sweep = sweeps.back().get();
  for (const ReplicaSpec& r : run.sweep->replicas) {
    ReplicaResult result;
    result.id = r.id;
    result.iid_rmse = 1.0 + 0.1 * r.id + 1.0 / 3.0;
    result.ood_rmse = 2.0 + r.id * r.id * 0.01;
    for (std::size_t k = 0; k < stress_factors.size(); ++k)
      result.stress_rmse.push_back(3.0 + r.id + 0.5 * static_cast<double>(k));
    if (r.model == ModelKind::perceptron)
      for (int p = 0; p < 4; ++p)
        result.params.push_back(0.1f * static_cast<float>(p + 1) + 0.01f * static_cast<float>(r.seed));
    run.results.push_back(result);
  }
  run.info.backend = "cpu";
  run.info.threads = 2;
  run.info.wall_seconds = 0.5;
  run.info.version = "test";
  return run;
}

std::vector<double> column(const RunRecord& run, ModelKind m, Regime g, double ReplicaResult::*metric) {
  std::vector<double> v;
  for (std::size_t i = 0; i < run.results.size(); ++i)
    if (run.sweep->replicas[i].model == m && run.sweep->replicas[i].regime == g) v.push_back(run.results[i].*metric);
  return v;
}

void expect_stats(const nlohmann::json& j, const Summary& s) {
  EXPECT_EQ(j.at("mean").get<double>(), s.mean);
  EXPECT_EQ(j.at("std").get<double>(), s.std);
  EXPECT_EQ(j.at("min").get<double>(), s.min);
  EXPECT_EQ(j.at("q1").get<double>(), s.q1);
  EXPECT_EQ(j.at("median").get<double>(), s.median);
  EXPECT_EQ(j.at("q3").get<double>(), s.q3);
  EXPECT_EQ(j.at("max").get<double>(), s.max);
}

TEST(Outputs, SummaryJsonIsSummarizeOfTheReplicas) {
  const RunRecord run = synthetic_run();
  // Through text, as a reader of summary.json sees it.
  const nlohmann::json j = nlohmann::json::parse(summary_json(run, summarize_groups(run)).dump(2));
  EXPECT_EQ(j.at("backend"), "cpu");
  EXPECT_EQ(j.at("threads"), 2);
  EXPECT_EQ(j.at("wall_seconds"), 0.5);
  EXPECT_EQ(j.at("replicas"), 12);
  EXPECT_EQ(j.at("version"), "test");
  EXPECT_EQ(j.at("config").at("sweep").at("seeds"), 3);
  const auto& groups = j.at("groups");
  ASSERT_EQ(groups.size(), 4u);
  std::size_t k = 0;
  for (ModelKind m : {ModelKind::perceptron, ModelKind::mlp})
    for (Regime g : {Regime::baseline, Regime::augmentation}) {
      const nlohmann::json& group = groups[k++];
      EXPECT_EQ(group.at("model"), to_string(m));
      EXPECT_EQ(group.at("regime"), to_string(g));
      EXPECT_EQ(group.at("replicas"), 3);
      expect_stats(group.at("iid_rmse"), summarize(column(run, m, g, &ReplicaResult::iid_rmse)));
      expect_stats(group.at("ood_rmse"), summarize(column(run, m, g, &ReplicaResult::ood_rmse)));
      EXPECT_EQ(group.contains("weights"), m == ModelKind::perceptron);
    }
  const nlohmann::json& w = groups[0].at("weights");
  EXPECT_EQ(w.at("names"), nlohmann::json({"x1", "x2", "x3", "bias"}));
  EXPECT_EQ(w.at("true"), nlohmann::json({1.5, -2.0, 0.0, 0.25}));
  for (int p = 0; p < 4; ++p) {
    std::vector<double> values;
    for (int i = 0; i < 3; ++i) values.push_back(run.results[static_cast<std::size_t>(i)].params[p]);
    EXPECT_EQ(w.at("mean")[p].get<double>(), summarize(values).mean);
    EXPECT_EQ(w.at("std")[p].get<double>(), summarize(values).std);
  }
}

TEST(Outputs, ReplicasCsvIsExactAndInIdOrder) {
  const RunRecord run = synthetic_run();
  std::istringstream csv(replicas_csv(run));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "replica,cell,model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias");
  const std::vector<ReplicaSpec>& replicas = run.sweep->replicas;
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    ASSERT_TRUE(std::getline(csv, line));
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    if (line.back() == ',') cells.push_back("");
    ASSERT_EQ(cells.size(), 11u) << line;
    EXPECT_EQ(cells[0], std::to_string(i));
    EXPECT_EQ(cells[1], "0");
    EXPECT_EQ(cells[2], to_string(replicas[i].model));
    EXPECT_EQ(cells[3], to_string(replicas[i].regime));
    EXPECT_EQ(cells[4], std::to_string(replicas[i].seed));
    EXPECT_EQ(std::strtod(cells[5].c_str(), nullptr), run.results[i].iid_rmse);  // max_digits10: exact
    EXPECT_EQ(std::strtod(cells[6].c_str(), nullptr), run.results[i].ood_rmse);
    for (int p = 0; p < 4; ++p) {
      if (replicas[i].model == ModelKind::perceptron)
        EXPECT_EQ(std::strtof(cells[7 + p].c_str(), nullptr), run.results[i].params[p]);
      else
        EXPECT_EQ(cells[7 + p], "");
    }
  }
  EXPECT_FALSE(std::getline(csv, line));
}

TEST(Outputs, SummaryCsvHasOneRowPerGroup) {
  const RunRecord run = synthetic_run();
  const std::string csv = summary_csv(run, summarize_groups(run));
  std::istringstream in(csv);
  std::string header, row;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("cell,model,regime,replicas,iid_rmse_mean,iid_rmse_std,iid_rmse_min,iid_rmse_q1,", 0), 0u);
  EXPECT_NE(header.find(",ood_rmse_median,ood_rmse_q3,ood_rmse_max"), std::string::npos);
  std::getline(in, row);
  EXPECT_EQ(row.rfind("0,perceptron,baseline,3,", 0), 0u);
  EXPECT_EQ(std::count(header.begin(), header.end(), ','), std::count(row.begin(), row.end(), ','));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
}

TEST(Outputs, TableHasARowPerGroupAndTheRunLine) {
  const RunRecord run = synthetic_run();
  const std::string table = summary_table(run, summarize_groups(run), "runs/x");
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 6);
  EXPECT_NE(table.find("perceptron  augmentation"), std::string::npos);
  EXPECT_NE(table.find("backend cpu, 2 threads"), std::string::npos);
  EXPECT_NE(table.find("runs/x"), std::string::npos);
}

TEST_F(OutputDir, WriteOutputsCreatesExactlyTheFiveFiles) {
  const RunRecord run = synthetic_run();
  fs::create_directory(dir_ / "run");
  write_outputs(dir_ / "run", run, summarize_groups(run));
  EXPECT_EQ(entries(dir_ / "run"),
            (std::vector<std::string>{"config.toml", "replicas.csv", "stress.csv", "summary.csv", "summary.json"}));
  EXPECT_EQ(read(dir_ / "run" / "replicas.csv"), replicas_csv(run));
  EXPECT_EQ(read(dir_ / "run" / "stress.csv"), "replica,factor,rmse\n");
  EXPECT_EQ(config_to_toml(load_config(dir_ / "run" / "config.toml")), config_to_toml(run.sweep->config));
}

TEST(Outputs, StressCsvIsLongFormAndSummariesHoldEachFactor) {
  const RunRecord run = synthetic_run({0.05, 0.01});
  const std::string csv = stress_csv(run);
  EXPECT_EQ(csv.rfind("replica,factor,rmse\n0,0.05,3\n0,0.01,3.5\n1,0.05,4\n", 0), 0u) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 12 * 2);
  const auto groups = summarize_groups(run);
  ASSERT_EQ(groups[0].stress_rmse.size(), 2u);
  EXPECT_EQ(groups[0].stress_rmse[1].mean, 4.5);  // replicas 0..2: 3.5, 4.5, 5.5
  const nlohmann::json j = nlohmann::json::parse(summary_json(run, groups).dump());
  EXPECT_EQ(j.at("groups")[0].at("stress")[1].at("factor"), 0.01);
  EXPECT_EQ(j.at("groups")[0].at("stress")[1].at("rmse").at("max"), 5.5);
  const std::string summary = summary_csv(run, groups);
  EXPECT_NE(summary.find(",stress2_factor,stress2_rmse_mean,"), std::string::npos);
  EXPECT_NE(summary.find(",0.01,4.5,"), std::string::npos);
}

}  // namespace
}  // namespace underspec
