#include "edgecore/edgehub/edgehub.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/config_util.h"
#include "common/grpclite/channel.h"
#include "common/thread_annotations.h"
#include "common/tunnel_features.h"
#include "edgecore/certmanager/node_credentials.h"

namespace ep::edgecore::edgehub {

namespace tv1 = edgeplane::tunnel::v1;

namespace {

constexpr uint32_t kProtocolVersion = 1;

std::string formatDuration(int64_t millis) {
  int64_t s = millis / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string((s % 3600) / 60) + "m";
}

// "host" of "host:port" or "[v6]:port": the name the cloud's certificate must carry.
std::string hostOf(const std::string& target) {
  if (!target.empty() && target[0] == '[') return target.substr(1, target.find(']') - 1);
  return target.substr(0, target.rfind(':'));
}

}  // namespace

// One Tunnel.Connect call on a grpclite channel. Owned by a shared_ptr held by the hub
// (current_), by the call until it finished, and by whoever is calling send(). The handler
// methods run on the channel's I/O thread and never block: messages are handed to the hub's
// worker queue. Writes go to the call's bounded queue (sendQueueLimit); HTTP/2 flow control
// and grpclite keep one write in flight.
class Connection final : public grpclite::CallHandler,
                         public std::enable_shared_from_this<Connection> {
 public:
  Connection(EdgeHub* hub, uint64_t gen, size_t queueLimit)
      : hub_(hub), gen_(gen), queueLimit_(queueLimit) {}

  // Starts the call with `hello` as the first message.
  void begin(grpclite::Channel& channel, tv1::EdgeMessage hello) {
    grpclite::CallOptions o;
    o.maxQueuedMessages = queueLimit_;
    auto call = channel.startCall("/edgeplane.tunnel.v1.Tunnel/Connect", shared_from_this(), o);
    bool cancelNow = false;
    {
      MutexLock lock(mu_);
      call_ = call;
      cancelNow = cancelRequested_;
    }
    send(std::move(hello));
    if (cancelNow) call->cancel();
  }

  // Queues a message; false when the stream is closed or the queue is full (the stream is then
  // cancelled: the peer is not reading and a reconnect resyncs everything; a `droppable`
  // message is dropped instead and the stream kept).
  bool send(tv1::EdgeMessage&& m, bool droppable = false) {
    std::shared_ptr<grpclite::Call> call;
    {
      MutexLock lock(mu_);
      if (done_ || !call_) return false;
      call = call_;
    }
    std::string bytes;
    if (!m.SerializeToString(&bytes)) return false;
    switch (call->write(std::move(bytes))) {
      case grpclite::WriteResult::kQueued:
        return true;
      case grpclite::WriteResult::kFull:
        if (!droppable) call->cancel();
        return false;
      case grpclite::WriteResult::kClosed:
        return false;
    }
    return false;
  }

  void cancel() {
    std::shared_ptr<grpclite::Call> call;
    {
      MutexLock lock(mu_);
      cancelRequested_ = true;
      call = call_;
    }
    if (call) call->cancel();
  }

  void onMessage(std::string&& bytes) override {
    tv1::CloudMessage msg;
    if (!msg.ParseFromString(bytes)) {
      spdlog::warn("edgehub: unparseable message of {} bytes from the cloud; reconnecting",
                   bytes.size());
      cancel();
      return;
    }
    hub_->onMessage(gen_, std::move(msg));
  }

  void onDone(const grpclite::RpcStatus& s) override {
    {
      MutexLock lock(mu_);
      status_ = s;
      done_ = true;
    }
    hub_->onDone(gen_);
  }

  bool done() const {
    MutexLock lock(mu_);
    return done_;
  }
  grpclite::RpcStatus status() const {
    MutexLock lock(mu_);
    return status_;
  }

 private:
  EdgeHub* const hub_;
  const uint64_t gen_;
  const size_t queueLimit_;

  mutable Mutex mu_;
  std::shared_ptr<grpclite::Call> call_ EP_GUARDED_BY(mu_);  // set once by begin()
  bool cancelRequested_ EP_GUARDED_BY(mu_) = false;
  bool done_ EP_GUARDED_BY(mu_) = false;
  grpclite::RpcStatus status_ EP_GUARDED_BY(mu_);
};

namespace {

// The configured addresses; the text as one address when it is not a valid list (the
// connection attempt then names what is wrong).
std::vector<std::string> splitClouds(const std::string& text) {
  auto list = splitHostPortList("cloud", text);
  return list.isOk() ? std::move(list).value() : std::vector<std::string>{text};
}

}  // namespace

EdgeHub::EdgeHub(EdgeHubOptions options, metamanager::MetaManager& cache, Clock& clock)
    : options_(std::move(options)),
      clouds_(splitClouds(options_.cloud)),
      cache_(cache),
      clock_(clock) {
  cloudIndex_ = std::uniform_int_distribution<size_t>(0, clouds_.size() - 1)(rng_);
  MutexLock lock(mu_);
  state_.cloud = clouds_[cloudIndex_];  // /status names it before the first attempt too
}

EdgeHub::~EdgeHub() {
  stop();
}

Status EdgeHub::start() {
  {
    MutexLock lock(mu_);
    stopping_ = false;
    state_.disconnectedSinceMillis = clock_.nowMillis();
  }
  worker_ = std::thread([this] { runWorker(); });
  supervisor_ = std::thread([this] { runSupervisor(); });
  return Status::ok();
}

void EdgeHub::stop() {
  std::shared_ptr<Connection> conn;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    conn = current_;
  }
  cv_.notify_all();
  if (conn) conn->cancel();
  if (supervisor_.joinable()) supervisor_.join();
  if (worker_.joinable()) worker_.join();
}

