#pragma once

// Synchronous SIGINT/SIGTERM handling for the daemons' main threads.

namespace ep {

// Blocks SIGINT and SIGTERM in the calling thread (threads started afterwards inherit the mask,
// so the signals are only taken by waitForTerminationSignal()) and ignores SIGPIPE
// process-wide. Call from main() before any thread starts.
void blockTerminationSignals();

// Waits until SIGINT or SIGTERM arrives and returns its number. Requires
// blockTerminationSignals() first; meant for the main thread only.
int waitForTerminationSignal();

// Like waitForTerminationSignal(), but runs `idle` on the calling thread every `periodSeconds`
// while waiting (edgecore: handing freed heap back to the kernel). A period <= 0 or a null
// `idle` waits without it.
int waitForTerminationSignal(int periodSeconds, void (*idle)());

}  // namespace ep
