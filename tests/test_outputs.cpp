// Output files: atomic writes leave nothing half-done; the summaries are summarize() of
// the replica values; the CSV text is exact.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "temp_dir.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/outputs.hpp"
#include "underspec/outputs/staging_dir.hpp"
#include "underspec/run/finalize.hpp"
#include "underspec/run/run_dir.hpp"
#include "underspec/stats/bootstrap.hpp"
#include "underspec/stats/linear_theory.hpp"

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

// summary.csv's header and first row, split into fields (an empty field stays empty).
std::pair<std::vector<std::string>, std::vector<std::string>> first_summary_row(
    const RunRecord& run, const std::vector<GroupSummary>& groups) {
  std::istringstream csv(summary_csv(run, groups));
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  std::vector<std::string> names, cells;
  std::stringstream hs(header), rs(row + ",");
  for (std::string c; std::getline(hs, c, ',');) names.push_back(c);
  for (std::string c; std::getline(rs, c, ',');) cells.push_back(c);
  return {names, cells};
}

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
    EXPECT_EQ(staging.target(), dir_ / "run");
    EXPECT_EQ(staging.path().parent_path(), dir_);  // a hidden sibling
    EXPECT_TRUE(staging.path().filename().string().starts_with(".run.underspec-partial-"));
    write_file_atomic(staging.path() / "x", "1");
    EXPECT_TRUE(fs::is_empty(dir_ / "run"));  // reserved, empty until commit
  }                                           // not committed: the staging dir and the target it made are removed
  EXPECT_TRUE(entries(dir_).empty());
  const mode_t mask = ::umask(022);
  {
    StagingDir staging(dir_ / "run/");  // a trailing slash still stages beside, not inside
    EXPECT_EQ(staging.path().parent_path(), dir_);
    write_file_atomic(staging.path() / "x", "1");
    staging.commit();
  }
  ::umask(mask);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run"});
  EXPECT_EQ(read(dir_ / "run" / "x"), "1");
  // The mode a plain mkdir gives, not mkdtemp's 0700.
  EXPECT_EQ(fs::status(dir_ / "run").permissions(), fs::perms(0755));
}

TEST_F(OutputDir, StagingDirKeepsATargetItDidNotMake) {
  fs::create_directory(dir_ / "run");
  { StagingDir staging(dir_ / "run"); }
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run"});
  EXPECT_TRUE(fs::is_empty(dir_ / "run"));
}

