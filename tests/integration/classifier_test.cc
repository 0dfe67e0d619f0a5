// The example edge AI app (examples/digits-classifier) against models trained by its own script:
// it classifies digits, reports the loaded version and its held-out accuracy, and switches
// versions in place — through the same atomic ..data layout edged gives model volumes — while
// clients keep sending requests, none of which fails. Skips when the app was not built or
// PyTorch is missing (scripts/install-deps.sh installs both).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/http/client.h"
#include "tests/testing/eventually.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string readFile(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ClassifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(buildPath("examples/digits-classifier"))) {
      skip_ = "examples/digits-classifier was not built (OpenCV DNN or stb missing)";
      return;
    }
    if (runCommand({"/usr/bin/python3", "-c", "import torch, torchvision, sklearn"}).exitCode !=
        0) {
      skip_ = "python3-torch, python3-torchvision or python3-sklearn missing";
      return;
    }
    models_ = new TempDir();
    // Short training keeps the test quick; the accuracies are whatever it reaches.
    auto r = runCommand(
        {"/usr/bin/python3", std::string(EP_SOURCE_DIR) + "/examples/digits-classifier/train.py",
         "--out", models_->path(), "--epochs-v1", "1", "--epochs-v2", "2"},
        "", std::chrono::minutes(5));
    trainLog_ = r.out + r.err;
  }
  static void TearDownTestSuite() {
    delete models_;
    models_ = nullptr;
  }
  void SetUp() override {
    if (skip_) GTEST_SKIP() << *skip_;
    ASSERT_TRUE(fs::exists(models_->path() + "/v2.onnx")) << trainLog_;
  }

  // A model volume as edged lays it out: ..<version>/{FILE, model.json}, ..data -> current.
  void installVersion(const std::string& version) {
    const std::string dir = volume_.path() + "/.." + version;
    fs::create_directories(dir);
    fs::copy_file(models_->path() + "/" + version + ".onnx", dir + "/digits.onnx",
                  fs::copy_options::overwrite_existing);
    std::ofstream(dir + "/model.json") << Json{
        {"name", "digits"},
        {"version", version},
        {"sha256", "sha-" + version},
        {"format", "onnx"},
        {"file", "digits.onnx"}}.dump();
    fs::remove(volume_.path() + "/..data_tmp");
    fs::create_directory_symlink(".." + version, volume_.path() + "/..data_tmp");
    fs::rename(volume_.path() + "/..data_tmp", volume_.path() + "/..data");
    for (const char* name : {"digits.onnx", "model.json"}) {
      if (!fs::is_symlink(fs::symlink_status(volume_.path() + "/" + name))) {
        fs::create_symlink(std::string("..data/") + name, volume_.path() + "/" + name);
      }
    }
  }
  void startApp() {
    port_ = freePort();
    app_ = std::make_unique<Process>(
        std::vector<std::string>{buildPath("examples/digits-classifier"), "--model-dir",
                                 volume_.path(), "--heldout", models_->path() + "/heldout.csv",
                                 "--listen", "127.0.0.1:" + std::to_string(port_)},
        volume_.path() + "/../classifier.log");
    ASSERT_TRUE(app_->start());
    ASSERT_TRUE(waitReady(port_, 30s)) << app_->log();
  }
  Json get(const std::string& path) {
    http::HttpClient c("http://127.0.0.1:" + std::to_string(port_));
    auto r = c.request("GET", path);
    if (!r.isOk() || r->status != 200) return Json();
    return Json::parse(r->body, nullptr, false);
  }

  static inline std::optional<std::string> skip_;
  static inline TempDir* models_ = nullptr;
  static inline std::string trainLog_;
  TempDir volume_;
  int port_ = 0;
  std::unique_ptr<Process> app_;
};

TEST_F(ClassifierTest, ClassifiesReportsItsModelAndSwitchesVersionsWithoutFailingARequest) {
  installVersion("v1");
  startApp();
  Json accuracy = Json::parse(readFile(models_->path() + "/accuracy.json"));
  Json m = get("/v1/model");
  EXPECT_EQ(m["version"], "v1") << m.dump();
  EXPECT_EQ(m["sha256"], "sha-v1");
  EXPECT_EQ(m["heldoutSamples"], 360);
  EXPECT_NEAR(m.value("heldoutAccuracy", -1.0), accuracy["v1"]["heldoutAccuracy"].get<double>(),
              0.003)
      << m.dump() << " " << accuracy.dump();

  // A sample digit and bad input.
  http::HttpClient c("http://127.0.0.1:" + std::to_string(port_));
  auto r = c.request("POST", "/v1/classify?k=3", readFile(models_->path() + "/samples/digit-7.png"),
                     "image/png");
  ASSERT_TRUE(r.isOk());
  ASSERT_EQ(r->status, 200) << r->body;
  Json answer = Json::parse(r->body);
  ASSERT_EQ(answer["predictions"].size(), 3u) << r->body;
  EXPECT_EQ(answer["model"]["version"], "v1");
  EXPECT_GE(answer["predictions"][0]["score"].get<double>(),
            answer["predictions"][1]["score"].get<double>());
  auto bad = c.request("POST", "/v1/classify", "not an image", "image/png");
  ASSERT_TRUE(bad.isOk());
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_NE(bad->body.find("not a PNG or JPEG"), std::string::npos) << bad->body;

  // Clients hammer the app while the volume flips between versions.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::set<std::string> seen;
  std::mutex seenMu;
  std::vector<std::thread> clients;
  const std::string image = readFile(models_->path() + "/samples/digit-3.png");
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      http::HttpClient cl("http://127.0.0.1:" + std::to_string(port_));
      while (!stop) {
        auto rr = cl.request("POST", "/v1/classify", image, "image/png");
        if (rr.isOk() && rr->status == 200) {
          ++ok;
          std::lock_guard l(seenMu);
          seen.insert(Json::parse(rr->body)["model"].value("version", ""));
        } else {
          ++failed;
        }
      }
    });
  }
  for (const char* v : {"v2", "v1", "v2"}) {
    installVersion(v);
    EXPECT_TRUE(eventually([&] { return get("/v1/model").value("version", "") == v; }, 30s))
        << app_->log();
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 10);
  EXPECT_EQ(seen, (std::set<std::string>{"v1", "v2"}));
  m = get("/v1/model");
  EXPECT_NEAR(m.value("heldoutAccuracy", -1.0), accuracy["v2"]["heldoutAccuracy"].get<double>(),
              0.003);

  // A broken new version is refused; the previous one keeps serving.
  fs::create_directories(volume_.path() + "/..broken");
  std::ofstream(volume_.path() + "/..broken/digits.onnx") << "not onnx";
  std::ofstream(volume_.path() + "/..broken/model.json")
      << R"({"name":"digits","version":"v3","file":"digits.onnx"})";
  fs::create_directory_symlink("..broken", volume_.path() + "/..data_tmp");
  fs::rename(volume_.path() + "/..data_tmp", volume_.path() + "/..data");
  EXPECT_TRUE(eventually(
      [&] { return app_->log().find("keeping the previous one") != std::string::npos; }, 10s));
  EXPECT_EQ(get("/v1/model").value("version", ""), "v2");
}

}  // namespace
}  // namespace ep::testing
