// Hardening of the `underspec` binary: readable ranges for numeric options, path arguments
// that are not what they should be, and clean failures instead of signals.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "cli_fixture.hpp"
#include "underspec/backends/backend.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

const std::string kTiny = "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=2 ";

TEST_F(Cli, ThreadsOutOfRangeExitTwoWithTheRange) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  for (const std::string& bad : {std::string("-1"), std::string("70000"), std::to_string(4 * hw + 1),
                                 std::string("99999999999999999999"), std::string("x")}) {
    for (const char* cmd : {"run", "plan", "merge a b"}) {
      const CliResult r = run(std::string(cmd) + " --threads " + bad + " --out out");
      EXPECT_EQ(r.status, 2) << cmd << " " << bad << "\n" << r.err;
      EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("must be in [0, " + std::to_string(4 * hw) + "]"), std::string::npos) << r.err;
      EXPECT_LT(r.err.size(), 200u) << r.err;
    }
  }
  EXPECT_TRUE(cwd_entries().empty());
  EXPECT_EQ(run("plan --threads " + std::to_string(4 * hw) + " --out out").status, 0);
}

// Work that would take absurdly long is not refused: plan shows its estimate (the CPU keeps
// no table that grows with epochs x steps).
TEST_F(Cli, AbsurdlyLongTrainingIsPlannedNotRefused) {
  const CliResult r = run("plan --device cpu --set train.epochs=2147483647");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(" days"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("host memory  about"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("TiB"), std::string::npos) << r.out;
}

// The switch of the GPU bootstrap (1|0) is checked on any backend, before anything is written.
TEST_F(Cli, BadCudaBootstrapSwitchExitsTwoNamingIt) {
  for (const char* bad : {"2", "yes", "00"}) {
    const CliResult r = run("run --device cpu " + kTiny + "--out out", std::string("UNDERSPEC_CUDA_BOOTSTRAP=") + bad);
    EXPECT_EQ(r.status, 2) << bad << "\n" << r.err;
    EXPECT_NE(r.err.find("UNDERSPEC_CUDA_BOOTSTRAP must be 1 or 0, got '" + std::string(bad) + "'"), std::string::npos)
        << r.err;
  }
  EXPECT_TRUE(cwd_entries().empty());
  for (const char* good : {"0", "1", ""})
    EXPECT_EQ(run("run --device cpu --no-report " + kTiny + "--out out-" + good,
                  std::string("UNDERSPEC_CUDA_BOOTSTRAP=") + good)
                  .status,
              0)
        << good;
}

TEST_F(Cli, BadOutputPathsExitTwoNamingThePath) {
  write("file", "x");
  ASSERT_EQ(::mkfifo((cwd() / "fifo").c_str(), 0600), 0);
  fs::create_symlink("loop1", cwd() / "loop2");
  fs::create_symlink("loop2", cwd() / "loop1");
  // ("new/..": the system resolves it only when new is a directory)
  for (const std::string out :
       {"file", "file/sub", "file/../x", "fifo", "loop1", "loop1/sub", "/proc/underspec-out", "new/..", "new/../x"}) {
    const CliResult r = run("run " + kTiny + "--device cpu --out " + out);
    EXPECT_EQ(r.status, 2) << out << "\n" << r.err;
    EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
    EXPECT_EQ(r.err.rfind("underspec: error: ", 0), 0u) << r.err;
  }
  EXPECT_FALSE(fs::exists(cwd() / "new"));
  EXPECT_FALSE(fs::exists(cwd() / "x"));
}

TEST_F(Cli, BadMergeScoreAndReportPathsExitCleanly) {
  write("file", "x");
  ASSERT_EQ(::mkfifo((cwd() / "fifo").c_str(), 0600), 0);
  fs::create_symlink("loop1", cwd() / "loop2");
  fs::create_symlink("loop2", cwd() / "loop1");
  for (const std::string in : {"file", "absent", "fifo", "loop1"}) {
    for (const std::string& cmd : {"merge " + in + " --out m", "score " + in + " --out s", "report " + in}) {
      const CliResult r = run(cmd);
      EXPECT_TRUE(r.status == 2 || r.status == 1) << cmd << "\n" << r.err;
      EXPECT_NE(r.err.find(in), std::string::npos) << cmd << "\n" << r.err;
      EXPECT_EQ(lines(r.err).size(), 1u) << cmd << "\n" << r.err;
    }
  }
  EXPECT_FALSE(fs::exists(cwd() / "m"));
  EXPECT_FALSE(fs::exists(cwd() / "s"));
}

// An existing, empty --out that cannot be written is a usage error (exit 2) before any work,
// as a missing one that cannot be created is, for every command that writes one. As root
// (which permissions do not stop) it lies on a read-only tmpfs; otherwise it is mode 555.
TEST_F(Cli, AnExistingEmptyOutThatCannotBeWrittenExitsTwo) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu --save-params --out src").status, 0);
  const fs::path ro = cwd() / "ro";
  fs::create_directory(ro);
  const bool root = ::geteuid() == 0;
  if (root) {
    if (::mount("tmpfs", ro.c_str(), "tmpfs", 0, "size=64k") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
    fs::create_directory(ro / "empty");
    ASSERT_EQ(::mount("tmpfs", ro.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=64k"), 0);
  } else {
    fs::create_directory(ro / "empty");
    fs::permissions(ro / "empty", fs::perms::owner_read | fs::perms::owner_exec);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  }
  const std::vector<std::string> commands = {"run " + kTiny + "--device cpu --out ro/empty",
                                             "slurm " + kTiny + "--shards 2 --out ro/empty", "merge src --out ro/empty",
                                             "score src --set 'data.stress_factors=[0.1]' --out ro/empty"};
  std::vector<CliResult> results;
  for (const std::string& cmd : commands) results.push_back(run(cmd));
  const std::vector<std::string> left = entries(ro / "empty");
  if (root) {
    ::umount2(ro.c_str(), MNT_DETACH);
  } else {
    fs::permissions(ro, fs::perms::owner_all);
    fs::permissions(ro / "empty", fs::perms::owner_all);
  }
  for (std::size_t i = 0; i < commands.size(); ++i) {
    EXPECT_EQ(results[i].status, 2) << commands[i] << "\n" << results[i].err;
    EXPECT_EQ(results[i].err.rfind("underspec: error: output directory ro/empty ", 0), 0u) << results[i].err;
    EXPECT_EQ(lines(results[i].err).size(), 1u) << commands[i] << "\n" << results[i].err;
  }
  EXPECT_TRUE(left.empty());
}

// An existing empty --out that rename(2) cannot replace: a mount point, the current directory
// (`--out .`), and, in a sticky directory such as /tmp, a directory of another user. merge
// and score stage inside it and move the outputs out of the staging directory, so each works
// (they used to fail after all the work, "Device or resource busy" / "Operation not
// permitted") and the directory keeps its mount, owner and mode.
TEST_F(Cli, MergeAndScoreFillAnExistingDirectoryThatCannotBeReplaced) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu --save-params --progress none --out src").status, 0);
  // What merge writes (a --save-params source's params.npy included); score writes no params.npy.
  const std::vector<std::string> outputs = {"checkpoint",   "comparisons.csv", "config.toml", "params.npy",
                                            "replicas.csv", "stress.csv",      "summary.csv", "summary.json"};
  const std::string replicas = read(cwd() / "src" / "replicas.csv");
  const auto filled = [&](const fs::path& dir, const CliResult& r, const std::string& what) {
    EXPECT_EQ(r.status, 0) << what << "\n" << r.err;
    std::vector<std::string> names, expected = outputs;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    if (what.starts_with("score")) std::erase(expected, "params.npy");
    EXPECT_EQ(names, expected) << what;  // no staging directory left inside
  };
  fs::create_directory(cwd() / "here");
  filled(cwd() / "here", run("merge ../src --out .", "-C here"), "merge --out .");
  EXPECT_EQ(read(cwd() / "here" / "replicas.csv"), replicas);
  fs::create_directory(cwd() / "here2");
  filled(cwd() / "here2", run("score ../src --set 'data.stress_factors=[0.1]' --out ./", "-C here2"), "score --out ./");
  if (::geteuid() != 0) GTEST_SKIP() << "mounting and another user's directory need root";

  const fs::path mp = cwd() / "mp";
  fs::create_directory(mp);
  if (::mount("tmpfs", mp.c_str(), "tmpfs", 0, "size=4m") == 0) {
    const CliResult r = run("merge src --out mp");
    const bool still_mounted = std::system(("mountpoint -q '" + mp.string() + "'").c_str()) == 0;
    filled(mp, r, "merge into a mount point");
    EXPECT_TRUE(still_mounted);
    EXPECT_EQ(read(mp / "replicas.csv"), replicas);
    ::umount2(mp.c_str(), MNT_DETACH);
  }

  if (std::system("command -v setpriv >/dev/null 2>&1") != 0) GTEST_SKIP() << "no setpriv";
  const std::string nobody = as_nobody();
  const fs::path sticky = cwd() / "sticky", theirs = sticky / "out";
  fs::create_directory(sticky);
  fs::permissions(sticky, fs::perms::all | fs::perms::sticky_bit);  // root's, like /tmp
  fs::create_directory(theirs);
  fs::permissions(theirs, fs::perms::all);  // root's, open to everyone
  const CliResult r = run("merge src --out sticky/out", nobody);
  filled(theirs, r, "merge as nobody into root's directory in a sticky directory");
  struct stat st {};
  ASSERT_EQ(::stat(theirs.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);  // still root's
  EXPECT_EQ(st.st_mode & 07777, static_cast<unsigned>(0777));
  EXPECT_EQ(read(theirs / "replicas.csv"), replicas);
}

// What a merge killed while moving its outputs into an existing --out leaves (some outputs
// moved, the rest and the manifest still in its staging directory): status says so, run
// names it, and the merge run again replaces it with the whole outputs.
TEST_F(Cli, AMergeKilledWhileMovingItsOutputsIsRunAgain) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu --progress none --out src").status, 0);
  const fs::path out = cwd() / "out", staging = out / ".underspec-partial-Xy12Zw";
  fs::create_directories(staging);
  for (const char* name : {"config.toml", "replicas.csv", "summary.json"})
    fs::copy_file(cwd() / "src" / name, staging / name);
  fs::copy(cwd() / "src" / "checkpoint", staging / "checkpoint", fs::copy_options::recursive);
  std::ofstream(staging / ".underspec-commit")
      << "comparisons.csv\nconfig.toml\nreplicas.csv\ncheckpoint\nsummary.json\n";
  fs::copy_file(cwd() / "src" / "comparisons.csv", out / "comparisons.csv");  // moved before the kill
  const CliResult status = run("status out");
  EXPECT_EQ(status.status, 0) << status.err;
  EXPECT_NE(status.out.find("a merge or score that was killed left .underspec-partial-Xy12Zw"), std::string::npos)
      << status.out;
  const CliResult into = run("run " + kTiny + "--device cpu --out out");
  EXPECT_EQ(into.status, 2);
  EXPECT_NE(into.err.find("holds .underspec-partial-Xy12Zw, left by a merge or score that was killed"),
            std::string::npos)
      << into.err;
  const CliResult merged = run("merge src --out out");
  ASSERT_EQ(merged.status, 0) << merged.err;
  EXPECT_EQ(read(cwd() / "out" / "replicas.csv"), read(cwd() / "src" / "replicas.csv"));
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_TRUE(fs::exists(out / "summary.json"));
  // Killed later, with the checkpoint moved already (only summary.json still to go): not a
  // stopped run to resume, the same leftover.
  fs::remove_all(out);
  fs::create_directories(staging);
  fs::copy_file(cwd() / "src" / "summary.json", staging / "summary.json");
  std::ofstream(staging / ".underspec-commit") << "config.toml\ncheckpoint\nsummary.json\n";
  fs::copy_file(cwd() / "src" / "config.toml", out / "config.toml");
  fs::copy(cwd() / "src" / "checkpoint", out / "checkpoint", fs::copy_options::recursive);
  EXPECT_NE(run("status out").out.find("a merge or score that was killed"), std::string::npos);
  const CliResult resume = run("run --resume out");
  EXPECT_EQ(resume.status, 2) << resume.err;
  EXPECT_NE(resume.err.find("left by a merge or score that was killed"), std::string::npos) << resume.err;
  const CliResult again = run("merge src --out out");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(read(cwd() / "out" / "replicas.csv"), read(cwd() / "src" / "replicas.csv"));
  EXPECT_FALSE(fs::exists(staging));
}

TEST_F(Cli, AFullFilesystemIsACleanFailure) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  const fs::path mnt = cwd() / "tiny";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  // Too big for the plan: refused before anything is created (exit 2).
  const CliResult refused = run("run " + kTiny + "--set sweep.seeds=3000 --device cpu --out " + (mnt / "a").string());
  // Fits the plan's estimate, but a filler leaves too little room: the writes fail (exit 1).
  std::ofstream(mnt / "fill") << std::string(20 * 1024, 'x');
  const CliResult full = run("run " + kTiny + "--set sweep.seeds=40 --device cpu --out " + (mnt / "b").string());
  ::umount2(mnt.c_str(), MNT_DETACH);
  EXPECT_EQ(refused.status, 2) << refused.err;
  EXPECT_FALSE(fs::exists(mnt / "a"));
  EXPECT_NE(refused.err.find("free"), std::string::npos) << refused.err;
  for (const CliResult* r : {&refused, &full}) {
    EXPECT_TRUE(r->status == 1 || r->status == 2) << r->status << "\n" << r->err;
    EXPECT_EQ(lines(r->err).back().rfind("underspec: error: ", 0), 0u) << r->err;
  }
}

// The disk fills up during training: the error is the first failed write (not the retry's),
// preceded by how many replicas are saved and the command that continues; it does continue.
TEST_F(Cli, ADiskFullDuringTrainingSaysWhatIsSavedAndHowToContinue) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  const fs::path mnt = cwd() / "tiny";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  const std::string args =
      "run --set data.n_train=2000 --set data.n_test=200 --set train.epochs=10 "
      "--set sweep.seeds=100 --set 'sweep.models=[\"mlp\"]' --threads 1 --device cpu --out tiny/a";
  CliResult full;
  std::thread runner([&] { full = run(args, "UNDERSPEC_CHECKPOINT_SECONDS=0"); });
  const auto first_segment = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(mnt / "a" / "checkpoint", ec))
      if (e.path().filename().string().starts_with("part-")) return true;
    return false;
  };
  for (int i = 0; i < 3000 && !first_segment(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::ofstream filler(mnt / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), block.size())) filler.flush();
  }
  runner.join();
  fs::remove(mnt / "filler");
  const CliResult status = run("status tiny/a");
  const CliResult resumed = run("run --resume tiny/a");
  const std::string rows = read(mnt / "a" / "replicas.csv");
  ::umount2(mnt.c_str(), MNT_DETACH);

  ASSERT_EQ(full.status, 1) << full.err;
  const auto err = lines(full.err);
  ASSERT_GE(err.size(), 3u) << full.err;
  EXPECT_EQ(err.back().rfind("underspec: error: ", 0), 0u) << full.err;
  EXPECT_NE(err.back().find("No space left on device"), std::string::npos) << full.err;
  EXPECT_EQ(err[err.size() - 2], "underspec: to continue once it is fixed: " + binary() + " run --resume tiny/a")
      << full.err;
  const std::string& saved = err[err.size() - 3];
  const auto at = saved.find("; ");
  ASSERT_NE(at, std::string::npos) << full.err;
  const std::string count = saved.substr(at + 2, saved.find(" of 300 replicas are saved in tiny/a") - at - 2);
  EXPECT_NE(saved.find(" of 300 replicas are saved in tiny/a"), std::string::npos) << full.err;
  EXPECT_NE(status.out.find(count + " of 300 replicas done"), std::string::npos) << status.out << full.err;
  EXPECT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(lines(rows).size(), 301u);
}

