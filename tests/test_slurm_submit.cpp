// `underspec submit` and `underspec slurm --submit` against a fake Slurm (sbatch, scontrol and
// scancel scripts first on PATH that log their arguments and answer from files): what is
// submitted after failures, what slurm.json records, what status then says. The real
// one-node cluster runs the same flows in tests/slurm/ (label `slurm`).
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli_fixture.hpp"
#include "underspec/cluster/slurm.hpp"
#include "underspec/cluster/slurm_queue.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(SlurmTime, SbatchFormats) {
  EXPECT_EQ(parse_slurm_time("30"), 30 * 60);
  EXPECT_EQ(parse_slurm_time("2:00"), 2 * 60);  // M:S, not two hours
  EXPECT_EQ(parse_slurm_time("2:00:00"), 2 * 3600);
  EXPECT_EQ(parse_slurm_time("1-0"), 24 * 3600);
  EXPECT_EQ(parse_slurm_time("1-2:30"), (26 * 60 + 30) * 60);
  EXPECT_EQ(parse_slurm_time("1-2:30:05"), (26 * 60 + 30) * 60 + 5);
  EXPECT_EQ(parse_slurm_time("UNLIMITED"), 0);
  EXPECT_EQ(parse_slurm_time("infinite"), 0);
  for (const char* bad : {"2h", "", "1:2:3:4", "-5", "1-", "a:b", "1.5"})
    EXPECT_FALSE(parse_slurm_time(bad).has_value()) << bad;
}

// sbatch's str_to_mbytes: megabytes by default, K (rounded up to a megabyte), M, G, T in
// binary units, any case, an optional B; 0 is all of a node's memory.
TEST(SlurmMemory, SbatchFormats) {
  constexpr double MiB = 1024.0 * 1024.0;
  EXPECT_EQ(parse_slurm_memory("500"), 500 * MiB);
  EXPECT_EQ(parse_slurm_memory("4G"), 4096 * MiB);
  EXPECT_EQ(parse_slurm_memory("2GB"), 2048 * MiB);
  EXPECT_EQ(parse_slurm_memory("1024K"), 1 * MiB);
  EXPECT_EQ(parse_slurm_memory("1025k"), 2 * MiB);
  EXPECT_EQ(parse_slurm_memory("3m"), 3 * MiB);
  EXPECT_EQ(parse_slurm_memory("1t"), 1024 * 1024 * MiB);
  EXPECT_EQ(parse_slurm_memory("0"), 0.0);
  for (const char* bad : {"", "G", "4GiB", "4 G", "-1", "1.5G", "4Q", "4GBB"})
    EXPECT_EQ(parse_slurm_memory(bad), std::nullopt) << bad;
}

TEST(SlurmTime, GraceIsATenthOfAShortLimit) {
  EXPECT_EQ(signal_grace_for(0), 120);  // no limit: preemption's notice
  EXPECT_EQ(signal_grace_for(3600), 120);
  EXPECT_EQ(signal_grace_for(600), 60);
  EXPECT_EQ(signal_grace_for(120), 12);
  EXPECT_EQ(signal_grace_for(60), 10);
  EXPECT_EQ(signal_grace_for(5), 10);   // Slurm's limit is a whole minute
  EXPECT_EQ(signal_grace_for(61), 12);  // two minutes
}

TEST(SlurmQueue, TheLatestAttemptOfALog) {
  const std::string log =
      "underspec: shard 1/4 on a, job 7, restart 0\nunderspec: error: disk on fire\n"
      "underspec: shard 1/4 on b, job 9, restart 0\nunderspec: resuming ...\n";
  EXPECT_EQ(latest_attempt(log, kShardLogHeader),
            "underspec: shard 1/4 on b, job 9, restart 0\nunderspec: resuming ...\n");
  EXPECT_EQ(latest_attempt("underspec: error: x\n", kShardLogHeader), "underspec: error: x\n");  // no header
  EXPECT_EQ(latest_attempt("", kMergeLogHeader), "");
}

