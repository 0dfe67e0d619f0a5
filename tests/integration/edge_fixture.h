#pragma once

#include <signal.h>

#include <algorithm>
#include <map>
#include <thread>

#include "tests/integration/cloud_fixture.h"
#include "tests/testing/eventually.h"

namespace ep::testing {

// cloudcore with its tunnel listener plus any number of real edgecore processes. Each edgecore
// joins with a token from `edgectl token create` on its first start (mTLS from then on).
class EdgeFixture : public CloudFixture {
 protected:
  void SetUp() override {
    tunnelPort_ = freePort();
    dataDir_ = dir_.path() + "/data";
    startCloud(cloudArgs());
  }
  void TearDown() override {
    if (::testing::Test::HasFailure()) {
      for (auto& [name, edge] : edges_) {
        std::cerr << "---- " << name << " log (tail) ----\n"
                  << tail(edge.proc->log(), 3000) << "\n";
      }
    }
    edges_.clear();
    CloudFixture::TearDown();
  }

  std::vector<std::string> cloudArgs(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--tunnel-listen", "127.0.0.1:" + std::to_string(tunnelPort_)};
    args.insert(args.end(), extraCloudArgs_.begin(), extraCloudArgs_.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  void restartCloud(std::vector<std::string> extra = {}) {
    cloud_.reset();
    startCloud(cloudArgs(std::move(extra)));
  }

  // Arguments every start of cloudcore gets (set before SetUp).
  std::vector<std::string> extraCloudArgs_;
  // CRI endpoint handed to every edgecore; "" (the default) runs edgecores without pods.
  std::string runtimeEndpoint_;
  // How edgecore is run: the binary and anything before it (an emulator for another
  // architecture's build, arm_edge_test). Empty: this build's edgecore.
  std::vector<std::string> edgecoreCommand_;
  // How long an edgecore may take to serve its local API after starting.
  std::chrono::milliseconds edgeStartTimeout_ = std::chrono::seconds(20);

  struct Edge {
    int localPort = 0;
    std::unique_ptr<Process> proc;
  };

  // A join token (unlimited uses), created once per test.
  std::string joinToken() {
    if (joinToken_.empty()) {
      auto r = edgectl({"token", "create", "--description", "test nodes"});
      EXPECT_EQ(r.exitCode, 0) << r.err;
      joinToken_ = r.out.substr(0, r.out.find('\n'));
    }
    return joinToken_;
  }

  // Joins with joinToken() unless `extra` has a --token of its own.
  void startEdge(const std::string& name, std::vector<std::string> extra = {}) {
    const bool ownToken = std::find(extra.begin(), extra.end(), "--token") != extra.end();
    const std::string token = ownToken ? "" : joinToken();
    auto& e = edges_[name];
    // A fresh port at every start: the previous one may have been taken meanwhile (another
    // test's listener, or an outgoing connection's ephemeral port).
    e.localPort = freePort();
    std::vector<std::string> argv = edgecoreCommand_;
    if (argv.empty()) argv.push_back(buildPath("edgecore/edgecore"));
    argv.insert(argv.end(), {"--node-name", name, "--data-dir", dir_.path() + "/" + name,
                             "--local-api-listen", "127.0.0.1:" + std::to_string(e.localPort),
                             "--heartbeat-interval", "1s", "--runtime-endpoint", runtimeEndpoint_});
    if (!ownToken) argv.insert(argv.end(), {"--token", token});
    // This fixture's cloudcore unless `extra` names the cloud (several replicas).
    if (std::find(extra.begin(), extra.end(), "--cloud") == extra.end()) {
      argv.insert(argv.end(), {"--cloud", "127.0.0.1:" + std::to_string(tunnelPort_)});
    }
    // No MQTT unless a test brings its own broker (a broker on the default port is not ours).
    if (std::find(extra.begin(), extra.end(), "--mqtt-server") == extra.end()) {
      argv.insert(argv.end(), {"--mqtt-server", ""});
    }
    // No DMI socket either unless asked (the default path is shared by every edgecore).
    if (std::find(extra.begin(), extra.end(), "--dmi-socket") == extra.end()) {
      argv.insert(argv.end(), {"--dmi-socket", ""});
    }
    // No service proxy unless asked: its nat chains are the host's, and edgecores of tests
    // running side by side would each rewrite them with their own Services.
    if (std::find(extra.begin(), extra.end(), "--service-proxy") == extra.end()) {
      argv.insert(argv.end(), {"--service-proxy", "off"});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    e.proc = std::make_unique<Process>(argv, dir_.path() + "/" + name + ".log");
    ASSERT_TRUE(e.proc->start());
    ASSERT_TRUE(waitReady(e.localPort, edgeStartTimeout_)) << e.proc->log();
  }

  http::HttpClient edgeClient(const std::string& name) {
    return http::HttpClient("http://127.0.0.1:" + std::to_string(edges_[name].localPort));
  }

  // Status code of GET path on the edge's local API.
  int edgeStatus(const std::string& name, const std::string& path) {
    auto c = edgeClient(name);
    auto r = c.request("GET", path);
    return r.isOk() ? r->status : -1;
  }

  nlohmann::json edgeGet(const std::string& name, const std::string& path) {
    auto c = edgeClient(name);
    auto r = c.request("GET", path);
    if (!r.isOk() || r->status != 200) return {};
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  std::string nodeReady(const std::string& name) {
    auto c = client();
    auto r = c.request("GET", "/api/v1/nodes/" + name);
    if (!r.isOk() || r->status != 200) return "";
    auto node = nlohmann::json::parse(r->body, nullptr, false);
    // A node that joined has no status until its first report.
    if (!node.is_object() || !node["status"].is_object()) return "";
    for (const auto& cond : node["status"].value("conditions", nlohmann::json::array())) {
      if (cond.value("type", "") == "Ready") return cond.value("status", "");
    }
    return "";
  }

  // Conditions here often run a process (edgectl): a longer wait and a slower poll than unit
  // tests'.
  template <typename Pred>
  static bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return ep::testing::eventually(pred, timeout, std::chrono::milliseconds(50));
  }

  int post(const std::string& path, const std::string& body) {
    auto c = client();
    auto r = c.request("POST", path, body, "application/json");
    return r.isOk() ? r->status : -1;
  }
  int patch(const std::string& path, const std::string& body) {
    auto c = client();
    auto r = c.request("PATCH", path, body, "application/merge-patch+json");
    return r.isOk() ? r->status : -1;
  }
  int del(const std::string& path) {
    auto c = client();
    auto r = c.request("DELETE", path);
    return r.isOk() ? r->status : -1;
  }

  // Sum of a Prometheus counter for one node from cloudcore's /metrics.
  double metric(const std::string& name, const std::string& node) {
    auto c = client();
    auto r = c.request("GET", "/metrics", "", "", "text/plain");
    if (!r.isOk()) return -1;
    std::string needle = name + "{node=\"" + node + "\"}";
    auto pos = r->body.find(needle);
    if (pos == std::string::npos) return 0;
    return std::stod(r->body.substr(pos + needle.size() + 1));
  }

  std::string joinToken_;
  std::map<std::string, Edge> edges_;
};

}  // namespace ep::testing
