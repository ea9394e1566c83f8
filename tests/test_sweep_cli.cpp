// Sweeps through the binary, as a demanding user runs them: kill -9 and signals at any
// moment then --resume (byte-identical outputs), shards and merge, grids, plans, saved
// parameters and re-scoring, progress lines.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "cli_fixture.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/run_info.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// 2 models x 3 regimes x 3 seeds = 18 replicas, well under a second.
const std::string kSmall =
    "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=3 "
    "--set 'data.stress_factors=[0.05, 0.5]' --device cpu --threads 2 ";
// 3 regimes x 200 MLP seeds = 600 replicas, 1-3 s on 2 threads: long enough to interrupt between
// checkpoint segments (the CPU backend reports finished replicas every 0.5 s).
const std::string kMediumConfig =
    "--set data.n_train=2000 --set data.n_test=500 --set train.epochs=8 --set 'sweep.models=[\"mlp\"]' "
    "--set sweep.seeds=200 --set 'data.stress_factors=[0.05, 0.5]' ";
const std::string kMedium = kMediumConfig + "--device cpu --threads 2 ";
// A segment after every batch of results, so that kills land between and during writes.
const std::string kFastCheckpoints = "UNDERSPEC_CHECKPOINT_SECONDS=0 ";

const char* const kCompared[] = {"replicas.csv", "stress.csv", "summary.csv", "comparisons.csv"};

class SweepCli : public Cli {
 protected:
  // Starts `env_and_args` (shell syntax, e.g. "VAR=1 run ...") in the background; its output goes to
  // dir_/bg.stdout and dir_/bg.stderr. The pid is the binary's own (the shell execs it).
  pid_t start(const std::string& env_and_args) {
    const std::string cmd = "cd '" + cwd().string() + "' && exec env " +
                            env_and_args.substr(0, env_prefix(env_and_args)) + "'" UNDERSPEC_BINARY "' " +
                            env_and_args.substr(env_prefix(env_and_args)) + " >'" + (dir_ / "bg.stdout").string() +
                            "' 2>'" + (dir_ / "bg.stderr").string() + "'";
    const pid_t pid = ::fork();
    if (pid == 0) {
      // As from a terminal: a hang-up is not ignored (a suite started under nohup, or by a
      // runner that ignores SIGHUP, would pass that on to underspec).
      ::signal(SIGHUP, SIG_DFL);
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid;
  }
  // Waits for a started process: its exit status, or 128 + the signal that killed it.
  static int wait_for(pid_t pid) {
    int raw = 0;
    while (::waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  }
  std::string bg_err() const { return read(dir_ / "bg.stderr"); }
  // Runs a command line underspec printed, pasted as it is into a shell in cwd() whose PATH
  // holds no underspec (as for a user who runs ./build/underspec).
  CliResult paste(const std::string& command) const {
    const std::string cmd = "cd '" + cwd().string() + "' && PATH=/usr/bin:/bin " + command + " >'" +
                            (dir_ / "stdout").string() + "' 2>'" + (dir_ / "stderr").string() + "'";
    const int raw = std::system(cmd.c_str());
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read(dir_ / "stdout"), read(dir_ / "stderr")};
  }

  std::size_t segments(const std::string& run) const {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cwd() / run / "checkpoint", ec))
      n += e.path().filename().string().starts_with("part-") && e.path().extension() == ".bin";
    return n;
  }
  // Polls until `run` has at least one checkpoint segment (or `limit` passes).
  bool wait_for_segment(const std::string& run, std::chrono::milliseconds limit = 20s) const {
    for (const auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(2ms))
      if (segments(run) > 0) return true;
    return false;
  }

  // replicas.csv, stress.csv, summary.csv and comparisons.csv of runs `a` and `b` are the same bytes; on a
  // difference, reports the first differing line only.
  void expect_same_outputs(const std::string& a, const std::string& b) const {
    for (const char* file : kCompared) {
      const std::string x = read(cwd() / a / file), y = read(cwd() / b / file);
      EXPECT_FALSE(x.empty()) << a << "/" << file;
      if (x == y) continue;
      const auto lx = lines(x), ly = lines(y);
      std::size_t i = 0;
      while (i < lx.size() && i < ly.size() && lx[i] == ly[i]) ++i;
      ADD_FAILURE() << a << "/" << file << " and " << b << "/" << file << " differ (" << lx.size() << " vs "
                    << ly.size() << " lines), first at line " << i + 1 << ":\n  " << (i < lx.size() ? lx[i] : "<end>")
                    << "\n  " << (i < ly.size() ? ly[i] : "<end>");
    }
  }

  // The uninterrupted kMedium run "ref", made once for the whole suite: its absolute path (empty
  // when it failed), and how long it took.
  static std::string medium_reference() {
    if (medium_dir_.empty()) {
      std::string d = (fs::temp_directory_path() / "underspec-medium-XXXXXX").string();
      if (!mkdtemp(d.data())) return "";
      medium_dir_ = d;
      const auto t0 = std::chrono::steady_clock::now();
      const std::string cmd = "cd '" + d + "' && '" UNDERSPEC_BINARY "' run " + kMedium + "--out ref >/dev/null 2>&1";
      medium_status_ = std::system(cmd.c_str());
      medium_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    return medium_status_ == 0 ? (medium_dir_ / "ref").string() : "";
  }
  static double medium_reference_ms() { return medium_ms_; }
  static void TearDownTestSuite() {
    if (!medium_dir_.empty()) fs::remove_all(medium_dir_);
    medium_dir_.clear();
  }

 private:
  // Length of the leading VAR=VALUE words of `s`.
  static inline fs::path medium_dir_;
  static inline int medium_status_ = -1;
  static inline double medium_ms_ = 0;

  static std::size_t env_prefix(const std::string& s) {
    static const std::regex env(R"(^([A-Za-z_][A-Za-z0-9_]*=\S* )*)");
    std::smatch m;
    std::regex_search(s, m, env);
    return static_cast<std::size_t>(m.length(0));
  }
};

// ---------------------------------------------------------------- kill -9, signals, resume

TEST_F(SweepCli, KillNineAtManyMomentsThenResumeIsByteIdentical) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  const double ref_ms = medium_reference_ms();
  // Very early (before the directory or any segment), then later and later through the run; with a
  // segment after every batch of results the later kills land between and during segment writes.
  // On a machine whose load changes, a kill meant for mid-run can land before the first segment
  // or after the end; then more kills go in, mid-run, until two have landed there (or these run out).
  const double fractions[] = {0.0, 0.03, 0.2, 0.45, 0.7, 0.95};
  const double extra_fractions[] = {0.3, 0.55, 0.4, 0.25, 0.6, 0.35};
  int partial = 0, extra = 0;
  for (int k = 0; k < 6 || (partial < 2 && extra < 6); ++k) {
    const double fraction = k < 6 ? fractions[k] : extra_fractions[extra++];
    const int delay = static_cast<int>(fraction * ref_ms);
    const std::string name = std::string("k").append(std::to_string(k)).append("-").append(std::to_string(delay));
    const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out " + name);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    ::kill(pid, SIGKILL);
    const int status = wait_for(pid);
    const bool finished = fs::exists(cwd() / name / "summary.json");
    partial += status == 128 + SIGKILL && !finished && segments(name) > 0;
    // A directory with its config.toml resumes with it; one the kill prevented (or left empty) needs
    // the config again.
    const std::string config = fs::exists(cwd() / name / "config.toml") ? "" : kMediumConfig;
    const CliResult r =
        run("run --resume " + name + " " + config + "--device cpu --threads 2", "UNDERSPEC_CHECKPOINT_SECONDS=0");
    ASSERT_EQ(r.status, 0) << "killed after " << delay << " ms (status " << status << ")\n" << r.err;
    expect_same_outputs(ref, name);
  }
  EXPECT_GE(partial, 2) << "too few kills landed mid-run (reference run: " << ref_ms << " ms)";
}

