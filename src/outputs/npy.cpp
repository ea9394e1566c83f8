// .npy writing (see npy.hpp).
#include "underspec/outputs/npy.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <regex>
#include <stdexcept>
#include <vector>

namespace underspec {

static_assert(std::endian::native == std::endian::little, "the .npy files declare '<f4' (little-endian)");
static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559);

namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int err) {
  throw std::runtime_error(what + " " + path.string() + ": " + std::strerror(err));
}

}  // namespace

std::string npy_header(std::uint64_t rows, std::uint64_t cols) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "), }";
  constexpr std::size_t kPrefix = 10;                      // magic (6) + version (2) + header length (2)
  const std::size_t unpadded = kPrefix + dict.size() + 1;  // + '\n'
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  const std::size_t length = dict.size();  // at most a few hundred bytes: fits uint16
  std::string header = "\x93NUMPY";
  header.push_back('\x01');
  header.push_back('\x00');
  header.push_back(static_cast<char>(length & 0xff));
  header.push_back(static_cast<char>(length >> 8));
  return header + dict;
}

NpyFloatMatrixFile::NpyFloatMatrixFile(std::filesystem::path path, std::uint64_t rows, std::uint64_t cols)
    : path_(std::move(path)), rows_(rows), cols_(cols) {
  const std::string header = npy_header(rows, cols);
  data_offset_ = header.size();
  const std::uint64_t max_off = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
  if (cols != 0 && rows > (max_off - data_offset_) / 4 / cols) {
    throw std::runtime_error("cannot create " + path_.string() + ": " + std::to_string(rows) + " x " +
                             std::to_string(cols) + " floats is too large");
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create", path_, errno);
  try {
    std::size_t written = 0;
    while (written < header.size()) {
      const ssize_t n = ::pwrite(fd_, header.data() + written, header.size() - written, static_cast<off_t>(written));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("cannot write", path_, errno);
      written += static_cast<std::size_t>(n);
    }
    const auto size = static_cast<off_t>(data_offset_ + rows * cols * 4);
    if (::ftruncate(fd_, size) != 0) fail("cannot size", path_, errno);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

NpyFloatMatrixFile::~NpyFloatMatrixFile() {
  if (fd_ >= 0) ::close(fd_);
}

void NpyFloatMatrixFile::write_row(std::uint64_t row, std::span<const float> values) {
  if (fd_ < 0) throw std::logic_error("write_row on closed " + path_.string());
  if (row >= rows_) {
    throw std::out_of_range("row " + std::to_string(row) + " of " + std::to_string(rows_) + " in " + path_.string());
  }
  if (values.size() > cols_) {
    throw std::invalid_argument(std::to_string(values.size()) + " values for " + std::to_string(cols_) +
                                " columns in " + path_.string());
  }
  std::vector<float> padded;
  const char* data = reinterpret_cast<const char*>(values.data());
  if (values.size() < cols_) {
    padded.assign(cols_, std::numeric_limits<float>::quiet_NaN());
    std::copy(values.begin(), values.end(), padded.begin());
    data = reinterpret_cast<const char*>(padded.data());
  }
  const std::size_t bytes = cols_ * 4;
  const std::uint64_t offset = data_offset_ + row * bytes;
  std::size_t written = 0;
  while (written < bytes) {
    const ssize_t n = ::pwrite(fd_, data + written, bytes - written, static_cast<off_t>(offset + written));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write", path_, errno);
    written += static_cast<std::size_t>(n);
  }
}

void NpyFloatMatrixFile::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot sync", path_, err);
  }
  if (::close(fd) != 0) fail("cannot close", path_, errno);
}

NpyFloatMatrixReader::NpyFloatMatrixReader(const std::filesystem::path& path)
    : in_(path, std::ios::binary), path_(path) {
  if (!in_) throw std::runtime_error("cannot open " + path.string());
  char head[10];
  in_.read(head, 10);
  if (!in_ || std::memcmp(head, "\x93NUMPY\x01\x00", 8) != 0)
    throw std::runtime_error(path.string() + ": not a .npy v1 file");
  const std::size_t len = static_cast<unsigned char>(head[8]) | (static_cast<unsigned char>(head[9]) << 8);
  std::string dict(len, '\0');
  in_.read(dict.data(), static_cast<std::streamsize>(len));
  std::smatch m;
  if (!in_ ||
      !std::regex_search(dict, m, std::regex(R"('descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\))")))
    throw std::runtime_error(path.string() + ": expected a 2-D little-endian float32 C-order array");
  rows_ = std::stoull(m[1]);
  cols_ = std::stoull(m[2]);
  data_offset_ = 10 + len;
  // Checked here so that a cut-short file is refused before any work, not at its last row.
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  const std::uint64_t expected = data_offset_ + rows_ * cols_ * sizeof(float);
  if (!ec && size < expected)
    throw std::runtime_error(path.string() + ": truncated (" + std::to_string(size) + " bytes; its header promises " +
                             std::to_string(expected) + ")");
}

std::vector<float> NpyFloatMatrixReader::row(std::uint64_t r) {
  if (r >= rows_)
    throw std::out_of_range(path_.string() + ": row " + std::to_string(r) + " of " + std::to_string(rows_));
  std::vector<float> v(cols_);
  in_.seekg(static_cast<std::streamoff>(data_offset_ + r * cols_ * sizeof(float)));
  in_.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(cols_ * sizeof(float)));
  if (!in_) throw std::runtime_error(path_.string() + ": truncated");
  return v;
}

}  // namespace underspec
