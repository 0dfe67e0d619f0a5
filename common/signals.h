#pragma once

// Synchronous SIGINT/SIGTERM handling for the daemons' main threads. SIGUSR1 is taken the same
// way: edgecore's upgrade handover (docs/upgrades.md) raises it; for every other use it ends
// the daemon, as its default action would.

namespace ep {

// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread (threads started afterwards inherit the
// mask, so the signals are only taken by waitForTerminationSignal()) and ignores SIGPIPE
// process-wide. Call from main() before any thread starts.
void blockTerminationSignals();

// Waits until SIGINT, SIGTERM or SIGUSR1 arrives and returns its number. Requires
// blockTerminationSignals() first; meant for the main thread only.
int waitForTerminationSignal();

// Like waitForTerminationSignal(), but runs `idle` on the calling thread every `periodSeconds`
// while waiting (edgecore: handing freed heap back to the kernel). A period <= 0 or a null
// `idle` waits without it.
int waitForTerminationSignal(int periodSeconds, void (*idle)());

// Whether SIGINT or SIGTERM is pending (blocked and not yet taken) for this thread or process.
bool terminationSignalPending();

}  // namespace ep
