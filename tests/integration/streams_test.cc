// Logs and exec end to end in one process: cloudcore's API (ApiHandler + PodStreams on the
// HTTP server) and cloudhub over a real gRPC loopback to an EdgeHub whose StreamServer reads
// from an in-test container runtime. Also the real kubectl exec (WebSocket) when installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/apiserver/pod_streams.h"
#include "cloudcore/cloudhub/cloudhub.h"
#include "cloudcore/cloudhub/stream_broker.h"
#include "common/api/kinds.h"
#include "common/http/client.h"
#include "common/http/server.h"
#include "edgecore/edged/streaming/stream_server.h"
#include "edgecore/edgehub/edgehub.h"
#include "edgecore/metamanager/metamanager.h"
#include "tests/integration/fake_streaming_server.h"
#include "tests/testing/eventually.h"
#include "tests/testing/process.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/terminal.h"

namespace ep::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

// Just enough of a ContainerRuntime for streams: containers with labels, log files, exec.
class MiniRuntime final : public edged::ContainerRuntime {
 public:
  void add(edged::ContainerStatus c) {
    std::lock_guard l(mu_);
    containers_.push_back(std::move(c));
  }
  void exit(const std::string& id) {
    std::lock_guard l(mu_);
    for (auto& c : containers_) {
      if (c.info.id == id) c.info.state = edged::ContainerState::kExited;
    }
  }
  void setExec(edged::ExecResult r) {
    std::lock_guard l(mu_);
    exec_ = std::move(r);
  }
  std::vector<std::string> lastCommand() {
    std::lock_guard l(mu_);
    return lastCommand_;
  }
  // While held, execSync blocks (a long-running command) until release().
  void holdExecs() {
    std::lock_guard l(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard l(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  int execsRunning() {
    std::lock_guard l(mu_);
    return running_;
  }

  Result<std::vector<edged::ContainerInfo>> listContainers(
      const edged::ContainerFilter& filter) override {
    std::lock_guard l(mu_);
    std::vector<edged::ContainerInfo> out;
    for (const auto& c : containers_) {
      bool match = true;
      for (const auto& [k, v] : filter.labels) {
        auto it = c.info.labels.find(k);
        match = match && it != c.info.labels.end() && it->second == v;
      }
      if (match) out.push_back(c.info);
    }
    return out;
  }
  Result<edged::ContainerStatus> containerStatus(const std::string& id) override {
    std::lock_guard l(mu_);
    for (const auto& c : containers_) {
      if (c.info.id == id) return c;
    }
    return notFoundError("no container " + id);
  }
  Result<edged::ExecResult> execSync(const std::string&, const std::vector<std::string>& cmd,
                                     std::chrono::seconds) override {
    std::unique_lock l(mu_);
    lastCommand_ = cmd;
    ++running_;
    cv_.wait(l, [&] { return !held_; });
    --running_;
    return exec_;
  }

  // Interactive exec and attach go to this URL (a test streaming server); unset: refused.
  void setStreamingUrl(std::string url) {
    std::lock_guard l(mu_);
    streamingUrl_ = std::move(url);
  }
  std::vector<edged::StreamingRequest> streamingRequests() {
    std::lock_guard l(mu_);
    return streamingRequests_;
  }
  Result<std::string> streamingUrl(const edged::StreamingRequest& request) override {
    std::lock_guard l(mu_);
    streamingRequests_.push_back(request);
    if (streamingUrl_.empty()) return unavailableError("the runtime has no streaming server here");
    return streamingUrl_;
  }

  // Port-forward: sandboxes by pod labels, and the URL CRI PortForward answers.
  void addSandbox(edged::SandboxInfo sb) {
    std::lock_guard l(mu_);
    sandboxes_.push_back(std::move(sb));
  }
  void setPortForwardUrl(std::string url) {
    std::lock_guard l(mu_);
    portForwardUrl_ = std::move(url);
  }
  std::vector<std::string> portForwards() {
    std::lock_guard l(mu_);
    return portForwards_;
  }
  Result<std::vector<edged::SandboxInfo>> listPodSandboxes(
      const std::map<std::string, std::string>& labels) override {
    std::lock_guard l(mu_);
    std::vector<edged::SandboxInfo> out;
    for (const auto& sb : sandboxes_) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = sb.labels.find(k);
        match = match && it != sb.labels.end() && it->second == v;
      }
      if (match) out.push_back(sb);
    }
    return out;
  }
  Result<std::string> portForwardUrl(const std::string& sandboxId, uint16_t port) override {
    std::lock_guard l(mu_);
    portForwards_.push_back(sandboxId + ":" + std::to_string(port));
    if (portForwardUrl_.empty())
      return unavailableError("the runtime has no streaming server here");
    return portForwardUrl_;
  }

  Result<std::string> version() override { return std::string("mini"); }
  Result<std::string> runPodSandbox(const edged::PodSandboxConfig&) override { return no(); }
  Status stopPodSandbox(const std::string&) override { return no(); }
  Status removePodSandbox(const std::string&) override { return no(); }
  Result<edged::SandboxStatus> podSandboxStatus(const std::string&) override { return no(); }
  Result<std::string> createContainer(const std::string&, const edged::ContainerConfig&,
                                      const edged::PodSandboxConfig&) override {
    return no();
  }
  Status startContainer(const std::string&) override { return no(); }
  Status stopContainer(const std::string&, std::chrono::seconds) override { return no(); }
  Status removeContainer(const std::string&) override { return no(); }
  Status reopenContainerLog(const std::string&) override { return no(); }
  Result<std::vector<edged::ContainerStats>> listContainerStats(
      const std::map<std::string, std::string>&) override {
    return no();
  }
  Result<std::optional<edged::ImageInfo>> imageStatus(const std::string&) override { return no(); }
  Result<std::string> pullImage(const std::string&, const edged::AuthConfig*,
                                const edged::PodSandboxConfig*) override {
    return no();
  }
  Status removeImage(const std::string&) override { return no(); }

 private:
  static Status no() { return internalError("not implemented in MiniRuntime"); }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<edged::ContainerStatus> containers_;
  edged::ExecResult exec_;
  std::vector<std::string> lastCommand_;
  std::string streamingUrl_;
  std::vector<edged::StreamingRequest> streamingRequests_;
  std::vector<edged::SandboxInfo> sandboxes_;
  std::string portForwardUrl_;
  std::vector<std::string> portForwards_;
  bool held_ = false;
  int running_ = 0;
};

class StreamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(st_.start().isOk());
    cloudhub::CloudHubOptions ho;
    ho.host = "127.0.0.1";
    ho.port = 0;
    ho.dataDir = st_.dir.path();
    ho.maxStreamsPerNode = 4;
    hub_ = std::make_unique<cloudhub::CloudHub>(ho, *st_.registry);
    ASSERT_TRUE(hub_->start().isOk());
    handler_ = std::make_unique<apiserver::ApiHandler>(*st_.registry, st_.clock);
    podStreams_ = std::make_unique<apiserver::PodStreams>(*st_.registry, hub_->streams(),
                                                          apiserver::PodStreamsOptions{5000ms});
    podStreams_->install(*handler_);
    http::ServerOptions so;
    so.port = 0;
    server_ = std::make_unique<http::Server>(
        so, [this](http::ServerRequest& r) { return handler_->handle(r); });
    ASSERT_TRUE(server_->start().isOk());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());

    cache_ = std::make_unique<edgecore::metamanager::MetaManager>(
        edgecore::metamanager::MetaManagerOptions{edgeDir_.path()});
    ASSERT_TRUE(cache_->start().isOk());
    edged::streaming::StreamServerOptions sso;
    sso.pollInterval = 20ms;
    sso.statusInterval = 50ms;
    streams_ = std::make_unique<edged::streaming::StreamServer>(runtime_, sso);
    edgecore::edgehub::EdgeHubOptions eo;
    eo.cloud = "127.0.0.1:" + std::to_string(hub_->port());
    eo.nodeName = "edge-node-1";
    eo.interactiveStreams = true;
    eo.portForward = true;
    edge_ = std::make_unique<edgecore::edgehub::EdgeHub>(eo, *cache_, st_.clock);
    edge_->setStreamHandler(streams_.get());
    ASSERT_TRUE(edge_->start().isOk());
    // Up to 20 s: on a loaded CI machine a first attempt that fails waits out edgehub's backoff
    // (once, this took longer than the 5 s allowed before).
    const auto start = std::chrono::steady_clock::now();
    while (hub_->connectedNodes() == 0 && std::chrono::steady_clock::now() - start < 20s) {
      std::this_thread::sleep_for(25ms);
    }
    ASSERT_EQ(hub_->connectedNodes(), 1u)
        << "edge not connected after 20 s: " << edge_->statusJson().dump();

    createPod("web", "edge-node-1", {"app"});
    createPod("multi", "edge-node-1", {"a", "b"});
    createPod("unbound", "", {"app"});
    createPod("far", "edge-node-2", {"app"});
    logPath_ = edgeDir_.path() + "/web-app-1.log";
    addContainer("c1", "web", "app", 1, logPath_);
  }

  void TearDown() override {
    if (edge_) edge_->stop();
    if (streams_) streams_->stop();
    if (server_) server_->stop();
    if (hub_) hub_->stop();
    st_.stop();
  }

  void createPod(const std::string& name, const std::string& node,
                 const std::vector<std::string>& containers) {
    Json cs = Json::array();
    for (const auto& c : containers) cs.push_back({{"name", c}, {"image", "busybox"}});
    Json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec", {{"containers", cs}}}};
    if (!node.empty()) pod["spec"]["nodeName"] = node;
    auto r = st_.registry->create(*api::findByApiVersionKind("v1", "Pod"), "default", pod, {});
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }

  void addContainer(const std::string& id, const std::string& pod, const std::string& name,
                    uint32_t attempt, const std::string& logPath) {
    edged::ContainerStatus c;
    c.info.id = id;
    c.info.name = name;
    c.info.attempt = attempt;
    c.info.state = edged::ContainerState::kRunning;
    c.info.labels = {{edged::kLabelPodName, pod},
                     {edged::kLabelPodNamespace, "default"},
                     {edged::kLabelContainerName, name}};
    c.logPath = logPath;
    runtime_.add(c);
  }

  void appendLog(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::app | std::ios::binary);
    f << text;
  }

  // Port-forward to pod "web": its ready sandbox, the runtime's URL (a fake streaming server in
  // port-forward mode), and the Running phase kubectl and edgectl check.
  void preparePortForward(FakeStreamingServer& runtimeStreams) {
    runtime_.setPortForwardUrl(runtimeStreams.url());
    edged::SandboxInfo sb;
    sb.id = "sandbox-web";
    sb.state = edged::SandboxState::kReady;
    sb.labels = {{edged::kLabelPodName, "web"}, {edged::kLabelPodNamespace, "default"}};
    runtime_.addSandbox(sb);
    const api::KindInfo& pods = *api::findByApiVersionKind("v1", "Pod");
    auto pod = st_.registry->get(pods, "default", "web");
    ASSERT_TRUE(pod.isOk());
    Json running = *pod;
    running["status"] = {{"phase", "Running"}};
    ASSERT_TRUE(
        st_.registry->update(pods, "default", "web", running, registry::Subresource::kStatus)
            .isOk());
  }

  // One request through a forwarded local port; what came back until the connection closed.
  static std::string forwardedRequest(int local, const std::string& text) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(local)});
    boost::asio::write(socket, boost::asio::buffer(text));
    std::string reply;
    boost::system::error_code ec;
    std::array<char, 4096> buf;
    for (;;) {
      size_t n = socket.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      reply.append(buf.data(), n);
    }
    return reply;
  }

  http::HttpResponse get(const std::string& path) {
    http::HttpClient c(url_);
    auto r = c.request("GET", path, {}, {}, "*/*");
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : http::HttpResponse{};
  }

  StoreFixture st_;
  TempDir edgeDir_;
  std::unique_ptr<cloudhub::CloudHub> hub_;
  std::unique_ptr<apiserver::ApiHandler> handler_;
  std::unique_ptr<apiserver::PodStreams> podStreams_;
  std::unique_ptr<http::Server> server_;
  std::string url_;
  MiniRuntime runtime_;
  std::unique_ptr<edgecore::metamanager::MetaManager> cache_;
  std::unique_ptr<edged::streaming::StreamServer> streams_;
  std::unique_ptr<edgecore::edgehub::EdgeHub> edge_;
  std::string logPath_;
};

