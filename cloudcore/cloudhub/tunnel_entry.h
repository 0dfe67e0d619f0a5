#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cloudcore/cloudhub/dispatcher.h"
#include "cloudcore/cloudhub/report_applier.h"
#include "common/grpclite/framing.h"
#include "common/pki/pki.h"
#include "proto/tunnel.pb.h"

namespace ep::cloudhub {

// What a node's tunnel stream is checked against before anything it sends is applied: the
// identity from the TLS handshake and the stream's first message. Pure functions, free of the
// gRPC reactor, so that the tunnel's entry can be unit-tested and fuzzed (tunnel_entry_fuzz).

inline constexpr uint32_t kTunnelProtocolVersion = 1;

// The node a verified client certificate speaks for.
struct PeerIdentity {
  bool present = false;  // a verified certificate was presented
  std::string node;      // from CN system:node:NODE in O system:nodes; "" when not a node's
  std::string commonName;
  std::string serial;
  // notAfter: a session resumed from a TLS ticket carries the certificate it was made with,
  // which may have expired since.
  std::chrono::system_clock::time_point notAfter = std::chrono::system_clock::time_point::max();
};

// Identity from the PEM of the peer's (already verified) certificate; present=false when the
// PEM does not parse.
PeerIdentity identityFromCertificate(std::string_view pem);
// The same from the certificate's parsed fields.
PeerIdentity identityFromInfo(const pki::CertInfo& info);

// The outcome of checking a stream's first message.
struct HelloCheck {
  bool accepted = false;
  // When refused: the gRPC status, the /metrics reason label and the message for the edge.
  grpclite::RpcCode code = grpclite::RpcCode::kOk;
  std::string metricReason;
  std::string reason;
  // When accepted:
  std::string node;
  std::vector<InventoryEntry> inventory;  // malformed entries dropped (counted in `skipped`)
  size_t skipped = 0;
  std::string edgeVersion;  // printable, at most 64 characters
  int64_t lastAppliedRevision = 0;
};

// Checks the first message of a stream. With `tls`, the peer must have presented a node's
// certificate and the Hello must name that node (refusal reason "identity_mismatch" otherwise).
// A certificate past its notAfter is refused ("certificate_expired"): only a session resumed
// from a ticket can bring one, the full handshake checks validity itself.
HelloCheck checkHello(const edgeplane::tunnel::v1::EdgeMessage& first, const PeerIdentity& peer,
                      bool tls,
                      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// The report as the applier takes it (kind kept as received, possibly unknown).
ReportInput reportInputOf(const edgeplane::tunnel::v1::Report& report);

// Untrusted text (names from the wire) made safe and short for logs and messages.
std::string printableText(std::string_view s, size_t max = 80);

}  // namespace ep::cloudhub
