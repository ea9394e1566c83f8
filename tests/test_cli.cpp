// The `underspec` binary as users call it: exit statuses, nothing created on bad input,
// the four output files, and byte-determinism across thread counts and sweep sizes.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "cli_fixture.hpp"
#include "underspec/config/config_io.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

const std::string kTiny = "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=2 ";

TEST_F(Cli, HelpAndVersionExitZero) {
  const CliResult help = run("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("run"), std::string::npos);
  const CliResult run_help = run("run --help");
  EXPECT_EQ(run_help.status, 0);
  for (const char* option : {"--set", "--out", "--device", "--threads"})
    EXPECT_NE(run_help.out.find(option), std::string::npos) << option;
  const CliResult version = run("--version");
  EXPECT_EQ(version.status, 0);
  EXPECT_TRUE(std::regex_search(version.out, std::regex(R"(^underspec \d+\.\d+\.\d+)"))) << version.out;
  EXPECT_TRUE(cwd_entries().empty());
}

TEST_F(Cli, BadUsageOrConfigExitsTwoAndCreatesNothing) {
  write("bad.toml", "[data]\nn_train = 0\n");
  write("typo.toml", "[sweep]\nmodel = [\"mlp\"]\n");
  write("syntax.toml", "[data\n");
  const std::vector<std::string> cases = {
      "",  // no subcommand
      "run bad.toml",
      "run typo.toml",
      "run syntax.toml",
      "run absent.toml",
      "run --set sweep.seeds",
      "run --set nope=1",
      "run --set sweep.seeds=0",
      "run --set 'sweep.models=[]'",
      "run --set 'sweep.regimes=[\"dropout\"]'",
      "run --set data.train_factor=-1",
      "run --device gpu",
      "run --threads -1",
      "run --bogus",
      "run a.toml b.toml",
  };
  for (const std::string& args : cases) {
    const CliResult r = run(args + " --out out");
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << args;
    EXPECT_TRUE(r.out.empty()) << args << "\n" << r.out;
    EXPECT_EQ(cwd_entries(), (std::vector<std::string>{"bad.toml", "syntax.toml", "typo.toml"})) << args;
  }
  // Same without --out: no runs/ directory either.
  EXPECT_EQ(run("run bad.toml").status, 2);
  EXPECT_EQ(cwd_entries(), (std::vector<std::string>{"bad.toml", "syntax.toml", "typo.toml"}));
}

// CLI11's parse errors come out in the documented format: one `underspec: error: ...` line,
// naming what is wrong (an unknown subcommand, the accepted range), exit 2.
TEST_F(Cli, ParseErrorsAreOneUnderspecErrorLine) {
  const std::string subcommands = "run, plan, merge, score, report, slurm, submit, bench or status";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"frobnicate", "unknown subcommand 'frobnicate' (expected " + subcommands + ")"},
      {"", "a subcommand is required: " + subcommands},
      {"--frob", "unknown option --frob; a subcommand comes first: " + subcommands},
      {"bench --device gpu", "--device: gpu not in {auto,cpu,cuda}"},
      {"run --progress fancy", "--progress: fancy not in {auto,bar,lines,none}"},
      {"slurm --shards -1", "--shards: must be an integer >= 1, got '-1'"},
      {"slurm --shards 2 --cpus-per-task -3", "--cpus-per-task: must be an integer >= 1, got '-3'"},
      {"slurm --shards 99999999999", "--shards: must be at most 2147483647, got '99999999999'"},
      {"slurm --shards 2 --array-limit 1.5", "--array-limit: must be an integer >= 1, got '1.5'"},
      {"slurm", "--shards is required"},
      {"run a.toml b.toml", "the following argument was not expected: b.toml"},
  };
  for (const auto& [args, message] : cases) {
    const CliResult r = run(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_EQ(r.err, "underspec: error: " + message + "\n") << args;
    EXPECT_TRUE(r.out.empty()) << args << "\n" << r.out;
  }
  EXPECT_TRUE(cwd_entries().empty());
}

