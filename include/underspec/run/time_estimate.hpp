// How long a run will take, for `underspec plan` and `underspec slurm --time`: measured on
// this machine at plan time, never a built-in speed. A calibration times a few short
// trainings of every kind of training in the sweep on the CPU backend (with the run's
// thread count) and the bootstrap statistics on synthetic groups; an estimate scales those
// rates by the work the sweep holds (replica_work, and the groups' sizes).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "underspec/sweep/sweep.hpp"

namespace underspec {

// What makes one replica's training cost differ per unit of replica_work: the network, the
// batch (steps per sample), the regime (augmentation draws noise every step) and whether
// each replica makes its own training set.
struct TrainingKind {
  ModelKind model = ModelKind::perceptron;
  std::vector<int> widths;  // NetShape's, inputs to output
  int batch_size = 0;
  Regime regime = Regime::baseline;
  bool per_replica = false;
  bool operator==(const TrainingKind&) const = default;
};
TrainingKind training_kind(const ExperimentConfig& config, ModelKind model, Regime regime);

struct TimeCalibration {
  int threads = 1;   // the run's
  int parallel = 1;  // of them, how many can run at once: at most the CPUs this process may use
  int cpus = 1;      // the CPUs this process may use
  double load = -1;  // the 1-minute load average when calibrated (-1: unknown)
  struct Rate {
    TrainingKind kind;
    double seconds_per_work = 0;     // on one thread (its CPU time)
    double seconds_per_replica = 0;  // and what a replica costs besides
  };
  std::vector<Rate> training;
  // The kinds of training in the sweep; more than kMaxCalibratedKinds are sampled (the
  // most different ones) and the others take the rate of the nearest sampled kind.
  int kinds = 0;
  bool sampled = false;
  // One bootstrap interval of each BootstrapStatistic on n values (two-sample: n each) on
  // one thread: fixed + per_value * n seconds.
  std::array<double, 4> stat_fixed{}, stat_per_value{};
  // Large groups outgrow the caches: per value, a resample on probe_group values costs
  // probe_factor times one on a few hundred (0 / 1: not probed, no group that large).
  int probe_group = 0;
  std::array<double, 4> probe_factor{1, 1, 1, 1};
  double seconds = 0;  // the calibration's own wall time
};

// At most this many kinds of training are timed: each costs a few ms however short, so a
// grid of hundreds of kinds (batch sizes x widths x regimes) took seconds to plan.
inline constexpr int kMaxCalibratedKinds = 48;

// Calibrates what `range` of `sweep` needs (the kinds of training of the replicas not yet
// `done`; the bootstrap) on the CPU backend with `threads` threads (<= 0: all). Takes a
// fraction of a second.
TimeCalibration calibrate_cpu_time(const Sweep& sweep, ShardRange range, int threads,
                                   const std::vector<bool>& done = {});

struct TimeEstimate {
  bool estimated = false;
  std::string device;             // the backend it is for, e.g. "cpu"
  std::string why_not;            // when not estimated
  double training_seconds = 0;    // the replicas still to train
  double statistics_seconds = 0;  // every group's bootstrap intervals (summarize_groups)
  int threads = 0;
  int training_kinds = 0;  // calibrated
  int kinds = 0;           // in the sweep (more than training_kinds when sampled)
  int cpus = 1;
  double load = -1;  // the machine's 1-minute load average then (-1: unknown)
  double calibration_seconds = 0;
  double total() const { return training_seconds + statistics_seconds; }
};

// The estimate from a calibration (deterministic: the same calibration gives the same
// numbers; tests compare sweeps with one calibration). A kind the calibration lacks
// throws std::logic_error, unless it sampled the kinds (then: the nearest one's rate).
TimeEstimate estimate_time(const TimeCalibration& calibration, const Sweep& sweep, ShardRange range,
                           const std::vector<bool>& done = {});

// For the backend `device` (auto | cpu | cuda) would pick: calibrated and estimated on the
// CPU; for CUDA not estimated (no GPU here to calibrate on, or GPU speeds not calibrated).
TimeEstimate estimate_run_time(const Sweep& sweep, ShardRange range, const std::string& device, int threads,
                               const std::vector<bool>& done = {});

// "about 0.4 s", "about 2 min 10 s", "about 1 h 05 min", "under 0.1 s".
std::string format_estimate_duration(double seconds);
// How much longer the run takes if the machine stays as loaded as when it was calibrated:
// (load + the run's threads) / CPUs, at least 1.
double busy_slowdown(const TimeEstimate& estimate);
// The plan's lines: the total, its split, how it was made (and the load's effect).
std::string describe_time(const TimeEstimate& estimate);

}  // namespace underspec
