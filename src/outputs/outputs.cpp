// Per-group statistics and the output files of a run (see outputs.hpp).
#include "underspec/outputs/outputs.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string_view>

#include "underspec/outputs/atomic_file.hpp"
#include "underspec/config/config_io.hpp"

namespace underspec {
namespace {

constexpr int kPerceptronParams = 4;  // w_x1, w_x2, w_x3, bias (model.hpp layout)

template <class... Args>
std::string format(const char* fmt, Args... args) {
  const int n = std::snprintf(nullptr, 0, fmt, args...);
  if (n <= 0) return {};
  std::string s(static_cast<std::size_t>(n), '\0');
  std::snprintf(s.data(), s.size() + 1, fmt, args...);
  return s;
}
// max_digits10: the text parses back to the same value, and is the same on every run.
std::string exact(double x) { return format("%.17g", x); }
std::string exact(float x) { return format("%.9g", static_cast<double>(x)); }

nlohmann::json stats_json(const Summary& s) {
  return {{"mean", s.mean},     {"std", s.std}, {"min", s.min}, {"q1", s.q1},
          {"median", s.median}, {"q3", s.q3},   {"max", s.max}};
}

constexpr const char* kStatNames[] = {"mean", "std", "min", "q1", "median", "q3", "max"};
std::vector<double> stats_values(const Summary& s) { return {s.mean, s.std, s.min, s.q1, s.median, s.q3, s.max}; }

}  // namespace

std::vector<GroupSummary> summarize_groups(const RunRecord& run) {
  std::vector<GroupSummary> groups;
  for (ModelKind model : run.config.sweep.models)
    for (Regime regime : run.config.sweep.regimes) {
      std::vector<double> iid, ood;
      std::vector<std::vector<double>> weights(model == ModelKind::perceptron ? kPerceptronParams : 0);
      for (std::size_t i = 0; i < run.replicas.size(); ++i) {
        if (run.replicas[i].model != model || run.replicas[i].regime != regime) continue;
        iid.push_back(run.results[i].iid_rmse);
        ood.push_back(run.results[i].ood_rmse);
        for (std::size_t p = 0; p < weights.size(); ++p) weights[p].push_back(run.results[i].params.at(p));
      }
      GroupSummary g{model, regime, summarize(iid), summarize(ood), {}};
      for (const auto& w : weights) g.weights.push_back(summarize(w));
      groups.push_back(std::move(g));
    }
  return groups;
}

std::string replicas_csv(const RunRecord& run) {
  std::string csv = "replica,model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias\n";
  for (std::size_t i = 0; i < run.replicas.size(); ++i) {
    const ReplicaSpec& spec = run.replicas[i];
    const ReplicaResult& result = run.results[i];
    csv += std::to_string(spec.id) + ',' + to_string(spec.model) + ',' + to_string(spec.regime) + ',' +
           std::to_string(spec.seed) + ',' + exact(result.iid_rmse) + ',' + exact(result.ood_rmse);
    for (int p = 0; p < kPerceptronParams; ++p)
      csv += ',' + (spec.model == ModelKind::perceptron ? exact(result.params.at(p)) : std::string());
    csv += '\n';
  }
  return csv;
}

nlohmann::json summary_json(const RunRecord& run, const std::vector<GroupSummary>& groups) {
  const DataConfig& data = run.config.data;
  nlohmann::json out_groups = nlohmann::json::array();
  for (const GroupSummary& g : groups) {
    nlohmann::json j = {{"model", to_string(g.model)},
                        {"regime", to_string(g.regime)},
                        {"replicas", g.iid_rmse.count},
                        {"iid_rmse", stats_json(g.iid_rmse)},
                        {"ood_rmse", stats_json(g.ood_rmse)}};
    if (!g.weights.empty()) {
      nlohmann::json mean = nlohmann::json::array(), std = nlohmann::json::array();
      for (const Summary& w : g.weights) {
        mean.push_back(w.mean);
        std.push_back(w.std);
      }
      // x3 is not a cause of y: the true model puts no weight on it.
      j["weights"] = {{"names", kWeightNames},
                      {"true", {data.coefficients[0], data.coefficients[1], 0.0, data.intercept}},
                      {"mean", mean},
                      {"std", std}};
    }
    out_groups.push_back(std::move(j));
  }
  return {{"version", run.version},
          {"backend", run.backend},
          {"threads", run.threads},
          {"wall_seconds", run.wall_seconds},
          {"replicas", run.replicas.size()},
          {"groups", out_groups},
          {"config", config_to_json(run.config)}};
}

std::string summary_csv(const std::vector<GroupSummary>& groups) {
  std::string csv = "model,regime,replicas";
  for (const char* metric : {"iid_rmse", "ood_rmse"})
    for (const char* stat : kStatNames) csv += std::string(",") + metric + "_" + stat;
  csv += '\n';
  for (const GroupSummary& g : groups) {
    csv += std::string(to_string(g.model)) + ',' + to_string(g.regime) + ',' + std::to_string(g.iid_rmse.count);
    for (const Summary* s : {&g.iid_rmse, &g.ood_rmse})
      for (double x : stats_values(*s)) csv += ',' + exact(x);
    csv += '\n';
  }
  return csv;
}

std::string summary_table(const RunRecord& run, const std::vector<GroupSummary>& groups,
                          const std::filesystem::path& dir) {
  std::string t = format("%-10s  %-20s  %4s  %-17s  %-17s  %-26s  %s\n", "model", "regime", "n", "IID RMSE", "OOD RMSE",
                         "OOD min / median / max", "w_x3");
  for (const GroupSummary& g : groups) {
    const Summary &iid = g.iid_rmse, &ood = g.ood_rmse;
    t += format("%-10s  %-20s  %4d  %7.4f ± %-7.4f  %7.4f ± %-7.4f  %7.4f / %7.4f / %7.4f", to_string(g.model),
                to_string(g.regime), iid.count, iid.mean, iid.std, ood.mean, ood.std, ood.min, ood.median, ood.max);
    t += g.weights.empty() ? "       -\n" : format("  %7.4f\n", g.weights[2].mean);
  }
  t += format("backend %s, %d threads, %.3f s training, %zu replicas -> %s\n", run.backend.c_str(), run.threads,
              run.wall_seconds, run.replicas.size(), dir.string().c_str());
  return t;
}

void write_outputs(const std::filesystem::path& dir, const RunRecord& run, const std::vector<GroupSummary>& groups) {
  require_free_output_dir(dir);
  StagingDir staging(dir);
  write_file_atomic(staging.path() / "config.toml", config_to_toml(run.config));
  write_file_atomic(staging.path() / "replicas.csv", replicas_csv(run));
  write_file_atomic(staging.path() / "summary.json", summary_json(run, groups).dump(2) + "\n");
  write_file_atomic(staging.path() / "summary.csv", summary_csv(groups));
  staging.commit();
}

}  // namespace underspec