// A run refused for its host memory is told to shard only when it is not a shard already.
TEST_F(Cli, TooLittleMemoryAdvisesShardingOnlyWithoutShard) {
  std::string seeds = "[1";
  for (int i = 2; i <= 21; ++i) seeds += ", " + std::to_string(i);
  const std::string big = "plan --set sweep.seeds=16777216 --set 'sweep.grid.\"data.seed\"=" + seeds + "]' ";
  const CliResult whole = run(big);
  const CliResult shard = run(big + "--shard 0/100000");
  if (whole.status == 0 || shard.status == 0) GTEST_SKIP() << "this machine has the memory (~50 GiB)";
  EXPECT_EQ(whole.status, 2) << whole.err;
  EXPECT_NE(whole.err.find("(or split it with --shard)"), std::string::npos) << whole.err;
  EXPECT_EQ(shard.status, 2) << shard.err;
  EXPECT_NE(shard.err.find("of host memory but"), std::string::npos) << shard.err;
  EXPECT_EQ(shard.err.find("--shard"), std::string::npos) << shard.err;
}

TEST_F(Cli, OutOfMemoryIsOneLineAndExitOne) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer's shadow memory does not fit an address-space limit";
#endif
  if (std::system("command -v prlimit >/dev/null 2>&1") != 0) GTEST_SKIP() << "no prlimit";
  // 400 MB of address space for a sweep of 3 million replicas: std::bad_alloc, caught in main.
  const CliResult r =
      run("run " + kTiny + "--set sweep.seeds=3000000 --device cpu --out out", "prlimit --as=400000000 --");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("underspec: error: out of memory", 0), 0u) << r.err;
}

