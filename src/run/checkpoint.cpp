// Checkpoint segments and state (see checkpoint.hpp).
#include "underspec/run/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "underspec/outputs/atomic_file.hpp"
#include "underspec/run/run_info.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

// Version 02 adds, after each record's parameters, its divergence marker (u32 length,
// bytes). Version 01 segments (written before it) are still read: their marker is
// recomputed from the stored RMSEs and parameters.
constexpr char kMagic[8] = {'U', 'S', 'C', 'K', 'P', 'T', '0', '2'};
constexpr char kMagicV1[8] = {'U', 'S', 'C', 'K', 'P', 'T', '0', '1'};
constexpr const char* kStateFile = "state.json";

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

template <class T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// A damaged segment: what is wrong, and how to recover (once it is out of the way its
// replicas are simply not done, and a resume trains them again).
CheckpointError damaged_segment(const fs::path& path, const std::string& problem) {
  return CheckpointError("checkpoint segment " + path.string() + " " + problem + "; move it out of " +
                         path.parent_path().string() + " and resume: its replicas are trained again");
}

class Reader {
 public:
  Reader(std::string_view bytes, const fs::path& path) : bytes_(bytes), path_(path) {}
  template <class T>
  T get() {
    T value;
    need(sizeof value);
    std::memcpy(&value, bytes_.data() + at_, sizeof value);
    at_ += sizeof value;
    return value;
  }
  void need(std::size_t n) const {
    if (bytes_.size() - at_ < n) throw damaged_segment(path_, "is truncated");
  }
  std::size_t at() const { return at_; }

 private:
  std::string_view bytes_;
  const fs::path& path_;
  std::size_t at_ = 0;
};