TEST_F(SweepCli, KillNineDuringTheResumeToo) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out twice");
  ASSERT_TRUE(wait_for_segment("twice"));
  ::kill(pid, SIGKILL);
  wait_for(pid);
  const std::size_t before = segments("twice");
  pid = start(kFastCheckpoints + "run --resume twice --threads 2");
  for (auto end = std::chrono::steady_clock::now() + 20s;
       segments("twice") == before && std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(2ms);
  ::kill(pid, SIGKILL);
  wait_for(pid);
  const CliResult r = run("run --resume twice --threads 2");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs(ref, "twice");
}

TEST_F(SweepCli, KilledWhileReservingTheDirectoryIsResumable) {
  // What kill -9 leaves when it lands inside the reservation, before the checkpoint state exists:
  // config.toml, maybe temporary files, maybe an empty checkpoint/.
  ASSERT_EQ(run("run " + kSmall + "--out ref").status, 0);
  const std::string config = read(cwd() / "ref" / "config.toml");
  const auto leave = [&](const std::string& name, std::vector<std::pair<std::string, std::string>> files) {
    fs::create_directories(cwd() / name / "checkpoint");
    for (const auto& [file, text] : files) write(name + "/" + file, text);
  };
  leave("a", {{"config.toml", config}});
  leave("b", {{"config.toml", config}, {"config.toml.tmp-Ab12Cd", "x"}, {"checkpoint/state.json.tmp", "{"}});
  leave("c", {{"config.toml.tmp-Ab12Cd", config.substr(0, 20)}});
  for (const std::string name : {"a", "b"}) {
    const CliResult r = run("run --resume " + name + " --threads 2");  // its own config.toml
    ASSERT_EQ(r.status, 0) << name << "\n" << r.err;
    expect_same_outputs("ref", name);
    EXPECT_FALSE(fs::exists(cwd() / name / "config.toml.tmp-Ab12Cd"));
  }
  const CliResult c = run("run --resume c " + kSmall);  // no config.toml yet: the one given
  ASSERT_EQ(c.status, 0) << c.err;
  expect_same_outputs("ref", "c");

  leave("d", {{"config.toml", config}});
  const CliResult d = run("run --resume d " + kSmall + "--set train.lr=0.01");
  EXPECT_EQ(d.status, 2) << d.err;
  EXPECT_NE(d.err.find("train.lr"), std::string::npos) << d.err;
  EXPECT_EQ(run("run " + kSmall + "--out d").status, 2);  // without --resume: refused
  leave("e", {{"config.toml", config}, {"notes.txt", "mine"}});
  EXPECT_EQ(run("run --resume e " + kSmall).status, 2);  // not only ours: refused
  EXPECT_EQ(read(cwd() / "e" / "notes.txt"), "mine");
}

TEST_F(SweepCli, KilledDuringWritesLeavesTemporariesThatTheResumeRemoves) {
  // What kill -9 leaves inside a segment write or the final outputs: temporary files beside them,
  // which the finished run must not keep (half-written copies of its outputs).
  ASSERT_EQ(run("run " + kSmall + "--save-params --out ref").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--save-params --out k").status, 0);
  for (const char* file : {"replicas.csv", "stress.csv", "summary.csv", "summary.json", "params.npy"})
    fs::remove(cwd() / "k" / file);
  write("k/checkpoint/part-00000007.bin.tmp", "USCKPT01 cut short");
  write("k/params.npy.tmp", "\x93NUMPY cut short");
  write("k/replicas.csv.tmp-Xy12Zw", "replica,cell");
  write("k/summary.json.tmp-Ab34Cd", "{");
  const CliResult r = run("run --resume k --save-params --threads 2");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs("ref", "k");
  EXPECT_TRUE(read(cwd() / "ref" / "params.npy") == read(cwd() / "k" / "params.npy"));
  EXPECT_FALSE(fs::exists(cwd() / "k" / "checkpoint" / "part-00000007.bin.tmp"));
  EXPECT_FALSE(fs::exists(cwd() / "k" / "params.npy.tmp"));
  EXPECT_FALSE(fs::exists(cwd() / "k" / "replicas.csv.tmp-Xy12Zw"));
  EXPECT_FALSE(fs::exists(cwd() / "k" / "summary.json.tmp-Ab34Cd"));
  // A damaged segment (not something kill -9 makes) is an error naming it, not silent loss.
  write("k/checkpoint/part-00000000.bin", "USCKPT01 damaged");
  const CliResult damaged = run("run --resume k --save-params --threads 2");
  EXPECT_NE(damaged.status, 0);
  EXPECT_NE(damaged.err.find("part-00000000.bin"), std::string::npos) << damaged.err;
}

// Ctrl-C while the report is drawn: the outputs stay complete, the generator is stopped (it
// runs in its own process group and gets SIGTERM from underspec), and the status says so.
TEST_F(SweepCli, AStopDuringTheReportKeepsTheOutputsAndStopsTheGenerator) {
  write("slow-python", "#!/bin/sh\nexec sleep 60\n");
  fs::permissions(cwd() / "slow-python", fs::perms::owner_exec, fs::perm_options::add);
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = start("UNDERSPEC_NO_REPORT=0 UNDERSPEC_PYTHON=" + (cwd() / "slow-python").string() + " run " +
                          kSmall + "--out r");
  for (int i = 0; i < 600 && !fs::exists(cwd() / "r" / "summary.json"); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fs::exists(cwd() / "r" / "summary.json")) << bg_err();
  std::this_thread::sleep_for(300ms);  // the generator is running
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_for(pid), 130) << bg_err();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);  // not held by the sleeping generator
  const std::string err = bg_err();
  EXPECT_NE(err.find("stopped by signal 2 while drawing the report; the outputs in r are complete; the report: "
                     "underspec report r"),
            std::string::npos)
      << err;
  EXPECT_FALSE(fs::exists(cwd() / "r" / "report.html"));
  EXPECT_EQ(run("status r").status, 0);
}

// A report generator killed by a signal (the OOM killer, at 10^6-10^7 replicas) prints nothing:
// underspec names the signal instead of pointing at an empty "see above".
TEST_F(SweepCli, AKilledReportGeneratorIsNamedWithItsSignal) {
  write("killed-python", "#!/bin/sh\nkill -9 $$\n");
  fs::permissions(cwd() / "killed-python", fs::perms::owner_exec, fs::perm_options::add);
  const std::string env = "UNDERSPEC_NO_REPORT=0 UNDERSPEC_PYTHON=" + (cwd() / "killed-python").string();
  const CliResult r = run("run " + kSmall + "--out r", env);
  EXPECT_EQ(r.status, 0) << r.err;  // the outputs are complete
  EXPECT_NE(r.err.find("report generator (" + (cwd() / "killed-python").string() +
                       ") was killed by signal 9 (out of "
                       "memory?"),
            std::string::npos)
      << r.err;
  const CliResult report = run("report r", env);
  EXPECT_EQ(report.status, 1);
  EXPECT_NE(report.err.find("was killed by signal 9"), std::string::npos) << report.err;
}

// A hang-up (a closed terminal or ssh session) stops a run as SIGTERM does: what finished is
// saved and the resume finishes it with the uninterrupted bytes. Under nohup (SIGHUP ignored
// when underspec starts) a hang-up does nothing.
TEST_F(SweepCli, AHangUpSavesWhatFinishedUnlessIgnored) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out hup");
  ASSERT_TRUE(wait_for_segment("hup"));
  ::kill(pid, SIGHUP);
  EXPECT_EQ(wait_for(pid), 129) << bg_err();
  EXPECT_NE(bg_err().find("stopped by signal 1"), std::string::npos) << bg_err();
  ASSERT_EQ(run("run --resume hup --threads 2").status, 0);
  expect_same_outputs(ref, "hup");

  // As nohup starts it: SIGHUP ignored; the hang-up comes 0.3 s into the run.
  const CliResult r = run("run " + kMedium + "--no-report --progress none --out ignored",
                          "bash -c 'trap \"\" HUP; (sleep 0.3; kill -HUP $$) & exec \"$0\" \"$@\"'");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(cwd() / "ignored" / "summary.json"));
}

