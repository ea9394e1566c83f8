// `underspec slurm` and `underspec status` without a Slurm cluster: the script texts, the
// sweep directory it writes, and status on plain run directories and unsubmitted sweeps.
// (The tests on a real one-node Slurm are tests/slurm/, label `slurm`.)
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli_fixture.hpp"
#include "underspec/cluster/slurm.hpp"
#include "underspec/outputs/shell_words.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

SlurmOptions sample_options() {
  SlurmOptions o;
  o.dir = "/shared/runs/sweep";
  o.binary = "/opt/underspec/bin/underspec";
  o.shards = 4;
  return o;
}

TEST(SlurmScripts, ArrayJobRunsOneResumingShardPerTaskOnTheCpu) {
  SlurmOptions o = sample_options();
  o.cpus_per_task = 8;
  o.partition = "short";
  o.time = "1:00:00";
  const std::string s = slurm_array_script(o);
  EXPECT_TRUE(s.starts_with("#!/bin/bash\n"));
  EXPECT_TRUE(contains(s, "#SBATCH --array=0-3\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --output=/shared/runs/sweep/logs/shard-%a.out\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --error=/shared/runs/sweep/logs/shard-%a.err\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --requeue\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --signal=B:TERM@120\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --partition=short\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --time=1:00:00\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --cpus-per-task=8\n")) << s;
  EXPECT_FALSE(contains(s, "--gpus-per-task")) << s;
  // exec: the batch shell becomes underspec, so Slurm's SIGTERM reaches it.
  EXPECT_TRUE(contains(s,
                       "\nexec /opt/underspec/bin/underspec run /shared/runs/sweep/config.toml --shard "
                       "\"${SLURM_ARRAY_TASK_ID}/4\" --resume --out /shared/runs/sweep/shards/"
                       "\"${SLURM_ARRAY_TASK_ID}\" --progress lines --device cpu --threads "
                       "\"${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-0}}\"\n"))
      << s;
  // Every #SBATCH line comes before the first command (sbatch stops reading them there).
  EXPECT_LT(s.rfind("#SBATCH"), s.find("\nset -eu"));
}

TEST(SlurmScripts, GpusArrayLimitAndExtraArguments) {
  SlurmOptions o = sample_options();
  o.gpus_per_task = 1;
  o.array_limit = 2;
  o.account = "lab";
  o.qos = "low";
  o.mem = "4G";
  o.sbatch_args = {"--constraint=a100", "--exclusive"};
  const std::string s = slurm_array_script(o);
  EXPECT_TRUE(contains(s, "#SBATCH --array=0-3%2\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --gpus-per-task=1\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --account=lab\n#SBATCH --qos=low\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --mem=4G\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --constraint=a100\n#SBATCH --exclusive\n")) << s;
  EXPECT_TRUE(contains(s, "--progress lines --device cuda\n")) << s;
  EXPECT_FALSE(contains(s, "--threads")) << s;
}

