// Run metadata (see run_info.hpp).
#include "underspec/run/run_info.hpp"

#include <unistd.h>

#include <ctime>

#include "underspec_git_commit.h"  // UNDERSPEC_GIT_COMMIT, written at every build (cmake/git_commit.cmake)

namespace underspec {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&s, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string git_commit() { return UNDERSPEC_GIT_COMMIT; }

}  // namespace underspec