// `underspec report DIR` stopped by Ctrl-C stops its generator too (no orphan left drawing)
// and exits 130 with one line.
TEST_F(SweepCli, AStoppedReportCommandStopsItsGenerator) {
  ASSERT_EQ(run("run " + kSmall + "--no-report --out r").status, 0);
  write("slow-python", "#!/bin/sh\necho $$ > " + (cwd() / "generator.pid").string() + "\nexec sleep 60\n");
  fs::permissions(cwd() / "slow-python", fs::perms::owner_exec, fs::perm_options::add);
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = start("UNDERSPEC_PYTHON=" + (cwd() / "slow-python").string() + " report r");
  for (int i = 0; i < 200 && !fs::exists(cwd() / "generator.pid"); ++i) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(100ms);
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_for(pid), 130) << bg_err();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
  EXPECT_NE(bg_err().find("underspec: error: stopped by signal 2 while drawing the report"), std::string::npos)
      << bg_err();
  const pid_t generator = std::stoi(read(cwd() / "generator.pid"));
  for (int i = 0; i < 100 && ::kill(generator, 0) == 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_NE(::kill(generator, 0), 0) << "the generator still runs";
}

// SIGTERM or SIGINT once the first segment is saved: 128 + signal, the resume command, then
// running that very command finishes the run with the uninterrupted bytes.
TEST_F(SweepCli, SigtermSavesPrintsTheResumeCommandAndResumesByteIdentical) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out term");
  ASSERT_TRUE(wait_for_segment("term"));
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_for(pid), 143) << bg_err();
  const std::string err = bg_err();
  EXPECT_NE(err.find("stopped by signal 15"), std::string::npos) << err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(err, m, std::regex(R"(to continue: ([^\n]*))"))) << err;
  EXPECT_FALSE(fs::exists(cwd() / "term" / "summary.json"));
  const CliResult r = paste(m[1].str() + " --threads 2");  // the very command printed
  ASSERT_EQ(r.status, 0) << m[1] << "\n" << r.err;
  EXPECT_NE(r.err.find("resuming term: "), std::string::npos) << r.err;
  expect_same_outputs(ref, "term");
  // summary.json differs only in the run's own facts.
  nlohmann::json a = nlohmann::json::parse(read(fs::path(ref) / "summary.json"));
  nlohmann::json b = nlohmann::json::parse(read(cwd() / "term" / "summary.json"));
  for (const char* key : {"version", "backend", "threads", "wall_seconds", "run"}) {
    EXPECT_TRUE(a.contains(key) && b.contains(key)) << key;
    a.erase(key);
    b.erase(key);
  }
  EXPECT_EQ(a, b);
}

// A dry run of a resume (run --resume DIR --dry-run, plan --resume DIR) counts what the
// checkpoint already holds and plans the work of the rest only; it changes nothing there.
TEST_F(SweepCli, ADryRunOfAResumePlansOnlyTheReplicasLeft) {
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out term");
  ASSERT_TRUE(wait_for_segment("term"));
  ::kill(pid, SIGTERM);
  ASSERT_EQ(wait_for(pid), 143) << bg_err();
  std::smatch m;
  const std::string err = bg_err();
  ASSERT_TRUE(std::regex_search(err, m, std::regex(R"(; ([0-9]+) of 600 replicas are saved)"))) << err;
  const int saved = std::stoi(m[1].str());
  const std::string checkpoint = read(cwd() / "term" / "checkpoint" / "state.json");
  char work[64];  // 8 epochs of ceil(2000 / 64) = 32 steps per replica
  std::snprintf(work, sizeof work, "work         %.3g replica-steps", (600.0 - saved) * 8 * 32);
  for (const std::string cmd : {"run --resume term --dry-run", "plan --resume term", "plan --out term --resume"}) {
    const CliResult r = run(cmd);
    ASSERT_EQ(r.status, 0) << cmd << "\n" << r.err;
    EXPECT_NE(r.out.find("replicas     600 of 600 (" + std::to_string(saved) + " already done in the checkpoint, " +
                         std::to_string(600 - saved) + " to train)"),
              std::string::npos)
        << cmd << "\n"
        << r.out;
    EXPECT_NE(r.out.find(work), std::string::npos) << cmd << "\n" << work << "\n" << r.out;
  }
  EXPECT_EQ(read(cwd() / "term" / "checkpoint" / "state.json"), checkpoint);
  EXPECT_FALSE(fs::exists(cwd() / "term" / "summary.json"));
  // Without --resume a plan of that directory is still the whole sweep.
  const CliResult fresh = run("plan " + kMedium);
  EXPECT_NE(fresh.out.find("replicas     600 of 600\n"), std::string::npos) << fresh.out;
}

TEST_F(SweepCli, DivergedMarkersSurviveSigtermAndResume) {
  // Augmentation noise of 1e38 diverges the augmentation regime; the markers travel in the
  // checkpoint, so the resumed run's outputs equal an uninterrupted run's.
  const std::string diverging = "--set regime.augmentation.noise_std=1e38 ";
  ASSERT_EQ(run("run " + kMedium + diverging + "--out ref").status, 0);
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + diverging + "--out term");
  ASSERT_TRUE(wait_for_segment("term"));
  ::kill(pid, SIGTERM);
  const int status = wait_for(pid);
  ASSERT_TRUE(status == 143 || status == 0) << bg_err();
  if (status == 143) {
    const CliResult r = run("run --resume term --threads 1");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("diverged"), std::string::npos) << r.err;
  }
  expect_same_outputs("ref", "term");
  // Where the parameters stopped being finite (the replay of their training), as the run said.
  EXPECT_NE(read(cwd() / "term" / "replicas.csv").find(",epoch 1 step "), std::string::npos);
  EXPECT_NE(read(cwd() / "term" / "replicas.csv").find(": parameters not finite\n"), std::string::npos);
}

TEST_F(SweepCli, TheResumeCommandQuotesItsDirectory) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out \"my run's dir\"");
  ASSERT_TRUE(wait_for_segment("my run's dir"));
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_for(pid), 143) << bg_err();
  std::smatch m;
  const std::string err = bg_err();
  ASSERT_TRUE(std::regex_search(err, m, std::regex(R"(to continue: ([^\n]*))"))) << err;
  const CliResult r = paste(m[1].str() + " --threads 2");  // pasted into a shell as printed
  ASSERT_EQ(r.status, 0) << m[1] << "\n" << r.err;
  expect_same_outputs(ref, "my run's dir");
}

TEST_F(SweepCli, SigintExits130AndResumes) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out int");
  ASSERT_TRUE(wait_for_segment("int"));
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_for(pid), 130) << bg_err();
  EXPECT_NE(bg_err().find("underspec run --resume int"), std::string::npos) << bg_err();
  ASSERT_EQ(run("run --resume int --threads 1").status, 0);  // another thread count: the same bytes
  expect_same_outputs(ref, "int");
}

TEST_F(SweepCli, ASecondSignalExitsAtOnceAndTheRunStillResumes) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out twice");
  ASSERT_TRUE(wait_for_segment("twice"));
  ::kill(pid, SIGINT);
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_for(pid), 130) << bg_err();
  ASSERT_EQ(run("run --resume twice --threads 2").status, 0);
  expect_same_outputs(ref, "twice");
}

