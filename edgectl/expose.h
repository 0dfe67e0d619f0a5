#pragma once

// `edgectl expose`: kubectl's verb that makes a Service for a Deployment, ReplicaSet, Pod or
// Service (docs/services.md). Run against the Context's ApiTransport; single-threaded.

#include <string>
#include <vector>

#include "edgectl/context.h"

namespace ep::edgectl {

struct ExposeOptions {
  std::vector<std::string> args;  // TYPE NAME or TYPE/NAME
  std::string port;               // --port: the Service's port ("" = the containers' ports)
  std::string targetPort;         // --target-port: a number or a port name ("" = the port)
  std::string type;               // --type: ClusterIP (default), NodePort, LoadBalancer
  std::string name;               // --name: default the exposed object's name
  std::string protocol;           // --protocol: TCP (default), UDP, SCTP
  std::string selector;           // --selector: k=v,... (default: the object's)
  std::string clusterIp;          // --cluster-ip: an IP, or None for a headless Service
  std::string dryRun;             // "", "none", "client" or "server"
  std::string output;             // "", "json", "yaml", "name"
};

// The Service kubectl expose would create for `object` (a Deployment, ReplicaSet, Pod or Service
// as the API returned it) in namespace `ns`; an error names what is missing (a selector, a port).
Result<nlohmann::json> exposeService(const nlohmann::json& object, const std::string& ns,
                                     const ExposeOptions& options);

// Returns the process exit status; errors are printed as kubectl prints them.
int runExpose(Context& ctx, const ExposeOptions& options);

}  // namespace ep::edgectl