const char* kLog =
    "2026-01-02T03:04:05.000000001Z stdout F first line\n"
    "2026-01-02T03:04:06.000000002Z stderr P second \n"
    "2026-01-02T03:04:06.000000003Z stderr F half\n"
    "2026-01-02T03:04:07.000000004Z stdout F third\n";

// Issue 14: requests waiting for a node that never answers hold HTTP workers; at most
// maxWaitingOpens (4 of the 8) do, the rest get 503 at once, and the API keeps answering while
// 100 such requests are in flight.
TEST_F(StreamsTest, StuckNodesDoNotStallTheApi) {
  class Silent final : public cloudhub::SyncSink {
   public:
    bool send(cloudhub::CloudMessagePtr) override { return true; }  // swallowed: no reply, ever
    void close(const std::string&) override {}
  };
  auto silent = std::make_shared<Silent>();
  hub_->streams().attach("edge-stuck", silent, {});
  createPod("stuck", "edge-stuck", {"app"});
  std::atomic<int> unavailable{0}, timedOut{0}, other{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 100; ++i) {
    clients.emplace_back([&] {
      http::ClientOptions o;
      o.timeout = 30s;
      http::HttpClient c(url_, o);
      auto r = c.request("GET", "/api/v1/namespaces/default/pods/stuck/log", {}, {}, "*/*");
      int status = r.isOk() ? r->status : -1;
      ++(status == 503 ? unavailable : status == 504 ? timedOut : other);
    });
  }
  // Most were turned away at once, so the API has workers left.
  ASSERT_TRUE([&] {
    for (int i = 0; i < 400 && unavailable.load() < 96; ++i) std::this_thread::sleep_for(10ms);
    return unavailable.load() >= 96;
  }()) << unavailable.load()
       << " answered 503";
  auto pod = get("/api/v1/namespaces/default/pods/web");
  EXPECT_EQ(pod.status, 200);
  // ... answered while the four waiting requests still wait (their timeout is 5 s).
  EXPECT_EQ(timedOut.load(), 0);
  for (auto& t : clients) t.join();
  EXPECT_EQ(unavailable.load(), 96);
  EXPECT_EQ(timedOut.load(), 4);
  EXPECT_EQ(other.load(), 0);
  hub_->streams().detach("edge-stuck", silent.get());
}

