#include "edgecore/certmanager/node_credentials.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>

#include "common/grpclite/channel.h"
#include "common/pki/edge_pki.h"
#include "common/pki/join_token.h"
#include "common/pki/pki.h"
#include "common/thread_annotations.h"
#include "proto/tunnel.pb.h"

namespace ep::edgecore::certmanager {

namespace tv1 = edgeplane::tunnel::v1;

namespace {

constexpr const char* kBegin = "-----BEGIN CERTIFICATE-----";

// node.pem holds the key first, then the certificate.
bool splitPem(const std::string& pem, std::string& key, std::string& cert) {
  auto at = pem.find(kBegin);
  if (at == std::string::npos) return false;
  key = pem.substr(0, at);
  cert = pem.substr(at);
  return !key.empty();
}

}  // namespace

NodeCredentials::NodeCredentials(std::string dataDir) : dir_(std::move(dataDir) + "/pki") {}

Status NodeCredentials::check(Snapshot& s) const {
  if (auto st = pki::edge::checkKeyMatchesCert(s.keyPem, s.certPem); !st.isOk()) {
    return invalidError(dir_ + "/node.pem: " + st.message());
  }
  auto info = pki::edge::parseCertificate(s.certPem);
  if (!info) return invalidError(dir_ + "/node.pem: " + info.status().message());
  // Chained to the CA (checked at mid-life: an expired certificate is reported by the cloud).
  auto mid = info->notBefore + (info->notAfter - info->notBefore) / 2;
  if (auto st = pki::edge::verifyCertificate(s.certPem, s.caPem, mid); !st.isOk()) {
    return invalidError(dir_ + "/node.pem: not issued by " + dir_ + "/ca.crt (" + st.message() +
                        ")");
  }
  s.serial = info->serialHex;
  s.notBefore = info->notBefore;
  s.notAfter = info->notAfter;
  return Status::ok();
}

Status NodeCredentials::load() {
  std::error_code ec;
  if (!std::filesystem::exists(dir_ + "/node.pem", ec)) {
    return notFoundError(dir_ +
                         "/node.pem does not exist: this node has not joined yet (run "
                         "edgecore with --token TOKEN; `edgectl token create` prints one)");
  }
  auto ca = pki::readFile(dir_ + "/ca.crt");
  if (!ca) return ca.status();
  auto pem = pki::readFile(dir_ + "/node.pem");
  if (!pem) return pem.status();
  Snapshot s;
  s.caPem = *ca;
  if (!splitPem(*pem, s.keyPem, s.certPem)) {
    return invalidError(dir_ + "/node.pem: expected a private key followed by a certificate");
  }
  if (auto st = check(s); !st.isOk()) return st;
  ::chmod(dir_.c_str(), 0700);
  MutexLock l(mu_);
  current_ = std::move(s);
  present_ = true;
  return Status::ok();
}

bool NodeCredentials::present() const {
  MutexLock l(mu_);
  return present_;
}

NodeCredentials::Snapshot NodeCredentials::snapshot() const {
  MutexLock l(mu_);
  return current_;
}

bool NodeCredentials::renewalDue(std::chrono::system_clock::time_point now, double fraction) const {
  MutexLock l(mu_);
  if (!present_) return false;
  auto life = current_.notAfter - current_.notBefore;
  auto at = current_.notBefore +
            std::chrono::duration_cast<std::chrono::system_clock::duration>(life * fraction);
  return now >= at;
}

namespace {

// A certificate's common name holds at most 64 characters (X.520), "system:node:" included.
constexpr size_t kMaxNodeNameInCertificate = 64 - 12;

Status checkNodeNameFits(const std::string& nodeName) {
  if (nodeName.size() <= kMaxNodeNameInCertificate) return Status::ok();
  return invalidError("node name \"" + nodeName + "\" is longer than " +
                      std::to_string(kMaxNodeNameInCertificate) +
                      " characters: a node certificate's common name (system:node:NAME) holds "
                      "at most 64 (X.520)");
}

}  // namespace

Result<std::string> NodeCredentials::prepareRenewal(const std::string& nodeName) {
  if (auto st = checkNodeNameFits(nodeName); !st.isOk()) return st;
  auto key = pki::edge::generateKey();
  if (!key) return key.status();
  auto csr = pki::edge::createCsr(*key, "system:node:" + nodeName, {"system:nodes"});
  if (!csr) return csr.status();
  MutexLock l(mu_);
  pendingKeyPem_ = std::move(key).value();
  return csr;
}

Status NodeCredentials::write(const Snapshot& s) {
  if (auto st = pki::writeFileAtomic(dir_ + "/ca.crt", s.caPem, 0644); !st.isOk()) return st;
  if (auto st = pki::writeFileAtomic(dir_ + "/node.pem", s.keyPem + s.certPem, 0600); !st.isOk()) {
    return st;
  }
  ::chmod(dir_.c_str(), 0700);
  return Status::ok();
}

Status NodeCredentials::installRenewal(const std::string& certPem) {
  Snapshot s;
  {
    MutexLock l(mu_);
    if (pendingKeyPem_.empty()) return invalidError("no renewal was prepared");
    s = current_;
    s.keyPem = pendingKeyPem_;
  }
  s.certPem = certPem;
  if (auto st = check(s); !st.isOk()) return st;
  if (auto st = write(s); !st.isOk()) return st;
  MutexLock l(mu_);
  current_ = std::move(s);
  pendingKeyPem_.clear();
  return Status::ok();
}

Status NodeCredentials::install(const std::string& caPem, const std::string& keyPem,
                                const std::string& certPem) {
  Snapshot s;
  s.caPem = caPem;
  s.keyPem = keyPem;
  s.certPem = certPem;
  if (auto st = check(s); !st.isOk()) return st;
  if (auto st = write(s); !st.isOk()) return st;
  MutexLock l(mu_);
  current_ = std::move(s);
  present_ = true;
  return Status::ok();
}

namespace {

std::string hostOf(const std::string& target) {
  if (!target.empty() && target[0] == '[') return target.substr(1, target.find(']') - 1);
  return target.substr(0, target.rfind(':'));
}

Status fromRpc(const grpclite::RpcStatus& s, const std::string& what) {
  std::string msg = what + ": " + s.message;
  switch (s.code) {
    case grpclite::RpcCode::kUnauthenticated:
      return Status(Code::kUnauthorized, msg);
    case grpclite::RpcCode::kPermissionDenied:
      return Status(Code::kForbidden, msg);
    case grpclite::RpcCode::kInvalidArgument:
      return invalidError(msg);
    default:
      return unavailableError(msg);
  }
}

}  // namespace

Status join(NodeCredentials& credentials, const std::string& cloud, const std::string& nodeName,
            const std::string& joinToken, std::chrono::milliseconds timeout) {
  auto token = pki::parseJoinToken(joinToken);
  if (!token) return token.status();
  if (auto st = checkNodeNameFits(nodeName); !st.isOk()) return st;

  // 1. The CA, from a connection nobody vouches for yet.
  grpclite::ChannelOptions discover;
  discover.connectTimeout = timeout;
  discover.tls.enabled = true;
  discover.tls.insecureSkipVerify = true;
  tv1::ClusterInfo info;
  {
    auto channel = grpclite::Channel::create(cloud, discover);
    tv1::ClusterInfoRequest req;
    auto st = channel->unary("/edgeplane.tunnel.v1.Tunnel/GetClusterInfo", req, &info, timeout);
    if (!st.ok()) return fromRpc(st, "asking " + cloud + " for the cluster CA");
  }
  auto hash = pki::edge::publicKeyHash(info.ca_certificate());
  if (!hash) return invalidError("the cluster CA from " + cloud + ": " + hash.status().message());
  if (*hash != token->caHash) {
    return Status(Code::kForbidden,
                  "the CA of " + cloud + " (" + *hash +
                      ") does not match the hash in the join token (" + token->caHash +
                      "): refusing to join (wrong cloud address, or someone in between)");
  }

  // 2. Key, CSR and the token, over a connection verified with that CA.
  auto key = pki::edge::generateKey();
  if (!key) return key.status();
  auto csr = pki::edge::createCsr(*key, "system:node:" + nodeName, {"system:nodes"});
  if (!csr) return csr.status();
  grpclite::ChannelOptions verified;
  verified.connectTimeout = timeout;
  verified.tls.enabled = true;
  verified.tls.caPem = info.ca_certificate();
  verified.tls.serverName = hostOf(cloud);
  tv1::JoinRequest req;
  req.set_token(token->bootstrapToken());
  req.set_node_name(nodeName);
  req.set_csr(*csr);
  tv1::JoinResponse resp;
  {
    auto channel = grpclite::Channel::create(cloud, verified);
    auto st = channel->unary("/edgeplane.tunnel.v1.Tunnel/Join", req, &resp, timeout);
    if (!st.ok()) return fromRpc(st, "joining " + cloud);
  }
  if (auto st = credentials.install(info.ca_certificate(), *key, resp.certificate()); !st.isOk()) {
    return st;
  }
  spdlog::info("edgecore: node {} joined {}; credentials stored in {}", nodeName, cloud,
               credentials.dir());
  return Status::ok();
}

}  // namespace ep::edgecore::certmanager
