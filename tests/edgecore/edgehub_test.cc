#include "edgecore/edgehub/edgehub.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <thread>

#include "proto/tunnel.grpc.pb.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::edgehub {
namespace {

namespace tv1 = edgeplane::tunnel::v1;
using namespace std::chrono_literals;

// In-process cloud on the gRPC callback API: checks Hello, sends the scripted Syncs, records
// SyncAcks and Reports and acknowledges every Report. Shared state is guarded by `mu`.
class FakeCloud final : public tv1::Tunnel::CallbackService {
 public:
  grpc::ServerBidiReactor<tv1::EdgeMessage, tv1::CloudMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

  bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, pred);
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<tv1::Hello> hellos;
  std::vector<tv1::Sync> syncsOnConnect;
  std::vector<int64_t> syncAcks;
  std::vector<tv1::Report> reports;
  uint64_t lastReport = 0;
  std::string refuseReason;
  bool ackReports = true;    // false: reports are recorded but neither applied nor acknowledged
  bool repeatSyncs = false;  // true: syncsOnConnect go to every connection, not just the next
  std::vector<std::string> features;  // HelloReply.features
  std::vector<tv1::ResourceMetrics> metrics;
};

// One stream. One read and one write in flight; deletes itself in OnDone.
class Session final : public grpc::ServerBidiReactor<tv1::EdgeMessage, tv1::CloudMessage> {
 public:
  explicit Session(FakeCloud* cloud) : cloud_(cloud) { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard lock(wmu_);
      readDone_ = true;
      maybeFinishLocked();
      return;
    }
    if (!helloSeen_) {
      helloSeen_ = true;
      if (!in_.has_hello()) {
        std::lock_guard lock(wmu_);
        finishAfterWrites({grpc::StatusCode::INVALID_ARGUMENT, "first message must be Hello"});
        return;
      }
      std::vector<tv1::CloudMessage> out;
      std::string refuse;
      {
        std::lock_guard lock(cloud_->mu);
        cloud_->hellos.push_back(in_.hello());
        refuse = cloud_->refuseReason;
        tv1::CloudMessage r;
        auto* reply = r.mutable_hello_reply();
        reply->set_accepted(refuse.empty());
        reply->set_reason(refuse);
        reply->set_protocol_version(1);
        reply->set_cloudcore_version("fake");
        reply->set_last_report_sequence(cloud_->lastReport);
        for (const auto& f : cloud_->features) reply->add_features(f);
        out.push_back(std::move(r));
        if (refuse.empty()) {
          for (auto& s : cloud_->syncsOnConnect) {
            tv1::CloudMessage m;
            *m.mutable_sync() = s;
            out.push_back(std::move(m));
          }
          if (!cloud_->repeatSyncs) cloud_->syncsOnConnect.clear();
        }
      }
      cloud_->cv.notify_all();
      std::lock_guard lock(wmu_);
      for (auto& m : out) queueLocked(std::move(m));
      if (!refuse.empty()) {
        finishAfterWrites({grpc::StatusCode::FAILED_PRECONDITION, refuse});
        return;
      }
    } else {
      std::optional<tv1::CloudMessage> ack;
      {
        std::lock_guard lock(cloud_->mu);
        if (in_.has_sync_ack()) cloud_->syncAcks.push_back(in_.sync_ack().revision());
        if (in_.has_resource_metrics()) cloud_->metrics.push_back(in_.resource_metrics());
        if (in_.has_report()) {
          cloud_->reports.push_back(in_.report());
          if (cloud_->ackReports) {
            cloud_->lastReport = std::max(cloud_->lastReport, in_.report().sequence());
            ack.emplace();
            ack->mutable_report_ack()->set_sequence(in_.report().sequence());
          }
        }
      }
      cloud_->cv.notify_all();
      if (ack) {
        std::lock_guard lock(wmu_);
        queueLocked(std::move(*ack));
      }
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(wmu_);
    writing_ = false;
    if (!ok) {
      queue_.clear();
      readDone_ = true;
    }
    if (!queue_.empty()) {
      startNextLocked();
      return;
    }
    maybeFinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  void queueLocked(tv1::CloudMessage&& m) {
    queue_.push_back(std::move(m));
    if (!writing_) startNextLocked();
  }
  void startNextLocked() {
    out_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&out_);
  }
  void finishAfterWrites(grpc::Status s) {
    finishStatus_ = std::move(s);
    finishing_ = true;
    maybeFinishLocked();
  }
  void maybeFinishLocked() {
    if (finished_ || writing_ || !queue_.empty()) return;
    if (finishing_ || readDone_) {
      finished_ = true;
      Finish(finishing_ ? finishStatus_ : grpc::Status::OK);
    }
  }

