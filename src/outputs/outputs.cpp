// Per-group statistics and the output files of a run (see outputs.hpp).
#include "underspec/outputs/outputs.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string_view>

#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/stats/bootstrap.hpp"

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
// A statistic that may be undefined (n = 1, no spread): empty when not finite.
std::string maybe(double x) { return std::isfinite(x) ? exact(x) : std::string(); }
std::string maybe(float x) { return std::isfinite(x) ? exact(x) : std::string(); }
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

// JSON has no NaN or infinity: an undefined statistic is null (never 0).
nlohmann::json number(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }
nlohmann::json interval_json(const Interval& i) { return nlohmann::json::array({number(i.low), number(i.high)}); }

nlohmann::json seed_json(const std::optional<std::uint32_t>& seed) {
  return seed ? nlohmann::json(*seed) : nlohmann::json(nullptr);
}
std::string seed_field(const std::optional<std::uint32_t>& seed) { return seed ? std::to_string(*seed) : ""; }

// A metric's inference in summary.csv: its columns (after the metric's name) and fields.
constexpr const char* kInferenceNames[] = {"n",           "mean_ci_low", "mean_ci_high", "std_ci_low",
                                           "std_ci_high", "worst_seed",  "best_seed"};
std::string inference_fields(const Summary& s, const MetricInference& m) {
  return ',' + std::to_string(s.count) + ',' + maybe(m.mean_ci.low) + ',' + maybe(m.mean_ci.high) + ',' +
         maybe(m.std_ci.low) + ',' + maybe(m.std_ci.high) + ',' + seed_field(m.worst_seed) + ',' +
         seed_field(m.best_seed);
}

nlohmann::json stats_json(const Summary& s) {
  nlohmann::json j = nlohmann::json::object();
  const std::vector<double> v = stats_values(s);
  for (std::size_t i = 0; i < v.size(); ++i) j[kStatNames[i]] = number(v[i]);
  return j;
}

nlohmann::json metric_json(const Summary& s, const MetricInference& m) {
  nlohmann::json j = stats_json(s);
  j["n"] = s.count;
  j["mean_ci"] = interval_json(m.mean_ci);
  j["std_ci"] = interval_json(m.std_ci);
  j["worst_seed"] = seed_json(m.worst_seed);
  j["best_seed"] = seed_json(m.best_seed);
  return j;
}

nlohmann::json estimate_json(const Estimate& e, const char* name = "value") {
  return {{name, number(e.value)}, {"ci", interval_json(e.ci)}};
}

nlohmann::json grid_json(const Sweep& sweep, std::uint32_t cell) {
  nlohmann::json axes = nlohmann::json::object();
  for (std::size_t a = 0; a < sweep.config.sweep.grid.size(); ++a)
    axes[sweep.config.sweep.grid[a].key] = sweep.cells[cell].values[a];
  return axes;
}

// The column prefix of a perceptron parameter, as in replicas.csv: w_x1, w_x2, w_x3, bias.
std::string weight_column(int p) {
  const std::string name = kWeightNames[p];
  return name == "bias" ? name : "w_" + name;
}

LinearWeights weights_of(const ReplicaResult& r) {
  return {r.params.at(0), r.params.at(1), r.params.at(2), r.params.at(3)};
}

MetricInference infer(const std::vector<double>& values, const std::vector<std::uint32_t>& seeds, PhiloxKey key,
                      const std::atomic<bool>* stop) {
  MetricInference m;
  if (values.empty()) {  // every replica of the group diverged
    m.mean_ci = m.std_ci = {std::nan(""), std::nan("")};
    return m;
  }
  m.mean_ci = mean_t_interval(values);
  m.std_ci = bootstrap_interval(BootstrapStatistic::std_dev, values, {}, key, 0.95, stop);
  std::size_t worst = 0, best = 0;  // first of equal values in id order
  for (std::size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[worst]) worst = i;
    if (values[i] < values[best]) best = i;
  }
  m.worst_seed = seeds.at(worst);
  m.best_seed = seeds.at(best);
  return m;
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

