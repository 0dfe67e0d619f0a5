#pragma once

#include <memory>
#include <vector>

#include "tests/integration/edge_fixture.h"
#include "tests/testing/mosquitto.h"

namespace ep::testing {

// EdgeFixture plus a real mosquitto of the test's own (skipped when mosquitto is not
// installed), and mosquitto_sub processes the test keeps in subs_. Used by the device and rule
// tests.
class BrokerEdgeFixture : public EdgeFixture {
 protected:
  void SetUp() override {
    if (!Mosquitto::available())
      GTEST_SKIP() << "mosquitto and mosquitto-clients are not installed";
    EdgeFixture::SetUp();
    broker_ = std::make_unique<Mosquitto>(dir_.path());
    ASSERT_TRUE(broker_->start()) << broker_->log();
  }
  void TearDown() override {
    subs_.clear();
    if (broker_ && HasFailure()) std::cerr << "---- mosquitto ----\n" << broker_->log() << "\n";
    EdgeFixture::TearDown();
    broker_.reset();
  }

  std::unique_ptr<Mosquitto> broker_;
  std::vector<std::unique_ptr<Process>> subs_;
};

}  // namespace ep::testing
