// `underspec score`: re-scores a finished run's saved parameters (params.npy) on new test
// domains (data.stress_factors, data.iid_factor, data.ood_factor, data.n_test), without
// training, into a new output directory.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "underspec/run/run.hpp"

namespace underspec {

int score_run(const std::filesystem::path& dir, const std::vector<std::string>& overrides, const RunOptions& options,
              std::ostream& out, std::ostream& err);

}  // namespace underspec