TunnelState EdgeHub::state() const {
  MutexLock lock(mu_);
  return state_;
}

nlohmann::json EdgeHub::statusJson() const {
  TunnelState s = state();
  nlohmann::json j = {{"cloud", s.cloud},
                      {"connected", s.connected},
                      {"connects", s.connects},
                      {"ackedSyncRevision", s.ackedSyncRevision},
                      {"ackedReportSequence", s.ackedReportSequence}};
  if (!s.connected) {
    j["disconnectedSince"] = formatRfc3339(s.disconnectedSinceMillis);
    j["disconnectedFor"] = formatDuration(clock_.nowMillis() - s.disconnectedSinceMillis);
  }
  if (!s.lastError.empty()) j["lastError"] = s.lastError;
  if (!s.syncError.empty()) j["syncError"] = s.syncError;
  j["reconnectAttempt"] = s.reconnectAttempt;
  return {{"nodeName", options_.nodeName}, {"tunnel", std::move(j)}};
}

void EdgeHub::wakeOutbox() {
  {
    MutexLock lock(mu_);
    outboxWake_ = true;
  }
  cv_.notify_all();
}

void EdgeHub::onMessage(uint64_t gen, tv1::CloudMessage&& msg) {
  Event::Type type;
  switch (msg.body_case()) {
    case tv1::CloudMessage::kHelloReply:
      type = Event::kHelloReply;
      break;
    case tv1::CloudMessage::kSync:
      type = Event::kSync;
      break;
    case tv1::CloudMessage::kReportAck:
      type = Event::kReportAck;
      break;
    case tv1::CloudMessage::kCertificateResponse:
      type = Event::kCertificateResponse;
      break;
    case tv1::CloudMessage::kStreamOpen:
    case tv1::CloudMessage::kStreamCancel:
    case tv1::CloudMessage::kStreamWindow:
    case tv1::CloudMessage::kStreamInput:
      onStreamMessage(gen, msg);
      return;
    case tv1::CloudMessage::kRouteDeliver:
      onRouteDeliver(gen, msg);
      return;
    case tv1::CloudMessage::kBlobChunk:
      // Straight to the handler, which only queues it (bounded by its request window).
      if (BlobHandler* handler = blobHandler_.load()) {
        handler->onBlobChunk(std::move(*msg.mutable_blob_chunk()));
      }
      return;
    default:
      spdlog::warn("edgehub: ignoring a cloud message with no known body");
      return;
  }
  std::shared_ptr<Connection> overflowed;
  {
    MutexLock lock(mu_);
    if (events_.size() >= options_.eventQueueLimit) {
      if (current_ && gen == gen_) overflowed = current_;
    } else {
      events_.push_back({type, gen, std::move(msg)});
    }
  }
  if (overflowed) {
    spdlog::warn("edgehub: {} cloud messages waiting to be applied; reconnecting",
                 options_.eventQueueLimit);
    overflowed->cancel();
    return;
  }
  cv_.notify_all();
}