TEST_F(StreamsTest, LogsWithOptions) {
  appendLog(logPath_, kLog);
  auto r = get("/api/v1/namespaces/default/pods/web/log");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "first line\nsecond half\nthird\n");
  r = get("/api/v1/namespaces/default/pods/web/log?tailLines=1&timestamps=true");
  EXPECT_EQ(r.body, "2026-01-02T03:04:07.000000004Z third\n");
  r = get("/api/v1/namespaces/default/pods/web/log?container=app&limitBytes=7");
  EXPECT_EQ(r.body, "first l");
}

TEST_F(StreamsTest, LogErrorsLikeKubernetes) {
  auto r = get("/api/v1/namespaces/default/pods/nope/log");
  EXPECT_EQ(r.status, 404);
  r = get("/api/v1/namespaces/default/pods/multi/log");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("a container name must be specified for pod multi, choose one of: [a b]"),
            std::string::npos)
      << r.body;
  r = get("/api/v1/namespaces/default/pods/web/log?container=zzz");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("container zzz is not valid for pod web"), std::string::npos);
  r = get("/api/v1/namespaces/default/pods/unbound/log");
  EXPECT_EQ(r.status, 400);
  r = get("/api/v1/namespaces/default/pods/far/log");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("node edge-node-2 is not connected"), std::string::npos);
  r = get("/api/v1/namespaces/default/pods/web/log?previous=true");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("previous terminated container \\\"app\\\" in pod \\\"web\\\" not found"),
            std::string::npos)
      << r.body;
  r = get("/api/v1/namespaces/default/pods/web/log?tailLines=x");
  EXPECT_EQ(r.status, 400);
}

TEST_F(StreamsTest, PreviousReadsTheEarlierAttempt) {
  std::string old = edgeDir_.path() + "/web-app-0.log";
  appendLog(old, "2026-01-02T03:04:05Z stdout F from attempt 0\n");
  addContainer("c0", "web", "app", 0, old);
  auto r = get("/api/v1/namespaces/default/pods/web/log?previous=true");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "from attempt 0\n");
}

