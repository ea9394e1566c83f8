// Diverged replicas: non-finite numbers never reach the statistics, summary.json, the CSVs
// or the table; they are counted per group and the run exits 1 only when all diverged.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_fixture.hpp"
#include "underspec/backends/backend.hpp"
#include "underspec/outputs/npy.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

const std::string kTiny = "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=2 ";

// Every number in summary.json is finite (JSON has no NaN; nlohmann writes null for them,
// but a number that is not a real one must never appear as text either).
void expect_no_non_finite_text(const std::string& text, const std::string& what) {
  for (const char* bad : {"nan", "NaN", "inf", "Inf"})
    EXPECT_EQ(text.find(bad), std::string::npos) << what << ": " << bad;
}

// The fields of one CSV row, RFC 4180 quoting undone (no field of replicas.csv needs quotes
// today; a reader should not depend on it).
std::vector<std::string> fields_of(const std::string& row) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < row.size(); ++i) {
    const char c = row[i];
    if (quoted && c == '"' && i + 1 < row.size() && row[i + 1] == '"') {
      fields.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::vector<std::string> column(const std::string& csv, const std::string& name) {
  const auto rows = lines(csv);
  const std::vector<std::string> header = fields_of(rows.at(0));
  const auto at = static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  std::vector<std::string> out;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const std::vector<std::string> fields = fields_of(rows[i]);
    out.push_back(at < fields.size() ? fields[at] : "?");
  }
  return out;
}

TEST_F(Cli, HugeLearningRateDivergesTheMlps) {
  // Adam's steps are about lr: perceptron weights grow to ~1e30 (finite, kept), MLPs overflow.
  const CliResult r = run("run " + kTiny + "--device cpu --set train.lr=1e30 --out out");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("6 of 12 replicas diverged"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("mlp baseline (2/2)"), std::string::npos) << r.err;
  const std::string csv = read(cwd() / "out" / "replicas.csv");
  const auto models = column(csv, "model"), diverged = column(csv, "diverged");
  for (std::size_t i = 0; i < models.size(); ++i) EXPECT_EQ(diverged[i].empty(), models[i] == "perceptron") << i;
  const std::string json = read(cwd() / "out" / "summary.json");
  expect_no_non_finite_text(json, "summary.json");
  const nlohmann::json summary = nlohmann::json::parse(json);  // alive for the loop
  for (const auto& g : summary.at("groups")) {
    EXPECT_EQ(g.at("diverged"), g.at("model") == "mlp" ? 2 : 0);
    EXPECT_EQ(g.at("replicas"), 2);
    EXPECT_EQ(g.at("ood_rmse").at("n"), g.at("model") == "mlp" ? 0 : 2);
    if (g.at("model") == "mlp") {
      EXPECT_TRUE(g.at("ood_rmse").at("mean").is_null());
    }
  }
  expect_no_non_finite_text(r.out, "table");
  EXPECT_NE(r.out.find("2/2 diverged"), std::string::npos) << r.out;
  for (const char* f : {"replicas.csv", "summary.csv", "stress.csv", "comparisons.csv"})
    expect_no_non_finite_text(read(cwd() / "out" / f), f);
  // The table stays aligned: every group row as wide as the first (1e30 in scientific form).
  const auto table = lines(r.out);
  const auto columns = [](std::string s) {
    if (const auto at = s.find("  2/2 diverged"); at != std::string::npos) s.erase(at);
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // UTF-8: count code points
    return n;
  };
  for (std::size_t i = 2; i <= 6; ++i) EXPECT_EQ(columns(table.at(i)), columns(table.at(1))) << r.out;
  EXPECT_NE(r.out.find("e+30"), std::string::npos) << r.out;
}

TEST(CanonicalNans, EveryNanBecomesThePositiveQuietNanAndNothingElseChanges) {
  ReplicaResult r;
  r.iid_rmse = -std::numeric_limits<double>::quiet_NaN();
  r.ood_rmse = -0.0;
  r.stress_rmse = {std::bit_cast<double>(0xfff8000000000123ull), 1.5};
  r.params = {std::bit_cast<float>(0xffc00000u), std::bit_cast<float>(0x7fc00042u), -0.0f,
              -std::numeric_limits<float>::infinity(), 2.5f};
  canonicalize_nans(r);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(r.iid_rmse), 0x7ff8000000000000ull);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(r.ood_rmse), 0x8000000000000000ull);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(r.stress_rmse[0]), 0x7ff8000000000000ull);
  EXPECT_EQ(r.stress_rmse[1], 1.5);
  const std::vector<std::uint32_t> want{0x7fc00000u, 0x7fc00000u, 0x80000000u, 0xff800000u,
                                        std::bit_cast<std::uint32_t>(2.5f)};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(std::bit_cast<std::uint32_t>(r.params[i]), want[i]) << i;
}

