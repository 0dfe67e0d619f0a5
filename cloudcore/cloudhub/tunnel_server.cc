#include "cloudcore/cloudhub/tunnel_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "cloudcore/certs/node_certs.h"
#include "cloudcore/cloudhub/dispatcher.h"
#include "cloudcore/cloudhub/metrics.h"
#include "cloudcore/cloudhub/node_leases.h"
#include "cloudcore/cloudhub/node_state_store.h"
#include "cloudcore/cloudhub/report_applier.h"
#include "cloudcore/cloudhub/route_broker.h"
#include "cloudcore/cloudhub/stream_broker.h"
#include "cloudcore/cloudhub/tunnel_entry.h"
#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "common/api/names.h"
#include "common/api/object_util.h"
#include "common/grpclite/stream_server.h"
#include "common/pki/pki.h"
#include "common/thread_annotations.h"
#include "common/tunnel_features.h"
#include "proto/tunnel.pb.h"

namespace ep::cloudhub {
namespace {

namespace pb = edgeplane::tunnel::v1;
using grpclite::RpcCode;
using grpclite::RpcStatus;

constexpr char kConnectMethod[] = "/edgeplane.tunnel.v1.Tunnel/Connect";
constexpr char kClusterInfoMethod[] = "/edgeplane.tunnel.v1.Tunnel/GetClusterInfo";
constexpr char kJoinMethod[] = "/edgeplane.tunnel.v1.Tunnel/Join";

constexpr uint32_t kProtocolVersion = kTunnelProtocolVersion;
constexpr int kMaxReceiveBytes = 4 * 1024 * 1024;

std::string printable(const std::string& s, size_t max = 80) {
  return printableText(s, max);
}

class Session;

PeerIdentity peerIdentity(const grpclite::PeerInfo& peer) {
  if (peer.certificate == nullptr) return {};
  auto info = pki::certificateInfo(peer.certificate);
  if (!info) return {};
  return identityFromInfo(*info);
}

// The stream's observer: forwards to the session, which it keeps alive until onDone.
class Reactor final : public grpclite::ServerCallObserver {
 public:
  explicit Reactor(std::shared_ptr<Session> session) : session_(std::move(session)) {}
  void onReadDone(bool ok, std::string&& message) override;
  void onWriteDone(bool ok) override;
  void onCancel() override;
  void onDone() override;

 private:
  std::shared_ptr<Session> session_;
};

// A unary call: one request, then `handle` answers through `respond` (any thread, once).
class UnaryCall final : public grpclite::ServerCallObserver,
                        public std::enable_shared_from_this<UnaryCall> {
 public:
  using Respond = std::function<void(RpcStatus, std::string)>;
  using Handler = std::function<void(std::string request, Respond respond)>;
  UnaryCall(std::shared_ptr<grpclite::ServerCall> call, Handler handle)
      : call_(std::move(call)), handle_(std::move(handle)) {}
  void onReadDone(bool ok, std::string&& message) override {
    if (!ok) {
      call_->finish({RpcCode::kInvalidArgument, "no request message"});
      return;
    }
    auto self = shared_from_this();
    handle_(std::move(message), [self](RpcStatus status, std::string response) {
      if (!status.ok()) {
        self->call_->finish(std::move(status));
      } else {
        self->call_->startWrite(std::move(response));
      }
    });
  }
  void onWriteDone(bool ok) override {
    call_->finish(ok ? RpcStatus{} : RpcStatus{RpcCode::kUnavailable, "write failed"});
  }
  void onCancel() override { call_->finish({RpcCode::kCancelled, "cancelled"}); }
  void onDone() override { handle_ = nullptr; }

 private:
  const std::shared_ptr<grpclite::ServerCall> call_;
  Handler handle_;
};

}  // namespace

struct TunnelServer::Impl final {
  Impl(TunnelServerOptions o, registry::Registry& r, Dispatcher& d, NodeStateStore& n,
       ReportApplier& a, Metrics& m, Executor e)
      : options(std::move(o)),
        registry(r),
        dispatcher(d),
        nodeState(n),
        applier(a),
        metrics(m),
        executor(std::move(e)) {}

  // Calls, by method (stream server I/O threads; must not block).
  std::shared_ptr<grpclite::ServerCallObserver> connect(const grpclite::PeerInfo& peer,
                                                        std::shared_ptr<grpclite::ServerCall> call);
  void getClusterInfo(const std::string& request, const UnaryCall::Respond& respond);
  void join(const std::string& peer, const std::string& request, UnaryCall::Respond respond);

  bool tls() const { return !options.tlsCertPem.empty(); }
  // Closes the streams of Nodes that were deleted (their certificates are revoked).
  void revocationLoop();

  // Publishes `session` as the node's stream; returns the one it replaces.
  std::shared_ptr<Session> registerSession(const std::string& node,
                                           std::shared_ptr<Session> session);
  void unregisterSession(const std::string& node, const Session* session);

  const TunnelServerOptions options;
  registry::Registry& registry;
  Dispatcher& dispatcher;
  NodeStateStore& nodeState;
  ReportApplier& applier;
  Metrics& metrics;
  const Executor executor;
  StreamBroker* broker = nullptr;                  // set before start(), then read-only
  RouteBroker* routes = nullptr;                   // set before start(), then read-only
  BlobRequestHandler* blobs = nullptr;             // set before start(), then read-only
  ResourceMetricsSink* resourceMetrics = nullptr;  // likewise
  NodeLeases* leases = nullptr;                    // likewise