// merge and score check the free space for their outputs before any work, as run does: exit 2,
// nothing created (they failed with exit 1 after the work, on a full disk).
TEST_F(Cli, MergeAndScoreRefuseOutputsThatWouldNotFit) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  ASSERT_EQ(run("run " + kTiny + "--set sweep.seeds=200 --device cpu --threads 2 --save-params --out whole").status, 0);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(run("run " + kTiny + "--set sweep.seeds=200 --device cpu --threads 2 --shard " + std::to_string(i) +
                  "/2 --out s" + std::to_string(i))
                  .status,
              0);
  const fs::path mnt = cwd() / "small";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  const CliResult merged = run("merge s0 s1 --out small/m");
  const CliResult scored = run("score whole --set 'data.stress_factors=[0.1]' --out small/sc");
  const std::vector<std::string> left = entries(mnt);
  ::umount2(mnt.c_str(), MNT_DETACH);
  for (const CliResult& r : {merged, scored}) {
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("the outputs need about"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(left.empty());
}

// plan takes run's options: --gpus is checked as run checks it, --dry-run is what it does.
TEST_F(Cli, PlanTakesRunsGpusAndDryRunOptions) {
  CliResult r = run("plan " + kTiny + "--device cpu --gpus 0,1 --dry-run");
  EXPECT_EQ(r.status, 0) << r.err;
  r = run("plan " + kTiny + "--gpus x");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--gpus x: expected device numbers"), std::string::npos) << r.err;
  EXPECT_TRUE(cwd_entries().empty());
}

// Resuming a finished run (as a requeued Slurm task of a finished shard does) says only that:
// the CPU-fallback notice of --device auto is for runs that train.
TEST_F(Cli, AFinishedRunsResumeSaysOnlyThatItIsFinished) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu --threads 2 --out done").status, 0);
  const CliResult r = run("run --resume done --device auto --threads 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("is already finished"), std::string::npos) << r.err;
}

// An --out that is a symbolic link to nothing cannot be created (mkdir says EEXIST): a usage
// error named as such before any work, as a symlink loop is, not exit 1 after planning it.
TEST_F(Cli, AnOutputPathThatIsADanglingSymlinkExitsTwo) {
  ASSERT_EQ(run("run " + kTiny + "--device cpu --out src").status, 0);
  fs::create_symlink("nowhere", cwd() / "dangling");
  for (const std::string& cmd :
       {"run " + kTiny + "--device cpu --out dangling", "plan " + kTiny + "--out dangling",
        std::string("merge src --out dangling"), "slurm " + kTiny + "--shards 2 --out dangling"}) {
    const CliResult r = run(cmd);
    EXPECT_EQ(r.status, 2) << cmd << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("underspec: error: output path ", 0), 0u) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find("dangling is a symbolic link to nowhere"), std::string::npos) << cmd << "\n" << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << cmd << "\n" << r.err;
  }
  EXPECT_FALSE(fs::exists(cwd() / "nowhere"));
}