TEST_F(SweepCli, ASecondProcessOnTheSameRunIsRefused) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--out busy");
  ASSERT_TRUE(wait_for_segment("busy"));
  const CliResult second = run("run --resume busy --threads 2");  // e.g. a resume submitted twice
  const bool first_done = fs::exists(cwd() / "busy" / "summary.json");
  if (!first_done) {
    EXPECT_EQ(second.status, 2) << second.err;
    EXPECT_NE(second.err.find("in use"), std::string::npos) << second.err;
  }
  ::kill(pid, SIGTERM);
  wait_for(pid);
  ASSERT_EQ(run("run --resume busy --threads 2").status, 0);
  expect_same_outputs(ref, "busy");
}

TEST_F(SweepCli, SavedParamsSurviveKillResumeAndMerge) {
  ASSERT_EQ(run("run " + kMedium + "--save-params --out ref").status, 0);
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--save-params --out k");
  ASSERT_TRUE(wait_for_segment("k"));
  ::kill(pid, SIGKILL);
  wait_for(pid);
  const CliResult r = run("run --resume k --save-params --threads 2");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs("ref", "k");
  EXPECT_TRUE(read(cwd() / "ref" / "params.npy") == read(cwd() / "k" / "params.npy"));

  // Shards with --save-params merge into the same params.npy, and the merged run scores the same.
  ASSERT_EQ(run("run " + kSmall + "--save-params --out small").status, 0);
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(
        run("run " + kSmall + "--save-params --shard " + std::to_string(i) + "/3 --out s" + std::to_string(i)).status,
        0);
  const CliResult merged = run("merge s2 s0 s1 --out m");  // any order
  ASSERT_EQ(merged.status, 0);
  // The table's last line: a merge trained nothing, a score only scored.
  EXPECT_NE(merged.out.find("\nmerged "), std::string::npos) << merged.out;
  EXPECT_EQ(merged.out.find("s training"), std::string::npos) << merged.out;
  expect_same_outputs("small", "m");
  EXPECT_TRUE(read(cwd() / "small" / "params.npy") == read(cwd() / "m" / "params.npy"));
  const CliResult scored = run("score small --set 'data.stress_factors=[0.1]' --out score_small");
  ASSERT_EQ(scored.status, 0);
  EXPECT_NE(scored.out.find(" s scoring, "), std::string::npos) << scored.out;
  ASSERT_EQ(run("score m --set 'data.stress_factors=[0.1]' --out score_m").status, 0);
  expect_same_outputs("score_small", "score_m");
  // A shard scores its own replicas.
  const CliResult shard = run("score s1 --set 'data.stress_factors=[0.1]' --out score_s1");
  ASSERT_EQ(shard.status, 0) << shard.err;
  const auto rows = lines(read(cwd() / "score_s1" / "replicas.csv"));
  ASSERT_EQ(rows.size(), 1u + 6);
  EXPECT_EQ(rows[1], lines(read(cwd() / "score_small" / "replicas.csv"))[7]);
}

// ---------------------------------------------------------------- resume and configs

TEST_F(SweepCli, ResumeRefusesADifferentConfigNamingTheKey) {
  ASSERT_EQ(run("run " + kSmall + "--out a").status, 0);
  const std::string before = read(cwd() / "a" / "replicas.csv");
  const CliResult r = run("run --resume a " + kSmall + "--set train.lr=0.01");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("train.lr"), std::string::npos) << r.err;
  EXPECT_EQ(read(cwd() / "a" / "replicas.csv"), before);
  // The same config again, as flags or as its own config.toml, is accepted; so is none at all.
  EXPECT_EQ(run("run --resume a " + kSmall).status, 0);
  EXPECT_EQ(run("run a/config.toml --resume a --device cpu").status, 0);
  EXPECT_EQ(run("run --resume a").status, 0);
  EXPECT_EQ(read(cwd() / "a" / "replicas.csv"), before);
  // A different shard or --save-params is refused too.
  const CliResult sharded = run("run --resume a --shard 0/2");
  EXPECT_EQ(sharded.status, 2);
  EXPECT_NE(sharded.err.find("it is a whole run, not shard 0/2; resume it without --shard"), std::string::npos)
      << sharded.err;
  EXPECT_EQ(run("run --resume a --save-params").status, 2);
  // A config.toml edited since the run started is named as the problem, with or without the flags.
  const std::string original = read(cwd() / "a" / "config.toml");
  write("a/config.toml", std::regex_replace(original, std::regex("\nlr = 0.001 "), "\nlr = 0.002 "));
  ASSERT_NE(read(cwd() / "a" / "config.toml"), original);
  for (const std::string& flags : {std::string(), kSmall}) {
    const CliResult edited = run("run --resume a " + flags);
    EXPECT_EQ(edited.status, 2) << edited.err;
    EXPECT_NE(edited.err.find("config.toml does not match its checkpoint"), std::string::npos) << edited.err;
  }
  write("a/config.toml", original);
  // Without --resume the run directory is refused.
  const CliResult again = run("run " + kSmall + "--out a");
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
}

TEST_F(SweepCli, ResumeOfAMissingDirectoryStartsIt) {
  ASSERT_EQ(run("run " + kSmall + "--out ref").status, 0);
  const CliResult r = run("run " + kSmall + "--resume fresh");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs("ref", "fresh");
  EXPECT_EQ(run("run " + kSmall + "--resume x --out y").status, 2);
  EXPECT_EQ(run("run --resume").status, 2);  // no directory at all
}

// ---------------------------------------------------------------- shards and merge

TEST_F(SweepCli, MergedShardsAreByteIdenticalToOneRun) {
  ASSERT_EQ(run("run " + kSmall + "--out ref").status, 0);
  for (int n : {1, 3, 7}) {
    std::string dirs;
    for (int i = 0; i < n; ++i) {
      const std::string d = std::string("s").append(std::to_string(n)).append("_").append(std::to_string(i));
      const CliResult r =
          run("run " + kSmall + "--shard " + std::to_string(i) + "/" + std::to_string(n) + " --out " + d);
      ASSERT_EQ(r.status, 0) << d << "\n" << r.err;
      dirs += d + " ";
    }
    const std::string merged = std::string("m").append(std::to_string(n));
    const CliResult r = run("merge " + dirs + "--out " + merged);
    ASSERT_EQ(r.status, 0) << r.err;
    expect_same_outputs("ref", merged);
  }
}

TEST_F(SweepCli, ShardsOrResumesOfAnotherBuildAreNamedNotRefused) {
  // A build from a source tree without git history records no commit, and then names no other.
  if (git_commit() == "unknown") GTEST_SKIP() << "this build records no git commit (no git, or no .git)";
  ASSERT_EQ(run("run " + kSmall + "--shard 0/2 --out s0").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--shard 1/2 --out s1").status, 0);
  const CliResult same = run("merge s0 s1 --out same");
  ASSERT_EQ(same.status, 0) << same.err;
  EXPECT_EQ(same.err.find("different builds"), std::string::npos) << same.err;
  // s1 as if trained by another build: the merge says so, and its outputs are unchanged.
  const fs::path state = cwd() / "s1" / "checkpoint" / "state.json";
  nlohmann::json j = nlohmann::json::parse(read(state));
  EXPECT_EQ(j.at("git_commit"), git_commit());
  j["git_commit"] = "0123abc";
  write("s1/checkpoint/state.json", j.dump(2));
  const CliResult mixed = run("merge s0 s1 --out mixed");
  ASSERT_EQ(mixed.status, 0) << mixed.err;
  EXPECT_NE(mixed.err.find("warning: merge: shards from different builds of underspec, e.g. s0 (" + git_commit() +
                           ") and s1 (0123abc)"),
            std::string::npos)
      << mixed.err;
  expect_same_outputs("same", "mixed");
  // A resume by this build of a directory another build started.
  const CliResult resumed = run("run --resume s1 --shard 1/2 " + kSmall.substr(kSmall.find("--device")));
  EXPECT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("s1 was started by underspec built from 0123abc, this is built from " + git_commit()),
            std::string::npos)
      << resumed.err;
  // A directory of a build that did not record itself.
  j.erase("git_commit");
  write("s1/checkpoint/state.json", j.dump(2));
  EXPECT_NE(run("run --resume s1 --shard 1/2").err.find("an earlier underspec (its build not recorded)"),
            std::string::npos);
}