TEST(SlurmQueue, TaskLists) {
  EXPECT_EQ(task_list({}), "");
  EXPECT_EQ(task_list({3}), "3");
  EXPECT_EQ(task_list({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
}

const std::string kTiny =
    "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=2 "
    "--set 'sweep.models=[\"perceptron\"]' ";  // 6 replicas

// A fake Slurm in cwd()/fake: sbatch logs each call's arguments as one line to sbatch.log and
// prints the next job id (101, 102, ...), or fails like sbatch when fake/sbatch.fail holds a
// message; scontrol prints fake/job-<id> (as `scontrol -o show job <id>` would) or says the
// id is invalid; scancel logs to scancel.log.
class SubmitCli : public Cli {
 protected:
  void SetUp() override {
    Cli::SetUp();
    fs::create_directory(fake());
    script("sbatch",
           "if [ -f \"$F/sbatch.fail\" ]; then cat \"$F/sbatch.fail\" >&2; exit 1; fi\n"
           "echo \"$*\" >> \"$F/sbatch.log\"\n"
           "n=$(cat \"$F/next\" 2>/dev/null || echo 101); echo $((n + 1)) > \"$F/next\"; echo \"$n\"\n");
    script("scontrol",
           "id=${@: -1}\n"
           "if [ -f \"$F/job-$id\" ]; then cat \"$F/job-$id\"; else echo \"slurm_load_jobs error: Invalid job id "
           "specified\" >&2; exit 1; fi\n");
    script("scancel", "echo \"$*\" >> \"$F/scancel.log\"\n");
  }
  fs::path fake() const { return cwd() / "fake"; }
  void script(const std::string& name, const std::string& body) {
    const fs::path p = fake() / name;
    std::ofstream(p) << "#!/bin/bash\nF='" << fake().string() << "'\n" << body;
    fs::permissions(p, fs::perms::owner_all);
  }
  std::string env() const { return "PATH=" + fake().string() + ":/usr/bin:/bin"; }
  CliResult slurm(const std::string& args) { return run(args, env()); }
  std::vector<std::string> sbatch_calls() const { return lines(read(fake() / "sbatch.log")); }
  void job(const std::string& id, const std::string& scontrol_lines) {
    std::ofstream(fake() / ("job-" + id)) << scontrol_lines;
  }
  nlohmann::json record(const std::string& dir) const {
    return nlohmann::json::parse(read(cwd() / dir / "slurm.json"));
  }
  // Runs shard i of `dir` by hand, as its task would.
  void finish_shard(const std::string& dir, int i, int n) {
    ASSERT_EQ(run("run " + dir + "/config.toml --shard " + std::to_string(i) + "/" + std::to_string(n) +
                  " --resume --out " + dir + "/shards/" + std::to_string(i) + " --device cpu --threads 2")
                  .status,
              0);
  }
};

TEST_F(SubmitCli, SubmitsEveryShardThenOnlyWhatFailedWithAMergeAfterAll) {
  ASSERT_EQ(slurm("slurm " + kTiny + "--shards 4 --array-limit 2 --out sweep").status, 0);
  const std::string dir = fs::canonical(cwd() / "sweep").string();

  CliResult r = slurm("submit sweep");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(sbatch_calls(),
            (std::vector<std::string>{
                "--parsable --array=0-3%2 " + dir + "/run.sbatch",
                "--parsable --dependency=afterok:101 --kill-on-invalid-dep=yes " + dir + "/merge.sbatch",
            }));
  EXPECT_TRUE(contains(r.out, "submitted array job 101 (4 shards: 0-3) and merge job 102")) << r.out;
  nlohmann::json meta = record("sweep");
  EXPECT_EQ(meta["array_job"], "101");
  EXPECT_EQ(meta["merge_job"], "102");
  EXPECT_EQ(meta["array_limit"], 2);
  ASSERT_EQ(meta["submissions"].size(), 1u);
  EXPECT_EQ(meta["submissions"][0]["tasks"], "0-3");

  // Shard 0 finished; 1 failed, 2 runs, 3 was cancelled; the merge was cancelled with them.
  finish_shard("sweep", 0, 4);
  job("101",
      "JobId=103 ArrayJobId=101 ArrayTaskId=0 JobState=COMPLETED Reason=None\n"
      "JobId=104 ArrayJobId=101 ArrayTaskId=1 JobState=FAILED Reason=NonZeroExitCode\n"
      "JobId=105 ArrayJobId=101 ArrayTaskId=2 JobState=RUNNING Reason=None\n"
      "JobId=106 ArrayJobId=101 ArrayTaskId=3 JobState=CANCELLED Reason=None\n");
  job("102", "JobId=102 JobName=underspec-merge JobState=CANCELLED Reason=Dependency\n");
  r = slurm("status sweep");
  EXPECT_TRUE(contains(r.out, "total: 1 done, 1 running, 1 failed, 1 cancelled")) << r.out;
  EXPECT_TRUE(contains(r.out, "  underspec submit " + dir + "\n")) << r.out;

  r = slurm("submit sweep");
  ASSERT_EQ(r.status, 0) << r.err;
  // Shards 1 and 3 again, throttled as before; the merge also waits for shard 2's array (any end).
  EXPECT_EQ(sbatch_calls().at(2), "--parsable --array=1,3%2 " + dir + "/run.sbatch");
  EXPECT_EQ(sbatch_calls().at(3),
            "--parsable --dependency=afterok:103,afterany:101 --kill-on-invalid-dep=yes " + dir + "/merge.sbatch");
  EXPECT_TRUE(contains(r.out, "submitted array job 103 (2 shards: 1,3) and merge job 104")) << r.out;
  meta = record("sweep");
  ASSERT_EQ(meta["submissions"].size(), 2u);
  EXPECT_EQ(meta["submissions"][1]["tasks"], "1,3");
  EXPECT_EQ(meta["array_job"], "103");

  // Status follows the latest job of each shard: the resubmitted ones are pending, not failed.
  job("103", "JobId=103 ArrayJobId=103 ArrayTaskId=1,3%2 JobState=PENDING Reason=JobArrayTaskLimit\n");
  job("104", "JobId=104 JobName=underspec-merge JobState=PENDING Reason=Dependency\n");
  r = slurm("status sweep");
  EXPECT_TRUE(contains(r.out, "1      pending      0/2  (JobArrayTaskLimit)\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "total: 1 done, 1 running, 2 pending;")) << r.out;
  EXPECT_TRUE(contains(r.out, "merged: no (merge job 104: PENDING, Dependency)")) << r.out;
  EXPECT_FALSE(contains(r.out, "underspec submit")) << r.out;  // nothing to do but wait

  // Submitting again while all is queued submits nothing.
  r = slurm("submit sweep");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "nothing to submit: every shard is done or queued, and merge job 104 is PENDING"))
      << r.out;
  EXPECT_EQ(sbatch_calls().size(), 4u);
}

// A task cancelled while pending leaves no record: Slurm lists the array without it. Such a
// shard is cancelled, not "not started", and status says how to go on.
TEST_F(SubmitCli, TasksCancelledWhilePendingAreCancelled) {
  ASSERT_EQ(slurm("slurm " + kTiny + "--shards 3 --out sweep --submit").status, 0);
  finish_shard("sweep", 0, 3);
  job("101", "JobId=103 ArrayJobId=101 ArrayTaskId=0 JobState=COMPLETED Reason=None\n");
  job("102", "JobId=102 JobState=CANCELLED Reason=DependencyNeverSatisfied\n");
  const CliResult r = slurm("status sweep");
  EXPECT_TRUE(contains(r.out, "1      cancelled    0/2\n2      cancelled    0/2\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "shard 1 cancelled (no log: it never started)")) << r.out;
  EXPECT_TRUE(contains(r.out, "  underspec submit ")) << r.out;
}

// merge.err is appended to by every merge job: an earlier one's error is not the queued one's.
TEST_F(SubmitCli, AnEarlierMergesErrorIsNotTheQueuedOnes) {
  ASSERT_EQ(slurm("slurm " + kTiny + "--shards 2 --out sweep --submit").status, 0);
  write("sweep/logs/merge.err", "underspec: merge job 102 on a\nunderspec: error: merge: replicas missing: 3-5\n");
  job("101", "JobId=101 ArrayJobId=101 ArrayTaskId=0-1 JobState=PENDING Reason=Priority\n");
  job("102", "JobId=102 JobState=PENDING Reason=Dependency\n");
  CliResult r = slurm("status sweep");
  EXPECT_FALSE(contains(r.out, "the merge failed")) << r.out;
  // Once it has run and failed, its own lines say so.
  write("sweep/logs/merge.err", read(cwd() / "sweep/logs/merge.err") +
                                    "underspec: merge job 102 on b\nunderspec: error: merge: disk on fire\n");
  job("102", "JobId=102 JobState=FAILED Reason=NonZeroExitCode\n");
  r = slurm("status sweep");
  EXPECT_TRUE(contains(r.out, "the merge failed")) << r.out;
  EXPECT_TRUE(contains(r.out, "disk on fire")) << r.out;
  EXPECT_FALSE(contains(r.out, "replicas missing")) << r.out;
}

TEST_F(SubmitCli, EveryShardDoneButNotMergedSubmitsTheMergeAlone) {
  ASSERT_EQ(slurm("slurm " + kTiny + "--shards 2 --out sweep").status, 0);
  const std::string dir = fs::canonical(cwd() / "sweep").string();
  finish_shard("sweep", 0, 2);
  finish_shard("sweep", 1, 2);
  CliResult r = slurm("status sweep");
  EXPECT_TRUE(contains(r.out, "every shard is done; merge them:\n  underspec submit " + dir)) << r.out;
  r = slurm("submit sweep");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(sbatch_calls(), (std::vector<std::string>{"--parsable " + dir + "/merge.sbatch"}));
  EXPECT_TRUE(contains(r.out, "submitted merge job 101 (every shard is done)")) << r.out;
  EXPECT_EQ(record("sweep")["submissions"][0]["array_job"], "");
}

TEST_F(SubmitCli, ALiveMergeIsCancelledWhenShardsAreSubmittedAgain) {
  ASSERT_EQ(slurm("slurm " + kTiny + "--shards 2 --out sweep --submit").status, 0);
  job("101",
      "JobId=103 ArrayJobId=101 ArrayTaskId=0 JobState=COMPLETED Reason=None\n"
      "JobId=104 ArrayJobId=101 ArrayTaskId=1 JobState=COMPLETED Reason=None\n");
  job("102", "JobId=102 JobState=PENDING Reason=Dependency\n");
  // Neither shard wrote its outputs (their directories were lost, say): both go again, and the
  // old merge, which would run as soon as the first array is over, is cancelled.
  const CliResult r = slurm("submit sweep");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read(fake() / "scancel.log"), "102\n");
  EXPECT_TRUE(contains(r.out, "cancelled merge job 102")) << r.out;
  EXPECT_TRUE(contains(sbatch_calls().at(2), "--array=0-1 ")) << sbatch_calls().at(2);
}

TEST_F(SubmitCli, ARefusedArrayJobLeavesNothingBehind) {
  std::ofstream(fake() / "sbatch.fail") << "sbatch: error: Invalid job array specification\n";
  CliResult r = slurm("slurm " + kTiny + "--shards 2 --out sweep --submit");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "Invalid job array specification")) << r.err;
  EXPECT_TRUE(contains(r.err, "nothing was submitted")) << r.err;
  EXPECT_FALSE(fs::exists(cwd() / "sweep"));
  // An empty directory given as --out stays, empty.
  fs::create_directory(cwd() / "empty");
  r = slurm("slurm " + kTiny + "--shards 2 --out empty --submit");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(fs::is_empty(cwd() / "empty"));
  // Fixed, the same command works.
  fs::remove(fake() / "sbatch.fail");
  r = slurm("slurm " + kTiny + "--shards 2 --out sweep --submit");
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(SubmitCli, ARefusedMergeKeepsTheArrayAndSaysHowToSubmitIt) {
  ASSERT_EQ(slurm("slurm " + kTiny + "--shards 2 --out sweep").status, 0);
  // sbatch accepts the array job, then refuses the merge.
  script("sbatch",
         "if [ -f \"$F/next\" ]; then echo 'sbatch: error: QOSMaxSubmitJobPerUserLimit' >&2; exit 1; fi\n"
         "echo 102 > \"$F/next\"; echo 101\n");
  CliResult r = slurm("submit sweep");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "array job 101 (shards 0-1) is submitted, but the merge job is not")) << r.err;
  EXPECT_TRUE(contains(r.err, "underspec submit ")) << r.err;
  EXPECT_EQ(record("sweep")["array_job"], "101");
  // Later: the array runs; submit adds only the merge, after it.
  script("sbatch", "echo \"$*\" >> \"$F/sbatch.log\"; echo 105\n");
  job("101", "JobId=101 ArrayJobId=101 ArrayTaskId=0-1 JobState=PENDING Reason=Priority\n");
  r = slurm("submit sweep");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(sbatch_calls().size(), 1u);
  EXPECT_TRUE(contains(sbatch_calls().at(0), "--dependency=afterany:101 ")) << sbatch_calls().at(0);
}

TEST_F(SubmitCli, WithoutAnAnswerFromSlurmNothingIsSubmittedTwice) {
  ASSERT_EQ(slurm("slurm " + kTiny + "--shards 2 --out sweep --submit").status, 0);
  script("scontrol",
         "echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2; exit 1\n");
  CliResult r = slurm("submit sweep");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "cannot ask Slurm about the sweep's jobs (slurm_load_jobs error: Unable to contact"))
      << r.err;
  EXPECT_EQ(sbatch_calls().size(), 2u);  // only the first submission's
  r = slurm("status sweep");
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(contains(r.out, "(Slurm did not answer: slurm_load_jobs error: Unable to contact")) << r.out;
}

