#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/http/client.h"
#include "common/kubeconfig/kubeconfig.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace ep::testing {

// Starts a real cloudcore process on a free loopback port with its own data dir. Everything
// talks to it over HTTPS with the cluster-admin credentials it writes to
// DATA_DIR/admin.kubeconfig.
class CloudFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dataDir_ = dir_.path() + "/data";
    startCloud();
  }
  void TearDown() override {
    if (cloud_ && ::testing::Test::HasFailure()) {
      std::cerr << "---- cloudcore log (tail) ----\n" << tail(cloud_->log(), 4000) << "\n";
    }
    cloud_.reset();
  }

  static std::string tail(const std::string& s, size_t n) {
    return s.size() > n ? s.substr(s.size() - n) : s;
  }

  void startCloud(std::vector<std::string> extra = {}) {
    if (port_ == 0) port_ = freePort();
    // Its own tunnel port too: the tunnel binds exclusively, and tests run in parallel.
    if (tunnelPort_ == 0) tunnelPort_ = freePort();
    std::vector<std::string> argv = {buildPath("cloudcore/cloudcore"), "--data-dir", dataDir_,
                                     "--api-listen", "127.0.0.1:" + std::to_string(port_)};
    if (std::find(extra.begin(), extra.end(), "--tunnel-listen") == extra.end()) {
      argv.insert(argv.end(), {"--tunnel-listen", "127.0.0.1:" + std::to_string(tunnelPort_)});
    }
    // And its own router port (the default, 9443, is one per machine).
    if (routerPort_ == 0) routerPort_ = freePort();
    if (std::find(extra.begin(), extra.end(), "--router-listen") == extra.end()) {
      argv.insert(argv.end(), {"--router-listen", "127.0.0.1:" + std::to_string(routerPort_)});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    cloud_ = std::make_unique<Process>(argv, dir_.path() + "/cloudcore.log");
    ASSERT_TRUE(cloud_->start());
    ASSERT_TRUE(waitReady(port_, std::chrono::seconds(20), /*https=*/true)) << cloud_->log();
    // A ready port while this cloudcore has exited would be some other process's.
    ASSERT_TRUE(cloud_->running()) << cloud_->log();
  }

  std::string server() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::string kubeconfig() const { return dataDir_ + "/admin.kubeconfig"; }

  // edgectl with the admin kubeconfig.
  CommandResult edgectl(std::vector<std::string> args, const std::string& stdinText = "") {
    std::vector<std::string> argv = {buildPath("edgectl/edgectl"), "--kubeconfig", kubeconfig()};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, stdinText);
  }

  std::string writeFile(const std::string& name, const std::string& content) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

  // Client options carrying the admin credentials (client certificate and CA).
  http::ClientOptions adminOptions() {
    http::ClientOptions o;
    auto creds = kubeconfig::load(kubeconfig());
    EXPECT_TRUE(creds.isOk()) << creds.status().toString();
    if (!creds) return o;
    o.caPem = creds->caPem;
    o.clientCertPem = creds->clientCertPem;
    o.clientKeyPem = creds->clientKeyPem;
    return o;
  }
  http::HttpClient client() { return http::HttpClient(server(), adminOptions()); }

  nlohmann::json getJson(const std::string& path, int expectStatus = 200) {
    auto c = client();
    auto r = c.request("GET", path);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    if (!r.isOk()) return {};
    EXPECT_EQ(r->status, expectStatus) << path << ": " << r->body;
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  TempDir dir_;
  std::string dataDir_;
  int port_ = 0;
  int tunnelPort_ = 0;
  int routerPort_ = 0;
  std::unique_ptr<Process> cloud_;
};

}  // namespace ep::testing
