#include "common/lifecycle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ep {
namespace {

TEST(LifecycleTest, StopsWhatStartedNewestFirstAndOnlyOnce) {
  std::vector<std::string> log;
  Lifecycle services("test");
  for (const char* name : {"store", "hub", "server"}) {
    ASSERT_TRUE(services
                    .start(
                        name,
                        [&, name] {
                          log.push_back(std::string("start ") + name);
                          return Status::ok();
                        },
                        [&, name] { log.push_back(std::string("stop ") + name); })
                    .isOk());
  }
  services.started("gc", [&] { log.push_back("stop gc"); });
  EXPECT_EQ(services.running(), 4u);
  services.stopAll();
  services.stopAll();  // idempotent
  EXPECT_EQ(log, (std::vector<std::string>{"start store", "start hub", "start server", "stop gc",
                                           "stop server", "stop hub", "stop store"}));
}

TEST(LifecycleTest, AFailedStartIsNotStoppedAndFailStopsTheRest) {
  std::vector<std::string> log;
  Lifecycle services("test");
  ASSERT_TRUE(services
                  .start(
                      "store", [] { return Status::ok(); }, [&] { log.push_back("stop store"); })
                  .isOk());
  Status s = services.start(
      "hub", [] { return unavailableError("hub: port 6444 in use"); },
      [&] { log.push_back("stop hub"); });
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(services.running(), 1u);
  EXPECT_EQ(services.fail(3), 3);
  EXPECT_EQ(log, (std::vector<std::string>{"stop store"}));
  EXPECT_EQ(services.running(), 0u);
}

TEST(LifecycleDeathTest, EndingWithServicesRunningIsABrokenInvariant) {
  EXPECT_DEATH(
      {
        Lifecycle services("test");
        services.started("store", [] {});
      },
      "1 services still running when their lifecycle ended \\(first: store\\)");
}

}  // namespace
}  // namespace ep
