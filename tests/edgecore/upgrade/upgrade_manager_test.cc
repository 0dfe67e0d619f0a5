// The edge half of NodeUpgradeJobs (edgecore/upgrade): staging, the trial of a new binary,
// commit, rollback by deadline and after a death at start, on a real cache database and content
// store with an injected clock. The handover itself (exec) is edgecore's main; here it is the
// callback and handoverTarget().
#include "edgecore/upgrade/upgrade_manager.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/api/upgrades.h"
#include "common/digest/sha256.h"
#include "edgecore/metamanager/metamanager.h"
#include "proto/tunnel.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/sync_changes.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::upgrade {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace tv1 = edgeplane::tunnel::v1;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class UpgradeManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = std::make_unique<metamanager::MetaManager>(
        metamanager::MetaManagerOptions{.dataDir = dir_.path() + "/cache"});
    ASSERT_TRUE(cache_->start().isOk());
    ASSERT_TRUE(content_.start().isOk());
    fs::create_directories(dir_.path() + "/bin");
    std::ofstream(exe_) << "old edgecore";
    ::chmod(exe_.c_str(), 0755);
    digest_ = digest::sha256Of(newBinary_);
    ASSERT_TRUE(content_.appendPartial(digest_, 0, newBinary_).isOk());
    ASSERT_TRUE(content_.finish(digest_).isOk());
  }
  void TearDown() override { cache_->stop(); }

  void put(const std::string& resource, Json obj) {
    tv1::Sync sync;
    sync.set_revision(++revision_);
    ep::testing::addPutChange(sync, resource, obj, revision_);
    ASSERT_TRUE(cache_->applySync(sync).isOk());
  }
  // The job and release as the cloud sends them to a node it is upgrading.
  void putJob(const std::string& uid = "u1", Json checkItems = nullptr) {
    put(api::kEdgecoreReleaseResource,
        {{"metadata", {{"name", "2.0.0"}}},
         {"spec",
          {{"version", "2.0.0"},
           {"binaries", {{{"architecture", "amd64"}, {"digest", digest_}, {"size", 3}}}}}}});
    Json job = Json::parse(R"({"metadata": {"name": "j"},
        "spec": {"version": "2.0.0", "nodeNames": ["edge-1"], "timeoutSeconds": 30},
        "status": {"nodeStatus": [{"nodeName": "edge-1", "state": "InProgress"}]}})");
    job["metadata"]["uid"] = uid;
    if (!checkItems.is_null()) job["spec"]["checkItems"] = checkItems;
    put(api::kNodeUpgradeJobResource, job);
  }
  std::unique_ptr<UpgradeManager> manager(const std::string& executable,
                                          const std::string& version) {
    auto m = std::make_unique<UpgradeManager>(
        UpgradeOptions{.nodeName = "edge-1",
                       .architecture = "amd64",
                       .version = version,
                       .dataDir = dir_.path() + "/data",
                       .executable = executable,
                       .usage = [this](const std::string& item) -> Result<double> {
                         auto it = usage_.find(item);
                         if (it == usage_.end()) return Status(Code::kInternal, "no " + item);
                         return it->second;
                       }},
        *cache_, content_, clock_, [this] { return healthy_.load(); }, [this] { ++handovers_; });
    EXPECT_TRUE(m->recoverAtStart().isOk());
    return m;
  }
  std::string staged() const { return dir_.path() + "/data/upgrade/edgecore-2.0.0"; }
  std::string trialFile() const { return dir_.path() + "/data/upgrade/trial.json"; }

  ep::testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<metamanager::MetaManager> cache_;
  models::ContentStore content_{dir_.path() + "/models"};
  const std::string exe_ = dir_.path() + "/bin/edgecore";
  const std::string newBinary_ = "new edgecore 2.0.0";
  std::string digest_;
  int64_t revision_ = 0;
  std::atomic<bool> healthy_{false};
  std::atomic<int> handovers_{0};
  std::map<std::string, double> usage_ = {{"cpu", 0.1}, {"mem", 0.5}, {"disk", 0.3}};
};

