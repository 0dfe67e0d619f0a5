#pragma once

// Waiting on a condition in tests (never on a fixed sleep): polls `pred` every `interval` until
// it holds or `timeout` passes, then returns its last value. Header-only.

#include <chrono>
#include <thread>

namespace ep::testing {

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                std::chrono::milliseconds interval = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(interval);
  }
  return pred();
}

}  // namespace ep::testing