  // A node's reports waiting for, or being, applied, by object ("kind/namespace/name"); the
  // front of each queue is the one running. Shared by the node's streams, so an old stream
  // still applying and its replacement never apply reports of one object out of order.
  struct NodeReports {
    Mutex mu;
    std::map<std::string, std::deque<std::pair<std::shared_ptr<Session>, ReportInput>>> objects
        EP_GUARDED_BY(mu);
  };
  std::shared_ptr<NodeReports> nodeReports(const std::string& node) {
    MutexLock l(mu);
    auto& r = reportQueues[node];
    if (!r) r = std::make_shared<NodeReports>();
    return r;
  }
  // Queues `input` behind the reports of the same object; applies it on the worker pool.
  void submitReport(const std::string& node, std::shared_ptr<Session> session, std::string key,
                    ReportInput input);
  // Worker pool: applies the front report of `key`, then schedules the next one of the object.
  void applyObject(const std::shared_ptr<NodeReports>& reports, const std::string& key);

  // Ends streams that sent nothing within options.helloTimeout; runs once a second.
  void reapLoop();

  std::unique_ptr<grpclite::StreamServer> server;
  int port = 0;

  std::thread revoker;  // runs revocationLoop while the server runs (TLS only)

  // The serials each Node lists (certs::activeSerials), kept by revocationLoop from its list
  // and watch, so that a reconnecting node's Hello is checked without a store read. A node or
  // serial not found here is looked up in the store (the watch may lag a join or renewal).
  bool serialKnownActive(const std::string& node, const std::string& serial) {
    MutexLock l(serialsMu);
    auto it = activeSerials.find(node);
    return it != activeSerials.end() &&
           std::find(it->second.begin(), it->second.end(), serial) != it->second.end();
  }
  Mutex serialsMu;
  std::map<std::string, std::vector<std::string>> activeSerials EP_GUARDED_BY(serialsMu);

  Mutex reapMu;
  std::condition_variable reapCv;
  // Streams still waiting for their first message, with their deadline.
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::weak_ptr<Session>>>
      awaitingHello EP_GUARDED_BY(reapMu);
  bool reapStop EP_GUARDED_BY(reapMu) = false;
  std::thread reaper;
  mutable Mutex mu;
  std::map<std::string, std::shared_ptr<Session>> sessions EP_GUARDED_BY(mu);
  std::map<std::string, std::shared_ptr<NodeReports>> reportQueues EP_GUARDED_BY(mu);
};

namespace {

// One edge stream. Shared by its Reactor (until OnDone), the Dispatcher (as SyncSink) and tasks
// on the worker pool, so every path may outlive the gRPC call; after OnDone all calls are
// no-ops.
//
// Invariants (all under mu_): Finish is called once, only when no write is in flight and no
// thread is about to call into the reactor (opsStarting_ == 0); hence the reactor, which gRPC
// deletes after OnDone (which follows Finish), is alive for every StartRead/StartWrite/
// TryCancel. Reads are driven by the reaction or worker continuation that finished handling the
// previous message, so at most one read is in flight and in_ has a single user at a time.
class Session final : public SyncSink, public std::enable_shared_from_this<Session> {
  friend struct TunnelServer::Impl;  // applyObject runs applyOne

 public:
  Session(TunnelServer::Impl& server, std::shared_ptr<grpclite::ServerCall> call,
          const grpclite::PeerInfo& peer)
      : server_(server),
        call_(std::move(call)),
        identity_(peerIdentity(peer)),
        context_peer_(peer.address) {}

  bool send(CloudMessagePtr message) override {
    CloudMessagePtr toWrite;
    std::shared_ptr<grpclite::ServerCall> call;
    bool overflow = false;
    {
      MutexLock l(mu_);
      if (call_ == nullptr || finishStatus_) return false;
      if (queue_.size() >= server_.options.sendQueueLimit) {
        overflow = true;
      } else {
        queue_.push_back(std::move(message));
        if (!writing_) {
          writing_ = true;
          inflight_ = std::move(queue_.front());
          queue_.pop_front();
          toWrite = inflight_;
          call = call_;
        }
      }
    }
    if (overflow) {
      spdlog::warn("cloudhub: node {}: send queue full ({} messages); disconnecting it",
                   printable(node_), server_.options.sendQueueLimit);
      finish({RpcCode::kResourceExhausted, "send queue overflow; reconnect to resync"}, false);
      return false;
    }
    if (toWrite) call->startWrite(toWrite->SerializeAsString());
    return true;
  }

  void close(const std::string& reason) override { finish({RpcCode::kUnavailable, reason}, false); }

  // Ends the stream with `status`. With `drain`, queued messages are written first (refusals:
  // HelloReply then status); otherwise they are dropped and an in-flight write is cancelled.
  void finish(RpcStatus status, bool drain) {
    auto self = shared_from_this();
    bool cancel = false;
    MutexLock l(mu_);
    if (finishStatus_ || call_ == nullptr) return;
    finishStatus_ = std::move(status);
    drain_ = drain;
    if (!drain) queue_.clear();
    if (writing_ && !drain) {
      cancel = true;  // the write may be stuck behind flow control: unblock it
      ++opsStarting_;
    }
    if (cancel) {
      auto call = call_;
      l.unlock();
      call->cancel();
      l.lock();
      --opsStarting_;
    }
    auto finishNow = takeFinishLocked();
    l.unlock();
    if (finishNow) finishNow();
  }

