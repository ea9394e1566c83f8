// Facts about the run itself for the outputs' metadata: host, time, underspec's commit.
#pragma once

#include <chrono>
#include <string>

namespace underspec {

std::string host_name();
std::string utc_timestamp(std::chrono::system_clock::time_point t);  // 2026-11-29T21:30:00Z
std::string git_commit();  // of the source tree underspec was built from, or "unknown"

}  // namespace underspec
