// Two `underspec run`s into one output directory: one wins, the other exits 2 and leaves the
// winner's directory whole (it resumes, and its files agree with each other).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli_fixture.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

using ConcurrentRuns = Cli;

const std::string kTiny =
    "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set 'sweep.models=[\"perceptron\"]' "
    "--device cpu --threads 1 --progress none ";

TEST_F(ConcurrentRuns, AReservationInProgressMakesTheDirectoryInUse) {
  fs::create_directory(cwd() / "out");
  const int fd = ::open((cwd() / "out").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as a run reserving it holds it
  const CliResult r = run("run " + kTiny + "--set sweep.seeds=2 --out out");
  ::close(fd);
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "is in use by another underspec run")) << r.err;
  EXPECT_TRUE(entries(cwd() / "out").empty());
}

TEST_F(ConcurrentRuns, StartedTogetherOneWinsAndItsDirectoryStaysWhole) {
  // Two different configs (2 and 3 seeds), so a mix-up of their files would show.
  for (int trial = 0; trial < 12; ++trial) {
    const std::string out = "out" + std::to_string(trial);
    if (trial % 2) fs::create_directory(cwd() / out);  // an empty --out, and one not made yet
    const std::string base = "cd '" + cwd().string() + "' && '" + binary() + "' run " + kTiny + "--out " + out;
    const std::string both = "(" + base + " --set sweep.seeds=2 >/dev/null 2>a.err; echo $? >a.rc) & (" + base +
                             " --set sweep.seeds=3 >/dev/null 2>b.err; echo $? >b.rc) & wait";
    write("both.sh", both + "\n");
    ASSERT_EQ(std::system(("bash '" + (cwd() / "both.sh").string() + "'").c_str()), 0);
    const std::string a = read(cwd() / "a.rc"), b = read(cwd() / "b.rc");
    const std::string why = "trial " + std::to_string(trial) + ": " + read(cwd() / "a.err") + read(cwd() / "b.err");
    EXPECT_TRUE((a == "0\n" && b == "2\n") || (a == "2\n" && b == "0\n")) << why << a << b;
    const int rows = static_cast<int>(lines(read(cwd() / out / "replicas.csv")).size()) - 1;
    EXPECT_EQ(rows, a == "0\n" ? 2 * 3 : 3 * 3) << why;
    const CliResult resume = run("run --resume " + out);
    EXPECT_EQ(resume.status, 0) << why << resume.err;
    EXPECT_TRUE(contains(resume.err, "already finished")) << why << resume.err;
  }
}

}  // namespace
}  // namespace underspec