// g against the baseline group of its cell and model; none for a baseline, or without one.
std::optional<Comparison> compare_with_baseline(const std::vector<GroupSummary>& groups, const GroupSummary& g,
                                                const std::atomic<bool>* stop) {
  if (g.regime == Regime::baseline) return std::nullopt;
  const auto base = std::find_if(groups.begin(), groups.end(), [&](const GroupSummary& b) {
    return b.cell == g.cell && b.model == g.model && b.regime == Regime::baseline;
  });
  if (base == groups.end()) return std::nullopt;
  Comparison c{g.cell, g.model, g.regime, base->ood_rmse.count, g.ood_rmse.count, {}, {}, {}};
  c.mean_difference = welch(base->ood_values, g.ood_values);
  const PhiloxKey key = bootstrap_key(g.cell, static_cast<std::uint32_t>(g.model), static_cast<std::uint32_t>(g.regime),
                                      BootstrapStatistic::two_sample_std_ratio);
  c.std_ratio = {
      g.ood_rmse.std / base->ood_rmse.std,
      bootstrap_interval(BootstrapStatistic::two_sample_std_ratio, base->ood_values, g.ood_values, key, 0.95, stop)};
  c.equal_spread = brown_forsythe(base->ood_values, g.ood_values);
  return c;
}

// The statistics of the replicas [begin, end), one group.
GroupSummary summarize_group(const RunRecord& run, std::size_t begin, std::size_t end, const std::atomic<bool>* stop) {
  const auto& results = run.results;
  const ReplicaSpec& first = run.spec(results[begin]);
  const std::size_t n_stress = run.sweep->cells[first.cell].config.data.stress_factors.size();
  const bool weights = first.model == ModelKind::perceptron;
  std::vector<double> iid, ood, gap;
  std::vector<std::uint32_t> seeds;
  std::vector<std::vector<double>> stress(n_stress), w(weights ? kPerceptronParams : 0);
  int diverged = 0;
  for (std::size_t i = begin; i < end; ++i) {
    if (!results[i].diverged.empty()) {
      ++diverged;
      continue;
    }
    seeds.push_back(run.spec(results[i]).seed);
    gap.push_back(results[i].ood_rmse - results[i].iid_rmse);
    iid.push_back(results[i].iid_rmse);
    ood.push_back(results[i].ood_rmse);
    for (std::size_t k = 0; k < n_stress; ++k) stress[k].push_back(results[i].stress_rmse.at(k));
    for (std::size_t p = 0; p < w.size(); ++p) w[p].push_back(results[i].params.at(p));
  }
  GroupSummary g{};
  g.cell = first.cell;
  g.model = first.model;
  g.regime = first.regime;
  g.diverged = diverged;
  g.iid_rmse = summarize(iid);
  g.ood_rmse = summarize(ood);
  for (const auto& s : stress) g.stress_rmse.push_back(summarize(s));
  for (const auto& x : w) g.weights.push_back(summarize(x));
  // The bootstrap's key is the group's identity, never its position in this run.
  const auto key = [&](BootstrapStatistic statistic, std::uint32_t variant) {
    return bootstrap_key(first.cell, static_cast<std::uint32_t>(first.model), static_cast<std::uint32_t>(first.regime),
                         statistic, variant);
  };
  g.iid_inference = infer(iid, seeds, key(BootstrapStatistic::std_dev, 0), stop);
  g.ood_inference = infer(ood, seeds, key(BootstrapStatistic::std_dev, 1), stop);
  for (std::size_t k = 0; k < n_stress; ++k)
    g.stress_inference.push_back(
        infer(stress[k], seeds,
              stress_bootstrap_key(first.cell, static_cast<std::uint32_t>(first.model),
                                   static_cast<std::uint32_t>(first.regime), static_cast<std::uint32_t>(k)),
              stop));
  g.gap = {summarize(gap).mean, mean_t_interval(gap)};
  g.spread_ratio = {g.ood_rmse.std / g.iid_rmse.std,
                    bootstrap_interval(BootstrapStatistic::paired_std_ratio, iid, ood,
                                       key(BootstrapStatistic::paired_std_ratio, 0), 0.95, stop)};
  g.spearman = {spearman(iid, ood), bootstrap_interval(BootstrapStatistic::spearman, iid, ood,
                                                       key(BootstrapStatistic::spearman, 0), 0.95, stop)};
  if (weights) {
    const ExperimentConfig& config = run.sweep->cells[first.cell].config;
    g.train_x3_noise_var = train_x3_noise_variance(config, first.regime);
    g.optimum = ls_optimum(config.data, g.train_x3_noise_var);
  }
  g.iid_values = std::move(iid);
  g.ood_values = std::move(ood);
  return g;
}

