// See file_lock.hpp.
#include "underspec/outputs/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "underspec/run/run.hpp"

namespace underspec {

ExclusiveLock::ExclusiveLock(const std::filesystem::path& path, int open_flags, const std::filesystem::path& dir,
                             int retries)
    : fd_(::open(path.c_str(), open_flags | O_CLOEXEC)) {
  if (fd_ < 0) return;
  bool taken = ::flock(fd_, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  for (int attempt = 0; taken && attempt < retries; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    taken = ::flock(fd_, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  }
  if (taken) {
    ::close(fd_);
    fd_ = -1;
    throw UsageError("output directory " + dir.string() + " is in use by another underspec run");
  }
}

ExclusiveLock::~ExclusiveLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace underspec
