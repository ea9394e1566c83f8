// The driver of `underspec run` (see run.hpp). Everything that can be wrong with the
// request is checked before training, so a bad request creates nothing.
#include "underspec/run/run.hpp"

#include <ctime>
#include <ostream>

#include "underspec/outputs/atomic_file.hpp"
#include "underspec/backends/backend.hpp"
#include "underspec/outputs/outputs.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {

bool is_device_name(const std::string& device) { return device == "auto" || device == "cpu" || device == "cuda"; }

std::filesystem::path default_output_dir(std::chrono::system_clock::time_point now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &utc);
  const std::filesystem::path base = std::filesystem::path("runs") / stamp;
  std::filesystem::path dir = base;
  for (int suffix = 2; std::filesystem::exists(dir); ++suffix) dir = base.string() + "-" + std::to_string(suffix);
  return dir;
}

std::filesystem::path run_experiment(const RunOptions& options, std::ostream& out, std::ostream& err) {
  if (!is_device_name(options.device))
    throw UsageError("--device must be auto, cpu or cuda, got '" + options.device + "'");
  const std::filesystem::path dir =
      options.out.empty() ? default_output_dir(std::chrono::system_clock::now()) : options.out;
  try {
    require_free_output_dir(dir);
  } catch (const OutputError& e) {
    throw UsageError(e.what());
  }

  std::string notice;
  const std::unique_ptr<Backend> backend = make_backend(options.device, options.threads, &notice);
  if (!notice.empty()) err << "underspec: " << notice << '\n';

  RunRecord run;
  run.config = options.config;
  run.replicas = make_sweep(options.config).replicas;
  run.backend = backend->name();
  run.threads = backend->threads();
  run.version = options.version;
  const auto start = std::chrono::steady_clock::now();
  run.results = backend->train_replicas(run.config, run.replicas);
  run.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (run.results.size() != run.replicas.size())
    throw std::runtime_error("backend " + run.backend + " returned " + std::to_string(run.results.size()) +
                             " results for " + std::to_string(run.replicas.size()) + " replicas");
  for (std::size_t i = 0; i < run.results.size(); ++i)
    if (run.results[i].id != run.replicas[i].id)
      throw std::runtime_error("backend " + run.backend + " returned results out of order");

  const std::vector<GroupSummary> groups = summarize_groups(run);
  write_outputs(dir, run, groups);
  out << summary_table(run, groups, dir) << std::flush;
  return dir;
}

}  // namespace underspec
