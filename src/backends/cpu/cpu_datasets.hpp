// The CPU backend's datasets for a set of replicas: each distinct training set (data
// settings x regime, or one per replica with data.per_replica) and test set (data
// settings x domain) is generated once and shared by every replica and cell that uses it.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "underspec/sweep/dataset.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {

// The test sets one replica is scored on: IID, OOD, then one per stress factor.
struct TestSets {
  std::vector<const Dataset*> sets;
};

class CpuDatasets {
 public:
  // Generates (in parallel over datasets) what `replicas` need, except per-replica
  // training sets, which train_set() makes on demand.
  CpuDatasets(const Sweep& sweep, std::span<const ReplicaSpec> replicas, int threads);

  const TestSets& test_sets(std::uint32_t cell) const { return tests_.at(cell); }
  // The shared training set of a replica, or null with data.per_replica.
  const Dataset* shared_train_set(const ReplicaSpec& replica) const;

 private:
  std::map<std::string, std::unique_ptr<Dataset>> sets_;  // by generation inputs
  std::map<std::uint32_t, TestSets> tests_;               // by cell
  std::map<std::pair<std::uint32_t, Regime>, const Dataset*> train_;
};

}  // namespace underspec
