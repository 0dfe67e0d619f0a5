#pragma once

// edgectl port-forward: local TCP ports forwarded to a pod on an edge node, as kubectl
// port-forward does, through cloudcore's pods/portforward (WebSocket, v4.channel.k8s.io: one
// WebSocket per local connection) and the node's tunnel.

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "edgectl/context.h"

namespace ep::edgectl {

struct PortForwardOptions {
  std::vector<std::string> args;                    // TYPE/NAME [LOCAL_PORT:]REMOTE_PORT...
  std::vector<std::string> addresses{"localhost"};  // --address
};

// What to forward: the pod, and per port spec the local port (0: any free one) and the pod's.
struct PortForwardTarget {
  std::string pod;
  struct Mapping {
    uint16_t local = 0;
    uint16_t remote = 0;
  };
  std::vector<Mapping> ports;
};

// Resolves the arguments as kubectl does: a pod (NAME, pod/NAME), or the first running pod of a
// service (svc/NAME: a port is the service's port, mapped to its targetPort), deployment or
// replica set (deploy/NAME, rs/NAME: by their selector); a remote port may be a container
// port's name. The pod must be running. kInvalid for bad arguments, the API's errors otherwise.
Result<PortForwardTarget> resolvePortForward(Context& ctx, const PortForwardOptions& options);

// Resolves, listens on each address and local port ("Forwarding from 127.0.0.1:L -> R" on
// ctx.out), and forwards every accepted connection over a WebSocket of its own ("Handling
// connection for L"), until the process is interrupted. Errors of one connection are printed
// to ctx.err and do not end the command. Returns 1 when it cannot start.
int runPortForward(Context& ctx, const PortForwardOptions& options);

}  // namespace ep::edgectl