  FakeCloud* const cloud_;
  tv1::EdgeMessage in_;     // read chain only
  bool helloSeen_ = false;  // read chain only
  std::mutex wmu_;
  std::deque<tv1::CloudMessage> queue_;  // guarded by wmu_
  tv1::CloudMessage out_;                // guarded by wmu_; stable while a write is in flight
  bool writing_ = false;                 // guarded by wmu_
  bool readDone_ = false;                // guarded by wmu_
  bool finishing_ = false;               // guarded by wmu_
  bool finished_ = false;                // guarded by wmu_
  grpc::Status finishStatus_;            // guarded by wmu_
};

grpc::ServerBidiReactor<tv1::EdgeMessage, tv1::CloudMessage>* FakeCloud::Connect(
    grpc::CallbackServerContext*) {
  return new Session(this);
}

class Server {
 public:
  Server(FakeCloud& cloud, int port) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                       &port_);
    b.RegisterService(&cloud);
    server_ = b.BuildAndStart();
  }
  ~Server() { server_->Shutdown(std::chrono::system_clock::now()); }
  int port() const { return port_; }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

tv1::Sync syncPut(int64_t revision, const std::string& name) {
  tv1::Sync s;
  s.set_revision(revision);
  s.set_initial(true);
  auto* c = s.add_changes();
  c->set_op(tv1::Change::OP_PUT);
  c->set_resource("pods");
  c->set_namespace_("default");
  c->set_name(name);
  c->set_revision(revision);
  c->set_value(nlohmann::json{
      {"kind", "Pod"},
      {"metadata",
       {{"name", name}, {"namespace", "default"}, {"resourceVersion", std::to_string(revision)}}}}
                   .dump());
  return s;
}

class EdgeHubTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cache_.start().isOk()); }
  EdgeHubOptions options(int port) {
    EdgeHubOptions o;
    o.cloud = "127.0.0.1:" + std::to_string(port);
    o.nodeName = "edge-1";
    o.version = "test";
    o.initialBackoff = 20ms;
    o.maxBackoff = 200ms;
    o.handshakeTimeout = 2000ms;
    return o;
  }
  bool eventually(const std::function<bool()>& pred) {
    for (int i = 0; i < 500; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  ep::testing::TempDir dir_;
  metamanager::MetaManager cache_{metamanager::MetaManagerOptions{dir_.path()}};
  FakeCloud cloud_;
};

TEST_F(EdgeHubTest, HandshakeSyncAndReports) {
  ASSERT_TRUE(cache_.applySync(syncPut(3, "old")).isOk());
  ASSERT_TRUE(
      cache_.enqueue(tv1::REPORT_KIND_NODE_STATUS, "", "edge-1", "{\"kind\":\"Node\"}").isOk());
  cloud_.syncsOnConnect.push_back(syncPut(7, "web"));
  auto server = std::make_unique<Server>(cloud_, 0);
  EdgeHub hub(options(server->port()), cache_, SystemClock::instance());
  cache_.setOutboxNotify([&hub] { hub.wakeOutbox(); });
  ASSERT_TRUE(hub.start().isOk());

  ASSERT_TRUE(cloud_.waitFor([&] { return !cloud_.syncAcks.empty(); }));
  {
    std::lock_guard lock(cloud_.mu);
    const auto& h = cloud_.hellos.at(0);
    EXPECT_EQ(h.node_name(), "edge-1");
    EXPECT_EQ(h.protocol_version(), 1u);
    EXPECT_EQ(h.edgecore_version(), "test");
    EXPECT_EQ(h.last_applied_revision(), 3);
    ASSERT_EQ(h.inventory_size(), 1);
    EXPECT_EQ(h.inventory(0).name(), "old");
    EXPECT_EQ(h.inventory(0).revision(), 3);
    EXPECT_EQ(cloud_.syncAcks[0], 7);
  }
  EXPECT_EQ(cache_.lastAppliedRevision(), 7);
  EXPECT_TRUE(cache_.get("pods", "default", "web").isOk());
  // The pending report goes up and is deleted once acknowledged.
  ASSERT_TRUE(cloud_.waitFor([&] { return cloud_.reports.size() >= 1; }));
  EXPECT_EQ(cloud_.reports[0].kind(), tv1::REPORT_KIND_NODE_STATUS);
  EXPECT_EQ(cloud_.reports[0].name(), "edge-1");
  ASSERT_TRUE(eventually([&] { return cache_.outboxEntries() == 0; }));
  EXPECT_TRUE(hub.state().connected);

  // Live reports, in order.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        cache_.enqueue(tv1::REPORT_KIND_EVENT, "default", "e" + std::to_string(i), "{}").isOk());
  }
  ASSERT_TRUE(cloud_.waitFor([&] { return cloud_.reports.size() >= 21; }));
  {
    std::lock_guard lock(cloud_.mu);
    for (size_t i = 1; i < cloud_.reports.size(); ++i) {
      EXPECT_LT(cloud_.reports[i - 1].sequence(), cloud_.reports[i].sequence());
    }
  }
  ASSERT_TRUE(eventually([&] { return cache_.outboxEntries() == 0; }));
  hub.stop();
  server.reset();
}