// `report DIR` of a directory that holds no run is bad input, as it is for merge and score.
TEST_F(Cli, ReportOfADirectoryWithoutARunExitsTwo) {
  fs::create_directory(cwd() / "empty");
  fs::create_directory(cwd() / "other");
  write("other/notes.txt", "x");
  for (const std::string dir : {"empty", "other"}) {
    const CliResult r = run("report " + dir);
    EXPECT_EQ(r.status, 2) << dir << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("underspec: error: report: " + dir + " ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("not a finished run directory"), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  }
}

// Threads that cannot be started (the process limit, ulimit -u) are one `underspec: error:`
// line and exit 1 before anything is created, not libgomp's own message. Root ignores
// RLIMIT_NPROC, so as root the binary runs as nobody.
TEST_F(Cli, ThreadsThatCannotStartAreOneErrorLine) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "LeakSanitizer starts a thread at exit, which the process limit stops";
#endif
  if (std::system("command -v prlimit >/dev/null 2>&1") != 0) GTEST_SKIP() << "no prlimit";
  std::string as = "prlimit --nproc=1 --";
  if (::geteuid() == 0) {
    if (std::system("command -v setpriv >/dev/null 2>&1") != 0) GTEST_SKIP() << "no setpriv";
    as = as_nobody() + as;
  }
  for (const std::string& cmd :
       {"run " + kTiny + "--device cpu --threads 2 --out out", "plan " + kTiny + "--threads 2"}) {
    const CliResult r = run(cmd, as);
    EXPECT_EQ(r.status, 1) << cmd << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("underspec: error: cannot start 2 threads", 0), 0u) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << cmd << "\n" << r.err;
  }
  EXPECT_TRUE(cwd_entries().empty());
  EXPECT_EQ(run("run " + kTiny + "--device cpu --threads 1 --progress none --out one", as).status, 0);
}