// An empty argument (an unset shell variable) is refused, not taken as "the default": no run
// of the built-in experiment, no runs/<stamp>, no benchmark without its JSON. `--out=` too,
// which would otherwise take the next argument as its value.
TEST_F(Cli, EmptyArgumentsAreRefusedNamingTheOption) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"run ''", "config: empty path"},
      {"run --out ''", "--out: empty path"},
      {"run --out= --device cpu", "--out: empty path"},
      {"run --threads ''", "--threads: empty value"},
      {"run --shard ''", "--shard: empty value"},
      {"run --gpus ''", "--gpus: empty value"},
      {"plan ''", "config: empty path"},
      {"plan --out ''", "--out: empty path"},
      {"merge '' --out m", "dirs: empty path"},
      {"merge a --out ''", "--out: empty path"},
      {"score '' --out s", "dir: empty path"},
      {"score a --out ''", "--out: empty path"},
      {"report ''", "dir: empty path"},
      {"status ''", "dir: empty path"},
      {"slurm '' --shards 2", "config: empty path"},
      {"slurm --shards 2 --out ''", "--out: empty path"},
      {"bench --quick --device cpu --json ''", "--json: empty path"},
      {"bench --json= --quick --device cpu", "--json: empty path"},
  };
  for (const auto& [args, message] : cases) {
    const CliResult r = run(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_EQ(r.err, "underspec: error: " + message + "\n") << args;
    EXPECT_TRUE(r.out.empty()) << args << "\n" << r.out;
    EXPECT_TRUE(cwd_entries().empty()) << args;
  }
}

TEST_F(Cli, ConfigErrorsNameKeyAndLocation) {
  write("bad.toml", "[data]\nn_train = 0\n");
  const CliResult r = run("run bad.toml");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("underspec: error: bad.toml:2:11: data.n_train"), std::string::npos) << r.err;
  const CliResult s = run("run --set train.epochs=-3");
  EXPECT_NE(s.err.find("--set train.epochs=-3: train.epochs"), std::string::npos) << s.err;
}

TEST_F(Cli, NonEmptyOutputDirIsRefusedUntouched) {
  fs::create_directory(cwd() / "out");
  write("out/keep", "mine");
  const CliResult r = run("run " + kTiny + "--out out");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(read(cwd() / "out" / "keep"), "mine");
  EXPECT_EQ(cwd_entries(), std::vector<std::string>{"out"});
}

TEST_F(Cli, CudaWithoutABackendIsARuntimeFailure) {
  const CliResult r = run("run " + kTiny + "--device cuda --out out");
  if (r.status == 0) GTEST_SKIP() << "a CUDA device is available here";
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("underspec: error:"), std::string::npos) << r.err;
  EXPECT_TRUE(cwd_entries().empty());
}

