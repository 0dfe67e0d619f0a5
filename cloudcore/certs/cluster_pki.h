#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/pki/pki.h"
#include "common/status.h"

namespace ep::certs {

struct ClusterPkiOptions {
  std::string dataDir;  // the PKI lives in DATA_DIR/pki; admin.kubeconfig in DATA_DIR
  // Addresses the serving certificates must be valid for, besides localhost, 127.0.0.1, ::1
  // and the host name: the listen hosts (wildcards skipped) and every --tls-san.
  std::vector<std::string> sans;
  std::string apiServerUrl;  // written into admin.kubeconfig: https://HOST:PORT
  std::chrono::seconds caValidity{std::chrono::hours(24 * 365 * 10)};
  std::chrono::seconds servingValidity{std::chrono::hours(24 * 365)};
  std::chrono::seconds adminValidity{std::chrono::hours(24 * 365)};
};

// The cluster's certificate authority and the serving certificates made from it.
struct ClusterPki {
  pki::KeyAndCert ca;
  pki::KeyAndCert apiServing;     // pki/apiserver.{crt,key}
  pki::KeyAndCert tunnelServing;  // pki/tunnel.{crt,key}
  std::string caHash;             // "sha256:..." of the CA's public key (join tokens carry it)
  // pki/tunnel-ticket.key: 80 random bytes (0600) encrypting the tunnel's TLS 1.3 session
  // tickets, kept across restarts so that nodes resume without a full handshake. Created on the
  // first start that lacks it; replicas sharing the PKI share it too.
  std::string tunnelTicketKey;
  std::string adminKubeconfigPath;
};

// First start (no pki/ca.crt and no pki/ca.key): creates an ECDSA P-256 CA, serving
// certificates for the API and the tunnel, and DATA_DIR/admin.kubeconfig (a client certificate
// CN kubernetes-admin, O system:masters). Keys are 0600 in a 0700 directory.
// Later starts load them: a missing, unreadable or mismatched file (a key that is not the
// certificate's, a certificate the CA did not sign) is an error naming the file and what to
// do. A serving certificate that lacks a requested name or has used 80% of its lifetime is
// issued again from the CA (logged); admin.kubeconfig is written again when missing.
Result<ClusterPki> loadOrCreateClusterPki(const ClusterPkiOptions& options);

}  // namespace ep::certs

namespace ep::registry {
class Registry;
}

namespace ep::certs {

// Publishes the cluster CA as Kubernetes (kubeadm) does: ConfigMap kube-public/cluster-info
// with data "ca.crt" (PEM) and "kubeconfig" (server and CA, no credentials). Created or updated
// when it differs. `edgectl token create` reads the CA's hash from it.
Status publishClusterInfo(registry::Registry& registry, const ClusterPki& pki,
                          const std::string& apiServerUrl);

}  // namespace ep::certs
