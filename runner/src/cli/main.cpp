// The runner executable: everything lives in the core library.
#include "cli/cli.hpp"

int main(int argc, char** argv) { return runner::cli::main(argc, argv); }
