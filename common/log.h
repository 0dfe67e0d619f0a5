#pragma once

#include <string>

#include "common/status.h"

namespace ep {

// Configures the process-wide spdlog default logger: level is one of trace, debug, info, warn,
// error; output to stderr with timestamps; a line identical to the previous one within 10 s is
// not written but counted ("Skipped N duplicate messages.." before the next different line).
// Call once from main before starting services.
Status setupLogging(const std::string& level, const std::string& component);

}  // namespace ep