// A large sweep's status: runs of neighbouring shards that are all done or all waiting are one
// row each, so the shards that need a look stand out; the totals still count every shard.
TEST_F(SubmitCli, ManyShardsCollapseIntoRangesAroundTheOnesThatNeedALook) {
  const std::string sweep24 =
      "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=8 "
      "--set 'sweep.models=[\"perceptron\"]' ";  // 24 replicas
  ASSERT_EQ(slurm("slurm " + sweep24 + "--shards 24 --out sweep").status, 0);
  finish_shard("sweep", 3, 24);
  write("sweep/logs/shard-10.err", "underspec: error: disk on fire\n");
  const CliResult r = slurm("status sweep");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out,
                       "shard  state        replicas\n"
                       "0-2    not started  0/3\n"
                       "3      done         1/1\n"
                       "4-9    not started  0/6\n"
                       "10     failed       0/1\n"
                       "11-23  not started  0/13\n"
                       "total: 1 done, 1 failed, 22 not started; 1 of 24 replicas done\n"))
      << r.out;
}

TEST_F(SubmitCli, OptionsSbatchWouldMisreadAreRefused) {
  for (const std::string bad :
       {"--out 'run#2'", "--sbatch-arg='--comment=my sweep'", "--sbatch-arg=--comment=a#b", "--sbatch-arg=--array=0-3",
        "--sbatch-arg=-J", "--sbatch-arg=--job-name=x", "--sbatch-arg=--dependency=afterok:1", "--sbatch-arg=--time=5",
        "--sbatch-arg=-o/tmp/x", "--time 2h", "--time 1:2:3:4", "--job-name 'a b'", "--partition 'a#b'"}) {
    const CliResult r = slurm("slurm " + kTiny + "--shards 2 " + bad + (bad.starts_with("--out") ? "" : " --out s"));
    EXPECT_EQ(r.status, 2) << bad << "\n" << r.err;
    EXPECT_TRUE(cwd_entries() == std::vector<std::string>{"fake"}) << bad;
  }
  // Quoted blanks are one argument to sbatch.
  CliResult r = slurm("slurm " + kTiny + "--shards 2 --sbatch-arg='--comment=\"my sweep\"' --job-name lr-scan --out s");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string merge = read(cwd() / "s" / "merge.sbatch");
  EXPECT_TRUE(contains(merge, "#SBATCH --comment=\"my sweep\"\n")) << merge;  // to both jobs
  EXPECT_TRUE(contains(merge, "#SBATCH --job-name=lr-scan-merge\n")) << merge;
  EXPECT_TRUE(contains(read(cwd() / "s" / "run.sbatch"), "#SBATCH --job-name=lr-scan\n"));
  // A short limit: a warning, and a grace period that leaves the task most of it.
  r = slurm("slurm " + kTiny + "--shards 2 --time 2:00 --out short");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "--time 2:00 is 120 s per task")) << r.err;
  EXPECT_TRUE(contains(read(cwd() / "short" / "run.sbatch"), "#SBATCH --signal=B:TERM@12\n"));
}