// Streams bypass the worker: they touch no SQLite and the handler never blocks.
void EdgeHub::onStreamMessage(uint64_t gen, tv1::CloudMessage& msg) {
  StreamHandler* handler = streamHandler_.load();
  if (handler == nullptr) {
    if (msg.body_case() == tv1::CloudMessage::kStreamOpen) {
      tv1::EdgeMessage reply;
      auto* c = reply.mutable_stream_close();
      c->set_id(msg.stream_open().id());
      c->set_error("streaming is not enabled on node " + options_.nodeName);
      c->set_error_code(tv1::STREAM_ERROR_UNAVAILABLE);
      sendCurrent(gen, std::move(reply));
    }
    return;
  }
  switch (msg.body_case()) {
    case tv1::CloudMessage::kStreamOpen:
      handler->onStreamOpen(msg.stream_open(), [this, gen](tv1::EdgeMessage&& m) {
        return sendCurrent(gen, std::move(m));
      });
      return;
    case tv1::CloudMessage::kStreamCancel:
      handler->onStreamCancel(msg.stream_cancel().id());
      return;
    case tv1::CloudMessage::kStreamWindow:
      handler->onStreamWindow(msg.stream_window().id(), msg.stream_window().bytes());
      return;
    case tv1::CloudMessage::kStreamInput:
      handler->onStreamInput(std::move(*msg.mutable_stream_input()));
      return;
    default:
      return;
  }
}

// Rule messages bypass the worker too: the handler never blocks.
void EdgeHub::onRouteDeliver(uint64_t gen, tv1::CloudMessage& msg) {
  RouteHandler* handler = routeHandler_.load();
  if (handler == nullptr) {
    tv1::EdgeMessage reply;
    reply.mutable_route_result()->set_id(msg.route_deliver().id());
    reply.mutable_route_result()->set_error("rules are not enabled on node " + options_.nodeName);
    sendCurrent(gen, std::move(reply));
    return;
  }
  handler->onRouteDeliver(
      std::move(*msg.mutable_route_deliver()),
      [this, gen](tv1::EdgeMessage&& m) { return sendCurrent(gen, std::move(m)); });
}

void EdgeHub::onDone(uint64_t gen) {
  cv_.notify_all();
}

bool EdgeHub::sendCurrent(uint64_t gen, tv1::EdgeMessage&& m) {
  std::shared_ptr<Connection> conn;
  {
    MutexLock lock(mu_);
    if (gen != gen_ || !current_) return false;
    conn = current_;
  }
  return conn->send(std::move(m));
}

bool EdgeHub::sendIfConnected(tv1::EdgeMessage&& message, const std::string& feature) {
  std::shared_ptr<Connection> conn;
  {
    MutexLock lock(mu_);
    if (!accepted_ || !current_) return false;
    if (std::find(cloudFeatures_.begin(), cloudFeatures_.end(), feature) == cloudFeatures_.end()) {
      return false;
    }
    conn = current_;
  }
  return conn->send(std::move(message), /*droppable=*/true);
}

uint64_t EdgeHub::connectionWith(const std::string& feature) const {
  MutexLock lock(mu_);
  if (!accepted_ || !current_) return 0;
  if (std::find(cloudFeatures_.begin(), cloudFeatures_.end(), feature) == cloudFeatures_.end()) {
    return 0;
  }
  return gen_;
}

bool EdgeHub::sendOnConnection(uint64_t connection, tv1::EdgeMessage&& message) {
  std::shared_ptr<Connection> conn;
  {
    MutexLock lock(mu_);
    if (connection == 0 || connection != gen_ || !accepted_ || !current_) return false;
    conn = current_;
  }
  return conn->send(std::move(message), /*droppable=*/true);
}

