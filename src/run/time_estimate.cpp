// Run-time estimates (see time_estimate.hpp): calibrated by running the real code (the CPU
// backend, bootstrap_interval) on small samples, so they follow whatever speed the code has.
#include "underspec/run/time_estimate.hpp"

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <stdexcept>

#include "underspec/backends/backend.hpp"
#include "underspec/benchmark/benchmark.hpp"
#include "underspec/run/progress.hpp"
#include "underspec/stats/bootstrap.hpp"

namespace underspec {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Calibration budget: the trainings share ~0.2 s (a kind gets 4-40 ms), the bootstrap ~0.1 s.
constexpr double kTrainingBudget = 0.2, kKindMin = 0.004, kKindMax = 0.04;
constexpr int kReplicas = 4;  // per calibration run
// The bootstrap is timed at two group sizes (a line through them). A group of at least
// kLargeGroup replicas that runs alone has its resamples spread over the threads
// (bootstrap_interval does so above ~1050 values).
constexpr int kSmallGroup = 32, kLargeSerialGroup = 384, kLargeGroup = 1050;
// Groups from kProbeFrom values get the caches' factor, probed at their size up to kProbeGroup.
constexpr std::uint32_t kProbeFrom = 2048, kProbeGroup = 1u << 20;
constexpr BootstrapStatistic kStatistics[] = {BootstrapStatistic::std_dev, BootstrapStatistic::paired_std_ratio,
                                              BootstrapStatistic::spearman, BootstrapStatistic::two_sample_std_ratio};

int kind_index(const std::vector<TimeCalibration::Rate>& rates, const TrainingKind& kind) {
  for (std::size_t i = 0; i < rates.size(); ++i)
    if (rates[i].kind == kind) return static_cast<int>(i);
  return -1;
}

// How differently two kinds cost per unit of replica_work (0: the same kind). replica_work
// already scales with the network's size, so what is left is mostly the model, the batch
// (Adam steps per sample), the regime's noise draws and per-replica data; a doubling of the
// batch or of the parameters counts one.
double kind_distance(const TrainingKind& a, const TrainingKind& b) {
  const auto params = [](const TrainingKind& k) {
    double p = 0;
    for (std::size_t i = 1; i < k.widths.size(); ++i) p += (k.widths[i - 1] + 1.0) * k.widths[i];
    return p;
  };
  return 4.0 * (a.model != b.model) + 1.0 * (a.regime != b.regime) + 1.0 * (a.per_replica != b.per_replica) +
         std::abs(std::log2(std::max(1, a.batch_size) / static_cast<double>(std::max(1, b.batch_size)))) +
         std::abs(std::log2((params(a) + 200) / (params(b) + 200))) + 0.5 * (a.widths.size() != b.widths.size());
}

int nearest_kind(const std::vector<TimeCalibration::Rate>& rates, const TrainingKind& kind) {
  int best = -1;
  double best_distance = 0;
  for (std::size_t i = 0; i < rates.size(); ++i)
    if (const double d = kind_distance(rates[i].kind, kind); best < 0 || d < best_distance)
      best = static_cast<int>(i), best_distance = d;
  return best;
}

// At most `n` of `kinds`, spread over them: the first, then each time the one farthest from
// those taken (in the sweep's order, so deterministic).
template <typename T>
std::vector<T> spread_sample(const std::vector<T>& kinds, std::size_t n) {
  if (kinds.size() <= n) return kinds;
  std::vector<T> taken{kinds.front()};
  std::vector<double> distance(kinds.size());
  for (std::size_t i = 0; i < kinds.size(); ++i) distance[i] = kind_distance(kinds[i].first, kinds.front().first);
  while (taken.size() < n) {
    const auto far = static_cast<std::size_t>(std::max_element(distance.begin(), distance.end()) - distance.begin());
    taken.push_back(kinds[far]);
    for (std::size_t i = 0; i < kinds.size(); ++i)
      distance[i] = std::min(distance[i], kind_distance(kinds[i].first, kinds[far].first));
  }
  return taken;
}

// Replicas of `range` in runs of one (cell, model, regime), as summarize_groups sees them.
struct GroupSpan {
  std::uint32_t begin, end;
};
std::vector<GroupSpan> group_spans(const Sweep& sweep, ShardRange range) {
  std::vector<GroupSpan> spans;
  for (std::uint32_t id = range.begin; id < range.end;) {
    const ReplicaSpec& first = sweep.replicas[id];
    std::uint32_t end = id;
    while (end < range.end && sweep.replicas[end].cell == first.cell && sweep.replicas[end].model == first.model &&
           sweep.replicas[end].regime == first.regime)
      ++end;
    spans.push_back({id, end});
    id = end;
  }
  return spans;
}

// A config that trains `replicas` replicas of `kind` (from `base`, a cell's config) on
// `n_train` samples for `epochs` epochs, scoring test sets of at most n_train samples.
ExperimentConfig sample_config(const ExperimentConfig& base, const TrainingKind& kind, int replicas,
                               std::int64_t n_train, int epochs) {
  ExperimentConfig c = base;
  c.sweep.grid.clear();
  c.sweep.models = {kind.model};
  c.sweep.regimes = {kind.regime};
  c.sweep.seeds = replicas;
  c.sweep.seeds_per_model = {0, 0};
  c.data.n_train = n_train;
  c.data.n_test = std::min(base.data.n_test, n_train);
  c.train.epochs = epochs;
  return c;
}

double sweep_work(const Sweep& sweep) {
  double work = 0;
  for (const ReplicaSpec& r : sweep.replicas) work += replica_work(sweep.config_of(r), r.model);
  return work;
}

// CPU time of the calling thread: what the work costs, without the time spent waiting for a
// core that other processes hold (the VM is shared: wall times of short runs jump by the
// scheduler's 10-20 ms slices).
double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Seconds to train and score every replica of `config` on `backend` (one thread: it runs on
// the calling thread), and their replica_work.
std::pair<double, double> time_training(Backend& backend, const ExperimentConfig& config) {
  const Sweep sweep = make_sweep(config);
  const double start = thread_seconds();
  backend.train_replicas(sweep, sweep.replicas);
  return {thread_seconds() - start, sweep_work(sweep)};
}

// The cost of `kind` on one thread: per unit of replica_work, from the difference between a
// short run and a longer one (of about `target` seconds, at least 4x the samples), and what is
// left of the short run per replica (workspace, initialisation: most of a short run of a wide
// network, little of a real one). A few replicas share the datasets, as a cell's replicas do.
TimeCalibration::Rate calibrate_kind(Backend& backend, const ExperimentConfig& base, const TrainingKind& kind,
                                     double target) {
  const std::int64_t batch = std::max(1, base.train.batch_size);
  // The first run: ~256 samples a replica, fewer for wide networks (~2e6 parameter-samples).
  const double params = param_count(net_shape(base, kind.model));
  const auto small = static_cast<std::int64_t>(std::clamp(2e6 / (params + 200), 1.0, 256.0));
  const std::int64_t first_n = std::min<std::int64_t>(base.data.n_train, std::max<std::int64_t>(batch, small));
  const auto [t1, w1] = time_training(backend, sample_config(base, kind, kReplicas, first_n, 1));
  // Samples per replica (training samples x epochs) that fill `target` at the first run's rate.
  const double samples = static_cast<double>(first_n) * std::max(4.0, target / std::max(t1, 1e-6));
  std::int64_t n_train = base.data.n_train;
  int epochs = 1;
  if (samples >= static_cast<double>(n_train)) {
    epochs = static_cast<int>(
        std::clamp(samples / static_cast<double>(n_train), 1.0, static_cast<double>(std::max(1, base.train.epochs))));
  } else {
    n_train = std::clamp<std::int64_t>(static_cast<std::int64_t>(samples), std::min(batch, n_train), n_train);
  }
  const auto [t2, w2] = time_training(backend, sample_config(base, kind, kReplicas, n_train, epochs));
  TimeCalibration::Rate rate{kind, t2 / std::max(w2, 1e-12), 0};
  if (w2 > 1.5 * w1 && t2 > t1) {
    rate.seconds_per_work = (t2 - t1) / (w2 - w1);
    rate.seconds_per_replica = std::max(0.0, (t1 - rate.seconds_per_work * w1) / kReplicas);
  } else {
    // Replicas as short as the first run (a few samples, one epoch): the run's own fixed cost
    // (its data sets, the backend's set-up) outweighs a few replicas (10^6 perceptrons on 64
    // samples were estimated 12x too slow). More replicas of the same size give the cost of
    // one apart from it.
    const int more = static_cast<int>(std::clamp(kReplicas * target / std::max(t2, 1e-6), 4.0 * kReplicas, 4096.0));
    const auto [t3, w3] = time_training(backend, sample_config(base, kind, more, n_train, epochs));
    if (w3 > 1.5 * w2 && t3 > t2) rate.seconds_per_work = (t3 - t2) / (w3 - w2);
    // That cost is mostly the replica's own (workspace, initialisation), not its work: charged
    // per unit of work it made replicas with large test sets (64 training samples, 10^5 test
    // samples) 4-6x too slow. Larger test sets, which the training cannot give, split the two
    // (grown to about the target's time, at least 2.5x: more costs wide networks seconds).
    const std::int64_t n_test = std::min(base.data.n_test, n_train);
    const auto big_test = static_cast<std::int64_t>(
        std::min<double>(static_cast<double>(base.data.n_test),
                         static_cast<double>(n_test) * std::max(2.5, 3 * target / std::max(t2, 1e-6))));
    if (rate.seconds_per_work > 0 && big_test > 2 * n_test) {
      ExperimentConfig c = sample_config(base, kind, kReplicas, n_train, epochs);
      c.data.n_test = big_test;
      const auto [t4, w4] = time_training(backend, c);
      if (w4 > 1.5 * w2 && t4 > t2) {
        const double per_replica = rate.seconds_per_work * w2 / kReplicas;  // as measured above
        rate.seconds_per_work = (t4 - t2) / (w4 - w2);
        rate.seconds_per_replica = std::max(0.0, per_replica - rate.seconds_per_work * w2 / kReplicas);
      }
    }
  }
  return rate;
}

// A group of n distinct values in random order, and their orders (what bootstrap_interval
// sorts first), made in O(n): the k-th smallest value is put at a random index.
struct SyntheticGroup {
  std::vector<double> x, y;
  std::vector<int> x_order, y_order;
  explicit SyntheticGroup(int n) : x(static_cast<std::size_t>(n)), y(x.size()), x_order(x.size()), y_order(x.size()) {
    std::uint64_t state = 0x9E3779B97F4A7C15ull;
    const auto next = [&] {  // splitmix64
      state += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = state;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      return z ^ (z >> 31);
    };
    const auto fill = [&](std::vector<double>& v, std::vector<int>& order) {
      std::iota(order.begin(), order.end(), 0);
      for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[next() % i]);  // Fisher-Yates
      for (std::size_t k = 0; k < order.size(); ++k)
        v[static_cast<std::size_t>(order[k])] = 1.0 + 1e-3 * static_cast<double>(k);
    };
    fill(x, x_order);
    fill(y, y_order);
  }
};

// The faster of two runs (thread CPU time) of one bootstrap interval of `statistic` on n
// values (each side), on this thread alone.
double time_bootstrap(BootstrapStatistic statistic, int n) {
  const SyntheticGroup g(n);
  double best = 1e300;
  for (int k = 0; k < 2; ++k) {
    const double start = thread_seconds();
    bootstrap_interval(statistic, g.x, g.y, bootstrap_key(0, 0, 0, statistic));
    best = std::min(best, thread_seconds() - start);
  }
  return best;
}

// Thread CPU seconds per value of one resample of `statistic` on `g` (the kernel
// bootstrap_interval runs 4000 times, bootstrap.hpp), over `resamples` resamples.
double resample_seconds_per_value(BootstrapStatistic statistic, const SyntheticGroup& g, int resamples) {
  const int n = static_cast<int>(g.x.size());
  const BootstrapData data{g.x.data(), n, g.y.data(), n, g.x_order.data(), g.y_order.data()};
  std::vector<int> counts(2 * g.x.size());
  std::vector<double> ranks(counts.size());
  double sink = 0;
  const double start = thread_seconds();
  for (int r = 0; r < resamples; ++r)
    sink += resample_statistic(statistic, data, bootstrap_key(0, 0, 0, statistic), static_cast<std::uint32_t>(r),
                               BootstrapScratch{counts.data(), ranks.data()});
  const double seconds = thread_seconds() - start;
  volatile double keep = sink;  // the resamples are the work: not to be optimised away
  (void)keep;
  return seconds / resamples / n;
}

// The bootstrap's cost on one thread: a line through two group sizes. A resample's counts
// are random increments over the group, so once a group outgrows the caches each value costs
// more (measured: 3x for a std, 9x for Spearman's ranks at 10^6 values): for a sweep whose
// largest group is larger than kLargeSerialGroup, one resample at that size (at most
// kProbeGroup) against resamples at kLargeSerialGroup gives the factor.
void calibrate_bootstrap(TimeCalibration& c, std::uint32_t largest_group) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);  // the calls run here, unsplit, so their thread CPU time is their cost
  for (std::size_t s = 0; s < std::size(kStatistics); ++s) {
    const double small = time_bootstrap(kStatistics[s], kSmallGroup);
    const double large = time_bootstrap(kStatistics[s], kLargeSerialGroup);
    c.stat_per_value[s] = std::max(0.0, (large - small) / (kLargeSerialGroup - kSmallGroup));
    c.stat_fixed[s] = std::max(0.0, small - c.stat_per_value[s] * kSmallGroup);
  }
  omp_set_num_threads(threads);
  c.probe_group = 0;
  c.probe_factor = {1, 1, 1, 1};
  if (largest_group < kProbeFrom) return;
  c.probe_group = static_cast<int>(std::min<std::uint32_t>(largest_group, kProbeGroup));
  const int resamples = std::max(1, (1 << 17) / c.probe_group);
  const SyntheticGroup base_group(kLargeSerialGroup), probe(c.probe_group);
  // std_dev stands for the statistics of counts and sums (the std ratios); Spearman has its own.
  for (const BootstrapStatistic statistic : {BootstrapStatistic::std_dev, BootstrapStatistic::spearman}) {
    const double base = resample_seconds_per_value(statistic, base_group, 256);
    const double at = resample_seconds_per_value(statistic, probe, resamples);
    const double factor = std::max(1.0, at / std::max(base, 1e-12));
    if (statistic == BootstrapStatistic::spearman)
      c.probe_factor[2] = factor;
    else
      c.probe_factor[0] = c.probe_factor[1] = c.probe_factor[3] = factor;
  }
}

