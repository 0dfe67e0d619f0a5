#pragma once

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/pki/pki.h"
#include "common/status.h"

namespace ep::registry {
class Registry;
}

namespace ep::certs {

// The Node annotation listing the serials (lower-case hex, comma-separated, newest last) of the
// client certificates that may act as that node: the one in use and, during a renewal, the
// one being replaced. A certificate whose serial is not listed is refused: deleting the Node
// revokes every certificate it had.
inline constexpr const char* kNodeCertificatesAnnotation = "edgeplane.io/client-certificates";

// The serials a Node object lists in kNodeCertificatesAnnotation (none when absent).
std::vector<std::string> activeSerials(const nlohmann::json& node);

struct NodeCertificatesOptions {
  std::chrono::seconds lifetime{std::chrono::hours(24 * 365)};  // of issued node certificates
  // nodeRegistration: manual -> joining needs an existing Node object.
  bool manualRegistration = false;
};

// Issues and checks node identities (docs/security.md, "Joining a node"): certificates with CN
// system:node:NAME, O system:nodes signed by the cluster CA, tracked on the Node object.
// Blocking (store reads and writes): call from a worker thread. Thread-safe.
class NodeCertificates {
 public:
  NodeCertificates(registry::Registry& registry, pki::KeyAndCert ca, Clock& clock,
                   NodeCertificatesOptions options);

  const std::string& caPem() const { return ca_.certPem; }

  // A node joins with a bootstrap token (ID.SECRET) and a CSR for CN system:node:NAME,
  // O system:nodes. The token must exist (Secret kube-system/bootstrap-token-ID), match, be
  // unexpired, allow authentication, and have uses left (one is used up). The Node is created
  // (or, joining again, its earlier certificates are revoked) and the certificate returned.
  // Errors: kUnauthorized with the reason for token problems ("token abcdef has expired"),
  // kInvalid for a bad CSR or node name, kForbidden when registration is manual and the Node
  // does not exist, kUnavailable for store trouble.
  Result<std::string> join(const std::string& bootstrapToken, const std::string& nodeName,
                           const std::string& csrPem);

  // A connected node renews its certificate: a CSR for its own identity; the new serial is
  // added to the Node (the previous one stays valid until the next renewal).
  Result<std::string> renew(const std::string& nodeName, const std::string& csrPem);

  // Ok when a verified client certificate with this serial may act as `nodeName`; kForbidden
  // with the reason when the Node is gone or does not list the serial (revoked).
  Status checkActive(const std::string& nodeName, const std::string& serialHex);

 private:
  Result<std::string> issue(const std::string& nodeName, const std::string& csrPem);
  Status recordSerial(const std::string& nodeName, const std::string& serial, bool replaceAll,
                      bool mayCreate);
  Status useToken(const std::string& bootstrapToken);

  registry::Registry& registry_;
  const pki::KeyAndCert ca_;
  Clock& clock_;
  const NodeCertificatesOptions options_;
};

}  // namespace ep::certs
