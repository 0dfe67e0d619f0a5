#include "cloudcore/cloudhub/node_state_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/testing/temp_dir.h"

namespace ep::cloudhub {
namespace {

using namespace std::chrono_literals;

template <typename F>
bool eventually(F f, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::yield();
  }
  return f();
}

// Applied report sequences are persisted (and so acknowledged to the edge) within the short
// report interval, not the long one: a node's reports in flight are bounded, so the long
// interval would cap its report throughput at (reports in flight) per flush.
TEST(NodeStateStoreTest, ReportSequencesArePersistedWithinTheReportInterval) {
  testing::TempDir dir;
  NodeStateStore store({.dataDir = dir.path(), .flushInterval = 1h, .reportFlushInterval = 20ms});
  std::vector<std::pair<std::string, uint64_t>> persisted;
  std::mutex mu;
  store.setOnPersisted([&](const std::string& node, uint64_t seq) {
    std::lock_guard l(mu);
    persisted.emplace_back(node, seq);
  });
  ASSERT_TRUE(store.start().isOk());
  store.recordAck("edge-1", 5);  // the first flush happens at once; later ones wait an hour
  store.recordAck("edge-1", 6);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    store.recordReportApplied("edge-1", seq * 10);
    ASSERT_TRUE(eventually([&] { return store.persistedReportSequence("edge-1") == seq * 10; }))
        << "sequence " << seq * 10 << " not persisted within 5 s";
  }
  // onPersisted runs on the flush thread right after the sequence is on disk (the acks).
  EXPECT_TRUE(eventually([&] {
    std::lock_guard l(mu);
    return !persisted.empty() && persisted.back() == std::pair<std::string, uint64_t>{"edge-1", 30};
  }));
  store.stop();
  // Everything, the revision included, is on disk after stop.
  NodeStateStore reopened({.dataDir = dir.path()});
  ASSERT_TRUE(reopened.start().isOk());
  EXPECT_EQ(reopened.persistedReportSequence("edge-1"), 30u);
  EXPECT_EQ(reopened.ackedRevision("edge-1"), 6);
  reopened.stop();
}

}  // namespace
}  // namespace ep::cloudhub
