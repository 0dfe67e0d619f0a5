#include "cloudcore/cloudhub/tunnel_entry.h"

#include <algorithm>

#include "common/api/names.h"
#include "common/pki/pki.h"

namespace ep::cloudhub {

namespace pb = edgeplane::tunnel::v1;

std::string printableText(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > max) out += "...";
  return out;
}

PeerIdentity identityFromCertificate(std::string_view pem) {
  PeerIdentity id;
  auto info = pki::parseCertificate(std::string(pem));
  if (!info) return id;
  return identityFromInfo(*info);
}

PeerIdentity identityFromInfo(const pki::CertInfo& i) {
  PeerIdentity id;
  const pki::CertInfo* info = &i;
  id.present = true;
  id.notAfter = info->notAfter;
  id.commonName = info->commonName;
  id.serial = info->serialHex;
  const std::string_view prefix = "system:node:";
  bool inNodes = std::find(info->organizations.begin(), info->organizations.end(),
                           "system:nodes") != info->organizations.end();
  if (inNodes && info->commonName.size() > prefix.size() &&
      std::string_view(info->commonName).substr(0, prefix.size()) == prefix) {
    id.node = info->commonName.substr(prefix.size());
  }
  return id;
}

namespace {

HelloCheck refused(grpclite::RpcCode code, std::string metricReason, std::string reason) {
  HelloCheck c;
  c.code = code;
  c.metricReason = std::move(metricReason);
  c.reason = std::move(reason);
  return c;
}

}  // namespace

HelloCheck checkHello(const pb::EdgeMessage& first, const PeerIdentity& peer, bool tls,
                      std::chrono::system_clock::time_point now) {
  if (tls && !peer.present) {
    return refused(grpclite::RpcCode::kUnauthenticated, "no_client_certificate",
                   "a node client certificate is required: join the cluster with a token first");
  }
  if (tls && peer.node.empty()) {
    return refused(grpclite::RpcCode::kPermissionDenied, "not_a_node",
                   "certificate \"" + printableText(peer.commonName) +
                       "\" is not a node's (want CN system:node:NAME, O system:nodes)");
  }
  if (tls && peer.notAfter < now) {
    return refused(
        grpclite::RpcCode::kUnauthenticated, "certificate_expired",
        "the certificate of node \"" + peer.node + "\" has expired: join again with a new token");
  }
  if (first.body_case() != pb::EdgeMessage::kHello) {
    return refused(grpclite::RpcCode::kInvalidArgument, "first_message_not_hello",
                   "the first message on a tunnel stream must be a Hello");
  }
  const pb::Hello& hello = first.hello();
  if (hello.protocol_version() != kTunnelProtocolVersion) {
    return refused(grpclite::RpcCode::kFailedPrecondition, "protocol_version",
                   "protocol version " + std::to_string(hello.protocol_version()) +
                       " is not supported (the cloud speaks " +
                       std::to_string(kTunnelProtocolVersion) + ")");
  }
  if (auto errors = api::checkDns1123Subdomain(hello.node_name()); !errors.empty()) {
    return refused(grpclite::RpcCode::kInvalidArgument, "invalid_node_name",
                   "node name \"" + printableText(hello.node_name()) +
                       "\" is not a valid DNS-1123 subdomain: " + errors.front());
  }
  if (tls && hello.node_name() != peer.node) {
    return refused(grpclite::RpcCode::kPermissionDenied, "identity_mismatch",
                   "this certificate belongs to node \"" + peer.node + "\", not \"" +
                       printableText(hello.node_name()) + "\"");
  }
  HelloCheck c;
  c.accepted = true;
  c.node = hello.node_name();
  c.inventory.reserve(static_cast<size_t>(hello.inventory_size()));
  for (const auto& e : hello.inventory()) {
    if (e.resource().empty() || e.name().empty() || e.revision() < 0) {
      ++c.skipped;
      continue;
    }
    c.inventory.push_back({{e.resource(), e.namespace_(), e.name()}, e.revision()});
  }
  c.edgeVersion = printableText(hello.edgecore_version(), 64);
  c.lastAppliedRevision = hello.last_applied_revision();
  return c;
}

ReportInput reportInputOf(const pb::Report& r) {
  return ReportInput{r.sequence(), static_cast<int>(r.kind()), r.namespace_(), r.name(),
                     r.payload()};
}

}  // namespace ep::cloudhub