TEST_F(StreamsTest, FollowStreamsUntilTheContainerExits) {
  appendLog(logPath_, "2026-01-02T03:04:05Z stdout F one\n");
  std::vector<std::string> lines;
  std::mutex mu;
  Status result;
  std::thread reader([&] {
    http::HttpClient c(url_);
    result = c.stream(
        "GET", "/api/v1/namespaces/default/pods/web/log?follow=true",
        [&](std::string_view line) {
          std::lock_guard l(mu);
          lines.emplace_back(line);
          return true;
        },
        "*/*");
  });
  auto count = [&] {
    std::lock_guard l(mu);
    return lines.size();
  };
  for (int i = 0; i < 200 && count() < 1; ++i) std::this_thread::sleep_for(10ms);
  appendLog(logPath_, "2026-01-02T03:04:06Z stdout F two\n");
  for (int i = 0; i < 200 && count() < 2; ++i) std::this_thread::sleep_for(10ms);
  runtime_.exit("c1");
  reader.join();
  EXPECT_TRUE(result.isOk()) << result.toString();
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two"}));
}

TEST_F(StreamsTest, LargeLogIsFlowControlled) {
  std::string big;
  std::string expected;
  for (int i = 0; i < 40000; ++i) {
    std::string msg = "line " + std::to_string(i) + " " + std::string(40, 'x');
    big += "2026-01-02T03:04:05.123456789Z stdout F " + msg + "\n";
    expected += msg + "\n";
  }
  appendLog(logPath_, big);
  auto r = get("/api/v1/namespaces/default/pods/web/log");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), expected.size());
  EXPECT_TRUE(r.body == expected);
  for (int i = 0; i < 100 && hub_->streams().openStreams() > 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(hub_->streams().openStreams(), 0u);
}

TEST_F(StreamsTest, ClientGoneCancelsTheStream) {
  appendLog(logPath_, "2026-01-02T03:04:05Z stdout F one\n");
  {
    http::HttpClient c(url_);
    auto s = c.stream(
        "GET", "/api/v1/namespaces/default/pods/web/log?follow=true",
        [](std::string_view) { return false; }, "*/*");
    EXPECT_TRUE(s.isOk());
  }
  for (int i = 0; i < 300 && streams_->activeStreams() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(streams_->activeStreams(), 0u);
  EXPECT_EQ(hub_->streams().openStreams(), 0u);
}

TEST_F(StreamsTest, NodeDisconnectEndsTheStream) {
  appendLog(logPath_, "2026-01-02T03:04:05Z stdout F one\n");
  Status result;
  std::atomic<int> got{0};
  std::thread reader([&] {
    http::HttpClient c(url_);
    result = c.stream(
        "GET", "/api/v1/namespaces/default/pods/web/log?follow=true",
        [&](std::string_view) {
          ++got;
          return true;
        },
        "*/*");
  });
  for (int i = 0; i < 200 && got == 0; ++i) std::this_thread::sleep_for(10ms);
  edge_->stop();
  reader.join();
  EXPECT_EQ(got, 1);
  EXPECT_EQ(hub_->streams().openStreams(), 0u);
}

TEST_F(StreamsTest, ExecFallbackReturnsOutputAndExitCode) {
  runtime_.setExec({"out\n", "err\n", 3});
  http::HttpClient c(url_);
  auto r = c.request("POST",
                     "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command="
                     "echo%20hi&stdout=true&stderr=true");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 200) << r->body;
  Json j = Json::parse(r->body);
  EXPECT_EQ(j["stdout"], "out\n");
  EXPECT_EQ(j["stderr"], "err\n");
  EXPECT_EQ(j["exitCode"], 3);
  EXPECT_EQ(runtime_.lastCommand(), (std::vector<std::string>{"sh", "-c", "echo hi"}));
  r = c.request("POST", "/api/v1/namespaces/default/pods/web/exec");
  EXPECT_EQ(r->status, 400);
}

// Issue 14: a command that runs long holds no API worker while edgectl's exec (no WebSocket)
// waits for it: with two workers and four such execs running, the API still answers (before,
// each exec held its worker until the command ended).
TEST_F(StreamsTest, LongExecsHoldNoApiWorker) {
  http::ServerOptions so;
  so.port = 0;
  so.workerThreads = 2;
  http::Server small(so, [this](http::ServerRequest& r) { return handler_->handle(r); });
  ASSERT_TRUE(small.start().isOk());
  const std::string url = "http://127.0.0.1:" + std::to_string(small.port());
  runtime_.setExec({"done\n", "", 0});
  runtime_.holdExecs();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {  // the fixture's maxStreamsPerNode
    clients.emplace_back([&] {
      http::ClientOptions o;
      o.timeout = 30s;
      http::HttpClient c(url, o);
      auto r = c.request("POST", "/api/v1/namespaces/default/pods/web/exec?command=sleep");
      if (r.isOk() && r->status == 200 &&
          Json::parse(r->body, nullptr, false).value("stdout", "") == "done\n") {
        ++ok;
      }
    });
  }
  const bool running = eventually([&] { return runtime_.execsRunning() == 4; });
  http::ClientOptions o;
  o.timeout = 5s;
  http::HttpClient c(url, o);
  auto pod = c.request("GET", "/api/v1/namespaces/default/pods/web");
  const int podStatus = pod.isOk() ? pod->status : -1;
  runtime_.release();
  for (auto& t : clients) t.join();
  small.stop();
  ASSERT_TRUE(running) << runtime_.execsRunning() << " execs running";
  EXPECT_EQ(podStatus, 200) << (pod.isOk() ? pod->body : pod.status().toString());
  EXPECT_EQ(ok.load(), 4);
}

