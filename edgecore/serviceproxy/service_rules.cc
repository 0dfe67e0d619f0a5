#include "edgecore/serviceproxy/service_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

namespace ep::edgecore::serviceproxy {
namespace {

using Json = nlohmann::json;

const Json* member(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string str(const Json& obj, const char* key) {
  const Json* v = member(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

int integer(const Json& obj, const char* key) {
  const Json* v = member(obj, key);
  if (v == nullptr || !v->is_number_integer()) return 0;
  int64_t n = v->get<int64_t>();
  return n > 0 && n <= 65535 ? static_cast<int>(n) : 0;
}

const Json& metadata(const Json& obj) {
  static const Json kEmpty = Json::object();
  const Json* m = member(obj, "metadata");
  return m != nullptr && m->is_object() ? *m : kEmpty;
}

bool isIpv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

// Only what iptables accepts unquoted in a comment: the names Kubernetes allows anyway.
std::string safe(const std::string& s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '/' || c == ':';
    out.push_back(ok ? c : '_');
  }
  return out;
}

std::string hashName(const std::string& prefix, const std::string& key) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(h & 0xffffffffffffULL));
  return prefix + buf;  // at most 26 characters: iptables allows 28
}

std::string portKey(const ServicePort& p) {
  return p.ns + "/" + p.name + ":" + p.portName + "/" + p.protocol;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::vector<ServicePort> computeServicePorts(const std::vector<Json>& services,
                                             const std::vector<Json>& slices,
                                             const std::string& nodeName) {
  // (namespace, service, port name, protocol) -> ready local backends
  std::map<std::tuple<std::string, std::string, std::string, std::string>, std::vector<Backend>>
      local;
  for (const auto& slice : slices) {
    if (str(slice, "addressType") != "IPv4") continue;
    const Json& meta = metadata(slice);
    const Json* labels = member(meta, "labels");
    std::string svc = labels != nullptr ? str(*labels, "kubernetes.io/service-name") : "";
    if (svc.empty()) continue;
    const std::string ns = str(meta, "namespace");
    const Json* ports = member(slice, "ports");
    const Json* endpoints = member(slice, "endpoints");
    if (ports == nullptr || !ports->is_array() || endpoints == nullptr || !endpoints->is_array()) {
      continue;
    }
    for (const auto& e : *endpoints) {
      if (str(e, "nodeName") != nodeName) continue;
      const Json* cond = member(e, "conditions");
      const Json* ready = cond != nullptr ? member(*cond, "ready") : nullptr;
      // Kubernetes: an unset ready condition means ready.
      if (ready != nullptr && !(ready->is_boolean() && ready->get<bool>())) continue;
      const Json* addrs = member(e, "addresses");
      if (addrs == nullptr || !addrs->is_array() || addrs->empty() || !(*addrs)[0].is_string()) {
        continue;
      }
      const std::string ip = (*addrs)[0].get<std::string>();
      if (!isIpv4(ip)) continue;
      for (const auto& p : *ports) {
        int port = integer(p, "port");
        if (port == 0) continue;
        std::string proto = str(p, "protocol");
        local[{ns, svc, str(p, "name"), proto.empty() ? "TCP" : proto}].push_back({ip, port});
      }
    }
  }

  std::vector<ServicePort> out;
  for (const auto& svc : services) {
    const Json& meta = metadata(svc);
    const Json* spec = member(svc, "spec");
    if (spec == nullptr || !spec->is_object()) continue;
    std::string type = str(*spec, "type");
    std::string clusterIp = str(*spec, "clusterIP");
    if (type == "ExternalName" || !isIpv4(clusterIp)) continue;
    const Json* ports = member(*spec, "ports");
    if (ports == nullptr || !ports->is_array()) continue;
    const std::string ns = str(meta, "namespace");
    const std::string name = str(meta, "name");
    for (const auto& p : *ports) {
      ServicePort sp;
      sp.ns = ns;
      sp.name = name;
      sp.portName = str(p, "name");
      sp.protocol = str(p, "protocol").empty() ? "TCP" : str(p, "protocol");
      if (sp.protocol != "TCP" && sp.protocol != "UDP" && sp.protocol != "SCTP") continue;
      sp.clusterIp = clusterIp;
      sp.port = integer(p, "port");
      if (type == "NodePort" || type == "LoadBalancer") sp.nodePort = integer(p, "nodePort");
      auto it = local.find({ns, name, sp.portName, sp.protocol});
      if (sp.port == 0 || it == local.end()) continue;
      sp.backends = it->second;
      std::sort(sp.backends.begin(), sp.backends.end());
      sp.backends.erase(std::unique(sp.backends.begin(), sp.backends.end()), sp.backends.end());
      out.push_back(std::move(sp));
    }
  }
  std::sort(out.begin(), out.end(), [](const ServicePort& a, const ServicePort& b) {
    return std::tie(a.ns, a.name, a.portName, a.protocol) <
           std::tie(b.ns, b.name, b.portName, b.protocol);
  });
  return out;
}

std::string serviceChain(const ServicePort& p) {
  return hashName("EDGEPLANE-SVC-", portKey(p));
}

std::string backendChain(const ServicePort& p, const Backend& b) {
  return hashName("EDGEPLANE-SEP-", portKey(p) + "@" + b.ip + ":" + std::to_string(b.port));
}

std::set<std::string> chainsOf(const std::vector<ServicePort>& ports) {
  std::set<std::string> out = {kServicesChain, kNodePortsChain, kPostroutingChain, kMarkMasqChain};
  for (const auto& p : ports) {
    out.insert(serviceChain(p));
    for (const auto& b : p.backends) out.insert(backendChain(p, b));
  }
  return out;
}

std::string renderNatRules(const std::vector<ServicePort>& ports,
                           const std::set<std::string>& existing) {
  const std::set<std::string> chains = chainsOf(ports);
  std::string out = "*nat\n";
  for (const auto& c : chains) out += ":" + c + " - [0:0]\n";
  // Stale chains are declared (so flushed) first, then deleted at the end.
  for (const auto& c : existing) {
    if (!chains.count(c) && c.rfind(kChainPrefix, 0) == 0) out += ":" + c + " - [0:0]\n";
  }
  out += std::string("-A ") + kPostroutingChain + " -m mark ! --mark " + kMasqMark + "/" +
         kMasqMark + " -j RETURN\n";
  out += std::string("-A ") + kPostroutingChain + " -j MARK --xor-mark " + kMasqMark + "\n";
  out += std::string("-A ") + kPostroutingChain +
         " -m comment --comment \"edgeplane service traffic\" -j MASQUERADE\n";
  out += std::string("-A ") + kMarkMasqChain + " -j MARK --or-mark " + kMasqMark + "\n";
  for (const auto& p : ports) {
    const std::string proto = lower(p.protocol);
    const std::string match = " -p " + proto + " -m " + proto;
    const std::string svcChain = serviceChain(p);
    const std::string comment =
        " -m comment --comment \"" + safe(p.ns + "/" + p.name + ":" + p.portName) + "\"";
    out += std::string("-A ") + kServicesChain + comment + match + " -d " + p.clusterIp +
           "/32 --dport " + std::to_string(p.port) + " -j " + svcChain + "\n";
    if (p.nodePort > 0) {
      out += std::string("-A ") + kNodePortsChain + comment + match + " --dport " +
             std::to_string(p.nodePort) + " -j " + svcChain + "\n";
    }
    out += "-A " + svcChain + " -j " + kMarkMasqChain + "\n";
    const size_t n = p.backends.size();
    for (size_t i = 0; i < n; ++i) {
      const Backend& b = p.backends[i];
      const std::string sep = backendChain(p, b);
      out += "-A " + svcChain + comment;
      if (i + 1 < n) {
        char prob[32];
        std::snprintf(prob, sizeof prob, "%.10f", 1.0 / static_cast<double>(n - i));
        out += std::string(" -m statistic --mode random --probability ") + prob;
      }
      out += " -j " + sep + "\n";
      out += "-A " + sep + comment + match + " -j DNAT --to-destination " + b.ip + ":" +
             std::to_string(b.port) + "\n";
    }
  }
  // Node ports last: only for packets to this host's own addresses.
  out += std::string("-A ") + kServicesChain + " -m addrtype --dst-type LOCAL -j " +
         kNodePortsChain + "\n";
  for (const auto& c : existing) {
    if (!chains.count(c) && c.rfind(kChainPrefix, 0) == 0) out += "-X " + c + "\n";
  }
  out += "COMMIT\n";
  return out;
}

}  // namespace ep::edgecore::serviceproxy