// With --time, the longest shard's estimate (calibrated here) is printed, and a shard that
// cannot finish within the limit (less the grace period) is warned about; the files are
// written all the same.
TEST_F(SubmitCli, ATimeLimitTooShortForAShardIsWarnedAbout) {
  // 6 perceptrons in shard 0, 6 MLPs in shard 1: the longest is the MLPs', not the first.
  const std::string both = "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=2 ";
  CliResult r = slurm("slurm " + both + "--shards 2 --time 1:00:00 --cpus-per-task 1 --out fits");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "underspec: time per task: ")) << r.out;
  EXPECT_TRUE(contains(r.out, " for the longest shard (1: 6 replicas) on 1 CPU thread, calibrated on this machine"))
      << r.out;
  EXPECT_FALSE(contains(r.err, "exceeds --time")) << r.err;

  // 200,000 MLPs of 5000 samples x 30 epochs on one thread: days, against a minute.
  r = slurm(
      "slurm --set sweep.seeds=100000 --set 'sweep.regimes=[\"baseline\"]' --shards 2 --time 1 "
      "--cpus-per-task 1 --out long");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "underspec: warning: the longest shard's estimated time (about ")) << r.err;
  EXPECT_TRUE(contains(r.err, ") exceeds --time 1 less the 10 s kept to save the checkpoint")) << r.err;
  EXPECT_TRUE(fs::exists(cwd() / "long" / "run.sbatch"));

  // GPU tasks: not estimated, no warning.
  r = slurm("slurm " + kTiny + "--shards 2 --time 1 --gpus-per-task 1 --out gpu");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "time per task: not estimated (GPU tasks")) << r.out;
  EXPECT_FALSE(contains(r.err, "exceeds --time")) << r.err;

  // Without --time nothing is calibrated or said.
  r = slurm("slurm " + kTiny + "--shards 2 --out none");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(contains(r.out, "time per task")) << r.out;
}