// Without a WebSocket, a node lost while the command runs is answered as a v1 Status in the
// body (the 200 went out when the stream opened); edgectl prints its message.
TEST_F(StreamsTest, ExecFallbackSaysWhenTheNodeIsLostMidCommand) {
  runtime_.setExec({"late\n", "", 0});
  runtime_.holdExecs();
  std::optional<http::HttpResponse> answer;
  std::thread client([&] {
    http::ClientOptions o;
    o.timeout = 30s;
    http::HttpClient c(url_, o);
    auto r = c.request("POST", "/api/v1/namespaces/default/pods/web/exec?command=sleep");
    if (r.isOk()) answer = *r;
  });
  const bool running = eventually([&] { return runtime_.execsRunning() == 1; });
  edge_->stop();
  client.join();
  runtime_.release();
  ASSERT_TRUE(running);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->status, 200);
  Json j = Json::parse(answer->body, nullptr, false);
  EXPECT_EQ(j.value("kind", ""), "Status") << answer->body;
  EXPECT_EQ(j.value("status", ""), "Failure") << answer->body;
  EXPECT_NE(j.value("message", "").find("node edge-node-1 disconnected"), std::string::npos)
      << answer->body;
}

TEST_F(StreamsTest, KubectlExecOverWebSocket) {
  if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
  std::string kubeconfig = edgeDir_.path() + "/kubeconfig";
  {
    std::ofstream f(kubeconfig);
    f << "apiVersion: v1\nkind: Config\n";
  }
  std::vector<std::string> base = {"/usr/bin/kubectl", "--server=" + url_,
                                   "--kubeconfig=" + kubeconfig,
                                   "--cache-dir=" + edgeDir_.path() + "/kcache"};
  auto run = [&](std::vector<std::string> args) {
    auto argv = base;
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, "", 60s);
  };
  runtime_.setExec({"hello from the edge\n", "a warning\n", 0});
  auto r = run({"exec", "web", "--", "echo", "hello"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "hello from the edge\n");
  EXPECT_NE(r.err.find("a warning"), std::string::npos) << r.err;
  EXPECT_EQ(runtime_.lastCommand(), (std::vector<std::string>{"echo", "hello"}));

  runtime_.setExec({"", "boom\n", 7});
  r = run({"exec", "web", "-c", "app", "--", "false"});
  EXPECT_EQ(r.exitCode, 7) << r.err;

  r = run({"logs", "web"});
  EXPECT_EQ(r.exitCode, 0) << r.err;

  // When exec cannot run, kubectl (which retries over SPDY after a refused WebSocket upgrade)
  // shows why, never "SPDY is not supported".
  r = run({"exec", "nosuchpod", "--", "true"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.err.find("pods \"nosuchpod\" not found"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("SPDY"), std::string::npos) << r.err;
  // Failures found on the edge reach kubectl too (on the error channel: an HTTP error would make
  // it retry over SPDY): the runtime refuses the interactive exec (no streaming server), the
  // container is not running, the node is not connected.
  r = run({"exec", "-i", "web", "--", "cat"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.err.find("the runtime has no streaming server here"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("SPDY"), std::string::npos) << r.err;
  runtime_.exit("c1");
  r = run({"exec", "web", "--", "true"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.err.find("container \"app\" in pod \"web\" is not running"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("SPDY"), std::string::npos) << r.err;
  r = run({"exec", "far", "--", "true"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.err.find("node edge-node-2 is not connected"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("SPDY"), std::string::npos) << r.err;
}

// A v5.channel.k8s.io client, as kubectl is: channel-prefixed binary messages both ways.
class ChannelClient {
 public:
  ChannelClient(const std::string& port, const std::string& target) : ws_(io_) {
    namespace websocket = boost::beast::websocket;
    boost::asio::ip::tcp::resolver resolver(io_);
    boost::asio::connect(ws_.next_layer(), resolver.resolve("127.0.0.1", port));
    ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(boost::beast::http::field::sec_websocket_protocol, "v5.channel.k8s.io");
    }));
    ws_.handshake("127.0.0.1", target);
    ws_.binary(true);
  }
  void send(char channel, const std::string& payload) {
    ws_.write(boost::asio::buffer(std::string(1, channel) + payload));
  }
  // Reads until stdout holds `text` or the final status came; false when the socket ended first.
  bool readUntil(const std::string& text) {
    while (stdout_.find(text) == std::string::npos) {
      if (!readOne()) return false;
    }
    return true;
  }
  // Reads to the end of the session; the final Status (channel 3).
  Json finish() {
    while (readOne()) {
    }
    return Json::parse(status_, nullptr, false);
  }
  const std::string& out() const { return stdout_; }

 private:
  bool readOne() {
    boost::beast::flat_buffer buf;
    boost::system::error_code ec;
    ws_.read(buf, ec);
    if (ec) return false;
    std::string m = boost::beast::buffers_to_string(buf.data());
    if (m.empty()) return true;
    if (m[0] == 1) stdout_ += m.substr(1);
    if (m[0] == 3) status_ = m.substr(1);
    return true;
  }
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  std::string stdout_, status_;
};

// Interactive exec end to end through the tunnel to a streaming server that plays the runtime's:
// terminal size, stdin and the exit code travel, and the edge asked the runtime for a tty exec.
TEST_F(StreamsTest, InteractiveExecCarriesStdinResizeAndExitCode) {
  FakeStreamingServer runtimeStreams;
  runtime_.setStreamingUrl(runtimeStreams.url());
  ChannelClient c(std::to_string(server_->port()),
                  "/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true"
                  "&tty=true");
  c.send(4, R"({"Width":80,"Height":24})");
  ASSERT_TRUE(c.readUntil("size 80x24\n")) << c.out();
  c.send(0, "hello\r");
  ASSERT_TRUE(c.readUntil("echo:hello\n")) << c.out();
  c.send(4, R"({"Width":120,"Height":40})");
  ASSERT_TRUE(c.readUntil("size 120x40\n")) << c.out();
  c.send(0, "exit 3\r");
  Json status = c.finish();
  EXPECT_EQ(status.value("reason", ""), "NonZeroExitCode") << status.dump();
  EXPECT_EQ(status["details"]["causes"][0].value("message", ""), "3") << status.dump();
  EXPECT_EQ(runtimeStreams.stdinSeen(), "hello\rexit 3\r");
  auto requests = runtime_.streamingRequests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].containerId, "c1");
  EXPECT_EQ(requests[0].command, std::vector<std::string>{"sh"});
  EXPECT_TRUE(requests[0].tty);
  EXPECT_TRUE(requests[0].stdin);
  EXPECT_FALSE(requests[0].stderr);  // a terminal merges stderr into stdout
  EXPECT_FALSE(requests[0].attach);
  EXPECT_TRUE(eventually([&] { return streams_->activeStreams() == 0; }));
}

// Stdin far beyond the in-flight bounds (64 KiB, 32 inputs per stream) arrives whole and in
// order: the API stops reading the client while the edge has not written what it sent, and
// reads on once it has.
TEST_F(StreamsTest, LargeStdinIsFlowControlledEndToEnd) {
  FakeStreamingServer runtimeStreams;
  runtime_.setStreamingUrl(runtimeStreams.url());
  ChannelClient c(std::to_string(server_->port()),
                  "/api/v1/namespaces/default/pods/web/exec?command=cat&stdin=true&stdout=true");
  std::string sent;
  for (int i = 0; i < 2000; ++i) {  // small messages: the input count bound matters too
    std::string chunk(i % 50 == 0 ? 30000 : 100, static_cast<char>('a' + i % 26));
    c.send(0, chunk);
    sent += chunk;
  }
  c.send(0, "\rexit 0\r");
  sent += "\rexit 0\r";
  Json status = c.finish();
  EXPECT_EQ(status.value("status", ""), "Success") << status.dump();
  std::string seen = runtimeStreams.stdinSeen();
  EXPECT_EQ(seen.size(), sent.size());
  EXPECT_TRUE(seen == sent) << "stdin arrived reordered or changed";
}

// Attach reaches the container's main process the same way; the client hanging up ends the
// stream on the edge and the runtime's session.
TEST_F(StreamsTest, AttachAndHangUp) {
  FakeStreamingServer runtimeStreams;
  runtime_.setStreamingUrl(runtimeStreams.url());
  {
    ChannelClient c(std::to_string(server_->port()),
                    "/api/v1/namespaces/default/pods/web/attach?container=app&stdin=true"
                    "&stdout=true&stderr=true");
    c.send(0, "ping\n");
    ASSERT_TRUE(c.readUntil("echo:ping\n")) << c.out();
    ASSERT_TRUE(eventually([&] { return streams_->activeStreams() == 1; }));
    EXPECT_EQ(runtimeStreams.sessionsEnded(), 0);
  }
  EXPECT_TRUE(eventually([&] { return streams_->activeStreams() == 0; }));
  EXPECT_TRUE(eventually([&] { return runtimeStreams.sessionsEnded() == 1; }));
  auto requests = runtime_.streamingRequests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].attach);
  EXPECT_TRUE(requests[0].stdin);
  EXPECT_TRUE(requests[0].stderr);
  EXPECT_FALSE(requests[0].tty);
  // Without an upgrade an interactive request says what it needs.
  auto r = get("/api/v1/namespaces/default/pods/web/attach?stdin=true&stdout=true");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("needs a WebSocket client"), std::string::npos) << r.body;
}

