#pragma once

#include <chrono>
#include <string>

#include "edgecore/edged/pod_spec.h"
#include "edgecore/edged/runtime/container_runtime.h"

namespace ep::edged {

struct ProbeOutcome {
  bool success = false;
  std::string message;  // why it failed, as the Unhealthy event says it
};

// Where a probe goes: the container (exec) and the pod's address (httpGet/tcpSocket).
struct ProbeTarget {
  std::string containerId;
  std::string podIp;                // sandbox IP; empty for host-network pods
  std::string hostIp;               // used when podIp is empty
  const Json* container = nullptr;  // for named ports
};

// Runs one probe (a v1 Probe object: exec, httpGet, tcpSocket) once, blocking for at most its
// timeoutSeconds (default 1). httpGet succeeds on a 200-399 status (HTTP only; HTTPS fails with a
// clear message), tcpSocket when a connection opens, exec when the command exits 0.
// Thread-safe.
ProbeOutcome runProbe(const Json& probe, const ProbeTarget& target, ContainerRuntime& runtime);

// Probe timing (Kubernetes defaults: period 10 s, timeout 1 s, success 1, failure 3).
struct ProbeTiming {
  std::chrono::seconds initialDelay{0};
  std::chrono::seconds period{10};
  std::chrono::seconds timeout{1};
  int successThreshold = 1;
  int failureThreshold = 3;
};
ProbeTiming probeTimingOf(const Json& probe);

}  // namespace ep::edged
