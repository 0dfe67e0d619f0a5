#include "edgecore/edgehub/edgehub.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>

#include "proto/tunnel.grpc.pb.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::edgehub {
namespace {

namespace tv1 = edgeplane::tunnel::v1;
using namespace std::chrono_literals;

// In-process cloud: checks Hello, sends the scripted Syncs, records SyncAcks and Reports and
// acknowledges every Report. All writes of a stream go through one writer thread.
class FakeCloud final : public tv1::Tunnel::Service {
 public:
  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<tv1::CloudMessage, tv1::EdgeMessage>* stream) override {
    tv1::EdgeMessage first;
    if (!stream->Read(&first) || !first.has_hello()) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "first message must be Hello"};
    }
    std::deque<tv1::CloudMessage> initial;
    {
      std::lock_guard lock(mu);
      hellos.push_back(first.hello());
      if (!refuseReason.empty()) {
        tv1::CloudMessage r;
        r.mutable_hello_reply()->set_accepted(false);
        r.mutable_hello_reply()->set_reason(refuseReason);
        stream->Write(r);
        cv.notify_all();
        return {grpc::StatusCode::FAILED_PRECONDITION, refuseReason};
      }
      tv1::CloudMessage r;
      r.mutable_hello_reply()->set_accepted(true);
      r.mutable_hello_reply()->set_protocol_version(1);
      r.mutable_hello_reply()->set_cloudcore_version("fake");
      r.mutable_hello_reply()->set_last_report_sequence(lastReport);
      initial.push_back(r);
      for (auto& s : syncsOnConnect) {
        tv1::CloudMessage m;
        *m.mutable_sync() = s;
        initial.push_back(m);
      }
      syncsOnConnect.clear();
    }
    cv.notify_all();
    // Writer: everything queued for this stream.
    std::mutex wmu;
    std::condition_variable wcv;
    std::deque<tv1::CloudMessage> out = std::move(initial);
    bool readerDone = false;
    std::thread writer([&] {
      std::unique_lock lock(wmu);
      while (true) {
        wcv.wait_for(lock, 50ms, [&] { return !out.empty() || readerDone; });
        if (readerDone || ctx->IsCancelled()) return;
        while (!out.empty()) {
          auto m = std::move(out.front());
          out.pop_front();
          lock.unlock();
          bool ok = stream->Write(m);
          lock.lock();
          if (!ok) return;
        }
      }
    });
    tv1::EdgeMessage m;
    while (stream->Read(&m)) {
      std::lock_guard lock(mu);
      if (m.has_sync_ack()) syncAcks.push_back(m.sync_ack().revision());
      if (m.has_report()) {
        reports.push_back(m.report());
        lastReport = std::max(lastReport, m.report().sequence());
        tv1::CloudMessage ack;
        ack.mutable_report_ack()->set_sequence(m.report().sequence());
        std::lock_guard wl(wmu);
        out.push_back(ack);
        wcv.notify_all();
      }
      cv.notify_all();
    }
    {
      std::lock_guard wl(wmu);
      readerDone = true;
    }
    wcv.notify_all();
    writer.join();
    return grpc::Status::OK;
  }

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
};

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
  std::this_thread::sleep_for(300ms);

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
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(hub.state().connected);
  EXPECT_FALSE(hub.state().lastError.empty());
  hub.stop();
}

}  // namespace
}  // namespace ep::edgecore::edgehub