TEST_F(UpgradeManagerTest, StagesTheVerifiedBinaryThenTheTrialInstallsItOnceHealthy) {
  auto old = manager(exe_, "1.0.0");
  old->pollOnce();
  EXPECT_FALSE(old->handoverTarget());  // no job for this node yet
  putJob();
  old->pollOnce();
  ASSERT_EQ(old->handoverTarget(), staged());
  EXPECT_EQ(handovers_, 1);
  EXPECT_EQ(slurp(staged()), newBinary_);
  struct stat st {};
  ASSERT_EQ(::stat(staged().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  Json trial = Json::parse(slurp(trialFile()));
  EXPECT_EQ(trial["previous"], fs::canonical(exe_).string());
  EXPECT_EQ(trial["timeoutMillis"], 30000);  // the job's 30 s, under the 2 min default
  old->pollOnce();
  EXPECT_EQ(handovers_, 1);  // once

  // The new binary starts (exec'd in the same process): on trial until the tunnel is up.
  auto next = manager(staged(), "2.0.0");
  EXPECT_TRUE(next->statusJson().contains("trial"));
  next->pollOnce();
  EXPECT_FALSE(next->handoverTarget());
  EXPECT_TRUE(fs::exists(trialFile()));
  healthy_ = true;
  next->pollOnce();
  EXPECT_FALSE(next->handoverTarget());
  EXPECT_EQ(slurp(exe_), newBinary_);  // installed where the service manager starts it
  EXPECT_EQ(slurp(exe_ + ".previous"), "old edgecore");
  EXPECT_FALSE(fs::exists(trialFile()));
  auto c = next->condition();
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)["status"], "True");
  EXPECT_EQ((*c)["reason"], api::kUpgradeReasonUpgraded);
  EXPECT_EQ((*c)["message"],
            api::upgradeConditionPrefix("j", "u1", "2.0.0") + "edgecore 2.0.0 runs (was 1.0.0)");
  // The outcome outlives a restart.
  EXPECT_EQ(manager(exe_, "2.0.0")->condition().value()["reason"], api::kUpgradeReasonUpgraded);
}

TEST_F(UpgradeManagerTest, ATrialThatMissesItsDeadlineHandsBackToThePreviousBinary) {
  putJob();
  manager(exe_, "1.0.0")->pollOnce();
  auto next = manager(staged(), "2.0.0");
  clock_.advance(29s);
  next->pollOnce();
  EXPECT_FALSE(next->handoverTarget());
  clock_.advance(2s);
  next->pollOnce();
  ASSERT_EQ(next->handoverTarget(), fs::canonical(exe_).string());
  EXPECT_EQ(slurp(exe_), "old edgecore");
  EXPECT_FALSE(fs::exists(trialFile()));
  auto c = next->condition();
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)["status"], "False");
  EXPECT_EQ((*c)["reason"], api::kUpgradeReasonRolledBack);
  EXPECT_EQ((*c)["message"], api::upgradeConditionPrefix("j", "u1", "2.0.0") +
                                 "edgecore 2.0.0 did not connect to the cloud within 30s; "
                                 "edgecore 1.0.0 runs again");
  // Back on the previous binary, the same job is not tried again.
  auto back = manager(exe_, "1.0.0");
  back->pollOnce();
  EXPECT_FALSE(back->handoverTarget());
  // A new job (another uid) is.
  putJob("u2");
  back->pollOnce();
  EXPECT_EQ(back->handoverTarget(), staged());
}

TEST_F(UpgradeManagerTest, ANewBinaryThatDiedIsRecordedAsRolledBackByThePreviousOne) {
  putJob();
  manager(exe_, "1.0.0")->pollOnce();
  // The staged binary exited; the service manager started the installed one again.
  auto again = manager(exe_, "1.0.0");
  EXPECT_FALSE(fs::exists(trialFile()));
  auto c = again->condition();
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)["reason"], api::kUpgradeReasonRolledBack);
  EXPECT_EQ((*c)["message"], api::upgradeConditionPrefix("j", "u1", "2.0.0") +
                                 "edgecore 2.0.0 exited before it connected to the cloud; "
                                 "edgecore 1.0.0 runs again");
  again->pollOnce();
  EXPECT_FALSE(again->handoverTarget());  // not tried again
}

TEST_F(UpgradeManagerTest, ABlobThatNoLongerMatchesItsDigestIsNotStaged) {
  const std::string blob = *content_.complete(digest_);
  ::chmod(blob.c_str(), 0644);
  std::ofstream(blob, std::ios::trunc) << "tampered";
  putJob();
  auto m = manager(exe_, "1.0.0");
  m->pollOnce();
  EXPECT_FALSE(m->handoverTarget());
  EXPECT_NE(m->statusJson().value("problem", "").find("does not match " + digest_),
            std::string::npos)
      << m->statusJson().dump();
  EXPECT_FALSE(fs::exists(trialFile()));
}

TEST_F(UpgradeManagerTest, DamagedStateFilesAreDroppedNotTrusted) {
  fs::create_directories(dir_.path() + "/data/upgrade");
  std::ofstream(trialFile()) << "{not json";
  std::ofstream(dir_.path() + "/data/upgrade/outcome.json") << "[1,2]";
  auto m = manager(exe_, "1.0.0");
  EXPECT_FALSE(m->condition());
  EXPECT_FALSE(m->statusJson().contains("trial"));
  EXPECT_FALSE(fs::exists(trialFile()));
  putJob();
  m->pollOnce();
  EXPECT_EQ(m->handoverTarget(), staged());
}