// Seconds of one bootstrap interval of statistic s on n values (each side), on one thread:
// the line, times the cache factor, rising (in log n) from 1 at kLargeSerialGroup to the
// probe's at its size.
double bootstrap_seconds(const TimeCalibration& c, std::size_t s, double n) {
  if (n < 2) return 0.0;
  double factor = 1;
  if (c.probe_group > kLargeSerialGroup && n > kLargeSerialGroup) {
    const double t = std::log(n / kLargeSerialGroup) / std::log(static_cast<double>(c.probe_group) / kLargeSerialGroup);
    factor = 1 + (c.probe_factor[s] - 1) * std::min(1.0, t);
  }
  return c.stat_fixed[s] + c.stat_per_value[s] * n * factor;
}

}  // namespace

TrainingKind training_kind(const ExperimentConfig& config, ModelKind model, Regime regime) {
  const NetShape shape = net_shape(config, model);
  TrainingKind k;
  k.model = model;
  k.widths.assign(shape.width, shape.width + shape.n_layers + 1);
  k.batch_size = config.train.batch_size;
  k.regime = regime;
  k.per_replica = config.data.per_replica;
  return k;
}

TimeCalibration calibrate_cpu_time(const Sweep& sweep, ShardRange range, int threads, const std::vector<bool>& done) {
  const auto start = Clock::now();
  TimeCalibration c;
  c.threads = threads > 0 ? threads : omp_get_max_threads();
  c.cpus = benchmark::usable_cpus();  // more threads than that add nothing
  c.parallel = std::min(c.threads, c.cpus);
  const std::vector<double> load = benchmark::load_average();
  c.load = load.empty() ? -1 : load[0];
  // One thread, timed in thread CPU time: the cost of the work, scaled to the run's threads
  // by the estimate (small networks fit in cache, so the threads do not slow each other).
  const std::unique_ptr<Backend> backend = make_cpu_backend(1);
  // The kinds of training still to do, each with the config of the first cell that has it.
  std::vector<std::pair<TrainingKind, const ExperimentConfig*>> kinds;
  for (const GroupSpan& g : group_spans(sweep, range)) {
    bool todo = done.empty();
    for (std::uint32_t id = g.begin; id < g.end && !todo; ++id) todo = !done[id - range.begin];
    if (!todo) continue;
    const ReplicaSpec& r = sweep.replicas[g.begin];
    TrainingKind kind = training_kind(sweep.config_of(r), r.model, r.regime);
    if (std::none_of(kinds.begin(), kinds.end(), [&](const auto& k) { return k.first == kind; }))
      kinds.emplace_back(std::move(kind), &sweep.config_of(r));
  }
  c.kinds = static_cast<int>(kinds.size());
  c.sampled = kinds.size() > static_cast<std::size_t>(kMaxCalibratedKinds);
  kinds = spread_sample(kinds, kMaxCalibratedKinds);
  const double target =
      std::clamp(kTrainingBudget / std::max<double>(1.0, static_cast<double>(kinds.size())), kKindMin, kKindMax);
  if (!kinds.empty()) {  // untimed: the first allocations' page faults
    const auto& [kind, config] = kinds.front();
    const Sweep warm = make_sweep(sample_config(*config, kind, 1, std::max(1, config->train.batch_size), 1));
    backend->train_replicas(warm, warm.replicas);
  }
  for (const auto& [kind, config] : kinds) c.training.push_back(calibrate_kind(*backend, *config, kind, target));
  std::uint32_t largest_group = 0;
  for (const GroupSpan& g : group_spans(sweep, range)) largest_group = std::max(largest_group, g.end - g.begin);
  calibrate_bootstrap(c, largest_group);
  c.seconds = seconds_since(start);
  return c;
}

