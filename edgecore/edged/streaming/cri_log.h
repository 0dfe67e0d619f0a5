#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

// The CRI container log format and the kubelet's log options over it. Pure text processing
// (no threads, no runtime), so it is unit-tested and fuzzed on its own.
//
// A CRI log file holds one entry per line:
//   2026-01-02T03:04:05.123456789Z stdout F the message
// timestamp (RFC 3339, nanoseconds), stream (stdout|stderr), tag (F: full line, P: partial,
// continued by the next entry; tags may carry more ':'-separated fields after the first), then
// one space and the message (possibly empty). The line ends with '\n'.
namespace ep::edged::streaming {

enum class LogStream { kStdout, kStderr };

struct CriLogEntry {
  int64_t timeNs = 0;          // Unix nanoseconds
  std::string_view timestamp;  // the timestamp text as written
  LogStream stream = LogStream::kStdout;
  bool partial = false;
  std::string_view message;  // without the trailing '\n'; views into the parsed line
};

// Parses one line without its '\n'. nullopt for anything malformed.
std::optional<CriLogEntry> parseCriLogLine(std::string_view line);

// RFC 3339 with optional fraction (up to 9 digits) and 'Z' or a numeric offset. nullopt when
// malformed or out of range.
std::optional<int64_t> parseRfc3339Nanos(std::string_view text);

// What the client asked for (Kubernetes PodLogOptions, minus container/follow/previous, which
// choose the file and the reading loop).
struct LogOutputOptions {
  bool timestamps = false;
  int64_t sinceNs = 0;     // skip entries older than this (Unix ns); 0: keep all
  int64_t limitBytes = 0;  // stop after this many output bytes; 0: no limit
};

// Turns raw log file bytes into what `kubectl logs` prints: each entry's message, '\n' after
// full ones, the entry's timestamp and a space at the start of every output line when
// `timestamps` is set. Entries older than `sinceNs` and malformed lines are skipped. Input may
// be split anywhere (an incomplete last line is kept until the next feed). Output is never
// longer than the input consumed, and stops for good at `limitBytes`. Not thread-safe.
class CriLogFormatter {
 public:
  explicit CriLogFormatter(LogOutputOptions options) : options_(options) {}

  // Appends the output for `bytes` to `out`.
  void feed(std::string_view bytes, std::string& out);
  // The limit was reached: nothing more will be produced.
  bool limitReached() const { return limitReached_; }
  // Lines skipped because they were malformed.
  uint64_t malformedLines() const { return malformed_; }
  // Bytes of an incomplete line held back.
  size_t pendingBytes() const { return partialLine_.size(); }

 private:
  void line(std::string_view text, std::string& out);
  void emit(std::string_view data, std::string& out);

  const LogOutputOptions options_;
  std::string partialLine_;  // an incomplete line from the previous feed
  bool midLine_ = false;     // the last emitted entry was partial (P)
  bool limitReached_ = false;
  int64_t emitted_ = 0;
  uint64_t malformed_ = 0;
};

// Byte offset in `content` where its last `lines` lines begin (a final line without '\n'
// counts). 0 when it has fewer lines, content.size() when lines == 0; lines < 0 means all (0).
size_t tailOffset(std::string_view content, int64_t lines);

// The same on an open file of `size` bytes, reading backwards in blocks (never the whole file
// at once). Returns the offset, or nullopt on a read error.
std::optional<int64_t> fileTailOffset(std::FILE* file, int64_t size, int64_t lines);

}  // namespace ep::edged::streaming