TEST_F(SweepCli, AShardKilledThenResumedMergesByteIdentical) {
  const std::string ref = medium_reference();
  ASSERT_FALSE(ref.empty());
  ASSERT_EQ(run("run " + kMedium + "--shard 0/3 --out p0").status, 0);
  ASSERT_EQ(run("run " + kMedium + "--shard 2/3 --out p2").status, 0);
  const pid_t pid = start(kFastCheckpoints + "run " + kMedium + "--shard 1/3 --out p1");
  ASSERT_TRUE(wait_for_segment("p1"));
  ::kill(pid, SIGKILL);
  wait_for(pid);
  // Unless its checkpoint happens to hold every replica already, merge says which are missing, and
  // creates nothing.
  const CliResult early = run("merge p0 p1 p2 --out m");
  if (early.status != 0) {
    EXPECT_EQ(early.status, 2);
    EXPECT_NE(early.err.find("replicas missing"), std::string::npos) << early.err;
    EXPECT_FALSE(fs::exists(cwd() / "m"));
  }
  fs::remove_all(cwd() / "m");
  const CliResult wrong = run("run --resume p1");  // resuming it as the whole sweep
  EXPECT_EQ(wrong.status, 2);
  EXPECT_NE(wrong.err.find("it is shard 1/3, not a whole run; resume it with --shard 1/3"), std::string::npos)
      << wrong.err;
  ASSERT_EQ(run("run --resume p1 --shard 1/3 --threads 2").status, 0);
  ASSERT_EQ(run("merge p0 p1 p2 --out m").status, 0);
  expect_same_outputs(ref, "m");
}

TEST_F(SweepCli, AutoShardTakesTheSlurmArrayTaskId) {
  ASSERT_EQ(run("run " + kSmall + "--shard 1/3 --out explicit").status, 0);
  const CliResult r = run("run " + kSmall + "--shard auto/3 --out auto", "SLURM_ARRAY_TASK_ID=1");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs("explicit", "auto");
  const nlohmann::json state = nlohmann::json::parse(read(cwd() / "auto" / "checkpoint" / "state.json"));
  EXPECT_EQ(state.at("shard").at("index"), 1);
  EXPECT_EQ(state.at("shard").at("count"), 3);
}

TEST_F(SweepCli, BadShardSpecsExitTwoAndCreateNothing) {
  for (const std::string spec : {"3/3", "-1/2", "a/b", "1", "0/0", "1/-2", "/3", "1/", "auto/2", "1.5/3", " 1/3"}) {
    const CliResult r = run("run " + kSmall + "--shard '" + spec + "' --out out", "-u SLURM_ARRAY_TASK_ID");
    EXPECT_EQ(r.status, 2) << spec << "\n" << r.err;
    EXPECT_NE(r.err.find("--shard"), std::string::npos) << spec << "\n" << r.err;
    EXPECT_TRUE(cwd_entries().empty()) << spec;
  }
  for (const std::string id : {"2", "-1", "x", ""}) {
    const CliResult r = run("run " + kSmall + "--shard auto/2 --out out", "SLURM_ARRAY_TASK_ID='" + id + "'");
    EXPECT_EQ(r.status, 2) << "SLURM_ARRAY_TASK_ID=" << id << "\n" << r.err;
    EXPECT_TRUE(cwd_entries().empty()) << id;
  }
}

TEST_F(SweepCli, MergeErrorsExitTwoAndCreateNothing) {
  ASSERT_EQ(run("run " + kSmall + "--shard 0/3 --out a0").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--shard 1/3 --out a1").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--shard 2/3 --out a2").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--set train.lr=0.003 --shard 2/3 --out b2").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--shard 1/2 --out c1").status, 0);
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"a0 a1 b2", "train.lr"},   {"a0 a1", "replicas missing"}, {"a0 a2", "replicas missing"},
      {"a0 a1 a1 a2", "overlap"}, {"a0 a1 a2 c1", "overlap"},    {"a0 a1 a2 nowhere", "nowhere"},
  };
  for (const Case& c : cases) {
    const CliResult r = run("merge " + c.args + " --out m");
    EXPECT_EQ(r.status, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(cwd() / "m")) << c.args;
  }
  // A complete set merges; but not into a non-empty directory.
  fs::create_directory(cwd() / "full");
  write("full/keep", "x");
  EXPECT_EQ(run("merge a0 a1 a2 --out full").status, 2);
  EXPECT_EQ(entries(cwd() / "full"), std::vector<std::string>{"keep"});
  EXPECT_EQ(run("merge a0 a1 a2 --out m").status, 0);
  // Merging into a run directory again: merge cannot resume, so it says what helps instead.
  const CliResult again = run("merge a0 a1 a2 --out m");
  EXPECT_EQ(again.status, 2) << again.err;
  EXPECT_NE(again.err.find("m holds a run already; choose another --out"), std::string::npos) << again.err;
  EXPECT_EQ(again.err.find("--resume"), std::string::npos) << again.err;
}

// A checkpoint holds replicas in the order they finished, not by id: an overlap still names
// the lowest replica in two shards (here the same directory twice, its records reversed).
TEST_F(SweepCli, MergeOverlapNamesTheLowestDoubledReplica) {
  ASSERT_EQ(run("run " + kSmall + "--shard 0/2 --out s0").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--shard 1/2 --out s1").status, 0);
  std::vector<ReplicaResult> records;
  for_each_checkpoint_record(cwd() / "s0", [&](ReplicaResult&& r) { records.push_back(std::move(r)); });
  ASSERT_GE(records.size(), 2u);
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a.id > b.id; });
  for (const auto& e : fs::directory_iterator(cwd() / "s0" / "checkpoint"))
    if (e.path().extension() == ".bin") fs::remove(e.path());
  CheckpointWriter(cwd() / "s0").write_segment(records);

  const CliResult r = run("merge s0 s0 s1 --out m");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("shards overlap: replica 0 is in both s0 and s0 (replicas in two shards: 0-8)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(cwd() / "m"));
}

// Overlaps are found whatever the number of shard directories (an 8-bit owner tag saturated
// at 254 and let two late shards holding the same replicas merge).
TEST_F(SweepCli, MergeFindsOverlapsPastTwoHundredFiftyFiveShards) {
  ASSERT_EQ(run("run " + kSmall + "--shard 0/2 --out s0").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--shard 1/2 --out s1").status, 0);
  ASSERT_EQ(run("run " + kSmall + "--shard 0/100 --out e").status, 0);  // holds no replica
  std::string dirs = "s1 ";
  for (int k = 0; k < 300; ++k) dirs += "e ";
  const CliResult r = run("merge " + dirs + "s0 s0 --out m");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("shards overlap: replica 0 is in both s0 and s0"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cwd() / "m"));
}

// ---------------------------------------------------------------- grids

