// Per-group statistics and the output files of a run (see outputs.hpp).
#include "underspec/outputs/outputs.hpp"

#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string_view>

#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"

namespace underspec {
namespace {

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
// A config value as written in the config (shortest round-trip form): stress factors.
std::string shortest(double x) {
  char buf[64];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
}

// RFC 4180: a field with a comma or quote is quoted (grid values such as `[64, 64]`).
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

constexpr const char* kStatNames[] = {"mean", "std", "min", "q1", "median", "q3", "max"};
std::vector<double> stats_values(const Summary& s) { return {s.mean, s.std, s.min, s.q1, s.median, s.q3, s.max}; }

nlohmann::json stats_json(const Summary& s) {
  nlohmann::json j = nlohmann::json::object();
  const std::vector<double> v = stats_values(s);
  for (std::size_t i = 0; i < v.size(); ++i) j[kStatNames[i]] = v[i];
  return j;
}

// `cell,<axis>...` prefix of a CSV header and of a row.
std::string axes_header(const Sweep& sweep) {
  std::string h = "cell";
  for (const GridAxis& axis : sweep.config.sweep.grid) h += ',' + csv_field(axis.key);
  return h;
}
std::string axes_row(const Sweep& sweep, std::uint32_t cell) {
  std::string r = std::to_string(cell);
  for (const std::string& value : sweep.cells[cell].values) r += ',' + csv_field(value);
  return r;
}

std::size_t max_stress_factors(const Sweep& sweep) {
  std::size_t k = 0;
  for (const Cell& c : sweep.cells) k = std::max(k, c.config.data.stress_factors.size());
  return k;
}

}  // namespace

std::vector<GroupSummary> summarize_groups(const RunRecord& run) {
  std::vector<GroupSummary> groups;
  const auto& results = run.results;
  for (std::size_t begin = 0; begin < results.size();) {
    const ReplicaSpec& first = run.spec(results[begin]);
    std::size_t end = begin;
    while (end < results.size()) {
      const ReplicaSpec& s = run.spec(results[end]);
      if (s.cell != first.cell || s.model != first.model || s.regime != first.regime) break;
      ++end;
    }
    const std::size_t n_stress = run.sweep->cells[first.cell].config.data.stress_factors.size();
    const bool weights = first.model == ModelKind::perceptron;
    std::vector<double> iid, ood;
    std::vector<std::vector<double>> stress(n_stress), w(weights ? kPerceptronParams : 0);
    for (std::size_t i = begin; i < end; ++i) {
      iid.push_back(results[i].iid_rmse);
      ood.push_back(results[i].ood_rmse);
      for (std::size_t k = 0; k < n_stress; ++k) stress[k].push_back(results[i].stress_rmse.at(k));
      for (std::size_t p = 0; p < w.size(); ++p) w[p].push_back(results[i].params.at(p));
    }
    GroupSummary g{first.cell, first.model, first.regime, summarize(iid), summarize(ood), {}, {}};
    for (const auto& s : stress) g.stress_rmse.push_back(summarize(s));
    for (const auto& x : w) g.weights.push_back(summarize(x));
    groups.push_back(std::move(g));
    begin = end;
  }
  return groups;
}

std::string replicas_csv(const RunRecord& run) {
  const Sweep& sweep = *run.sweep;
  std::string csv = "replica," + axes_header(sweep) + ",model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias\n";
  for (const ReplicaResult& result : run.results) {
    const ReplicaSpec& spec = run.spec(result);
    csv += std::to_string(spec.id) + ',' + axes_row(sweep, spec.cell) + ',' + to_string(spec.model) + ',' +
           to_string(spec.regime) + ',' + std::to_string(spec.seed) + ',' + exact(result.iid_rmse) + ',' +
           exact(result.ood_rmse);
    for (int p = 0; p < kPerceptronParams; ++p)
      csv += ',' + (spec.model == ModelKind::perceptron ? exact(result.params.at(p)) : std::string());
    csv += '\n';
  }
  return csv;
}

std::string stress_csv(const RunRecord& run) {
  std::string csv = "replica,factor,rmse\n";
  for (const ReplicaResult& result : run.results) {
    const std::vector<double>& factors = run.sweep->config_of(run.spec(result)).data.stress_factors;
    for (std::size_t k = 0; k < factors.size(); ++k)
      csv += std::to_string(result.id) + ',' + shortest(factors[k]) + ',' + exact(result.stress_rmse.at(k)) + '\n';
  }
  return csv;
}

nlohmann::json summary_json(const RunRecord& run, const std::vector<GroupSummary>& groups) {
  const Sweep& sweep = *run.sweep;
  nlohmann::json out_groups = nlohmann::json::array();
  for (const GroupSummary& g : groups) {
    const ExperimentConfig& config = sweep.cells[g.cell].config;
    nlohmann::json axes = nlohmann::json::object();
    for (std::size_t a = 0; a < sweep.config.sweep.grid.size(); ++a)
      axes[sweep.config.sweep.grid[a].key] = sweep.cells[g.cell].values[a];
    nlohmann::json j = {{"cell", g.cell},
                        {"grid", axes},
                        {"model", to_string(g.model)},
                        {"regime", to_string(g.regime)},
                        {"replicas", g.iid_rmse.count},
                        {"iid_rmse", stats_json(g.iid_rmse)},
                        {"ood_rmse", stats_json(g.ood_rmse)}};
    nlohmann::json stress = nlohmann::json::array();
    for (std::size_t k = 0; k < g.stress_rmse.size(); ++k)
      stress.push_back({{"factor", config.data.stress_factors[k]}, {"rmse", stats_json(g.stress_rmse[k])}});
    j["stress"] = stress;
    if (!g.weights.empty()) {
      nlohmann::json mean = nlohmann::json::array(), std = nlohmann::json::array();
      for (const Summary& w : g.weights) {
        mean.push_back(w.mean);
        std.push_back(w.std);
      }
      // x3 is not a cause of y: the true model puts no weight on it.
      const DataConfig& data = config.data;
      j["weights"] = {{"names", kWeightNames},
                      {"true", {data.coefficients[0], data.coefficients[1], 0.0, data.intercept}},
                      {"mean", mean},
                      {"std", std}};
    }
    out_groups.push_back(std::move(j));
  }
  const RunInfo& info = run.info;
  return {{"version", info.version},
          {"backend", info.backend},
          {"threads", info.threads},
          {"wall_seconds", info.wall_seconds},
          {"run",
           {{"git_commit", info.git_commit},
            {"command_line", info.command_line},
            {"host", info.host},
            {"started_utc", info.started_utc},
            {"devices", info.devices},
            {"shard", info.shard}}},
          {"replicas", run.results.size()},
          {"cells", sweep.cells.size()},
          {"groups", out_groups},
          {"config", config_to_json(sweep.config)}};
}

std::string summary_csv(const RunRecord& run, const std::vector<GroupSummary>& groups) {
  const Sweep& sweep = *run.sweep;
  const std::size_t n_stress = max_stress_factors(sweep);
  std::string csv = axes_header(sweep) + ",model,regime,replicas";
  for (const char* metric : {"iid_rmse", "ood_rmse"})
    for (const char* stat : kStatNames) csv += std::string(",") + metric + "_" + stat;
  for (std::size_t k = 1; k <= n_stress; ++k) {
    csv += ",stress" + std::to_string(k) + "_factor";
    for (const char* stat : kStatNames) csv += ",stress" + std::to_string(k) + "_rmse_" + stat;
  }
  csv += '\n';
  for (const GroupSummary& g : groups) {
    csv += axes_row(sweep, g.cell) + ',' + to_string(g.model) + ',' + to_string(g.regime) + ',' +
           std::to_string(g.iid_rmse.count);
    for (const Summary* s : {&g.iid_rmse, &g.ood_rmse})
      for (double x : stats_values(*s)) csv += ',' + exact(x);
    const std::vector<double>& factors = sweep.cells[g.cell].config.data.stress_factors;
    for (std::size_t k = 0; k < n_stress; ++k) {
      if (k < factors.size()) {
        csv += ',' + shortest(factors[k]);
        for (double x : stats_values(g.stress_rmse[k])) csv += ',' + exact(x);
      } else {
        csv += std::string(1 + std::size(kStatNames), ',');
      }
    }
    csv += '\n';
  }
  return csv;
}

std::string summary_table(const RunRecord& run, const std::vector<GroupSummary>& groups,
                          const std::filesystem::path& dir) {
  const Sweep& sweep = *run.sweep;
  const bool grid = !sweep.config.sweep.grid.empty();
  // Cell labels such as `train.lr=0.001 data.train_factor=0.2`, padded to one width.
  std::vector<std::string> labels(sweep.cells.size());
  std::size_t width = 4;
  for (std::size_t c = 0; grid && c < sweep.cells.size(); ++c) {
    for (std::size_t a = 0; a < sweep.config.sweep.grid.size(); ++a)
      labels[c] += (a ? " " : "") + sweep.config.sweep.grid[a].key + "=" + sweep.cells[c].values[a];
    width = std::max(width, labels[c].size());
  }
  const auto cell_column = [&](const std::string& text) {
    return grid ? text + std::string(width - std::min(width, text.size()) + 2, ' ') : std::string();
  };
  std::string t = cell_column("cell") + format("%-10s  %-20s  %4s  %-17s  %-17s  %-26s  %s\n", "model", "regime", "n",
                                               "IID RMSE", "OOD RMSE", "OOD min / median / max", "w_x3");
  for (const GroupSummary& g : groups) {
    const Summary &iid = g.iid_rmse, &ood = g.ood_rmse;
    t += cell_column(labels[g.cell]) +
         format("%-10s  %-20s  %4d  %7.4f ± %-7.4f  %7.4f ± %-7.4f  %7.4f / %7.4f / %7.4f", to_string(g.model),
                to_string(g.regime), iid.count, iid.mean, iid.std, ood.mean, ood.std, ood.min, ood.median, ood.max);
    t += g.weights.empty() ? "       -\n" : format("  %7.4f\n", g.weights[2].mean);
  }
  // The stress curve: mean RMSE per stress factor, one line per group.
  if (max_stress_factors(sweep) > 0) {
    t += "\n" + cell_column("cell") + format("%-10s  %-20s  %s\n", "model", "regime", "stress RMSE (mean) by factor");
    for (const GroupSummary& g : groups) {
      t += cell_column(labels[g.cell]) + format("%-10s  %-20s ", to_string(g.model), to_string(g.regime));
      const std::vector<double>& factors = sweep.cells[g.cell].config.data.stress_factors;
      for (std::size_t k = 0; k < g.stress_rmse.size(); ++k)
        t += format(" %s: %.4f", shortest(factors[k]).c_str(), g.stress_rmse[k].mean);
      t += '\n';
    }
  }
  const RunInfo& info = run.info;
  t += format("backend %s, %d threads, %.3f s training, %zu replicas", info.backend.c_str(), info.threads,
              info.wall_seconds, run.results.size());
  if (grid) t += format(" in %zu cells", sweep.cells.size());
  t += " -> " + dir.string() + "\n";
  return t;
}

void write_outputs(const std::filesystem::path& dir, const RunRecord& run, const std::vector<GroupSummary>& groups) {
  write_file_atomic(dir / "config.toml", config_to_toml(run.sweep->config));
  write_file_atomic(dir / "replicas.csv", replicas_csv(run));
  write_file_atomic(dir / "stress.csv", stress_csv(run));
  write_file_atomic(dir / "summary.csv", summary_csv(run, groups));
  write_file_atomic(dir / "summary.json", summary_json(run, groups).dump(2) + "\n");  // last: marks completion
}

}  // namespace underspec