// An existing target is staged inside and keeps its inode, mode and owner: rename(2) cannot
// replace a mount point, `.`, or another user's directory in a sticky one. A killed writer's
// staging inside it is removed; the entries move out with `last` last.
TEST_F(OutputDir, StagingDirFillsAnExistingTargetFromInside) {
  fs::create_directories(dir_ / "run" / ".underspec-partial-Ab12Cd" / "checkpoint");  // what a kill -9 leaves
  fs::permissions(dir_ / "run", fs::perms(0750));
  struct stat before {};
  ASSERT_EQ(::stat((dir_ / "run").c_str(), &before), 0);
  {
    StagingDir staging(dir_ / "run");
    EXPECT_TRUE(staging.inside());
    EXPECT_EQ(staging.path().parent_path(), dir_ / "run");
    EXPECT_TRUE(staging.path().filename().string().starts_with(".underspec-partial-"));
    EXPECT_FALSE(fs::exists(dir_ / "run" / ".underspec-partial-Ab12Cd"));
    for (const char* name : {"a", "summary.json", "z"}) write_file_atomic(staging.path() / name, name);
    fs::create_directory(staging.path() / "plots");
    staging.commit({"summary.json"});
  }
  EXPECT_EQ(entries(dir_ / "run"), (std::vector<std::string>{"a", "plots", "summary.json", "z"}));
  EXPECT_EQ(read(dir_ / "run" / "summary.json"), "summary.json");
  struct stat after {};
  ASSERT_EQ(::stat((dir_ / "run").c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mode, before.st_mode);
  // `.` is the same directory: staged inside it too.
  fs::create_directory(dir_ / "dot");
  const fs::path was = fs::current_path();
  fs::current_path(dir_ / "dot");
  {
    StagingDir staging(".");
    EXPECT_TRUE(staging.inside());
    write_file_atomic(staging.path() / "x", "1");
    staging.commit();
  }
  fs::current_path(was);
  EXPECT_EQ(entries(dir_ / "dot"), std::vector<std::string>{"x"});
}

// A commit into an existing target cut short (kill -9 between two moves) leaves some outputs
// in the target and the rest, with the manifest, in the staging directory. That is nothing
// but leftovers: the next StagingDir removes both and fills the target again. A commit that
// had moved everything out left finished outputs, which stay.
TEST(StagingCommitOrder, TheLastNamesGoLastInTheirOrder) {
  EXPECT_EQ(staging_commit_order({"summary.json", "z.csv", "checkpoint", "a.csv", "params.npy"},
                                 {"checkpoint", "summary.json"}),
            (std::vector<std::string>{"a.csv", "params.npy", "z.csv", "checkpoint", "summary.json"}));
  EXPECT_EQ(staging_commit_order({"b", "a"}, {}), (std::vector<std::string>{"a", "b"}));
}

TEST_F(OutputDir, StagingDirRollsBackACommitCutShort) {
  const fs::path run = dir_ / "run", staging = run / ".underspec-partial-Ab12Cd";
  fs::create_directories(staging / "checkpoint");
  write_file_atomic(staging / "summary.json", "{}");
  write_file_atomic(staging / ".underspec-commit", "a.csv\nb.csv\ncheckpoint\nsummary.json\n");
  write_file_atomic(run / "a.csv", "moved");
  write_file_atomic(run / "b.csv", "moved");
  EXPECT_TRUE(only_staging_leftovers(run));
  EXPECT_EQ(staging_leftover(run), ".underspec-partial-Ab12Cd");
  write_file_atomic(run / "mine.txt", "not ours");
  EXPECT_FALSE(only_staging_leftovers(run));
  fs::remove(run / "mine.txt");
  {
    StagingDir again(run);
    EXPECT_EQ(entries(run), std::vector<std::string>{again.path().filename().string()});
    write_file_atomic(again.path() / "c.csv", "new");
    again.commit({"c.csv"});
  }
  EXPECT_EQ(entries(run), std::vector<std::string>{"c.csv"});
  // Finished: everything moved out, only the manifest left behind.
  fs::create_directories(run / ".underspec-partial-Ef34Gh");
  write_file_atomic(run / ".underspec-partial-Ef34Gh" / ".underspec-commit", "c.csv\n");
  EXPECT_FALSE(only_staging_leftovers(run));
  EXPECT_THROW(StagingDir finished(run), OutputDirTaken);
  EXPECT_EQ(read(run / "c.csv"), "new");
}

TEST_F(OutputDir, StagingDirRefusesANonEmptyTargetAndCommitRefusesOneFilledMeanwhile) {
  fs::create_directory(dir_ / "run");
  std::ofstream(dir_ / "run" / "keep") << "mine";
  EXPECT_THROW(StagingDir staging(dir_ / "run"), OutputDirTaken);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run"});
  fs::remove(dir_ / "run" / "keep");
  {
    StagingDir staging(dir_ / "run");
    write_file_atomic(staging.path() / "x", "1");
    std::ofstream(dir_ / "run" / "keep") << "mine";  // put there while staging
    EXPECT_THROW(staging.commit(), OutputError);
  }
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run"});
  EXPECT_EQ(entries(dir_ / "run"), std::vector<std::string>{"keep"});
}

TEST_F(OutputDir, StagingDirLocksItsTargetAndRemovesAKilledWritersLeftovers) {
  fs::create_directories(dir_ / ".run.underspec-partial-Ab12Cd" / "checkpoint");  // what a kill -9 leaves
  fs::create_directories(dir_ / ".runner.underspec-partial-Ab12Cd");              // another target's
  {
    StagingDir staging(dir_ / "run");
    EXPECT_FALSE(fs::exists(dir_ / ".run.underspec-partial-Ab12Cd"));
    EXPECT_TRUE(fs::exists(dir_ / ".runner.underspec-partial-Ab12Cd"));
    try {
      StagingDir second(dir_ / "run");
      ADD_FAILURE() << "a second writer was not refused";
    } catch (const OutputDirTaken& e) {
      EXPECT_NE(std::string(e.what()).find("being written by another underspec process"), std::string::npos);
    }
    EXPECT_TRUE(fs::exists(staging.path()));  // the refused one removed nothing of the first's
    EXPECT_TRUE(fs::exists(dir_ / "run"));
  }
  EXPECT_EQ(entries(dir_), std::vector<std::string>{".runner.underspec-partial-Ab12Cd"});
}

TEST_F(OutputDir, StagingDirRenamesATakenTargetWhenAsked) {
  fs::create_directory(dir_ / "run");
  std::ofstream(dir_ / "run" / "keep") << "mine";
  StagingDir staging(dir_ / "run", true);
  EXPECT_EQ(staging.target(), dir_ / "run-2");
  staging.commit();
  EXPECT_EQ(entries(dir_), (std::vector<std::string>{"run", "run-2"}));
}

// Default run names taken by commands started in the same second: a name default_output_dir
// found free (`x-3`) but taken by the time it is created continues the series (`x-4`), as
// the README promises `-2`, `-3`, ..., instead of becoming `x-3-2`.
TEST_F(OutputDir, ATakenDefaultNameContinuesItsSeries) {
  for (const char* taken : {"x", "x-2", "x-3"}) fs::create_directory(dir_ / taken);
  fs::path dir = dir_ / "x-3";
  EXPECT_TRUE(make_output_dir(dir, true));
  EXPECT_EQ(dir, dir_ / "x-4");
  dir = dir_ / "x";
  EXPECT_TRUE(make_output_dir(dir, true));
  EXPECT_EQ(dir, dir_ / "x-5");
  fs::create_directory(dir_ / "y-2");  // no `y`: `y-2` is a name of its own
  dir = dir_ / "y-2";
  EXPECT_TRUE(make_output_dir(dir, true));
  EXPECT_EQ(dir, dir_ / "y-2-2");
  dir = dir_ / "x-3";
  EXPECT_FALSE(make_output_dir(dir, false));  // an explicit --out is never renamed
  EXPECT_EQ(dir, dir_ / "x-3");
}

TEST_F(OutputDir, FreeOutputDir) {
  EXPECT_NO_THROW(require_free_output_dir(dir_ / "absent"));
  EXPECT_NO_THROW(require_free_output_dir(dir_));  // empty
  std::ofstream(dir_ / "file") << "x";
  EXPECT_THROW(require_free_output_dir(dir_), OutputDirTaken);
  EXPECT_THROW(require_free_output_dir(dir_ / "file"), OutputDirTaken);
}

// A small synthetic run: 2 models x 2 regimes x 3 seeds with known values. The sweep
// lives as long as the test program (RunRecord points to it).
RunRecord synthetic_run(const std::vector<double>& stress_factors = {}, int seeds = 3, std::uint32_t first_seed = 0) {
  ExperimentConfig config;
  config.sweep.seeds = seeds;
  config.sweep.seed = first_seed;
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
    result.ood_rmse = 2.0 + r.id * r.id * 0.01 + 0.05 * std::sin(7.0 * r.id);
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

// The statistics of large groups take minutes: a stop request is heard between groups, and
// then nothing is written (run says how to finish; merge and score publish nothing).
TEST_F(OutputDir, AStopDuringTheStatisticsWritesNothing) {
  RunRecord run = synthetic_run();
  // As throw_if_stopped: once stopped, every check throws. The checks run on the statistics'
  // threads, before each group (the groups under way when it throws may still check).
  std::atomic<int> checks{0};
  EXPECT_THROW(summarize_groups(run,
                                [&] {
                                  if (++checks >= 2) throw Interrupted{SIGINT};
                                }),
               Interrupted);
  EXPECT_LT(checks.load(), 10);  // no work went on after the stop
  std::ostringstream out, err;
  {
    StopSignals signals;
    std::raise(SIGINT);
    EXPECT_THROW(finalize_run(dir_, *run.sweep, run.results, run.info, {}, false, out, err, {}, &signals), Interrupted);
  }
  EXPECT_FALSE(fs::exists(dir_ / "summary.json"));
  EXPECT_FALSE(fs::exists(dir_ / "replicas.csv"));
  EXPECT_EQ(finalize_run(dir_, *run.sweep, run.results, run.info, {}, false, out, err), 0);  // no signals: as before
  EXPECT_TRUE(fs::exists(dir_ / "summary.json"));
}

// A stop heard only by the bootstraps (the signal came after the last group's check) cut
// them short: those statistics must not come back as finished ones, to be written.
TEST_F(OutputDir, AStopInsideTheLastGroupIsNotTakenForFinishedStatistics) {
  RunRecord run = synthetic_run();
  const std::size_t jobs = 2 * summarize_groups(run).size();  // statistics, then comparisons
  const std::atomic<bool> stop{true};
  std::atomic<std::size_t> checks{0};  // called from the threads that run the groups
  const auto check_stop = [&] {
    if (++checks > jobs) throw Interrupted{SIGINT};
  };
  EXPECT_THROW(summarize_groups(run, check_stop, &stop), Interrupted);
  EXPECT_EQ(checks.load(), jobs + 1);
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
  EXPECT_EQ(line,
            "replica,cell,model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias,iid_rmse_expected,ood_rmse_expected,"
            "diverged");
  const std::vector<ReplicaSpec>& replicas = run.sweep->replicas;
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    ASSERT_TRUE(std::getline(csv, line));
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    if (line.back() == ',') cells.push_back("");
    ASSERT_EQ(cells.size(), 14u) << line;
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
    if (replicas[i].model == ModelKind::perceptron) {
      const DataConfig& data = run.sweep->config_of(replicas[i]).data;
      const auto& w = run.results[i].params;
      const LinearWeights lw{w[0], w[1], w[2], w[3]};
      EXPECT_EQ(std::strtod(cells[11].c_str(), nullptr), expected_rmse(data, lw, x3_noise_variance(data.iid_factor)));
      EXPECT_EQ(std::strtod(cells[12].c_str(), nullptr), expected_rmse(data, lw, x3_noise_variance(data.ood_factor)));
    } else {
      EXPECT_EQ(cells[11], "");
      EXPECT_EQ(cells[12], "");
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
  EXPECT_EQ(header.rfind("cell,model,regime,replicas,diverged,iid_rmse_mean,iid_rmse_std,iid_rmse_min,iid_rmse_q1,", 0),
            0u);
  EXPECT_NE(header.find(",ood_rmse_median,ood_rmse_q3,ood_rmse_max"), std::string::npos);
  std::getline(in, row);
  EXPECT_EQ(row.rfind("0,perceptron,baseline,3,", 0), 0u);
  EXPECT_EQ(std::count(header.begin(), header.end(), ','), std::count(row.begin(), row.end(), ','));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
}

TEST(Outputs, TableHasARowPerGroupAndTheRunLine) {
  const RunRecord run = synthetic_run();
  const std::string table = summary_table(run, summarize_groups(run), "runs/x");
  // groups table (header, 4 groups), blank + weights block (header, 2 perceptron groups),
  // blank + comparisons block (header, 2 comparisons), the run line.
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 1 + 4 + 1 + 3 + 1 + 3 + 1) << table;
  EXPECT_NE(table.find("remedy vs baseline"), std::string::npos);
  EXPECT_NE(table.find("perceptron  augmentation"), std::string::npos);
  EXPECT_NE(table.find("backend cpu, 2 threads"), std::string::npos);
  EXPECT_NE(table.find("runs/x"), std::string::npos);
}

TEST(Outputs, TableBlocksOfManyRowsShowTheFirstAndSayWhereTheRestAre) {
  const RunRecord run = synthetic_run({0.2, 0.1});
  const auto groups = summarize_groups(run);
  const std::string full = summary_table(run, groups, "runs/x");
  EXPECT_EQ(full.find("more of"), std::string::npos) << full;  // a small run: every row, as before
  const std::string cut = summary_table(run, groups, "runs/x", 1);
  // groups (header, 1 row, more), blank + weights (header, 1, more), blank + comparisons
  // (header, 1, more), blank + stress (header, 1, more), the run line.
  EXPECT_EQ(std::count(cut.begin(), cut.end(), '\n'), 3 + 4 + 4 + 4 + 1) << cut;
  EXPECT_NE(cut.find("... 3 more of 4 groups: summary.csv has them all\n"), std::string::npos) << cut;
  EXPECT_NE(cut.find("... 1 more of 2 perceptron groups: summary.csv has them all\n"), std::string::npos);
  EXPECT_NE(cut.find("... 1 more of 2 comparisons: comparisons.csv has them all\n"), std::string::npos);
  EXPECT_NE(cut.find("backend cpu, 2 threads"), std::string::npos);
  EXPECT_EQ(full.substr(0, full.find('\n', full.find('\n') + 1)), cut.substr(0, cut.find('\n', cut.find('\n') + 1)));
}

// The stress block: mean ± std per factor, each factor at the same column on every row, a
// std that is undefined (one seed) an aligned dash.
TEST(Outputs, StressTableShowsMeanAndStdAligned) {
  for (const int seeds : {3, 1}) {
    RunRecord run = synthetic_run({0.2, 0.05}, seeds);
    run.results[0].stress_rmse[0] = 1234.5;  // a wider number than the others
    const std::string table = summary_table(run, summarize_groups(run), "runs/x");
    const std::size_t header = table.find("stress RMSE (mean ± std) by factor\n");
    ASSERT_NE(header, std::string::npos) << table;
    std::istringstream rows(table.substr(table.find('\n', header) + 1));
    std::vector<std::size_t> at;
    for (std::string row; std::getline(rows, row) && row.find("backend") != 0;) {
      if (row.empty()) continue;
      const std::size_t second = row.find("  0.05: ");
      ASSERT_NE(second, std::string::npos) << row;
      at.push_back(second);
      EXPECT_NE(row.find(" ± "), std::string::npos) << row;
      if (seeds == 1) {
        EXPECT_NE(row.find("± " + std::string(5, ' ') + "—"), std::string::npos) << row;
      }
    }
    ASSERT_EQ(at.size(), 4u) << table;
    EXPECT_EQ(std::count(at.begin(), at.end(), at[0]), 4) << table;
  }
}

TEST_F(OutputDir, WriteOutputsCreatesExactlyTheSixFiles) {
  const RunRecord run = synthetic_run();
  fs::create_directory(dir_ / "run");
  write_outputs(dir_ / "run", run, summarize_groups(run));
  EXPECT_EQ(entries(dir_ / "run"), (std::vector<std::string>{"comparisons.csv", "config.toml", "replicas.csv",
                                                             "stress.csv", "summary.csv", "summary.json"}));
  EXPECT_EQ(read(dir_ / "run" / "replicas.csv"), replicas_csv(run));
  EXPECT_EQ(read(dir_ / "run" / "comparisons.csv"), comparisons_csv(run, summarize_groups(run)));
  EXPECT_EQ(read(dir_ / "run" / "stress.csv"), "replica,factor,rmse,rmse_expected\n");
  EXPECT_EQ(config_to_toml(load_config(dir_ / "run" / "config.toml")), config_to_toml(run.sweep->config));
}

TEST(Outputs, StressCsvIsLongFormAndSummariesHoldEachFactor) {
  const RunRecord run = synthetic_run({0.05, 0.01});
  const std::string csv = stress_csv(run);
  EXPECT_EQ(csv.rfind("replica,factor,rmse,rmse_expected\n0,0.05,3,", 0), 0u) << csv;
  EXPECT_NE(csv.find("\n0,0.01,3.5,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n6,0.05,9,\n"), std::string::npos) << csv;  // MLP: no expected RMSE
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

// Each stress factor's RMSE gets what the OOD RMSE gets: a t interval of the mean, a
// bootstrap interval of the std (keyed by the factor's index), the worst and best seed.
TEST(Outputs, StressFactorsHaveTheirIntervals) {
  const RunRecord run = synthetic_run({0.05, 0.01}, 12);
  const auto groups = summarize_groups(run);
  const nlohmann::json j = nlohmann::json::parse(summary_json(run, groups).dump());
  const std::string csv = summary_csv(run, groups);
  std::vector<Interval> std_cis;
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const GroupSummary& g = groups[gi];
    ASSERT_EQ(g.stress_inference.size(), 2u);
    for (std::uint32_t k = 0; k < 2; ++k) {
      std::vector<double> values;
      std::vector<std::uint32_t> seeds;
      for (const ReplicaResult& r : run.results) {
        const ReplicaSpec& spec = run.spec(r);
        if (spec.model != g.model || spec.regime != g.regime) continue;
        values.push_back(r.stress_rmse[k]);
        seeds.push_back(spec.seed);
      }
      const MetricInference& m = g.stress_inference[k];
      const Interval mean_ci = mean_t_interval(values);
      const Interval std_ci = bootstrap_interval(
          BootstrapStatistic::std_dev, values, {},
          stress_bootstrap_key(g.cell, static_cast<std::uint32_t>(g.model), static_cast<std::uint32_t>(g.regime), k));
      EXPECT_EQ(m.mean_ci.low, mean_ci.low);
      EXPECT_EQ(m.mean_ci.high, mean_ci.high);
      EXPECT_EQ(m.std_ci.low, std_ci.low);
      EXPECT_EQ(m.std_ci.high, std_ci.high);
      EXPECT_LT(m.std_ci.low, g.stress_rmse[k].std);
      EXPECT_GT(m.std_ci.high, g.stress_rmse[k].std);
      EXPECT_EQ(m.worst_seed, seeds.back());  // values rise with the replica id
      EXPECT_EQ(m.best_seed, seeds.front());
      const nlohmann::json& rmse = j.at("groups")[gi].at("stress")[k].at("rmse");
      EXPECT_EQ(rmse.at("n"), 12);
      EXPECT_EQ(rmse.at("std_ci")[0].get<double>(), std_ci.low);
      EXPECT_EQ(rmse.at("mean_ci")[1].get<double>(), mean_ci.high);
      EXPECT_EQ(rmse.at("worst_seed"), seeds.back());
      std_cis.push_back(std_ci);
    }
  }
  // Factors 0 and 1 hold the same values shifted by 0.5: equal stds, and each factor resamples
  // with its own draws, so the intervals differ.
  EXPECT_NE(std_cis[0].low - std_cis[1].low, 0.0);
  // summary.csv: the same numbers, in the columns named for them.
  std::istringstream in(csv);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  const auto fields = [](const std::string& line) {
    std::vector<std::string> out;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',');) out.push_back(f);
    if (line.ends_with(',')) out.emplace_back();
    return out;
  };
  const std::vector<std::string> names = fields(header), values = fields(row);
  ASSERT_EQ(names.size(), values.size());
  const auto at = [&](const std::string& name) {
    const auto it = std::find(names.begin(), names.end(), name);
    return it == names.end() ? std::string("<no column>") : values[static_cast<std::size_t>(it - names.begin())];
  };
  char expected[64];
  std::snprintf(expected, sizeof expected, "%.17g", std_cis[1].low);
  EXPECT_EQ(at("stress2_rmse_std_ci_low"), expected);
  EXPECT_EQ(at("stress1_rmse_n"), "12");
  EXPECT_EQ(at("stress2_rmse_worst_seed"), std::to_string(*groups[0].stress_inference[1].worst_seed));
}