// The perceptron-weights block stays aligned when the truth differs across grid cells: each
// weight starts at the same column on every row (it moved with the width of "(true, optimum)").
TEST_F(Cli, WeightsBlockStaysAlignedAcrossCellsOfDifferentTruths) {
  const CliResult r = run("run " + kTiny +
                          "--device cpu --set 'sweep.models=[\"perceptron\"]' --set 'sweep.regimes=[\"baseline\"]' "
                          "--set 'sweep.grid.\"data.coefficients\"=[[1, 2], [-1e6, 2e-7]]' --out out");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto column = [](const std::string& line, const std::string& what) {  // in characters, not bytes
    const std::size_t at = line.find(what);
    if (at == std::string::npos) return std::string::npos;
    return static_cast<std::size_t>(
        std::count_if(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(at),
                      [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  };
  std::vector<std::string> rows;
  for (const std::string& line : lines(r.out))
    if (line.find(" x1 ") != std::string::npos && line.find(" bias ") != std::string::npos) rows.push_back(line);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  for (const char* weight : {" x2 ", " x3 ", " bias "})
    EXPECT_EQ(column(rows[0], weight), column(rows[1], weight)) << weight << "\n" << rows[0] << "\n" << rows[1];
}

// A plan for the CUDA backend states the GPU memory it needs (datasets, the first replica of
// the largest launch group, each further one); without a GPU, for an sm_90 GPU's limits.
// The CPU backend needs none.
TEST_F(Cli, PlanForCudaStatesItsGpuMemory) {
  CliResult r = run("plan " + kTiny + "--set data.n_test=1000000 --device cuda");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("  GPU memory   at least 30.6 MiB free: 30.5 MiB of datasets, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" for the first replica of 3-64-64-1 (1 cell, 6 replicas),\n               then up to "),
            std::string::npos)
      << r.out;
  std::string why;
  if (!cuda_backend_available(&why)) {
    EXPECT_NE(r.out.find("               (planned for an sm_90 GPU's limits: no GPU here)\n"), std::string::npos)
        << r.out;
  }
  r = run("plan " + kTiny + "--device cpu");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find("GPU memory"), std::string::npos) << r.out;
}

// A memory control group of this process's own, limited to `bytes` (cgroup v1's memory
// controller, or v2's where it is delegated), removed when it goes out of scope; empty()
// where none can be made (not root, or no memory controller to use).
class LimitedGroup {
 public:
  explicit LimitedGroup(std::size_t bytes) {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);) {
      const std::size_t a = line.find(':'), b = line.find(':', a + 1);
      const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
      const fs::path base = controllers == "memory" ? fs::path("/sys/fs/cgroup/memory") / fs::path(path).relative_path()
                            : controllers.empty()   ? fs::path("/sys/fs/cgroup") / fs::path(path).relative_path()
                                                    : fs::path();
      if (base.empty()) continue;
      const fs::path dir = base / ("underspec-test-" + std::to_string(getpid()));
      std::error_code ec;
      if (!fs::create_directory(dir, ec)) continue;
      std::ofstream limit(dir / (controllers == "memory" ? "memory.limit_in_bytes" : "memory.max"));
      if (limit << bytes << std::flush) {
        dir_ = dir;
        name_ = (fs::path(path) / dir.filename()).lexically_normal().string();
        return;
      }
      fs::remove(dir, ec);
    }
  }
  ~LimitedGroup() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove(dir_, ec);  // empty again: its one process has exited
  }
  bool empty() const { return dir_.empty(); }
  // An `env` prefix that runs the command in the group.
  std::string enter() const {
    return "sh -c 'echo $$ > \"" + (dir_ / "cgroup.procs").string() + "\" && exec \"$0\" \"$@\"'";
  }
  const std::string& name() const { return name_; }

 private:
  fs::path dir_;
  std::string name_;
};