// A node whose edgecore predates interactive streams gets no StreamInput: such requests are
// refused with the reason, non-interactive exec still goes through.
TEST_F(StreamsTest, InteractiveRefusedForOlderEdgecore) {
  class Recorder final : public cloudhub::SyncSink {
   public:
    bool send(cloudhub::CloudMessagePtr m) override {
      std::lock_guard l(mu);
      sent.push_back(m);
      return true;
    }
    void close(const std::string&) override {}
    std::mutex mu;
    std::vector<cloudhub::CloudMessagePtr> sent;
  };
  auto old = std::make_shared<Recorder>();
  hub_->streams().attach("edge-node-2", old, {});
  apiserver::StreamRequest sr;
  sr.kind = apiserver::StreamRequest::Kind::kExec;
  sr.ns = "default";
  sr.pod = "far";
  sr.container = "app";
  sr.command = {"sh"};
  sr.stdin = true;
  class Ignore final : public apiserver::StreamObserver {
    void onData(apiserver::StreamChannel, std::string) override {}
    void onClose(Status, int32_t) override {}
    void onInputAck(uint64_t, uint32_t) override {}
  };
  auto refused = hub_->streams().open("edge-node-2", sr, std::make_shared<Ignore>());
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), Code::kBadRequest);
  EXPECT_NE(refused.status().message().find("without interactive exec"), std::string::npos);
  sr.stdin = false;
  auto plain = hub_->streams().open("edge-node-2", sr, std::make_shared<Ignore>());
  ASSERT_TRUE(plain.isOk()) << plain.status().toString();
  (*plain)->cancel();
  std::lock_guard l(old->mu);
  ASSERT_FALSE(old->sent.empty());
  EXPECT_FALSE(old->sent.front()->stream_open().stdin());
  hub_->streams().detach("edge-node-2", old.get());
}

