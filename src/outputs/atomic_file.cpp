// Atomic output files and directories (see atomic_file.hpp).
#include "underspec/outputs/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace underspec {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& path, int err) {
  throw OutputError(what + " " + path.string() + ": " + std::strerror(err));
}

}  // namespace

void set_default_mode(const fs::path& path, unsigned mode) {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(path.c_str(), static_cast<mode_t>(mode) & ~mask);
}

// The temporary name beside `path` (mkstemp fills the X's): one directory, so rename is atomic.
static std::string temporary_template(const fs::path& path) { return path.string() + ".tmp-XXXXXX"; }

void probe_file_atomic(const fs::path& path) {
  std::string tmp = temporary_template(path);
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    throw OutputError("cannot create a file in " + dir.string() + ": " + std::strerror(errno));
  }
  ::close(fd);
  ::unlink(tmp.c_str());
}

void write_file_atomic(const fs::path& path, std::string_view contents) {
  // mkstemp gives a unique name in the target's directory, so rename stays on one filesystem.
  std::string tmp = temporary_template(path);
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail("cannot create a temporary file for", path, errno);
  std::FILE* f = ::fdopen(fd, "wb");
  if (!f) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("cannot open a temporary file for", path, err);
  }
  // fsync before the rename: after a power loss the name must not point at an empty file (a
  // summary.json that exists marks a run finished).
  const bool written =
      std::fwrite(contents.data(), 1, contents.size(), f) == contents.size() && std::fflush(f) == 0 && ::fsync(fd) == 0;
  const int err = errno;
  if (std::fclose(f) != 0 || !written) {
    ::unlink(tmp.c_str());
    fail("cannot write", path, written ? errno : err);
  }
  set_default_mode(tmp, 0666);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    fail("cannot rename into", path, ec.value());
  }
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {  // the rename itself
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void require_free_output_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec))
    throw OutputDirTaken("output path " + dir.string() + " exists and is not a directory");
  if (!fs::is_empty(dir, ec))
    throw OutputDirTaken("output directory " + dir.string() + " already exists and is not empty");
}

namespace {

// When `dir` is `NAME-K` and NAME is a directory, the names after it are NAME-(K+1), ...:
// default_output_dir skipped the names it saw taken, and one taken since must not become
// NAME-K-2.
void continue_numbering(const fs::path& dir, fs::path& base, int& suffix) {
  const std::string name = dir.filename().string();
  const auto dash = name.rfind('-');
  if (dash == std::string::npos || dash + 1 == name.size() || name.size() - dash > 9 ||
      name.find_first_not_of("0123456789", dash + 1) != std::string::npos)
    return;
  std::error_code ec;
  if (!fs::is_directory(dir.parent_path() / name.substr(0, dash), ec)) return;
  base = dir.parent_path() / name.substr(0, dash);
  suffix = std::stoi(name.substr(dash + 1)) + 1;
}

}  // namespace

bool make_output_dir(fs::path& dir, bool rename_if_taken) {
  std::error_code ec;
  // Parents only for a directory still to make, and as the path resolves ("new/.." is ".":
  // nothing to create), so that a refused --out leaves nothing behind.
  const fs::path normal = dir.lexically_normal();
  if (normal.has_parent_path() && !fs::exists(normal, ec))
    fs::create_directories(normal.parent_path(), ec);  // else create_directory says why
  fs::path base = dir;
  int suffix = 2;
  if (rename_if_taken) continue_numbering(dir, base, suffix);
  for (; !fs::create_directory(dir, ec); ++suffix) {
    if (ec) throw OutputError("cannot create the output directory " + dir.string() + ": " + ec.message());
    if (!rename_if_taken) return false;
    dir = base.string() + "-" + std::to_string(suffix);
  }
  return true;
}

}  // namespace underspec