// In a memory control group whose limit is below the run's estimate (a Slurm job's --mem, a
// container's limit), the run is refused before anything is written, naming the group,
// although the machine has the memory.
TEST_F(Cli, AMemoryControlGroupsLimitIsTheLimit) {
  const LimitedGroup group(400u << 20);
  if (group.empty()) GTEST_SKIP() << "no memory control group can be made here (root and a memory controller)";
  const CliResult r = run("run " + kTiny + "--set data.n_test=20000000 --no-report --out out", group.enter());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("of host memory but "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" is available (limited by memory control group " + group.name() + "); reduce "),
            std::string::npos)
      << r.err << group.name();
  EXPECT_FALSE(fs::exists(cwd() / "out"));
  // Outside the group the same run fits (this machine has the ~0.8 GiB): only the plan, here.
  EXPECT_EQ(run("plan " + kTiny + "--set data.n_test=20000000 --out out").status, 0);
}

// A merge holds the whole sweep's rows: in a group too small for them it is refused before
// anything is written, naming the group (a merge job gets the partition's default memory).
TEST_F(Cli, AMergeIsRefusedWhereItsMemoryIsNot) {
  for (const char* shard : {"0/2", "1/2"})
    ASSERT_EQ(run("run " + kTiny + "--no-report --progress none --shard " + shard + " --out s" + shard[0]).status, 0);
  const LimitedGroup group(48u << 20);
  if (group.empty()) GTEST_SKIP() << "no memory control group can be made here (root and a memory controller)";
  const CliResult r = run("merge s0 s1 --out merged", group.enter());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("underspec: error: merge: the sweep needs about "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(limited by memory control group " + group.name() + ")"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(", or merge where more memory is available"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cwd() / "merged"));
  EXPECT_EQ(run("merge s0 s1 --no-report --out merged").status, 0);
}

// A standard output that cannot be written is an I/O error (exit 1, one line), never a signal
// or a silent exit 0; a run whose reader went away (`| head -1`) still writes every output
// and its report.
TEST_F(Cli, AStandardOutputThatCannotBeWrittenIsAnError) {
  const std::string full = "cd '" + cwd().string() + "' && '" + binary() + "' plan --device cpu >/dev/full 2>'" +
                           (dir_ / "full.err").string() + "'";
  const int raw = std::system(full.c_str());
  EXPECT_EQ(WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, 1);
  EXPECT_EQ(read(dir_ / "full.err"),
            "underspec: error: cannot write to standard output (a closed pipe or a full disk?): what was printed is "
            "incomplete\n");

  std::string seeds = "[1";
  for (int i = 2; i <= 400; ++i) seeds.append(",").append(std::to_string(i));  // a table longer than a pipe's buffer
  const std::string piped = "cd '" + cwd().string() + "' && bash -c \"'" + binary() + "' run " + kTiny +
                            "--set sweep.seeds=1 --set 'sweep.grid.\\\"data.seed\\\"=" + seeds +
                            "]' --progress none --out p 2>'" + (dir_ / "piped.err").string() +
                            "' | head -c 1 >/dev/null; exit \\${PIPESTATUS[0]}\"";
  const int status = std::system(piped.c_str());
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1) << read(dir_ / "piped.err");
  EXPECT_NE(read(dir_ / "piped.err").find("underspec: error: cannot write to standard output"), std::string::npos);
  EXPECT_TRUE(fs::exists(cwd() / "p" / "summary.json"));
}

