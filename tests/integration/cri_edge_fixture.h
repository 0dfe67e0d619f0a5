#pragma once

#include <iostream>
#include <memory>

#include "tests/integration/edge_fixture.h"
#include "tests/testing/cri_env.h"

namespace ep::testing {

// Base (EdgeFixture or a fixture derived from it) whose edgecores run pods on a private
// containerd with its registries (CriEnv). SetUp skips when this machine cannot run containerd
// (not root, tools missing); a derived SetUp calls WithCri::SetUp() first and returns at once
// when IsSkipped() or HasFatalFailure(). On failure TearDown prints the pods and events, then
// stops the edgecores before the environment (their pods' containers with it).
template <class Base>
class WithCri : public Base {
 protected:
  void SetUp() override {
    std::string skip = CriEnv::skipReason();
    if (!skip.empty()) GTEST_SKIP() << skip;
    cri_ = std::make_unique<CriEnv>();
    ASSERT_TRUE(cri_->up()) << cri_->error();
    this->runtimeEndpoint_ = cri_->endpoint();
    baseUp_ = true;
    Base::SetUp();
  }
  void TearDown() override {
    if (!baseUp_) {  // skipped, or the environment did not come up: nothing else started
      cri_.reset();
      return;
    }
    if (::testing::Test::HasFailure()) {
      std::cerr << "---- pods ----\n"
                << this->edgectl({"get", "pods", "-o", "yaml"}).out << "\n---- events ----\n"
                << this->edgectl({"get", "events"}).out << "\n";
    }
    Base::TearDown();
    cri_.reset();
  }
  bool stopped() const {
    return ::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure();
  }

  std::unique_ptr<CriEnv> cri_;

 private:
  bool baseUp_ = false;
};

}  // namespace ep::testing