// edgecore starts its model fetcher after the hub: when the tunnel is up by then, the fetcher
// must still be told, or no chunk is asked for until the next reconnect (a flaky e2e test
// waited 90 s for a model with the tunnel up the whole time).
TEST_F(EdgeHubTest, OptionalMessagesGoOnlyToACloudThatListsThem) {
  tv1::EdgeMessage m;
  m.mutable_resource_metrics()->set_timestamp_ms(7);
  auto server = std::make_unique<Server>(cloud_, 0);
  EdgeHub hub(options(server->port()), cache_, SystemClock::instance());
  tv1::EdgeMessage copy = m;
  EXPECT_FALSE(hub.sendIfConnected(std::move(copy), "resource-metrics")) << "not connected";
  EXPECT_EQ(hub.connectionWith("resource-metrics"), 0u);
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(eventually([&] { return hub.state().connected; }));
  // This cloud lists no feature: an older one would end the stream on the unknown message.
  copy = m;
  EXPECT_FALSE(hub.sendIfConnected(std::move(copy), "resource-metrics"));
  EXPECT_EQ(hub.connectionWith("resource-metrics"), 0u);
  hub.stop();
  server.reset();

  cloud_.features = {"resource-metrics"};
  server = std::make_unique<Server>(cloud_, 0);
  EdgeHub listing(options(server->port()), cache_, SystemClock::instance());
  ASSERT_TRUE(listing.start().isOk());
  ASSERT_TRUE(eventually([&] { return listing.state().connected; }));
  // The connection's number, for a feature it listed only.
  const uint64_t connection = listing.connectionWith("resource-metrics");
  EXPECT_NE(connection, 0u);
  EXPECT_EQ(listing.connectionWith("something-else"), 0u);
  copy = m;
  EXPECT_TRUE(listing.sendIfConnected(std::move(copy), "resource-metrics"));
  ASSERT_TRUE(cloud_.waitFor([&] { return !cloud_.metrics.empty(); }));
  {
    std::lock_guard lock(cloud_.mu);
    EXPECT_EQ(cloud_.metrics.front().timestamp_ms(), 7);
  }
  copy = m;
  EXPECT_FALSE(listing.sendIfConnected(std::move(copy), "something-else"));
  EXPECT_TRUE(listing.sendOnConnection(connection, tv1::EdgeMessage(m)));
  // A new connection gets a new number: the node's heartbeat sends its full status on it, and
  // nothing meant for the old one goes on it.
  listing.resync("test");
  ASSERT_TRUE(eventually([&] {
    const uint64_t now = listing.connectionWith("resource-metrics");
    return now != 0 && now != connection;
  }));
  EXPECT_FALSE(listing.sendOnConnection(connection, tv1::EdgeMessage(m)));
  EXPECT_TRUE(
      listing.sendOnConnection(listing.connectionWith("resource-metrics"), tv1::EdgeMessage(m)));
  listing.stop();
  server.reset();
}