TEST(Outputs, StressIntervalsOfOneReplicaAreUndefined) {
  const RunRecord run = synthetic_run({0.05}, 1);
  const auto groups = summarize_groups(run);
  const nlohmann::json j = nlohmann::json::parse(summary_json(run, groups).dump());
  const nlohmann::json& rmse = j.at("groups")[0].at("stress")[0].at("rmse");
  EXPECT_TRUE(rmse.at("std_ci")[0].is_null()) << rmse;
  EXPECT_TRUE(rmse.at("mean_ci")[1].is_null()) << rmse;
  EXPECT_EQ(rmse.at("n"), 1);
  std::istringstream in(summary_csv(run, groups));
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_TRUE(row.ends_with(",1,,,,,0,0")) << row;  // n, four empty interval ends, worst and best seed
}

TEST(Outputs, InferenceFieldsAreTheStatisticsOfTheReplicas) {
  const RunRecord run = synthetic_run({}, 12);
  const auto groups = summarize_groups(run);
  const nlohmann::json j = nlohmann::json::parse(summary_json(run, groups).dump(2));
  const nlohmann::json& g = j.at("groups")[1];  // perceptron, augmentation: ids 12..23
  const std::vector<double> iid = column(run, ModelKind::perceptron, Regime::augmentation, &ReplicaResult::iid_rmse);
  const std::vector<double> ood = column(run, ModelKind::perceptron, Regime::augmentation, &ReplicaResult::ood_rmse);
  const auto& o = g.at("ood_rmse");
  EXPECT_EQ(o.at("n"), 12);
  EXPECT_EQ(o.at("mean_ci")[0].get<double>(), mean_t_interval(ood).low);
  EXPECT_EQ(o.at("mean_ci")[1].get<double>(), mean_t_interval(ood).high);
  const Interval std_ci{o.at("std_ci")[0].get<double>(), o.at("std_ci")[1].get<double>()};
  EXPECT_LT(std_ci.low, summarize(ood).std);
  EXPECT_GT(std_ci.high, summarize(ood).std);
  // Seeds 0..11; the OOD values are id^2-dominated: max at the last seed, min at the first.
  EXPECT_EQ(o.at("worst_seed"), 11);
  EXPECT_EQ(o.at("best_seed"), 0);
  std::vector<double> gap;
  for (std::size_t i = 0; i < ood.size(); ++i) gap.push_back(ood[i] - iid[i]);
  EXPECT_EQ(g.at("ood_minus_iid").at("mean").get<double>(), summarize(gap).mean);
  EXPECT_EQ(g.at("ood_minus_iid").at("ci")[1].get<double>(), mean_t_interval(gap).high);
  EXPECT_EQ(g.at("spread_ratio").at("value").get<double>(), summarize(ood).std / summarize(iid).std);
  EXPECT_EQ(g.at("spearman").at("value").get<double>(), spearman(iid, ood));
  EXPECT_EQ(g.at("spearman").at("ci").size(), 2u);
  // The optimum of augmentation's training distribution.
  const ExperimentConfig& config = run.sweep->cells[0].config;
  const LinearWeights opt = ls_optimum(config.data, train_x3_noise_variance(config, Regime::augmentation));
  for (int p = 0; p < 4; ++p) EXPECT_EQ(g.at("weights").at("optimum")[p].get<double>(), opt[p]);
  // One comparison per (model, remedy): augmentation against baseline.
  const auto& comparisons = j.at("comparisons");
  ASSERT_EQ(comparisons.size(), 2u);
  const auto& c = comparisons[0];
  EXPECT_EQ(c.at("model"), "perceptron");
  EXPECT_EQ(c.at("remedy"), "augmentation");
  EXPECT_EQ(c.at("baseline"), "baseline");
  const std::vector<double> base = column(run, ModelKind::perceptron, Regime::baseline, &ReplicaResult::ood_rmse);
  const WelchResult w = welch(base, ood);
  EXPECT_EQ(c.at("ood_mean_diff").at("value").get<double>(), w.difference);
  EXPECT_EQ(c.at("ood_mean_diff").at("df").get<double>(), w.df);
  EXPECT_EQ(c.at("ood_mean_diff").at("ci")[0].get<double>(), w.ci.low);
  EXPECT_EQ(c.at("brown_forsythe").at("p_value").get<double>(), brown_forsythe(base, ood).p_value);
  EXPECT_EQ(c.at("ood_std_ratio").at("value").get<double>(), summarize(ood).std / summarize(base).std);
  // comparisons.csv: one row each, same numbers.
  std::istringstream csv(comparisons_csv(run, groups));
  std::string header, row;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("cell,model,remedy,baseline,baseline_n,remedy_n,ood_mean_diff,ood_mean_diff_ci_low,", 0), 0u);
  std::getline(csv, row);
  EXPECT_EQ(row.rfind("0,perceptron,augmentation,baseline,12,12,", 0), 0u);
  EXPECT_EQ(std::count(header.begin(), header.end(), ','), std::count(row.begin(), row.end(), ','));
}

