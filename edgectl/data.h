#pragma once

// edgectl data: the values a device reported for its properties with reportToCloud, from the
// cloud's time series (cloudcore's devices/NAME/data; docs/devices.md, "Device data"), or the
// messages an eventbus -> rest Rule carried (rules/NAME/data; docs/rules.md).

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "edgectl/context.h"

namespace ep::edgectl {

struct DataOptions {
  std::vector<std::string> args;  // DEVICE, device/DEVICE, rule/NAME or node/NAME
  std::string property;           // --property
  std::string since;              // --since, e.g. 10m, 2h
  int64_t limit = 0;              // --limit; 0: the server's default (1000)
  std::string output;             // -o: "" (table) | json | csv
  bool noHeaders = false;         // --no-headers (table and csv)
};

// The request path (with query) for `ns`; kInvalid on bad arguments or flags.
Result<std::string> dataPath(const std::string& ns, const DataOptions& options);

// Renders a DeviceData answer as the table (PROPERTY, TIMESTAMP, VALUE), csv
// (property,timestamp,value with RFC 4180 quoting) or json (the answer, indented).
Result<std::string> formatData(const nlohmann::json& answer, const DataOptions& options);

// Prints the device's data to ctx.out. Returns the process exit code.
int runData(Context& ctx, const DataOptions& options);

}  // namespace ep::edgectl