// The real kubectl at a terminal: exec -it sends the terminal's size and every resize, carries
// keystrokes, and exits with the remote command's code; exec -i without a terminal pipes stdin.
TEST_F(StreamsTest, KubectlExecInteractiveOnATerminal) {
  if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
  FakeStreamingServer runtimeStreams;
  runtime_.setStreamingUrl(runtimeStreams.url());
  std::string kubeconfig = edgeDir_.path() + "/kubeconfig";
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\n";
  std::vector<std::string> base = {"/usr/bin/kubectl", "--server=" + url_,
                                   "--kubeconfig=" + kubeconfig,
                                   "--cache-dir=" + edgeDir_.path() + "/kcache"};
  auto argv = base;
  for (const char* a : {"exec", "-it", "web", "--", "sh"}) argv.push_back(a);
  TerminalProcess term(argv, 33, 101, {"HOME=" + edgeDir_.path()});
  ASSERT_TRUE(term.started());
  ASSERT_TRUE(term.waitFor("size 101x33", 30s)) << term.output();
  term.type("hello\r");
  ASSERT_TRUE(term.waitFor("echo:hello", 10s)) << term.output();
  term.resize(40, 120);
  ASSERT_TRUE(term.waitFor("size 120x40", 10s)) << term.output();
  term.type("exit 5\r");
  EXPECT_EQ(term.wait(30s), 5) << term.output();

  argv = base;
  for (const char* a : {"exec", "-i", "web", "--", "cat"}) argv.push_back(a);
  auto r = runCommand(argv, "one\nexit 0\n", 60s, {"HOME=" + edgeDir_.path()});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "echo:one\n");
  // stdin without a terminal goes over SPDY to the runtime, so its end reaches the command:
  // input without "exit" ends the session as the end of a file ends cat.
  EXPECT_EQ(runtimeStreams.spdySessions(), 1);
  r = runCommand(argv, "two\n", 60s, {"HOME=" + edgeDir_.path()});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "echo:two\n");
  EXPECT_EQ(runtimeStreams.stdinEnds(), 1);
  EXPECT_EQ(runtimeStreams.spdySessions(), 2);
}

// A runtime that speaks WebSocket only refuses the SPDY upgrade: the edge asks for a new URL
// (a token serves one session) and carries the session over WebSocket, where stdin cannot end
// alone ("exit 0" ends it here).
TEST_F(StreamsTest, ExecFallsBackToWebSocketForARuntimeWithoutSpdy) {
  FakeStreamingServer runtimeStreams(/*portForward=*/false, /*spdy=*/false);
  runtime_.setStreamingUrl(runtimeStreams.url());
  ChannelClient c(std::to_string(server_->port()),
                  "/api/v1/namespaces/default/pods/web/exec?container=app&command=sh&stdin=true"
                  "&stdout=true&stderr=true");
  c.send(0, "one\n");
  ASSERT_TRUE(c.readUntil("echo:one\n")) << c.out();
  c.send(0, "exit 0\n");
  EXPECT_EQ(c.finish().value("status", ""), "Success");
  EXPECT_EQ(runtimeStreams.spdySessions(), 0);
  EXPECT_EQ(runtime_.streamingRequests().size(), 2u);  // the refused one, then a fresh URL
  EXPECT_EQ(runtimeStreams.stdinSeen(), "one\nexit 0\n");
}

// kubectl port-forward end to end: kubectl's SPDY streams inside a WebSocket, the tunnel, the
// edge asking the runtime for the pod's sandbox's port-forward URL and speaking its channel
// protocol. Two connections through one kubectl: an HTTP request answered by the pod, and one
// the runtime cannot connect (its reason reaches kubectl's output).
TEST_F(StreamsTest, KubectlPortForward) {
  if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
  FakeStreamingServer runtimeStreams(/*portForward=*/true);
  preparePortForward(runtimeStreams);
  if (HasFatalFailure()) return;

  std::string kubeconfig = edgeDir_.path() + "/kubeconfig";
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\n";
  Process kubectl(
      {"/usr/bin/kubectl", "--server=" + url_, "--kubeconfig=" + kubeconfig,
       "--cache-dir=" + edgeDir_.path() + "/kcache", "port-forward", "pod/web", ":8080"},
      edgeDir_.path() + "/port-forward.log");
  ASSERT_TRUE(kubectl.start());
  // "Forwarding from 127.0.0.1:PORT -> 8080"
  const int local = forwardedPort(kubectl);
  ASSERT_GT(local, 0) << kubectl.log();
  auto request = [&](const std::string& text) { return forwardedRequest(local, text); };
  std::string reply = request("GET /hello HTTP/1.0\r\nHost: pod\r\n\r\n");
  EXPECT_EQ(reply, "HTTP/1.0 200 OK\r\nContent-Length: 29\r\n\r\nforwarded:GET /hello HTTP/1.0")
      << kubectl.log();
  EXPECT_EQ(runtime_.portForwards(), (std::vector<std::string>{"sandbox-web:8080"}));
  ASSERT_TRUE(eventually([&] { return streams_->activeStreams() == 0; }, 10s));

  // The runtime cannot connect: kubectl says why. (kubectl may then end the whole session.)
  reply = request("GET /refuse HTTP/1.0\r\n\r\n");
  EXPECT_EQ(reply, "");
  EXPECT_TRUE(eventually(
      [&] { return kubectl.log().find("connection refused") != std::string::npos; }, 10s))
      << kubectl.log();
  // Said once, with the pod's name (the runtime's own prefix, naming its sandbox, is dropped).
  EXPECT_NE(
      kubectl.log().find("error forwarding port 8080 to pod default/web: failed to dial 8080: "
                         "dial tcp4 127.0.0.1:8080: connect: connection refused"),
      std::string::npos)
      << kubectl.log();
  EXPECT_EQ(kubectl.log().find("uid"), std::string::npos) << kubectl.log();
  ASSERT_TRUE(eventually([&] { return streams_->activeStreams() == 0; }, 10s));
  kubectl.stop(SIGTERM);
}

