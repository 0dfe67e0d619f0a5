#include "common/clock.h"

#include <cstdio>
#include <ctime>

namespace ep {

int64_t SystemClock::nowMillis() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::chrono::steady_clock::time_point SystemClock::steadyNow() const {
  return std::chrono::steady_clock::now();
}

Clock& SystemClock::instance() {
  static auto* clock = new SystemClock();
  return *clock;
}

std::string formatRfc3339(int64_t unixMillis) {
  std::time_t secs = static_cast<std::time_t>(unixMillis / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string formatRfc3339Nano(int64_t unixNanos) {
  std::time_t secs = static_cast<std::time_t>(unixNanos / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09lldZ",
                static_cast<long long>(unixNanos % 1000000000));
  return buf;
}

std::string formatRfc3339Micro(int64_t unixMillis) {
  std::string nano = formatRfc3339Nano(unixMillis * 1000000);
  return nano.substr(0, nano.size() - 4) + "Z";  // drop the last three digits and 'Z'
}

int64_t parseRfc3339(const std::string& text) {
  int y, mo, d, h, mi, s;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) !=
      6) {
    return -1;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  int64_t secs = timegm(&tm);
  const char* rest = text.c_str() + consumed;
  int64_t millis = 0;
  if (*rest == '.') {
    ++rest;
    int digits = 0;
    while (*rest >= '0' && *rest <= '9') {
      if (digits < 3) millis = millis * 10 + (*rest - '0');
      ++digits;
      ++rest;
    }
    for (; digits < 3; ++digits) millis *= 10;
  }
  if (*rest == 'Z' || *rest == 'z') return secs * 1000 + millis;
  int oh, om;
  if ((*rest == '+' || *rest == '-') && std::sscanf(rest + 1, "%2d:%2d", &oh, &om) == 2) {
    int64_t off = (oh * 3600 + om * 60) * (*rest == '+' ? 1 : -1);
    return (secs - off) * 1000 + millis;
  }
  return -1;
}

std::string formatAge(int64_t ageMillis) {
  int64_t s = ageMillis < 0 ? 0 : ageMillis / 1000;
  auto fmt = [](int64_t a, const char* ua, int64_t b, const char* ub) {
    return b > 0 ? std::to_string(a) + ua + std::to_string(b) + ub : std::to_string(a) + ua;
  };
  if (s < 120) return std::to_string(s) + "s";
  int64_t m = s / 60;
  if (m < 10) return fmt(m, "m", s % 60, "s");
  if (m < 180) return std::to_string(m) + "m";
  int64_t h = m / 60;
  if (h < 8) return fmt(h, "h", m % 60, "m");
  if (h < 48) return std::to_string(h) + "h";
  int64_t days = h / 24;
  if (days < 8) return fmt(days, "d", h % 24, "h");
  if (days < 365 * 2) return std::to_string(days) + "d";
  int64_t years = days / 365;
  if (years < 8) return fmt(years, "y", days % 365, "d");
  return std::to_string(years) + "y";
}

}  // namespace ep
