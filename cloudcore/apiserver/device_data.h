#pragma once

// The `data` subresource of Devices: the time series of the values a device reported for its
// properties with reportToCloud (docs/devices.md, "Device data"), which `edgectl data` prints.
//
//   GET /apis/devices.kubeedge.io/v1beta1/namespaces/NS/devices/NAME/data
//       ?property=P          only this property (default: all)
//       &sinceSeconds=N      only samples stamped in the last N seconds
//       &sinceTime=RFC3339   only samples stamped at or after this time
//       &limit=N             the newest N samples (1..10000, default 1000)
//
// answers {"kind": "DeviceData", "apiVersion": "data.edgeplane.io/v1alpha1", "metadata":
// {"namespace", "name"}, "items": [{"property", "timestamp", "value"}]} with items oldest
// first. Authorized as `get` on devices/data (the view role has it); 404 when the Device does
// not exist.
//
//   GET /apis/rules.kubeedge.io/v1/namespaces/NS/rules/NAME/data   (same parameters)
//
// answers the messages an eventbus -> rest Rule carried to the cloud (docs/rules.md), kind
// "RuleData", `property` being the MQTT topic; `get` on rules/data.

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/devicedata/device_data_store.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"

namespace ep::apiserver {

// Registers devices/data and rules/data on `handler`. `registry`, `data` and `clock` (for
// sinceSeconds) must outlive it. Call before the server starts; the route is then thread-safe like
// its dependencies.
void installDeviceData(ApiHandler& handler, registry::Registry& registry,
                       devicedata::DeviceDataStore& data, const Clock& clock);

// Milliseconds since the epoch as RFC 3339 with milliseconds: 2026-01-02T03:04:05.678Z.
std::string formatRfc3339Millis(int64_t unixMillis);

}  // namespace ep::apiserver