TEST_F(SweepCli, GridCellsAxesAndSeedsPerModel) {
  const CliResult r = run("run " + kSmall +
                          "--set 'sweep.grid.\"train.lr\"=[1e-3, 3e-3]' "
                          "--set 'sweep.grid.\"data.train_factor\"=[0.1, 0.5]' --set sweep.seeds=2 "
                          "--set sweep.seeds_per_model.mlp=3 --out g");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto rows = lines(read(cwd() / "g" / "replicas.csv"));
  // 4 cells x (2 perceptron + 3 MLP seeds) x 3 regimes.
  ASSERT_EQ(rows.size(), 1u + 4 * 5 * 3);
  EXPECT_EQ(rows[0],
            "replica,cell,data.train_factor,train.lr,model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias,iid_rmse_"
            "expected,ood_rmse_expected,diverged");
  const std::string tf[] = {"0.1", "0.5"}, lr[] = {"0.001", "0.003"};
  std::map<std::string, int> per_model;
  std::map<std::string, int> per_cell;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    std::vector<std::string> f;
    std::stringstream s(rows[i]);
    for (std::string x; std::getline(s, x, ',');) f.push_back(x);
    ASSERT_GE(f.size(), 9u) << rows[i];
    EXPECT_EQ(f[0], std::to_string(i - 1));  // ids unique, 0..n-1, in order
    const int cell = std::stoi(f[1]);
    ASSERT_LT(cell, 4);
    EXPECT_EQ(cell, static_cast<int>((i - 1) / 15));  // cells outermost
    EXPECT_EQ(f[2], tf[cell / 2]) << rows[i];         // first axis (alphabetical) slowest
    EXPECT_EQ(f[3], lr[cell % 2]) << rows[i];         // last axis fastest
    ++per_model[f[4]];
    ++per_cell[f[1]];
  }
  EXPECT_EQ(per_model["perceptron"], 4 * 3 * 2);
  EXPECT_EQ(per_model["mlp"], 4 * 3 * 3);
  for (const auto& [cell, n] : per_cell) EXPECT_EQ(n, 15) << cell;
  // The learning-rate axis changes the results; its cells differ.
  EXPECT_NE(rows[1].substr(rows[1].find("perceptron")), rows[16].substr(rows[16].find("perceptron")));

  const auto stress = lines(read(cwd() / "g" / "stress.csv"));
  ASSERT_EQ(stress.size(), 1u + 60 * 2);
  EXPECT_EQ(stress[0], "replica,factor,rmse,rmse_expected");
  EXPECT_EQ(stress[1].rfind("0,0.05,", 0), 0u) << stress[1];
  EXPECT_EQ(stress[2].rfind("0,0.5,", 0), 0u) << stress[2];
  EXPECT_EQ(stress[120].rfind("59,0.5,", 0), 0u) << stress[120];

  const auto summary = lines(read(cwd() / "g" / "summary.csv"));
  ASSERT_EQ(summary.size(), 1u + 4 * 2 * 3);
  EXPECT_EQ(summary[0].rfind("cell,data.train_factor,train.lr,model,regime,replicas,", 0), 0u) << summary[0];
  const nlohmann::json j = nlohmann::json::parse(read(cwd() / "g" / "summary.json"));
  EXPECT_EQ(j.at("replicas"), 60);
}

// ---------------------------------------------------------------- plans

TEST_F(SweepCli, DryRunAndPlanCreateNothing) {
  const std::string grid = "--set 'sweep.grid.\"train.lr\"=[1e-3, 3e-3]' ";
  for (const std::string& cmd :
       {"run --dry-run " + kSmall + grid + "--out out", "plan " + kSmall + grid + "--out out", "plan " + kSmall + grid,
        "run --dry-run " + kSmall + grid, "plan " + kSmall + grid + "--shard 1/2 --save-params --out out"}) {
    const CliResult r = run(cmd);
    EXPECT_EQ(r.status, 0) << cmd << "\n" << r.err;
    EXPECT_TRUE(cwd_entries().empty()) << cmd;
    EXPECT_NE(r.out.find("cells        2 (train.lr: 2)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("host memory  about"), std::string::npos) << r.out;
    EXPECT_TRUE(r.out.find("replicas     36 of 36") != std::string::npos ||
                r.out.find("replicas     18 of 36") != std::string::npos)
        << r.out;
  }
  // An axis that changes only the MLPs: plan and run say the perceptrons repeat (stderr only).
  for (const std::string cmd : {"plan ", "run --dry-run "}) {
    const CliResult idle = run(cmd + kSmall + "--set 'sweep.grid.\"model.mlp.hidden\"=[[8], [16]]'");
    EXPECT_EQ(idle.status, 0) << idle.err;
    EXPECT_NE(idle.err.find("underspec: warning: grid axis model.mlp.hidden does not affect perceptron: its 2 values "
                            "train the same perceptron replicas again (9 of 36 replicas are bit-identical copies)\n"),
              std::string::npos)
        << idle.err;
  }
  // A bad config is still refused by a plan.
  EXPECT_EQ(run("plan --set sweep.seeds=0").status, 2);
  EXPECT_TRUE(cwd_entries().empty());
}

// What a plan lists is what the run writes: the headers of replicas.csv and summary.csv, the
// report, and a disk estimate that covers every byte (the free-space check relies on it).
TEST_F(SweepCli, PlanListsWhatTheRunWritesAndItsDiskEstimateCoversIt) {
  const CliResult plan = run("run --dry-run " + kSmall + "--out a", "-u UNDERSPEC_NO_REPORT");
  ASSERT_EQ(plan.status, 0) << plan.err;
  const std::smatch disk = [&] {
    std::smatch m;
    std::regex_search(plan.out, m, std::regex(R"(disk +about ([0-9.]+) (B|KiB|MiB|GiB))"));
    return m;
  }();
  ASSERT_EQ(disk.size(), 3u) << plan.out;
  const double unit = disk[2] == "B" ? 1 : disk[2] == "KiB" ? 1024 : disk[2] == "MiB" ? 1 << 20 : 1 << 30;
  const double estimate = std::stod(disk[1]) * unit;
  ASSERT_EQ(run("run " + kSmall + "--out a", "-u UNDERSPEC_NO_REPORT").status, 0);  // with its report
  double written = 0;
  for (const auto& e : fs::recursive_directory_iterator(cwd() / "a"))
    if (e.is_regular_file()) written += static_cast<double>(e.file_size());
  EXPECT_LE(written, estimate) << plan.out;
  for (const char* file : {"replicas.csv", "summary.csv"}) {
    const std::string header = lines(read(cwd() / "a" / file)).at(0);
    const std::string listed = header.substr(0, header.find("iid_rmse_mean"));  // summary.csv lists <stat> columns
    const std::size_t at = plan.out.find(std::string("    ") + file);
    ASSERT_NE(at, std::string::npos) << plan.out;
    const std::string line = plan.out.substr(at, plan.out.find('\n', at) - at);
    EXPECT_NE(line.find(" " + listed), std::string::npos) << line << "\nwritten: " << header;
  }
  for (const auto& e : fs::directory_iterator(cwd() / "a")) {
    const std::string name = e.path().filename().string();
    EXPECT_NE(plan.out.find("    " + (name == "plots" ? std::string("plots/") : name)), std::string::npos) << name;
  }
}

// The plan's report figure follows what the report draws for a large grid: the per-cell
// figures' first 6 cells, grid_spread per grid value, tables cut at 200 rows. It counted every
// replica's points (9 MiB here for a report of about 1 MiB) and, for the grid_spread and the
// tables that once held every cell, under-counted a 2000-cell grid (16.7 MiB for 19 MB).
TEST_F(SweepCli, PlanCountsTheReportOfAGridOfManyCells) {
  std::string lrs, factors;
  for (int i = 0; i < 20; ++i) lrs += (i ? ", " : "") + std::to_string(0.001 * (1 + i / 10.0));
  for (int i = 0; i < 30; ++i) factors += (i ? ", " : "") + std::to_string(0.05 + i / 100.0);
  const std::string grid = "--set 'sweep.grid={\"train.lr\"=[" + lrs + "], \"data.train_factor\"=[" + factors +
                           "]}' --set sweep.seeds=2 --set data.n_train=64 --set data.n_test=64 --set train.epochs=1 "
                           "--set 'sweep.models=[\"perceptron\"]' --device cpu --threads 2 --progress none ";
  const auto planned_disk = [&](const std::string& options) {
    const CliResult plan = run("plan " + grid + options, "-u UNDERSPEC_NO_REPORT");
    std::smatch m;
    EXPECT_TRUE(std::regex_search(plan.out, m, std::regex(R"(disk +about ([0-9.]+) (B|KiB|MiB|GiB))"))) << plan.out;
    const double unit = m[2] == "B" ? 1 : m[2] == "KiB" ? 1024 : m[2] == "MiB" ? 1 << 20 : 1 << 30;
    return std::stod(m[1]) * unit;
  };
  const double report_estimate = planned_disk("") - planned_disk("--no-report");
  ASSERT_EQ(run("run " + grid + "--out g", "-u UNDERSPEC_NO_REPORT").status, 0);
  if (!fs::exists(cwd() / "g" / "report.html")) GTEST_SKIP() << "no report (Python's pandas or matplotlib missing)";
  double written = static_cast<double>(fs::file_size(cwd() / "g" / "report.html"));
  for (const auto& e : fs::directory_iterator(cwd() / "g" / "plots")) written += static_cast<double>(e.file_size());
  EXPECT_LE(written, report_estimate);
  EXPECT_LE(report_estimate, 3 * written) << "planned " << report_estimate << " B, written " << written << " B";
}

// --save-params keeps every MLP's 4481 parameters on their way to the checkpoint: the run's
// memory must stay bounded (it held them all, 1.1 GB for 15000 replicas) and within the plan
// the run checks before it starts. (Not under the sanitizers, whose shadow memory and
// quarantine inflate every process.)
TEST_F(SweepCli, SaveParamsMemoryIsBoundedAndWithinThePlan) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "RSS under AddressSanitizer says nothing about the build";
#endif
  const std::string sweep =
      "--set 'sweep.models=[\"mlp\"]' --set sweep.seeds=2500 --set train.epochs=1 --set data.n_train=64 "
      "--set data.n_test=200 --threads 2 --device cpu --progress none --save-params ";
  const CliResult plan = run("run --dry-run " + sweep + "--out p");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(plan.out, m, std::regex(R"(host memory +about ([0-9.]+) MiB)"))) << plan.out;
  const double planned = std::stod(m[1]) * (1 << 20);
  const pid_t pid = start("run " + sweep + "--out p");
  int raw = 0;
  rusage usage{};
  while (::wait4(pid, &raw, 0, &usage) < 0 && errno == EINTR) {
  }
  ASSERT_TRUE(WIFEXITED(raw) && WEXITSTATUS(raw) == 0) << bg_err();
  const double peak = static_cast<double>(usage.ru_maxrss) * 1024;
  const double params = 7500.0 * 4481 * 4;  // every replica's parameters: 134 MB
  EXPECT_LE(peak, planned) << "peak RSS " << peak / (1 << 20) << " MiB";
  // Before the fix: 404 MB, 3x the parameters (rows kept them, records waited for 5 s).
  EXPECT_LT(peak, 2 * params) << "peak RSS " << peak / (1 << 20) << " MiB: the parameters pile up in memory";
}

