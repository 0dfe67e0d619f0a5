// Validation (common/api/validation.h) of the service kinds: core/v1 Service and Endpoints,
// discovery.k8s.io/v1 EndpointSlice. Rules and messages as Kubernetes 1.32's
// pkg/apis/core/validation and pkg/apis/discovery/validation word them, for a single-stack
// IPv4 cluster. Allocation (a free cluster IP, a free node port) is the registry's
// (cloudcore/registry/service_allocator.h), after these checks.
// The Checker and its primitives are in validation_checker.h.

#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "common/api/validation_checker.h"

namespace ep::api::validation_detail {
namespace {

const std::vector<std::string> kProtocols = {"SCTP", "TCP", "UDP"};

bool isIpv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool isIpv6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// Kubernetes' rule for endpoint addresses: a valid IP that is not unspecified, loopback or
// link-local (those can never reach a pod).
std::vector<std::string> checkEndpointIp(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) {
    if (isIpv6(s)) return {"must be an IPv4 address"};
    return {"must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"};
  }
  uint32_t h = ntohl(a.s_addr);
  if (h == 0) return {"may not be unspecified (0.0.0.0)"};
  if ((h >> 24) == 127) return {"may not be in the loopback range (127.0.0.0/8, ::1/128)"};
  if ((h >> 16) == 0xA9FE) {
    return {"may not be in the link-local range (169.254.0.0/16, fe80::/10)"};
  }
  if ((h >> 8) == 0xE00000) {
    return {"may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"};
  }
  return {};
}

}  // namespace