// A task's memory is the estimate its run checks before it starts (the same as `plan` of
// the largest shard with the task's threads): printed, and a --mem below it is refused
// before anything is written, with the size to ask for.
TEST_F(SubmitCli, AMemoryLimitTooSmallForAShardIsRefused) {
  CliResult r = slurm("slurm " + kTiny + "--shards 2 --cpus-per-task 1 --mem 4GB --out fits");
  ASSERT_EQ(r.status, 0) << r.err;
  const CliResult plan = run("plan " + kTiny + "--shard 0/2 --threads 1 --device cpu");
  ASSERT_EQ(plan.status, 0) << plan.err;
  const std::size_t at = plan.out.find("  host memory  about ");
  ASSERT_NE(at, std::string::npos) << plan.out;
  const std::string estimate = plan.out.substr(at + 21, plan.out.find('\n', at) - at - 21);
  EXPECT_TRUE(contains(r.out, "underspec: memory per task: about " + estimate +
                                  " for the largest shard (3 replicas, 1 thread); --mem 4GB is 4.0 GiB\n"))
      << r.out << estimate;
  EXPECT_TRUE(contains(read(cwd() / "fits" / "run.sbatch"), "#SBATCH --mem=4GB\n"));
  // The merge's: every replica's row, no datasets (the test sets' size does not change it).
  const auto merge_line = [](const std::string& out) {
    const std::size_t line = out.find("underspec: memory of the merge job: about ");
    return line == std::string::npos ? std::string() : out.substr(line, out.find('\n', line) - line);
  };
  EXPECT_TRUE(contains(r.out,
                       " (every replica's row; merge.sbatch asks for no --mem: the partition's default "
                       "applies)\n"))
      << r.out;
  const CliResult big_tests =
      slurm("slurm " + kTiny + "--set data.n_test=2000000 --shards 2 --cpus-per-task 1 --mem 4GB --out big-tests");
  ASSERT_EQ(big_tests.status, 0) << big_tests.err;
  EXPECT_EQ(merge_line(big_tests.out), merge_line(r.out));
  EXPECT_FALSE(merge_line(r.out).empty());
  // --mem-per-cpu reaches the merge job too (merge.sbatch gets every --sbatch-arg): a warning
  // when the merge's rows need more than it gives.
  r = slurm("slurm " + kTiny +
            "--set sweep.seeds=40000 --shards 100 --cpus-per-task 1 --sbatch-arg=--mem-per-cpu=150M --out rows");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "underspec: warning: the merge job needs about ")) << r.err;
  EXPECT_TRUE(contains(r.err, " but --mem-per-cpu=150M x 1 CPU gives it 150.0 MiB: it will be refused")) << r.err;

  r = slurm("slurm " + kTiny + "--shards 2 --cpus-per-task 1 --mem 1M --out small");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "underspec: error: --mem 1M is less than a task needs: about " + estimate +
                                  " for the largest shard (3 replicas); give --mem "))
      << r.err;
  r = slurm("slurm " + kTiny + "--shards 2 --mem 4Q --out bad");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "--mem 4Q: not a Slurm memory size")) << r.err;
  EXPECT_FALSE(fs::exists(cwd() / "small"));
  EXPECT_FALSE(fs::exists(cwd() / "bad"));

  // Memory per CPU (or GPU) given to sbatch directly counts times the task's CPUs (GPUs).
  r = slurm("slurm " + kTiny + "--shards 2 --cpus-per-task 4 --sbatch-arg=--mem-per-cpu=1M --out per-cpu");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "underspec: error: --mem-per-cpu=1M x 4 CPUs is less than a task needs: about "))
      << r.err;
  r = slurm("slurm " + kTiny + "--shards 2 --cpus-per-task 4 --sbatch-arg=--mem-per-cpu=1G --out per-cpu");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "threads); --mem-per-cpu=1G x 4 CPUs is 4.0 GiB\n")) << r.out;
  for (const std::string bad : {"--mem 1G --sbatch-arg=--mem-per-cpu=1G", "--sbatch-arg=--mem-per-gpu=2X"}) {
    r = slurm("slurm " + kTiny + "--shards 2 --gpus-per-task 1 " + bad + " --out twice");
    EXPECT_EQ(r.status, 2) << bad << r.err;
    EXPECT_FALSE(fs::exists(cwd() / "twice")) << bad;
  }
  EXPECT_TRUE(contains(r.err, "--sbatch-arg=--mem-per-gpu 2X: not a Slurm memory size")) << r.err;

  r = slurm("slurm " + kTiny + "--shards 3 --cpus-per-task 2 --out default");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out,
                       " for the largest shard (2 replicas, 2 threads); no --mem: the partition's default "
                       "applies\n"))
      << r.out;
}