TEST(Outputs, BootstrapDependsOnlyOnTheGroup) {
  // A shard holding only the later groups gives them the same intervals as the whole run.
  const RunRecord whole = synthetic_run({}, 6);
  RunRecord shard = whole;
  shard.results.erase(shard.results.begin(), shard.results.begin() + 9);  // group 0 and half of 1
  const auto a = summarize_groups(whole), b = summarize_groups(shard);
  ASSERT_EQ(b.size(), 3u);
  for (std::size_t k = 1; k < 3; ++k) {
    const GroupSummary &x = a[a.size() - 3 + k], &y = b[k];
    EXPECT_EQ(x.regime, y.regime);
    EXPECT_EQ(x.ood_inference.std_ci.low, y.ood_inference.std_ci.low);
    EXPECT_EQ(x.ood_inference.std_ci.high, y.ood_inference.std_ci.high);
    EXPECT_EQ(x.spearman.ci.low, y.spearman.ci.low);
    EXPECT_EQ(x.spread_ratio.ci.high, y.spread_ratio.ci.high);
  }
  EXPECT_EQ(summary_csv(whole, a), summary_csv(whole, summarize_groups(whole)));  // same bytes again
}

TEST(Outputs, SmallGroupsGetAFiniteStdRatioInterval) {
  // Groups of 3 (the QA repro): the resamples whose baseline draws one value three times are
  // left out, so both ends are numbers in summary.json and comparisons.csv, not null / empty.
  const RunRecord run = synthetic_run({}, 3);
  const auto groups = summarize_groups(run);
  const nlohmann::json j = nlohmann::json::parse(summary_json(run, groups).dump(2));
  ASSERT_EQ(j.at("comparisons").size(), 2u);
  for (const auto& c : j.at("comparisons")) {
    const auto& ratio = c.at("ood_std_ratio");
    ASSERT_TRUE(ratio.at("ci")[0].is_number() && ratio.at("ci")[1].is_number()) << ratio;
    EXPECT_LE(ratio.at("ci")[0].get<double>(), ratio.at("value").get<double>());
    EXPECT_GE(ratio.at("ci")[1].get<double>(), ratio.at("value").get<double>());
  }
  std::istringstream csv(comparisons_csv(run, groups));
  std::string line;
  std::getline(csv, line);
  while (std::getline(csv, line)) EXPECT_EQ(line.find(",,"), std::string::npos) << line;
}