TEST_F(EdgeHubTest, BlobHandlerSetAfterTheTunnelCameUpIsToldItIsUp) {
  struct CountingHandler final : BlobHandler {
    std::atomic<int> ups{0};
    std::atomic<int> downs{0};
    void onTunnelUp(StreamSender) override { ++ups; }
    void onBlobChunk(tv1::BlobChunk&&) override {}
    void onTunnelDown() override { ++downs; }
  };
  auto server = std::make_unique<Server>(cloud_, 0);
  EdgeHub hub(options(server->port()), cache_, SystemClock::instance());
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(eventually([&] { return hub.state().connected; }));
  CountingHandler handler;
  hub.setBlobHandler(&handler);
  ASSERT_TRUE(eventually([&] { return handler.ups.load() == 1; }));
  // Set again on the same connection: not told twice.
  hub.setBlobHandler(&handler);
  CountingHandler probe;  // another handler is told; its notice comes after the repeat's
  hub.setBlobHandler(&probe);
  ASSERT_TRUE(eventually([&] { return probe.ups.load() == 1; }));
  EXPECT_EQ(handler.ups.load(), 1);
  hub.stop();
  server.reset();
}

TEST_F(EdgeHubTest, ReconnectsAfterServerRestart) {
  cloud_.syncsOnConnect.push_back(syncPut(5, "a"));
  auto server = std::make_unique<Server>(cloud_, 0);
  const int port = server->port();
  EdgeHub hub(options(port), cache_, SystemClock::instance());
  cache_.setOutboxNotify([&hub] { hub.wakeOutbox(); });
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(cloud_.waitFor([&] { return !cloud_.syncAcks.empty(); }));
  ASSERT_TRUE(eventually([&] { return hub.state().connected; }));

  server.reset();  // cloud goes away
  ASSERT_TRUE(eventually([&] { return !hub.state().connected; }));
  EXPECT_GT(hub.state().disconnectedSinceMillis, 0);
  EXPECT_FALSE(hub.statusJson()["tunnel"]["connected"].get<bool>());
  // Reports enqueued while offline wait in the outbox.
  ASSERT_TRUE(cache_.enqueue(tv1::REPORT_KIND_POD_STATUS, "default", "a", "{\"v\":1}").isOk());
  ASSERT_TRUE(cache_.enqueue(tv1::REPORT_KIND_POD_STATUS, "default", "a", "{\"v\":2}").isOk());
  // One more attempt fails while they wait; they stay (coalesced: one status per pod).
  const int attempts = hub.state().reconnectAttempt;
  ASSERT_TRUE(eventually([&] { return hub.state().reconnectAttempt > attempts; }));
  EXPECT_EQ(cache_.outboxEntries(), 1u);

  tv1::Sync del;
  del.set_revision(9);
  del.set_initial(true);
  auto* c = del.add_changes();
  c->set_op(tv1::Change::OP_DELETE);
  c->set_resource("pods");
  c->set_namespace_("default");
  c->set_name("a");
  c->set_revision(9);
  {
    std::lock_guard lock(cloud_.mu);
    cloud_.syncsOnConnect.push_back(del);
  }
  server = std::make_unique<Server>(cloud_, port);
  ASSERT_EQ(server->port(), port);
  ASSERT_TRUE(cloud_.waitFor([&] { return cloud_.syncAcks.size() >= 2; }));
  {
    std::lock_guard lock(cloud_.mu);
    const auto& h = cloud_.hellos.back();
    EXPECT_EQ(h.last_applied_revision(), 5);
    ASSERT_EQ(h.inventory_size(), 1);
    EXPECT_EQ(h.inventory(0).name(), "a");
    EXPECT_EQ(cloud_.syncAcks.back(), 9);
  }
  EXPECT_EQ(cache_.objectCount(), 0u);
  // Only the coalesced latest pod status is delivered.
  ASSERT_TRUE(cloud_.waitFor([&] { return !cloud_.reports.empty(); }));
  ASSERT_TRUE(eventually([&] { return cache_.outboxEntries() == 0; }));
  {
    std::lock_guard lock(cloud_.mu);
    ASSERT_EQ(cloud_.reports.size(), 1u);
    EXPECT_EQ(cloud_.reports[0].payload(), "{\"v\":2}");
  }
  EXPECT_TRUE(hub.state().connected);
  EXPECT_EQ(hub.state().connects, 2u);
  hub.stop();
}