  void startRead() {
    std::shared_ptr<grpclite::ServerCall> call;
    {
      MutexLock l(mu_);
      if (finishStatus_ || call_ == nullptr) return;
      ++opsStarting_;
      call = call_;
    }
    call->startRead();
    std::function<void()> finishNow;
    {
      MutexLock l(mu_);
      --opsStarting_;
      finishNow = takeFinishLocked();
    }
    if (finishNow) finishNow();
  }

  // The serial of the client certificate (TLS only; immutable).
  const std::string& serial() const { return identity_.serial; }

  // True once the first message arrived (or the stream ended). Thread-safe.
  bool firstMessageSeen() const { return firstMessage_; }

  void onReadDone(bool ok, const std::string& bytes) {
    firstMessage_ = true;
    if (!ok) {  // the edge closed its side or the call was cancelled
      finish({}, true);
      return;
    }
    if (!in_.ParseFromString(bytes)) {
      protocolError("malformed message");
      return;
    }
    try {
      if (!helloDone_) {
        handleHello();
        return;
      }
      switch (in_.body_case()) {
        case pb::EdgeMessage::kSyncAck:
          handleSyncAck(in_.sync_ack().revision());
          return;
        case pb::EdgeMessage::kReport:
          handleReport();
          return;
        case pb::EdgeMessage::kStreamData:
          // The broker's observers never block, so this stays a non-blocking reaction.
          if (server_.broker) server_.broker->onData(this, in_.stream_data());
          startRead();
          return;
        case pb::EdgeMessage::kStreamClose:
          if (server_.broker) server_.broker->onClose(this, in_.stream_close());
          startRead();
          return;
        case pb::EdgeMessage::kStreamInputAck:
          if (server_.broker) server_.broker->onInputAck(this, in_.stream_input_ack());
          startRead();
          return;
        case pb::EdgeMessage::kRouteResult:
          // Route callbacks never block either.
          if (server_.routes) server_.routes->onResult(this, in_.route_result());
          startRead();
          return;
        case pb::EdgeMessage::kBlobRequest:
          handleBlobRequest();
          return;
        case pb::EdgeMessage::kResourceMetrics:
          // The sink only replaces the node's latest sample: a non-blocking reaction.
          if (server_.resourceMetrics) {
            server_.resourceMetrics->onResourceMetrics(node_, in_.resource_metrics());
          }
          startRead();
          return;
        case pb::EdgeMessage::kLeaseRenewal:
          // renew() only marks the node due and queues a write: a non-blocking reaction.
          if (server_.leases) server_.leases->renew(node_);
          startRead();
          return;
        case pb::EdgeMessage::kCertificateRequest:
          handleCertificateRequest();
          return;
        case pb::EdgeMessage::kHello:
          protocolError("Hello sent twice on one stream");
          return;
        default:
          protocolError("empty or unknown message");
          return;
      }
    } catch (const std::exception& e) {
      spdlog::error("cloudhub: node {}: internal error: {}", printable(node_), e.what());
      finish({RpcCode::kInternal, "internal error"}, false);
    }
  }

  void onWriteDone(bool ok) {
    auto self = shared_from_this();
    CloudMessagePtr next;
    std::shared_ptr<grpclite::ServerCall> call;
    std::function<void()> finishNow;
    {
      MutexLock l(mu_);
      writing_ = false;
      inflight_.reset();
      if (!ok) {
        if (!finishStatus_) finishStatus_ = RpcStatus{RpcCode::kUnavailable, "write failed"};
        drain_ = false;
        queue_.clear();
      }
      if (!queue_.empty() && (!finishStatus_ || drain_)) {
        writing_ = true;
        inflight_ = std::move(queue_.front());
        queue_.pop_front();
        next = inflight_;
        call = call_;
      } else {
        finishNow = takeFinishLocked();
      }
    }
    if (finishNow) finishNow();
    if (next) call->startWrite(next->SerializeAsString());
  }

  void onCancel() { finish({RpcCode::kCancelled, "cancelled"}, false); }

  void onDone() {
    {
      MutexLock l(mu_);
      call_ = nullptr;
      queue_.clear();
      inflight_.reset();
    }
    if (accepted_) {
      server_.unregisterSession(node_, this);
      server_.dispatcher.detach(node_, this);
      if (server_.broker) server_.broker->detach(node_, this);
      if (server_.routes) server_.routes->detach(node_, this);
      if (server_.leases) server_.leases->forget(node_);
      spdlog::info("cloudhub: node {} disconnected", node_);
    }
  }

  void ackReports(uint64_t sequence) {
    auto msg = std::make_shared<pb::CloudMessage>();
    msg->mutable_report_ack()->set_sequence(sequence);
    send(std::move(msg));
  }

 private:
  // The call's finish, once the stream is ready for it (nothing in flight, queue drained as
  // asked), for the caller to run without the lock; null otherwise or when already taken.
  std::function<void()> takeFinishLocked() EP_REQUIRES(mu_) {
    if (!finishStatus_ || finishCalled_ || writing_ || opsStarting_ != 0 || call_ == nullptr ||
        (drain_ && !queue_.empty())) {
      return nullptr;
    }
    finishCalled_ = true;
    return [call = call_, status = *finishStatus_, self = shared_from_this()]() mutable {
      call->finish(std::move(status));
    };
  }

  void protocolError(const std::string& why) {
    spdlog::warn("cloudhub: node {}: protocol error: {}; closing the stream", printable(node_),
                 why);
    finish({RpcCode::kInvalidArgument, why}, false);
  }