void EdgeHub::cancelCurrent(uint64_t gen, const std::string& why) {
  std::shared_ptr<Connection> conn;
  {
    MutexLock lock(mu_);
    if (gen != gen_ || !current_) return;
    conn = current_;
    state_.lastError = why;
  }
  conn->cancel();
}

void EdgeHub::resync(const std::string& why) {
  std::shared_ptr<Connection> conn;
  {
    MutexLock lock(mu_);
    if (!current_ || !accepted_) return;  // the next Hello is on its way anyway
    conn = current_;
    state_.lastError = why;
  }
  spdlog::warn("edgehub: reconnecting to resync: {}", why);
  conn->cancel();
}

Result<tv1::EdgeMessage> EdgeHub::buildHello() {
  tv1::EdgeMessage m;
  auto* h = m.mutable_hello();
  h->set_node_name(options_.nodeName);
  h->set_protocol_version(kProtocolVersion);
  h->set_edgecore_version(options_.version);
  h->set_last_applied_revision(cache_.lastAppliedRevision());
  h->set_last_report_sequence(cache_.lastSequence());
  if (options_.interactiveStreams) h->add_features(kFeatureInteractiveStreams);
  if (options_.portForward) h->add_features(kFeaturePortForward);
  auto inv = cache_.inventory();
  if (!inv.isOk()) return inv.status();
  for (const auto& e : *inv) {
    auto* o = h->add_inventory();
    o->set_resource(e.resource);
    o->set_namespace_(e.ns);
    o->set_name(e.name);
    o->set_revision(e.revision);
  }
  return m;
}

std::chrono::milliseconds EdgeHub::nextBackoff() {
  // Full jitter: uniform in [0, min(cap, base * 2^attempt)].
  int64_t cap = options_.initialBackoff.count();
  for (int i = 0; i < attempt_ && cap < options_.maxBackoff.count(); ++i) cap *= 2;
  cap = std::min<int64_t>(cap, options_.maxBackoff.count());
  ++attempt_;
  {
    MutexLock lock(mu_);
    state_.reconnectAttempt = attempt_;
  }
  std::uniform_int_distribution<int64_t> d(0, std::max<int64_t>(cap, 1));
  return std::chrono::milliseconds(d(rng_));
}