TimeEstimate estimate_time(const TimeCalibration& c, const Sweep& sweep, ShardRange range,
                           const std::vector<bool>& done) {
  TimeEstimate e;
  e.estimated = true;
  e.device = "cpu";
  e.threads = c.threads;
  e.training_kinds = static_cast<int>(c.training.size());
  e.kinds = std::max(c.kinds, e.training_kinds);
  e.calibration_seconds = c.seconds;
  e.cpus = c.cpus;
  e.load = c.load;
  const std::vector<GroupSpan> spans = group_spans(sweep, range);
  // Training: replicas are dealt one at a time to the threads, so the threads' share of the
  // sum, unless one replica alone takes longer.
  double sum = 0, longest = 0;
  for (const GroupSpan& g : spans) {
    const ReplicaSpec& first = sweep.replicas[g.begin];
    const ExperimentConfig& config = sweep.config_of(first);
    std::uint32_t todo = 0;
    for (std::uint32_t id = g.begin; id < g.end; ++id) todo += done.empty() || !done[id - range.begin];
    if (todo == 0) continue;
    const TrainingKind kind = training_kind(config, first.model, first.regime);
    int k = kind_index(c.training, kind);
    if (k < 0 && c.sampled) k = nearest_kind(c.training, kind);
    if (k < 0) throw std::logic_error("estimate_time: a kind of training the calibration did not time");
    const TimeCalibration::Rate& rate = c.training[static_cast<std::size_t>(k)];
    const double one = rate.seconds_per_replica + replica_work(config, first.model) * rate.seconds_per_work;
    sum += one * todo;
    longest = std::max(longest, one);
  }
  e.training_seconds = std::max(sum / std::max(1, c.parallel), longest);
  // Statistics: per group the std intervals (IID, OOD, each stress factor), the paired std
  // ratio and Spearman's rho, and against its cell's baseline (if in this run) the two-sample ratio.
  // With at least as many groups as threads the groups share the threads; with fewer they
  // run one after another, a large group's bootstrap on every thread.
  std::vector<double> costs;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const ReplicaSpec& first = sweep.replicas[spans[i].begin];
    const double n = spans[i].end - spans[i].begin;
    const double stds = 2.0 + static_cast<double>(sweep.cells[first.cell].config.data.stress_factors.size());
    double cost = stds * bootstrap_seconds(c, 0, n) + bootstrap_seconds(c, 1, n) + bootstrap_seconds(c, 2, n);
    // Its baseline: the same cell's and model's, listed before it.
    for (std::size_t b = i; first.regime != Regime::baseline && b-- > 0;) {
      const ReplicaSpec& base = sweep.replicas[spans[b].begin];
      if (base.cell != first.cell || base.model != first.model) break;
      if (base.regime == Regime::baseline) {
        cost += bootstrap_seconds(c, 3, 0.5 * (n + (spans[b].end - spans[b].begin)));
        break;
      }
    }
    costs.push_back(cost);
  }
  double stats = 0;
  if (costs.size() >= static_cast<std::size_t>(c.threads)) {
    double total = 0, largest = 0;
    for (double x : costs) total += x, largest = std::max(largest, x);
    stats = std::max(total / c.parallel, largest);
  } else {  // bootstrap_interval spreads a large group's resamples over the threads
    for (std::size_t i = 0; i < costs.size(); ++i)
      stats += spans[i].end - spans[i].begin >= kLargeGroup ? costs[i] / c.parallel : costs[i];
  }
  e.statistics_seconds = stats;
  return e;
}

