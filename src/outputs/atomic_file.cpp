// Atomic output files and directories (see atomic_file.hpp).
#include "underspec/outputs/atomic_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

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

namespace {

// Removes the entries of `dir` whose names start with `prefix` (a killed writer's staging).
void remove_leftovers(const fs::path& dir, const std::string& prefix) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().starts_with(prefix)) fs::remove_all(e.path(), ec);
}

// rename(2) that refuses to replace `to` (renameat2's RENAME_NOREPLACE; where the file system
// lacks it, e.g. NFS, a check just before a plain rename). 0 or an errno.
int rename_no_replace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) return EEXIST;
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

}  // namespace

StagingDir::StagingDir(fs::path target, bool rename_if_taken) : target_(target.lexically_normal()) {
  if (!target_.has_filename()) target_ = target_.parent_path();  // "out/" -> "out", not "out/.out.*"
  if (target_.empty()) target_ = ".";                            // "./" -> "."
  // A link to a directory: the outputs go into that directory (a rename onto the link itself
  // would fail, after all the work).
  std::error_code link_ec;
  if (fs::is_symlink(fs::symlink_status(target_, link_ec)))
    if (fs::path real = fs::canonical(target_, link_ec); !link_ec) target_ = real;
  created_ = make_output_dir(target_, rename_if_taken);
  lock_fd_ = ::open(target_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;  // before close() can change it
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
    created_ = false;  // not ours to remove
    if (err == EWOULDBLOCK)
      throw OutputDirTaken("output directory " + target_.string() + " is being written by another underspec process");
    fail("cannot lock", target_, err);
  }
  // Holding the lock, any staging directory of the target was left by a killed writer: beside
  // it (it had made the target) or inside it.
  const fs::path absolute = fs::absolute(target_).lexically_normal();
  const fs::path named = absolute.has_filename() ? absolute : absolute.parent_path();  // "/a/b/." -> "/a/b"
  // (append, not "." + name + "...": GCC 12 warns falsely about such a sum, -Wrestrict)
  const std::string beside = std::string(".").append(named.filename().string()).append(".underspec-partial-");
  if (named.has_parent_path() && named != named.parent_path()) remove_leftovers(named.parent_path(), beside);
  inside_ = !created_;
  if (inside_) {
    remove_leftovers(target_, std::string(kStagingInsidePrefix));
    try {
      require_free_output_dir(target_);
    } catch (...) {
      release();
      throw;
    }
  }
  const fs::path parent = inside_ ? named : named.parent_path();
  std::string tmpl = (parent / ((inside_ ? std::string(kStagingInsidePrefix) : beside) + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    const int err = errno;
    release();
    throw OutputError("cannot create a staging directory in " + parent.string() + ": " + std::strerror(err));
  }
  staging_ = tmpl;
}

StagingDir::~StagingDir() { release(); }

void StagingDir::release() {
  std::error_code ec;
  if (!committed_ && !staging_.empty()) fs::remove_all(staging_, ec);
  staging_.clear();
  if (!committed_ && created_) ::rmdir(target_.c_str());  // only when still empty
  created_ = false;
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
}

void StagingDir::move_entries_out(const std::string& last) {
  const std::string where = "cannot move the finished outputs into " + target_.string() + ": ";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(target_, ec))
    if (e.path().filename() != staging_.filename())
      throw OutputError(where + e.path().filename().string() + " was put there meanwhile");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(staging_, ec)) names.push_back(e.path().filename().string());
  if (ec) fail("cannot read", staging_, ec.value());
  std::sort(names.begin(), names.end());
  std::stable_partition(names.begin(), names.end(), [&](const std::string& n) { return n != last; });
  for (std::size_t k = 0; k < names.size(); ++k) {
    if (const int err = rename_no_replace(staging_ / names[k], target_ / names[k]); err != 0) {
      for (std::size_t j = 0; j < k; ++j)  // back into staging, which release() removes: the target as it was
        ::rename((target_ / names[j]).c_str(), (staging_ / names[j]).c_str());
      throw OutputError(where + names[k] + ": " + std::strerror(err) +
                        (err == EEXIST ? " (something was put there meanwhile)" : ""));
    }
  }
  ::fsync(lock_fd_);  // the renames themselves
  ::rmdir(staging_.c_str());
}

void StagingDir::commit(const std::string& last) {
  if (inside_) {
    move_entries_out(last);
  } else {
    set_default_mode(staging_, 0777);  // mkdtemp made it 0700
    if (::rename(staging_.c_str(), target_.c_str()) != 0) {
      const int err = errno;
      throw OutputError("cannot move the finished outputs into " + target_.string() + ": " + std::strerror(err) +
                        (err == ENOTEMPTY || err == EEXIST ? " (something was put there meanwhile)" : ""));
    }
  }
  committed_ = true;
}

}  // namespace underspec
