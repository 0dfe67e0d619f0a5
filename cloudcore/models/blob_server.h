#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cloudcore/cloudhub/dispatcher.h"
#include "cloudcore/cloudhub/tunnel_server.h"
#include "cloudcore/models/blob_store.h"
#include "cloudcore/store/store.h"
#include "common/thread_annotations.h"

namespace edgeplane::tunnel::v1 {
class BlobRequest;
}  // namespace edgeplane::tunnel::v1

namespace ep::models {

struct BlobServerOptions {
  size_t threads = 2;  // chunk readers (disk I/O and hashing off the tunnel's threads)
  // Requests waiting for a reader, all nodes together: each is a few hundred bytes (the chunk is
  // read when its turn comes), so this admits 1,024 nodes with edgecore's 16 requests in flight
  // before anyone is told to ask again.
  size_t maxQueued = 16384;
  size_t maxPerNode = 64;  // requests of one node queued or being read (edges keep 16)
  // Chunk bytes read from disk and not yet written to (or dropped by) the nodes' connections,
  // all nodes together: readers wait for room, so a fan-out to many nodes holds at most this
  // much chunk data in the cloud's memory however slow the nodes (one chunk is always allowed).
  uint64_t maxBytesInFlight = 64ull << 20;
  // The share of one node (twice what edgecore keeps in flight): a node whose connection does
  // not drain is told to ask again once it holds this much, so a few stuck nodes cannot take
  // the whole budget (a dead connection gives its share back when keepalive ends it).
  uint64_t maxBytesInFlightPerNode = 8ull << 20;
};

// Counters for /metrics and tests: monotonic, except the two gauges marked "now".
struct BlobServerStats {
  uint64_t chunksSent = 0;
  uint64_t bytesSent = 0;
  uint64_t refused = 0;         // not allowed, malformed
  uint64_t failed = 0;          // not found, corrupted, busy
  uint64_t bytesInFlight = 0;   // now: read and not yet written to a connection
  uint64_t readersWaiting = 0;  // now: readers waiting for room under maxBytesInFlight
};

// Serves model blobs to edge nodes over the tunnel (docs/models.md): each BlobRequest is
// answered with one BlobChunk, read from the BlobStore (verified against its chunk index) by a
// small pool of threads, so the tunnel's reactions never wait for a disk.
//
// Node authorization (docs/security.md): node N gets a blob only when the request names a
// Model (namespace, name) that refers to the digest (spec.url or its version history) and a
// pod bound to N in that namespace uses the Model through a models.edgeplane.io volume. The
// answer is remembered per (node, namespace, model, digest) for a minute, so a transfer of many
// chunks costs one check.
//
// Thread-safe. onBlobRequest() never blocks.
class BlobServer final : public cloudhub::BlobRequestHandler {
 public:
  BlobServer(BlobStore& blobs, store::Store& store, BlobServerOptions options = {});
  ~BlobServer() override;
  BlobServer(const BlobServer&) = delete;
  BlobServer& operator=(const BlobServer&) = delete;

  void start();
  void stop();

  // Called on a tunnel reaction thread for an authenticated node's request; the answer goes to
  // `sink` (dropped when the session has ended by then).
  void onBlobRequest(const std::string& node, const std::shared_ptr<cloudhub::SyncSink>& sink,
                     const edgeplane::tunnel::v1::BlobRequest& request) override;

  BlobServerStats stats() const;

 private:
  struct Job {
    std::string node;
    std::weak_ptr<cloudhub::SyncSink> sink;
    uint64_t id = 0;
    std::string digest;
    uint64_t offset = 0;
    std::string ns;
    std::string model;
    std::string release;  // an edgecore binary's release instead of ns/model
  };
  void run();
  void serve(const Job& job);
  // Empty when `job`'s node may read the digest, else why not.
  std::string authorize(const Job& job);
  // The part of authorize() for an edgecore binary: a NodeUpgradeJob for the release is
  // upgrading the node and the release holds the digest.
  std::string authorizeRelease(const Job& job);
  struct Budget;
  class Reservation;
  // Sends the answer. A chunk's message holds `room` (its bytes under maxBytesInFlight) until
  // the connection is done with it (written or dropped).
  static void reply(const Job& job, const std::string& error, bool retryable,
                    const BlobChunkData* chunk, const std::shared_ptr<Reservation>& room = nullptr);

  BlobStore& blobs_;
  store::Store& store_;
  const BlobServerOptions options_;

  Mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_ EP_GUARDED_BY(mu_);
  std::map<std::string, size_t> perNode_ EP_GUARDED_BY(mu_);  // queued or being served
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  // (node, ns, model, digest) -> when the grant expires (steady ms).
  std::map<std::string, int64_t> grants_ EP_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
  // Shared with the messages in flight, which may outlive this object in a connection's queue.
  const std::shared_ptr<Budget> budget_;

  std::atomic<uint64_t> chunksSent_{0};
  std::atomic<uint64_t> bytesSent_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> failed_{0};
};

}  // namespace ep::models