// A slurm.json edited by hand (or damaged) names its problem and exits 2 at once: a shard
// count of -1 must not be read as 4294967295 shards to list (status hung for hours), nor a
// count above the config's replicas give shards of nothing.
TEST_F(SubmitCli, AnEditedShardCountInSlurmJsonIsRefused) {
  ASSERT_EQ(slurm("slurm " + kTiny + "--shards 2 --out sweep").status, 0);
  const std::string json = read(cwd() / "sweep" / "slurm.json");
  const std::string from = "\"shards\": 2";
  ASSERT_NE(json.find(from), std::string::npos) << json;
  for (const auto& [shards, message] : std::vector<std::pair<std::string, std::string>>{
           {"-1", "slurm.json: shards must be an integer in [1, 2147483647], got -1"},
           {"4294967297", "slurm.json: shards must be an integer in [1, 2147483647], got 4294967297"},
           {"0", "slurm.json: shards must be an integer in [1, 2147483647], got 0"},
           {"\"2\"", "slurm.json: shards must be an integer in [1, 2147483647], got \"2\""},
           {"7", "/slurm.json says 7 shards, but "}}) {
    std::string edited = json;
    edited.replace(edited.find(from), from.size(), "\"shards\": " + shards);
    write("sweep/slurm.json", edited);
    for (const char* command : {"status", "submit"}) {
      // timeout: before the fix, -1 listed 2^32 shards
      const CliResult r = run(std::string(command) + " sweep", env() + " timeout 20");
      EXPECT_EQ(r.status, 2) << command << " " << shards << "\n" << r.err;
      EXPECT_TRUE(contains(r.err, message)) << command << " " << shards << "\n" << r.err;
      if (shards == "7") {
        EXPECT_TRUE(contains(r.err, "/config.toml has only 6 replicas")) << r.err;
      }
    }
  }
  EXPECT_TRUE(read(fake() / "sbatch.log").empty());  // nothing was submitted
}

}  // namespace
}  // namespace underspec