TEST(Outputs, OneReplicaHasNoSpread) {
  const RunRecord run = synthetic_run({}, 1);
  const auto groups = summarize_groups(run);
  const nlohmann::json j = nlohmann::json::parse(summary_json(run, groups).dump(2));
  const auto& g = j.at("groups")[0];
  EXPECT_TRUE(g.at("ood_rmse").at("std").is_null());  // never 0
  EXPECT_TRUE(g.at("iid_rmse").at("std").is_null());
  EXPECT_TRUE(g.at("ood_rmse").at("std_ci")[0].is_null());
  EXPECT_TRUE(g.at("ood_rmse").at("mean_ci")[1].is_null());
  EXPECT_EQ(g.at("ood_rmse").at("mean").get<double>(), run.results[0].ood_rmse);
  EXPECT_TRUE(g.at("spread_ratio").at("value").is_null());
  EXPECT_TRUE(g.at("spearman").at("value").is_null());
  EXPECT_TRUE(g.at("weights").at("std")[0].is_null());
  EXPECT_TRUE(j.at("comparisons")[0].at("ood_mean_diff").at("ci")[0].is_null());
  EXPECT_TRUE(j.at("comparisons")[0].at("brown_forsythe").at("p_value").is_null());
  EXPECT_TRUE(j.at("comparisons")[0].at("brown_forsythe").at("df2").is_null());  // N - k = 0: no F distribution
  // summary.csv: the std column is empty, not 0.
  const auto [names, cells] = first_summary_row(run, groups);
  ASSERT_EQ(names.size(), cells.size());
  for (std::size_t k = 0; k < names.size(); ++k) {
    if (names[k] == "ood_rmse_std" || names[k] == "ood_rmse_std_ci_low" || names[k] == "spearman" ||
        names[k] == "w_x3_std") {
      EXPECT_EQ(cells[k], "") << names[k];
    }
    if (names[k] == "ood_rmse_mean" || names[k] == "ood_rmse_n" || names[k] == "w_x3_optimum") {
      EXPECT_NE(cells[k], "") << names[k];
    }
  }
  // The table: an em dash where the std goes, and the columns stay aligned.
  const std::string table = summary_table(run, groups, "runs/x");
  EXPECT_NE(table.find("± —"), std::string::npos) << table;
  const auto columns = [](const std::string& line) {  // display width: UTF-8 continuation bytes take none
    std::size_t n = 0;
    for (unsigned char ch : line) n += (ch & 0xC0) != 0x80;
    return n;
  };
  std::istringstream lines(table);
  std::string header_line, first, second;
  std::getline(lines, header_line);
  std::getline(lines, first);
  const RunRecord three = synthetic_run({}, 3);
  std::istringstream other(summary_table(three, summarize_groups(three), "runs/x"));
  std::getline(other, second);
  std::getline(other, second);
  EXPECT_EQ(columns(first), columns(second)) << first << "\n" << second;
}