TEST_F(Cli, DivergedParametersAreTheOnePositiveQuietNan) {
  // x86 makes negative NaNs, a GPU positive ones: params.npy must not depend on the backend.
  const CliResult r = run("run " + kTiny + "--device cpu --set train.lr=1e30 --save-params --out out");
  ASSERT_EQ(r.status, 0) << r.err;
  NpyFloatMatrixReader npy(cwd() / "out" / "params.npy");
  std::size_t nans = 0;
  for (std::uint64_t row = 0; row < npy.rows(); ++row)
    for (float x : npy.row(row))
      if (std::isnan(x)) {
        ++nans;
        ASSERT_EQ(std::bit_cast<std::uint32_t>(x), 0x7fc00000u) << "row " << row;
      }
  EXPECT_GT(nans, 0u);
}

TEST_F(Cli, EveryReplicaDivergedExitsOneAfterWritingTheOutputs) {
  const CliResult r = run("run " + kTiny + "--device cpu --set train.lr=1e30 --set 'sweep.models=[\"mlp\"]' --out out");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("every replica diverged"), std::string::npos) << r.err;
  ASSERT_TRUE(fs::exists(cwd() / "out" / "summary.json"));  // written all the same
  for (const std::string& d : column(read(cwd() / "out" / "replicas.csv"), "diverged")) EXPECT_FALSE(d.empty());
  expect_no_non_finite_text(read(cwd() / "out" / "summary.json"), "summary.json");
  expect_no_non_finite_text(r.out, "table");
}

// Data on a scale float32 training cannot hold diverge whatever the learning rate: the hint
// names the key that looks extreme, not train.lr.
TEST_F(Cli, EveryReplicaDivergedOnExtremeDataNamesTheDataKey) {
  const CliResult r = run("run " + kTiny + "--device cpu --set data.intercept=1e20 --out out");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("every replica diverged; no statistic is defined (data.intercept looks extreme"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("train.lr"), std::string::npos) << r.err;
  const CliResult lr = run("run " + kTiny + "--device cpu --set train.lr=1e30 --set 'sweep.models=[\"mlp\"]' --out lr");
  EXPECT_NE(lr.err.find("(lower train.lr?)"), std::string::npos) << lr.err;
}

TEST_F(Cli, HugeAugmentationNoiseDivergesOnlyTheAugmentedGroups) {
  const CliResult r = run("run " + kTiny + "--device cpu --set regime.augmentation.noise_std=1e38 --out out");
  ASSERT_EQ(r.status, 0) << r.err;  // not every replica diverged
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("augmentation"), std::string::npos) << r.err;
  const std::string csv = read(cwd() / "out" / "replicas.csv");
  const auto regimes = column(csv, "regime"), diverged = column(csv, "diverged");
  for (std::size_t i = 0; i < regimes.size(); ++i)
    EXPECT_EQ(diverged[i].empty(), regimes[i] != "augmentation") << i << " " << regimes[i] << " " << diverged[i];
  const std::string json = read(cwd() / "out" / "summary.json");
  expect_no_non_finite_text(json, "summary.json");
  const nlohmann::json summary = nlohmann::json::parse(json);  // alive for the loop
  for (const auto& g : summary.at("groups")) EXPECT_EQ(g.at("diverged"), g.at("regime") == "augmentation" ? 2 : 0);
  expect_no_non_finite_text(r.out, "table");
  EXPECT_NE(r.out.find("2/2 diverged"), std::string::npos) << r.out;
  const auto counts = column(read(cwd() / "out" / "summary.csv"), "diverged");
  EXPECT_EQ(std::count(counts.begin(), counts.end(), "2"), 2);
}

TEST_F(Cli, AnInfiniteRmseIsDiverged) {
  // The smallest OOD factors make the OOD test set's x3 overflow (float32 ends at 3.4e38):
  // the perceptrons' OOD RMSE is inf.
  const CliResult r =
      run("run " + kTiny + "--device cpu --set data.ood_factor=1.2e-38 --set data.n_test=100000 --out out");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("perceptron baseline (2/2)"), std::string::npos) << r.err;
  const std::string csv = read(cwd() / "out" / "replicas.csv");
  const auto models = column(csv, "model"), diverged = column(csv, "diverged");
  for (std::size_t i = 0; i < models.size(); ++i)
    if (models[i] == "perceptron") {
      EXPECT_EQ(diverged[i], "at end: ood_rmse inf");
    }
  expect_no_non_finite_text(read(cwd() / "out" / "summary.json"), "summary.json");
  expect_no_non_finite_text(r.out, "table");
}

