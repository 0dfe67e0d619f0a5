#pragma once

// What the edge's service proxy programs (docs/services.md, "Traffic on the edge"): pure
// functions from the cached Services and EndpointSlices to iptables-restore input. Thread-safe.

#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <vector>

namespace ep::edgecore::serviceproxy {

// Prefix of every chain the proxy owns in the nat table.
inline constexpr const char* kChainPrefix = "EDGEPLANE-";
inline constexpr const char* kServicesChain = "EDGEPLANE-SERVICES";
inline constexpr const char* kNodePortsChain = "EDGEPLANE-NODEPORTS";
inline constexpr const char* kPostroutingChain = "EDGEPLANE-POSTROUTING";
inline constexpr const char* kMarkMasqChain = "EDGEPLANE-MARK-MASQ";
// The packet mark bit that asks POSTROUTING to masquerade (kube-proxy's bit is 0x4000).
inline constexpr const char* kMasqMark = "0x8000";

struct Backend {
  std::string ip;
  int port = 0;
  auto operator<=>(const Backend&) const = default;
};

// One port of one Service with the ready endpoints of this node behind it.
struct ServicePort {
  std::string ns;
  std::string name;
  std::string portName;
  std::string protocol;  // TCP, UDP or SCTP
  std::string clusterIp;
  int port = 0;
  int nodePort = 0;               // 0: none
  std::vector<Backend> backends;  // sorted, unique
  bool operator==(const ServicePort&) const = default;
};

// For each port of each Service with a cluster IP (not headless, not ExternalName) that has at
// least one ready endpoint on `nodeName` in the Service's EndpointSlices (label
// kubernetes.io/service-name, same namespace, addressType IPv4), the backends pod-IP:port — the
// slice port of the same name and protocol. Ordered by namespace, name, port name, protocol.
// Malformed objects and fields are skipped, never thrown on.
std::vector<ServicePort> computeServicePorts(const std::vector<nlohmann::json>& services,
                                             const std::vector<nlohmann::json>& slices,
                                             const std::string& nodeName);

// The proxy's chains for `ports`: the chain of a Service port and of one of its backends.
std::string serviceChain(const ServicePort& p);
std::string backendChain(const ServicePort& p, const Backend& b);

// iptables-restore input (for `iptables-restore --noflush`) that replaces the proxy's nat rules
// with those for `ports`, atomically: the fixed chains and one chain per service port and
// backend are declared (so flushed) and filled; chains of `existing` (what the proxy made
// before) that are no longer wanted are deleted. Cluster IP:port and, on this node's addresses,
// nodePort are DNATed to a backend picked at random (equal odds); the traffic is marked and
// masqueraded so replies come back through this host (pods on one bridge, hairpin).
std::string renderNatRules(const std::vector<ServicePort>& ports,
                           const std::set<std::string>& existing);

// The chains renderNatRules(ports, ...) declares.
std::set<std::string> chainsOf(const std::vector<ServicePort>& ports);

}  // namespace ep::edgecore::serviceproxy