std::vector<fs::path> segments(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("part-") && name.ends_with(".bin")) out.push_back(e.path());
  }
  if (ec) throw CheckpointError("cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Writes `bytes` to `path` durably: temporary file, fsync, rename, fsync of the directory.
// The temporary file has a unique name (mkstemp), so no other process can write or rename it.
void write_durable(const fs::path& path, std::string_view bytes) {
  std::string tmp = path.string() + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw CheckpointError("cannot create " + path.string() + ": " + std::strerror(errno));
  const mode_t mask = ::umask(0);  // mkstemp creates 0600: give the file the mode open(0666) would
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw CheckpointError("cannot write " + path.string() + ": " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw CheckpointError("cannot sync " + path.string() + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw CheckpointError("cannot rename into " + path.string() + ": " + std::strerror(err));
  }
  fsync_dir(path.parent_path());
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

fs::path checkpoint_dir(const fs::path& run_dir) { return run_dir / "checkpoint"; }

void write_checkpoint_state(const fs::path& run_dir, const CheckpointState& s) {
  const fs::path dir = checkpoint_dir(run_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw CheckpointError("cannot create " + dir.string() + ": " + ec.message());
  const nlohmann::json j = {{"format", 1},
                            {"config_hash", s.config_hash},
                            {"shard", {{"index", s.shard_index}, {"count", s.shard_count}}},
                            {"replicas", {{"begin", s.begin}, {"end", s.end}, {"total", s.total_replicas}}},
                            {"save_params", s.save_params},
                            {"git_commit", s.git_commit}};
  write_durable(dir / kStateFile, j.dump(2) + "\n");
}

std::optional<CheckpointState> read_checkpoint_state(const fs::path& run_dir) {
  const fs::path path = checkpoint_dir(run_dir) / kStateFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(read_all(path));
    if (j.at("format").get<int>() != 1) throw CheckpointError(path.string() + ": unknown checkpoint format");
    CheckpointState s;
    s.config_hash = j.at("config_hash").get<std::string>();
    s.shard_index = j.at("shard").at("index").get<std::uint32_t>();
    s.shard_count = j.at("shard").at("count").get<std::uint32_t>();
    s.begin = j.at("replicas").at("begin").get<std::uint32_t>();
    s.end = j.at("replicas").at("end").get<std::uint32_t>();
    s.total_replicas = j.at("replicas").at("total").get<std::uint64_t>();
    s.save_params = j.at("save_params").get<bool>();
    s.git_commit = j.value("git_commit", std::string());
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(path.string() + ": not a valid checkpoint state (" + e.what() + ")");
  }
}

std::string other_build_warning(const fs::path& dir, const CheckpointState& state) {
  const std::string mine = git_commit();
  if (state.git_commit == mine || state.git_commit == "unknown" || mine == "unknown") return {};
  return dir.string() + " was started by " +
         (state.git_commit.empty() ? std::string("an earlier underspec (its build not recorded)")
                                   : "underspec built from " + state.git_commit) +
         ", this is built from " + mine + ": its results mix replicas of both builds (the same only if " +
         "their math is)";
}

CheckpointWriter::CheckpointWriter(fs::path run_dir) : dir_(checkpoint_dir(run_dir)) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {  // a write cut short by kill -9
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".tmp" || name.find(".tmp-") != std::string::npos) fs::remove(e.path(), ec);
  }
  for (const fs::path& p : segments(dir_)) {
    const std::string name = p.stem().string();  // part-NNNNNNNN
    next_ = std::max<std::uint64_t>(next_, std::stoull(name.substr(5)) + 1);
  }
}

void CheckpointWriter::write_segment(std::span<const ReplicaResult> results) {
  if (results.empty()) return;
  std::string bytes(kMagic, sizeof kMagic);
  put(bytes, static_cast<std::uint64_t>(results.size()));
  for (const ReplicaResult& r : results) {
    put(bytes, r.id);
    put(bytes, r.iid_rmse);
    put(bytes, r.ood_rmse);
    put(bytes, static_cast<std::uint32_t>(r.stress_rmse.size()));
    for (double x : r.stress_rmse) put(bytes, x);
    put(bytes, static_cast<std::uint32_t>(r.params.size()));
    bytes.append(reinterpret_cast<const char*>(r.params.data()), r.params.size() * sizeof(float));
    put(bytes, static_cast<std::uint32_t>(r.diverged.size()));
    bytes.append(r.diverged);
  }
  put(bytes, fnv1a(bytes));
  char name[32];
  std::snprintf(name, sizeof name, "part-%08llu.bin", static_cast<unsigned long long>(next_++));
  write_durable(dir_ / name, bytes);
}

void for_each_checkpoint_record(const fs::path& run_dir, const std::function<void(ReplicaResult&&)>& visit) {
  const fs::path dir = checkpoint_dir(run_dir);
  for (const fs::path& path : segments(dir)) {
    const std::string bytes = read_all(path);
    const bool v1 = bytes.size() >= sizeof kMagicV1 && std::memcmp(bytes.data(), kMagicV1, sizeof kMagicV1) == 0;
    if (bytes.size() < sizeof kMagic + 16 || (!v1 && std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0))
      throw damaged_segment(path, "is not a segment (bad header)");
    const std::string_view body(bytes.data(), bytes.size() - 8);
    std::uint64_t stored = 0;
    std::memcpy(&stored, bytes.data() + body.size(), 8);
    if (stored != fnv1a(body)) throw damaged_segment(path, "is corrupt (checksum)");
    Reader in(body, path);
    for (std::size_t i = 0; i < sizeof kMagic; ++i) in.get<char>();
    const auto count = in.get<std::uint64_t>();
    for (std::uint64_t k = 0; k < count; ++k) {
      ReplicaResult r;
      r.id = in.get<std::uint32_t>();
      r.iid_rmse = in.get<double>();
      r.ood_rmse = in.get<double>();
      r.stress_rmse.resize(in.get<std::uint32_t>());
      for (double& x : r.stress_rmse) x = in.get<double>();
      r.params.resize(in.get<std::uint32_t>());
      in.need(r.params.size() * sizeof(float));
      for (float& x : r.params) x = in.get<float>();
      if (v1) {
        r.diverged = divergence_of(r.params, r);
      } else {
        r.diverged.resize(in.get<std::uint32_t>());
        in.need(r.diverged.size());
        for (char& c : r.diverged) c = in.get<char>();
      }
      canonicalize_nans(r);  // params.npy and merges are made from these (older segments: the hardware's NaNs)
      visit(std::move(r));
    }
    if (in.at() != body.size()) throw damaged_segment(path, "has trailing bytes");
  }
}

std::uint64_t count_checkpoint_records(const fs::path& run_dir) {
  const fs::path dir = checkpoint_dir(run_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  std::uint64_t total = 0;
  for (const fs::path& path : segments(dir)) {
    char header[sizeof kMagic + 8];
    std::ifstream in(path, std::ios::binary);
    if (!in.read(header, sizeof header) ||
        (std::memcmp(header, kMagic, sizeof kMagic) != 0 && std::memcmp(header, kMagicV1, sizeof kMagicV1) != 0))
      throw damaged_segment(path, "is not a segment (bad header)");  // formats 01 and 02: the same header
    std::uint64_t count = 0;
    std::memcpy(&count, header + sizeof kMagic, sizeof count);
    total += count;
  }
  return total;
}

}  // namespace underspec