TEST_F(UpgradeManagerTest, WellFormedStateWithWrongFieldsIsNeitherRunNorShown) {
  fs::create_directories(dir_.path() + "/data/upgrade");
  // Wrong types, a binary this manager never staged, a timeout out of range, another condition.
  for (const Json& bad :
       {Json{{"job", 1}, {"version", "2.0.0"}, {"staged", staged()}, {"previous", exe_}},
        Json{{"job", "j"},
             {"uid", "u1"},
             {"version", "2.0.0"},
             {"digest", digest_},
             {"staged", "/bin/sh"},
             {"previous", exe_},
             {"timeoutMillis", 30000}},
        Json{{"job", "j"},
             {"uid", "u1"},
             {"version", "2.0.0"},
             {"digest", digest_},
             {"staged", staged()},
             {"previous", exe_},
             {"timeoutMillis", -5}}}) {
    std::ofstream(trialFile(), std::ios::trunc) << bad.dump();
    std::ofstream(dir_.path() + "/data/upgrade/outcome.json", std::ios::trunc)
        << Json{{"type", "Ready"}, {"status", "True"}, {"reason", "x"}, {"message", "m"}}.dump();
    auto m = manager("/bin/sh", "1.0.0");
    EXPECT_FALSE(m->condition()) << bad.dump();
    EXPECT_FALSE(m->statusJson().contains("trial")) << bad.dump();
    EXPECT_FALSE(fs::exists(trialFile())) << bad.dump();
  }
}

TEST_F(UpgradeManagerTest, ACrashBetweenInstallingAndRecordingIsFinishedByTheNewBinary) {
  putJob();
  manager(exe_, "1.0.0")->pollOnce();
  // The trial installed the new binary, then the machine lost power before the outcome.
  std::ofstream(exe_, std::ios::trunc) << newBinary_;
  auto installed = manager(exe_, "2.0.0");
  auto c = installed->condition();
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)["reason"], api::kUpgradeReasonUpgraded);
  EXPECT_FALSE(fs::exists(trialFile()));
  EXPECT_FALSE(fs::exists(staged()));
}

TEST_F(UpgradeManagerTest, AStopDuringTheHandoverLeavesTheJobForTheNextStart) {
  putJob();
  auto m = manager(exe_, "1.0.0");
  m->pollOnce();
  ASSERT_EQ(m->handoverTarget(), staged());
  m->abandonHandover();
  EXPECT_FALSE(m->handoverTarget());
  EXPECT_FALSE(fs::exists(trialFile()));
  EXPECT_FALSE(fs::exists(staged()));
  EXPECT_FALSE(m->condition());  // nothing happened
  auto next = manager(exe_, "1.0.0");
  next->pollOnce();
  EXPECT_EQ(next->handoverTarget(), staged());  // tried again
}

TEST_F(UpgradeManagerTest, TheWorkerStagesOnItsOwnAndStops) {
  auto m = manager(exe_, "1.0.0");
  ASSERT_TRUE(m->start().isOk());
  putJob();
  EXPECT_TRUE(ep::testing::eventually([&] { return m->handoverTarget().has_value(); }));
  m->stop();
  EXPECT_EQ(handovers_, 1);
}

}  // namespace
}  // namespace ep::edgecore::upgrade

namespace ep::edgecore::upgrade {
namespace {

TEST_F(UpgradeManagerTest, APreCheckAboveItsLimitFailsTheJobHereWithoutAHandover) {
  usage_["mem"] = 0.93;
  auto m = manager(exe_, "1.0.0");
  putJob("u1", Json::array({"cpu", "mem", "disk"}));
  m->pollOnce();
  EXPECT_FALSE(m->handoverTarget());
  EXPECT_EQ(handovers_, 0);
  auto c = m->condition();
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)["status"], "False");
  EXPECT_EQ((*c)["reason"], api::kUpgradeReasonCheckFailed);
  EXPECT_EQ((*c)["message"], api::upgradeConditionPrefix("j", "u1", "2.0.0") +
                                 "pre-check failed: mem 93% in use (at most 80%); edgecore "
                                 "1.0.0 runs on");
  // Not tried again, across a restart too.
  usage_["mem"] = 0.2;
  m->pollOnce();
  EXPECT_FALSE(m->handoverTarget());
  m = manager(exe_, "1.0.0");
  m->pollOnce();
  EXPECT_FALSE(m->handoverTarget());
  ASSERT_TRUE(m->condition());
  EXPECT_EQ((*m->condition())["reason"], api::kUpgradeReasonCheckFailed);
  // A new job whose checks pass goes ahead.
  putJob("u2", Json::array({"cpu", "mem", "disk"}));
  m->pollOnce();
  EXPECT_EQ(m->handoverTarget(), staged());
}

TEST(SystemUsage, ReadsThisHost) {
  ep::testing::TempDir dir;
  for (const char* item : {"cpu", "mem", "disk"}) {
    auto u = systemUsage(item, dir.path(), std::chrono::milliseconds(50));
    ASSERT_TRUE(u.isOk()) << item << ": " << u.status().toString();
    EXPECT_GE(*u, 0.0) << item;
    EXPECT_LE(*u, 1.0) << item;
  }
  EXPECT_EQ(systemUsage("gpu", dir.path()).status().code(), Code::kInvalid);
  EXPECT_EQ(systemUsage("disk", dir.path() + "/missing").status().code(), Code::kInternal);
}

}  // namespace
}  // namespace ep::edgecore::upgrade
