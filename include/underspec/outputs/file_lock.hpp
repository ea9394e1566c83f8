// An exclusive flock on a file or a directory for the lifetime of the object: what keeps two
// underspec processes out of one run directory. The kernel drops it when the process ends,
// kill -9 included; `underspec status` probes such locks with a shared lock held for an instant.
#pragma once

#include <filesystem>
#include <string>

namespace underspec {

class ExclusiveLock {
 public:
  // Opens `path` with `open_flags` (O_RDONLY, | O_DIRECTORY for a directory) and locks it,
  // trying `retries` more times 10 ms apart (a status probe holds it for an instant). Throws
  // UsageError "output directory <dir> is in use by another underspec run" when another
  // process holds it. A path that cannot be opened is not locked (the caller's next step fails
  // with its own message).
  ExclusiveLock(const std::filesystem::path& path, int open_flags, const std::filesystem::path& dir, int retries);
  ~ExclusiveLock();
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace underspec
