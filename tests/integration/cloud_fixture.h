#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/http/client.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace ep::testing {

// Starts a real cloudcore process on a free loopback port with its own data dir.
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
    std::vector<std::string> argv = {buildPath("cloudcore/cloudcore"), "--data-dir", dataDir_,
                                     "--api-listen", "127.0.0.1:" + std::to_string(port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    cloud_ = std::make_unique<Process>(argv, dir_.path() + "/cloudcore.log");
    ASSERT_TRUE(cloud_->start());
    ASSERT_TRUE(waitReady(port_)) << cloud_->log();
  }

  std::string server() const { return "http://127.0.0.1:" + std::to_string(port_); }

  CommandResult edgectl(std::vector<std::string> args, const std::string& stdinText = "") {
    std::vector<std::string> argv = {buildPath("edgectl/edgectl"), "--server", server()};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, stdinText);
  }

  std::string writeFile(const std::string& name, const std::string& content) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

  http::HttpClient client() { return http::HttpClient(server()); }

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
  std::unique_ptr<Process> cloud_;
};

}  // namespace ep::testing
