#include "edgecore/edged/streaming/cri_log.h"

#include <algorithm>
#include <vector>

namespace ep::edged::streaming {
namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& value) {
  if (pos + n > s.size()) return false;
  value = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    value = value * 10 + (s[i] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t daysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

std::optional<int64_t> parseRfc3339Nanos(std::string_view s) {
  int year, month, day, hour, minute, second;
  if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, month) ||
      s[7] != '-' || !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s, 11, 2, hour) || s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' ||
      !digits(s, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t frac = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 9) {
        frac = frac * 10 + (s[pos] - '0');
        ++n;
      }
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (; n < 9; ++n) frac *= 10;
  }
  int64_t offsetSeconds = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offsetSeconds = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  int64_t secs =
      daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds;
  // Years 0000-9999 keep secs * 1e9 within int64 only up to 2262: refuse beyond.
  if (secs > 9'000'000'000LL || secs < -9'000'000'000LL) return std::nullopt;
  return secs * 1'000'000'000LL + frac;
}

std::optional<CriLogEntry> parseCriLogLine(std::string_view line) {
  CriLogEntry e;
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  e.timestamp = line.substr(0, sp1);
  auto t = parseRfc3339Nanos(e.timestamp);
  if (!t) return std::nullopt;
  e.timeNs = *t;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  std::string_view stream = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (stream == "stdout") {
    e.stream = LogStream::kStdout;
  } else if (stream == "stderr") {
    e.stream = LogStream::kStderr;
  } else {
    return std::nullopt;
  }
  size_t sp3 = line.find(' ', sp2 + 1);
  std::string_view tags =
      line.substr(sp2 + 1, sp3 == std::string_view::npos ? line.npos : sp3 - sp2 - 1);
  std::string_view first = tags.substr(0, tags.find(':'));
  if (first == "P") {
    e.partial = true;
  } else if (first != "F") {
    return std::nullopt;
  }
  // "TS stdout F" with nothing after the tag is an empty full line.
  e.message = sp3 == std::string_view::npos ? std::string_view() : line.substr(sp3 + 1);
  return e;
}

void CriLogFormatter::emit(std::string_view data, std::string& out) {
  if (limitReached_) return;
  if (options_.limitBytes > 0) {
    int64_t room = options_.limitBytes - emitted_;
    if (static_cast<int64_t>(data.size()) >= room) {
      data = data.substr(0, static_cast<size_t>(room));
      limitReached_ = true;
    }
  }
  out.append(data);
  emitted_ += static_cast<int64_t>(data.size());
}

void CriLogFormatter::line(std::string_view text, std::string& out) {
  auto e = parseCriLogLine(text);
  if (!e) {
    ++malformed_;
    return;
  }
  if (options_.sinceNs > 0 && e->timeNs < options_.sinceNs) return;
  if (options_.timestamps && !midLine_) {
    emit(e->timestamp, out);
    emit(" ", out);
  }
  emit(e->message, out);
  if (!e->partial) emit("\n", out);
  midLine_ = e->partial;
}

void CriLogFormatter::feed(std::string_view bytes, std::string& out) {
  while (!bytes.empty() && !limitReached_) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      // Bound what an endless line can hold back: past 1 MiB it is treated as malformed.
      if (partialLine_.size() + bytes.size() > (1u << 20)) {
        partialLine_.clear();
        ++malformed_;
      } else {
        partialLine_.append(bytes);
      }
      return;
    }
    if (partialLine_.empty()) {
      line(bytes.substr(0, nl), out);
    } else {
      partialLine_.append(bytes.substr(0, nl));
      std::string whole;
      whole.swap(partialLine_);
      line(whole, out);
    }
    bytes.remove_prefix(nl + 1);
  }
}

size_t tailOffset(std::string_view content, int64_t lines) {
  if (lines < 0) return 0;
  if (lines == 0) return content.size();
  size_t end = content.size();
  // A final '\n' ends the last line; it does not start another one.
  if (end > 0 && content[end - 1] == '\n') --end;
  int64_t seen = 0;
  while (end > 0) {
    size_t nl = content.rfind('\n', end - 1);
    if (nl == std::string_view::npos) return 0;
    if (++seen == lines) return nl + 1;
    end = nl;
  }
  return 0;
}

std::optional<int64_t> fileTailOffset(std::FILE* file, int64_t size, int64_t lines) {
  if (lines < 0 || size <= 0) return 0;
  if (lines == 0) return size;
  constexpr int64_t kBlock = 64 * 1024;
  std::vector<char> buf(kBlock);
  int64_t end = size;
  int64_t seen = 0;
  bool skipFinalNewline = true;
  while (end > 0) {
    int64_t start = std::max<int64_t>(0, end - kBlock);
    size_t n = static_cast<size_t>(end - start);
    if (std::fseek(file, static_cast<long>(start), SEEK_SET) != 0) return std::nullopt;
    if (std::fread(buf.data(), 1, n, file) != n) return std::nullopt;
    for (size_t i = n; i-- > 0;) {
      if (buf[i] != '\n') {
        skipFinalNewline = false;
        continue;
      }
      if (skipFinalNewline) {  // the file's last '\n' ends its last line
        skipFinalNewline = false;
        continue;
      }
      if (++seen == lines) return start + static_cast<int64_t>(i) + 1;
    }
    end = start;
  }
  return 0;
}

}  // namespace ep::edged::streaming