void EdgeHub::runSupervisor() {
  grpclite::ChannelOptions channelOptions;
  channelOptions.keepaliveTime = std::chrono::milliseconds(options_.keepaliveTimeMs);
  channelOptions.keepaliveTimeout = std::chrono::milliseconds(options_.keepaliveTimeoutMs);
  channelOptions.maxReceiveMessageBytes = 16 * 1024 * 1024;
  channelOptions.connectTimeout = options_.handshakeTimeout;
  // Reconnects resume the last TLS session (a ticket: no certificate exchange, no signatures),
  // also after a cloudcore restart, whose ticket key is kept in its PKI. A session carries the
  // certificate it was made with, so a renewed certificate starts a new cache.
  std::shared_ptr<grpclite::TlsSessionCache> sessionCache;
  std::string sessionCert;

  while (true) {
    const std::string cloud = clouds_[cloudIndex_];
    // The next attempt goes to another address, picked at random: the nodes of a replica that
    // went away spread over the others instead of all landing on its neighbour.
    if (clouds_.size() > 1) {
      const size_t skip = std::uniform_int_distribution<size_t>(1, clouds_.size() - 1)(rng_);
      cloudIndex_ = (cloudIndex_ + skip) % clouds_.size();
    }
    {
      MutexLock lock(mu_);
      if (stopping_) break;
      state_.cloud = cloud;
    }
    if (options_.credentials != nullptr) {
      // The current certificate, which a renewal may have replaced since the last attempt.
      auto creds = options_.credentials->snapshot();
      channelOptions.tls.enabled = true;
      channelOptions.tls.caPem = creds.caPem;
      channelOptions.tls.certPem = creds.certPem;
      channelOptions.tls.keyPem = creds.keyPem;
      channelOptions.tls.serverName = hostOf(cloud);
      if (!sessionCache || sessionCert != creds.certPem) {
        sessionCache = std::make_shared<grpclite::TlsSessionCache>();
        sessionCert = creds.certPem;
      }
      channelOptions.tls.sessionCache = sessionCache;
    }
    // A fresh channel (one connection) per attempt: our backoff paces reconnects.
    auto channel = grpclite::Channel::create(cloud, channelOptions);
    std::shared_ptr<Connection> conn;
    {
      // New generation and its inventory under applyMu_: no older Sync lands after this read.
      MutexLock applyLock(applyMu_);
      auto hello = buildHello();
      if (!hello.isOk()) {
        spdlog::error("edgehub: cannot read the cache for Hello: {}", hello.status().toString());
      } else {
        MutexLock lock(mu_);
        conn = std::make_shared<Connection>(this, ++gen_, options_.sendQueueLimit);
        current_ = conn;
        accepted_ = false;
        refused_ = false;
        if (stopping_) {
          current_.reset();
          break;
        }
      }
      // Outside mu_: reactions may run before begin() returns and they take mu_.
      if (conn) conn->begin(*channel, std::move(hello.value()));
    }
    if (conn) {
      const auto deadline = std::chrono::steady_clock::now() + options_.handshakeTimeout;
      MutexLock lock(mu_);
      while (!conn->done()) {
        if (!accepted_ && std::chrono::steady_clock::now() >= deadline) {
          state_.lastError = "no HelloReply within the handshake timeout";
          lock.unlock();
          conn->cancel();
          lock.lock();
          lock.waitFor(cv_, std::chrono::milliseconds(100));
          continue;
        }
        if (stopping_) {
          lock.unlock();
          conn->cancel();
          lock.lock();
        }
        lock.waitFor(cv_, std::chrono::milliseconds(200));
      }
      const bool wasAccepted = accepted_;
      const bool wasRefused = refused_;
      grpclite::RpcStatus st = conn->status();
      current_.reset();
      if (StreamHandler* handler = streamHandler_.load()) {
        lock.unlock();
        handler->onConnectionClosed();  // its streams' senders now return false
        lock.lock();
      }
      if (BlobHandler* handler = blobHandler_.load(); handler != nullptr && wasAccepted) {
        lock.unlock();
        handler->onTunnelDown();
        lock.lock();
      }
      if (wasAccepted) {
        state_.connected = false;
        state_.disconnectedSinceMillis = clock_.nowMillis();
        // Progress is an applied Sync, not a handshake: a cloud whose Syncs this node cannot
        // apply (disk full) is not asked again at once.
        if (state_.syncError.empty()) attempt_ = 0;
      }
      if (!wasRefused && !(stopping_ && st.code == grpclite::RpcCode::kCancelled)) {
        state_.lastError = st.toString();
      }
      const bool stopping = stopping_;
      const int64_t since = state_.disconnectedSinceMillis;
      lock.unlock();
      if (stopping) break;
      const int64_t now = clock_.nowMillis();
      if (wasAccepted) {
        spdlog::warn("edgehub: tunnel to {} lost: {}", cloud, st.toString());
      } else if (now - lastUnreachableLog_ >= 30000) {
        lastUnreachableLog_ = now;
        spdlog::warn("edgehub: cloud unreachable for {} ({}: {})", formatDuration(now - since),
                     cloud, st.toString());
      }
    }
    // Joins the channel's I/O thread; the call already finished.
    conn.reset();
    channel.reset();
    auto wait = nextBackoff();
    spdlog::debug("edgehub: reconnecting in {} ms", wait.count());
    MutexLock lock(mu_);
    const auto until = std::chrono::steady_clock::now() + wait;
    while (!stopping_ && lock.waitUntil(cv_, until) != std::cv_status::timeout) {
    }
    if (stopping_) break;
  }
  MutexLock lock(mu_);
  state_.connected = false;
}

void EdgeHub::runWorker() {
  MutexLock lock(mu_);
  while (true) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!stopping_ && events_.empty() && !outboxWake_ &&
           lock.waitUntil(cv_, until) != std::cv_status::timeout) {
    }
    if (stopping_) break;
    outboxWake_ = false;
    std::deque<Event> batch;
    batch.swap(events_);
    lock.unlock();
    for (auto& e : batch) handle(e);
    pumpOutbox();
    maybeRenewCertificate();
    lock.lock();
  }
}

