#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cloudcore/store/store.h"
#include "common/clock.h"
#include "common/thread_annotations.h"

namespace ep::store {

struct EtcdStoreOptions {
  // Members to talk to, "HOST:PORT" each (any member serves reads and forwards writes to the
  // leader; requests move to another member when one fails).
  std::vector<std::string> endpoints;
  // Every key lives under PREFIX/RESOURCE/NAMESPACE/NAME (docs/store.md, "etcd"). Several
  // clusters can share one etcd under different prefixes.
  std::string prefix = "/edgeplane";
  // Client TLS: the CA that signed the members' certificates, and this client's certificate and
  // key (all empty: plain gRPC, for an etcd on loopback).
  std::string caFile;
  std::string certFile;
  std::string keyFile;
  // As SqliteStoreOptions: history older than the window is compacted by the background
  // compactor every interval (0 disables it).
  std::chrono::seconds historyWindow{3600};
  std::chrono::seconds compactionInterval{60};
  // Deadline of one request. A request waits for a member to be reachable until then.
  std::chrono::milliseconds requestTimeout{10000};
  // Live events buffered per watch before it stops reading its stream (flow control back to
  // etcd, which then catches the watch up from its history).
  size_t watchBufferEvents = 1024;
  // First wait before a failed watch stream is opened again (doubling per failure, at most 5 s).
  std::chrono::milliseconds watchRetryDelay{100};
};

class EtcdWatchCore;
struct EtcdClients;

// Store on etcd's v3 API (KV, Watch, Maintenance over gRPC), for several cloudcores sharing one
// cluster state (docs/store.md, "etcd"). Revisions are etcd's revisions. A write is
// acknowledged only after etcd answered it (committed by a majority of members and fsynced);
// a write whose answer was lost is reported kUnavailable, never as done, and never retried.
// Reads are linearizable. A watch is one gRPC stream; when the member under it fails it resumes
// on another from the next revision it has not delivered, or ends with kExpired when that was
// compacted meanwhile.
//
// Threading: every public method is thread-safe and blocks its caller for at most the request
// deadline (call from worker threads, not event loops). Threads: gRPC's, one compactor, one that
// restarts failed watch streams after a backoff.
class EtcdStore final : public Store {
 public:
  EtcdStore(EtcdStoreOptions options, Clock& clock);
  ~EtcdStore() override;

  // Connects and proves that a quorum answers (a linearizable read) within the deadline.
  Status start() override;
  // Ends every watch with kUnavailable and stops the threads. Watches must be destroyed before
  // the store.
  void stop() override;

  Result<Object> get(const std::string& resource, const std::string& ns,
                     const std::string& name) override;
  Result<ListResult> list(const ListOptions& options) override;
  Result<Object> create(const std::string& resource, const std::string& ns, const std::string& name,
                        std::string value) override;
  Result<Object> update(const std::string& resource, const std::string& ns, const std::string& name,
                        std::string value, int64_t expectedRevision) override;
  Result<Object> remove(const std::string& resource, const std::string& ns, const std::string& name,
                        int64_t expectedRevision) override;
  // etcd holds no row damaged on disk (it checks its own data), so only the nonzero form does
  // anything: two revisions, the value replaced by a marked tombstone, then the key deleted.
  Result<Object> removeUnsafe(const std::string& resource, const std::string& ns,
                              const std::string& name, std::string tombstone,
                              int64_t expectedRevision) override;
  Result<std::unique_ptr<Watch>> watch(const WatchOptions& options) override;
  int64_t currentRevision() override;
  int64_t compactedRevision() override;
  Status compact(int64_t revision) override;
  // No alarm (NOSPACE, CORRUPT) raised on any member, and a quorum answers.
  Status probeWrite() override;

  // How many keys live under PREFIX/ (every object of this store; cloudcore
  // --migrate-store-to copies only into an empty prefix).
  Result<int64_t> countObjects();

  // What the background compactor does: remembers the current revision with the time, and
  // compacts to the newest remembered revision older than the history window.
  Status compactOnce();

 private:
  friend class EtcdWatchCore;

  // update (value) and remove (nullopt): compare-and-swap on the key's mod_revision.
  Result<Object> swap(const std::string& resource, const std::string& ns, const std::string& name,
                      std::optional<std::string> value, int64_t expectedRevision);
  std::string objectKey(const std::string& resource, const std::string& ns,
                        const std::string& name) const;
  std::string rangePrefix(const std::string& resource, const std::string& ns) const;
  // Splits PREFIX/RESOURCE/NAMESPACE/NAME; false for keys not in that shape.
  bool parseKey(const std::string& key, Object& out) const;
  using Deadline = std::chrono::system_clock::time_point;
  // Each public call has one deadline, options_.requestTimeout from its start.
  Deadline deadlineFromNow() const;
  // The object, or kNotFound (also for a key an unfinished unsafe delete marked: that delete
  // is finished on the way).
  Result<Object> readCurrent(const std::string& resource, const std::string& ns,
                             const std::string& name, Deadline deadline);
  // removeUnsafe's second write: deletes `key` if it still is at `markedRevision`; the
  // revision of the delete, or kConflict when the key moved on.
  Result<int64_t> finishUnsafeDelete(const std::string& key, int64_t markedRevision,
                                     Deadline deadline);
  // Runs `restart` after `delay` on the retry thread (or never, once stopping).
  void scheduleRestart(std::weak_ptr<EtcdWatchCore> watch, std::chrono::milliseconds delay);
  void retryLoop();
  void compactorLoop();
  void noteRevision(int64_t revision);

  const EtcdStoreOptions options_;
  Clock& clock_;
  const std::string prefix_;      // options_.prefix without a trailing '/'
  const std::string compactKey_;  // the compacted revision, outside every object range
  std::unique_ptr<EtcdClients> clients_;

  std::atomic<int64_t> lastRevision_{0};   // newest revision any answer carried
  std::atomic<int64_t> compactedSeen_{0};  // newest compacted revision known here

  Mutex mu_;
  std::condition_variable compactorCv_;  // stopping_
  std::condition_variable retryCv_;      // stopping_, restarts_
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::vector<std::weak_ptr<EtcdWatchCore>> watches_ EP_GUARDED_BY(mu_);
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::weak_ptr<EtcdWatchCore>>>
      restarts_ EP_GUARDED_BY(mu_);
  // (time, revision) samples of the compactor, oldest first.
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> samples_ EP_GUARDED_BY(mu_);
  std::thread compactor_;
  std::thread retrier_;
};

}  // namespace ep::store
