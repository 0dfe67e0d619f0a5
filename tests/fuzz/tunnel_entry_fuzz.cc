// Fuzz target for the tunnel's entry, i.e. what a node can send once its TLS handshake is done:
// the stream's first message checked against the certificate's identity (checkHello), then
// reports applied through the node-authorizing ReportApplier onto a real SqliteStore.
//
// Input: byte 0 picks the peer identity (node-a's certificate, none, a non-node certificate);
// the rest is a sequence of messages, each a 2-byte little-endian length and that many bytes of
// a serialized EdgeMessage. Invariants checked on every input: a refused Hello applies nothing,
// an accepted one is node-a's, and nothing node-a sends ever changes node-b's Node or Pod.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cloudcore/cloudhub/report_applier.h"
#include "cloudcore/cloudhub/tunnel_entry.h"
#include "cloudcore/registry/registry.h"
#include "cloudcore/store/sqlite_store.h"
#include "common/api/kinds.h"
#include "common/clock.h"
#include "tests/testing/temp_dir.h"

namespace {

using Json = nlohmann::json;
namespace pb = edgeplane::tunnel::v1;

const ep::api::KindInfo& kind(const char* k) {
  return *ep::api::findByApiVersionKind("v1", k);
}

struct World {
  ep::testing::TempDir dir;  // destroyed last, after the store stopped
  ep::SystemClock clock;
  std::unique_ptr<ep::store::SqliteStore> store;
  std::unique_ptr<ep::registry::Registry> registry;
  std::unique_ptr<ep::cloudhub::ReportApplier> applier;
  std::string nodeBVersion, podBVersion;

  World() {
    ep::store::SqliteStoreOptions o;
    o.dataDir = dir.path();
    o.compactionInterval = std::chrono::seconds(0);
    store = std::make_unique<ep::store::SqliteStore>(o, clock);
    if (!store->start().isOk()) std::abort();
    registry = std::make_unique<ep::registry::Registry>(*store, clock);
    if (!registry->ensureSystemNamespaces().isOk()) std::abort();
    // Registration is manual with certificates: only Nodes that joined exist.
    applier = std::make_unique<ep::cloudhub::ReportApplier>(*registry, false);
    for (const char* n : {"node-a", "node-b"}) {
      Json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", n}}}};
      if (!registry->create(kind("Node"), "", node).isOk()) std::abort();
      Json pod = {
          {"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", std::string("pod-") + (n + 5)}, {"namespace", "default"}}},
          {"spec",
           {{"nodeName", n}, {"containers", {{{"name", "c"}, {"image", "reg.local/a:1"}}}}}}};
      if (!registry->create(kind("Pod"), "default", pod).isOk()) std::abort();
    }
    nodeBVersion = version(kind("Node"), "", "node-b");
    podBVersion = version(kind("Pod"), "default", "pod-b");
  }
  ~World() { store->stop(); }
  std::string version(const ep::api::KindInfo& k, const std::string& ns, const std::string& n) {
    auto got = registry->get(k, ns, n);
    if (!got.isOk()) std::abort();
    return (*got)["metadata"]["resourceVersion"].get<std::string>();
  }
};

World& world() {
  static World* w = new World();  // lives for the process: one store for every input
  return *w;
}

ep::cloudhub::PeerIdentity identity(uint8_t pick) {
  ep::cloudhub::PeerIdentity id;
  switch (pick % 3) {
    case 0:
      id = {true, "node-a", "system:node:node-a", "1a"};
      break;
    case 1:
      break;  // no certificate
    default:
      id = {true, "", "kubernetes-admin", "2b"};
      break;
  }
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  World& w = world();
  auto peer = identity(data[0]);
  size_t at = 1;
  bool first = true;
  ep::cloudhub::HelloCheck hello;
  for (int messages = 0; messages < 16 && at + 2 <= size; ++messages) {
    size_t len = data[at] | (size_t(data[at + 1]) << 8);
    at += 2;
    len = std::min(len, size - at);
    pb::EdgeMessage msg;
    bool parsed = msg.ParseFromArray(data + at, static_cast<int>(len));
    at += len;
    if (!parsed) break;  // the gRPC layer closes the stream on a message that does not parse
    if (first) {
      first = false;
      hello = ep::cloudhub::checkHello(msg, peer, true);
      if (!hello.accepted) break;
      if (hello.node != peer.node || hello.node != "node-a") __builtin_trap();
      continue;
    }
    if (msg.body_case() != pb::EdgeMessage::kReport) continue;
    auto input = ep::cloudhub::reportInputOf(msg.report());
    (void)w.applier->apply(hello.node, input);
  }
  if (w.version(kind("Node"), "", "node-b") != w.nodeBVersion) __builtin_trap();
  if (w.version(kind("Pod"), "default", "pod-b") != w.podBVersion) __builtin_trap();
  return 0;
}