TEST(SlurmScripts, MergeJobMergesEveryShardIntoMerged) {
  SlurmOptions o = sample_options();
  o.partition = "short";
  o.gpus_per_task = 2;
  o.cpus_per_task = 8;
  o.time = "02:00:00";
  o.mem = "4G";
  const std::string s = slurm_merge_script(o);
  // A shard's CPUs and time limit: the statistics of the whole sweep run there.
  EXPECT_TRUE(contains(s, "#SBATCH --time=02:00:00\n#SBATCH --cpus-per-task=8\n")) << s;
  EXPECT_FALSE(contains(s, "--mem")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --kill-on-invalid-dep=yes\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --output=/shared/runs/sweep/logs/merge.out\n")) << s;
  EXPECT_TRUE(contains(s, "#SBATCH --partition=short\n")) << s;
  EXPECT_FALSE(contains(s, "gpus")) << s;
  EXPECT_TRUE(
      contains(s,
               "\nexec /opt/underspec/bin/underspec merge /shared/runs/sweep/shards/0 "
               "/shared/runs/sweep/shards/1 /shared/runs/sweep/shards/2 /shared/runs/sweep/shards/3 "
               "--out /shared/runs/sweep/merged --threads \"${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-0}}\"\n"))
      << s;
  EXPECT_EQ(slurm_shard_command(o, 2),
            "/opt/underspec/bin/underspec run /shared/runs/sweep/config.toml --shard 2/4 --resume --out "
            "/shared/runs/sweep/shards/2");
}

TEST(SlurmScripts, ShellQuote) {
  EXPECT_EQ(shell_quote("/a/b-c_d.e"), "/a/b-c_d.e");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
}

// What underspec prints for pasting back: a path is never taken for an option, and a command
// line (summary.json's run.command_line) keeps each argument one word.
TEST(ShellWords, PathsAndCommandLinesPasteBack) {
  EXPECT_EQ(shell_path("-dash"), "./-dash");
  EXPECT_EQ(shell_path("-a b"), "'./-a b'");
  EXPECT_EQ(shell_path("runs/x"), "runs/x");
  const char* argv[] = {"underspec", "run", "--set", "sweep.grid.\"train.lr\"=[1e-3, 3e-3]", "--out", "my runs"};
  EXPECT_EQ(shell_command(6, argv), "underspec run --set 'sweep.grid.\"train.lr\"=[1e-3, 3e-3]' --out 'my runs'");
}

const std::string kTiny =
    "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=2 "
    "--set 'sweep.models=[\"perceptron\"]' ";

using SlurmCli = Cli;

TEST_F(SlurmCli, BadConfigOrUsageWritesNothing) {
  CliResult r = run("slurm --shards 2 --set sweep.seeds=0 --out sweep");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "sweep.seeds")) << r.err;
  r = run("slurm " + kTiny + "--shards 7 --out sweep");  // 6 replicas
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "--shards")) << r.err;
  r = run("slurm " + kTiny + "--out sweep");  // --shards is required
  EXPECT_EQ(r.status, 2) << r.err;
  r = run("slurm " + kTiny + "--shards 2 --out 'with space'");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(cwd_entries().empty());
  write("taken", "");
  fs::create_directory(cwd() / "full");
  write("full/x", "");
  r = run("slurm " + kTiny + "--shards 2 --out full");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "not empty")) << r.err;
  EXPECT_EQ(entries(cwd() / "full"), std::vector<std::string>{"x"});
}

// Values written into #SBATCH lines as they are: each must be one line, not empty (never
// dropped silently), one word where Slurm takes a word, and --sbatch-arg an sbatch option.
// Refused by name and value, with nothing created.
TEST_F(SlurmCli, SbatchValuesThatWouldBreakTheScriptAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--time \"$(printf 'x\\n#SBATCH --evil')\"",
       "--time: 'x\\n#SBATCH --evil' contains a newline or another control character"},
      {"--account \"$(printf 'a\\tb')\"", "--account: 'a\\tb' contains a newline or another control character"},
      {"--qos 'a b'", "--qos: 'a b' contains a space"},
      {"--sbatch-arg='#evil'", "--sbatch-arg: '#evil' is not an sbatch option (it must start with '-'"},
      {"--sbatch-arg=constraint=a100", "--sbatch-arg: 'constraint=a100' is not an sbatch option"},
      {"--sbatch-arg='' --sbatch-arg=--constraint=a100", "--sbatch-arg: empty value"},
      {"--sbatch-arg= --sbatch-arg=--constraint=a100", "--sbatch-arg: empty value"},
      {"--mem ''", "--mem: empty value"},
      {"--partition ''", "--partition: empty value"},
      {"--time ''", "--time: empty value"},
      {"--gpus-per-task 0", "--gpus-per-task: must be an integer >= 1, got '0'"},
      {"--cpus-per-task 0", "--cpus-per-task: must be an integer >= 1, got '0'"},
      {"--array-limit 0", "--array-limit: must be an integer >= 1, got '0'"},
  };
  for (const auto& [args, message] : cases) {
    const CliResult r = run("slurm " + kTiny + "--shards 2 " + args + " --out sweep");
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("underspec: error: " + message, 0), 0u) << args << "\n" << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
    EXPECT_TRUE(cwd_entries().empty()) << args;
  }
  // What is accepted goes in as given, one #SBATCH line each.
  const CliResult ok = run("slurm " + kTiny +
                           "--shards 2 --partition gpu --time 1:00:00 --mem 4G --gpus-per-task 1 --array-limit 1 "
                           "--sbatch-arg=--constraint=a100 --sbatch-arg '--exclusive' --out sweep");
  ASSERT_EQ(ok.status, 0) << ok.err;
  const std::string script = read(cwd() / "sweep" / "run.sbatch");
  for (const char* line :
       {"#SBATCH --array=0-1%1\n", "#SBATCH --partition=gpu\n", "#SBATCH --time=1:00:00\n", "#SBATCH --mem=4G\n",
        "#SBATCH --gpus-per-task=1\n", "#SBATCH --constraint=a100\n", "#SBATCH --exclusive\n"})
    EXPECT_TRUE(contains(script, line)) << line << script;
}