void EdgeHub::maybeRenewCertificate() {
  auto* creds = options_.credentials;
  if (creds == nullptr || pumpGen_ == 0) return;
  uint64_t gen = 0;
  {
    MutexLock lock(mu_);
    if (!accepted_ || gen_ != pumpGen_) return;
    gen = gen_;
  }
  const auto now = std::chrono::steady_clock::now();
  // One request per stream; a request unanswered for a minute is sent again.
  if (renewalGen_ == gen && now - renewalSentAt_ < std::chrono::minutes(1)) return;
  if (!creds->renewalDue(std::chrono::system_clock::now())) return;
  auto csr = creds->prepareRenewal(options_.nodeName);
  if (!csr) {
    spdlog::error("edgehub: cannot prepare a certificate renewal: {}", csr.status().toString());
    return;
  }
  tv1::EdgeMessage m;
  m.mutable_certificate_request()->set_csr(*csr);
  if (sendCurrent(gen, std::move(m))) {
    renewalGen_ = gen;
    renewalSentAt_ = now;
    spdlog::info("edgehub: certificate {} is due for renewal; asked the cloud for a new one",
                 creds->snapshot().serial);
  }
}

void EdgeHub::setBlobHandler(BlobHandler* handler) {
  blobHandler_.store(handler);
  if (handler == nullptr) return;
  {
    MutexLock lock(mu_);
    events_.push_back({Event::kBlobHandlerSet, gen_, {}});
  }
  cv_.notify_all();
}

void EdgeHub::handle(Event& e) {
  switch (e.type) {
    case Event::kBlobHandlerSet: {
      // A handler set after the tunnel came up (edgecore starts the model fetcher last) must
      // still learn of it, or it could not ask for a chunk until the next reconnect.
      BlobHandler* handler = blobHandler_.load();
      if (handler == nullptr || pumpGen_ == 0 ||
          (blobUpGen_ == pumpGen_ && blobUpHandler_ == handler)) {
        return;
      }
      {
        MutexLock lock(mu_);
        if (!accepted_ || gen_ != pumpGen_) return;  // down since: the next HelloReply tells it
      }
      const uint64_t gen = pumpGen_;
      blobUpGen_ = gen;
      blobUpHandler_ = handler;
      handler->onTunnelUp(
          [this, gen](tv1::EdgeMessage&& m) { return sendCurrent(gen, std::move(m)); });
      return;
    }
    case Event::kCertificateResponse: {
      renewalGen_ = 0;
      const auto& r = e.msg.certificate_response();
      if (options_.credentials == nullptr) return;
      if (!r.error().empty()) {
        spdlog::error("edgehub: the cloud refused to renew the certificate: {}", r.error());
        return;
      }
      if (auto s = options_.credentials->installRenewal(r.certificate()); !s.isOk()) {
        spdlog::error("edgehub: renewed certificate not stored: {}", s.toString());
        return;
      }
      spdlog::info("edgehub: certificate renewed (serial {}); used from the next connection",
                   options_.credentials->snapshot().serial);
      return;
    }
    case Event::kHelloReply: {
      const auto& r = e.msg.hello_reply();
      if (!r.accepted()) {
        spdlog::error("edgehub: cloud refused node {}: {}", options_.nodeName, r.reason());
        {
          MutexLock lock(mu_);
          if (e.gen == gen_) {
            refused_ = true;
            state_.lastError = "refused: " + r.reason();
          }
        }
        cancelCurrent(e.gen, "refused: " + r.reason());
        return;
      }
      // The cloud applied everything up to last_report_sequence: drop it locally, and never
      // reuse those sequence numbers (the edge database may have been recreated).
      if (auto s = cache_.acknowledge(r.last_report_sequence()); !s.isOk()) {
        spdlog::warn("edgehub: {}", s.toString());
      }
      if (auto s = cache_.ensureSequenceAbove(r.last_report_sequence()); !s.isOk()) {
        spdlog::warn("edgehub: {}", s.toString());
      }
      int64_t since = 0;
      std::string cloud;
      {
        MutexLock lock(mu_);
        if (e.gen != gen_) return;
        accepted_ = true;
        cloudFeatures_.assign(r.features().begin(), r.features().end());
        since = state_.disconnectedSinceMillis;
        cloud = state_.cloud;
        state_.connected = true;
        state_.connects += 1;
        state_.disconnectedSinceMillis = 0;
        state_.lastError.clear();
      }
      cv_.notify_all();
      pumpGen_ = e.gen;
      lastSent_ = 0;
      inFlight_.clear();
      if (BlobHandler* handler = blobHandler_.load()) {
        const uint64_t gen = e.gen;
        blobUpGen_ = gen;
        blobUpHandler_ = handler;
        handler->onTunnelUp(
            [this, gen](tv1::EdgeMessage&& m) { return sendCurrent(gen, std::move(m)); });
      }
      spdlog::info("edgehub: connected to {} (cloudcore {}, after {} offline)", cloud,
                   r.cloudcore_version(), formatDuration(clock_.nowMillis() - since));
      // The TLS handshake's transient allocations are freed but stay resident in glibc's
      // arenas; hand them back to the kernel (rare: once per connection; docs/performance.md).
      malloc_trim(0);
      return;
    }
    case Event::kSync: {
      const auto& sync = e.msg.sync();
      Status s;
      {
        MutexLock applyLock(applyMu_);
        {
          MutexLock lock(mu_);
          if (e.gen != gen_) return;  // from an older stream: the new Hello covers it
        }
        s = cache_.applySync(sync);
      }
      if (!s.isOk()) {
        spdlog::error("edgehub: Sync at revision {} not applied: {}", sync.revision(),
                      s.toString());
        {
          MutexLock lock(mu_);
          state_.syncError = s.message();
        }
        cancelCurrent(e.gen, "Sync not applied: " + s.message());
        return;
      }
      {
        MutexLock lock(mu_);
        if (!state_.syncError.empty()) {
          spdlog::info("edgehub: Syncs apply again (revision {})", sync.revision());
          state_.syncError.clear();
        }
      }
      tv1::EdgeMessage ack;
      ack.mutable_sync_ack()->set_revision(sync.revision());
      if (sendCurrent(e.gen, std::move(ack))) {
        MutexLock lock(mu_);
        state_.ackedSyncRevision = sync.revision();
      }
      return;
    }
    case Event::kReportAck: {
      const uint64_t seq = e.msg.report_ack().sequence();
      if (auto s = cache_.acknowledge(seq); !s.isOk()) {
        spdlog::warn("edgehub: acknowledging reports up to {}: {}", seq, s.toString());
      }
      {
        MutexLock lock(mu_);
        state_.ackedReportSequence = std::max(state_.ackedReportSequence, seq);
      }
      if (e.gen == pumpGen_) {
        while (!inFlight_.empty() && inFlight_.front() <= seq) inFlight_.pop_front();
      }
      return;
    }
  }
}

