#include "cloudcore/controllers/service_account_controller.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/api/kinds.h"
#include "tests/testing/store_fixture.h"

namespace ep::controllers {
namespace {

using Json = nlohmann::json;

class ServiceAccountControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.start().isOk()); }
  void TearDown() override { env_.stop(); }

  const api::KindInfo& sa() { return *api::findByApiVersionKind("v1", "ServiceAccount"); }
  const api::KindInfo& ns() { return *api::findByApiVersionKind("v1", "Namespace"); }
  void createNamespace(const std::string& name, Json extra = Json::object()) {
    Json obj = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
    obj.merge_patch(extra);
    ASSERT_TRUE(env_.registry->create(ns(), "", obj).isOk());
  }
  std::string uidOf(const std::string& namespace_) {
    auto r = env_.registry->get(sa(), namespace_, "default");
    return r.isOk() ? (*r)["metadata"]["uid"].get<std::string>() : "";
  }
  template <typename Pred>
  static bool eventually(Pred pred) {
    for (int i = 0; i < 200; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return pred();
  }

  testing::StoreFixture env_;
};

TEST_F(ServiceAccountControllerTest, CreatesDefaultInEveryNamespace) {
  createNamespace("team-a");
  ServiceAccountController c(*env_.registry);
  auto r = c.reconcileOnce();
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(*r, 5);  // default, kube-system, kube-public, kube-node-lease, team-a
  for (const char* n : {"default", "kube-system", "kube-public", "kube-node-lease", "team-a"}) {
    EXPECT_FALSE(uidOf(n).empty()) << n;
  }
  EXPECT_EQ(*c.reconcileOnce(), 0);  // nothing to do: nothing written

  // Deleted: created again, as a new object.
  std::string before = uidOf("team-a");
  ASSERT_TRUE(env_.registry->remove(sa(), "team-a", "default").isOk());
  EXPECT_EQ(*c.reconcileOnce(), 1);
  EXPECT_FALSE(uidOf("team-a").empty());
  EXPECT_NE(uidOf("team-a"), before);
}

TEST_F(ServiceAccountControllerTest, LeavesTerminatingNamespacesAlone) {
  // An object with a finalizer keeps the namespace Terminating after delete.
  createNamespace("going");
  ServiceAccountController c(*env_.registry);
  ASSERT_TRUE(c.reconcileOnce().isOk());
  ASSERT_FALSE(uidOf("going").empty());
  Json held = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", "held"}, {"finalizers", {"example.com/hold"}}}}};
  ASSERT_TRUE(
      env_.registry->create(*api::findByApiVersionKind("v1", "ConfigMap"), "going", held).isOk());
  auto deleted = env_.registry->remove(ns(), "", "going");
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  ASSERT_TRUE(env_.registry->get(ns(), "", "going").isOk()) << "still terminating";
  EXPECT_EQ(*c.reconcileOnce(), 0);
  EXPECT_TRUE(uidOf("going").empty());
}

TEST_F(ServiceAccountControllerTest, FollowsChangesWhenStarted) {
  ServiceAccountController c(*env_.registry, {.resync = std::chrono::hours(1)});
  ASSERT_TRUE(c.start().isOk());
  EXPECT_TRUE(eventually([&] { return !uidOf("default").empty(); }));
  createNamespace("team-b");
  EXPECT_TRUE(eventually([&] { return !uidOf("team-b").empty(); }));
  ASSERT_TRUE(env_.registry->remove(sa(), "team-b", "default").isOk());
  EXPECT_TRUE(eventually([&] { return !uidOf("team-b").empty(); }));
  c.stop();
  c.stop();  // idempotent
}

}  // namespace
}  // namespace ep::controllers
