// Atomic output files and directories (see atomic_file.hpp).
#include "underspec/outputs/atomic_file.hpp"

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

// mkstemp/mkdtemp create 0600/0700; give results the modes a plain create would (umask).
void set_default_mode(const fs::path& path, mode_t mode) {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(path.c_str(), mode & ~mask);
}

}  // namespace

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
  const bool written = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
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
}

void require_free_output_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) throw OutputError("output path " + dir.string() + " exists and is not a directory");
  if (!fs::is_empty(dir, ec))
    throw OutputError("output directory " + dir.string() + " already exists and is not empty");
}

StagingDir::StagingDir(fs::path dir) : target_(dir.lexically_normal()) {
  if (!target_.has_filename()) target_ = target_.parent_path();  // "out/" -> "out", not "out/.tmp-*"
  fs::path parent = target_.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) fail("cannot create", parent, ec.value());
  }
  std::string tmp = target_.string() + ".tmp-XXXXXX";
  if (!::mkdtemp(tmp.data())) fail("cannot create a staging directory for", target_, errno);
  staging_ = tmp;
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void StagingDir::commit() {
  // rename() replaces an empty directory atomically and refuses a non-empty one.
  set_default_mode(staging_, 0777);
  std::error_code ec;
  fs::rename(staging_, target_, ec);
  if (ec) fail("cannot rename the staging directory to", target_, ec.value());
  committed_ = true;
}

}  // namespace underspec