// Resuming a finished run is a no-op: its outputs, and the record of the session that ran it, stay.
TEST_F(SweepCli, ResumingAFinishedRunLeavesItAlone) {
  ASSERT_EQ(run("run " + kSmall + "--no-report --out f").status, 0);
  const std::string summary = read(cwd() / "f" / "summary.json");
  const CliResult again = run("run --resume f --no-report");
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("already finished"), std::string::npos) << again.err;
  EXPECT_EQ(read(cwd() / "f" / "summary.json"), summary);
}

// ---------------------------------------------------------------- parameters and scoring

TEST_F(SweepCli, SaveParamsThenScoreReproducesTheTestErrors) {
  ASSERT_EQ(run("run " + kSmall + "--save-params --out p").status, 0);
  const std::string npy = read(cwd() / "p" / "params.npy");
  ASSERT_GT(npy.size(), 10u);
  ASSERT_EQ(npy.substr(0, 6), "\x93NUMPY");
  const std::size_t header = static_cast<unsigned char>(npy[8]) | (static_cast<unsigned char>(npy[9]) << 8);
  // 18 replicas; the widest is the default MLP 3-64-64-1: 3*64+64 + 64*64+64 + 64+1 = 4481 parameters.
  EXPECT_NE(npy.substr(10, header).find("'shape': (18, 4481)"), std::string::npos) << npy.substr(10, header);
  EXPECT_EQ(npy.size(), 10 + header + 18 * 4481 * 4);

  const CliResult s = run("score p --set 'data.stress_factors=[0.05]' --out s");
  ASSERT_EQ(s.status, 0) << s.err;
  const auto stress = lines(read(cwd() / "s" / "stress.csv"));
  ASSERT_EQ(stress.size(), 1u + 18);
  for (std::size_t i = 1; i < stress.size(); ++i)
    EXPECT_EQ(stress[i].rfind(std::to_string(i - 1) + ",0.05,", 0), 0u) << stress[i];
  // Same test sets: the same IID and OOD errors as training measured, and the same 0.05 stress domain.
  EXPECT_EQ(read(cwd() / "s" / "replicas.csv"), read(cwd() / "p" / "replicas.csv"));
  const auto original = lines(read(cwd() / "p" / "stress.csv"));
  for (std::size_t i = 1; i < stress.size(); ++i) EXPECT_EQ(stress[i], original[2 * i - 1]) << i;

  // The key may be written as --set accepts it elsewhere, with spaces around '='.
  const CliResult spaced = run("score p --set 'data.stress_factors = [0.05]' --out spaced");
  EXPECT_EQ(spaced.status, 0) << spaced.err;
  EXPECT_EQ(read(cwd() / "spaced" / "stress.csv"), read(cwd() / "s" / "stress.csv"));

  for (const std::string bad : {"train.lr=0.01", "data.n_train=100", "sweep.seeds=2", "' train.lr = 0.01'"}) {
    const CliResult r = run("score p --set " + bad + " --out bad");
    EXPECT_EQ(r.status, 2) << bad << "\n" << r.err;
    EXPECT_NE(r.err.find("can change without retraining"), std::string::npos) << bad << "\n" << r.err;
    EXPECT_FALSE(fs::exists(cwd() / "bad"));
  }
  // A key that is a grid axis of the run cannot be changed for all its cells.
  ASSERT_EQ(run("run " + kSmall + "--set 'sweep.grid.\"data.iid_factor\"=[0.1, 0.3]' --save-params --out g").status, 0);
  const CliResult axis = run("score g --set data.iid_factor=0.5 --out bad");
  EXPECT_EQ(axis.status, 2) << axis.err;
  EXPECT_NE(axis.err.find("grid axis"), std::string::npos) << axis.err;
  EXPECT_FALSE(fs::exists(cwd() / "bad"));
  // Without params.npy: a clear refusal.
  ASSERT_EQ(run("run " + kSmall + "--out nop").status, 0);
  const CliResult r = run("score nop --set 'data.stress_factors=[0.05]' --out bad");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--save-params"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cwd() / "bad"));
}

// ---------------------------------------------------------------- progress

TEST_F(SweepCli, ProgressLinesOnStderrOnlyWhenAsked) {
  const CliResult lines_mode = run("run " + kSmall + "--progress lines --out a");
  ASSERT_EQ(lines_mode.status, 0) << lines_mode.err;
  EXPECT_NE(lines_mode.err.find("progress: "), std::string::npos) << lines_mode.err;
  EXPECT_EQ(lines_mode.out.find("progress:"), std::string::npos);
  const CliResult none = run("run " + kSmall + "--progress none --out b");
  ASSERT_EQ(none.status, 0) << none.err;
  EXPECT_EQ(none.err.find("progress:"), std::string::npos) << none.err;
  EXPECT_EQ(run("run " + kSmall + "--progress sometimes --out c").status, 2);
  EXPECT_FALSE(fs::exists(cwd() / "c"));
}

