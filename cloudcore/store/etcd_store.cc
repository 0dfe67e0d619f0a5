#include "cloudcore/store/etcd_store.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "cloudcore/store/store_keys.h"
#include "etcd/rpc.grpc.pb.h"

namespace ep::store {

namespace pb = etcdserverpb;

// One channel to the members and etcd's services on it (pb::X::Stub is gRPC's name for a
// generated client).
struct EtcdClients {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;
};

namespace {

// The first of removeUnsafe's two writes replaces the value with this mark and the tombstone.
// A marked key reads as absent, its PUT event is not delivered, and the DELETE that follows is
// delivered with the tombstone as its value (store.h). JSON and encrypted values never start
// with a NUL byte.
constexpr char kMarkBytes[] = "\0edgeplane:unsafe-delete\0";
constexpr std::string_view kUnsafeDeleteMark(kMarkBytes, sizeof kMarkBytes - 1);

bool isMarked(const std::string& value) {
  return value.size() >= kUnsafeDeleteMark.size() &&
         std::string_view(value).substr(0, kUnsafeDeleteMark.size()) == kUnsafeDeleteMark;
}

// The smallest key greater than every key starting with `prefix` (etcd's prefix range end).
std::string prefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(prefix.back());
    if (c < 0xff) {
      ++c;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

bool isCompacted(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
         s.error_message().find("compacted") != std::string::npos;
}

bool isFutureRevision(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
         s.error_message().find("future") != std::string::npos;
}

// etcd's answer as this project's error: a value over etcd's request limit is kTooLarge, a
// compacted revision kExpired, everything else (no member reachable, no leader, no space, a
// lost answer) kUnavailable.
Status fromGrpc(const grpc::Status& s, const std::string& what) {
  std::string message = "etcd: " + what + ": " + s.error_message();
  if (isCompacted(s)) return Status(Code::kExpired, std::move(message));
  // etcd refuses a request over its --max-request-bytes (1.5 MiB by default) itself, and its
  // gRPC server one over that plus 512 KiB.
  if ((s.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
       s.error_message().find("too large") != std::string::npos) ||
      (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
       s.error_message().find("larger than max") != std::string::npos)) {
    return Status(Code::kTooLarge, std::move(message));
  }
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    message += " (no answer within the request deadline; a write may or may not have been applied)";
  }
  return unavailableError(std::move(message));
}

Result<std::string> readFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalidError(std::string(flag) + ": cannot read " + path);
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

using Deadline = std::chrono::system_clock::time_point;

// One unary call that waits, until `deadline`, for a member to be reachable. Reads
// (`idempotent`) are tried again, on another member, while they answer UNAVAILABLE; a write
// never is (it may have been applied).
template <typename Client, typename Request, typename Response>
grpc::Status call(Client& client,
                  grpc::Status (Client::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response, Deadline deadline, bool idempotent) {
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    ctx.set_wait_for_ready(true);
    auto s = (client.*method)(&ctx, request, response);
    if (s.ok() || !idempotent || s.error_code() != grpc::StatusCode::UNAVAILABLE ||
        std::chrono::system_clock::now() + std::chrono::milliseconds(50) >= deadline) {
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

pb::Compare compareMod(const std::string& key, int64_t rev) {
  pb::Compare c;
  c.set_key(key);
  c.set_target(pb::Compare::MOD);
  c.set_result(pb::Compare::EQUAL);
  c.set_mod_revision(rev);
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Watches

class EtcdWatchStream;

// The state of one watch across the gRPC streams that serve it (a new one after a member
// failed). Shared by the EtcdWatch handed to the caller, the current stream and the store's
// restart queue. Thread-safe. mu_ is never held while a reaction could need it: gRPC calls made
// under it (creating a stream) run no reaction inline. notifyMu_ is held only while calling or
// replacing the notify callback, so once setNotify(nullptr) returned no callback runs.
class EtcdWatchCore : public std::enable_shared_from_this<EtcdWatchCore> {
 public:
  EtcdWatchCore(EtcdStore* store, WatchOptions options, int64_t next)
      : store_(store), options_(std::move(options)), next_(next) {}

  std::vector<Event> poll(size_t max);
  // Also calls `notify` at once when events are waiting or the watch ended (as SqliteWatch).
  void setNotify(std::function<void()> notify);
  bool done() const {
    MutexLock lock(mu_);
    return ended_ && events_.empty();
  }
  Status error() const {
    MutexLock lock(mu_);
    return error_;
  }
  // With nothing buffered, everything below next_ was handed out (etcd's progress
  // notifications move next_ on a quiet watch).
  int64_t progressRevision() const {
    MutexLock lock(mu_);
    return events_.empty() ? next_ - 1 : 0;
  }
  // Ends the watch: what is buffered can still be polled, nothing more arrives.
  void end(Status why);
  // Waits until no stream of this watch runs and no stream callback is still inside this
  // object (the store and the watch's owner may go away after it).
  void waitStreamless();

  // Opens a stream from next_ (the first time and after a failure). No-op once ended.
  void startStream();

  // Stream callbacks (gRPC threads). onResponse returns whether to read on. When the stream
  // is done: detach() (waits for withStream users, forgets the stream), the stream is deleted,
  // then onStreamDone() ends the watch or schedules a new stream.
  bool onResponse(EtcdWatchStream* stream, const pb::WatchResponse& response);
  void detach();
  void onStreamDone(const grpc::Status& status);

 private:
  bool convert(const pb::Event& in, Event& out) const;
  void notify();
  // Runs fn(stream) on the current stream, if any, without mu_ held; the stream is not
  // destroyed meanwhile (its OnDone waits for streamUsers_).
  template <typename Fn>
  void withStream(Fn fn);

  EtcdStore* const store_;
  const WatchOptions options_;
  mutable Mutex mu_;
  std::condition_variable cv_;  // streamUsers_, stream_, finishing_ changed
  std::deque<Event> events_ EP_GUARDED_BY(mu_);
  int64_t next_ EP_GUARDED_BY(mu_);  // first revision not yet delivered into events_
  EtcdWatchStream* stream_ EP_GUARDED_BY(mu_) = nullptr;
  int streamUsers_ EP_GUARDED_BY(mu_) = 0;
  bool finishing_ EP_GUARDED_BY(mu_) = false;  // from detach() to the end of onStreamDone()
  bool paused_ EP_GUARDED_BY(mu_) = false;     // stream_ has no read in flight (events_ full)
  bool ended_ EP_GUARDED_BY(mu_) = false;
  bool restartAfterDone_ EP_GUARDED_BY(mu_) = false;
  int failures_ EP_GUARDED_BY(mu_) = 0;  // consecutive failed streams (backoff)
  Status error_ EP_GUARDED_BY(mu_);
  Mutex notifyMu_;
  std::function<void()> notify_ EP_GUARDED_BY(notifyMu_);
};

// One Watch RPC with one watcher on it. Owns itself: deleted after OnDone, which cannot come
// before the hold taken in start() is released by a read that finds the stream ended.
class EtcdWatchStream final : public grpc::ClientBidiReactor<pb::WatchRequest, pb::WatchResponse> {
 public:
  EtcdWatchStream(std::shared_ptr<EtcdWatchCore> core, pb::Watch::Stub& watchClient,
                  pb::WatchRequest create)
      : core_(std::move(core)), create_(std::move(create)) {
    // Waits for a reachable member instead of failing at once while none is; and asks the
    // member to end the stream when it loses its leader (etcd's "hasleader" metadata), so a
    // watch never sits on a member cut off from the quorum.
    ctx_.set_wait_for_ready(true);
    ctx_.AddMetadata("hasleader", "true");
    watchClient.async()->Watch(&ctx_, this);
  }
  void start() {
    AddHold();
    StartWrite(&create_);
    StartRead(&response_);
    StartCall();
  }
  void resume() { StartRead(&response_); }
  void cancel() { ctx_.TryCancel(); }

  void OnWriteDone(bool) override {}
  void OnReadDone(bool ok) override {
    if (!ok) {
      RemoveHold();
      return;
    }
    if (core_->onResponse(this, response_)) StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<EtcdWatchCore> core = std::move(core_);
    core->detach();
    // The call's context goes before anyone may take the watch, and so the store and its
    // channel, for gone (waitStreamless).
    delete this;
    core->onStreamDone(status);
  }

 private:
  std::shared_ptr<EtcdWatchCore> core_;
  grpc::ClientContext ctx_;
  pb::WatchRequest create_;
  pb::WatchResponse response_;
};

template <typename Fn>
void EtcdWatchCore::withStream(Fn fn) {
  EtcdWatchStream* stream;
  {
    MutexLock lock(mu_);
    stream = stream_;
    if (!stream) return;
    ++streamUsers_;
  }
  fn(*stream);
  MutexLock lock(mu_);
  --streamUsers_;
  cv_.notify_all();
}

void EtcdWatchCore::setNotify(std::function<void()> notify) {
  bool pending;
  {
    MutexLock lock(mu_);
    pending = ended_ || !events_.empty();
  }
  MutexLock lock(notifyMu_);
  notify_ = std::move(notify);
  if (pending && notify_) notify_();
}

void EtcdWatchCore::notify() {
  MutexLock lock(notifyMu_);
  if (notify_) notify_();
}

std::vector<Event> EtcdWatchCore::poll(size_t max) {
  std::vector<Event> out;
  bool resume = false;
  {
    MutexLock lock(mu_);
    while (!events_.empty() && out.size() < max) {
      out.push_back(std::move(events_.front()));
      events_.pop_front();
    }
    if (paused_ && !ended_ && events_.size() <= store_->options_.watchBufferEvents / 2) {
      paused_ = false;
      resume = true;
    }
  }
  if (resume) withStream([](EtcdWatchStream& s) { s.resume(); });
  return out;
}

void EtcdWatchCore::end(Status why) {
  bool wasPaused;
  {
    MutexLock lock(mu_);
    if (ended_) return;
    ended_ = true;
    error_ = std::move(why);
    wasPaused = paused_;
    paused_ = false;
  }
  withStream([&](EtcdWatchStream& s) {
    s.cancel();
    // A paused stream has no read that could see the end: start one.
    if (wasPaused) s.resume();
  });
  notify();
}

void EtcdWatchCore::waitStreamless() {
  MutexLock lock(mu_);
  lock.wait(cv_, [&]() EP_REQUIRES(mu_) {
    return stream_ == nullptr && streamUsers_ == 0 && !finishing_;
  });
}

void EtcdWatchCore::startStream() {
  pb::WatchRequest request;
  auto* create = request.mutable_create_request();
  create->set_key(store_->rangePrefix(options_.resource, options_.namespace_));
  create->set_range_end(prefixEnd(create->key()));
  create->set_prev_kv(true);
  create->set_progress_notify(true);
  EtcdWatchStream* stream;
  {
    MutexLock lock(mu_);
    if (ended_ || stream_) return;
    create->set_start_revision(next_);
    stream = new EtcdWatchStream(shared_from_this(), *store_->clients_->watch, std::move(request));
    stream_ = stream;
    ++streamUsers_;
  }
  stream->start();
  MutexLock lock(mu_);
  --streamUsers_;
  cv_.notify_all();
}

bool EtcdWatchCore::convert(const pb::Event& in, Event& out) const {
  if (!store_->parseKey(in.kv().key(), out.object)) return false;
  if (!options_.namespace_.empty() && out.object.namespace_ != options_.namespace_) return false;
  if (in.type() == pb::Event::PUT) {
    if (isMarked(in.kv().value())) return false;  // removeUnsafe's first step
    out.type = in.kv().create_revision() == in.kv().mod_revision() ? EventType::kAdded
                                                                   : EventType::kModified;
    out.object.value = in.kv().value();
    out.object.createRevision = in.kv().create_revision();
    out.object.modRevision = in.kv().mod_revision();
    if (in.has_prev_kv() && out.type == EventType::kModified) out.prevValue = in.prev_kv().value();
    return true;
  }
  out.type = EventType::kDeleted;
  out.object.modRevision = in.kv().mod_revision();
  out.object.createRevision = in.prev_kv().create_revision();
  const std::string& last = in.prev_kv().value();
  if (isMarked(last)) {
    out.object.value = last.substr(kUnsafeDeleteMark.size());  // the tombstone
    out.object.createRevision = out.object.modRevision;
  } else {
    out.object.value = last;
    out.prevValue = last;
  }
  return true;
}

bool EtcdWatchCore::onResponse(EtcdWatchStream* stream, const pb::WatchResponse& response) {
  store_->noteRevision(response.header().revision());
  // `response` is the stream's buffer: once paused_ is published, poll() may start the next
  // read into it, so nothing below the lock reads it.
  const bool canceled = response.canceled();
  bool delivered = false;
  bool readOn = true;
  Status expired;
  {
    MutexLock lock(mu_);
    if (ended_) return true;  // read on until the cancelled stream ends
    if (response.created()) failures_ = 0;
    if (canceled) {
      if (response.compact_revision() > 0) {
        expired =
            Status(Code::kExpired, "etcd: the watch's next revision " + std::to_string(next_) +
                                       " was compacted (history starts at " +
                                       std::to_string(response.compact_revision()) + ")");
      } else {
        // Cancelled by the member (e.g. it lost its leader): resume on a new stream.
        spdlog::warn("store: etcd cancelled a watch ({}), resuming from revision {}",
                     response.cancel_reason(), next_);
        restartAfterDone_ = true;
      }
    } else {
      // Several events may share a revision (one transaction); a resumed stream starts at
      // next_, so only what is below it was delivered before.
      const int64_t floor = next_;
      for (const auto& e : response.events()) {
        const int64_t rev = e.kv().mod_revision();
        if (rev < floor) continue;
        Event out;
        if (convert(e, out)) {
          events_.push_back(std::move(out));
          delivered = true;
        }
        next_ = std::max(next_, rev + 1);
      }
      if (response.events().empty() && !response.created()) {
        // Progress: everything up to the header's revision has been sent.
        next_ = std::max(next_, response.header().revision() + 1);
      }
      if (events_.size() >= store_->options_.watchBufferEvents) {
        paused_ = true;
        readOn = false;
      }
    }
  }
  if (!expired.isOk()) {
    end(std::move(expired));
    return true;
  }
  if (canceled) {
    stream->cancel();
    return true;
  }
  if (delivered) notify();
  return readOn;
}

void EtcdWatchCore::detach() {
  MutexLock lock(mu_);
  lock.wait(cv_, [&]() EP_REQUIRES(mu_) { return streamUsers_ == 0; });
  stream_ = nullptr;
  paused_ = false;
  // Until onStreamDone() returns, waitStreamless() waits: the stream is being deleted and the
  // restart still uses the store.
  finishing_ = true;
}

void EtcdWatchCore::onStreamDone(const grpc::Status& status) {
  std::chrono::milliseconds delay{0};
  {
    MutexLock lock(mu_);
    if (ended_) {
      finishing_ = false;
      cv_.notify_all();
      return;
    }
    const bool fatal =
        !restartAfterDone_ && (status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                               status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                               status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                               status.error_code() == grpc::StatusCode::UNIMPLEMENTED);
    restartAfterDone_ = false;
    if (!fatal) {
      delay = std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(5000),
          store_->options_.watchRetryDelay * (int64_t{1} << std::min(failures_, 6)));
      // Once per outage and watch at warn: every watch sees the same outage.
      spdlog::log(failures_ == 0 ? spdlog::level::warn : spdlog::level::debug,
                  "store: etcd watch stream ended ({}: {}), resuming from revision {} in {} ms",
                  static_cast<int>(status.error_code()), status.error_message(), next_,
                  delay.count());
      ++failures_;
    }
  }
  if (delay.count() == 0) {
    end(fromGrpc(status, "watch"));
  } else {
    store_->scheduleRestart(weak_from_this(), delay);
  }
  MutexLock lock(mu_);
  finishing_ = false;
  cv_.notify_all();
}

// The Watch handed to callers: ends its core on stop and destruction, and outlives its stream.
class EtcdWatch final : public Watch {
 public:
  explicit EtcdWatch(std::shared_ptr<EtcdWatchCore> core) : core_(std::move(core)) {}
  ~EtcdWatch() override {
    core_->setNotify(nullptr);  // the owner is going away: no callback into it from now on
    core_->end(Status::ok());
    core_->waitStreamless();
  }
  std::vector<Event> poll(size_t max) override { return core_->poll(max); }
  void setNotify(std::function<void()> notify) override { core_->setNotify(std::move(notify)); }
  bool done() const override { return core_->done(); }
  Status error() const override { return core_->error(); }
  void stop() override { core_->end(Status::ok()); }
  int64_t progressRevision() const override { return core_->progressRevision(); }

 private:
  std::shared_ptr<EtcdWatchCore> core_;
};

// ---------------------------------------------------------------------------------------------
// The store

namespace {

std::string trimPrefix(std::string prefix) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  return prefix;
}

// A gRPC target that spreads requests over every endpoint: "ipv4:A:P,B:P" for IP literals,
// "dns:///HOST:PORT" for a single name (re-resolved when its addresses fail).
Result<std::string> channelTarget(const std::vector<std::string>& endpoints) {
  if (endpoints.empty()) return invalidError("--store: no etcd endpoint");
  if (endpoints.size() == 1) {
    const std::string& ep = endpoints.front();
    std::string host = ep.substr(0, ep.rfind(':'));
    in_addr a4{};
    if (host.front() != '[' && inet_pton(AF_INET, host.c_str(), &a4) != 1) return "dns:///" + ep;
  }
  std::string v4, v6;
  for (const auto& ep : endpoints) {
    std::string host = ep.substr(0, ep.rfind(':'));
    in_addr a4{};
    in6_addr a6{};
    if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
      v4 += (v4.empty() ? "" : ",") + ep;
    } else if (host.size() > 2 && host.front() == '[' &&
               inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6) == 1) {
      v6 += (v6.empty() ? "" : ",") + ep;
    } else {
      return invalidError("--store: with several etcd endpoints each must be an IP address (\"" +
                          ep + "\" is not); give one DNS name that resolves to every member");
    }
  }
  if (!v4.empty() && !v6.empty()) {
    return invalidError("--store: etcd endpoints mix IPv4 and IPv6 addresses");
  }
  return v4.empty() ? "ipv6:" + v6 : "ipv4:" + v4;
}

}  // namespace

EtcdStore::EtcdStore(EtcdStoreOptions options, Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      prefix_(trimPrefix(options_.prefix)),
      compactKey_(prefix_ + "#compacted") {}

EtcdStore::~EtcdStore() {
  stop();
}

std::string EtcdStore::objectKey(const std::string& resource, const std::string& ns,
                                 const std::string& name) const {
  return prefix_ + "/" + resource + "/" + ns + "/" + name;
}

std::string EtcdStore::rangePrefix(const std::string& resource, const std::string& ns) const {
  if (resource.empty()) return prefix_ + "/";
  if (ns.empty()) return prefix_ + "/" + resource + "/";
  return prefix_ + "/" + resource + "/" + ns + "/";
}

bool EtcdStore::parseKey(const std::string& key, Object& out) const {
  if (key.size() <= prefix_.size() + 1 || key.compare(0, prefix_.size(), prefix_) != 0 ||
      key[prefix_.size()] != '/') {
    return false;
  }
  const size_t r = prefix_.size() + 1;
  const size_t a = key.find('/', r);
  if (a == std::string::npos) return false;
  const size_t b = key.find('/', a + 1);
  if (b == std::string::npos) return false;
  out.resource = key.substr(r, a - r);
  out.namespace_ = key.substr(a + 1, b - a - 1);
  out.name = key.substr(b + 1);
  return !out.resource.empty() && !out.name.empty();
}

void EtcdStore::noteRevision(int64_t revision) {
  int64_t seen = lastRevision_.load();
  while (revision > seen && !lastRevision_.compare_exchange_weak(seen, revision)) {
  }
}

Status EtcdStore::start() {
  auto target = channelTarget(options_.endpoints);
  if (!target) return target.status();
  std::shared_ptr<grpc::ChannelCredentials> creds;
  grpc::ChannelArguments args;
  if (options_.caFile.empty() && options_.certFile.empty() && options_.keyFile.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options_.caFile.empty()) {
      auto ca = readFile(options_.caFile, "--etcd-cafile");
      if (!ca) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (options_.certFile.empty() != options_.keyFile.empty()) {
      return invalidError("--etcd-certfile and --etcd-keyfile: give both or neither");
    }
    if (!options_.certFile.empty()) {
      auto cert = readFile(options_.certFile, "--etcd-certfile");
      if (!cert) return cert.status();
      auto key = readFile(options_.keyFile, "--etcd-keyfile");
      if (!key) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
    // Several IP endpoints: the members' certificates are checked against the first one's host.
    const std::string& first = options_.endpoints.front();
    std::string host = first.substr(0, first.rfind(':'));
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    args.SetSslTargetNameOverride(host);
  }
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetMaxReceiveMessageSize(-1);
  // A member that went silent (host down, partition) is noticed within ~15 s, and its streams
  // move to another member; etcd accepts pings every 5 s or slower.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  // Only while calls are open (etcd's server refuses pings without streams, as clientv3 does).
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  clients_ = std::make_unique<EtcdClients>();
  clients_->channel = grpc::CreateCustomChannel(*target, creds, args);
  clients_->kv = pb::KV::NewStub(clients_->channel);
  clients_->watch = pb::Watch::NewStub(clients_->channel);
  clients_->maintenance = pb::Maintenance::NewStub(clients_->channel);

  std::string joined;
  for (const auto& ep : options_.endpoints) joined += (joined.empty() ? "" : ",") + ep;
  {
    // A linearizable read proves that a quorum answers.
    const Deadline deadline = deadlineFromNow();
    pb::RangeRequest req;
    req.set_key(compactKey_);
    req.set_count_only(true);
    pb::RangeResponse resp;
    auto s = call(*clients_->kv, &pb::KV::Stub::Range, req, &resp, deadline, true);
    if (!s.ok()) {
      clients_.reset();
      return unavailableError("etcd: cannot reach " + joined + ": " + s.error_message());
    }
    noteRevision(resp.header().revision());
  }
  std::string version;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.requestTimeout);
    pb::StatusResponse status;
    if (clients_->maintenance->Status(&ctx, pb::StatusRequest(), &status).ok()) {
      version = status.version();
    }
  }
  (void)compactedRevision();
  {
    MutexLock lock(mu_);
    stopping_ = false;
  }
  retrier_ = std::thread([this] { retryLoop(); });
  if (options_.compactionInterval.count() > 0) {
    compactor_ = std::thread([this] { compactorLoop(); });
  }
  spdlog::info("store: etcd {} (version {}) under {} at revision {} (compacted {})", joined,
               version.empty() ? "unknown" : version, prefix_, lastRevision_.load(),
               compactedSeen_.load());
  return Status::ok();
}

void EtcdStore::stop() {
  std::vector<std::weak_ptr<EtcdWatchCore>> watches;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    watches.swap(watches_);
    restarts_.clear();
    compactorCv_.notify_all();
    retryCv_.notify_all();
  }
  if (compactor_.joinable()) compactor_.join();
  if (retrier_.joinable()) retrier_.join();
  for (auto& w : watches) {
    if (auto core = w.lock()) core->end(unavailableError("the store stopped"));
  }
}

EtcdStore::Deadline EtcdStore::deadlineFromNow() const {
  return std::chrono::system_clock::now() + options_.requestTimeout;
}

Result<Object> EtcdStore::readCurrent(const std::string& resource, const std::string& ns,
                                      const std::string& name, Deadline deadline) {
  pb::RangeRequest req;
  req.set_key(objectKey(resource, ns, name));
  pb::RangeResponse resp;
  auto s = call(*clients_->kv, &pb::KV::Stub::Range, req, &resp, deadline, true);
  if (!s.ok()) return fromGrpc(s, "get " + keyString(resource, ns, name));
  noteRevision(resp.header().revision());
  const std::string what = keyString(resource, ns, name);
  if (resp.kvs().empty()) return notFoundError(what + " not found");
  const auto& kv = resp.kvs(0);
  if (isMarked(kv.value())) {
    // An unsafe delete that stopped between its two writes: finish it now, so that watches
    // see the deletion; either way the object is gone.
    (void)finishUnsafeDelete(req.key(), kv.mod_revision(), deadline);
    return notFoundError(what + " not found");
  }
  return Object{resource, ns, name, kv.value(), kv.create_revision(), kv.mod_revision()};
}

Result<Object> EtcdStore::get(const std::string& resource, const std::string& ns,
                              const std::string& name) {
  if (!clients_) return unavailableError("etcd: the store is not started");
  return readCurrent(resource, ns, name, deadlineFromNow());
}

Result<ListResult> EtcdStore::list(const ListOptions& options) {
  if (!clients_) return unavailableError("etcd: the store is not started");
  if (options.resource.empty()) return badRequestError("list: resource is required");
  const Deadline deadline = deadlineFromNow();
  ListResult result;
  const std::string prefix = rangePrefix(options.resource, options.namespace_);
  std::string from = prefix;
  int64_t rev = 0;
  if (!options.continueToken.empty()) {
    std::string ns, name;
    if (!decodeContinue(options.continueToken, rev, ns, name) || rev <= 0) {
      return badRequestError("continue: invalid continue token");
    }
    // The next key after the last one returned, read at the first page's revision: the pages
    // are one consistent snapshot (as Kubernetes' paginated lists on etcd).
    from = std::max(objectKey(options.resource, ns, name) + std::string(1, '\0'), prefix);
  }
  const bool tokenGiven = rev > 0;
  std::vector<std::pair<std::string, int64_t>> marked;  // half-done unsafe deletes seen
  auto finishMarked = [&] {
    for (const auto& [key, markedRev] : marked) (void)finishUnsafeDelete(key, markedRev, deadline);
  };
  constexpr int64_t kChunk = 1000;
  for (;;) {
    pb::RangeRequest req;
    req.set_key(from);
    req.set_range_end(prefixEnd(prefix));
    req.set_revision(rev);
    int64_t want = kChunk;
    if (options.limit > 0 && !options.predicate) {
      want =
          std::min<int64_t>(kChunk, options.limit - static_cast<int64_t>(result.items.size()) + 1);
    }
    req.set_limit(want);
    pb::RangeResponse resp;
    auto s = call(*clients_->kv, &pb::KV::Stub::Range, req, &resp, deadline, true);
    if (!s.ok()) {
      if (tokenGiven && isCompacted(s)) return continueExpired();
      if (tokenGiven && isFutureRevision(s)) {
        return badRequestError("continue: invalid continue token (revision " + std::to_string(rev) +
                               " is ahead of the store)");
      }
      return fromGrpc(s, "list " + options.resource);
    }
    noteRevision(resp.header().revision());
    if (rev == 0) rev = resp.header().revision();  // later chunks read the same snapshot
    for (const auto& kv : resp.kvs()) {
      from = kv.key() + std::string(1, '\0');
      if (isMarked(kv.value())) {
        if (!tokenGiven) marked.emplace_back(kv.key(), kv.mod_revision());
        continue;
      }
      Object o;
      if (!parseKey(kv.key(), o)) continue;
      o.value = kv.value();
      o.createRevision = kv.create_revision();
      o.modRevision = kv.mod_revision();
      if (options.predicate && !options.predicate(o)) continue;
      if (options.limit > 0 && static_cast<int64_t>(result.items.size()) == options.limit) {
        const Object& last = result.items.back();
        result.continueToken = encodeContinue(rev, last.namespace_, last.name);
        result.revision = rev;
        finishMarked();
        return result;
      }
      result.items.push_back(std::move(o));
    }
    if (!resp.more()) break;
  }
  result.revision = rev;
  finishMarked();
  return result;
}

Result<int64_t> EtcdStore::finishUnsafeDelete(const std::string& key, int64_t markedRevision,
                                              Deadline deadline) {
  pb::TxnRequest txn;
  *txn.add_compare() = compareMod(key, markedRevision);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  pb::TxnResponse resp;
  auto s = call(*clients_->kv, &pb::KV::Stub::Txn, txn, &resp, deadline, false);
  if (!s.ok()) return fromGrpc(s, "delete " + key);
  noteRevision(resp.header().revision());
  if (!resp.succeeded()) {
    // Someone else finished it (or the key changed since): it is not this call's delete.
    return Status(Code::kConflict, "etcd: " + key + " changed while its deletion was finished");
  }
  spdlog::warn("store: {} deleted unread at revision {}", key, resp.header().revision());
  return resp.header().revision();
}

namespace {

Status conflictAt(const std::string& what, int64_t current, int64_t expected) {
  return Status(Code::kConflict,
                "the object has been modified; please apply your changes to the latest version "
                "and try again (" +
                    what + " is at revision " + std::to_string(current) + ", not " +
                    std::to_string(expected) + ")");
}

}  // namespace

Result<Object> EtcdStore::create(const std::string& resource, const std::string& ns,
                                 const std::string& name, std::string value) {
  if (!clients_) return unavailableError("etcd: the store is not started");
  const Deadline deadline = deadlineFromNow();
  const std::string key = objectKey(resource, ns, name);
  for (int attempt = 0;; ++attempt) {
    pb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(key);
    cmp->set_target(pb::Compare::CREATE);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_create_revision(0);  // the key does not exist
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    txn.add_failure()->mutable_request_range()->set_key(key);
    pb::TxnResponse resp;
    auto s = call(*clients_->kv, &pb::KV::Stub::Txn, txn, &resp, deadline, false);
    if (!s.ok()) return fromGrpc(s, "create " + keyString(resource, ns, name));
    const int64_t rev = resp.header().revision();
    noteRevision(rev);
    if (resp.succeeded()) return Object{resource, ns, name, std::move(value), rev, rev};
    const auto& found = resp.responses(0).response_range();
    if (attempt == 0 && found.kvs_size() == 1 && isMarked(found.kvs(0).value())) {
      // An unsafe delete that stopped between its two writes: finish it, then create.
      auto f = finishUnsafeDelete(key, found.kvs(0).mod_revision(), deadline);
      if (!f && f.status().code() != Code::kConflict) return f.status();
      continue;
    }
    return Status(Code::kAlreadyExists, keyString(resource, ns, name) + " already exists");
  }
}

Result<Object> EtcdStore::update(const std::string& resource, const std::string& ns,
                                 const std::string& name, std::string value,
                                 int64_t expectedRevision) {
  return swap(resource, ns, name, std::move(value), expectedRevision);
}

Result<Object> EtcdStore::remove(const std::string& resource, const std::string& ns,
                                 const std::string& name, int64_t expectedRevision) {
  return swap(resource, ns, name, std::nullopt, expectedRevision);
}

Result<Object> EtcdStore::swap(const std::string& resource, const std::string& ns,
                               const std::string& name, std::optional<std::string> value,
                               int64_t expectedRevision) {
  if (!clients_) return unavailableError("etcd: the store is not started");
  const Deadline deadline = deadlineFromNow();
  const std::string key = objectKey(resource, ns, name);
  const std::string what = keyString(resource, ns, name);
  const bool isDelete = !value;
  // Unconditional: read the current revision and swap against it, again while others win,
  // until the deadline.
  for (;;) {
    int64_t against = expectedRevision;
    if (expectedRevision == 0) {
      auto cur = readCurrent(resource, ns, name, deadline);
      if (!cur) return cur.status();
      against = cur->modRevision;
    }
    pb::TxnRequest txn;
    *txn.add_compare() = compareMod(key, against);
    if (isDelete) {
      auto* del = txn.add_success()->mutable_request_delete_range();
      del->set_key(key);
      del->set_prev_kv(true);
    } else {
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(key);
      put->set_value(*value);
      put->set_prev_kv(true);
    }
    txn.add_failure()->mutable_request_range()->set_key(key);
    pb::TxnResponse resp;
    auto s = call(*clients_->kv, &pb::KV::Stub::Txn, txn, &resp, deadline, false);
    if (!s.ok()) return fromGrpc(s, (isDelete ? "delete " : "update ") + what);
    const int64_t rev = resp.header().revision();
    noteRevision(rev);
    if (resp.succeeded()) {
      if (!isDelete) {
        const auto& prev = resp.responses(0).response_put().prev_kv();
        return Object{resource, ns, name, std::move(*value), prev.create_revision(), rev};
      }
      const auto& deleted = resp.responses(0).response_delete_range();
      if (deleted.prev_kvs().empty()) return notFoundError(what + " not found");
      const auto& prev = deleted.prev_kvs(0);
      return Object{resource, ns, name, prev.value(), prev.create_revision(), rev};
    }
    const auto& found = resp.responses(0).response_range();
    if (found.kvs().empty() || isMarked(found.kvs(0).value())) {
      return notFoundError(what + " not found");
    }
    if (expectedRevision != 0) {
      return conflictAt(what, found.kvs(0).mod_revision(), expectedRevision);
    }
    if (std::chrono::system_clock::now() >= deadline) {
      return unavailableError("etcd: " + std::string(isDelete ? "delete " : "update ") + what +
                              ": other writers kept winning");
    }
  }
}

Result<Object> EtcdStore::removeUnsafe(const std::string& resource, const std::string& ns,
                                       const std::string& name, std::string tombstone,
                                       int64_t expectedRevision) {
  if (!clients_) return unavailableError("etcd: the store is not started");
  const Deadline deadline = deadlineFromNow();
  const std::string key = objectKey(resource, ns, name);
  const std::string what = keyString(resource, ns, name);
  if (expectedRevision == 0) {
    auto cur = readCurrent(resource, ns, name, deadline);
    if (!cur) return cur.status();
    return Status(Code::kConflict, what + " is not damaged on disk; delete it normally");
  }
  pb::TxnRequest txn;
  *txn.add_compare() = compareMod(key, expectedRevision);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(std::string(kUnsafeDeleteMark) + tombstone);
  txn.add_failure()->mutable_request_range()->set_key(key);
  pb::TxnResponse resp;
  auto s = call(*clients_->kv, &pb::KV::Stub::Txn, txn, &resp, deadline, false);
  if (!s.ok()) return fromGrpc(s, "delete " + what);
  noteRevision(resp.header().revision());
  int64_t marked = resp.header().revision();
  if (!resp.succeeded()) {
    const auto& found = resp.responses(0).response_range();
    if (found.kvs().empty()) return notFoundError(what + " not found");
    if (!isMarked(found.kvs(0).value())) {
      return Status(Code::kConflict, what + " changed since it could not be read; read it again");
    }
    // This call's first write went through but its answer was lost, or an earlier call stopped
    // after it: finish that deletion.
    marked = found.kvs(0).mod_revision();
    tombstone = found.kvs(0).value().substr(kUnsafeDeleteMark.size());
  }
  auto rev = finishUnsafeDelete(key, marked, deadline);
  if (!rev) {
    return rev.status().code() == Code::kConflict ? notFoundError(what + " not found")
                                                  : rev.status();
  }
  return Object{resource, ns, name, std::move(tombstone), *rev, *rev};
}

Result<std::unique_ptr<Watch>> EtcdStore::watch(const WatchOptions& options) {
  if (!clients_) return unavailableError("etcd: the store is not started");
  const Deadline deadline = deadlineFromNow();
  // Where the watch starts, checked now: a read at the first revision to deliver fails if etcd
  // compacted it; one past the current revision is fine (the watch waits for the next write).
  int64_t next = options.fromRevision + 1;
  pb::RangeRequest req;
  req.set_key(compactKey_);
  req.set_count_only(true);
  if (options.fromRevision > 0) req.set_revision(next);
  pb::RangeResponse resp;
  auto s = call(*clients_->kv, &pb::KV::Stub::Range, req, &resp, deadline, true);
  if (!s.ok() && isFutureRevision(s)) {
    req.set_revision(0);
    s = call(*clients_->kv, &pb::KV::Stub::Range, req, &resp, deadline, true);
    // A revision this store never reached (linearizable read: no member is behind it) was
    // handed out by another store, the one this cluster was moved from: 410, and the client
    // relists instead of waiting for etcd to get there.
    if (s.ok() && options.fromRevision > resp.header().revision()) {
      return Status(Code::kExpired, "etcd: watch from revision " +
                                        std::to_string(options.fromRevision) +
                                        ", which the store never reached (it is at " +
                                        std::to_string(resp.header().revision()) + "); list again");
    }
  }
  if (!s.ok()) {
    if (isCompacted(s)) {
      return Status(Code::kExpired, "etcd: watch from revision " +
                                        std::to_string(options.fromRevision) +
                                        ": the history was compacted");
    }
    return fromGrpc(s, "watch");
  }
  noteRevision(resp.header().revision());
  if (options.fromRevision <= 0) next = resp.header().revision() + 1;
  auto core = std::make_shared<EtcdWatchCore>(this, options, next);
  {
    MutexLock lock(mu_);
    if (stopping_) return unavailableError("etcd: the store stopped");
    std::erase_if(watches_, [](const auto& w) { return w.expired(); });
    watches_.push_back(core);
  }
  core->startStream();
  return std::unique_ptr<Watch>(std::make_unique<EtcdWatch>(std::move(core)));
}

void EtcdStore::scheduleRestart(std::weak_ptr<EtcdWatchCore> watch,
                                std::chrono::milliseconds delay) {
  MutexLock lock(mu_);
  if (stopping_) {
    if (auto core = watch.lock()) {
      lock.unlock();
      core->end(unavailableError("the store stopped"));
    }
    return;
  }
  restarts_.emplace_back(std::chrono::steady_clock::now() + delay, std::move(watch));
  retryCv_.notify_all();
}

void EtcdStore::retryLoop() {
  MutexLock lock(mu_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    auto next = now + std::chrono::seconds(60);
    std::vector<std::weak_ptr<EtcdWatchCore>> due;
    for (auto it = restarts_.begin(); it != restarts_.end();) {
      if (it->first <= now) {
        due.push_back(std::move(it->second));
        it = restarts_.erase(it);
      } else {
        next = std::min(next, it->first);
        ++it;
      }
    }
    if (!due.empty()) {
      lock.unlock();
      for (auto& w : due) {
        if (auto core = w.lock()) core->startStream();
      }
      lock.lock();
      continue;
    }
    lock.waitFor(retryCv_, next - now);
  }
}

Result<int64_t> EtcdStore::countObjects() {
  if (!clients_) return unavailableError("etcd: the store is not started");
  const Deadline deadline = deadlineFromNow();
  pb::RangeRequest req;
  req.set_key(prefix_ + "/");
  req.set_range_end(prefixEnd(req.key()));
  req.set_count_only(true);
  pb::RangeResponse resp;
  auto s = call(*clients_->kv, &pb::KV::Stub::Range, req, &resp, deadline, true);
  if (!s.ok()) return fromGrpc(s, "count " + req.key());
  return resp.count();
}

int64_t EtcdStore::currentRevision() {
  if (!clients_) return lastRevision_.load();
  const Deadline deadline = deadlineFromNow();
  pb::RangeRequest req;
  req.set_key(compactKey_);
  req.set_count_only(true);
  pb::RangeResponse resp;
  if (call(*clients_->kv, &pb::KV::Stub::Range, req, &resp, deadline, true).ok()) {
    noteRevision(resp.header().revision());
  }
  return lastRevision_.load();
}

int64_t EtcdStore::compactedRevision() {
  if (!clients_) return compactedSeen_.load();
  const Deadline deadline = deadlineFromNow();
  pb::RangeRequest req;
  req.set_key(compactKey_);
  pb::RangeResponse resp;
  if (call(*clients_->kv, &pb::KV::Stub::Range, req, &resp, deadline, true).ok() &&
      resp.kvs_size() == 1) {
    try {
      const int64_t stored = std::stoll(resp.kvs(0).value());
      int64_t seen = compactedSeen_.load();
      while (stored > seen && !compactedSeen_.compare_exchange_weak(seen, stored)) {
      }
    } catch (...) {
      spdlog::warn("store: etcd key {} does not hold a revision", compactKey_);
    }
  }
  return compactedSeen_.load();
}

Status EtcdStore::compact(int64_t revision) {
  if (!clients_) return unavailableError("etcd: the store is not started");
  const int64_t current = currentRevision();
  const Deadline deadline = deadlineFromNow();
  // etcd keeps the state at the revision it compacts to, and cannot compact past its current
  // revision: compacting to revision+1 drops the history up to and including `revision`.
  const int64_t target = std::min(revision + 1, current);
  if (target <= 1 || target - 1 <= compactedRevision()) return Status::ok();
  pb::CompactionRequest req;
  req.set_revision(target);
  pb::CompactionResponse resp;
  auto s = call(*clients_->kv, &pb::KV::Stub::Compact, req, &resp, deadline, false);
  if (!s.ok() && !isCompacted(s)) return fromGrpc(s, "compact to " + std::to_string(target));
  // Record it where every replica finds it (compactedRevision); never move it backwards.
  for (int attempt = 0; attempt < 16; ++attempt) {
    pb::RangeRequest get;
    get.set_key(compactKey_);
    pb::RangeResponse got;
    auto g = call(*clients_->kv, &pb::KV::Stub::Range, get, &got, deadline, true);
    if (!g.ok()) return fromGrpc(g, "compact");
    int64_t stored = 0, mod = 0;
    if (got.kvs_size() == 1) {
      mod = got.kvs(0).mod_revision();
      try {
        stored = std::stoll(got.kvs(0).value());
      } catch (...) {
      }
    }
    if (stored >= target - 1) break;
    pb::TxnRequest txn;
    *txn.add_compare() = compareMod(compactKey_, mod);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(compactKey_);
    put->set_value(std::to_string(target - 1));
    pb::TxnResponse done;
    auto t = call(*clients_->kv, &pb::KV::Stub::Txn, txn, &done, deadline, false);
    if (!t.ok()) return fromGrpc(t, "compact");
    noteRevision(done.header().revision());
    if (done.succeeded()) break;
  }
  int64_t seen = compactedSeen_.load();
  while (target - 1 > seen && !compactedSeen_.compare_exchange_weak(seen, target - 1)) {
  }
  return Status::ok();
}

Status EtcdStore::compactOnce() {
  const auto now = clock_.steadyNow();
  const int64_t rev = currentRevision();
  int64_t target = 0;
  {
    MutexLock lock(mu_);
    samples_.emplace_back(now, rev);
    while (!samples_.empty() && samples_.front().first + options_.historyWindow <= now) {
      target = samples_.front().second;
      samples_.pop_front();
    }
  }
  if (target <= 0) return Status::ok();
  return compact(target);
}

void EtcdStore::compactorLoop() {
  MutexLock lock(mu_);
  while (!stopping_) {
    lock.waitFor(compactorCv_, options_.compactionInterval);
    if (stopping_) break;
    lock.unlock();
    if (auto s = compactOnce(); !s.isOk()) spdlog::warn("store: compaction: {}", s.toString());
    lock.lock();
  }
}

Status EtcdStore::probeWrite() {
  if (!clients_) return unavailableError("etcd: the store is not started");
  const Deadline deadline = deadlineFromNow();
  pb::AlarmRequest req;
  req.set_action(pb::AlarmRequest::GET);
  pb::AlarmResponse resp;
  auto s = call(*clients_->maintenance, &pb::Maintenance::Stub::Alarm, req, &resp, deadline, true);
  if (!s.ok()) return fromGrpc(s, "alarms");
  if (!resp.alarms().empty()) {
    const auto& a = resp.alarms(0);
    return unavailableError(std::string("etcd: alarm ") +
                            (a.alarm() == pb::NOSPACE   ? "NOSPACE (the database is full)"
                             : a.alarm() == pb::CORRUPT ? "CORRUPT (a member's data differs)"
                                                        : "raised") +
                            " on member " + std::to_string(a.memberid()));
  }
  pb::RangeRequest read;
  read.set_key(compactKey_);
  read.set_count_only(true);
  pb::RangeResponse got;
  auto r = call(*clients_->kv, &pb::KV::Stub::Range, read, &got, deadline, true);
  if (!r.ok()) return fromGrpc(r, "quorum read");
  return Status::ok();
}

}  // namespace ep::store