// A file-size limit (`ulimit -f`) makes writes fail (EFBIG), never kills with SIGXFSZ: one
// error line, exit 1, no temporary left.
TEST_F(Cli, AFileSizeLimitIsAnErrorNotASignal) {
  const CliResult r =
      run("run " + kTiny + "--no-report --progress none --out fs", "bash -c 'ulimit -f 3; exec \"$0\" \"$@\"'");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("underspec: error: "), std::string::npos) << r.err;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(cwd(), ec))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

// merge and score into a symbolic link to an empty directory write into that directory (a
// rename onto the link failed after all the work).
TEST_F(Cli, MergeAndScoreIntoALinkFillItsDirectory) {
  for (const char* shard : {"0/2", "1/2"})
    ASSERT_EQ(run("run " + kTiny + "--no-report --progress none --save-params --shard " + shard + " --out s" + shard[0])
                  .status,
              0);
  fs::create_directory(cwd() / "merged-target");
  fs::create_directory_symlink("merged-target", cwd() / "merged");
  CliResult r = run("merge s0 s1 --no-report --out merged");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(cwd() / "merged"));
  EXPECT_TRUE(fs::exists(cwd() / "merged-target" / "summary.json"));
  fs::create_directory(cwd() / "scored-target");
  fs::create_directory_symlink("scored-target", cwd() / "scored");
  r = run("score s0 --set data.n_test=300 --no-report --out scored");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(cwd() / "scored-target" / "summary.json"));
}