// Several cloud addresses (cloudcore replicas): the hub connects to one of them and, when that
// one goes, to the other, where a report the first one never acknowledged arrives.
TEST_F(EdgeHubTest, MovesToTheNextCloudWhenItsOwnGoes) {
  FakeCloud other;
  cloud_.syncsOnConnect.push_back(syncPut(5, "a"));
  other.syncsOnConnect.push_back(syncPut(5, "a"));
  cloud_.ackReports = false;
  other.ackReports = false;
  auto first = std::make_unique<Server>(cloud_, 0);
  auto second = std::make_unique<Server>(other, 0);
  const std::string a = "127.0.0.1:" + std::to_string(first->port());
  const std::string b = "127.0.0.1:" + std::to_string(second->port());
  EdgeHubOptions o = options(first->port());
  o.cloud = a + "," + b;
  EdgeHub hub(o, cache_, SystemClock::instance());
  const std::string firstTry = hub.state().cloud;  // the one the first attempt will try
  EXPECT_TRUE(firstTry == a || firstTry == b) << firstTry;
  cache_.setOutboxNotify([&hub] { hub.wakeOutbox(); });
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(eventually([&] { return hub.state().connected; }));
  const std::string used = hub.state().cloud;
  EXPECT_EQ(used, firstTry) << "both clouds are up: the first attempt connects";
  ASSERT_TRUE(used == a || used == b) << used;
  EXPECT_EQ(hub.statusJson()["tunnel"]["cloud"], used);
  FakeCloud& current = used == a ? cloud_ : other;
  FakeCloud& survivor = used == a ? other : cloud_;

  // A report the cloud in use receives and never acknowledges stays in the outbox.
  ASSERT_TRUE(cache_.enqueue(tv1::REPORT_KIND_POD_STATUS, "default", "a", "{\"v\":1}").isOk());
  ASSERT_TRUE(current.waitFor([&] { return !current.reports.empty(); }));
  EXPECT_EQ(cache_.outboxEntries(), 1u);
  {
    std::lock_guard lock(survivor.mu);
    survivor.ackReports = true;
  }
  // That cloud goes away: the hub connects to the other, which gets the report and
  // acknowledges it.
  if (used == a) {
    first.reset();
  } else {
    second.reset();
  }
  ASSERT_TRUE(eventually([&] { return hub.state().connected && hub.state().cloud != used; }))
      << hub.statusJson().dump();
  ASSERT_TRUE(survivor.waitFor([&] { return !survivor.reports.empty(); }));
  {
    std::lock_guard lock(survivor.mu);
    EXPECT_EQ(survivor.reports[0].payload(), "{\"v\":1}");
  }
  ASSERT_TRUE(eventually([&] { return cache_.outboxEntries() == 0; }));
  EXPECT_EQ(hub.state().connects, 2u);
  hub.stop();
}

TEST_F(EdgeHubTest, DropCountTravelsInTheNextReport) {
  ep::testing::TempDir dir;
  metamanager::MetaManager small(metamanager::MetaManagerOptions{dir.path(), 2, 1 << 20});
  ASSERT_TRUE(small.start().isOk());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(small.enqueue(tv1::REPORT_KIND_DATA, "", "d" + std::to_string(i), "x").isOk());
  }
  ASSERT_EQ(small.droppedCount(), 1u);
  auto server = std::make_unique<Server>(cloud_, 0);
  EdgeHub hub(options(server->port()), small, SystemClock::instance());
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(cloud_.waitFor([&] { return cloud_.reports.size() >= 2; }));
  {
    std::lock_guard lock(cloud_.mu);
    EXPECT_EQ(cloud_.reports[0].name(), "d1");
    EXPECT_EQ(cloud_.reports[0].dropped(), 1u);
    EXPECT_EQ(cloud_.reports[1].dropped(), 0u);
  }
  hub.stop();
  EXPECT_EQ(small.droppedCount(), 0u);
}

