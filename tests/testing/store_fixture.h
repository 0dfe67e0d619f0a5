#pragma once

#include <chrono>
#include <memory>

#include "cloudcore/registry/registry.h"
#include "cloudcore/store/sqlite_store.h"
#include "common/clock.h"
#include "common/status.h"
#include "tests/testing/temp_dir.h"

namespace ep::testing {

// The common setup of cloudcore unit tests: a SqliteStore in a fresh TempDir (no background
// compaction) and a Registry over it, both on a FakeClock. Use from one test thread; the store
// and the registry are as thread-safe as they document. Members are destroyed registry first,
// directory last.
struct StoreFixture {
  TempDir dir;
  FakeClock clock;
  std::unique_ptr<store::SqliteStore> store;
  std::unique_ptr<registry::Registry> registry;

  // Starts the store. Call once, before startRegistry().
  Status startStore() {
    store::SqliteStoreOptions o;
    o.dataDir = dir.path();
    o.compactionInterval = std::chrono::seconds(0);
    store = std::make_unique<store::SqliteStore>(o, clock);
    return store->start();
  }

  // Builds the registry over `view` (default: the store itself; else a wrapper of it, e.g. one
  // that injects errors) and, when asked, creates the system namespaces.
  Status startRegistry(store::Store* view = nullptr, bool systemNamespaces = true) {
    registry = std::make_unique<registry::Registry>(view ? *view : *store, clock);
    return systemNamespaces ? registry->ensureSystemNamespaces() : Status::ok();
  }

  // startStore() then startRegistry() over the store.
  Status start(bool systemNamespaces = true) {
    if (auto s = startStore(); !s.isOk()) return s;
    return startRegistry(nullptr, systemNamespaces);
  }

  // Stops the store; call from TearDown() once whatever uses the registry has stopped.
  void stop() {
    if (store) store->stop();
  }
};

}  // namespace ep::testing