TEST(Outputs, AllDivergedGroupHasOnlyNulls) {
  // Seeds 100..102; every replica of perceptron/baseline (ids 0..2) diverged.
  RunRecord run = synthetic_run({}, 3, 100);
  for (std::size_t i = 0; i < 3; ++i) run.results[i].diverged = "at end: ood_rmse inf";
  const auto groups = summarize_groups(run);
  const nlohmann::json j = nlohmann::json::parse(summary_json(run, groups).dump(2));
  const auto& g = j.at("groups")[0];
  ASSERT_EQ(g.at("diverged"), 3);
  // Every number of the group is null but the counts and the config's (truth, optimum).
  const std::function<void(const nlohmann::json&, const std::string&)> walk = [&](const nlohmann::json& x,
                                                                                  const std::string& path) {
    if (x.is_object()) {
      for (const auto& [k, v] : x.items())
        if (k != "weights") walk(v, path + "." + k);
    } else if (x.is_array()) {
      for (const auto& v : x) walk(v, path + "[]");
    } else if (x.is_number() && !path.ends_with(".n") && path != ".replicas" && path != ".diverged" &&
               path != ".cell") {
      ADD_FAILURE() << path << " = " << x;
    }
  };
  walk(g, "");
  EXPECT_EQ(g.at("ood_rmse").at("n"), 0);
  EXPECT_TRUE(g.at("weights").at("std")[0].is_null());
  EXPECT_TRUE(g.at("weights").at("mean")[0].is_null());
  // The comparison of augmentation against this baseline: Brown–Forsythe is undefined too.
  const auto& bf = j.at("comparisons")[0].at("brown_forsythe");
  EXPECT_TRUE(bf.at("df1").is_null());
  EXPECT_TRUE(bf.at("df2").is_null());  // was 3 - 2 = 1 with the empty group
  EXPECT_TRUE(bf.at("p_value").is_null());
  // summary.csv: only the group's identity, counts, truth and optimum are filled.
  const auto [names, cells] = first_summary_row(run, groups);
  ASSERT_EQ(names.size(), cells.size());
  for (std::size_t k = 0; k < names.size(); ++k) {
    const std::string& n = names[k];
    const bool filled = n == "cell" || n == "model" || n == "regime" || n == "replicas" || n == "diverged" ||
                        n.ends_with("_n") || n.ends_with("_true") || n.ends_with("_optimum");
    EXPECT_EQ(cells[k].empty(), !filled) << n << " = '" << cells[k] << "'";
  }
  std::istringstream cmp(comparisons_csv(run, groups));
  std::string header, row;
  std::getline(cmp, header);
  std::getline(cmp, row);
  EXPECT_TRUE(row.ends_with(",,,,")) << row;  // brown_forsythe_f, df1, df2, p
}