// Regression: the drop count left the database when its Report was sent and was kept in memory
// until acknowledged, so an edgecore restart in between lost it. It now stays with its outbox
// entry until the ack.
TEST_F(EdgeHubTest, DropCountSurvivesARestartBeforeTheAck) {
  ep::testing::TempDir dir;
  auto server = std::make_unique<Server>(cloud_, 0);
  uint64_t sequence = 0;
  {
    metamanager::MetaManager small(metamanager::MetaManagerOptions{dir.path(), 2, 1 << 20});
    ASSERT_TRUE(small.start().isOk());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(small.enqueue(tv1::REPORT_KIND_DATA, "", "d" + std::to_string(i), "x").isOk());
    }
    {
      std::lock_guard lock(cloud_.mu);
      cloud_.ackReports = false;
    }
    EdgeHub hub(options(server->port()), small, SystemClock::instance());
    ASSERT_TRUE(hub.start().isOk());
    ASSERT_TRUE(cloud_.waitFor([&] { return cloud_.reports.size() >= 2; }));
    {
      std::lock_guard lock(cloud_.mu);
      EXPECT_EQ(cloud_.reports[0].dropped(), 1u);
      sequence = cloud_.reports[0].sequence();
      cloud_.reports.clear();
      cloud_.ackReports = true;
    }
    hub.stop();
  }  // edgecore restarts from its cache; the cloud never applied the Report
  metamanager::MetaManager again(metamanager::MetaManagerOptions{dir.path(), 2, 1 << 20});
  ASSERT_TRUE(again.start().isOk());
  EdgeHub hub(options(server->port()), again, SystemClock::instance());
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(cloud_.waitFor([&] { return cloud_.reports.size() >= 2; }));
  {
    std::lock_guard lock(cloud_.mu);
    EXPECT_EQ(cloud_.reports[0].sequence(), sequence);
    EXPECT_EQ(cloud_.reports[0].dropped(), 1u) << "the drop count was lost across the restart";
    EXPECT_EQ(cloud_.reports[1].dropped(), 0u);
  }
  hub.stop();
  EXPECT_EQ(again.droppedCount(), 0u);
}

// A Sync the node cannot apply (here: malformed; on a device, a full disk) ends the stream, and
// the reconnect backoff keeps growing across the accepted handshakes that follow (before, each
// handshake reset it, so the node reconnected several times a second resending its inventory);
// an applied Sync resets it.
TEST_F(EdgeHubTest, BackoffKeepsGrowingWhileSyncsCannotBeApplied) {
  tv1::Sync bad = syncPut(5, "p");
  bad.mutable_changes(0)->set_name("");  // refused by the cache
  {
    std::lock_guard lock(cloud_.mu);
    cloud_.syncsOnConnect = {bad};
    cloud_.repeatSyncs = true;  // every connection is accepted and gets the bad Sync again
  }
  Server server(cloud_, 0);
  EdgeHubOptions o = options(server.port());
  o.initialBackoff = 5ms;
  o.maxBackoff = 400ms;
  EdgeHub hub(o, cache_, SystemClock::instance());
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(eventually([&] { return hub.state().reconnectAttempt >= 5; }))
      << hub.state().reconnectAttempt;
  EXPECT_NE(hub.state().syncError.find(".name: must not be empty"), std::string::npos)
      << hub.state().syncError;
  EXPECT_GE(hub.state().connects, 3u);  // the handshakes were accepted all along
  // A good Sync: applied, acknowledged, and the error and the backoff reset.
  {
    std::lock_guard lock(cloud_.mu);
    cloud_.syncsOnConnect = {syncPut(6, "q")};
  }
  ASSERT_TRUE(cloud_.waitFor([&] {
    return std::find(cloud_.syncAcks.begin(), cloud_.syncAcks.end(), 6) != cloud_.syncAcks.end();
  }));
  EXPECT_TRUE(eventually([&] { return hub.state().syncError.empty(); }));
  hub.stop();
}

TEST_F(EdgeHubTest, RefusalIsLoggedAndRetried) {
  cloud_.refuseReason = "node edge-1 is not registered";
  auto server = std::make_unique<Server>(cloud_, 0);
  EdgeHub hub(options(server->port()), cache_, SystemClock::instance());
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(cloud_.waitFor([&] { return cloud_.hellos.size() >= 3; }));
  auto st = hub.state();
  EXPECT_FALSE(st.connected);
  EXPECT_NE(st.lastError.find("not registered"), std::string::npos) << st.lastError;
  hub.stop();
}

TEST_F(EdgeHubTest, StartsAndStopsWithNoCloud) {
  EdgeHub hub(options(1), cache_, SystemClock::instance());  // nothing listens on port 1
  ASSERT_TRUE(hub.start().isOk());
  ASSERT_TRUE(eventually([&] { return !hub.state().lastError.empty(); }));
  EXPECT_FALSE(hub.state().connected);
  hub.stop();
}

}  // namespace
}  // namespace ep::edgecore::edgehub
