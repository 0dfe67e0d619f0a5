#include "cloudcore/store/sqlite_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

namespace ep::store {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ep-store-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override { store_->stop(); }
  void open() {
    SqliteStoreOptions o;
    o.dataDir = dir_.path();
    o.compactionInterval = std::chrono::seconds(0);
    o.historyWindow = std::chrono::seconds(60);
    o.watchBufferEvents = bufferEvents_;
    store_ = std::make_unique<SqliteStore>(o, clock_);
    ASSERT_TRUE(store_->start().isOk());
  }
  void reopen() {
    store_->stop();
    store_.reset();
    open();
  }
  // Polls until `n` events arrived or 5 s passed.
  static std::vector<Event> drain(Watch& w, size_t n) {
    std::vector<Event> got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto more = w.poll(n - got.size());
      if (more.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      for (auto& e : more) got.push_back(std::move(e));
    }
    return got;
  }

  TempDir dir_;
  FakeClock clock_;
  size_t bufferEvents_ = 1024;
  std::unique_ptr<SqliteStore> store_;
};

// Readiness (issue 14): the write probe commits nothing visible (no revision, no event) and
// fails while writes cannot reach the disk, here a file size limit of one byte (the kernel then
// refuses every write past offset 0, as a full disk would), and works again afterwards.
TEST_F(SqliteStoreTest, WriteProbeFailsWhileTheDiskRefusesWritesAndRecovers) {
  ASSERT_TRUE(store_->create("configmaps", "default", "a", R"({"v":1})").isOk());
  const int64_t rev = store_->currentRevision();
  ASSERT_TRUE(store_->probeWrite().isOk());
  EXPECT_EQ(store_->currentRevision(), rev);

  ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &before), 0);
  rlimit full = before;
  full.rlim_cur = 1;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &full), 0);
  Status probe = store_->probeWrite();
  auto write = store_->create("configmaps", "default", "b", R"({"v":2})");
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &before), 0);
  EXPECT_EQ(probe.code(), Code::kUnavailable) << probe.toString();
  EXPECT_FALSE(write.isOk());

  EXPECT_TRUE(store_->probeWrite().isOk());
  EXPECT_TRUE(store_->create("configmaps", "default", "b", R"({"v":2})").isOk());
  EXPECT_EQ(store_->currentRevision(), rev + 1);
}

TEST_F(SqliteStoreTest, SlowWatchCatchesUpFromDiskWithoutGaps) {
  bufferEvents_ = 8;
  reopen();
  auto w = store_->watch({.resource = "pods"});
  ASSERT_TRUE(w.isOk());
  // 200 writes overflow the 8-event live buffer several times over.
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(
            store_->create("pods", "ns", "p" + std::to_string(t) + "-" + std::to_string(i), "x")
                .isOk());
      }
    });
  }
  std::vector<Event> got;
  while (got.size() < 200) {
    auto more = drain(**w, 200 - got.size());
    if (more.empty()) break;
    for (auto& e : more) got.push_back(std::move(e));
  }
  for (auto& t : writers) t.join();
  auto rest = drain(**w, 200 - got.size());
  for (auto& e : rest) got.push_back(std::move(e));
  ASSERT_EQ(got.size(), 200u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].object.modRevision, static_cast<int64_t>(i + 1));
  }
}

// A write's event is in every watch opened before it by the time the write returns: a caller
// that writes and then polls (the node controller's reconcileOnce() in tests) sees it at once.
TEST_F(SqliteStoreTest, AWritesEventIsThereWhenTheWriteReturns) {
  auto w = store_->watch({.resource = "leases.coordination.k8s.io"});
  ASSERT_TRUE(w.isOk());
  for (int i = 0; i < 50; ++i) {
    auto r = store_->create("leases.coordination.k8s.io", "kube-node-lease",
                            "n" + std::to_string(i), "{}");
    ASSERT_TRUE(r.isOk());
    auto got = (*w)->poll(10);  // no wait: it is there already
    ASSERT_EQ(got.size(), 1u) << "write " << i;
    EXPECT_EQ(got[0].object.modRevision, r->modRevision);
  }
}

TEST_F(SqliteStoreTest, TimeWindowCompaction) {
  ASSERT_TRUE(store_->create("pods", "ns", "old", "x").isOk());
  clock_.advance(std::chrono::seconds(120));
  ASSERT_TRUE(store_->create("pods", "ns", "new", "x").isOk());
  ASSERT_TRUE(store_->compactOnce().isOk());
  EXPECT_EQ(store_->compactedRevision(), 1);
}

TEST_F(SqliteStoreTest, SecondProcessOnSameDataDirIsRefused) {
  SqliteStoreOptions o;
  o.dataDir = dir_.path();
  SqliteStore other(o, clock_);
  auto s = other.start();
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("in use"), std::string::npos);
}

// A child process writes as fast as it can and reports each acknowledged revision through a
// pipe; it is killed with SIGKILL mid-stream. Every acknowledged write must read back.
TEST(SqliteStoreDurabilityTest, AcknowledgedWritesSurviveKill9) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    SqliteStoreOptions o;
    o.dataDir = dir.path();
    o.compactionInterval = std::chrono::seconds(0);
    SqliteStore s(o, SystemClock::instance());
    if (!s.start().isOk()) _exit(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          auto r = s.create("pods", "ns", std::to_string(t) + "-" + std::to_string(i), "v");
          if (!r.isOk()) _exit(3);
          int64_t rev = r->modRevision;
          if (write(fds[1], &rev, sizeof rev) != sizeof rev) _exit(4);
        }
      });
    }
    for (auto& t : threads) t.join();
    _exit(0);
  }
  close(fds[1]);
  std::vector<int64_t> acked;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
  int64_t rev;
  while (std::chrono::steady_clock::now() < deadline &&
         read(fds[0], &rev, sizeof rev) == sizeof rev) {
    acked.push_back(rev);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  while (read(fds[0], &rev, sizeof rev) == sizeof rev) acked.push_back(rev);
  close(fds[0]);
  ASSERT_GT(acked.size(), 50u);

  SqliteStoreOptions o;
  o.dataDir = dir.path();
  o.compactionInterval = std::chrono::seconds(0);
  SqliteStore s(o, SystemClock::instance());
  ASSERT_TRUE(s.start().isOk());
  int64_t maxAcked = *std::max_element(acked.begin(), acked.end());
  EXPECT_GE(s.currentRevision(), maxAcked);
  auto all = s.list({.resource = "pods"});
  ASSERT_TRUE(all.isOk());
  std::set<int64_t> present;
  for (auto& obj : all->items) present.insert(obj.modRevision);
  for (int64_t r : acked) EXPECT_TRUE(present.count(r)) << "acknowledged revision " << r << " lost";
  s.stop();
}

}  // namespace
}  // namespace ep::store
