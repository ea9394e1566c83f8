// Graceful stop: the first signal sets the flag, a second exits at once with 128 + signo (or
// as a HoldSecondSignal ends), and the previous handlers come back afterwards.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>

#include "underspec/run/stop_signals.hpp"

namespace underspec {
namespace {

volatile std::sig_atomic_t g_test_handler_calls = 0;
extern "C" void test_handler(int) { g_test_handler_calls = g_test_handler_calls + 1; }

TEST(StopSignals, FirstSignalSetsTheFlag) {
  StopSignals stop;
  EXPECT_FALSE(stop.requested().load());
  EXPECT_EQ(stop.signal(), 0);
  std::raise(SIGINT);
  EXPECT_TRUE(stop.requested().load());
  EXPECT_EQ(stop.signal(), SIGINT);
}

TEST(StopSignals, SigtermToo) {
  StopSignals stop;
  std::raise(SIGTERM);
  EXPECT_TRUE(stop.requested().load());
  EXPECT_EQ(stop.signal(), SIGTERM);
}

TEST(StopSignals, FlagIsFreshForEachInstance) {
  {
    StopSignals stop;
    std::raise(SIGINT);
  }
  StopSignals stop;
  EXPECT_FALSE(stop.requested().load());
  EXPECT_EQ(stop.signal(), 0);
}

TEST(StopSignals, OneInstanceAtATime) {
  StopSignals stop;
  EXPECT_THROW(StopSignals second, std::logic_error);
  // The failed construction did not disturb the live instance.
  std::raise(SIGTERM);
  EXPECT_EQ(stop.signal(), SIGTERM);
}

TEST(StopSignals, RestoresPreviousHandlers) {
  g_test_handler_calls = 0;
  struct sigaction mine {
  }, old_int{}, old_term{};
  mine.sa_handler = test_handler;
  sigemptyset(&mine.sa_mask);
  ASSERT_EQ(sigaction(SIGINT, &mine, &old_int), 0);
  ASSERT_EQ(sigaction(SIGTERM, &mine, &old_term), 0);
  {
    StopSignals stop;
    struct sigaction now {};
    sigaction(SIGINT, nullptr, &now);
    EXPECT_NE(now.sa_handler, test_handler);
    std::raise(SIGINT);
    EXPECT_EQ(g_test_handler_calls, 0);
  }
  struct sigaction now_int {
  }, now_term{};
  sigaction(SIGINT, nullptr, &now_int);
  sigaction(SIGTERM, nullptr, &now_term);
  EXPECT_EQ(now_int.sa_handler, test_handler);
  EXPECT_EQ(now_term.sa_handler, test_handler);
  std::raise(SIGINT);
  std::raise(SIGTERM);
  EXPECT_EQ(g_test_handler_calls, 2);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
}

// Both ways: a plain fork + waitpid, and a GoogleTest death test.
TEST(StopSignals, SecondSignalExitsAtOnceInAChild) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    StopSignals stop;
    std::raise(SIGINT);
    std::raise(SIGINT);
    _exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
}

// A second signal during a HoldSecondSignal (merge and score moving their outputs into place)
// exits only when the hold ends; the work inside the hold is done first.
TEST(StopSignals, SecondSignalWaitsForAHold) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    StopSignals stop;
    {
      const HoldSecondSignal hold;
      std::raise(SIGINT);
      std::raise(SIGTERM);                                         // deferred
      [[maybe_unused]] const ssize_t n = ::write(fds[1], "d", 1);  // the held work, done
    }
    _exit(0);  // not reached: the hold's end exits with the second signal's code
  }
  ::close(fds[1]);
  char got = 0;
  const ssize_t n = ::read(fds[0], &got, 1);
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(got, 'd');
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 143);
}

TEST(StopSignalsDeathTest, SecondSignalExitCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals stop;
        std::raise(SIGINT);
        std::raise(SIGINT);
      },
      ::testing::ExitedWithCode(130), "second signal");
  EXPECT_EXIT(
      {
        StopSignals stop;
        std::raise(SIGINT);
        std::raise(SIGTERM);
      },
      ::testing::ExitedWithCode(143), "second signal");
}

}  // namespace
}  // namespace underspec