TEST_F(Cli, TinyRunWritesItsOutputsAndCheckpoint) {
  const CliResult r = run("run " + kTiny + "--device cpu --out out");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(cwd_entries(), std::vector<std::string>{"out"});  // no staging leftovers
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(cwd() / "out")) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"checkpoint", "comparisons.csv", "config.toml", "replicas.csv",
                                             "stress.csv", "summary.csv", "summary.json"}));

  const auto rows = lines(read(cwd() / "out" / "replicas.csv"));
  ASSERT_EQ(rows.size(), 13u);  // header + 2 models x 3 regimes x 2 seeds
  EXPECT_EQ(rows[0],
            "replica,cell,model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias,iid_rmse_expected,ood_rmse_expected,"
            "diverged");
  EXPECT_EQ(rows[1].rfind("0,0,perceptron,baseline,0,", 0), 0u);
  EXPECT_EQ(rows[12].rfind("11,0,mlp,augmentation,1,", 0), 0u);
  EXPECT_EQ(rows[12].substr(rows[12].size() - 4), ",,,,");

  const nlohmann::json j = nlohmann::json::parse(read(cwd() / "out" / "summary.json"));
  EXPECT_EQ(j.at("backend"), "cpu");
  EXPECT_GE(j.at("threads").get<int>(), 1);
  EXPECT_GE(j.at("wall_seconds").get<double>(), 0.0);
  EXPECT_EQ(j.at("replicas"), 12);
  ASSERT_EQ(j.at("groups").size(), 6u);
  for (const auto& g : j.at("groups")) {
    EXPECT_EQ(g.at("replicas"), 2);
    for (const char* metric : {"iid_rmse", "ood_rmse"})
      for (const char* stat : {"mean", "std", "min", "q1", "median", "q3", "max"})
        EXPECT_TRUE(g.at(metric).contains(stat)) << metric << "." << stat;
    EXPECT_EQ(g.contains("weights"), g.at("model") == "perceptron");
  }
  EXPECT_EQ(j.at("groups")[0].at("weights").at("true"), nlohmann::json({1.0, 2.0, 0.0, 3.0}));

  const auto summary = lines(read(cwd() / "out" / "summary.csv"));
  ASSERT_EQ(summary.size(), 7u);
  EXPECT_EQ(summary[0].rfind("cell,model,regime,replicas,diverged,iid_rmse_mean,iid_rmse_std,", 0), 0u);

  ExperimentConfig expected;
  expected.data.n_train = expected.data.n_test = 200;
  expected.train.epochs = 2;
  expected.sweep.seeds = 2;
  EXPECT_EQ(read(cwd() / "out" / "config.toml"), config_to_toml(expected));

  // header and 6 groups; blank, header and 3 perceptron weight rows; blank, header and 4
  // remedy comparisons; the run line.
  EXPECT_EQ(lines(r.out).size(), 19u) << r.out;
  EXPECT_NE(r.out.find("remedy vs baseline"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("perceptron  domain_randomization"), std::string::npos) << r.out;
}

TEST_F(Cli, DefaultOutputDirIsATimestampUnderRuns) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu").status, 0);
  ASSERT_EQ(run("run " + kTiny + "--device cpu").status, 0);
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(cwd() / "runs")) dirs.push_back(e.path().filename().string());
  ASSERT_EQ(dirs.size(), 2u);  // a second run in the same second gets a suffix
  for (const std::string& d : dirs) EXPECT_TRUE(std::regex_match(d, std::regex(R"(\d{8}-\d{6}(-\d+)?)"))) << d;
}

TEST_F(Cli, ReplicasAreByteIdenticalAcrossThreadCountsAndReruns) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu --threads 1 --out t1").status, 0);
  ASSERT_EQ(run("run " + kTiny + "--device cpu --threads 2 --out t2").status, 0);
  const std::string t1 = read(cwd() / "t1" / "replicas.csv");
  EXPECT_EQ(t1, read(cwd() / "t2" / "replicas.csv"));
  // The resolved config repeats the run exactly.
  ASSERT_EQ(run("run t1/config.toml --device cpu --threads 2 --out again").status, 0);
  EXPECT_EQ(t1, read(cwd() / "again" / "replicas.csv"));
}

// Rows keyed by (cell, model, regime, seed), without the replica id (which shifts as groups grow).
std::map<std::string, std::string> rows_by_key(const std::string& csv) {
  std::map<std::string, std::string> rows;
  const auto all = lines(csv);
  for (std::size_t i = 1; i < all.size(); ++i) {
    const std::string row = all[i].substr(all[i].find(',') + 1);  // drop the replica id
    std::size_t end = 0;
    for (int field = 0; field < 4; ++field) end = row.find(',', end) + 1;
    rows[row.substr(0, end)] = row;
  }
  return rows;
}

TEST_F(Cli, GrowingTheSweepKeepsEarlierReplicas) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu --out small").status, 0);
  ASSERT_EQ(run("run " + kTiny + "--set sweep.seeds=4 --device cpu --out large").status, 0);
  const auto small = rows_by_key(read(cwd() / "small" / "replicas.csv"));
  const auto large = rows_by_key(read(cwd() / "large" / "replicas.csv"));
  ASSERT_EQ(small.size(), 12u);
  ASSERT_EQ(large.size(), 24u);
  for (const auto& [key, row] : small) {
    ASSERT_TRUE(large.count(key)) << key;
    EXPECT_EQ(large.at(key), row) << key;
  }
}

}  // namespace
}  // namespace underspec
