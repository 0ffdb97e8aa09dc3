// util/files: the atomic writer, the text writer and the whole-file reader; util/system's
// exit_process.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "test_util.hpp"
#include "util/files.hpp"
#include "util/system.hpp"

namespace fs = std::filesystem;

namespace {
std::vector<std::string> names(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_SUITE("util") {
  TEST_CASE("write_file_atomic replaces a file and leaves no temporary file") {
    test::TempDir d;
    const std::string path = d.write("report.html", "old contents, longer than the new ones");
    std::string bytes("new\0bytes\n", 10);
    runner::util::write_file_atomic(path, bytes);
    CHECK(runner::util::read_file(path) == bytes);
    CHECK(names(d.path) == std::vector<std::string>{"report.html"});
    runner::util::write_file_atomic(path, "");
    CHECK(runner::util::read_file(path).empty());
    CHECK(names(d.path) == std::vector<std::string>{"report.html"});
  }

  TEST_CASE("write_file_atomic fails with the path when the folder is missing, and keeps the old file") {
    test::TempDir d;
    const std::string missing = d.path.string() + "/no/such/folder/f.txt";
    CHECK_THROWS_WITH(runner::util::write_file_atomic(missing, "x"), doctest::Contains("no/such/folder"));
    const std::string path = d.write("keep.txt", "kept");
    ::chmod(d.path.c_str(), 0500);  // no new files in the folder (root ignores this)
    const bool refused = [&] {
      try {
        runner::util::write_file_atomic(path, "replaced");
        return false;
      } catch (const runner::Error&) {
        return true;
      }
    }();
    ::chmod(d.path.c_str(), 0700);
    CHECK(runner::util::read_file(path) == (refused ? "kept" : "replaced"));
    CHECK(names(d.path) == std::vector<std::string>{"keep.txt"});
  }

  TEST_CASE("write_text creates the folder and replaces the file; read_file names the path it cannot read") {
    test::TempDir d;
    const std::string path = d.path.string() + "/params/optimizer/lr";
    runner::util::write_text(path, "0.05 and more");
    runner::util::write_text(path, "0.1");
    CHECK(runner::util::read_file(path) == "0.1");
    CHECK_THROWS_WITH(runner::util::read_file(d.path.string() + "/absent"), doctest::Contains("/absent: cannot read"));
  }

  TEST_CASE("exit_process ends with the code and flushes what stdio still buffers") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::cout.flush();  // the child must not inherit (and send) what doctest has buffered
    std::fflush(nullptr);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // stdout into the pipe is fully buffered: only a flush sends the text
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      std::setvbuf(stdout, nullptr, _IOFBF, 1 << 16);  // whatever the test runner chose
      std::printf("last line, no newline");
      runner::exit_process(3);
    }
    ::close(fds[1]);
    std::string got;
    char buf[256];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 3);
    CHECK(got == "last line, no newline");
  }
}
