// Store throughput: acknowledged (fsynced) writes/s and reads/s of the SQLite store, or of the
// etcd store when EP_BENCH_STORE names etcd members (a fresh key prefix per run):
//   build/bench/store_bench --benchmark_counters_tabular=true
//   EP_BENCH_STORE=etcd://127.0.0.1:2379 build/bench/store_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>

#include "cloudcore/store/etcd_store.h"
#include "cloudcore/store/sqlite_store.h"
#include "tests/testing/temp_dir.h"

namespace {

using ep::store::SqliteStore;

std::string kValue(600, 'x');  // about the size of a small Pod

struct Shared {
  std::mutex mu;
  std::unique_ptr<ep::store::Store> store;
  std::unique_ptr<ep::testing::TempDir> dir;  // removed with the last user
  int users = 0;
};
Shared shared;

std::atomic<int64_t> counter{0};

// etcd members from EP_BENCH_STORE=etcd://HOST:PORT[,...]; empty for SQLite.
std::vector<std::string> etcdEndpoints() {
  const char* url = std::getenv("EP_BENCH_STORE");
  std::vector<std::string> out;
  if (!url || std::string_view(url).rfind("etcd://", 0) != 0) return out;
  std::string rest = std::string(url).substr(7);
  for (size_t start = 0; start <= rest.size();) {
    size_t comma = rest.find(',', start);
    out.push_back(rest.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

ep::store::Store& acquire() {
  std::lock_guard lock(shared.mu);
  if (shared.users++ == 0) {
    shared.dir = std::make_unique<ep::testing::TempDir>();
    if (auto endpoints = etcdEndpoints(); !endpoints.empty()) {
      ep::store::EtcdStoreOptions o;
      o.endpoints = endpoints;
      o.prefix = "/bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
      o.compactionInterval = std::chrono::seconds(0);
      shared.store = std::make_unique<ep::store::EtcdStore>(o, ep::SystemClock::instance());
    } else {
      ep::store::SqliteStoreOptions o;
      o.dataDir = shared.dir->path();
      o.compactionInterval = std::chrono::seconds(0);
      shared.store = std::make_unique<SqliteStore>(o, ep::SystemClock::instance());
    }
    if (!shared.store->start().isOk()) abort();
    for (int i = 0; i < 1000; ++i) {
      if (!shared.store->create("pods", "default", "seed-" + std::to_string(i), kValue).isOk()) {
        abort();
      }
    }
  }
  return *shared.store;
}

void release() {
  std::lock_guard lock(shared.mu);
  if (--shared.users == 0) {
    shared.store->stop();
    shared.store.reset();
    shared.dir.reset();
  }
}

void BM_Create(benchmark::State& state) {
  auto& store = acquire();
  for (auto _ : state) {
    auto r = store.create("pods", "default", "p-" + std::to_string(counter++), kValue);
    if (!r.isOk()) state.SkipWithError(r.status().toString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  release();
}
BENCHMARK(BM_Create)->ThreadRange(1, 64)->UseRealTime()->MinTime(2.0);

void BM_UpdateCas(benchmark::State& state) {
  auto& store = acquire();
  std::string name = "seed-" + std::to_string(state.thread_index());
  for (auto _ : state) {
    auto cur = store.get("pods", "default", name);
    auto r = store.update("pods", "default", name, kValue, cur->modRevision);
    if (!r.isOk()) state.SkipWithError(r.status().toString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  release();
}
BENCHMARK(BM_UpdateCas)->ThreadRange(1, 16)->UseRealTime()->MinTime(2.0);

void BM_Get(benchmark::State& state) {
  auto& store = acquire();
  int i = 0;
  for (auto _ : state) {
    auto r = store.get("pods", "default", "seed-" + std::to_string(i++ % 1000));
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  release();
}
BENCHMARK(BM_Get)->ThreadRange(1, 2)->UseRealTime();

void BM_List1000(benchmark::State& state) {
  auto& store = acquire();
  for (auto _ : state) {
    auto r = store.list({.resource = "pods", .namespace_ = "default", .limit = 1000});
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  release();
}
BENCHMARK(BM_List1000)->UseRealTime();

// A watch catching up from disk reads and checksums every history row of its range, whatever
// resource it watches (docs/store.md, "Damaged data"): here 10,000 Pod events and 100
// ConfigMap events, read by a ConfigMap watch from revision 0.
void BM_HistoryCatchUp(benchmark::State& state) {
  if (!etcdEndpoints().empty()) {
    state.SkipWithError("SQLite's history reader only");
    return;
  }
  const ep::testing::TempDir dir;
  ep::store::SqliteStoreOptions o;
  o.dataDir = dir.path();
  o.compactionInterval = std::chrono::seconds(0);
  SqliteStore store(o, ep::SystemClock::instance());
  if (!store.start().isOk()) abort();
  for (int i = 0; i < 10100; ++i) {
    const bool cm = i % 101 == 100;
    if (!store.create(cm ? "configmaps" : "pods", "default", "h-" + std::to_string(i), kValue)
             .isOk()) {
      abort();
    }
  }
  const int64_t to = store.currentRevision();
  size_t delivered = 0;
  for (auto _ : state) {
    int64_t from = 0;
    while (from < to) {
      auto r = store.readHistory("configmaps", "", from, to, 1000);
      if (!r.isOk() || !r->end.isOk()) abort();
      delivered += r->events.size();
      from = r->scannedTo;
    }
  }
  state.SetItemsProcessed(state.iterations() * to);  // history rows read
  state.counters["delivered"] = static_cast<double>(delivered) / state.iterations();
  store.stop();  // before `dir` removes the files
}
BENCHMARK(BM_HistoryCatchUp)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
