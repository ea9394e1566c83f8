// Driving the `underspec` binary from tests: a fixture running it in a fresh temporary
// working directory (captured output lives outside it), and small file helpers.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace underspec {

inline std::string read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Every `underspec` these tests start runs without the HTML report (as with --no-report): fast,
// and run directories hold only the run's outputs. tests/python covers the report; a test that
// wants one passes env "-u UNDERSPEC_NO_REPORT".
inline const bool kCliTestsWithoutReport = ::setenv("UNDERSPEC_NO_REPORT", "1", 1) == 0;

struct CliResult {
  int status = -1;
  std::string out, err;
};

class Cli : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::filesystem::create_directory(dir_ / "cwd");
  }

  // Runs the binary in cwd() with `args` (shell syntax) and the environment changes `env` (`env`
  // arguments, e.g. "-u VAR" or "VAR=1"); captured output lives outside cwd().
  CliResult run(const std::string& args, const std::string& env = "") {
    const std::string exe = own_binary_.empty() ? binary() : own_binary_;
    const std::string cmd = "cd '" + cwd().string() + "' && env " + env + " '" + exe + "' " + args + " >'" +
                            (dir_ / "stdout").string() + "' 2>'" + (dir_ / "stderr").string() + "'";
    const int raw = std::system(cmd.c_str());
    CliResult r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = read(dir_ / "stdout");
    r.err = read(dir_ / "stderr");
    return r;
  }
  // The binary under test: UNDERSPEC_TEST_BINARY when set (test executables copied to another
  // machine, e.g. by bench/gpu-check.sh), else the one built beside the tests.
  static std::string binary() {
    const char* env = std::getenv("UNDERSPEC_TEST_BINARY");
    return env && *env ? std::string(env) : std::string(UNDERSPEC_BINARY);
  }
  // For a root test that runs the binary as nobody: from now on run() uses a copy of the binary
  // that nobody can execute (a build under /root, mode 0700, is out of its reach), and this
  // test's directories are open to everyone. Returns the `env` prefix that drops to nobody.
  std::string as_nobody() {
    namespace fs = std::filesystem;
    fs::create_directories(dir_ / "bin");
    fs::copy_file(binary(), dir_ / "bin" / "underspec", fs::copy_options::overwrite_existing);
    fs::permissions(dir_ / "bin" / "underspec", fs::perms(0755));
    fs::permissions(dir_ / "bin", fs::perms(0755));
    fs::permissions(dir_, fs::perms::all);
    fs::permissions(cwd(), fs::perms::all);
    own_binary_ = (dir_ / "bin" / "underspec").string();
    return "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  std::filesystem::path cwd() const { return dir_ / "cwd"; }
  std::vector<std::string> entries(const std::filesystem::path& dir) const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::vector<std::string> cwd_entries() const { return entries(cwd()); }
  void write(const std::string& name, const std::string& text) { std::ofstream(cwd() / name) << text; }

 private:
  std::string own_binary_;  // as_nobody's copy
};

}  // namespace underspec
