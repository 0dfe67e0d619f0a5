#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::edgecore::certmanager {

// The node's identity on disk and in memory (docs/security.md, "Joining a node"):
//   DATA_DIR/pki/ca.crt    the cluster CA (checked against the join token's hash once)
//   DATA_DIR/pki/node.pem  the node's private key and client certificate (CN
//                          system:node:NAME, O system:nodes), in one file so that a crash
//                          never leaves a key without its certificate; 0600, directory 0700
//
// Thread-safe: snapshot() and renewalDue() may be called from any thread; prepareRenewal() and
// installRenewal() from one thread at a time (edgehub's worker).
class NodeCredentials {
 public:
  struct Snapshot {
    std::string caPem;
    std::string certPem;
    std::string keyPem;
    std::string serial;
    std::chrono::system_clock::time_point notBefore;
    std::chrono::system_clock::time_point notAfter;
  };

  explicit NodeCredentials(std::string dataDir);

  // Loads DATA_DIR/pki. kNotFound when the node has no credentials yet (it must join); other
  // errors name the file (unreadable, key and certificate not matching, not signed by ca.crt).
  Status load();
  bool present() const;
  Snapshot snapshot() const;

  // True once `fraction` of the certificate's lifetime has passed.
  bool renewalDue(std::chrono::system_clock::time_point now, double fraction = 0.8) const;

  // A new private key (kept in memory until installRenewal) and a CSR for
  // system:node:NODE / system:nodes.
  Result<std::string> prepareRenewal(const std::string& nodeName);
  // Stores the certificate issued for the prepared key (it must match that key and chain to
  // the CA) and makes it current.
  Status installRenewal(const std::string& certPem);

  // Stores the credentials of a join (CA, key, certificate), checked as by load().
  Status install(const std::string& caPem, const std::string& keyPem, const std::string& certPem);

  std::string dir() const { return dir_; }

 private:
  // Checks key, certificate and CA belong together, then fills serial and validity.
  Status check(Snapshot& s) const;
  Status write(const Snapshot& s);

  const std::string dir_;
  mutable Mutex mu_;
  bool present_ EP_GUARDED_BY(mu_) = false;
  Snapshot current_ EP_GUARDED_BY(mu_);
  std::string pendingKeyPem_ EP_GUARDED_BY(mu_);
};

// Joins the cluster (edgecore --token): asks cloudhub at `cloud` (HOST:PORT) for the cluster
// CA without trusting the connection, checks the CA's public-key hash against the one in the
// join token (a mismatch is refused: someone else answered), then, over a connection verified
// with that CA, sends the bootstrap token and a CSR and stores what comes back in
// `credentials`. The token is sent only to a server that proved it holds the CA's certificate.
// Errors: kInvalid (malformed token), kForbidden (CA hash mismatch), kUnauthorized (the cloud
// refused the token, with its reason), kUnavailable (cloud unreachable).
Status join(NodeCredentials& credentials, const std::string& cloud, const std::string& nodeName,
            const std::string& joinToken, std::chrono::milliseconds timeout);

}  // namespace ep::edgecore::certmanager
