// Checkpoint segments: the divergence marker round-trips (format 02), and segments written
// before it (format 01, no marker) are still read, their marker recomputed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "temp_dir.hpp"
#include "underspec/run/checkpoint.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

class Checkpoint : public TempDirTest {};

std::vector<ReplicaResult> read_all(const fs::path& dir) {
  std::vector<ReplicaResult> out;
  for_each_checkpoint_record(dir, [&](ReplicaResult&& r) { out.push_back(std::move(r)); });
  return out;
}

TEST_F(Checkpoint, DivergenceMarkersRoundTrip) {
  fs::create_directories(checkpoint_dir(dir_));
  ReplicaResult fine{3, 1.5, 2.5, {0.5}, {1.0f, 2.0f}, ""};
  ReplicaResult bad{4, 1.5, std::numeric_limits<double>::infinity(), {}, {}, "at end: ood_rmse inf"};
  CheckpointWriter(dir_).write_segment(std::vector<ReplicaResult>{fine, bad});
  const auto back = read_all(dir_);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].diverged, "");
  EXPECT_EQ(back[0].params, fine.params);
  EXPECT_EQ(back[1].diverged, "at end: ood_rmse inf");
  EXPECT_TRUE(std::isinf(back[1].ood_rmse));
}

// A damaged segment is named with what is wrong and how to recover (moved aside, its replicas
// are just not done: the CLI test of resume covers that).
TEST_F(Checkpoint, ADamagedSegmentSaysHowToRecover) {
  fs::create_directories(checkpoint_dir(dir_));
  CheckpointWriter(dir_).write_segment(std::vector<ReplicaResult>{{3, 1.5, 2.5, {0.5}, {1.0f, 2.0f}, ""}});
  const fs::path segment = checkpoint_dir(dir_) / "part-00000000.bin";
  ASSERT_TRUE(fs::exists(segment));
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');
  }
  try {
    read_all(dir_);
    FAIL() << "a corrupt segment was read";
  } catch (const CheckpointError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(segment.string() + " is corrupt (checksum); move it out of " +
                           checkpoint_dir(dir_).string() + " and resume: its replicas are trained again"),
              std::string::npos)
        << message;
  }
}

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

TEST_F(Checkpoint, FormatOneSegmentsAreStillRead) {
  fs::create_directories(checkpoint_dir(dir_));
  std::string bytes = "USCKPT01";
  put(bytes, std::uint64_t{2});
  for (const auto& [id, ood, param] : {std::tuple{7u, 2.0, 1.0f}, std::tuple{8u, 2.0, std::nanf("")}}) {
    put(bytes, std::uint32_t{id});
    put(bytes, 1.0);
    put(bytes, ood);
    put(bytes, std::uint32_t{0});
    put(bytes, std::uint32_t{1});
    put(bytes, param);
  }
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a, as the writer
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  put(bytes, h);
  std::ofstream(checkpoint_dir(dir_) / "part-00000000.bin", std::ios::binary) << bytes;
  const auto back = read_all(dir_);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].id, 7u);
  EXPECT_EQ(back[0].diverged, "");
  EXPECT_EQ(back[1].diverged, "at end: parameters not finite");
  EXPECT_EQ(count_checkpoint_records(dir_), 2u);  // `underspec status` counts them too
}

}  // namespace
}  // namespace underspec
