// `underspec`: the command line. Parses and validates everything, then hands over to the
// driver. Exit status: 0 success, 2 bad usage or config (nothing created), 1 runtime
// failure, 128 + signal when SIGINT/SIGTERM stopped a run (its finished work is saved).
#include <malloc.h>
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <new>

#include "cli_checks.hpp"
#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/benchmark/bench_command.hpp"
#include "underspec/cluster/slurm.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/shell_words.hpp"
#include "underspec/run/merge.hpp"
#include "underspec/run/report.hpp"
#include "underspec/run/run.hpp"
#include "underspec/run/run_dir.hpp"
#include "underspec/run/score.hpp"
#include "underspec/run/stop_signals.hpp"

#ifndef UNDERSPEC_VERSION
#define UNDERSPEC_VERSION "unknown"
#endif

using namespace underspec::cli;

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

int fail(int status, const std::string& message) {
  std::cerr << "underspec: error: " << message << '\n';
  return status;
}

void add_config_options(CLI::App* cmd, std::string& config_path, std::vector<std::string>& overrides) {
  cmd->add_option("config", config_path, "TOML config (default: the built-in seed experiment, examples/seed.toml)")
      ->check(kNonEmptyPath);
  cmd->add_option("--set", overrides,
                  "Override a config key with a TOML value, e.g. --set sweep.seeds=100 (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);  // `--set k=v config.toml`: the config is not a second override
}

}  // namespace