TimeEstimate estimate_run_time(const Sweep& sweep, ShardRange range, const std::string& device, int threads,
                               const std::vector<bool>& done) {
  std::string why;
  if (device == "cuda" || device == "auto") {
    const bool gpu = cuda_backend_available(&why);
    if (device == "cuda" || gpu) {
      TimeEstimate e;
      e.device = "cuda";
      e.why_not = gpu ? "the CUDA backend's speed is not calibrated by plan (no GPU speeds are guessed); "
                        "--device cpu estimates the CPU"
                      : "no GPU here to calibrate on (" + why + ")";
      return e;
    }
  }
  return estimate_time(calibrate_cpu_time(sweep, range, threads, done), sweep, range, done);
}

std::string format_estimate_duration(double seconds) {
  char buf[64];
  if (!std::isfinite(seconds) || seconds < 0) return "unknown";
  if (seconds < 0.1) return "under 0.1 s";
  const double s = std::round(seconds);
  if (seconds < 9.95) {
    std::snprintf(buf, sizeof buf, "about %.1f s", seconds);
  } else if (s < 60) {
    std::snprintf(buf, sizeof buf, "about %.0f s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "about %.0f min %02.0f s", std::floor(s / 60), std::fmod(s, 60));
  } else if (s < 86400 * 3) {
    const double m = std::round(seconds / 60);
    std::snprintf(buf, sizeof buf, "about %.0f h %02.0f min", std::floor(m / 60), std::fmod(m, 60));
  } else {
    std::snprintf(buf, sizeof buf, "about %.1f days", seconds / 86400);
  }
  return buf;
}

double busy_slowdown(const TimeEstimate& e) {
  if (e.load < 0 || e.cpus < 1) return 1;
  // The run's threads and the load's processes share the CPUs evenly.
  return std::max(1.0, (e.load + std::min(e.threads, e.cpus)) / e.cpus);
}

std::string describe_time(const TimeEstimate& e) {
  if (!e.estimated) return "  time         not estimated for --device " + e.device + ": " + e.why_not + "\n";
  const std::string threads = std::to_string(e.threads) + (e.threads == 1 ? " thread" : " threads");
  std::string s = "  time         " + format_estimate_duration(e.total()) + " on the CPU with " + threads;
  s += ": training " + format_estimate_duration(e.training_seconds);
  s += ", statistics " + format_estimate_duration(e.statistics_seconds);
  char how[160];
  std::snprintf(how, sizeof how, "%.2f s", e.calibration_seconds);
  s += std::string("\n               an estimate, calibrated here in ") + how + " (short trainings of " +
       (e.kinds > e.training_kinds ? std::to_string(e.training_kinds) + " of " + std::to_string(e.kinds) +
                                         " kinds, the others at the nearest one's rate"
                                   : std::to_string(e.training_kinds) + (e.training_kinds == 1 ? " kind" : " kinds")) +
       ", the bootstrap on synthetic groups); ±30% on a quiet machine; writing the outputs and the report not "
       "included\n";
  // Other processes on the CPUs slow the run by about their share; the calibration (CPU time)
  // does not see them.
  if (const double slowdown = busy_slowdown(e); slowdown > 1.1) {
    char busy[200];
    std::snprintf(busy, sizeof busy, "               the machine is busy now (load %.1f on %d CPUs): at that load, ",
                  e.load, e.cpus);
    s += busy + format_estimate_duration(e.total() * slowdown) + "\n";
  }
  return s;
}

}  // namespace underspec
