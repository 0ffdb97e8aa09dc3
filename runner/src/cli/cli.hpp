#pragma once
namespace runner::cli {
/// The whole command line program; returns the process exit code:
/// 0 success, 1 failure during a run, 2 bad input (usage, config, plugins).
int main(int argc, char** argv);
}  // namespace runner::cli