void EdgeHub::pumpOutbox() {
  {
    MutexLock lock(mu_);
    if (!accepted_ || gen_ != pumpGen_ || !current_) return;
  }
  while (inFlight_.size() < options_.maxInFlightReports) {
    auto batch = cache_.pending(options_.maxInFlightReports - inFlight_.size(), lastSent_);
    if (!batch.isOk()) {
      spdlog::warn("edgehub: reading the outbox: {}", batch.status().toString());
      return;
    }
    if (batch->empty()) return;
    for (auto& entry : *batch) {
      // Entries dropped while offline are counted on the next Report, durably (the count stays
      // with that outbox entry until the cloud acknowledges it).
      if (cache_.droppedCount() > 0) {
        if (auto carried = cache_.attachDropped(entry.sequence); carried.isOk()) {
          entry.dropped = *carried;
        } else {
          spdlog::warn("edgehub: {}", carried.status().toString());
        }
      }
      tv1::EdgeMessage m;
      auto* r = m.mutable_report();
      r->set_sequence(entry.sequence);
      r->set_kind(entry.kind);
      r->set_namespace_(entry.ns);
      r->set_name(entry.name);
      r->set_payload(std::move(entry.payload));
      if (entry.dropped > 0) r->set_dropped(entry.dropped);
      if (!sendCurrent(pumpGen_, std::move(m))) return;
      lastSent_ = entry.sequence;
      inFlight_.push_back(entry.sequence);
    }
  }
}

}  // namespace ep::edgecore::edgehub