// An empty shard (more shards than replicas) is a valid run; its report is refused up front,
// by name, not by the generator's traceback.
TEST_F(Cli, TheReportOfAnEmptyShardSaysWhy) {
  ASSERT_EQ(run("run " + kTiny + "--no-report --progress none --shard 0/41 --out empty").status, 0);
  const CliResult r = run("report empty");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(r.err, "underspec: error: report: empty holds no replicas (an empty shard?): there is nothing to draw\n");
}

// score refuses, before reading anything, test sets the host cannot hold (as run does).
TEST_F(Cli, ScoreChecksItsMemoryFirst) {
  ASSERT_EQ(run("run " + kTiny + "--no-report --progress none --save-params --out p").status, 0);
  const CliResult r = run("score p --set data.n_test=2147483647 --out s");
  if (r.status == 0) GTEST_SKIP() << "this machine has the memory (~130 GiB)";
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("underspec: error: score: the sweep needs about "), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cwd() / "s"));
}

// A closed standard input is not an empty config: `run -` with stdin closed trained the
// built-in experiment.
TEST_F(Cli, AClosedStandardInputIsNoConfig) {
  const CliResult r = run("plan - <&-");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(r.err, "underspec: error: -: cannot read the config from standard input: Bad file descriptor\n");
}

}  // namespace
}  // namespace underspec