  void refuse(RpcCode code, const std::string& metricReason, const std::string& reason) {
    spdlog::warn("cloudhub: refused tunnel from {}: {}", context_peer_, reason);
    server_.metrics.addRefused(metricReason);
    auto msg = std::make_shared<pb::CloudMessage>();
    auto* reply = msg->mutable_hello_reply();
    reply->set_accepted(false);
    reply->set_reason(reason);
    reply->set_protocol_version(kProtocolVersion);
    reply->set_cloudcore_version(server_.options.version);
    send(std::move(msg));
    finish({code, reason}, true);
  }

  void handleHello() {
    helloDone_ = true;
    HelloCheck check = checkHello(in_, identity_, server_.tls());
    if (!check.accepted) {
      if (check.metricReason == "identity_mismatch") {
        spdlog::warn(
            "cloudhub: refused tunnel from {}: certificate of node \"{}\" sent a Hello "
            "naming node \"{}\"",
            context_peer_, identity_.node, printable(in_.hello().node_name()));
      }
      refuse(check.code, check.metricReason, check.reason);
      return;
    }
    if (check.skipped > 0) {
      spdlog::warn("cloudhub: node {}: ignored {} malformed inventory entries", check.node,
                   check.skipped);
    }
    std::string node = std::move(check.node);
    std::vector<InventoryEntry> inventory = std::move(check.inventory);
    std::string edgeVersion = std::move(check.edgeVersion);
    for (const auto& f : in_.hello().features()) {
      if (f == kFeatureInteractiveStreams) streamFeatures_.interactive = true;
      if (f == kFeaturePortForward) streamFeatures_.portForward = true;
    }
    int64_t lastApplied = check.lastAppliedRevision;
    if (server_.options.nodeCertificates != nullptr) {
      // The certificate must still be the node's (not revoked): known from the Node watch, or
      // else a store read on the worker pool.
      if (server_.serialKnownActive(node, identity_.serial)) {
        accept(std::move(node), std::move(inventory), edgeVersion, lastApplied);
        return;
      }
      auto self = shared_from_this();
      server_.executor([self, node = std::move(node), inventory = std::move(inventory), edgeVersion,
                        lastApplied]() mutable {
        Status active =
            self->server_.options.nodeCertificates->checkActive(node, self->identity_.serial);
        if (!active.isOk()) {
          bool revoked = active.code() == Code::kForbidden;
          self->refuse(revoked ? RpcCode::kPermissionDenied : RpcCode::kUnavailable,
                       revoked ? "revoked" : "store_error", active.message());
          return;
        }
        self->accept(std::move(node), std::move(inventory), edgeVersion, lastApplied);
      });
      return;
    }
    if (!server_.options.manualRegistration) {
      accept(std::move(node), std::move(inventory), edgeVersion, lastApplied);
      return;
    }
    // Manual registration: the Node must exist. The lookup reads the store: worker pool.
    auto self = shared_from_this();
    server_.executor([self, node = std::move(node), inventory = std::move(inventory), edgeVersion,
                      lastApplied]() mutable {
      const api::KindInfo* kind = api::findByApiVersionKind("v1", "Node");
      auto got = self->server_.registry.get(*kind, "", node);
      if (!got.isOk()) {
        if (got.status().code() == Code::kNotFound) {
          self->refuse(RpcCode::kPermissionDenied, "unknown_node",
                       "node \"" + node + "\" is not registered and nodeRegistration is manual");
        } else {
          self->refuse(RpcCode::kUnavailable, "store_error",
                       "cannot look up node \"" + node + "\": " + got.status().message());
        }
        return;
      }
      self->accept(std::move(node), std::move(inventory), edgeVersion, lastApplied);
    });
  }

  void accept(std::string node, std::vector<InventoryEntry> inventory,
              const std::string& edgeVersion, int64_t lastApplied) {
    {
      MutexLock l(mu_);
      if (finishStatus_ || call_ == nullptr) return;  // gone while we looked it up
    }
    node_ = std::move(node);
    counters_ = server_.metrics.node(node_);
    accepted_ = true;
    auto self = shared_from_this();
    if (auto old = server_.registerSession(node_, self)) {
      spdlog::info("cloudhub: node {}: new stream replaces the previous one", node_);
      old->finish({RpcCode::kCancelled, "replaced by a newer stream"}, false);
    }
    auto msg = std::make_shared<pb::CloudMessage>();
    auto* reply = msg->mutable_hello_reply();
    reply->set_accepted(true);
    reply->set_protocol_version(kProtocolVersion);
    reply->set_cloudcore_version(server_.options.version);
    reply->set_last_report_sequence(server_.nodeState.persistedReportSequence(node_));
    if (server_.resourceMetrics) reply->add_features(kFeatureResourceMetrics);
    if (server_.leases) reply->add_features(kFeatureNodeLease);
    send(std::move(msg));
    spdlog::info(
        "cloudhub: node {} connected from {} (edgecore {}, last applied revision {}, {} cached "
        "objects)",
        node_, context_peer_, edgeVersion, lastApplied, inventory.size());
    server_.dispatcher.attach(node_, self, std::move(inventory));
    if (server_.broker) server_.broker->attach(node_, self, streamFeatures_);
    if (server_.routes) server_.routes->attach(node_, self);
    startRead();
  }

  // Renewal over the open stream: signed on the worker pool, answered on the stream.
  // Blob reads run on the handler's threads; the reaction only queues them.
  void handleBlobRequest() {
    if (server_.blobs != nullptr) {
      server_.blobs->onBlobRequest(node_, shared_from_this(), in_.blob_request());
    } else {
      auto msg = std::make_shared<pb::CloudMessage>();
      auto* c = msg->mutable_blob_chunk();
      c->set_id(in_.blob_request().id());
      c->set_digest(in_.blob_request().digest());
      c->set_offset(in_.blob_request().offset());
      c->set_error("model delivery is not enabled on this cloudcore");
      send(std::move(msg));
    }
    startRead();
  }