TEST(Outputs, SummaryCsvAppendsTheNewColumns) {
  const RunRecord run = synthetic_run({0.05});
  std::istringstream in(summary_csv(run, summarize_groups(run)));
  std::string header, row;
  std::getline(in, header);
  // The old columns first, unchanged; the new ones after the stress columns.
  EXPECT_NE(header.find(",stress1_rmse_max,iid_rmse_n,iid_rmse_mean_ci_low,iid_rmse_mean_ci_high,iid_rmse_std_ci_low,"
                        "iid_rmse_std_ci_high,iid_rmse_worst_seed,iid_rmse_best_seed,ood_rmse_n,"),
            std::string::npos)
      << header;
  EXPECT_NE(
      header.find(",ood_minus_iid_mean,ood_minus_iid_ci_low,ood_minus_iid_ci_high,spread_ratio,spread_ratio_ci_low,"
                  "spread_ratio_ci_high,spearman,spearman_ci_low,spearman_ci_high,w_x1_mean,w_x1_std,w_x1_true,"
                  "w_x1_optimum,"),
      std::string::npos)
      << header;
  EXPECT_TRUE(
      header.ends_with(",bias_mean,bias_std,bias_true,bias_optimum,stress1_rmse_n,stress1_rmse_mean_ci_low,"
                       "stress1_rmse_mean_ci_high,stress1_rmse_std_ci_low,stress1_rmse_std_ci_high,"
                       "stress1_rmse_worst_seed,stress1_rmse_best_seed"))
      << header;
  while (std::getline(in, row))
    EXPECT_EQ(std::count(header.begin(), header.end(), ','), std::count(row.begin(), row.end(), ','));
}

TEST(Outputs, TableNumbersFitTheirColumns) {
  for (double x : {0.0, 1.5, -1.5, 12.3456, 123.456789, -99999.5, 1e5, -1e5, 1.234e30, -1.234e300, 5e-320}) {
    const std::string s = table_number(x, 7);
    EXPECT_LE(s.size(), 7u) << x << " " << s;
    EXPECT_NEAR(std::strtod(s.c_str(), nullptr), x, std::fabs(x) * 0.2 + 1e-4) << x << " " << s;
  }
  EXPECT_EQ(table_number(1.5, 7), "1.5000");
  EXPECT_EQ(table_number(123456.0, 9), "1.235e+05");  // wide numbers: scientific
  EXPECT_EQ(table_number(std::nan(""), 7), "—");
}

}  // namespace
}  // namespace underspec
