// The runner executable: everything lives in the core library.
#include "cli/cli.hpp"
#include "util/system.hpp"

int main(int argc, char** argv) {
  runner::keep_freed_memory();                          // before the first large allocation
  runner::exit_process(runner::cli::main(argc, argv));  // without LibTorch's exit-time teardown
}