  void handleCertificateRequest() {
    auto* certs = server_.options.nodeCertificates;
    std::string csr = in_.certificate_request().csr();
    if (certs == nullptr) {
      auto msg = std::make_shared<pb::CloudMessage>();
      msg->mutable_certificate_response()->set_error("this cloudcore does not issue certificates");
      send(std::move(msg));
      startRead();
      return;
    }
    auto self = shared_from_this();
    server_.executor([self, certs, csr = std::move(csr)] {
      auto cert = certs->renew(self->node_, csr);
      auto msg = std::make_shared<pb::CloudMessage>();
      if (cert) {
        msg->mutable_certificate_response()->set_certificate(*cert);
      } else {
        spdlog::warn("cloudhub: node {}: certificate renewal refused: {}", self->node_,
                     cert.status().message());
        msg->mutable_certificate_response()->set_error(cert.status().message());
      }
      self->send(std::move(msg));
      self->startRead();
    });
  }

  void handleSyncAck(int64_t revision) {
    if (revision < 0 || revision > server_.dispatcher.revision()) {
      spdlog::warn("cloudhub: node {}: ignored SyncAck for revision {} (cloud is at {})", node_,
                   revision, server_.dispatcher.revision());
    } else {
      int64_t prev = counters_->ackedRevision.load();
      while (prev < revision && !counters_->ackedRevision.compare_exchange_weak(prev, revision)) {
      }
      server_.nodeState.recordAck(node_, revision);
    }
    startRead();
  }

  // Reports are applied concurrently for different objects (so the store's group commit shares
  // fsyncs among them) and in order for one object; at most kMaxReportsInFlight per stream are
  // admitted before reading pauses. The node's applied sequence only advances over a prefix of
  // the stream's reports that are all done.
  void handleReport() {
    ReportInput input = reportInputOf(in_.report());
    if (uint64_t dropped = in_.report().dropped(); dropped > 0) {
      spdlog::warn("cloudhub: node {}: edge outbox dropped {} data entries", node_, dropped);
    }
    auto& state = server_.nodeState;
    if (input.sequence <= state.appliedReportSequence(node_) || input.sequence <= lastAdmitted_) {
      server_.metrics.addReportDuplicate();
      uint64_t persisted = state.persistedReportSequence(node_);
      // Not yet persisted: the flush after which it is acknowledged is pending.
      if (input.sequence <= persisted) ackReports(persisted);
      startRead();
      return;
    }
    lastAdmitted_ = input.sequence;
    bool read = true;
    {
      MutexLock l(reportMu_);
      if (reportFailed_) return;  // the stream is closing
      pendingReports_.push_back({input.sequence, false});
      if (pendingReports_.size() >= kMaxReportsInFlight) {
        readPaused_ = true;
        read = false;
      }
    }
    std::string key = std::to_string(input.kind) + "/" + input.namespace_ + "/" + input.name;
    server_.submitReport(node_, shared_from_this(), std::move(key), std::move(input));
    if (read) startRead();
  }

  // Worker pool (TunnelServer::Impl::applyObject): applies one admitted report.
  void applyOne(const ReportInput& input) {
    {
      MutexLock l(reportMu_);
      if (reportFailed_) return;  // closing: the edge sends it again on its next stream
    }
    ReportResult result;
    try {
      result = server_.applier.apply(node_, input);
    } catch (const std::exception& e) {  // a broken invariant must not stall the stream
      result = {ReportOutcome::kRejected, std::string("internal error: ") + e.what()};
    }
    switch (result.outcome) {
      case ReportOutcome::kApplied:
        server_.metrics.addReportApplied();
        break;
      case ReportOutcome::kRejected:
        spdlog::warn("cloudhub: node {}: report {} (kind {}) refused and acknowledged: {}", node_,
                     input.sequence, input.kind, result.detail);
        server_.metrics.addReportRejected();
        break;
      case ReportOutcome::kRetry: {
        spdlog::error("cloudhub: node {}: report {} not applied ({}); closing so the edge resends",
                      node_, input.sequence, result.detail);
        {
          MutexLock l(reportMu_);
          reportFailed_ = true;
        }
        finish({RpcCode::kUnavailable, "report not applied, retry later"}, false);
        return;
      }
    }
    uint64_t applied = 0;
    bool resume = false;
    {
      MutexLock l(reportMu_);
      for (auto& p : pendingReports_) {
        if (p.sequence == input.sequence) {
          p.done = true;
          break;
        }
      }
      while (!pendingReports_.empty() && pendingReports_.front().done) {
        applied = pendingReports_.front().sequence;
        pendingReports_.pop_front();
      }
      if (readPaused_ && pendingReports_.size() < kMaxReportsInFlight && !reportFailed_) {
        readPaused_ = false;
        resume = true;
      }
    }
    if (applied > 0) server_.nodeState.recordReportApplied(node_, applied);
    if (resume) startRead();
  }

  TunnelServer::Impl& server_;

