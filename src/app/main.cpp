// `underspec`: the command line. Parses and validates everything, then hands over to the
// driver. Exit status: 0 success, 2 bad usage or config (nothing created), 1 runtime failure.
#include <CLI/CLI.hpp>
#include <iostream>

#include "underspec/config/config_io.hpp"
#include "underspec/run/run.hpp"

#ifndef UNDERSPEC_VERSION
#define UNDERSPEC_VERSION "unknown"
#endif

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

int fail(int status, const std::string& message) {
  std::cerr << "underspec: error: " << message << '\n';
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "underspec: measures underspecification, the spread of out-of-distribution error across seeds "
      "of models trained on data with a spurious correlation, and how remedies change it."};
  app.set_version_flag("--version", std::string("underspec ") + UNDERSPEC_VERSION);
  app.require_subcommand(1);

  std::string config_path;
  std::vector<std::string> overrides;
  underspec::RunOptions options;
  options.version = UNDERSPEC_VERSION;
  std::string out;
  CLI::App* run = app.add_subcommand("run",
                                     "Train the sweep and write config.toml, replicas.csv, summary.json, "
                                     "summary.csv into the output directory");
  run->add_option("config", config_path, "TOML config (default: the built-in seed experiment, examples/seed.toml)");
  run->add_option("--set", overrides,
                  "Override a config key with a TOML value, e.g. --set sweep.seeds=100 (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);  // `--set k=v config.toml`: the config is not a second override
  run->add_option("--out", out, "Output directory (default: runs/<UTC timestamp>); must not exist or be empty");
  run->add_option("--device", options.device, "Backend: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  run->add_option("--threads", options.threads, "CPU threads (0: all hardware threads)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  try {
    options.config = underspec::resolve_config(config_path, overrides);
    options.out = out;
    underspec::run_experiment(options, std::cout, std::cerr);
  } catch (const underspec::ConfigError& e) {
    return fail(kExitUsage, e.what());
  } catch (const underspec::UsageError& e) {
    return fail(kExitUsage, e.what());
  } catch (const std::exception& e) {
    return fail(kExitRuntime, e.what());
  }
  return 0;
}
