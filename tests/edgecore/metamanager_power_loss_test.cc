// Power loss at the edge (issue 14): the PowerLossVfs forgets every write the edge cache did
// not sync. Every outbox entry enqueue() acknowledged and every Sync applySync() acknowledged
// must be there afterwards, and the cache must open without being rebuilt.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "edgecore/metamanager/metamanager.h"
#include "tests/testing/power_loss_vfs.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::metamanager {
namespace {

namespace tv1 = edgeplane::tunnel::v1;

TEST(MetaManagerPowerLossTest, AcknowledgedSyncsAndReportsSurvivePowerLoss) {
  ep::testing::TempDir dir;
  ep::testing::PowerLossVfs vfs;
  std::set<uint64_t> acked;                // outbox sequences
  std::map<std::string, int64_t> applied;  // pod name -> revision
  int64_t revision = 0;
  for (int round = 0; round < 5; ++round) {
    MetaManager mm(MetaManagerOptions{dir.path()});
    ASSERT_TRUE(mm.start().isOk()) << "round " << round;
    EXPECT_TRUE(mm.integrity().rebuiltFrom.empty()) << "round " << round;
    auto pending = mm.pending(1'000'000);
    ASSERT_TRUE(pending.isOk());
    std::set<uint64_t> present;
    for (const auto& e : *pending) present.insert(e.sequence);
    for (uint64_t s : acked) ASSERT_TRUE(present.count(s)) << "lost outbox sequence " << s;
    for (const auto& [name, rev] : applied) {
      auto got = mm.get("pods", "default", name);
      ASSERT_TRUE(got.isOk()) << "lost pod " << name << ": " << got.status().toString();
      EXPECT_EQ(got->revision, rev);
    }
    EXPECT_GE(mm.lastAppliedRevision(), revision);

    std::atomic<int> reports{0}, syncs{0};
    std::thread reporter([&] {
      for (int i = 0;; ++i) {
        auto r = mm.enqueue(tv1::REPORT_KIND_EVENT, "ns", "e" + std::to_string(i), "payload");
        if (!r.isOk()) return;
        acked.insert(*r);
        ++reports;
      }
    });
    std::thread syncer([&] {
      for (int i = 0;; ++i) {
        tv1::Sync s;
        const int64_t rev = revision + 1;
        const std::string name = "p" + std::to_string(round) + "-" + std::to_string(i);
        auto* c = s.add_changes();
        c->set_op(tv1::Change::OP_PUT);
        c->set_resource("pods");
        c->set_namespace_("default");
        c->set_name(name);
        c->set_revision(rev);
        c->set_value(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
                     R"(","namespace":"default"}})");
        s.set_revision(rev);
        if (!mm.applySync(s).isOk()) return;
        applied[name] = rev;
        revision = rev;
        ++syncs;
      }
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const int target = 60 + 13 * round;
    while ((reports.load() < target || syncs.load() < target) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    vfs.cutPower();
    reporter.join();
    syncer.join();
    mm.stop();
    vfs.restore();
  }
  EXPECT_GE(acked.size(), 5 * 60u);
  EXPECT_GE(applied.size(), 5 * 60u);
}

}  // namespace
}  // namespace ep::edgecore::metamanager