  Mutex mu_;
  std::shared_ptr<grpclite::ServerCall> call_ EP_GUARDED_BY(mu_);  // null after onDone
  std::deque<CloudMessagePtr> queue_ EP_GUARDED_BY(mu_);
  CloudMessagePtr inflight_ EP_GUARDED_BY(mu_);  // the message being written
  bool writing_ EP_GUARDED_BY(mu_) = false;
  int opsStarting_ EP_GUARDED_BY(mu_) = 0;
  std::optional<RpcStatus> finishStatus_ EP_GUARDED_BY(mu_);
  bool drain_ EP_GUARDED_BY(mu_) = false;
  bool finishCalled_ EP_GUARDED_BY(mu_) = false;

  // Read side: touched by the one reaction or worker task handling the current message.
  // node_/counters_/accepted_ are set once in accept(), before the session is published.
  pb::EdgeMessage in_;
  const PeerIdentity identity_;     // from the TLS handshake; immutable
  const std::string context_peer_;  // "ipv4:ADDRESS:PORT"
  bool helloDone_ = false;
  StreamBroker::NodeFeatures streamFeatures_;  // what the Hello listed of stream features
  std::string node_;
  std::shared_ptr<NodeCounters> counters_;
  std::atomic<bool> accepted_{false};
  std::atomic<bool> firstMessage_{false};
  uint64_t lastAdmitted_ = 0;  // highest report sequence admitted on this stream