// sbatch reads an unambiguous abbreviation of a long option as the option itself (getopt_long:
// `#SBATCH --no-req` is --no-requeue, `--arr=0-5` --array, `--outp=...` --output; checked on
// Slurm 22.05), so an abbreviation of an option the scripts set is refused like the option.
// Options that merely start alike stay allowed: --gpus (exact), --time-min, --mem-per-cpu.
TEST_F(SlurmCli, AbbreviationsOfOptionsTheScriptsSetAreRefused) {
  for (const char* abbreviated :
       {"--no-req", "--arr=0-5", "--outp=/tmp/x", "--sig=B:USR1@5", "--requ", "--dep=afterok:1", "--part=debug",
        "--gpus-per-t=1", "--kill-on-inv=no", "--job=x", "--open=truncate"}) {
    const CliResult r = run("slurm " + kTiny + "--shards 2 --sbatch-arg=" + abbreviated + " --out sweep");
    EXPECT_EQ(r.status, 2) << abbreviated << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "sets an option the scripts set themselves")) << abbreviated << "\n" << r.err;
    EXPECT_TRUE(cwd_entries().empty()) << abbreviated;
  }
  for (const char* other : {"--gpus=2", "--time-min=5", "--mem-per-cpu=1G", "--cpus-per-gpu=2", "--reservation=lab",
                            "--no-kill", "--exclusive"}) {
    const CliResult r = run("slurm " + kTiny + "--shards 2 --sbatch-arg=" + other + " --out sweep");
    EXPECT_EQ(r.status, 0) << other << "\n" << r.err;
    EXPECT_TRUE(contains(read(cwd() / "sweep" / "run.sbatch"), std::string("#SBATCH ") + other + "\n")) << other;
    fs::remove_all(cwd() / "sweep");
  }
}

// `slurm --out` reserves its directory as `run --out` does: the same exit status and message
// for a path that is a file, lies under a file, or cannot be created; nothing is created.
TEST_F(SlurmCli, AnUnusableOutIsRefusedAsRunRefusesIt) {
  write("afile", "x");
  std::vector<std::string> outs = {"afile", "afile/sweep", "/proc/underspec-sweep"};
  const fs::path ro = cwd() / "ro";
  fs::create_directory(ro);
  bool mounted = ::geteuid() == 0 && ::mount("tmpfs", ro.c_str(), "tmpfs", MS_RDONLY, "size=64k") == 0;
  if (mounted) outs.push_back("ro/sweep");  // a read-only file system
  for (const std::string& out : outs) {
    const CliResult s = run("slurm " + kTiny + "--shards 2 --out " + out);
    const CliResult r = run("run " + kTiny + "--device cpu --out " + out);
    EXPECT_EQ(s.status, 2) << out << "\n" << s.err;
    EXPECT_EQ(r.status, 2) << out << "\n" << r.err;
    EXPECT_EQ(s.err, r.err) << out;
    EXPECT_TRUE(contains(s.err, "underspec: error: output path " + out)) << s.err;
  }
  if (mounted) {
    EXPECT_TRUE(entries(ro).empty());
    ::umount2(ro.c_str(), MNT_DETACH);
  }
  EXPECT_EQ(cwd_entries(), (std::vector<std::string>{"afile", "ro"}));
  EXPECT_EQ(read(cwd() / "afile"), "x");
}

