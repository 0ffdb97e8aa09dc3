#include "engine/signals.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace runner {
namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (sig == SIGINT && g_stop_signal.load() != 0) _exit(130);
  g_stop_signal.store(sig);
}

}  // namespace

struct SignalScope::Saved {
  struct sigaction term {
  }, intr{}, usr1{};
};

SignalScope::SignalScope() : saved_(new Saved) {
  g_stop_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &saved_->term);
  sigaction(SIGINT, &sa, &saved_->intr);
  sigaction(SIGUSR1, &sa, &saved_->usr1);
}

SignalScope::~SignalScope() {
  sigaction(SIGTERM, &saved_->term, nullptr);
  sigaction(SIGINT, &saved_->intr, nullptr);
  sigaction(SIGUSR1, &saved_->usr1, nullptr);
  delete saved_;
}

int pending_stop_signal() { return g_stop_signal.load(); }

}  // namespace runner