static int run_command(int argc, char** argv) {
  // Blocks of 1 MiB and more (a wide MLP's per-replica workspace and parameters: 4-22 MB at
  // width 1024) are mapped and unmapped, not kept: glibc's default raises the threshold after
  // the first such free, and each thread's arena then held ~100 MB of freed workspaces.
  ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
  CLI::App app{
      "underspec: measures underspecification, the spread of out-of-distribution error across seeds "
      "of models trained on data with a spurious correlation, and how remedies change it."};
  app.set_version_flag("--version", [] {
    return std::string("underspec ") + UNDERSPEC_VERSION + "\ncpu kernels: " + underspec::cpu_kernels_description(true);
  });
  app.require_subcommand(1);
  app.failure_message(parse_failure);

  std::string config_path, out, resume_dir, shard, progress = "auto", gpus;
  std::vector<std::string> overrides;
  underspec::RunOptions options;
  options.version = UNDERSPEC_VERSION;
  options.command_line = underspec::shell_command(argc, argv);  // pasteable, as summary.json records it
  if (argc > 0 && *argv[0]) options.program = underspec::shell_quote(argv[0]);

  CLI::App* run = app.add_subcommand(
      "run",
      "Train the sweep (or one shard of it), checkpointing as it goes, and write config.toml, replicas.csv, "
      "stress.csv, summary.json, summary.csv, comparisons.csv and report.html into the output directory");
  add_config_options(run, config_path, overrides);
  run->add_option("--out", out, "Output directory (default: runs/<UTC timestamp>); must not exist or be empty")
      ->check(kNonEmptyPath);
  run->add_option("--device", options.device, "Backend: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  run->add_option("--gpus", gpus, "CUDA devices to use, e.g. 0,2 (default: every visible device)")
      ->check(kNonEmptyValue);
  std::string threads;
  const std::string threads_help = "CPU threads: 0 (all hardware threads, the default) to " +
                                   std::to_string(kMaxThreadsFactor) + "x the hardware threads";
  run->add_option("--threads", threads, threads_help)->type_name("N")->check(kNonEmptyValue);
  run->add_option("--resume", resume_dir,
                  "Continue the interrupted run in DIR (or in --out); starts it when it does not exist yet")
      ->expected(0, 1)
      ->type_name("[DIR]");
  run->add_option("--shard", shard, "Train shard I of N (0 <= I < N), or auto/N for I = SLURM_ARRAY_TASK_ID")
      ->type_name("I/N")
      ->check(kNonEmptyValue);
  run->add_flag("--save-params", options.save_params, "Also write every replica's final parameters to params.npy");
  bool no_report = false;
  run->add_flag("--no-report", no_report, "Do not write report.html at the end (shards never do)");
  run->add_flag("--dry-run", options.dry_run,
                "Print the plan (cells, replicas, work, estimated time, memory, outputs) and stop");
  run->add_option("--progress", progress,
                  "Progress on stderr: auto (bar on a terminal, else a line every 10 s), bar, lines, none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->capture_default_str();

  CLI::App* plan = app.add_subcommand(
      "plan",
      "Same as run --dry-run: what a run would do and about how long it takes (calibrated here on the CPU), "
      "without doing it");
  add_config_options(plan, config_path, overrides);
  plan->add_option("--out", out, "Output directory the run would use")->check(kNonEmptyPath);
  plan->add_option("--shard", shard, "Plan shard I of N")->type_name("I/N")->check(kNonEmptyValue);
  plan->add_flag("--save-params", options.save_params, "Plan for params.npy as well");
  plan->add_option("--device", options.device, "Backend the run would use: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  plan->add_option("--threads", threads, threads_help)->type_name("N")->check(kNonEmptyValue);
  // run's other options, so that `run ARGS --dry-run` and `plan ARGS` take the same ARGS
  plan->add_flag("--no-report", no_report, "Plan without report.html");
  plan->add_option("--resume", resume_dir, "Plan the rest of the interrupted run in DIR (or in --out)")
      ->expected(0, 1)
      ->type_name("[DIR]");
  plan->add_option("--gpus", gpus, "CUDA devices the run would use, e.g. 0,2 (checked; a plan uses none)")
      ->check(kNonEmptyValue);
  bool plan_dry_run = false;  // what a plan is anyway
  plan->add_flag("--dry-run", plan_dry_run, "Accepted as run takes it (a plan is a dry run)");
  plan->add_option("--progress", progress, "Accepted as run takes it (a plan trains nothing)")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));

  std::vector<std::string> merge_inputs;
  CLI::App* merge = app.add_subcommand(
      "merge", "Merge the output directories of the shards of one sweep into the outputs a single run writes");
  merge->add_option("dirs", merge_inputs, "Shard output directories")->required()->check(kNonEmptyPath);
  merge->add_option("--out", out, "Output directory of the merged run (must not exist or be empty)")
      ->required()
      ->check(kNonEmptyPath);
  merge->add_option("--threads", threads, threads_help + " (the statistics')")->type_name("N")->check(kNonEmptyValue);
  merge->add_flag("--no-report", no_report, "Do not write report.html at the end");

  std::string score_dir;
  CLI::App* score = app.add_subcommand(
      "score", "Re-score a finished run (saved with --save-params) on new test domains, without training");
  score->add_option("dir", score_dir, "A finished run directory with params.npy")->required()->check(kNonEmptyPath);
  score->add_option("--set", overrides, "Change data.stress_factors, data.iid_factor, data.ood_factor or data.n_test")
      ->type_name("KEY=VALUE");
  score->add_option("--out", out, "Output directory (default: runs/<UTC timestamp>)")->check(kNonEmptyPath);
  score->add_option("--threads", threads, threads_help)->type_name("N")->check(kNonEmptyValue);
  score->add_flag("--no-report", no_report, "Do not write report.html at the end");

  std::string report_dir;
  CLI::App* report = app.add_subcommand(
      "report", "Write DIR/report.html (summary, figures; self-contained) and DIR/plots/*.svg for a finished run");
  report->add_option("dir", report_dir, "A finished run directory")->required()->check(kNonEmptyPath);

  underspec::SlurmOptions slurm_options;
  bool submit = false;
  CLI::App* slurm = app.add_subcommand(
      "slurm",
      "Write a Slurm array job (one task per shard, each resuming its shard) and a merge job that runs after "
      "it into the output directory; with --submit, submit both");
  add_config_options(slurm, config_path, overrides);
  slurm->add_option("--shards", slurm_options.shards, "Number of shards = array tasks")
      ->required()
      ->check(integer_at_least(1));
  slurm->add_option("--out", out, "Sweep directory (default: runs/<UTC timestamp>); must not exist or be empty")
      ->check(kNonEmptyPath);
  slurm->add_option("--partition", slurm_options.partition, "sbatch --partition")->check(sbatch_text(SbatchText::word));
  slurm->add_option("--time", slurm_options.time, "sbatch --time of each task, e.g. 2:00:00")
      ->check(sbatch_text(SbatchText::word));
  slurm->add_option("--account", slurm_options.account, "sbatch --account")->check(sbatch_text(SbatchText::word));
  slurm->add_option("--qos", slurm_options.qos, "sbatch --qos")->check(sbatch_text(SbatchText::word));
  slurm->add_option("--gpus-per-task", slurm_options.gpus_per_task, "GPUs per task (then the CUDA backend)")
      ->check(integer_at_least(1));
  slurm->add_option("--cpus-per-task", slurm_options.cpus_per_task, "CPUs per task (CPU backend threads)")
      ->check(integer_at_least(1));
  slurm->add_option("--mem", slurm_options.mem, "sbatch --mem of each task, e.g. 4G")
      ->check(sbatch_text(SbatchText::word));
  slurm->add_option("--array-limit", slurm_options.array_limit, "At most K tasks at once (--array=0-(N-1)%K)")
      ->check(integer_at_least(1));
  slurm
      ->add_option("--sbatch-arg", slurm_options.sbatch_args,
                   "Extra #SBATCH line for both jobs, e.g. --sbatch-arg=--reservation=lab (repeatable)")
      ->allow_extra_args(false)
      ->check(sbatch_text(SbatchText::option));
  slurm->add_option("--job-name", slurm_options.job_name, "Slurm job name of the array (the merge: NAME-merge)")
      ->check(sbatch_text(SbatchText::word))
      ->capture_default_str();
  slurm->add_flag("--submit", submit, "Submit both jobs with sbatch and print their ids");

  std::string submit_dir;
  CLI::App* submit_command = app.add_subcommand(
      "submit",
      "Submit a Slurm sweep written by `underspec slurm`, or what it still lacks after failures: one array job of "
      "its unfinished shards (each continues from its checkpoint) and a merge job after them");
  submit_command->add_option("dir", submit_dir, "A directory written by `underspec slurm`")
      ->required()
      ->check(kNonEmptyPath);

  underspec::benchmark::BenchCommand bench_command;
  CLI::App* bench = app.add_subcommand(
      "bench",
      "Benchmark training throughput: perceptrons and MLPs at several replica counts, in replica-sample-steps/s, "
      "GFLOP/s and % of the FP32 peak measured by an FMA probe in the same run");
  bench->add_option("--device", bench_command.device, "Device: auto (CUDA if usable, else the CPU), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  bench->add_flag("--quick", bench_command.quick, "Small replica counts and few epochs (a few seconds on the CPU)");
  bench->add_option("--json", bench_command.json_path, "Also write the results as JSON to FILE")
      ->type_name("FILE")
      ->check(kNonEmptyPath);
  bench->add_option("--threads", threads, threads_help)->type_name("N")->check(kNonEmptyValue);

  std::string status_dir;
  CLI::App* status =
      app.add_subcommand("status", "How far a Slurm sweep (shards done, running, failed) or a run directory has come");
  status->add_option("dir", status_dir, "A directory written by `underspec slurm` or `underspec run`")
      ->required()
      ->check(kNonEmptyPath);

  std::vector<std::string> args = with_empty_values_split(app, argc, argv);
  std::vector<char*> arg_pointers;
  for (std::string& a : args) arg_pointers.push_back(a.data());
  try {
    app.parse(static_cast<int>(arg_pointers.size()), arg_pointers.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  try {
    if (!threads.empty()) options.threads = parse_threads(threads);
    // What OpenMP runs beside the backend (the statistics' bootstrap) stays within --threads
    // too: shards run side by side with --threads 1 must not each take every core after training.
    if (options.threads > 0) omp_set_num_threads(options.threads);
    if (*run || *plan || *merge || *score || *bench) {
      // OpenMP's workers, and the progress line's thread of a run that trains
      const int omp = options.threads > 0 ? options.threads : omp_get_max_threads();
      require_threads(omp, omp - 1 + (*run && !options.dry_run && progress != "none" ? 1 : 0));
    }
    options.out = out;
    options.stderr_is_terminal = ::isatty(STDERR_FILENO) == 1;
    const char* no_report_env = std::getenv("UNDERSPEC_NO_REPORT");  // tests: as --no-report
    options.report = !no_report && !(no_report_env && *no_report_env && std::string(no_report_env) != "0");
    if (*report) {
      if (const std::string problem = underspec::path_problem(report_dir, true); !problem.empty())
        return fail(kExitUsage, "report: run directory " + report_dir + " " + problem);
      if (const std::string problem = underspec::report_directory_problem(report_dir); !problem.empty())
        return fail(kExitUsage, problem);
      const underspec::StopSignals signals;  // Ctrl-C stops the generator too, not only underspec
      const underspec::ReportStatus drawn = underspec::write_report(report_dir, false, &signals.requested());
      if (signals.requested().load())
        return fail(128 + signals.signal(),
                    "stopped by signal " + std::to_string(signals.signal()) +
                        " while drawing the report; it was not (re)drawn: run underspec report again");
      switch (drawn) {
        case underspec::ReportStatus::written:
          return 0;
        case underspec::ReportStatus::unavailable:
          return fail(kExitRuntime, underspec::report_unavailable_message(report_dir));
        case underspec::ReportStatus::failed:
          return fail(kExitRuntime, "the report generator failed (see above)");
      }
    }
    if (*merge) return underspec::merge_runs(merge_inputs, out, options, std::cout, std::cerr);
    if (*score) return underspec::score_run(score_dir, overrides, options, std::cout, std::cerr);
    if (*status) return underspec::print_status(status_dir, std::cout, options.program);
    if (*submit_command) {
      if (const std::string problem = underspec::path_problem(submit_dir, true); !problem.empty())
        throw underspec::UsageError(submit_dir + " " + problem);
      return underspec::submit_sweep(submit_dir, std::cout, std::cerr);
    }
    if (*bench) {
      bench_command.threads = options.threads;
      bench_command.version = UNDERSPEC_VERSION;
      return underspec::benchmark::run_bench_command(bench_command, std::cout, std::cerr);
    }
    options.config = underspec::resolve_config(config_path, overrides);
    if (*slurm) {
      slurm_options.dir = out;
      return underspec::slurm_prepare(slurm_options, options.config, submit, std::cout, std::cerr);
    }
    options.config_given = !config_path.empty() || !overrides.empty();
    if (!shard.empty()) options.shard = underspec::parse_shard(shard, std::getenv("SLURM_ARRAY_TASK_ID"));
    if (*plan) options.dry_run = true;
    if (*run || *plan) {
      underspec::parse_progress_mode(progress, options.progress);
      options.gpus = underspec::parse_gpu_list(gpus);
    }
    if ((*run && run->count("--resume") > 0) || (*plan && plan->count("--resume") > 0)) {
      options.resume = true;
      if (!resume_dir.empty()) {
        if (!out.empty() && out != resume_dir)
          throw underspec::UsageError("--resume " + resume_dir + " and --out " + out + " name different directories");
        options.out = resume_dir;
      }
    }
    return underspec::run_experiment(options, std::cout, std::cerr);
  } catch (const underspec::ConfigError& e) {
    return fail(kExitUsage, e.what());
  } catch (const underspec::UsageError& e) {
    return fail(kExitUsage, e.what());
  } catch (const underspec::CpuKernelsUnknown& e) {  // UNDERSPEC_CPU_KERNELS=typo
    return fail(kExitUsage, e.what());
  } catch (const underspec::OutputDirTaken& e) {  // --out not empty, or being written by another process
    return fail(kExitUsage, e.what());
  } catch (const std::bad_alloc&) {
    return fail(kExitRuntime, "out of memory (reduce sweep.seeds, data.n_train or --threads, or split with --shard)");
  } catch (const std::system_error& e) {
    return fail(kExitRuntime, std::string("system error: ") + e.what());
  } catch (const std::exception& e) {
    return fail(kExitRuntime, e.what());
  }
}

int main(int argc, char** argv) {
  // A standard output closed early (`underspec run | head -1`) must not kill a run before it
  // has written its report, nor a file-size limit (`ulimit -f`) kill it with temporaries left:
  // the writes fail (EPIPE, EFBIG) instead, and the error paths say so.
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGXFSZ, SIG_IGN);
  const int status = run_command(argc, argv);
  // A lost table or plan is an I/O error like any other (a closed pipe, a full disk).
  if (!(std::cout << std::flush))
    return fail(status == 0 ? kExitRuntime : status,
                "cannot write to standard output (a closed pipe or a full disk?): what was printed is incomplete");
  return status;
}
