#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

namespace ep {

namespace {

sigset_t terminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
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

}  // namespace ep