// Shards run side by side with --threads 1 each: after training, a large group's bootstrap
// (from 1049 replicas) took every core too. Counted with strace: the threads a run starts may
// not depend on whether its group is past that size.
TEST_F(SweepCli, ThreadsLimitsTheStatisticsToo) {
  // strace is installed by scripts/install-deps.sh; a container may forbid ptrace.
  if (std::system("strace -qq -e trace=none true >/dev/null 2>&1") != 0) GTEST_SKIP() << "needs a working strace";
  const auto threads_started = [&](int seeds, const std::string& out) {
    const std::string cmd =
        // LeakSanitizer cannot run under ptrace (the sanitizer build would abort at exit).
        "cd '" + cwd().string() + "' && ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" " +
        "strace -f -qq -e trace=clone,clone3 -o trace." + out + " '" + binary() +
        "' run --set 'sweep.models=[\"perceptron\"]' --set 'sweep.regimes=[\"baseline\"]' --set sweep.seeds=" +
        std::to_string(seeds) +
        " --set data.n_train=64 --set data.n_test=64 --set train.epochs=1 --device cpu --threads 1 --progress none "
        "--no-report --out " +
        out + " >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::size_t started = 0;
    for (const std::string& line : lines(read(cwd() / ("trace." + out))))
      started += line.find("CLONE_THREAD") != std::string::npos;
    return started;
  };
  EXPECT_EQ(threads_started(1200, "large"), threads_started(10, "small"));
}

// ---------------------------------------------------------------- interrupted merge and score

// Entries of cwd() that a merge or score into `out` stages its outputs in.
std::vector<std::string> staging_leftovers(const fs::path& cwd, const std::string& out) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(cwd))
    if (e.path().filename().string().starts_with("." + out + ".underspec-partial-"))
      found.push_back(e.path().filename().string());
  return found;
}

TEST_F(SweepCli, AnInterruptedMergeLeavesNothingHalfWrittenAndItsRerunIsByteIdentical) {
  for (const char* shard : {"0/2", "1/2"})
    ASSERT_EQ(run("run " + kMedium + "--save-params --shard " + shard + " --out s" + std::string(1, shard[0])).status,
              0);
  const std::string merge = "merge s0 s1 --no-report --out ";
  ASSERT_EQ(run(merge + "ref").status, 0);
  // SIGTERM at several moments; whenever it lands, `m` is complete or absent, never partial.
  for (const int ms : {0, 5, 20, 60, 150}) {
    SCOPED_TRACE(ms);
    const pid_t pid = start(merge + "m");
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    ::kill(pid, SIGTERM);
    const int status = wait_for(pid);
    EXPECT_TRUE(status == 0 || status == 143) << status << bg_err();
    if (status == 143 && bg_err().find("merge stopped by signal 15") != std::string::npos) {
      EXPECT_NE(bg_err().find("nothing was written to m"), std::string::npos) << bg_err();
      EXPECT_NE(bg_err().find("to do it again:"), std::string::npos) << bg_err();
    }
    if (status != 0) {
      EXPECT_FALSE(fs::exists(cwd() / "m")) << bg_err();
    }
    EXPECT_TRUE(staging_leftovers(cwd(), "m").empty());
    fs::remove_all(cwd() / "m");
  }
  // What a kill -9 leaves (an empty reserved `m` and its staging sibling) does not block the rerun.
  fs::create_directories(cwd() / "m");
  fs::create_directories(cwd() / ".m.underspec-partial-Ab12Cd" / "checkpoint");
  write(".m.underspec-partial-Ab12Cd/config.toml", "half");
  const CliResult r = run(merge + "m");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs("ref", "m");
  EXPECT_EQ(read(cwd() / "m" / "params.npy"), read(cwd() / "ref" / "params.npy"));
  EXPECT_TRUE(staging_leftovers(cwd(), "m").empty());
  // A trailing slash stages beside `t`, not inside it (where the final rename could not work).
  const CliResult slash = run(merge + "t/");
  ASSERT_EQ(slash.status, 0) << slash.err;
  expect_same_outputs("ref", "t");
  EXPECT_TRUE(staging_leftovers(cwd(), "t").empty());
}

TEST_F(SweepCli, MergeAndScoreRefuseAnOutputDirectoryAnotherProcessIsWriting) {
  ASSERT_EQ(run("run " + kSmall + "--save-params --out p").status, 0);
  fs::create_directory(cwd() / "busy");
  const int fd = ::open((cwd() / "busy").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running merge or score holds it
  const CliResult st = run("status busy");
  EXPECT_EQ(st.status, 0) << st.err;
  EXPECT_NE(st.out.find("being written by a running merge or score"), std::string::npos) << st.out;
  for (const std::string cmd : {"score p --out busy", "merge p --out busy"}) {
    const CliResult r = run(cmd);
    EXPECT_EQ(r.status, 2) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find("being written by another underspec process"), std::string::npos) << r.err;
  }
  ::close(fd);
  EXPECT_TRUE(fs::is_empty(cwd() / "busy"));
  EXPECT_TRUE(staging_leftovers(cwd(), "busy").empty());
}

TEST_F(SweepCli, ScoreAndMergeOfARunWithoutItsCheckpointSaySo) {
  ASSERT_EQ(run("run " + kSmall + "--save-params --out p").status, 0);
  fs::remove_all(cwd() / "p" / "checkpoint");
  for (const std::string cmd : {"score p --out y", "merge p --out y"}) {
    const CliResult r = run(cmd);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("p has no checkpoint/"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("output directory"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(cwd() / "y"));
  }
}

TEST_F(SweepCli, AScoredShardIsStillAShardWithoutAReport) {
  ASSERT_EQ(run("run " + kSmall + "--save-params --shard 0/2 --out s0").status, 0);
  const CliResult r = run("score s0 --set 'data.stress_factors=[0.05]' --out t0", "-u UNDERSPEC_NO_REPORT");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(read(cwd() / "t0" / "summary.json"));
  EXPECT_EQ(j["run"]["shard"], "0/2") << j.dump();
  EXPECT_FALSE(fs::exists(cwd() / "t0" / "report.html"));
  EXPECT_EQ(r.err.find("report"), std::string::npos) << r.err;
}

TEST_F(SweepCli, ADamagedParamsFileIsBadInputNamedByScore) {
  ASSERT_EQ(run("run " + kSmall + "--save-params --out p").status, 0);
  const std::string npy = read(cwd() / "p" / "params.npy");
  const auto damaged = [&](const std::string& name, const std::string& bytes) {
    fs::copy(cwd() / "p", cwd() / name, fs::copy_options::recursive);
    std::ofstream(cwd() / name / "params.npy", std::ios::binary | std::ios::trunc) << bytes;
  };
  damaged("cut", npy.substr(0, 1000));
  damaged("garbage", "not a numpy file at all");
  std::string fewer = npy;  // 12 rows declared for 18 replicas
  fewer.replace(fewer.find("(18, "), 5, "(12, ");
  damaged("fewer", fewer.substr(0, fewer.size() - 6 * 4481 * 4));
  for (const auto& [dir, problem] : std::map<std::string, std::string>{
           {"cut", "truncated"}, {"garbage", "not a .npy v1 file"}, {"fewer", "12 rows for 18 replicas"}}) {
    const CliResult r = run("score " + dir + " --out y");
    EXPECT_EQ(r.status, 2) << dir << "\n" << r.err;
    EXPECT_NE(r.err.find("underspec: error: score: " + dir + "/params.npy: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(problem), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(cwd() / "y"));
  }
}

TEST_F(SweepCli, StatusOfAMissingPathSaysItDoesNotExist) {
  const CliResult r = run("status nope");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("nope does not exist"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace underspec
