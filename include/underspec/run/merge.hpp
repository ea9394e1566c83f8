// `underspec merge`: the shards of one sweep -> the outputs a single run writes, byte for
// byte (except RunInfo). Refuses shards of different configs, and names the replicas that
// are missing or present twice.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "underspec/run/run.hpp"

namespace underspec {

// Returns the exit status. Bad input: UsageError (exit 2) naming the shard and the problem.
int merge_runs(const std::vector<std::string>& dirs, const std::filesystem::path& out, const RunOptions& options,
               std::ostream& stdout_stream, std::ostream& err);

}  // namespace underspec
