#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cloudcore/cloudhub/metrics.h"
#include "cloudcore/cloudhub/refs.h"
#include "cloudcore/store/store.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace edgeplane::tunnel::v1 {
class CloudMessage;
}

namespace ep::cloudhub {

using CloudMessagePtr = std::shared_ptr<const edgeplane::tunnel::v1::CloudMessage>;

// Where the dispatcher delivers a node's messages (one tunnel stream). Implemented by the
// tunnel session; a seam so the dispatcher needs no gRPC.
class SyncSink {
 public:
  virtual ~SyncSink() = default;
  // Queues `message`. Thread-safe, never blocks. Returns false when the sink is closed or its
  // bounded queue overflowed (the sink then ends its stream itself); the caller forgets it.
  virtual bool send(CloudMessagePtr message) = 0;
  // Ends the stream with an error (e.g. "resync needed"). Thread-safe, never blocks.
  virtual void close(const std::string& reason) = 0;
};

// One entry of a Hello's inventory.
struct InventoryEntry {
  ObjectKey key;
  int64_t revision = 0;
};

struct DispatcherOptions {
  size_t maxEventsPerPoll = 512;
  // A Sync carrying more than this (object bytes) is split into several, so a node needing a lot
  // never meets the edge's 16 MiB receive limit. One object always fits in one Sync.
  size_t maxSyncBytes = 4 * 1024 * 1024;
};

// Decides what every connected edge node needs and sends it (docs/tunnel.md, "Sync").
//
// One thread owns all state: it loads the tracked kinds at start, then consumes one store
// watch of every resource from the revision it loaded at, keeping indices (objects bound to
// nodes, references to ConfigMaps/Secrets/DeviceModels/RuleEndpoints and their reverse). For
// each connected node it remembers what the node holds (`sent`), so every change — including a
// node no longer needing an object — becomes the exact PUT/DELETE difference, queued on the
// node's SyncSink. attach()/detach() only post commands to that thread and never block.
// A watch that ends with kExpired makes the dispatcher reload its state and close every
// session (the edges reconnect and resync through their inventory).
class Dispatcher {
 public:
  Dispatcher(store::Store& store, Metrics& metrics, DispatcherOptions options = {});
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Loads the initial state and starts the dispatcher thread.
  Status start();
  void stop();

  // A node connected: send it one Sync{initial=true} with the difference between what it
  // needs and `inventory`, then every change. Replaces any previous sink of the node.
  void attach(const std::string& node, std::shared_ptr<SyncSink> sink,
              std::vector<InventoryEntry> inventory);
  // The stream behind `sink` ended; ignored when the node has another sink by now.
  void detach(const std::string& node, const SyncSink* sink);

  // Store revision the dispatcher's state reflects. Thread-safe.
  int64_t revision() const { return revision_; }

 private:
  struct Cached {
    std::string wireValue;  // object JSON with metadata.resourceVersion, as sent to edges
    int64_t modRevision = 0;
    Placement placement;
    bool pullSecret = false;  // a Secret of a pull secret's type (api::isPullSecretType)
  };
  struct NodeSession {
    std::shared_ptr<SyncSink> sink;
    std::shared_ptr<NodeCounters> counters;
    std::map<ObjectKey, int64_t> sent;  // what the node holds now (key -> revision)
  };
  struct Command {
    std::string node;
    std::shared_ptr<SyncSink> sink;    // attach when set
    const SyncSink* detach = nullptr;  // detach when set
    std::vector<InventoryEntry> inventory;
  };

  // All below run on the dispatcher thread only.
  Status load();
  void run();
  // One turn: retry a failed load, apply available events, then run `commands`.
  void step(std::deque<Command>& commands);
  void handleCommand(Command& cmd);
  void applyEvent(const store::Event& event, std::set<std::string>& affected);
  void put(const ObjectKey& key, const store::Object& object);
  void erase(const ObjectKey& key);
  void nodesNeeding(const ObjectKey& key, std::set<std::string>& out) const;
  std::map<ObjectKey, int64_t> needed(const std::string& node) const;
  // Sends the difference between needed(node) and `have`; `have` becomes needed(node).
  void syncNode(const std::string& node, NodeSession& session, bool initial);

  store::Store& store_;
  Metrics& metrics_;
  const DispatcherOptions options_;
  std::atomic<int64_t> revision_{0};

  // Dispatcher-thread state.
  std::unique_ptr<store::Watch> watch_;
  std::map<ObjectKey, Cached> objects_;
  std::map<std::string, std::set<ObjectKey>> byNode_;   // node -> bound roots
  std::map<ObjectKey, std::set<ObjectKey>> referrers_;  // referenced -> roots referencing it
  // Objects the store could not read at load (damaged on disk): their placement is unknown, so
  // a node that holds one keeps it (no DELETE) until an event rewrites or deletes it.
  std::set<ObjectKey> damaged_;
  std::map<std::string, NodeSession> sessions_;

  // Command queue and wakeups.
  Mutex mu_;
  std::condition_variable cv_;
  std::deque<Command> commands_ EP_GUARDED_BY(mu_);
  bool wake_ EP_GUARDED_BY(mu_) = false;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ep::cloudhub