// The Python client's port-forward (python3-kubernetes: WebSocket v4.channel.k8s.io, ports as a
// query parameter) through the same path.
TEST_F(StreamsTest, PythonClientPortForward) {
  auto probe = runCommand({"/usr/bin/python3", "-c", "import kubernetes.stream"});
  if (probe.exitCode != 0) {
    if (std::getenv("CI") != nullptr) FAIL() << "python3-kubernetes missing: " << probe.err;
    GTEST_SKIP() << "python3-kubernetes is not installed";
  }
  FakeStreamingServer runtimeStreams(/*portForward=*/true);
  preparePortForward(runtimeStreams);
  if (HasFatalFailure()) return;
  const char* script = R"(
import sys
from kubernetes import client
from kubernetes.stream import portforward
c = client.Configuration()
c.host = sys.argv[1]
api = client.CoreV1Api(client.ApiClient(c))
pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
s = pf.socket(8080)
s.setblocking(True)
s.sendall(b"GET /from-python HTTP/1.0\r\n\r\n")
data = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
print(data.decode())
)";
  auto r = runCommand({"/usr/bin/python3", "-c", script, url_}, "", 60s);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("forwarded:GET /from-python HTTP/1.0"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(runtime_.portForwards(), (std::vector<std::string>{"sandbox-web:8080"}));
}

// edgectl port-forward: the same path, a WebSocket (v4.channel.k8s.io) per local connection.
TEST_F(StreamsTest, EdgectlPortForward) {
  const char* buildDir = std::getenv("EP_BUILD_DIR");
  std::string edgectl = std::string(buildDir ? buildDir : ".") + "/edgectl/edgectl";
  if (access(edgectl.c_str(), X_OK) != 0) GTEST_SKIP() << "edgectl is not built";
  FakeStreamingServer runtimeStreams(/*portForward=*/true);
  preparePortForward(runtimeStreams);
  if (HasFatalFailure()) return;
  Process forward({edgectl, "--server=" + url_, "port-forward", "pod/web", ":8080"},
                  edgeDir_.path() + "/edgectl-port-forward.log");
  ASSERT_TRUE(forward.start());
  const int local = forwardedPort(forward);
  ASSERT_GT(local, 0) << forward.log();
  for (const char* path : {"/one", "/two"}) {
    EXPECT_EQ(forwardedRequest(local, std::string("GET ") + path + " HTTP/1.0\r\n\r\n"),
              std::string("HTTP/1.0 200 OK\r\nContent-Length: ") +
                  std::to_string(std::strlen("forwarded:GET  HTTP/1.0") + std::strlen(path)) +
                  "\r\n\r\nforwarded:GET " + path + " HTTP/1.0")
        << forward.log();
  }
  EXPECT_EQ(forwardedRequest(local, "GET /refuse HTTP/1.0\r\n\r\n"), "");
  EXPECT_TRUE(eventually(
      [&] {
        return forward.log().find("an error occurred forwarding " + std::to_string(local) +
                                  " -> 8080: error forwarding port 8080 to pod default/web: "
                                  "failed to dial 8080") != std::string::npos;
      },
      10s))
      << forward.log();
  EXPECT_TRUE(forward.running());  // one connection's failure does not end the command
  EXPECT_EQ(runtime_.portForwards().size(), 3u);

  // Resolution errors as kubectl words them.
  auto r = runCommand({edgectl, "--server=" + url_, "port-forward", "pod/nosuch", "80"}, "", 30s);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("pods \"nosuch\" not found"), std::string::npos) << r.err;
  r = runCommand({edgectl, "--server=" + url_, "port-forward", "pod/multi", "80"}, "", 30s);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("pod is not running"), std::string::npos) << r.err;
  forward.stop(SIGTERM);
}

TEST_F(StreamsTest, EdgectlLogsAndExec) {
  const char* buildDir = std::getenv("EP_BUILD_DIR");
  std::string edgectl = std::string(buildDir ? buildDir : ".") + "/edgectl/edgectl";
  if (access(edgectl.c_str(), X_OK) != 0) GTEST_SKIP() << "edgectl is not built";
  appendLog(logPath_, kLog);
  std::vector<std::string> base = {edgectl, "--server=" + url_};
  auto run = [&](std::vector<std::string> args) {
    auto argv = base;
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, "", 60s, {"HOME=" + edgeDir_.path()});
  };
  auto r = run({"logs", "web", "--tail", "1"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "third\n");
  r = run({"logs", "multi"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("a container name must be specified"), std::string::npos) << r.err;
  runtime_.setExec({"out\n", "err\n", 4});
  r = run({"exec", "web", "-c", "app", "--", "sh", "-c", "exit 4"});
  EXPECT_EQ(r.exitCode, 4) << r.err;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_NE(r.err.find("err\n"), std::string::npos);
  EXPECT_EQ(runtime_.lastCommand(), (std::vector<std::string>{"sh", "-c", "exit 4"}));
}

}  // namespace
}  // namespace ep::testing
