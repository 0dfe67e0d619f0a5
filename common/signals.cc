#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>

namespace ep {

namespace {

sigset_t terminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  return signals;
}

}  // namespace

void blockTerminationSignals() {
  sigset_t signals = terminationSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int waitForTerminationSignal() {
  sigset_t signals = terminationSignals();
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

int waitForTerminationSignal(int periodSeconds, void (*idle)()) {
  if (periodSeconds <= 0 || idle == nullptr) return waitForTerminationSignal();
  sigset_t signals = terminationSignals();
  const timespec period{periodSeconds, 0};
  while (true) {
    const int sig = sigtimedwait(&signals, nullptr, &period);
    if (sig > 0) return sig;
    if (errno == EAGAIN) idle();
  }
}

bool terminationSignalPending() {
  sigset_t pending;
  sigemptyset(&pending);
  if (sigpending(&pending) != 0) return false;
  return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
}

}  // namespace ep