// A replica whose parameters stop being finite mid-training is marked with the epoch and step
// where they did. Checked independently of the replay that finds them: training one epoch
// fewer leaves that replica's parameters finite, training up to that epoch does not.
TEST_F(Cli, DivergedSaysTheEpochAndStepWhereParametersStoppedBeingFinite) {
  // Adam's first steps are about lr: with lr = 2.6e6 one of these MLPs overflows in its second
  // epoch (4 steps an epoch), the other stays finite.
  const std::string args =
      "run --set data.n_train=200 --set data.n_test=200 --set sweep.seeds=2 "
      "--set 'sweep.models=[\"mlp\"]' --set 'sweep.regimes=[\"baseline\"]' "
      "--set train.lr=2.6e6 --device cpu --no-report ";
  const auto marks = [&](int epochs, const std::string& out) {
    const CliResult r = run(args + "--set train.epochs=" + std::to_string(epochs) + " --out " + out);
    EXPECT_EQ(r.status, 0) << r.err;
    return column(read(cwd() / out / "replicas.csv"), "diverged");
  };
  const auto at_three = marks(3, "three");
  ASSERT_EQ(at_three.size(), 2u);
  EXPECT_EQ(at_three[1], "");
  int epoch = 0, step = 0, steps = 0;
  char tail[64] = {};
  ASSERT_EQ(std::sscanf(at_three[0].c_str(), "epoch %d step %d of %d: %63[^\n]", &epoch, &step, &steps, tail), 4)
      << at_three[0];
  EXPECT_STREQ(tail, "parameters not finite");
  EXPECT_EQ(steps, 4);  // ceil(200 / 64)
  EXPECT_GE(step, 1);
  EXPECT_LE(step, steps);
  ASSERT_GE(epoch, 2) << "the config should diverge after its first epoch: " << at_three[0];
  ASSERT_LE(epoch, 3);
  EXPECT_EQ(marks(epoch - 1, "before")[0], "");     // finite one epoch earlier
  EXPECT_EQ(marks(epoch, "upto")[0], at_three[0]);  // the same step, however long it trains
}

// `score` re-scores saved parameters without training: it finds the same step as the run.
TEST_F(Cli, ScoreNamesTheSameStepAsTheRun) {
  const CliResult r =
      run("run --set data.n_train=200 --set data.n_test=200 --set sweep.seeds=2 "
          "--set train.lr=2.6e6 --set train.epochs=3 --device cpu --no-report --save-params --out out");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto marks = column(read(cwd() / "out" / "replicas.csv"), "diverged");
  EXPECT_GT(std::count_if(marks.begin(), marks.end(), [](const std::string& m) { return m.starts_with("epoch "); }), 0)
      << r.err;
  const CliResult scored = run("score out --out scored --no-report");
  ASSERT_EQ(scored.status, 0) << scored.err;
  EXPECT_EQ(column(read(cwd() / "scored" / "replicas.csv"), "diverged"), marks);
}

// The replay that finds the step runs only for parameters that are not finite: an RMSE that
// overflows with finite parameters (AnInfiniteRmseIsDiverged) says "at end".

TEST_F(Cli, DivergedMarkersSurviveShardsAndMerge) {
  // The marker travels in the checkpoint segments (format 02): merged shards equal one run.
  const std::string args = "run " + kTiny + "--device cpu --set regime.augmentation.noise_std=1e38 ";
  ASSERT_EQ(run(args + "--threads 1 --out whole").status, 0);
  ASSERT_EQ(run(args + "--threads 1 --shard 0/2 --out a").status, 0);
  ASSERT_EQ(run(args + "--threads 1 --shard 1/2 --out b").status, 0);
  const CliResult merged = run("merge a b --out merged");
  ASSERT_EQ(merged.status, 0) << merged.err;
  EXPECT_NE(merged.err.find("diverged"), std::string::npos) << merged.err;
  for (const char* f : {"replicas.csv", "summary.csv", "stress.csv", "comparisons.csv"})
    EXPECT_EQ(read(cwd() / "whole" / f), read(cwd() / "merged" / f)) << f;
}

}  // namespace
}  // namespace underspec