void Checker::serviceKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  static const json kEmpty = json::object();
  if (spec == nullptr) spec = &kEmpty;
  auto type = enumString(*spec, "type", "spec.type",
                         {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"}, false)
                  .value_or("ClusterIP");
  const bool externalName = type == "ExternalName";
  const bool needsNodePorts = type == "NodePort" || type == "LoadBalancer";
  const std::string* clusterIp = string(*spec, "clusterIP", "spec.clusterIP");
  const bool headless = clusterIp != nullptr && *clusterIp == "None";

  if (clusterIp != nullptr && !clusterIp->empty() && !headless) {
    if (externalName) {
      add(fieldForbidden("spec.clusterIP", "may not be set for ExternalName services"));
    } else if (isIpv6(*clusterIp)) {
      add(fieldInvalid("spec.clusterIPs[0]", *clusterIp,
                       "IPv6 is not configured on this cluster (single-stack IPv4)"));
    } else if (!isIpv4(*clusterIp)) {
      add(fieldInvalid("spec.clusterIPs[0]", *clusterIp,
                       "must be empty, 'None', or a valid IP address"));
    }
  }
  if (headless && needsNodePorts) {
    add(fieldInvalid("spec.clusterIPs[0]", "None",
                     "may not be set to 'None' for " + type + " services"));
  }
  if (const json* ips = array(*spec, "clusterIPs", "spec.clusterIPs")) {
    if (ips->size() > 1) {
      add(fieldInvalid("spec.clusterIPs", *ips,
                       "may specify no more than one IP for each IP family (single-stack IPv4)"));
    } else if (ips->size() == 1) {
      const json& first = (*ips)[0];
      if (!first.is_string()) {
        add(fieldTypeInvalid("spec.clusterIPs[0]", first, "must be a string"));
      } else if (clusterIp != nullptr && !clusterIp->empty() && first != *clusterIp) {
        add(fieldInvalid("spec.clusterIPs", *ips, "first value must match `spec.clusterIP`"));
      }
    }
  }
  if (externalName) {
    const std::string* en = requiredString(*spec, "externalName", "spec.externalName");
    if (en != nullptr) {
      std::string trimmed = *en;
      if (!trimmed.empty() && trimmed.back() == '.') trimmed.pop_back();
      dnsSubdomain(trimmed, "spec.externalName");
    }
  } else if (const std::string* en = string(*spec, "externalName", "spec.externalName")) {
    if (!en->empty()) {
      add(fieldForbidden("spec.externalName", "may only be set when `type` is 'ExternalName'"));
    }
  }

  if (const json* fams = array(*spec, "ipFamilies", "spec.ipFamilies")) {
    for (size_t i = 0; i < fams->size(); ++i) {
      const json& f = (*fams)[i];
      if (f != "IPv4") {
        add(f == "IPv6" ? fieldInvalid(at("spec.ipFamilies", i), f,
                                       "not configured on this cluster (single-stack IPv4)")
                        : fieldNotSupported(at("spec.ipFamilies", i), f,
                                            std::vector<std::string>{"IPv4", "IPv6"}));
      }
    }
    if (fams->size() > 1) {
      add(fieldInvalid("spec.ipFamilies", *fams,
                       "may specify no more than one IP family (single-stack IPv4)"));
    }
  }
  if (auto policy = enumString(*spec, "ipFamilyPolicy", "spec.ipFamilyPolicy",
                               {"SingleStack", "PreferDualStack", "RequireDualStack"}, false)) {
    if (*policy == "RequireDualStack") {
      add(fieldInvalid("spec.ipFamilyPolicy", *policy,
                       "this cluster is not configured for dual-stack services"));
    }
  }

  // Ports.
  const json* ports = array(*spec, "ports", "spec.ports");
  if ((ports == nullptr || ports->empty()) && !externalName && !headless) {
    add(fieldRequired("spec.ports"));
  }
  if (ports != nullptr) {
    std::set<std::string> names;
    std::set<std::pair<int64_t, std::string>> seen, seenNodePorts;
    const bool many = ports->size() > 1;
    eachObject(*ports, "spec.ports", [&](const json& p, const std::string& path) {
      const std::string* name = string(p, "name", child(path, "name"));
      if (name == nullptr || name->empty()) {
        if (many) add(fieldRequired(child(path, "name")));
      } else {
        dnsLabel(*name, child(path, "name"));
        if (!names.insert(*name).second) add(fieldDuplicate(child(path, "name"), *name));
      }
      auto port = intInRange(p, "port", child(path, "port"), 1, 65535);
      if (member(p, "port") == nullptr) add(fieldRequired(child(path, "port")));
      auto proto =
          enumString(p, "protocol", child(path, "protocol"), kProtocols, false).value_or("TCP");
      if (port && !seen.insert({*port, proto}).second) {
        add(fieldDuplicate(path, json{{"port", *port}, {"protocol", proto}}));
      }
      if (member(p, "targetPort") != nullptr) {
        const json& tp = p["targetPort"];
        if (tp.is_string() && tp.get_ref<const std::string&>().empty()) {
          add(fieldRequired(child(path, "targetPort")));
        } else {
          this->port(p, "targetPort", child(path, "targetPort"), false);
        }
      }
      if (auto np = intInRange(p, "nodePort", child(path, "nodePort"), 0, 65535)) {
        if (*np != 0 && !needsNodePorts) {
          add(fieldForbidden(child(path, "nodePort"),
                             "may not be used when `type` is '" + type + "'"));
        } else if (*np != 0 && !seenNodePorts.insert({*np, proto}).second) {
          add(fieldDuplicate(child(path, "nodePort"), *np));
        }
      }
      string(p, "appProtocol", child(path, "appProtocol"));
    });
  }

  // Selector, affinity, policies, external IPs.
  labelMap(*spec, "selector", "spec.selector");
  auto affinity =
      enumString(*spec, "sessionAffinity", "spec.sessionAffinity", {"ClientIP", "None"}, false);
  if (const json* cfg = object(*spec, "sessionAffinityConfig", "spec.sessionAffinityConfig")) {
    if (affinity != "ClientIP") {
      add(fieldInvalid("spec.sessionAffinityConfig", *cfg,
                       "must not be set when session affinity is None"));
    } else if (const json* cip = object(*cfg, "clientIP", "spec.sessionAffinityConfig.clientIP")) {
      intInRange(*cip, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1,
                 86400);
    }
  }
  if (auto etp = enumString(*spec, "externalTrafficPolicy", "spec.externalTrafficPolicy",
                            {"Cluster", "Local"}, false)) {
    if (!needsNodePorts) {
      add(fieldInvalid("spec.externalTrafficPolicy", *etp,
                       "may only be set for NodePort and LoadBalancer services"));
    }
  }
  enumString(*spec, "internalTrafficPolicy", "spec.internalTrafficPolicy", {"Cluster", "Local"},
             false);
  if (const json* ext = array(*spec, "externalIPs", "spec.externalIPs")) {
    for (size_t i = 0; i < ext->size(); ++i) {
      const json& ip = (*ext)[i];
      if (!ip.is_string()) {
        add(fieldTypeInvalid(at("spec.externalIPs", i), ip, "must be a string"));
        continue;
      }
      for (const auto& d : checkEndpointIp(ip.get<std::string>())) {
        add(fieldInvalid(at("spec.externalIPs", i), ip, d));
      }
    }
  }
  intInRange(*spec, "healthCheckNodePort", "spec.healthCheckNodePort", 0, 65535);
  boolean(*spec, "publishNotReadyAddresses", "spec.publishNotReadyAddresses");
  boolean(*spec, "allocateLoadBalancerNodePorts", "spec.allocateLoadBalancerNodePorts");
  string(*spec, "loadBalancerIP", "spec.loadBalancerIP");
  string(*spec, "loadBalancerClass", "spec.loadBalancerClass");
  stringArray(*spec, "loadBalancerSourceRanges", "spec.loadBalancerSourceRanges");
  string(*spec, "trafficDistribution", "spec.trafficDistribution");
}

void Checker::endpointsKind(const json& obj) {
  const json* subsets = array(obj, "subsets", "subsets");
  if (subsets == nullptr) return;
  eachObject(*subsets, "subsets", [&](const json& s, const std::string& path) {
    size_t addresses = 0;
    for (const char* list : {"addresses", "notReadyAddresses"}) {
      const std::string lp = child(path, list);
      const json* a = array(s, list, lp);
      if (a == nullptr) continue;
      addresses += a->size();
      eachObject(*a, lp, [&](const json& addr, const std::string& ap) {
        if (const std::string* ip = requiredString(addr, "ip", child(ap, "ip"))) {
          for (const auto& d : checkEndpointIp(*ip)) add(fieldInvalid(child(ap, "ip"), *ip, d));
        }
        string(addr, "hostname", child(ap, "hostname"));
        string(addr, "nodeName", child(ap, "nodeName"));
        object(addr, "targetRef", child(ap, "targetRef"));
      });
    }
    if (addresses == 0) {
      add(fieldRequired(child(path, "addresses"),
                        "must specify `addresses` or `notReadyAddresses`"));
    }
    const json* ports = array(s, "ports", child(path, "ports"));
    if (ports == nullptr) return;
    const bool many = ports->size() > 1;
    std::set<std::string> names;
    eachObject(*ports, child(path, "ports"), [&](const json& p, const std::string& pp) {
      const std::string* name = string(p, "name", child(pp, "name"));
      if (name == nullptr || name->empty()) {
        if (many) add(fieldRequired(child(pp, "name")));
      } else {
        dnsLabel(*name, child(pp, "name"));
        if (!names.insert(*name).second) add(fieldDuplicate(child(pp, "name"), *name));
      }
      intInRange(p, "port", child(pp, "port"), 1, 65535);
      if (member(p, "port") == nullptr) add(fieldRequired(child(pp, "port")));
      enumString(p, "protocol", child(pp, "protocol"), kProtocols, true);
      string(p, "appProtocol", child(pp, "appProtocol"));
    });
  });
}

void Checker::endpointSliceKind(const json& obj) {
  auto type = enumString(obj, "addressType", "addressType", {"FQDN", "IPv4", "IPv6"}, true);
  if (const json* eps = array(obj, "endpoints", "endpoints")) {
    if (eps->size() > 1000) {
      add(fieldInvalid("endpoints", static_cast<int64_t>(eps->size()),
                       "must have at most 1000 items"));
    }
    eachObject(*eps, "endpoints", [&](const json& e, const std::string& path) {
      const std::string ap = child(path, "addresses");
      const json* addrs = array(e, "addresses", ap);
      if (addrs == nullptr || addrs->empty()) {
        add(fieldRequired(ap, "must contain at least 1 address"));
      } else if (addrs->size() > 100) {
        add(fieldInvalid(ap, static_cast<int64_t>(addrs->size()), "must have at most 100 items"));
      } else {
        for (size_t i = 0; i < addrs->size(); ++i) {
          const json& a = (*addrs)[i];
          if (!a.is_string()) {
            add(fieldTypeInvalid(at(ap, i), a, "must be a string"));
            continue;
          }
          const auto& s = a.get_ref<const std::string&>();
          if (type == "IPv4") {
            for (const auto& d : checkEndpointIp(s)) add(fieldInvalid(at(ap, i), s, d));
          } else if (type == "IPv6" && !isIpv6(s)) {
            add(fieldInvalid(at(ap, i), s, "must be a valid IPv6 address"));
          } else if (type == "FQDN") {
            dnsSubdomain(s, at(ap, i));
          }
        }
      }
      if (const json* c = object(e, "conditions", child(path, "conditions"))) {
        for (const char* f : {"ready", "serving", "terminating"}) {
          boolean(*c, f, child(child(path, "conditions"), f));
        }
      }
      if (const std::string* h = string(e, "hostname", child(path, "hostname"))) {
        if (!h->empty()) dnsLabel(*h, child(path, "hostname"));
      }
      if (const std::string* n = string(e, "nodeName", child(path, "nodeName"))) {
        if (!n->empty()) dnsSubdomain(*n, child(path, "nodeName"));
      }
      object(e, "targetRef", child(path, "targetRef"));
      string(e, "zone", child(path, "zone"));
      labelMap(e, "deprecatedTopology", child(path, "deprecatedTopology"));
    });
  }
  if (const json* ports = array(obj, "ports", "ports")) {
    if (ports->size() > 100) {
      add(fieldInvalid("ports", static_cast<int64_t>(ports->size()),
                       "must have at most 100 items"));
    }
    std::set<std::string> names;
    eachObject(*ports, "ports", [&](const json& p, const std::string& path) {
      const std::string* name = string(p, "name", child(path, "name"));
      std::string n = name != nullptr ? *name : "";
      if (!n.empty()) dnsLabel(n, child(path, "name"));
      if (!names.insert(n).second) add(fieldDuplicate(child(path, "name"), n));
      intInRange(p, "port", child(path, "port"), 1, 65535);
      enumString(p, "protocol", child(path, "protocol"), kProtocols, true);
      string(p, "appProtocol", child(path, "appProtocol"));
    });
  }
}

// Kubernetes' ValidateServiceUpdate for a single-stack cluster: an allocated cluster IP never
// changes (it is released only by deletion or by turning the Service into an ExternalName).
void serviceUpdate(const json& oldObj, const json& newObj, Errs& errs) {
  const std::string oldType = stringAt(oldObj, "spec.type", "ClusterIP");
  const std::string newType = stringAt(newObj, "spec.type", "ClusterIP");
  if (oldType == "ExternalName" || newType == "ExternalName") return;
  const std::string oldIp = stringAt(oldObj, "spec.clusterIP");
  const std::string newIp = stringAt(newObj, "spec.clusterIP");
  if (!oldIp.empty() && oldIp != newIp) {
    errs.push_back(
        fieldInvalid("spec.clusterIPs[0]", json::array({newIp}), "may not change once set"));
  }
}

}  // namespace ep::api::validation_detail
