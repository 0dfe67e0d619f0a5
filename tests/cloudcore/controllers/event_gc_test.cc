#include "cloudcore/controllers/event_gc.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/api/kinds.h"
#include "tests/testing/store_fixture.h"

namespace ep::controllers {
namespace {

using Json = nlohmann::json;

class EventGcTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.start().isOk()); }
  void TearDown() override { env_.stop(); }
  const api::KindInfo& kind() { return *api::findByApiVersionKind("v1", "Event"); }
  void event(const std::string& ns, const std::string& name, const std::string& last) {
    Json e = {{"apiVersion", "v1"},
              {"kind", "Event"},
              {"metadata", {{"name", name}, {"namespace", ns}}},
              {"involvedObject", {{"kind", "Pod"}, {"name", "p"}, {"namespace", ns}}},
              {"reason", "Started"},
              {"message", "Started container c"},
              {"type", "Normal"}};
    if (!last.empty()) e["lastTimestamp"] = last;
    ASSERT_TRUE(env_.registry->create(kind(), ns, e).isOk());
  }
  bool exists(const std::string& ns, const std::string& name) {
    return env_.registry->get(kind(), ns, name).isOk();
  }
  testing::StoreFixture env_;
};

TEST_F(EventGcTest, DeletesOnlyExpiredEvents) {
  // FakeClock starts at 2023-11-14T22:13:20Z.
  event("default", "old", "2023-11-14T20:00:00Z");
  event("kube-system", "old2", "2023-11-14T21:00:00Z");
  event("default", "fresh", "2023-11-14T22:00:00Z");
  event("default", "undated", "");  // falls back to creationTimestamp (now)
  EventGc gc(*env_.registry, env_.clock, {.ttl = std::chrono::hours(1)});
  auto r = gc.reconcileOnce();
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, 2);
  EXPECT_FALSE(exists("default", "old"));
  EXPECT_FALSE(exists("kube-system", "old2"));
  EXPECT_TRUE(exists("default", "fresh"));
  EXPECT_TRUE(exists("default", "undated"));
  env_.clock.advance(std::chrono::hours(2));
  EXPECT_EQ(*gc.reconcileOnce(), 2);
  EventGc off(*env_.registry, env_.clock, {.ttl = std::chrono::seconds(0)});
  event("default", "kept", "2000-01-01T00:00:00Z");
  EXPECT_EQ(*off.reconcileOnce(), 0);
  EXPECT_TRUE(exists("default", "kept"));
}

TEST_F(EventGcTest, RunsPeriodically) {
  event("default", "old", "2000-01-01T00:00:00Z");
  EventGc gc(*env_.registry, env_.clock,
             {.ttl = std::chrono::hours(1), .interval = std::chrono::milliseconds(20)});
  gc.start();
  for (int i = 0; i < 200 && exists("default", "old"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  gc.stop();
  EXPECT_FALSE(exists("default", "old"));
}

}  // namespace
}  // namespace ep::controllers
