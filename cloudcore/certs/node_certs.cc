#include "cloudcore/certs/node_certs.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "cloudcore/registry/registry.h"
#include "common/api/base64.h"
#include "common/api/kinds.h"
#include "common/api/names.h"
#include "common/pki/join_token.h"

namespace ep::certs {

using Json = nlohmann::json;

namespace {

const api::KindInfo& nodeKind() {
  return *api::findByApiVersionKind("v1", "Node");
}
const api::KindInfo& secretKind() {
  return *api::findByApiVersionKind("v1", "Secret");
}

std::vector<std::string> splitSerials(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string joinSerials(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string serialsOf(const Json& node) {
  auto m = node.find("metadata");
  if (m == node.end() || !m->is_object()) return {};
  auto a = m->find("annotations");
  if (a == m->end() || !a->is_object()) return {};
  auto v = a->find(kNodeCertificatesAnnotation);
  return v != a->end() && v->is_string() ? v->get<std::string>() : std::string();
}

}  // namespace

std::vector<std::string> activeSerials(const Json& node) {
  return splitSerials(serialsOf(node));
}

namespace {

std::string secretValue(const Json& secret, const char* key) {
  auto d = secret.find("data");
  if (d == secret.end() || !d->is_object()) return {};
  auto v = d->find(key);
  if (v == d->end() || !v->is_string()) return {};
  auto decoded = api::base64Decode(v->get<std::string>());
  return decoded ? *decoded : std::string();
}

bool transient(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kTimeout ||
         s.code() == Code::kInternal;
}

}  // namespace

NodeCertificates::NodeCertificates(registry::Registry& registry, pki::KeyAndCert ca, Clock& clock,
                                   NodeCertificatesOptions options)
    : registry_(registry), ca_(std::move(ca)), clock_(clock), options_(options) {}

Result<std::string> NodeCertificates::issue(const std::string& nodeName,
                                            const std::string& csrPem) {
  auto csr = pki::parseCsr(csrPem);
  if (!csr) return invalidError("certificate request: " + csr.status().message());
  const std::string want = "system:node:" + nodeName;
  if (csr->commonName != want) {
    return invalidError("certificate request: the subject CN must be \"" + want + "\", not \"" +
                        csr->commonName + "\"");
  }
  if (csr->organizations != std::vector<std::string>{"system:nodes"}) {
    return invalidError("certificate request: the subject O must be exactly \"system:nodes\"");
  }
  pki::CertRequest req;
  req.commonName = want;
  req.organizations = {"system:nodes"};
  req.clientAuth = true;
  req.validity = options_.lifetime;
  return pki::issueCertificate(ca_, csr->publicKeyPem, req);
}

Status NodeCertificates::useToken(const std::string& bootstrapToken) {
  auto token = pki::parseBootstrapToken(bootstrapToken);
  if (!token) return Status(Code::kUnauthorized, token.status().message());
  const std::string name = pki::bootstrapTokenSecretName(token->id);
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto secret = registry_.get(secretKind(), "kube-system", name);
    if (!secret) {
      if (secret.status().code() == Code::kNotFound) {
        return Status(Code::kUnauthorized,
                      "token " + token->id + " does not exist (deleted, or never created)");
      }
      return secret.status();
    }
    if (secret->value("type", "") != "bootstrap.kubernetes.io/token" ||
        secretValue(*secret, "token-id") != token->id) {
      return Status(Code::kUnauthorized, "token " + token->id + " is not a bootstrap token");
    }
    if (!pki::constantTimeEquals(secretValue(*secret, "token-secret"), token->secret)) {
      return Status(Code::kUnauthorized, "token " + token->id + ": wrong secret");
    }
    if (secretValue(*secret, "usage-bootstrap-authentication") != "true") {
      return Status(Code::kUnauthorized,
                    "token " + token->id + " may not be used for authentication");
    }
    if (std::string exp = secretValue(*secret, "expiration"); !exp.empty()) {
      int64_t at = parseRfc3339(exp);
      if (at < 0 || at <= clock_.nowMillis()) {
        return Status(Code::kUnauthorized, "token " + token->id + " has expired (" + exp + ")");
      }
    }
    std::string usages = secretValue(*secret, "usages-remaining");
    if (usages.empty()) return Status::ok();  // unlimited
    long left = 0;
    try {
      left = std::stol(usages);
    } catch (...) {
      return Status(Code::kUnauthorized, "token " + token->id + ": malformed usages-remaining");
    }
    if (left <= 0) {
      return Status(Code::kUnauthorized, "token " + token->id + " is exhausted (no uses left)");
    }
    Json next = *secret;
    next["data"]["usages-remaining"] = api::base64Encode(std::to_string(left - 1));
    auto updated = registry_.update(secretKind(), "kube-system", name, next);
    if (updated) return Status::ok();
    if (updated.status().code() != Code::kConflict) return updated.status();
  }
  return unavailableError("token " + token->id + ": too many concurrent joins, try again");
}

Status NodeCertificates::recordSerial(const std::string& nodeName, const std::string& serial,
                                      bool replaceAll, bool mayCreate) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto node = registry_.get(nodeKind(), "", nodeName);
    if (!node) {
      if (node.status().code() != Code::kNotFound) return node.status();
      if (!mayCreate) {
        return Status(Code::kForbidden, "node \"" + nodeName + "\" does not exist");
      }
      Json obj = {{"apiVersion", "v1"},
                  {"kind", "Node"},
                  {"metadata",
                   {{"name", nodeName},
                    {"labels", {{"kubernetes.io/hostname", nodeName}}},
                    {"annotations", {{kNodeCertificatesAnnotation, serial}}}}}};
      auto created = registry_.create(nodeKind(), "", obj);
      if (created) {
        spdlog::info("certs: node {} registered by joining", nodeName);
        return Status::ok();
      }
      if (created.status().code() != Code::kAlreadyExists) return created.status();
      continue;
    }
    std::vector<std::string> serials =
        replaceAll ? std::vector<std::string>{} : splitSerials(serialsOf(*node));
    serials.push_back(serial);
    while (serials.size() > 2) serials.erase(serials.begin());
    Json next = *node;
    if (!next["metadata"].contains("annotations") || !next["metadata"]["annotations"].is_object()) {
      next["metadata"]["annotations"] = Json::object();
    }
    next["metadata"]["annotations"][kNodeCertificatesAnnotation] = joinSerials(serials);
    auto updated = registry_.update(nodeKind(), "", nodeName, next);
    if (updated) return Status::ok();
    if (updated.status().code() != Code::kConflict) return updated.status();
  }
  return unavailableError("node \"" + nodeName + "\": too many concurrent updates");
}

