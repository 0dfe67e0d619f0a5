#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "cloudcore/store/store.h"
#include "common/api/field_error.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::registry {

using Json = nlohmann::json;

// The address range Services take their cluster IPs from and the port range of their node
// ports: kube-apiserver's --service-cluster-ip-range and --service-node-port-range.
// Single-stack IPv4. A value type, thread-safe to read.
struct ServiceNetwork {
  uint32_t base = 0;     // network address, host order
  int prefixLength = 0;  // 8..30
  int nodePortMin = 30000;
  int nodePortMax = 32767;

  // "10.96.0.0/12" and "30000-32767", Kubernetes' defaults.
  static ServiceNetwork defaults();
  // Errors name the setting: a CIDR that is not IPv4, a host address ("10.96.0.1/12"), a prefix
  // outside 8..30; a port range that is not "LOW-HIGH" within 1..65535.
  static Result<ServiceNetwork> parse(const std::string& cidr, const std::string& nodePortRange);

  std::string cidr() const;           // "10.96.0.0/12"
  std::string nodePortRange() const;  // "30000-32767"
  // The first host address: the `kubernetes` Service's, never handed out to others.
  std::string firstIp() const;
  // Whether `ip` (dotted quad) is a host address of the range (neither the network nor the
  // broadcast address).
  bool contains(const std::string& ip) const;
};

// Kubernetes' Service defaults (SetDefaults_Service and the REST storage's single-stack
// fields): type ClusterIP, sessionAffinity None (ClientIP: a 10800 s timeout), ports' protocol
// TCP and targetPort = port, status.loadBalancer {}; for every type but ExternalName also
// internalTrafficPolicy Cluster, ipFamilies [IPv4], ipFamilyPolicy SingleStack, clusterIPs
// mirroring clusterIP; externalTrafficPolicy Cluster for NodePort and LoadBalancer,
// allocateLoadBalancerNodePorts true for LoadBalancer.
void defaultService(Json& service);

// On an update of a Service (before defaulting and validation), as Kubernetes' REST storage:
// - carries into `next` what the server allocated and the writer left out: spec.clusterIP and
//   clusterIPs, ipFamilies/ipFamilyPolicy, and each port's nodePort (the port of `current`
//   with the same port number and protocol) while the type still needs node ports;
// - drops what the new type does not use when the writer kept the old values: node ports,
//   externalTrafficPolicy and allocateLoadBalancerNodePorts when the type no longer needs node
//   ports, the cluster IP and IP family fields when it becomes an ExternalName.
void keepAllocatedValues(const Json& current, Json& next);

// Reservations of cluster IPs and node ports, one store key each (resource
// kAllocationResource, names "ip-A.B.C.D" and "nodeport-N"), created with the store's
// create-if-absent so that two writers never get the same value; the value names the Service
// (namespace, name, uid) and when it was reserved. The `kubernetes` Service in `default` alone
// takes the range's first IP. Thread-safe: every method works through the store only.
class ServiceAllocator {
 public:
  static constexpr const char* kAllocationResource = "serviceallocations";

  ServiceAllocator(store::Store& store, Clock& clock, ServiceNetwork network);

  const ServiceNetwork& network() const { return network_; }

  // Fills in and reserves what `next` needs that `current` (the stored Service; null on create)
  // does not already hold: the cluster IP (unless headless or ExternalName) and the node port
  // of every port (NodePort, and LoadBalancer unless allocateLoadBalancerNodePorts is false;
  // node ports the writer chose are reserved either way). Values the writer chose are checked
  // against the ranges and reserved; missing ones are picked at random among the free ones. `next`
  // must carry metadata.namespace, name and uid. A dry run fills in free values without reserving.
  // On success `out.reserved` holds the new reservations: release() them if the write fails.
  // A value the writer chose that is taken or out of range is an entry of `out.errors` (the
  // caller answers 422 Invalid; nothing stays reserved). Errors: 500 when a range is full, the
  // store's errors (nothing stays reserved).
  struct Allocation {
    std::vector<std::string> reserved;
    std::vector<api::FieldError> errors;
  };
  Status allocate(const Json* current, Json& next, bool dryRun, Allocation& out);

  // Removes reservations by key (best effort; failures are logged, repair() catches them).
  void release(const std::vector<std::string>& keys);

  // After a write: releases what `before` held and `after` (null once deleted) does not.
  void releaseUnused(const Json& before, const Json* after);

  // Releases reservations that no stored Service holds (a crash between reserving and writing
  // the Service, or after deleting it), if made at least `grace` before now so that a write in
  // flight is never robbed. Returns how many were released.
  Result<int> repair(int64_t graceMillis = 60'000);

 private:
  // Creates the reservation `key` (a dry run only checks it is free). `taken`: it exists.
  Status reserve(const std::string& key, const Json& owner, bool dryRun, bool& taken);
  // Picks a free value at random among `size` candidates (candidate(i) is the key's value) and
  // reserves it; retried when another writer took it first.
  Result<uint32_t> reserveRandom(const char* prefix, uint32_t first, uint32_t count,
                                 const Json& owner, bool dryRun, std::vector<std::string>& keys,
                                 const char* what);

  store::Store& store_;
  Clock& clock_;
  const ServiceNetwork network_;
};

}  // namespace ep::registry
