#include "cli/sweep.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <iostream>
#include <set>

#include "runner/error.hpp"
#include "tracking/compare.hpp"

extern char** environ;

namespace runner::cli {
namespace fs = std::filesystem;

namespace {

// "lr=0.1,0.05" -> {"lr=0.1", "lr=0.05"}; commas inside brackets or quotes do not split.
std::vector<std::string> alternatives(const std::string& override_text) {
  const auto eq = override_text.find('=');
  if (eq == std::string::npos) return {override_text};
  const std::string key = override_text.substr(0, eq + 1), value = override_text.substr(eq + 1);
  std::vector<std::string> out;
  int depth = 0;
  char quote = 0;
  std::string cur;
  for (char c : value) {
    if (quote) {
      quote = c == quote ? 0 : quote;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 0) {
      out.push_back(key + cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  out.push_back(key + cur);
  return out;
}

std::set<std::string> folders_in(const std::string& root) {
  std::set<std::string> out;
  std::error_code ec;
  if (fs::is_directory(root, ec))
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.is_directory()) out.insert(e.path().string());
  return out;
}

// Runs this executable with `args`; its exit code (128 + signal when killed).
int run_child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  argv.push_back(const_cast<char*>(self.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
    throw Error("sweep: cannot start " + self);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::vector<std::vector<std::string>> sweep_grid(const std::vector<std::string>& overrides) {
  std::vector<std::vector<std::string>> grid = {{}};
  for (const auto& o : overrides) {
    std::vector<std::vector<std::string>> next;
    for (const auto& point : grid)
      for (const auto& alt : alternatives(o)) {
        next.push_back(point);
        next.back().push_back(alt);
      }
    grid = std::move(next);
  }
  return grid;
}

int run_sweep(const SweepPlan& plan, std::ostream& out) {
  std::vector<std::string> runs;
  int first_failure = 0;
  for (size_t i = 0; i < plan.points.size(); ++i) {
    std::string line;
    for (const auto& o : plan.points[i]) line += " " + o;
    out << "sweep: run " << i + 1 << "/" << plan.points.size() << ":" << line << std::endl;
    const std::set<std::string> before = folders_in(plan.runs_root);
    std::vector<std::string> args = {plan.config_path};
    args.insert(args.end(), plan.points[i].begin(), plan.points[i].end());
    args.insert(args.end(), plan.extra_args.begin(), plan.extra_args.end());
    const int rc = run_child(args);
    for (const auto& f : folders_in(plan.runs_root))
      if (!before.count(f)) runs.push_back(f);
    if (rc != 0) {
      out << "sweep: run " << i + 1 << " exited with " << rc << std::endl;
      if (!first_failure) first_failure = rc;
    }
  }
  if (runs.size() >= 2) {
    char stamp[32];
    const std::time_t t = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
    const std::string html = plan.runs_root + "/sweep-" + stamp + ".html";
    tracking::compare_runs(runs, html, out);
  }
  out << "sweep: " << plan.points.size() << " runs, " << runs.size() << " run folders"
      << (first_failure ? ", some failed" : ", all finished") << std::endl;
  return first_failure;
}

}  // namespace runner::cli
