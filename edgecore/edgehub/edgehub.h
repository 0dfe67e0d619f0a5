#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/edgehub/stream_handler.h"
#include "edgecore/metamanager/metamanager.h"
#include "proto/tunnel.pb.h"

namespace ep::edgecore::certmanager {
class NodeCredentials;
}

namespace ep::edgecore::edgehub {

struct EdgeHubOptions {
  // HOST:PORT of cloudhub, or several, comma-separated (cloudcore replicas): the first attempt
  // goes to a random one, and every later attempt (after a failure or a lost connection) to a
  // random other one, so that nodes spread over the replicas. A name that resolves to several
  // addresses is tried in the resolver's order within one attempt.
  std::string cloud = "127.0.0.1:6444";
  std::string nodeName;
  std::string version = "0.0.0";
  size_t maxInFlightReports = 256;  // reports sent and not yet acknowledged
  size_t sendQueueLimit = 2048;     // messages waiting for the single in-flight write
  size_t eventQueueLimit = 4096;    // cloud messages waiting for the worker
  std::chrono::milliseconds initialBackoff{500};
  std::chrono::milliseconds maxBackoff{30000};
  std::chrono::milliseconds handshakeTimeout{30000};
  // Keepalive per docs/tunnel.md (tests may shorten nothing here; kept configurable).
  int keepaliveTimeMs = 30000;
  int keepaliveTimeoutMs = 20000;
  // The node's identity (mTLS, docs/security.md): each connection presents its current
  // certificate and verifies the cloud with the cluster CA; at 80% of the certificate's
  // lifetime a new one is asked for over the open stream and used from the next connection.
  // Null: plaintext (in-process tests only). Must outlive the hub.
  certmanager::NodeCredentials* credentials = nullptr;
  // Lists kFeatureInteractiveStreams in every Hello: the stream handler (set before start() or
  // later, once the runtime is known) serves interactive exec and attach.
  bool interactiveStreams = false;
  // Lists kFeaturePortForward: the stream handler serves STREAM_KIND_PORT_FORWARD.
  bool portForward = false;
};

// Connection state for /status and logs.
struct TunnelState {
  bool connected = false;
  int64_t disconnectedSinceMillis = 0;  // wall clock; 0 while connected
  std::string lastError;                // last refusal reason or call status
  uint64_t connects = 0;                // accepted handshakes so far
  std::string cloud;                    // the address connected to (or tried last)
  int64_t ackedSyncRevision = 0;        // last SyncAck sent
  uint64_t ackedReportSequence = 0;     // last ReportAck received
  // Consecutive connection attempts without progress; the reconnect backoff grows with it. An
  // accepted handshake does not reset it while the last Sync could not be applied (a full disk:
  // reconnecting at once would only resend the same difference); an applied Sync does.
  int reconnectAttempt = 0;
  std::string syncError;  // why the last Sync was not applied; "" once one is
};

class Connection;

// The tunnel client (docs/tunnel.md). Dials the cloud, performs the Hello handshake, applies
// Syncs to the metamanager and acknowledges them, streams the outbox and deletes acknowledged
// reports; reconnects with capped exponential backoff and full jitter.
//
// Threads: a supervisor thread (dial, handshake timeout, backoff, reconnect) and a worker
// thread (every SQLite call: applySync, acknowledge, reading the outbox), plus the I/O thread
// of the current attempt's grpclite channel (common/grpclite: gRPC over nghttp2, no gRPC C core
// on the edge). Its handlers only move messages between the stream and the worker's bounded
// queue, never block and never touch SQLite. At most one read and one write are in flight per
// stream; the send queue is bounded (overflow cancels the stream, which then resyncs through the
// inventory).
//
// start()/stop() from one owner thread. state(), statusJson() and wakeOutbox() are thread-safe.
class EdgeHub {
 public:
  EdgeHub(EdgeHubOptions options, metamanager::MetaManager& cache, Clock& clock);
  ~EdgeHub();
  EdgeHub(const EdgeHub&) = delete;
  EdgeHub& operator=(const EdgeHub&) = delete;

  Status start();
  void stop();