TEST_F(SlurmCli, WritesTheSweepDirectoryAndPrintsTheSubmitCommands) {
  const CliResult r = run("slurm " + kTiny + "--shards 2 --cpus-per-task 1 --out sweep");
  ASSERT_EQ(r.status, 0) << r.err;
  const fs::path dir = fs::canonical(cwd() / "sweep");
  EXPECT_EQ(entries(dir),
            (std::vector<std::string>{"config.toml", "logs", "merge.sbatch", "run.sbatch", "shards", "slurm.json"}));
  EXPECT_TRUE(contains(r.out, "submit both with: underspec submit " + dir.string() + "\n")) << r.out;
  // The scripts pin this binary's absolute path.
  EXPECT_TRUE(contains(read(dir / "run.sbatch"),
                       "exec " + fs::canonical(UNDERSPEC_BINARY).string() + " run " + dir.string() + "/config.toml"));
  const auto meta = nlohmann::json::parse(read(dir / "slurm.json"));
  EXPECT_EQ(meta["shards"], 2);
  EXPECT_EQ(meta["array_job"], "");
  EXPECT_TRUE(meta["submissions"].empty());

  // Status before anything ran; then after shard 0 ran by hand, as the task would run it.
  CliResult s = run("status sweep");
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_TRUE(contains(s.out, "2 shards, 6 replicas")) << s.out;
  ASSERT_EQ(run("slurm " + kTiny + "--shards 1 --out one").status, 0);
  EXPECT_TRUE(contains(run("status one").out, ": 1 shard, 6 replicas")) << run("status one").out;
  EXPECT_TRUE(contains(s.out, "0      not started  0/3\n1      not started  0/3\n")) << s.out;
  EXPECT_TRUE(contains(s.out, "total: 2 not started; 0 of 6 replicas done\nmerged: no\n")) << s.out;
  EXPECT_TRUE(contains(s.out, "  underspec submit " + dir.string() + "\n")) << s.out;
  ASSERT_EQ(run("run sweep/config.toml --shard 0/2 --resume --out sweep/shards/0 --device cpu --threads 2").status, 0);
  s = run("status sweep");
  EXPECT_TRUE(contains(s.out, "0      done         3/3\n1      not started  0/3\n")) << s.out;
  EXPECT_TRUE(contains(s.out, "total: 1 done, 1 not started; 3 of 6 replicas done\n")) << s.out;
  // The example command outside Slurm is the shard that needs running, not the finished one.
  EXPECT_TRUE(contains(s.out, "--shard 1/2 --resume --out " + dir.string() + "/shards/1\n")) << s.out;
  EXPECT_FALSE(contains(s.out, "--shard 0/2")) << s.out;
  // A shard whose log holds an error, and that is not running, has failed: its log tail and
  // the commands that resume it.
  write("sweep/logs/shard-1.err", "underspec: shard 1/2 on node\nunderspec: error: disk on fire\n");
  s = run("status sweep");
  EXPECT_TRUE(contains(s.out, "1      failed       0/3\n")) << s.out;
  EXPECT_TRUE(contains(s.out, "shard 1 failed; the end of " + dir.string() +
                                  "/logs/shard-1.err:\n"
                                  "    underspec: shard 1/2 on node\n    underspec: error: disk on fire\n"))
      << s.out;
  EXPECT_TRUE(contains(s.out, "  underspec submit " + dir.string() + "\n")) << s.out;
  EXPECT_TRUE(contains(s.out, "--shard 1/2 --resume --out " + dir.string() + "/shards/1\n")) << s.out;
  write("sweep/logs/merge.err", "underspec: error: merge: replicas 3-5 are missing\n");
  s = run("status sweep");
  EXPECT_TRUE(contains(s.out, "the merge failed; the end of " + dir.string() +
                                  "/logs/merge.err:\n"
                                  "    underspec: error: merge: replicas 3-5 are missing\n"))
      << s.out;
}

TEST_F(SlurmCli, StatusOfPlainRunDirectories) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu --threads 2 --out whole").status, 0);
  CliResult s = run("status whole");
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_EQ(s.out, "run whole: finished, 6 of 6 replicas done\n");
  ASSERT_EQ(run("run " + kTiny + "--device cpu --threads 2 --shard 1/2 --out s1").status, 0);
  s = run("status s1");
  EXPECT_EQ(s.out, "run s1 (shard 1/2): finished, 3 of 3 replicas done\n");
  ASSERT_EQ(run("run " + kTiny + "--device cpu --threads 2 --shard 0/2 --out s0").status, 0);
  ASSERT_EQ(run("merge s0 s1 --out merged").status, 0);
  s = run("status merged");
  EXPECT_EQ(s.out, "run merged: finished, 6 of 6 replicas done\n");
  // An interrupted run: state and no outputs (as after a kill before the first segment).
  fs::remove(cwd() / "s0" / "summary.json");
  for (const auto& e : fs::directory_iterator(cwd() / "s0" / "checkpoint"))
    if (e.path().extension() == ".bin") fs::remove(e.path());
  s = run("status s0");
  // The resume command starts with the binary as invoked (`./build/underspec` is not on PATH).
  EXPECT_EQ(s.out, "run s0 (shard 0/2): stopped (resume it with: " + shell_quote(binary()) +
                       " run --resume s0 --shard 0/2), 0 of 3 replicas done\n");
  {  // a process holding the run lock, as a running `underspec run` does
    const int fd = ::open((cwd() / "s0" / "checkpoint" / "state.json").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    s = run("status s0");
    ::close(fd);
    EXPECT_EQ(s.out, "run s0 (shard 0/2): running, 0 of 3 replicas done\n");
  }
  s = run("status nowhere");
  EXPECT_EQ(s.status, 2);
  fs::create_directory(cwd() / "empty");
  s = run("status empty");
  EXPECT_EQ(s.status, 2);
  EXPECT_TRUE(contains(s.err, "neither an underspec run directory nor a Slurm sweep")) << s.err;
}

}  // namespace
}  // namespace underspec
