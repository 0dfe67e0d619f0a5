#pragma once

namespace ep {

// Process-wide settings for the gRPC runtime; call once at the start of main, before any
// channel or server exists. Debian's abseil is built without NDEBUG, which leaves
// absl::Mutex deadlock detection on: every lock gRPC takes then walks a lock-order graph
// (measured at ~7% of cloudcore's CPU while fanning out to 10,000 streams). It is turned off.
void tuneGrpcRuntime();

}  // namespace ep
