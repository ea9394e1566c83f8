// Output files: atomic writes leave nothing half-done; the summaries are summarize() of
// the replica values; the CSV text is exact.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "temp_dir.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/config/config_io.hpp"
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

// A small synthetic run: 2 models x 2 regimes x 3 seeds with known values.
RunRecord synthetic_run() {
  RunRecord run;
  run.config.sweep.seeds = 3;
  run.config.sweep.regimes = {Regime::baseline, Regime::augmentation};
  run.config.data.coefficients = {1.5, -2.0};
  run.config.data.intercept = 0.25;
  run.replicas = make_sweep(run.config).replicas;
  for (const ReplicaSpec& r : run.replicas) {
    ReplicaResult result;
    result.id = r.id;
    result.iid_rmse = 1.0 + 0.1 * r.id + 1.0 / 3.0;
    result.ood_rmse = 2.0 + r.id * r.id * 0.01;
    const int n_params = r.model == ModelKind::perceptron ? 4 : 10;
    for (int p = 0; p < n_params; ++p)
      result.params.push_back(0.1f * static_cast<float>(p + 1) + 0.01f * static_cast<float>(r.seed));
    run.results.push_back(result);
  }
  run.backend = "cpu";
  run.threads = 2;
  run.wall_seconds = 0.5;
  run.version = "test";
  return run;
}

std::vector<double> column(const RunRecord& run, ModelKind m, Regime g, double ReplicaResult::*metric) {
  std::vector<double> v;
  for (std::size_t i = 0; i < run.replicas.size(); ++i)
    if (run.replicas[i].model == m && run.replicas[i].regime == g) v.push_back(run.results[i].*metric);
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
  EXPECT_EQ(line, "replica,model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias");
  for (std::size_t i = 0; i < run.replicas.size(); ++i) {
    ASSERT_TRUE(std::getline(csv, line));
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    if (line.back() == ',') cells.push_back("");
    ASSERT_EQ(cells.size(), 10u) << line;
    EXPECT_EQ(cells[0], std::to_string(i));
    EXPECT_EQ(cells[1], to_string(run.replicas[i].model));
    EXPECT_EQ(cells[2], to_string(run.replicas[i].regime));
    EXPECT_EQ(cells[3], std::to_string(run.replicas[i].seed));
    EXPECT_EQ(std::strtod(cells[4].c_str(), nullptr), run.results[i].iid_rmse);  // max_digits10: exact
    EXPECT_EQ(std::strtod(cells[5].c_str(), nullptr), run.results[i].ood_rmse);
    for (int p = 0; p < 4; ++p) {
      if (run.replicas[i].model == ModelKind::perceptron)
        EXPECT_EQ(std::strtof(cells[6 + p].c_str(), nullptr), run.results[i].params[p]);
      else
        EXPECT_EQ(cells[6 + p], "");
    }
  }
  EXPECT_FALSE(std::getline(csv, line));
}

TEST(Outputs, SummaryCsvHasOneRowPerGroup) {
  const RunRecord run = synthetic_run();
  const std::string csv = summary_csv(summarize_groups(run));
  std::istringstream in(csv);
  std::string header, row;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("model,regime,replicas,iid_rmse_mean,iid_rmse_std,iid_rmse_min,iid_rmse_q1,", 0), 0u);
  EXPECT_NE(header.find(",ood_rmse_median,ood_rmse_q3,ood_rmse_max"), std::string::npos);
  std::getline(in, row);
  EXPECT_EQ(row.rfind("perceptron,baseline,3,", 0), 0u);
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

TEST_F(OutputDir, WriteOutputsCreatesExactlyTheFourFiles) {
  const RunRecord run = synthetic_run();
  write_outputs(dir_ / "run", run, summarize_groups(run));
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run"});  // no staging directory left over
  EXPECT_EQ(entries(dir_ / "run"),
            (std::vector<std::string>{"config.toml", "replicas.csv", "summary.csv", "summary.json"}));
  EXPECT_EQ(read(dir_ / "run" / "replicas.csv"), replicas_csv(run));
  EXPECT_EQ(config_to_toml(load_config(dir_ / "run" / "config.toml")), config_to_toml(run.config));
  EXPECT_THROW(write_outputs(dir_ / "run", run, summarize_groups(run)), OutputError);  // not empty
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run"});
}

}  // namespace
}  // namespace underspec
