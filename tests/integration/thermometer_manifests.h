#pragma once

// A DeviceModel "thermometer" (protocol simthermo: a read-only FLOAT temperature, a read-write
// INT setpoint) and a Device "thermo-1" of it bound to node edge-1, temperature reported to the
// cloud, setpoint desired "20": what ep-thermometer-mapper serves (mappers/thermometer). Used by
// the device tests, the dashboard's and kubectl's.

namespace ep::testing {

inline constexpr const char* kThermometerManifests = R"(apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: thermometer
spec:
  protocol: simthermo
  properties:
  - name: temperature
    type: FLOAT
    accessMode: ReadOnly
    minimum: "-40"
    maximum: "125"
  - name: setpoint
    type: INT
    accessMode: ReadWrite
    minimum: "0"
    maximum: "100"
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: thermo-1
spec:
  deviceModelRef:
    name: thermometer
  nodeName: edge-1
  protocol:
    protocolName: simthermo
  properties:
  - name: temperature
    reportToCloud: true
    visitors:
      protocolName: simthermo
  - name: setpoint
    desired:
      value: "20"
    visitors:
      protocolName: simthermo
)";

}  // namespace ep::testing