// Runs job(k) for k in [0, n) in any order (every job's result depends on k alone: the
// bootstraps are keyed by their group, so the bits do not depend on the thread count). With
// at least as many groups as threads the groups share the threads; with fewer (a few large
// groups) they run one at a time and each bootstrap uses every thread. check_stop runs
// before each job; what it throws is rethrown here once the jobs under way have ended.
template <class Job>
void for_each_group(std::size_t n, const std::function<void()>& check_stop, Job&& job) {
  std::exception_ptr failure;
  std::atomic<bool> failed{false};
  const bool across_groups = n >= static_cast<std::size_t>(omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1) if (across_groups)
  for (std::size_t k = 0; k < n; ++k) {
    if (failed.load()) continue;
    try {
      if (check_stop) check_stop();
      job(k);
    } catch (...) {
#pragma omp critical(underspec_summarize_failure)
      if (!failed.exchange(true)) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

std::vector<GroupSummary> summarize_groups(const RunRecord& run, const std::function<void()>& check_stop,
                                           const std::atomic<bool>* stop) {
  // Groups are runs of equal (cell, model, regime) in id order; their statistics, then their
  // comparisons (which read the baselines), are made on every thread: a grid has hundreds.
  const auto& results = run.results;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (std::size_t begin = 0; begin < results.size();) {
    const ReplicaSpec& first = run.spec(results[begin]);
    std::size_t end = begin;
    while (end < results.size()) {
      const ReplicaSpec& s = run.spec(results[end]);
      if (s.cell != first.cell || s.model != first.model || s.regime != first.regime) break;
      ++end;
    }
    spans.emplace_back(begin, end);
    begin = end;
  }
  std::vector<GroupSummary> groups(spans.size());
  for_each_group(spans.size(), check_stop,
                 [&](std::size_t k) { groups[k] = summarize_group(run, spans[k].first, spans[k].second, stop); });
  for_each_group(groups.size(), check_stop,
                 [&](std::size_t k) { groups[k].versus_baseline = compare_with_baseline(groups, groups[k], stop); });
  // Once more after the last group: a stop heard inside its bootstraps cut them short.
  if (check_stop) check_stop();
  return groups;
}

std::string group_label(const Sweep& sweep, const GroupSummary& g) {
  std::string label = std::string(to_string(g.model)) + " " + to_string(g.regime);
  const auto& grid = sweep.config.sweep.grid;
  for (std::size_t a = 0; a < grid.size(); ++a)
    label += (a ? " " : " [") + grid[a].key + "=" + sweep.cells[g.cell].values[a] + (a + 1 == grid.size() ? "]" : "");
  return label;
}

std::string table_number(double x, int width) {
  if (!std::isfinite(x)) return "—";
  const auto w = static_cast<std::size_t>(std::max(width, 1));
  std::string s;
  if (std::fabs(x) < 1e5)
    for (int d = 4; d >= 0; --d)
      if ((s = format("%.*f", d, x)).size() <= w) return s;
  for (int d = 3; d >= 0; --d)
    if ((s = format("%.*e", d, x)).size() <= w) return s;
  return s;
}

std::vector<Comparison> compare_groups(const std::vector<GroupSummary>& groups) {
  std::vector<Comparison> out;
  for (const GroupSummary& g : groups)
    if (g.versus_baseline) out.push_back(*g.versus_baseline);
  return out;
}

std::string replicas_csv(const RunRecord& run) {
  const Sweep& sweep = *run.sweep;
  std::string csv = "replica," + axes_header(sweep) +
                    ",model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias,iid_rmse_expected,ood_rmse_expected,"
                    "diverged\n";
  for (const ReplicaResult& result : run.results) {
    const ReplicaSpec& spec = run.spec(result);
    csv += std::to_string(spec.id) + ',' + axes_row(sweep, spec.cell) + ',' + to_string(spec.model) + ',' +
           to_string(spec.regime) + ',' + std::to_string(spec.seed) + ',' + maybe(result.iid_rmse) + ',' +
           maybe(result.ood_rmse);
    for (int p = 0; p < kPerceptronParams; ++p)
      csv += ',' + (spec.model == ModelKind::perceptron ? maybe(result.params.at(p)) : std::string());
    if (spec.model == ModelKind::perceptron) {
      const DataConfig& data = sweep.config_of(spec).data;
      const LinearWeights w = weights_of(result);
      csv += ',' + maybe(expected_rmse(data, w, x3_noise_variance(data.iid_factor))) + ',' +
             maybe(expected_rmse(data, w, x3_noise_variance(data.ood_factor)));
    } else {
      csv += ",,";
    }
    csv += ',' + csv_field(result.diverged) + '\n';
  }
  return csv;
}

std::string stress_csv(const RunRecord& run) {
  std::string csv = "replica,factor,rmse,rmse_expected\n";
  for (const ReplicaResult& result : run.results) {
    const ReplicaSpec& spec = run.spec(result);
    const DataConfig& data = run.sweep->config_of(spec).data;
    const std::vector<double>& factors = data.stress_factors;
    for (std::size_t k = 0; k < factors.size(); ++k) {
      csv += std::to_string(result.id) + ',' + shortest(factors[k]) + ',' + maybe(result.stress_rmse.at(k)) + ',';
      if (spec.model == ModelKind::perceptron)
        csv += maybe(expected_rmse(data, weights_of(result), x3_noise_variance(factors[k])));
      csv += '\n';
    }
  }
  return csv;
}

nlohmann::json summary_json(const RunRecord& run, const std::vector<GroupSummary>& groups) {
  const Sweep& sweep = *run.sweep;
  nlohmann::json out_groups = nlohmann::json::array();
  for (const GroupSummary& g : groups) {
    const ExperimentConfig& config = sweep.cells[g.cell].config;
    nlohmann::json j = {{"cell", g.cell},
                        {"grid", grid_json(sweep, g.cell)},
                        {"model", to_string(g.model)},
                        {"regime", to_string(g.regime)},
                        {"replicas", g.iid_rmse.count + g.diverged},
                        {"diverged", g.diverged},
                        {"iid_rmse", metric_json(g.iid_rmse, g.iid_inference)},
                        {"ood_rmse", metric_json(g.ood_rmse, g.ood_inference)},
                        {"ood_minus_iid", estimate_json(g.gap, "mean")},
                        {"spread_ratio", estimate_json(g.spread_ratio)},
                        {"spearman", estimate_json(g.spearman)}};
    nlohmann::json stress = nlohmann::json::array();
    for (std::size_t k = 0; k < g.stress_rmse.size(); ++k)
      stress.push_back(
          {{"factor", config.data.stress_factors[k]}, {"rmse", metric_json(g.stress_rmse[k], g.stress_inference[k])}});
    j["stress"] = stress;
    if (!g.weights.empty()) {
      nlohmann::json mean = nlohmann::json::array(), std = nlohmann::json::array();
      for (const Summary& w : g.weights) {
        mean.push_back(number(w.mean));
        std.push_back(number(w.std));
      }
      // x3 is not a cause of y: the true model puts no weight on it.
      const DataConfig& data = config.data;
      j["weights"] = {
          {"names", kWeightNames}, {"true", {data.coefficients[0], data.coefficients[1], 0.0, data.intercept}},
          {"mean", mean},          {"std", std},
          {"optimum", g.optimum},  {"train_x3_noise_var", g.train_x3_noise_var}};
    }
    out_groups.push_back(std::move(j));
  }
  nlohmann::json comparisons = nlohmann::json::array();
  for (const Comparison& c : compare_groups(groups)) {
    const WelchResult& d = c.mean_difference;
    comparisons.push_back({{"cell", c.cell},
                           {"grid", grid_json(sweep, c.cell)},
                           {"model", to_string(c.model)},
                           {"remedy", to_string(c.remedy)},
                           {"baseline", to_string(Regime::baseline)},
                           {"baseline_n", c.baseline_n},
                           {"remedy_n", c.remedy_n},
                           {"ood_mean_diff",
                            {{"value", number(d.difference)},
                             {"ci", interval_json(d.ci)},
                             {"df", number(d.df)},
                             {"t", number(d.t)},
                             {"p_value", number(d.p_value)}}},
                           {"ood_std_ratio", estimate_json(c.std_ratio)},
                           {"brown_forsythe",
                            {{"statistic", number(c.equal_spread.statistic)},
                             {"df1", number(c.equal_spread.df1)},
                             {"df2", number(c.equal_spread.df2)},
                             {"p_value", number(c.equal_spread.p_value)}}}});
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
            {"cpu_kernels", info.cpu_kernels},
            {"shard", info.shard}}},
          {"replicas", run.results.size()},
          {"cells", sweep.cells.size()},
          {"groups", out_groups},
          {"comparisons", comparisons},
          {"bootstrap", {{"resamples", kBootstrapResamples}, {"method", "percentile"}, {"level", 0.95}}},
          {"config", config_to_json(sweep.config)}};
}

std::string summary_csv(const RunRecord& run, const std::vector<GroupSummary>& groups) {
  const Sweep& sweep = *run.sweep;
  const std::size_t n_stress = max_stress_factors(sweep);
  std::string csv = axes_header(sweep) + ",model,regime,replicas,diverged";
  for (const char* metric : {"iid_rmse", "ood_rmse"})
    for (const char* stat : kStatNames) csv += std::string(",") + metric + "_" + stat;
  for (std::size_t k = 1; k <= n_stress; ++k) {
    csv += ",stress" + std::to_string(k) + "_factor";
    for (const char* stat : kStatNames) csv += ",stress" + std::to_string(k) + "_rmse_" + stat;
  }
  for (const char* metric : {"iid_rmse", "ood_rmse"})
    for (const char* stat : kInferenceNames) csv += std::string(",") + metric + "_" + stat;
  for (const char* column :
       {"ood_minus_iid_mean", "ood_minus_iid_ci_low", "ood_minus_iid_ci_high", "spread_ratio", "spread_ratio_ci_low",
        "spread_ratio_ci_high", "spearman", "spearman_ci_low", "spearman_ci_high"})
    csv += std::string(",") + column;
  for (int p = 0; p < kPerceptronParams; ++p)
    for (const char* stat : {"_mean", "_std", "_true", "_optimum"}) csv += ',' + weight_column(p) + stat;
  // The stress factors' intervals come last: the columns before them stay where they were.
  for (std::size_t k = 1; k <= n_stress; ++k)
    for (const char* stat : kInferenceNames) csv += ",stress" + std::to_string(k) + "_rmse_" + stat;
  csv += '\n';
  for (const GroupSummary& g : groups) {
    csv += axes_row(sweep, g.cell) + ',' + to_string(g.model) + ',' + to_string(g.regime) + ',' +
           std::to_string(g.iid_rmse.count + g.diverged) + ',' + std::to_string(g.diverged);
    for (const Summary* s : {&g.iid_rmse, &g.ood_rmse})
      for (double x : stats_values(*s)) csv += ',' + maybe(x);
    const std::vector<double>& factors = sweep.cells[g.cell].config.data.stress_factors;
    for (std::size_t k = 0; k < n_stress; ++k) {
      if (k < factors.size()) {
        csv += ',' + shortest(factors[k]);
        for (double x : stats_values(g.stress_rmse[k])) csv += ',' + maybe(x);
      } else {
        csv += std::string(1 + std::size(kStatNames), ',');
      }
    }
    csv += inference_fields(g.iid_rmse, g.iid_inference) + inference_fields(g.ood_rmse, g.ood_inference);
    for (const Estimate* e : {&g.gap, &g.spread_ratio, &g.spearman})
      csv += ',' + maybe(e->value) + ',' + maybe(e->ci.low) + ',' + maybe(e->ci.high);
    const DataConfig& data = sweep.cells[g.cell].config.data;
    const double truth[kPerceptronParams] = {data.coefficients[0], data.coefficients[1], 0.0, data.intercept};
    for (int p = 0; p < kPerceptronParams; ++p) {
      if (g.weights.empty())
        csv += ",,,,";
      else
        csv += ',' + maybe(g.weights[p].mean) + ',' + maybe(g.weights[p].std) + ',' + exact(truth[p]) + ',' +
               exact(g.optimum[p]);
    }
    for (std::size_t k = 0; k < n_stress; ++k)
      csv += k < g.stress_inference.size() ? inference_fields(g.stress_rmse[k], g.stress_inference[k])
                                           : std::string(std::size(kInferenceNames), ',');
    csv += '\n';
  }
  return csv;
}

std::string comparisons_csv(const RunRecord& run, const std::vector<GroupSummary>& groups) {
  const Sweep& sweep = *run.sweep;
  std::string csv = axes_header(sweep) +
                    ",model,remedy,baseline,baseline_n,remedy_n,ood_mean_diff,ood_mean_diff_ci_low,"
                    "ood_mean_diff_ci_high,welch_df,welch_t,welch_p,ood_std_ratio,ood_std_ratio_ci_low,"
                    "ood_std_ratio_ci_high,brown_forsythe_f,brown_forsythe_df1,brown_forsythe_df2,brown_forsythe_p\n";
  for (const Comparison& c : compare_groups(groups)) {
    const WelchResult& d = c.mean_difference;
    const BrownForsytheResult& bf = c.equal_spread;
    csv += axes_row(sweep, c.cell) + ',' + to_string(c.model) + ',' + to_string(c.remedy) + ',' +
           to_string(Regime::baseline) + ',' + std::to_string(c.baseline_n) + ',' + std::to_string(c.remedy_n);
    for (double x : {d.difference, d.ci.low, d.ci.high, d.df, d.t, d.p_value, c.std_ratio.value, c.std_ratio.ci.low,
                     c.std_ratio.ci.high, bf.statistic, bf.df1, bf.df2, bf.p_value})
      csv += ',' + maybe(x);
    csv += '\n';
  }
  return csv;
}

namespace {

// The line that ends a block cut at `shown` of `total` rows.
std::string rows_left_out(std::size_t shown, std::size_t total, const char* what, const char* csv) {
  if (total <= shown) return "";
  return format("... %zu more of %zu %s: %s has them all\n", total - shown, total, what, csv);
}

}  // namespace

std::string summary_table(const RunRecord& run, const std::vector<GroupSummary>& groups,
                          const std::filesystem::path& dir, std::size_t max_rows) {
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
  // An undefined statistic (n = 1) prints as an em dash padded to the number's width (the
  // dash is one column but three bytes, so printf's byte-counted widths cannot pad it).
  // Every number fits its column (table_number), so the table stays aligned for any value.
  const auto columns = [](const std::string& s) { return s == "—" ? std::size_t{1} : s.size(); };
  const auto num = [&](double x, int w) {
    const std::string s = table_number(x, w);
    return std::string(static_cast<std::size_t>(w) - std::min<std::size_t>(static_cast<std::size_t>(w), columns(s)),
                       ' ') +
           s;
  };
  const auto left = [&](double x, int w) {
    const std::string s = table_number(x, w);
    return s + std::string(static_cast<std::size_t>(w) - std::min<std::size_t>(static_cast<std::size_t>(w), columns(s)),
                           ' ');
  };
  const auto range = [&](const Interval& i) {
    std::string r("[");
    return r.append(num(i.low, 7)).append(", ").append(num(i.high, 7)).append("]");
  };
  std::string t =
      cell_column("cell") + format("%-10s  %-20s  %4s  %-17s  %-17s  %-26s  %-18s  %-7s  %s\n", "model", "regime", "n",
                                   "IID RMSE", "OOD RMSE", "OOD min / median / max", "OOD std 95% CI", "rho", "w_x3");
  for (std::size_t i = 0; i < std::min(max_rows, groups.size()); ++i) {
    const GroupSummary& g = groups[i];
    const Summary &iid = g.iid_rmse, &ood = g.ood_rmse;
    t += cell_column(labels[g.cell]) +
         format("%-10s  %-20s  %4d  ", to_string(g.model), to_string(g.regime), iid.count) + num(iid.mean, 7) + " ± " +
         left(iid.std, 7) + "  " + num(ood.mean, 7) + " ± " + left(ood.std, 7) + "  " + num(ood.min, 7) + " / " +
         num(ood.median, 7) + " / " + num(ood.max, 7) + "  " + range(g.ood_inference.std_ci) + "  " +
         num(g.spearman.value, 7);
    t += g.weights.empty() ? "        -" : "  " + num(g.weights[2].mean, 7);
    if (g.diverged > 0) t += format("  %d/%d diverged", g.diverged, g.diverged + iid.count);
    t += '\n';
  }
  t += rows_left_out(max_rows, groups.size(), "groups", "summary.csv");
  // Perceptrons: learned weights next to the truth and the least-squares optimum.
  const auto weight_rows = static_cast<std::size_t>(
      std::count_if(groups.begin(), groups.end(), [](const GroupSummary& g) { return !g.weights.empty(); }));
  if (weight_rows > 0) {
    t += "\n" + cell_column("cell") +
         format("%-20s  %s\n", "regime", "perceptron weights: learned mean ± std (true, LS optimum)");
    // "(true, optimum)" of each weight, padded to the widest of its column so that the next
    // weight starts at the same column on every row (the truth differs across grid cells).
    std::vector<const GroupSummary*> rows;
    for (const GroupSummary& g : groups)
      if (!g.weights.empty() && rows.size() < max_rows) rows.push_back(&g);
    std::vector<std::array<std::string, kPerceptronParams>> refs(rows.size());
    std::array<std::size_t, kPerceptronParams> ref_width{};
    const auto text_width = [](const std::string& s) {  // an em dash is three bytes, one column
      return s.size() - 2 * static_cast<std::size_t>(std::count(s.begin(), s.end(), '\xE2'));
    };
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const DataConfig& data = sweep.cells[rows[r]->cell].config.data;
      const double truth[kPerceptronParams] = {data.coefficients[0], data.coefficients[1], 0.0, data.intercept};
      for (int p = 0; p < kPerceptronParams; ++p) {
        refs[r][p] = format("(%.4g, ", truth[p]) + table_number(rows[r]->optimum[p], 9) + ")";
        ref_width[p] = std::max(ref_width[p], text_width(refs[r][p]));
      }
    }
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const GroupSummary& g = *rows[r];
      t += cell_column(labels[g.cell]) + format("%-20s ", to_string(g.regime));
      for (int p = 0; p < kPerceptronParams; ++p) {
        t += format(" %s ", kWeightNames[p]) + num(g.weights[p].mean, 7) + " ± " + left(g.weights[p].std, 7) + " " +
             refs[r][p];
        if (p + 1 < kPerceptronParams) t += std::string(ref_width[p] - text_width(refs[r][p]), ' ');
      }
      t += '\n';
    }
    t += rows_left_out(max_rows, weight_rows, "perceptron groups", "summary.csv");
  }
  // Remedies against the baseline of their cell and model (OOD RMSE).
  const std::vector<Comparison> comparisons = compare_groups(groups);
  if (!comparisons.empty()) {
    t += "\n" + cell_column("cell") +
         format("%-10s  %-20s  %-30s  %-30s  %s\n", "model", "remedy vs baseline", "OOD mean diff [95% Welch CI]",
                "OOD std ratio [95% bootstrap]", "Brown-Forsythe p");
    for (std::size_t k = 0; k < std::min(max_rows, comparisons.size()); ++k) {
      const Comparison& c = comparisons[k];
      t += cell_column(labels[c.cell]) + format("%-10s  %-20s  ", to_string(c.model), to_string(c.remedy)) +
           num(c.mean_difference.difference, 11) + " " + range(c.mean_difference.ci) + "  " +
           num(c.std_ratio.value, 11) + " " + range(c.std_ratio.ci) + "  " +
           (std::isfinite(c.equal_spread.p_value) ? format("%.3g", c.equal_spread.p_value) : std::string("—")) + "\n";
    }
    t += rows_left_out(max_rows, comparisons.size(), "comparisons", "comparisons.csv");
  }
  // The stress curve: RMSE per stress factor, one line per group; the std beside the mean, as
  // the spread across seeds is what the study measures.
  if (max_stress_factors(sweep) > 0) {
    t += "\n" + cell_column("cell") +
         format("%-10s  %-20s  %s\n", "model", "regime", "stress RMSE (mean ± std) by factor");
    for (std::size_t i = 0; i < std::min(max_rows, groups.size()); ++i) {
      const GroupSummary& g = groups[i];
      t += cell_column(labels[g.cell]) + format("%-10s  %-20s", to_string(g.model), to_string(g.regime));
      const std::vector<double>& factors = sweep.cells[g.cell].config.data.stress_factors;
      for (std::size_t k = 0; k < g.stress_rmse.size(); ++k)
        t += format("  %s: ", shortest(factors[k]).c_str()) + num(g.stress_rmse[k].mean, 7) + " ± " +
             num(g.stress_rmse[k].std, 6);
      t += '\n';
    }
    t += rows_left_out(max_rows, groups.size(), "groups", "summary.csv");
  }
  const RunInfo& info = run.info;
  if (info.backend == "merge")  // no training: the shards' own tables say how they ran
    t += format("merged %zu replicas", run.results.size());
  else
    t += format("backend %s, %d %s, %.3f s %s, %zu replicas", info.backend.c_str(), info.threads,
                info.threads == 1 ? "thread" : "threads", info.wall_seconds, info.timed.c_str(), run.results.size());
  if (grid) t += format(" in %zu cells", sweep.cells.size());
  t += " -> " + dir.string() + "\n";
  return t;
}

void write_outputs(const std::filesystem::path& dir, const RunRecord& run, const std::vector<GroupSummary>& groups) {
  write_file_atomic(dir / "config.toml", config_to_toml(run.sweep->config));
  write_file_atomic(dir / "replicas.csv", replicas_csv(run));
  write_file_atomic(dir / "stress.csv", stress_csv(run));
  write_file_atomic(dir / "summary.csv", summary_csv(run, groups));
  write_file_atomic(dir / "comparisons.csv", comparisons_csv(run, groups));
  write_file_atomic(dir / "summary.json", summary_json(run, groups).dump(2) + "\n");  // last: marks completion
}

}  // namespace underspec
