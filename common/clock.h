#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace ep {

// Wall-clock and monotonic time behind one seam so tests can drive time. Implementations are
// thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall clock, used for timestamps written to objects).
  virtual int64_t nowMillis() const = 0;
  // Monotonic time for intervals and deadlines.
  virtual std::chrono::steady_clock::time_point steadyNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t nowMillis() const override;
  std::chrono::steady_clock::time_point steadyNow() const override;
  // Process-wide instance; never destroyed.
  static Clock& instance();
};

// Test clock: time moves only when advance() is called.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t startMillis = 1'700'000'000'000) : millis_(startMillis) {}
  int64_t nowMillis() const override { return millis_.load(); }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(millis_.load()));
  }
  void advance(std::chrono::milliseconds d) { millis_ += d.count(); }

 private:
  std::atomic<int64_t> millis_;
};

// RFC 3339 in UTC with second precision, as Kubernetes writes metav1.Time: 2026-01-02T03:04:05Z.
std::string formatRfc3339(int64_t unixMillis);
// RFC 3339 in UTC with nanoseconds, as CRI log lines carry: 2026-01-02T03:04:05.123456789Z.
std::string formatRfc3339Nano(int64_t unixNanos);
// RFC 3339 in UTC with microseconds, as Kubernetes writes metav1.MicroTime (a Lease's renewTime,
// an events.k8s.io eventTime): 2026-01-02T03:04:05.123000Z.
std::string formatRfc3339Micro(int64_t unixMillis);
// Parses the format above (fractional seconds and numeric offsets accepted). -1 on failure.
int64_t parseRfc3339(const std::string& text);
// kubectl-style short age: 5s, 3m, 2m30s, 5h, 3d, 2y.
std::string formatAge(int64_t ageMillis);

}  // namespace ep
