#pragma once

// Parsers for configuration values shared by cloudcore and edgecore. Every error is
// kInvalid and names `key` (a YAML key or a flag such as "--history-window"), e.g.
// "apiListen: invalid port in \"host:99999\"". Pure functions: thread-safe.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace ep {

// Splits HOST:PORT ("127.0.0.1:6443", "[::1]:6443", "edge.example:6444"; ":6443" listens on
// 0.0.0.0). Brackets around an IPv6 host are removed. host and port are set only on success.
Status splitHostPort(const std::string& key, const std::string& value, std::string& host,
                     uint16_t& port);

// A comma-separated list of HOST:PORT, each checked as splitHostPort does (spaces around the
// commas allowed); the entries in order, as written. Empty entries are refused.
Result<std::vector<std::string>> splitHostPortList(const std::string& key,
                                                   const std::string& value);

// "500ms", "90s", "5m", "1h", "1h30m", "1m30s": hours, minutes, seconds and milliseconds, each
// optional but in that order; or a plain number of seconds.
Result<std::chrono::milliseconds> parseDuration(const std::string& key, const std::string& value);

// The same in whole seconds: "90s", "5m", "1h", "2h30m", or a plain number of seconds. A
// millisecond part is refused.
Result<std::chrono::seconds> parseDurationSeconds(const std::string& key, const std::string& value);

}  // namespace ep
