#include "cloudcore/registry/service_allocator.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "common/api/object_util.h"

namespace ep::registry {
namespace {

constexpr const char* kIpPrefix = "ip-";
constexpr const char* kPortPrefix = "nodeport-";
constexpr int kMaxRaces = 16;

std::string formatIp(uint32_t host) {
  in_addr a{};
  a.s_addr = htonl(host);
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

bool parseIp(const std::string& s, uint32_t& out) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  out = ntohl(a.s_addr);
  return true;
}

bool parseInt(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string typeOf(const Json& svc) {
  return api::stringAt(svc, "spec.type", "ClusterIP");
}

bool needsNodePorts(const std::string& type) {
  return type == "NodePort" || type == "LoadBalancer";
}

// Whether the server gives `svc`'s ports node ports: NodePort, and LoadBalancer unless
// spec.allocateLoadBalancerNodePorts is false.
bool allocatesNodePorts(const Json& svc) {
  const std::string type = api::stringAt(svc, "spec.type", "ClusterIP");
  if (type == "NodePort") return true;
  if (type != "LoadBalancer") return false;
  const Json* a = api::lookupPath(svc, "spec.allocateLoadBalancerNodePorts");
  return a == nullptr || !a->is_boolean() || a->get<bool>();
}

std::string protocolOf(const Json& port) {
  std::string p = api::stringAt(port, "protocol");
  return p.empty() ? "TCP" : p;
}

// The IP a Service holds: none for ExternalName and headless Services.
std::string heldIp(const Json& svc) {
  if (typeOf(svc) == "ExternalName") return {};
  std::string ip = api::stringAt(svc, "spec.clusterIP");
  return ip == "None" ? std::string() : ip;
}

// The node ports a Service holds.
std::set<int> heldPorts(const Json& svc) {
  std::set<int> out;
  if (!needsNodePorts(typeOf(svc))) return out;
  const Json* ports = api::lookupPath(svc, "spec.ports");
  if (ports == nullptr || !ports->is_array()) return out;
  for (const auto& p : *ports) {
    if (p.is_object() && p.contains("nodePort") && p["nodePort"].is_number_integer() &&
        p["nodePort"].get<int64_t>() > 0 && p["nodePort"].get<int64_t>() <= 65535) {
      out.insert(static_cast<int>(p["nodePort"].get<int64_t>()));
    }
  }
  return out;
}

std::string ipKey(const std::string& ip) {
  return kIpPrefix + ip;
}

std::string portKey(int port) {
  return kPortPrefix + std::to_string(port);
}

// The port of `ports` with `port`'s number and protocol, or null. Mistyped fields never throw
// (this runs before validation, which names them).
const Json* samePort(const Json& ports, const Json& port) {
  if (!ports.is_array() || !port.is_object()) return nullptr;
  const Json* number = api::lookupPath(port, "port");
  if (number == nullptr || !number->is_number_integer()) return nullptr;
  for (const auto& p : ports) {
    const Json* n = api::lookupPath(p, "port");
    if (n != nullptr && *n == *number && protocolOf(p) == protocolOf(port)) return &p;
  }
  return nullptr;
}

bool isZeroOrAbsent(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() || (it->is_number_integer() && it->get<int64_t>() == 0);
}

}  // namespace

ServiceNetwork ServiceNetwork::defaults() {
  auto n = parse("10.96.0.0/12", "30000-32767");
  return *n;
}

Result<ServiceNetwork> ServiceNetwork::parse(const std::string& cidr,
                                             const std::string& nodePortRange) {
  ServiceNetwork n;
  auto slash = cidr.find('/');
  int prefix = 0;
  if (slash == std::string::npos || !parseIp(cidr.substr(0, slash), n.base) ||
      !parseInt(std::string_view(cidr).substr(slash + 1), prefix)) {
    return invalidError("serviceClusterIpRange: \"" + cidr +
                        "\" is not an IPv4 CIDR (e.g. 10.96.0.0/12)");
  }
  if (prefix < 8 || prefix > 30) {
    return invalidError("serviceClusterIpRange: \"" + cidr +
                        "\": the prefix length must be between 8 and 30");
  }
  n.prefixLength = prefix;
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  if ((n.base & ~mask) != 0) {
    return invalidError("serviceClusterIpRange: \"" + cidr +
                        "\" is not a network address (did you mean " + formatIp(n.base & mask) +
                        "/" + std::to_string(prefix) + "?)");
  }
  auto dash = nodePortRange.find('-');
  if (dash == std::string::npos ||
      !parseInt(std::string_view(nodePortRange).substr(0, dash), n.nodePortMin) ||
      !parseInt(std::string_view(nodePortRange).substr(dash + 1), n.nodePortMax) ||
      n.nodePortMin < 1 || n.nodePortMax > 65535 || n.nodePortMin > n.nodePortMax) {
    return invalidError("serviceNodePortRange: \"" + nodePortRange +
                        "\" is not a port range LOW-HIGH within 1-65535 (e.g. "
                        "30000-32767)");
  }
  return n;
}

std::string ServiceNetwork::cidr() const {
  return formatIp(base) + "/" + std::to_string(prefixLength);
}

std::string ServiceNetwork::nodePortRange() const {
  return std::to_string(nodePortMin) + "-" + std::to_string(nodePortMax);
}

std::string ServiceNetwork::firstIp() const {
  return formatIp(base + 1);
}

bool ServiceNetwork::contains(const std::string& ip) const {
  uint32_t h = 0;
  if (!parseIp(ip, h)) return false;
  uint32_t size = uint32_t{1} << (32 - prefixLength);
  return h > base && h < base + size - 1;
}

void defaultService(Json& svc) {
  if (!svc.contains("spec")) svc["spec"] = Json::object();
  Json& spec = svc["spec"];
  if (!spec.is_object()) return;  // validation names it
  if (!spec.contains("type")) spec["type"] = "ClusterIP";
  const std::string type = spec["type"].is_string() ? spec["type"].get<std::string>() : "";
  if (!spec.contains("sessionAffinity")) spec["sessionAffinity"] = "None";
  if (spec["sessionAffinity"] == "ClientIP") {
    Json& cfg = spec["sessionAffinityConfig"];
    if (cfg.is_null()) cfg = Json::object();
    if (cfg.is_object()) {
      Json& cip = cfg["clientIP"];
      if (cip.is_null()) cip = Json::object();
      if (cip.is_object() && !cip.contains("timeoutSeconds")) cip["timeoutSeconds"] = 10800;
    }
  }
  if (auto ports = spec.find("ports"); ports != spec.end() && ports->is_array()) {
    for (auto& p : *ports) {
      if (!p.is_object()) continue;
      if (!p.contains("protocol")) p["protocol"] = "TCP";
      auto tp = p.find("targetPort");
      if (tp == p.end() || tp->is_null() || (tp->is_number_integer() && tp->get<int64_t>() == 0) ||
          (tp->is_string() && tp->get<std::string>().empty())) {
        if (p.contains("port")) p["targetPort"] = p["port"];
      }
    }
  }
  if (!svc.contains("status")) svc["status"] = Json{{"loadBalancer", Json::object()}};
  if (type == "ExternalName") return;
  if (!spec.contains("internalTrafficPolicy")) spec["internalTrafficPolicy"] = "Cluster";
  if (needsNodePorts(type) && !spec.contains("externalTrafficPolicy")) {
    spec["externalTrafficPolicy"] = "Cluster";
  }
  if (type == "LoadBalancer" && !spec.contains("allocateLoadBalancerNodePorts")) {
    spec["allocateLoadBalancerNodePorts"] = true;
  }
  if (!spec.contains("ipFamilies")) spec["ipFamilies"] = Json::array({"IPv4"});
  if (!spec.contains("ipFamilyPolicy")) spec["ipFamilyPolicy"] = "SingleStack";
  // clusterIP and clusterIPs mirror each other (single stack).
  auto ip = spec.find("clusterIP");
  auto ips = spec.find("clusterIPs");
  bool hasIp = ip != spec.end() && ip->is_string() && !ip->get<std::string>().empty();
  bool hasIps = ips != spec.end() && ips->is_array() && !ips->empty();
  if (hasIp && !hasIps) {
    spec["clusterIPs"] = Json::array({*ip});
  } else if (!hasIp && hasIps && (*ips)[0].is_string()) {
    spec["clusterIP"] = (*ips)[0];
  }
}

void keepAllocatedValues(const Json& current, Json& next) {
  auto spec = next.find("spec");
  if (spec == next.end() || !spec->is_object()) return;
  const Json* curSpecPtr = api::lookupPath(current, "spec");
  if (curSpecPtr == nullptr || !curSpecPtr->is_object()) return;
  const Json& curSpec = *curSpecPtr;
  const std::string curType = typeOf(current);
  const std::string nextType = api::stringAt(next, "spec.type", "ClusterIP");
  static const Json kNoPorts = Json::array();
  const Json& curPorts = curSpec.contains("ports") ? curSpec["ports"] : kNoPorts;

  if (nextType != "ExternalName" && curType != "ExternalName") {
    bool noIp = isZeroOrAbsent(*spec, "clusterIP") || (*spec)["clusterIP"] == "";
    bool noIps = !spec->contains("clusterIPs") || (*spec)["clusterIPs"].is_null() ||
                 ((*spec)["clusterIPs"].is_array() && (*spec)["clusterIPs"].empty());
    if (noIp && noIps && curSpec.contains("clusterIP")) {
      (*spec)["clusterIP"] = curSpec["clusterIP"];
      if (curSpec.contains("clusterIPs")) (*spec)["clusterIPs"] = curSpec["clusterIPs"];
    }
    for (const char* f : {"ipFamilies", "ipFamilyPolicy"}) {
      if ((!spec->contains(f) || (*spec)[f].is_null()) && curSpec.contains(f)) {
        (*spec)[f] = curSpec[f];
      }
    }
  }
  auto ports = spec->find("ports");
  if (needsNodePorts(nextType) && needsNodePorts(curType) && ports != spec->end() &&
      ports->is_array()) {
    for (auto& p : *ports) {
      if (!p.is_object() || !isZeroOrAbsent(p, "nodePort")) continue;
      const Json* old = samePort(curPorts, p);
      if (old != nullptr && old->contains("nodePort")) p["nodePort"] = (*old)["nodePort"];
    }
  }
  // What the new type does not use goes when the writer only carried the old value along.
  if (!needsNodePorts(nextType) && needsNodePorts(curType) && ports != spec->end() &&
      ports->is_array()) {
    for (auto& p : *ports) {
      if (!p.is_object() || !p.contains("nodePort")) continue;
      const Json* old = samePort(curPorts, p);
      if (old != nullptr && old->value("nodePort", Json()) == p["nodePort"]) p.erase("nodePort");
    }
    for (const char* f : {"externalTrafficPolicy", "allocateLoadBalancerNodePorts"}) {
      if (spec->contains(f) && curSpec.contains(f) && (*spec)[f] == curSpec[f]) spec->erase(f);
    }
  }
  if (nextType == "ExternalName" && curType != "ExternalName") {
    for (const char* f :
         {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"}) {
      if (spec->contains(f) && curSpec.contains(f) && (*spec)[f] == curSpec[f]) spec->erase(f);
    }
  }
}

ServiceAllocator::ServiceAllocator(store::Store& store, Clock& clock, ServiceNetwork network)
    : store_(store), clock_(clock), network_(network) {}

Status ServiceAllocator::reserve(const std::string& key, const Json& owner, bool dryRun,
                                 bool& taken) {
  taken = false;
  if (dryRun) {
    auto r = store_.get(kAllocationResource, "", key);
    if (r.isOk()) {
      taken = true;
      return Status::ok();
    }
    return r.status().code() == Code::kNotFound ? Status::ok() : r.status();
  }
  auto r = store_.create(kAllocationResource, "", key, owner.dump());
  if (r.isOk()) return Status::ok();
  if (r.status().code() == Code::kAlreadyExists) {
    taken = true;
    return Status::ok();
  }
  return r.status();
}

Result<uint32_t> ServiceAllocator::reserveRandom(const char* prefix, uint32_t first, uint32_t count,
                                                 const Json& owner, bool dryRun,
                                                 std::vector<std::string>& keys, const char* what) {
  const bool ips = std::string_view(prefix) == kIpPrefix;
  auto keyOf = [&](uint32_t v) { return ips ? ipKey(formatIp(v)) : portKey(static_cast<int>(v)); };
  store::ListOptions lo;
  lo.resource = kAllocationResource;
  auto existing = store_.list(lo);
  if (!existing.isOk()) return existing.status();
  std::set<std::string> taken;
  for (const auto& o : existing->items) taken.insert(o.name);
  for (const auto& k : keys) taken.insert(k);  // this request's own (dry runs reserve nothing)
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint32_t start = static_cast<uint32_t>(rng() % count);
  int races = 0;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t v = first + (start + i) % count;
    std::string key = keyOf(v);
    if (taken.count(key)) continue;
    bool lost = false;
    if (auto s = reserve(key, owner, dryRun, lost); !s.isOk()) return s;
    if (!lost) {
      keys.push_back(key);
      return v;
    }
    if (++races > kMaxRaces) break;
  }
  return Status(Code::kInternal, std::string("Internal error occurred: failed to allocate a ") +
                                     what + ": range is full");
}

Status ServiceAllocator::allocate(const Json* current, Json& next, bool dryRun, Allocation& out) {
  out = {};
  auto specIt = next.find("spec");
  if (specIt == next.end() || !specIt->is_object()) return Status::ok();
  Json& spec = *specIt;
  const std::string ns = api::stringAt(next, "metadata.namespace");
  const std::string name = api::stringAt(next, "metadata.name");
  Json owner = {{"namespace", ns},
                {"name", name},
                {"uid", api::stringAt(next, "metadata.uid")},
                {"reservedAtMillis", clock_.nowMillis()}};
  auto fail = [&](Status s) {
    if (!dryRun) release(out.reserved);
    out.reserved.clear();
    return s;
  };
  auto fieldError = [&](api::FieldError e) {
    out.errors.push_back(std::move(e));
    return fail(Status::ok());
  };
  const std::string type = typeOf(next);

  // The cluster IP.
  std::string ip = api::stringAt(next, "spec.clusterIP");
  if (type != "ExternalName" && ip != "None") {
    const std::string held = current != nullptr ? heldIp(*current) : std::string();
    const bool kubernetes = ns == "default" && name == "kubernetes";
    if (ip.empty()) {
      if (kubernetes) {
        ip = network_.firstIp();
        bool taken = false;
        if (auto s = reserve(ipKey(ip), owner, dryRun, taken); !s.isOk()) return fail(s);
        if (taken)
          return fail(Status(Code::kInternal, "Internal error occurred: the first IP " + ip +
                                                  " of the service range is taken"));
        if (!dryRun) out.reserved.push_back(ipKey(ip));
      } else {
        uint32_t size = uint32_t{1} << (32 - network_.prefixLength);
        // Host addresses but the first (the `kubernetes` Service's).
        auto v = reserveRandom(kIpPrefix, network_.base + 2, size - 3, owner, dryRun, out.reserved,
                               "serviceIP");
        if (!v.isOk()) return fail(v.status());
        ip = formatIp(*v);
        if (dryRun) out.reserved.clear();
      }
    } else if (ip != held) {
      auto field = "spec.clusterIPs";
      if (!network_.contains(ip)) {
        return fieldError(api::fieldInvalid(
            field, Json::array({ip}),
            "failed to allocate IP " + ip + ": the provided IP (" + ip +
                ") is not in the valid range. The range of valid IPs is " + network_.cidr()));
      }
      if (ip == network_.firstIp() && !kubernetes) {
        return fieldError(api::fieldInvalid(
            field, Json::array({ip}),
            "failed to allocate IP " + ip + ": provided IP is already allocated"));
      }
      bool taken = false;
      if (auto s = reserve(ipKey(ip), owner, dryRun, taken); !s.isOk()) return fail(s);
      if (taken) {
        return fieldError(api::fieldInvalid(
            field, Json::array({ip}),
            "failed to allocate IP " + ip + ": provided IP is already allocated"));
      }
      if (!dryRun) out.reserved.push_back(ipKey(ip));
    }
    spec["clusterIP"] = ip;
    spec["clusterIPs"] = Json::array({ip});
  }

  // Node ports: the values the writer chose first, then the missing ones (so a random pick
  // never takes a value a later port asked for). Validation refused duplicates of one
  // (nodePort, protocol); TCP and UDP of one port may share one.
  const bool wantNodePorts = needsNodePorts(type) && allocatesNodePorts(next);
  auto ports = spec.find("ports");
  if (needsNodePorts(type) && ports != spec.end() && ports->is_array()) {
    const std::set<int> held = current != nullptr ? heldPorts(*current) : std::set<int>();
    std::vector<std::string> chosen;  // this request's, for the random picks to avoid
    for (size_t i = 0; i < ports->size(); ++i) {
      const Json& p = (*ports)[i];
      const Json* v = api::lookupPath(p, "nodePort");
      if (v == nullptr || !v->is_number_integer() || v->get<int64_t>() == 0) continue;
      const int np = static_cast<int>(v->get<int64_t>());
      const std::string field = "spec.ports[" + std::to_string(i) + "].nodePort";
      const std::string key = portKey(np);
      if (held.count(np) || std::find(chosen.begin(), chosen.end(), key) != chosen.end()) {
        continue;
      }
      if (np < network_.nodePortMin || np > network_.nodePortMax) {
        return fieldError(api::fieldInvalid(
            field, np,
            "provided port is not in the valid range. The range of valid ports is " +
                network_.nodePortRange()));
      }
      bool taken = false;
      if (auto s = reserve(key, owner, dryRun, taken); !s.isOk()) return fail(s);
      if (taken) {
        return fieldError(api::fieldInvalid(field, np, "provided port is already allocated"));
      }
      chosen.push_back(key);
      if (!dryRun) out.reserved.push_back(key);
    }
    for (size_t i = 0; wantNodePorts && i < ports->size(); ++i) {
      Json& p = (*ports)[i];
      const Json* v = api::lookupPath(p, "nodePort");
      if (!p.is_object() || (v != nullptr && !(v->is_number_integer() && v->get<int64_t>() == 0))) {
        continue;
      }
      auto picked =
          reserveRandom(kPortPrefix, static_cast<uint32_t>(network_.nodePortMin),
                        static_cast<uint32_t>(network_.nodePortMax - network_.nodePortMin + 1),
                        owner, dryRun, chosen, "nodePort");
      if (!picked.isOk()) return fail(picked.status());
      p["nodePort"] = static_cast<int64_t>(*picked);
      if (!dryRun) out.reserved.push_back(chosen.back());
    }
  }
  return Status::ok();
}

void ServiceAllocator::release(const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    auto r = store_.remove(kAllocationResource, "", k, 0);
    if (!r.isOk() && r.status().code() != Code::kNotFound) {
      spdlog::warn("registry: releasing service allocation {}: {} (the repair pass retries)", k,
                   r.status().toString());
    }
  }
}

void ServiceAllocator::releaseUnused(const Json& before, const Json* after) {
  std::vector<std::string> keys;
  std::string ip = heldIp(before);
  if (!ip.empty() && (after == nullptr || heldIp(*after) != ip)) keys.push_back(ipKey(ip));
  std::set<int> keep = after != nullptr ? heldPorts(*after) : std::set<int>();
  for (int p : heldPorts(before)) {
    if (!keep.count(p)) keys.push_back(portKey(p));
  }
  release(keys);
}

Result<int> ServiceAllocator::repair(int64_t graceMillis) {
  store::ListOptions lo;
  lo.resource = kAllocationResource;
  auto reservations = store_.list(lo);
  if (!reservations.isOk()) return reservations.status();
  store::ListOptions so;
  so.resource = "services";
  auto services = store_.list(so);
  if (!services.isOk()) return services.status();
  // key -> the Service that holds it
  std::map<std::string, Json> held;
  for (const auto& o : services->items) {
    Json svc = Json::parse(o.value, nullptr, false);
    if (svc.is_discarded()) continue;
    Json owner = {{"namespace", api::stringAt(svc, "metadata.namespace")},
                  {"name", api::stringAt(svc, "metadata.name")},
                  {"uid", api::stringAt(svc, "metadata.uid")},
                  {"reservedAtMillis", clock_.nowMillis()}};
    if (auto ip = heldIp(svc); !ip.empty()) held[ipKey(ip)] = owner;
    for (int p : heldPorts(svc)) held[portKey(p)] = owner;
  }
  const int64_t now = clock_.nowMillis();
  int released = 0;
  std::set<std::string> reserved;
  for (const auto& o : reservations->items) {
    reserved.insert(o.name);
    if (held.count(o.name)) continue;  // whoever holds it, the value stays taken
    Json owner = Json::parse(o.value, nullptr, false);
    int64_t at = owner.is_object() ? owner.value("reservedAtMillis", int64_t{0}) : 0;
    if (now - at < graceMillis) continue;
    auto r = store_.remove(kAllocationResource, "", o.name, o.modRevision);
    if (r.isOk()) {
      ++released;
      spdlog::info("registry: released leaked service allocation {} (reserved for {}/{})", o.name,
                   owner.is_object() ? owner.value("namespace", std::string()) : "",
                   owner.is_object() ? owner.value("name", std::string()) : "");
    }
  }
  // A stored Service whose values have no reservation (a store restored from elsewhere):
  // reserve them, so that nothing else is given them.
  for (const auto& [key, owner] : held) {
    if (reserved.count(key)) continue;
    auto r = store_.create(kAllocationResource, "", key, owner.dump());
    if (r.isOk()) {
      spdlog::warn("registry: service allocation {} of {}/{} was missing; reserved", key,
                   owner.value("namespace", std::string()), owner.value("name", std::string()));
    }
  }
  return released;
}

}  // namespace ep::registry
