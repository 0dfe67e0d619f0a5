#include "cloudcore/cloudhub/tunnel_entry.h"

#include <gtest/gtest.h>

#include "common/pki/pki.h"

namespace ep::cloudhub {
namespace {

namespace pb = edgeplane::tunnel::v1;

pb::EdgeMessage hello(const std::string& node, uint32_t version = kTunnelProtocolVersion) {
  pb::EdgeMessage m;
  auto* h = m.mutable_hello();
  h->set_node_name(node);
  h->set_protocol_version(version);
  h->set_edgecore_version(std::string("v1\x01\n", 4));
  h->set_last_applied_revision(42);
  auto* good = h->add_inventory();
  good->set_resource("pods");
  good->set_namespace_("default");
  good->set_name("web");
  good->set_revision(7);
  h->add_inventory()->set_resource("pods");  // no name: malformed
  return m;
}

PeerIdentity nodeIdentity(const std::string& node) {
  return {true, node, "system:node:" + node, "1f"};
}

TEST(TunnelEntryTest, AcceptsTheCertificatesOwnNode) {
  auto c = checkHello(hello("edge-1"), nodeIdentity("edge-1"), true);
  ASSERT_TRUE(c.accepted) << c.reason;
  EXPECT_EQ(c.node, "edge-1");
  ASSERT_EQ(c.inventory.size(), 1u);
  EXPECT_EQ(c.inventory[0].key.name, "web");
  EXPECT_EQ(c.inventory[0].revision, 7);
  EXPECT_EQ(c.skipped, 1u);
  EXPECT_EQ(c.edgeVersion, "v1??");  // control characters never reach a log
  EXPECT_EQ(c.lastAppliedRevision, 42);
}

TEST(TunnelEntryTest, HelloNamingAnotherNodeIsRefusedWithBothNames) {
  auto c = checkHello(hello("edge-2"), nodeIdentity("edge-1"), true);
  EXPECT_FALSE(c.accepted);
  EXPECT_EQ(c.code, grpclite::RpcCode::kPermissionDenied);
  EXPECT_EQ(c.metricReason, "identity_mismatch");
  EXPECT_NE(c.reason.find("\"edge-1\""), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("\"edge-2\""), std::string::npos) << c.reason;
}

TEST(TunnelEntryTest, RefusesWithoutANodeCertificate) {
  auto none = checkHello(hello("edge-1"), PeerIdentity{}, true);
  EXPECT_EQ(none.code, grpclite::RpcCode::kUnauthenticated);
  EXPECT_EQ(none.metricReason, "no_client_certificate");
  auto admin = checkHello(hello("edge-1"), {true, "", "kubernetes-admin", "2"}, true);
  EXPECT_EQ(admin.code, grpclite::RpcCode::kPermissionDenied);
  EXPECT_EQ(admin.metricReason, "not_a_node");
}

// A session resumed from a TLS ticket brings the certificate it was made with, which may have
// expired since; the full handshake would have refused it.
TEST(TunnelEntryTest, RefusesAnExpiredCertificate) {
  PeerIdentity id = nodeIdentity("edge-1");
  const auto now = std::chrono::system_clock::now();
  id.notAfter = now - std::chrono::seconds(1);
  auto c = checkHello(hello("edge-1"), id, true, now);
  EXPECT_FALSE(c.accepted);
  EXPECT_EQ(c.code, grpclite::RpcCode::kUnauthenticated);
  EXPECT_EQ(c.metricReason, "certificate_expired");
  id.notAfter = now + std::chrono::hours(1);
  EXPECT_TRUE(checkHello(hello("edge-1"), id, true, now).accepted);
}

TEST(TunnelEntryTest, RefusesBadFirstMessages) {
  pb::EdgeMessage ack;
  ack.mutable_sync_ack()->set_revision(1);
  EXPECT_EQ(checkHello(ack, nodeIdentity("edge-1"), true).metricReason, "first_message_not_hello");
  EXPECT_EQ(checkHello(hello("edge-1", 9), nodeIdentity("edge-1"), true).metricReason,
            "protocol_version");
  auto bad = checkHello(hello("Edge_1\n"), nodeIdentity("edge-1"), true);
  EXPECT_EQ(bad.metricReason, "invalid_node_name");
  EXPECT_EQ(bad.reason.find('\n'), std::string::npos);
}

TEST(TunnelEntryTest, IdentityComesFromANodeCertificateOnly) {
  auto ca = pki::createCa("test-ca", std::chrono::hours(1));
  ASSERT_TRUE(ca.isOk());
  pki::CertRequest node{
      .commonName = "system:node:edge-1", .organizations = {"system:nodes"}, .clientAuth = true};
  auto nodeCert = pki::issueKeyAndCertificate(*ca, node);
  ASSERT_TRUE(nodeCert.isOk());
  auto id = identityFromCertificate(nodeCert->certPem);
  EXPECT_TRUE(id.present);
  EXPECT_EQ(id.node, "edge-1");
  EXPECT_FALSE(id.serial.empty());

  // The right CN without the system:nodes group is not a node.
  pki::CertRequest noGroup{.commonName = "system:node:edge-1", .clientAuth = true};
  auto other = pki::issueKeyAndCertificate(*ca, noGroup);
  ASSERT_TRUE(other.isOk());
  auto otherId = identityFromCertificate(other->certPem);
  EXPECT_TRUE(otherId.present);
  EXPECT_EQ(otherId.node, "");

  EXPECT_FALSE(identityFromCertificate("not a certificate").present);
}

}  // namespace
}  // namespace ep::cloudhub
