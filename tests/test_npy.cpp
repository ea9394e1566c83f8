// .npy files: the header bytes, a file written out of row order read back with plain C++,
// and numpy.load on it when this machine has numpy.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"
#include "underspec/outputs/npy.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The dict text after the 10-byte prefix, checked against the length field.
std::string header_dict(const std::string& header) {
  EXPECT_GE(header.size(), 10u);
  EXPECT_EQ(header.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t length =
      static_cast<unsigned char>(header[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(header[9])) << 8);
  EXPECT_EQ(10 + length, header.size());
  return header.substr(10);
}

TEST(NpyHeader, ExactBytesFor3x4) {
  const std::string header = npy_header(3, 4);
  ASSERT_EQ(header.size(), 128u);  // as numpy writes it: 10 + 59 + 1 bytes, padded to 128
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
  EXPECT_EQ(header,
            std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(128 - 10 - dict.size() - 1, ' ') + "\n");
}

TEST(NpyHeader, MultipleOf64AndParses) {
  const std::uint64_t shapes[][2] = {{0, 0}, {1, 1}, {3, 4}, {100000, 257}, {18446744073709551615ull, 12345678901ull}};
  for (const auto& shape : shapes) {
    const std::string header = npy_header(shape[0], shape[1]);
    EXPECT_EQ(header.size() % 64, 0u) << header;
    const std::string dict = header_dict(header);
    EXPECT_EQ(dict.back(), '\n');
    const std::string shape_text = "'shape': (" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + "), }";
    EXPECT_EQ(dict.rfind("{'descr': '<f4', 'fortran_order': False, " + shape_text, 0), 0u) << dict;
    // Only spaces between the dict's closing brace and the newline.
    const std::size_t close = dict.find('}');
    EXPECT_EQ(dict.find_first_not_of(' ', close + 1), dict.size() - 1);
  }
}

class NpyFile : public TempDirTest {};

TEST_F(NpyFile, RowsOutOfOrderReadBack) {
  const fs::path path = dir_ / "m.npy";
  {
    NpyFloatMatrixFile file(path, 3, 4);
    EXPECT_EQ(fs::file_size(path), 128u + 3 * 4 * 4);  // full size before any row
    const std::vector<float> r2{8, 9, 10.5f, -11}, r0{0, 1, 2, 3}, r1{4.25f, 5};
    file.write_row(2, r2);
    file.write_row(0, r0);
    file.write_row(1, r1);  // short: padded with NaN
    file.close();
    file.close();  // idempotent
  }
  const std::string bytes = read_bytes(path);
  ASSERT_EQ(bytes.size(), 128u + 48u);
  EXPECT_EQ(bytes.substr(0, 128), npy_header(3, 4));
  std::vector<float> values(12);
  std::memcpy(values.data(), bytes.data() + 128, 48);
  const std::vector<float> expected_head{0, 1, 2, 3, 4.25f, 5};
  EXPECT_EQ(std::vector<float>(values.begin(), values.begin() + 6), expected_head);
  EXPECT_TRUE(std::isnan(values[6]));
  EXPECT_TRUE(std::isnan(values[7]));
  EXPECT_EQ(std::vector<float>(values.begin() + 8, values.end()), (std::vector<float>{8, 9, 10.5f, -11}));
}

TEST_F(NpyFile, UnwrittenRowsAreZeroAndBadCallsThrow) {
  const fs::path path = dir_ / "z.npy";
  NpyFloatMatrixFile file(path, 2, 3);
  const std::vector<float> row{1, 2, 3}, too_long{1, 2, 3, 4};
  file.write_row(1, row);
  EXPECT_THROW(file.write_row(2, row), std::out_of_range);
  EXPECT_THROW(file.write_row(0, too_long), std::invalid_argument);
  file.close();
  EXPECT_THROW(file.write_row(0, row), std::logic_error);
  const std::string bytes = read_bytes(path);
  EXPECT_EQ(bytes.substr(128, 12), std::string(12, '\0'));
}

TEST_F(NpyFile, CreateFailureNamesPath) {
  const fs::path path = dir_ / "missing" / "m.npy";
  try {
    NpyFloatMatrixFile file(path, 1, 1);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find(std::strerror(ENOENT)), std::string::npos) << what;
  }
}

TEST_F(NpyFile, NumpyLoadsIt) {
  // The tests' interpreter (UNDERSPEC_TEST_PYTHON, Debian's by default, where python3-numpy
  // is), not PATH's python3 (a pyenv's without NumPy skipped this everywhere, CI included).
  const std::string python = UNDERSPEC_TEST_PYTHON;
  if (std::system(("'" + python + "' -c 'import numpy' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " cannot import numpy (scripts/install-deps.sh installs python3-numpy)";
  const fs::path path = dir_ / "p.npy";
  {
    NpyFloatMatrixFile file(path, 3, 4);
    const std::vector<float> r1{4, 5, 6, 7}, r0{0.5f, 1, 2, 3}, r2{8};
    file.write_row(1, r1);
    file.write_row(2, r2);
    file.write_row(0, r0);
    file.close();
  }
  const std::string script =
      "import numpy as np, sys\n"
      "a = np.load(sys.argv[1])\n"
      "assert a.dtype == np.dtype('<f4') and a.shape == (3, 4), (a.dtype, a.shape)\n"
      "assert a.flags.c_contiguous\n"
      "assert a[0].tolist() == [0.5, 1, 2, 3] and a[1].tolist() == [4, 5, 6, 7], a\n"
      "assert a[2, 0] == 8 and np.isnan(a[2, 1:]).all(), a\n"
      "m = np.load(sys.argv[1], mmap_mode='r')\n"
      "assert m.shape == (3, 4)\n";
  const fs::path py = dir_ / "check.py";
  std::ofstream(py) << script;
  const std::string command = "'" + python + "' '" + py.string() + "' '" + path.string() + "'";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

// The reader reads back what the writer wrote, row by row, and names a file it cannot read.
TEST_F(NpyFile, ReaderReadsWhatTheWriterWrote) {
  const auto path = dir_ / "r.npy";
  {
    NpyFloatMatrixFile f(path, 2, 3);
    f.write_row(1, std::vector<float>{4, 5, 6});
    f.write_row(0, std::vector<float>{1, 2});
    f.close();
  }
  NpyFloatMatrixReader r(path);
  EXPECT_EQ(r.rows(), 2u);
  EXPECT_EQ(r.cols(), 3u);
  EXPECT_EQ(r.row(1), (std::vector<float>{4, 5, 6}));
  const std::vector<float> first = r.row(0);
  EXPECT_EQ(first[1], 2.0f);
  EXPECT_TRUE(std::isnan(first[2]));
  EXPECT_THROW(r.row(2), std::out_of_range);
  std::ofstream(dir_ / "bad.npy") << "not numpy";
  EXPECT_THROW(NpyFloatMatrixReader(dir_ / "bad.npy"), std::runtime_error);
  EXPECT_THROW(NpyFloatMatrixReader(dir_ / "missing.npy"), std::runtime_error);
}

}  // namespace
}  // namespace underspec
