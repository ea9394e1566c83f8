// Per-replica matrices (e.g. predictions on a probe grid) as NumPy .npy files, so that
// numpy.load / np.load(mmap_mode="r") read them with no parser of ours. The file gets its
// full size up front and rows are written in place with pwrite, so results arriving in any
// order from any thread land directly at their offsets without buffering the whole matrix.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

namespace underspec {

// The .npy format 1.0 header for a C-order little-endian float32 array of shape
// (rows, cols): magic, version, header length, dict, space padding and '\n', its total
// size a multiple of 64 so the data that follows is aligned.
std::string npy_header(std::uint64_t rows, std::uint64_t cols);

// A rows x cols float32 .npy file. Rows never written read back as 0 (the file is sparse).
// write_row may be called concurrently from several threads for different rows.
class NpyFloatMatrixFile {
 public:
  // Creates (or truncates) `path`, writes the header and sets the final size.
  // Errors: std::runtime_error naming the path and the system's reason.
  NpyFloatMatrixFile(std::filesystem::path path, std::uint64_t rows, std::uint64_t cols);
  ~NpyFloatMatrixFile();  // closes without syncing if close() was not called
  NpyFloatMatrixFile(const NpyFloatMatrixFile&) = delete;
  NpyFloatMatrixFile& operator=(const NpyFloatMatrixFile&) = delete;

  // values.size() <= cols; the rest of the row is filled with NaN.
  // row >= rows: std::out_of_range; too many values: std::invalid_argument.
  void write_row(std::uint64_t row, std::span<const float> values);
  // fsync and close; errors are thrown (std::runtime_error). Idempotent.
  void close();

  std::uint64_t rows() const { return rows_; }
  std::uint64_t cols() const { return cols_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::uint64_t rows_, cols_, data_offset_;
  int fd_ = -1;
};

// Reads the rows of a 2-D float32 C-order .npy file (as NpyFloatMatrixFile writes it), one at
// a time. Errors (missing file, another format, truncated data): std::runtime_error naming
// the path.
class NpyFloatMatrixReader {
 public:
  explicit NpyFloatMatrixReader(const std::filesystem::path& path);
  std::uint64_t rows() const { return rows_; }
  std::uint64_t cols() const { return cols_; }
  std::vector<float> row(std::uint64_t r);

 private:
  std::ifstream in_;
  std::filesystem::path path_;
  std::uint64_t rows_ = 0, cols_ = 0, data_offset_ = 0;
};

}  // namespace underspec
