// A whole output directory filled at once (see staging_dir.hpp).
#include "underspec/outputs/staging_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <system_error>

namespace underspec {
namespace fs = std::filesystem;

namespace {

// A staging directory left inside a target by a writer that was killed.
struct Leftover {
  fs::path staging;
  std::vector<std::string> moved_out;  // named in its manifest and no longer in it
  bool finished = false;               // its commit had moved everything out
};

std::vector<std::string> read_manifest(const fs::path& staging) {
  std::vector<std::string> names;
  std::ifstream in(staging / kStagingManifest);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) names.push_back(line);
  return names;
}

std::vector<Leftover> inside_leftovers(const fs::path& dir) {
  std::vector<Leftover> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->path().filename().string().starts_with(kStagingInsidePrefix)) continue;
    Leftover left{it->path(), {}, false};
    const std::vector<std::string> listed = read_manifest(left.staging);
    for (const std::string& name : listed) {
      std::error_code missing;
      if (!fs::exists(fs::symlink_status(left.staging / name, missing))) left.moved_out.push_back(name);
    }
    left.finished = !listed.empty() && left.moved_out.size() == listed.size();
    found.push_back(std::move(left));
  }
  return found;
}

// Removes what killed writers left inside `dir`: each staging directory, and what an unfinished
// commit had moved out of it (a finished commit's outputs stay).
void roll_back_inside(const fs::path& dir) {
  for (const Leftover& left : inside_leftovers(dir)) {
    std::error_code ec;
    if (!left.finished)
      for (const std::string& name : left.moved_out) fs::remove_all(dir / name, ec);
    fs::remove_all(left.staging, ec);
  }
}

// Removes the entries of `dir` whose names start with `prefix` (a killed writer's staging).
void remove_beside(const fs::path& dir, const std::string& prefix) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().starts_with(prefix)) {
      std::error_code removing;
      fs::remove_all(it->path(), removing);
    }
}

// rename(2) that refuses to replace `to` (renameat2's RENAME_NOREPLACE, by system call: glibc
// has had a wrapper only since 2.28). Where the kernel or file system lacks it (NFS, old
// kernels), a check just before a plain rename. 0 or an errno.
int rename_no_replace(const fs::path& from, const fs::path& to) {
#ifdef SYS_renameat2
  constexpr unsigned kNoReplace = 1;  // RENAME_NOREPLACE
  if (::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), kNoReplace) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != ENOTSUP) return errno;
#endif
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) return EEXIST;
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

// flock errors that mean the file system has no locks (Lustre mounted without flock, some
// NFS setups): the writer goes on unlocked, as `run` does.
bool no_locks_here(int err) { return err == ENOLCK || err == ENOSYS || err == EOPNOTSUPP || err == EINVAL; }

}  // namespace

std::vector<std::string> staging_commit_order(std::vector<std::string> names, const std::vector<std::string>& last) {
  const auto rank = [&](const std::string& name) {  // -1: not in `last`, moved first
    const auto at = std::find(last.begin(), last.end(), name);
    return at == last.end() ? std::ptrdiff_t{-1} : at - last.begin();
  };
  std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
    return std::make_pair(rank(a), a) < std::make_pair(rank(b), b);
  });
  return names;
}

std::string staging_leftover(const fs::path& dir) {
  const std::vector<Leftover> found = inside_leftovers(dir);
  return found.empty() ? std::string() : found.front().staging.filename().string();
}

bool only_staging_leftovers(const fs::path& dir) {
  std::set<std::string> ours;
  for (const Leftover& left : inside_leftovers(dir)) {
    if (left.finished) return false;
    ours.insert(left.staging.filename().string());
    ours.insert(left.moved_out.begin(), left.moved_out.end());
  }
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (!ours.count(it->path().filename().string())) return false;
  return !ec;
}

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
  const int err = lock_fd_ < 0 ? errno : ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0 ? errno : 0;
  if (err != 0 && !(lock_fd_ >= 0 && no_locks_here(err))) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
    created_ = false;  // not ours to remove
    if (err == EWOULDBLOCK)
      throw OutputDirTaken("output directory " + target_.string() + " is being written by another underspec process");
    throw OutputError("cannot lock " + target_.string() + ": " + std::strerror(err));
  }
  // Holding the lock, any staging directory of the target was left by a killed writer: beside
  // it (it had made the target) or inside it.
  const fs::path absolute = fs::absolute(target_).lexically_normal();
  const fs::path named = absolute.has_filename() ? absolute : absolute.parent_path();  // "/a/b/." -> "/a/b"
  // (append, not "." + name + "...": GCC 12 warns falsely about such a sum, -Wrestrict)
  const std::string beside = std::string(".").append(named.filename().string()).append(".underspec-partial-");
  if (named.has_parent_path() && named != named.parent_path()) remove_beside(named.parent_path(), beside);
  inside_ = !created_;
  if (inside_) {
    roll_back_inside(target_);
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
    const int mkdtemp_err = errno;
    release();
    throw OutputError("cannot create a staging directory in " + parent.string() + ": " + std::strerror(mkdtemp_err));
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

void StagingDir::move_entries_out(const std::vector<std::string>& last) {
  const std::string where = "cannot move the finished outputs into " + target_.string() + ": ";
  std::error_code ec;
  for (fs::directory_iterator it(target_, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename() != staging_.filename())
      throw OutputError(where + it->path().filename().string() + " was put there meanwhile");
  std::vector<std::string> names;
  for (fs::directory_iterator it(staging_, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec) throw OutputError("cannot read " + staging_.string() + ": " + ec.message());
  names = staging_commit_order(std::move(names), last);
  // What this commit moves, for the next writer to roll back should it be cut short.
  std::string manifest;
  for (const std::string& name : names) manifest.append(name).append("\n");
  write_file_atomic(staging_ / kStagingManifest, manifest);
  for (std::size_t k = 0; k < names.size(); ++k) {
    if (const int err = rename_no_replace(staging_ / names[k], target_ / names[k]); err != 0) {
      std::string stuck;  // back into staging, which release() removes: the target as it was
      for (std::size_t j = 0; j < k; ++j)
        if (::rename((target_ / names[j]).c_str(), (staging_ / names[j]).c_str()) != 0)
          stuck.append(stuck.empty() ? "" : ", ").append(names[j]);
      throw OutputError(where + names[k] + ": " + std::strerror(err) +
                        (err == EEXIST ? " (something was put there meanwhile)" : "") +
                        (stuck.empty() ? "" : "; left there, not moved back: " + stuck));
    }
  }
  if (lock_fd_ >= 0) ::fsync(lock_fd_);  // the renames themselves
  fs::remove_all(staging_, ec);          // the manifest, then the directory
}

void StagingDir::commit(const std::vector<std::string>& last) {
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