  // Report pipeline (handleReport/applyOne).
  static constexpr size_t kMaxReportsInFlight = 64;
  struct PendingReport {
    uint64_t sequence = 0;
    bool done = false;
  };
  Mutex reportMu_;
  std::deque<PendingReport> pendingReports_ EP_GUARDED_BY(reportMu_);  // admitted, in order
  bool readPaused_ EP_GUARDED_BY(reportMu_) = false;
  bool reportFailed_ EP_GUARDED_BY(reportMu_) = false;  // a report must be resent
};

void Reactor::onReadDone(bool ok, std::string&& message) {
  session_->onReadDone(ok, message);
}
void Reactor::onWriteDone(bool ok) {
  session_->onWriteDone(ok);
}
void Reactor::onCancel() {
  session_->onCancel();
}
void Reactor::onDone() {
  session_->onDone();
}

}  // namespace

void TunnelServer::Impl::submitReport(const std::string& node, std::shared_ptr<Session> session,
                                      std::string key, ReportInput input) {
  auto reports = nodeReports(node);
  bool start = false;
  {
    MutexLock l(reports->mu);
    auto& q = reports->objects[key];
    q.emplace_back(std::move(session), std::move(input));
    start = q.size() == 1;
  }
  if (start) executor([this, reports, key = std::move(key)] { applyObject(reports, key); });
}

void TunnelServer::Impl::applyObject(const std::shared_ptr<NodeReports>& reports,
                                     const std::string& key) {
  std::shared_ptr<Session> session;
  ReportInput input;
  {
    MutexLock l(reports->mu);
    auto& front = reports->objects[key].front();
    session = front.first;
    input = std::move(front.second);
  }
  session->applyOne(input);
  bool more = false;
  {
    MutexLock l(reports->mu);
    auto it = reports->objects.find(key);
    it->second.pop_front();
    more = !it->second.empty();
    if (!more) reports->objects.erase(it);
  }
  if (more) executor([this, reports, key] { applyObject(reports, key); });
}

std::shared_ptr<grpclite::ServerCallObserver> TunnelServer::Impl::connect(
    const grpclite::PeerInfo& peer, std::shared_ptr<grpclite::ServerCall> call) {
  auto session = std::make_shared<Session>(*this, std::move(call), peer);
  auto reactor = std::make_shared<Reactor>(session);
  {
    MutexLock l(reapMu);
    awaitingHello.emplace_back(std::chrono::steady_clock::now() + options.helloTimeout, session);
  }
  session->startRead();
  return reactor;
}

void TunnelServer::Impl::getClusterInfo(const std::string& request,
                                        const UnaryCall::Respond& respond) {
  pb::ClusterInfoRequest in;
  if (!in.ParseFromString(request)) {
    respond({RpcCode::kInvalidArgument, "malformed ClusterInfoRequest"}, "");
    return;
  }
  pb::ClusterInfo response;
  response.set_ca_certificate(options.caPem);
  response.set_cloudcore_version(options.version);
  respond({}, response.SerializeAsString());
}

void TunnelServer::Impl::join(const std::string& peer, const std::string& request,
                              UnaryCall::Respond respond) {
  if (options.nodeCertificates == nullptr) {
    respond({RpcCode::kUnimplemented, "joining is not enabled"}, "");
    return;
  }
  auto in = std::make_shared<pb::JoinRequest>();
  if (!in->ParseFromString(request)) {
    respond({RpcCode::kInvalidArgument, "malformed JoinRequest"}, "");
    return;
  }
  executor([this, in, peer, respond = std::move(respond)] {
    auto cert = options.nodeCertificates->join(in->token(), in->node_name(), in->csr());
    if (!cert) {
      const Status& s = cert.status();
      RpcCode code = s.code() == Code::kUnauthorized ? RpcCode::kUnauthenticated
                     : s.code() == Code::kForbidden  ? RpcCode::kPermissionDenied
                     : s.code() == Code::kInvalid || s.code() == Code::kBadRequest
                         ? RpcCode::kInvalidArgument
                         : RpcCode::kUnavailable;
      spdlog::warn("cloudhub: refused join of node \"{}\" from {}: {}", printable(in->node_name()),
                   peer, s.message());
      metrics.addRefused("join_refused");
      respond({code, s.message()}, "");
      return;
    }
    pb::JoinResponse response;
    response.set_certificate(*cert);
    response.set_ca_certificate(options.caPem);
    respond({}, response.SerializeAsString());
  });
}

void TunnelServer::Impl::revocationLoop() {
  // Follows Nodes with a watch (list, then watch from the list's revision; again after the
  // watch ends), keeping activeSerials. Deleting a Node revokes its certificates, and so does
  // removing a serial from its list: the stream using such a certificate is closed.
  const api::KindInfo* kind = api::findByApiVersionKind("v1", "Node");
  auto sessionOf = [this](const std::string& node) {
    MutexLock g(mu);
    auto it = sessions.find(node);
    return it != sessions.end() ? it->second : nullptr;
  };
  auto closeIfOpen = [&](const std::string& node) {
    std::shared_ptr<Session> session = sessionOf(node);
    if (!session) return;
    spdlog::warn("cloudhub: node {} was deleted: closing its tunnel (certificate revoked)", node);
    metrics.addRefused("revoked");
    session->close("node deleted: its certificate is revoked");
  };
  auto serialsChanged = [&](const std::string& node, std::vector<std::string> serials) {
    std::shared_ptr<Session> session = sessionOf(node);
    if (session && std::find(serials.begin(), serials.end(), session->serial()) == serials.end()) {
      spdlog::warn("cloudhub: node {}: certificate {} is no longer listed: closing its tunnel",
                   node, session->serial());
      metrics.addRefused("revoked");
      session->close("certificate revoked");
    }
    MutexLock l(serialsMu);
    activeSerials[node] = std::move(serials);
  };
  std::unique_ptr<registry::ObjectWatch> watch;
  MutexLock l(reapMu);
  while (!reapStop) {
    l.unlock();
    if (!watch || watch->done()) {
      watch.reset();
      registry::ListQuery all;
      all.skipDamaged = true;  // a damaged Node is not a deleted one
      auto list = registry.list(*kind, "", all);
      if (list.isOk()) {
        std::set<std::string> present;
        std::map<std::string, std::vector<std::string>> serials;
        for (const auto& n : list->items) {
          present.insert(api::stringAt(n, "metadata.name"));
          serials[api::stringAt(n, "metadata.name")] = certs::activeSerials(n);
        }
        {
          MutexLock g(serialsMu);
          // A Node the store cannot read keeps its tunnel and the serials known before.
          for (const auto& k : list->damaged) {
            present.insert(k.name);
            if (auto it = activeSerials.find(k.name); it != activeSerials.end()) {
              serials[k.name] = it->second;
            }
          }
          activeSerials.swap(serials);
        }
        std::vector<std::string> open;
        {
          MutexLock g(mu);
          for (const auto& [node, session] : sessions) open.push_back(node);
        }
        for (const auto& node : open) {
          if (!present.count(node)) closeIfOpen(node);
        }
        auto w = registry.watch(*kind, "", {}, list->resourceVersion);
        if (w.isOk()) {
          watch = std::move(w).value();
          watch->setNotify([this] { reapCv.notify_all(); });
        }
      }
    }
    if (watch) {
      for (auto& e : watch->poll(1024)) {
        if (!e.object) continue;
        const std::string name = api::stringAt(*e.object, "metadata.name");
        if (e.type == "DELETED") {
          {
            MutexLock g(serialsMu);
            activeSerials.erase(name);
          }
          closeIfOpen(name);
        } else {
          serialsChanged(name, certs::activeSerials(*e.object));
        }
      }
    }
    l.lock();
    l.waitFor(reapCv, options.revocationCheckInterval,
              [&]() EP_REQUIRES(reapMu) { return reapStop; });
  }
  l.unlock();
  if (watch) watch->stop();
}

void TunnelServer::Impl::reapLoop() {
  MutexLock l(reapMu);
  while (!reapStop) {
    l.waitFor(reapCv, std::chrono::seconds(1), [&]() EP_REQUIRES(reapMu) { return reapStop; });
    auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<Session>> late;
    std::erase_if(awaitingHello, [&](const auto& entry) {
      auto session = entry.second.lock();
      if (!session || session->firstMessageSeen()) return true;
      if (entry.first > now) return false;
      late.push_back(std::move(session));
      return true;
    });
    l.unlock();
    for (auto& session : late) {
      spdlog::warn("cloudhub: refused tunnel: no Hello within {} ms", options.helloTimeout.count());
      metrics.addRefused("hello_timeout");
      session->finish({RpcCode::kDeadlineExceeded, "no Hello received in time"}, false);
    }
    late.clear();
    l.lock();
  }
}

std::shared_ptr<Session> TunnelServer::Impl::registerSession(const std::string& node,
                                                             std::shared_ptr<Session> session) {
  MutexLock l(mu);
  auto& slot = sessions[node];
  auto old = std::move(slot);
  slot = std::move(session);
  metrics.setConnectedNodes(static_cast<int64_t>(sessions.size()));
  return old;
}

void TunnelServer::Impl::unregisterSession(const std::string& node, const Session* session) {
  MutexLock l(mu);
  auto it = sessions.find(node);
  if (it != sessions.end() && it->second.get() == session) sessions.erase(it);
  metrics.setConnectedNodes(static_cast<int64_t>(sessions.size()));
}

TunnelServer::TunnelServer(TunnelServerOptions options, registry::Registry& registry,
                           Dispatcher& dispatcher, NodeStateStore& nodeState,
                           ReportApplier& applier, Metrics& metrics, Executor executor)
    : impl_(std::make_unique<Impl>(std::move(options), registry, dispatcher, nodeState, applier,
                                   metrics, std::move(executor))) {}

void TunnelServer::setRouteBroker(RouteBroker* routes) {
  impl_->routes = routes;
}

void TunnelServer::setResourceMetricsSink(ResourceMetricsSink* sink) {
  impl_->resourceMetrics = sink;
}

void TunnelServer::setNodeLeases(NodeLeases* leases) {
  impl_->leases = leases;
}

void TunnelServer::setBlobHandler(BlobRequestHandler* blobs) {
  impl_->blobs = blobs;
}

void TunnelServer::setStreamBroker(StreamBroker* broker) {
  impl_->broker = broker;
}

TunnelServer::~TunnelServer() {
  stop();
}

Status TunnelServer::start() {
  const auto& o = impl_->options;
  std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  std::string address = host + ":" + std::to_string(o.port);
  Impl* impl = impl_.get();
  grpclite::StreamServerOptions so;
  so.host = o.host;
  so.port = o.port;
  if (impl_->tls()) {
    // TLS 1.3 only; node certificates asked for and verified, not required (Join and
    // GetClusterInfo come from nodes without one; Connect refuses them at the Hello).
    grpclite::StreamServerTls tls;
    tls.certPem = o.tlsCertPem;
    tls.keyPem = o.tlsKeyPem;
    tls.clientCaPem = o.caPem;
    tls.ticketKey = o.ticketKey;
    tls.ticketLifetime = o.ticketLifetime;
    so.tls = std::move(tls);
  }
  so.ioThreads = o.ioThreads;
  so.onHandshake = [impl](bool resumed) { impl->metrics.addTlsHandshake(resumed); };
  so.maxMessageBytes = kMaxReceiveBytes;
  // A node uses one Connect stream at a time (a replacement may overlap its predecessor);
  // without a certificate a client can only join, whose request is a token and a CSR.
  so.maxConcurrentStreams = 16;
  so.maxMessageBytesWithoutCertificate = 64 * 1024;
  // Transport settings: docs/tunnel.md, "Transport settings".
  so.keepaliveTime = std::chrono::milliseconds(60'000);
  so.keepaliveTimeout = std::chrono::milliseconds(20'000);
  impl_->server = std::make_unique<grpclite::StreamServer>(
      std::move(so),
      [impl](const std::string& method, const grpclite::PeerInfo& peer,
             std::shared_ptr<grpclite::ServerCall> call)
          -> std::shared_ptr<grpclite::ServerCallObserver> {
        if (method == kConnectMethod) return impl->connect(peer, std::move(call));
        std::shared_ptr<UnaryCall> unary;
        if (method == kClusterInfoMethod) {
          unary = std::make_shared<UnaryCall>(
              call, [impl](std::string request, UnaryCall::Respond respond) {
                impl->getClusterInfo(request, respond);
              });
        } else if (method == kJoinMethod) {
          unary = std::make_shared<UnaryCall>(
              call, [impl, peer = peer.address](std::string request, UnaryCall::Respond respond) {
                impl->join(peer, request, std::move(respond));
              });
        } else {
          return nullptr;
        }
        call->startRead();
        return unary;
      });
  if (Status st = impl_->server->start(); !st.isOk()) {
    impl_->server.reset();
    return unavailableError("tunnelListen: " + st.message() + " (in use by another process?)");
  }
  impl_->port = impl_->server->port();
  {
    MutexLock l(impl_->reapMu);
    impl_->reapStop = false;
  }
  impl_->reaper = std::thread([impl = impl_.get()] { impl->reapLoop(); });
  if (o.nodeCertificates != nullptr) {
    impl_->revoker = std::thread([impl = impl_.get()] { impl->revocationLoop(); });
  }
  spdlog::info("cloudhub: tunnel listening on {}:{} ({})", o.host, impl_->port,
               impl_->tls() ? "TLS 1.3, node client certificates" : "plaintext");
  return Status::ok();
}

void TunnelServer::stop() {
  if (!impl_->server) return;
  {
    MutexLock l(impl_->reapMu);
    impl_->reapStop = true;
  }
  impl_->reapCv.notify_all();
  if (impl_->reaper.joinable()) impl_->reaper.join();
  if (impl_->revoker.joinable()) impl_->revoker.join();
  std::map<std::string, std::shared_ptr<Session>> sessions;
  {
    MutexLock l(impl_->mu);
    sessions.swap(impl_->sessions);
    impl_->metrics.setConnectedNodes(0);
  }
  for (auto& [node, s] : sessions) s->close("cloudcore is shutting down");
  impl_->server->stop(std::chrono::seconds(2));
  impl_->server.reset();
}

uint16_t TunnelServer::port() const {
  return static_cast<uint16_t>(impl_->port);
}

size_t TunnelServer::connectedNodes() const {
  MutexLock l(impl_->mu);
  return impl_->sessions.size();
}

void TunnelServer::closeNode(const std::string& node, const std::string& why) {
  std::shared_ptr<Session> session;
  {
    MutexLock l(impl_->mu);
    auto it = impl_->sessions.find(node);
    if (it == impl_->sessions.end()) return;
    session = it->second;
  }
  spdlog::info("cloudhub: node {}: closing its stream: {}", node, why);
  session->close(why);
}

void TunnelServer::reportsPersisted(const std::string& node, uint64_t sequence) {
  std::shared_ptr<Session> session;
  {
    MutexLock l(impl_->mu);
    auto it = impl_->sessions.find(node);
    if (it == impl_->sessions.end()) return;
    session = it->second;
  }
  session->ackReports(sequence);
}

}  // namespace ep::cloudhub