Result<std::string> NodeCertificates::join(const std::string& bootstrapToken,
                                           const std::string& nodeName, const std::string& csrPem) {
  if (auto errors = api::checkDns1123Subdomain(nodeName); !errors.empty()) {
    return invalidError("node name \"" + nodeName.substr(0, 80) +
                        "\" is not a valid DNS-1123 subdomain: " + errors.front());
  }
  // The CSR is checked before the token is used up.
  auto cert = issue(nodeName, csrPem);
  if (!cert) return cert.status();
  if (options_.manualRegistration) {
    auto node = registry_.get(nodeKind(), "", nodeName);
    if (!node) {
      if (node.status().code() == Code::kNotFound) {
        return Status(Code::kForbidden,
                      "node \"" + nodeName + "\" is not registered and nodeRegistration is manual");
      }
      return node.status();
    }
  }
  if (auto s = useToken(bootstrapToken); !s.isOk()) return s;
  auto info = pki::parseCertificate(*cert);
  if (!info) return internalError("issued certificate: " + info.status().message());
  if (auto s = recordSerial(nodeName, info->serialHex, /*replaceAll=*/true, /*mayCreate=*/true);
      !s.isOk()) {
    return transient(s) ? s : Status(s.code(), "registering the node: " + s.message());
  }
  spdlog::info("certs: node {} joined (certificate {})", nodeName, info->serialHex);
  return cert;
}

Result<std::string> NodeCertificates::renew(const std::string& nodeName,
                                            const std::string& csrPem) {
  auto cert = issue(nodeName, csrPem);
  if (!cert) return cert.status();
  auto info = pki::parseCertificate(*cert);
  if (!info) return internalError("issued certificate: " + info.status().message());
  if (auto s = recordSerial(nodeName, info->serialHex, /*replaceAll=*/false, /*mayCreate=*/false);
      !s.isOk()) {
    return s;
  }
  spdlog::info("certs: node {} renewed its certificate ({})", nodeName, info->serialHex);
  return cert;
}

Status NodeCertificates::checkActive(const std::string& nodeName, const std::string& serialHex) {
  auto node = registry_.get(nodeKind(), "", nodeName);
  if (!node) {
    if (node.status().code() == Code::kNotFound) {
      return Status(Code::kForbidden, "node \"" + nodeName +
                                          "\" does not exist (deleted?); its certificate is "
                                          "revoked: join again with a new token");
    }
    return node.status();
  }
  for (const auto& s : splitSerials(serialsOf(*node))) {
    if (s == serialHex) return Status::ok();
  }
  return Status(Code::kForbidden, "certificate " + serialHex + " of node \"" + nodeName +
                                      "\" is revoked: join again with a new token");
}

}  // namespace ep::certs