  TunnelState state() const;
  nlohmann::json statusJson() const;
  // New outbox entries are waiting; non-blocking, callable from any thread.
  void wakeOutbox();
  // Ends the current (accepted) connection so that a new Hello and its inventory go out: the
  // cloud then sends what the inventory lacks (objects the cache found damaged and removed).
  // Non-blocking, callable from any thread.
  void resync(const std::string& why);
  // Stream messages (StreamOpen/Cancel/Window) go to `handler`; without one, StreamOpen is
  // answered with StreamClose "streaming is not enabled on this node". Thread-safe, may be
  // called before or after start(); `handler` must stay valid until stop() returned.
  void setStreamHandler(StreamHandler* handler) { streamHandler_.store(handler); }
  // Rule messages (RouteDeliver) go to `handler`; without one they are answered with an error
  // RouteResult. Same contract as setStreamHandler.
  void setRouteHandler(RouteHandler* handler) { routeHandler_.store(handler); }
  // Model blob chunks go to `handler`; without one they are dropped. Same contract; a handler
  // set while the tunnel is up is told so (onTunnelUp) by the worker, in order with the
  // connection's own events.
  void setBlobHandler(BlobHandler* handler);
  // Sends `message` on the current connection if its handshake was accepted and the cloud listed
  // `feature` in its HelloReply (an older cloud ends a stream on a message kind it does not
  // know); false otherwise, and false when the send queue is full (the message is dropped, the
  // stream kept). Nothing is kept: for messages a later one replaces, such as resource metrics
  // ("resource-metrics"). Thread-safe, never blocks.
  bool sendIfConnected(edgeplane::tunnel::v1::EdgeMessage&& message, const std::string& feature);
  // A number naming the current connection (it changes with every new one) when its handshake
  // was accepted and the cloud listed `feature`; 0 otherwise. Thread-safe, never blocks.
  uint64_t connectionWith(const std::string& feature) const;
  // sendIfConnected() on the connection numbered `connection` (connectionWith()) only: false
  // once another one replaced it. Thread-safe, never blocks.
  bool sendOnConnection(uint64_t connection, edgeplane::tunnel::v1::EdgeMessage&& message);

 private:
  friend class Connection;
  struct Event {
    enum Type { kHelloReply, kSync, kReportAck, kCertificateResponse, kBlobHandlerSet } type;
    uint64_t gen = 0;
    edgeplane::tunnel::v1::CloudMessage msg;
  };

  // Called from the channel's I/O thread (non-blocking).
  void onStreamMessage(uint64_t gen, edgeplane::tunnel::v1::CloudMessage& msg);
  void onRouteDeliver(uint64_t gen, edgeplane::tunnel::v1::CloudMessage& msg);
  void onMessage(uint64_t gen, edgeplane::tunnel::v1::CloudMessage&& msg);
  void onDone(uint64_t gen);

  void runSupervisor();
  void runWorker();
  void handle(Event& e);
  void pumpOutbox();
  // Worker: asks for a new certificate when the current one is due (one request at a time).
  void maybeRenewCertificate();
  bool sendCurrent(uint64_t gen, edgeplane::tunnel::v1::EdgeMessage&& m);
  void cancelCurrent(uint64_t gen, const std::string& why);
  Result<edgeplane::tunnel::v1::EdgeMessage> buildHello();
  std::chrono::milliseconds nextBackoff();

  const EdgeHubOptions options_;
  const std::vector<std::string> clouds_;  // options_.cloud, split
  metamanager::MetaManager& cache_;
  std::atomic<StreamHandler*> streamHandler_{nullptr};
  std::atomic<RouteHandler*> routeHandler_{nullptr};
  std::atomic<BlobHandler*> blobHandler_{nullptr};
  Clock& clock_;

  // applyMu_ orders "a new connection generation + its Hello inventory" against applySync: a
  // Sync from an older stream is never applied after the new Hello's inventory was read.
  Mutex applyMu_;

  mutable Mutex mu_;
  std::condition_variable cv_;  // supervisor and worker wait on it
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  uint64_t gen_ EP_GUARDED_BY(mu_) = 0;  // written under applyMu_ too
  std::shared_ptr<Connection> current_ EP_GUARDED_BY(mu_);
  bool accepted_ EP_GUARDED_BY(mu_) = false;                   // current_ passed the handshake
  std::vector<std::string> cloudFeatures_ EP_GUARDED_BY(mu_);  // HelloReply.features of current_
  bool refused_ EP_GUARDED_BY(mu_) = false;
  std::deque<Event> events_ EP_GUARDED_BY(mu_);  // bounded by eventQueueLimit
  bool outboxWake_ EP_GUARDED_BY(mu_) = false;
  TunnelState state_ EP_GUARDED_BY(mu_);

  // Worker-only state (no lock).
  uint64_t pumpGen_ = 0;                  // stream the outbox is being sent on
  uint64_t lastSent_ = 0;                 // highest report sequence sent on pumpGen_
  std::deque<uint64_t> inFlight_;         // sent, unacknowledged sequences on pumpGen_
  uint64_t renewalGen_ = 0;               // stream a CertificateRequest is outstanding on (0: none)
  uint64_t blobUpGen_ = 0;                // stream a blob handler was last told is up
  BlobHandler* blobUpHandler_ = nullptr;  // the handler told
  std::chrono::steady_clock::time_point renewalSentAt_;

  // Supervisor-only state.
  int attempt_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
  size_t cloudIndex_ = 0;  // into clouds_: where the next attempt goes (random at first)
  int64_t lastUnreachableLog_ = 0;

  std::thread supervisor_;
  std::thread worker_;
};

}  // namespace ep::edgecore::edgehub
