#include "cloudcore/models/blob_server.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/api/json_limits.h"
#include "common/api/models.h"
#include "common/api/object_util.h"
#include "common/api/upgrades.h"
#include "common/thread_annotations.h"
#include "proto/tunnel.pb.h"

namespace ep::models {
namespace {

constexpr const char* kBusy = "cloudcore is busy serving blobs; ask again";

namespace pb = edgeplane::tunnel::v1;
using Json = nlohmann::json;

constexpr int64_t kGrantMillis = 60'000;
constexpr size_t kMaxObjectDepth = 64;

int64_t steadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// The bytes of chunk data in flight (BlobServerOptions::maxBytesInFlight and
// maxBytesInFlightPerNode). Thread-safe.
struct BlobServer::Budget {
  Budget(uint64_t max, uint64_t maxPerNode) : max(max), maxPerNode(maxPerNode) {}
  enum class Grant { kGranted, kNodeOverShare, kStopping };
  // Room for `n` bytes for `node`: refused at once when the node holds its share already, else
  // waits for room (always granted when nothing is in flight).
  Grant acquire(const std::string& node, uint64_t n) {
    MutexLock l(mu);
    if (auto it = perNode.find(node); it != perNode.end() && it->second + n > maxPerNode) {
      return Grant::kNodeOverShare;
    }
    ++waiting;
    while (!(stopping || used == 0 || used + n <= max)) l.wait(cv);
    --waiting;
    if (stopping) return Grant::kStopping;
    used += n;
    perNode[node] += n;
    return Grant::kGranted;
  }
  void release(const std::string& node, uint64_t n) {
    {
      MutexLock l(mu);
      used -= n;
      if (auto it = perNode.find(node); it != perNode.end() && (it->second -= n) == 0) {
        perNode.erase(it);
      }
    }
    cv.notify_all();
  }
  void setStopping(bool s) {
    {
      MutexLock l(mu);
      stopping = s;
    }
    cv.notify_all();
  }
  std::pair<uint64_t, uint64_t> usedAndWaiting() {
    MutexLock l(mu);
    return {used, waiting};
  }

  const uint64_t max;
  const uint64_t maxPerNode;
  Mutex mu;
  std::condition_variable cv;
  uint64_t used EP_GUARDED_BY(mu) = 0;
  std::map<std::string, uint64_t> perNode EP_GUARDED_BY(mu);
  uint64_t waiting EP_GUARDED_BY(mu) = 0;
  bool stopping EP_GUARDED_BY(mu) = false;
};

// Room granted for one chunk, given back when the last holder lets go: the reader (an error or
// an exception before the answer) or the answer's message (once the connection is done with it).
class BlobServer::Reservation {
 public:
  Reservation(std::shared_ptr<Budget> budget, std::string node, uint64_t bytes)
      : budget_(std::move(budget)), node_(std::move(node)), bytes_(bytes) {}
  ~Reservation() { budget_->release(node_, bytes_); }
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

 private:
  const std::shared_ptr<Budget> budget_;
  const std::string node_;
  const uint64_t bytes_;
};

BlobServer::BlobServer(BlobStore& blobs, store::Store& store, BlobServerOptions options)
    : blobs_(blobs),
      store_(store),
      options_(options),
      budget_(std::make_shared<Budget>(options.maxBytesInFlight, options.maxBytesInFlightPerNode)) {
}

BlobServer::~BlobServer() {
  stop();
}

void BlobServer::start() {
  MutexLock l(mu_);
  stopping_ = false;
  budget_->setStopping(false);
  for (size_t i = 0; i < std::max<size_t>(options_.threads, 1); ++i) {
    threads_.emplace_back([this] { run(); });
  }
}

void BlobServer::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  budget_->setStopping(true);  // readers waiting for room give up
  for (auto& t : threads_) t.join();
  threads_.clear();
}

BlobServerStats BlobServer::stats() const {
  auto [used, waiting] = budget_->usedAndWaiting();
  return {chunksSent_.load(), bytesSent_.load(), refused_.load(), failed_.load(), used, waiting};
}

void BlobServer::reply(const Job& job, const std::string& error, bool retryable,
                       const BlobChunkData* chunk, const std::shared_ptr<Reservation>& room) {
  auto sink = job.sink.lock();
  if (!sink) return;
  std::shared_ptr<pb::CloudMessage> msg;
  if (room) {
    // The room goes back with the message (not with the control block, which a weak_ptr
    // could keep).
    msg.reset(new pb::CloudMessage, [held = room](pb::CloudMessage* m) mutable {
      delete m;
      held.reset();
    });
  } else {
    msg = std::make_shared<pb::CloudMessage>();
  }
  auto* c = msg->mutable_blob_chunk();
  c->set_id(job.id);
  c->set_digest(job.digest);
  c->set_offset(job.offset);
  if (chunk != nullptr) {
    c->set_data(chunk->data);
    c->set_chunk_sha256(chunk->sha256);
    c->set_blob_size(chunk->blobSize);
  } else {
    c->set_error(error);
    c->set_retryable(retryable);
    c->set_busy(error == kBusy);
  }
  (void)sink->send(std::move(msg));
}

void BlobServer::onBlobRequest(const std::string& node,
                               const std::shared_ptr<cloudhub::SyncSink>& sink,
                               const pb::BlobRequest& request) {
  Job job{node,
          sink,
          request.id(),
          request.digest(),
          request.offset(),
          request.namespace_(),
          request.model(),
          request.release()};
  if (!api::isSha256Digest(job.digest)) {
    ++refused_;
    reply(job, "digest: not sha256:<64 lower-case hex digits>", false, nullptr);
    return;
  }
  if (job.offset % api::kBlobChunkBytes != 0) {
    ++refused_;
    reply(job, "offset: not a multiple of " + std::to_string(api::kBlobChunkBytes), false, nullptr);
    return;
  }
  if (job.release.empty() && (job.ns.empty() || job.model.empty())) {
    ++refused_;
    reply(job, "namespace and model (or release): required", false, nullptr);
    return;
  }
  bool busy = false;
  {
    MutexLock l(mu_);
    size_t& mine = perNode_[node];
    if (stopping_ || queue_.size() >= options_.maxQueued || mine >= options_.maxPerNode) {
      busy = true;
      if (mine == 0) perNode_.erase(node);
    } else {
      ++mine;
      queue_.push_back(std::move(job));
    }
  }
  if (busy) {
    ++failed_;
    Job refusedJob{node, sink, request.id(), request.digest(), request.offset(), "", "", ""};
    reply(refusedJob, kBusy, true, nullptr);
    return;
  }
  cv_.notify_one();
}

void BlobServer::run() {
  for (;;) {
    Job job;
    {
      MutexLock l(mu_);
      while (!stopping_ && queue_.empty()) l.wait(cv_);
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      serve(job);
    } catch (const std::exception& e) {  // nothing may escape a thread
      spdlog::error("models: serving {} to node {}: {}", job.digest, job.node, e.what());
      reply(job, "internal error", true, nullptr);
    }
    MutexLock l(mu_);
    if (auto it = perNode_.find(job.node); it != perNode_.end() && --it->second == 0) {
      perNode_.erase(it);
    }
  }
}

void BlobServer::serve(const Job& job) {
  if (std::string why = authorize(job); !why.empty()) {
    ++refused_;
    spdlog::warn("models: node {} refused blob {}: {}", job.node, job.digest, why);
    reply(job, why, false, nullptr);
    return;
  }
  // Room for the chunk's bytes until the node's connection is done with them.
  switch (budget_->acquire(job.node, api::kBlobChunkBytes)) {
    case Budget::Grant::kGranted:
      break;
    case Budget::Grant::kNodeOverShare:
      ++failed_;
      reply(job, kBusy, true, nullptr);
      return;
    case Budget::Grant::kStopping:
      return;
  }
  auto room = std::make_shared<Reservation>(budget_, job.node, api::kBlobChunkBytes);
  auto chunk = blobs_.readChunk(job.digest, job.offset);
  if (!chunk.isOk()) {
    ++failed_;
    if (chunk.status().code() == Code::kInternal) {
      spdlog::error("models: {}", chunk.status().message());
    }
    const bool retryable = chunk.status().code() != Code::kInvalid;
    reply(job, chunk.status().message(), retryable, nullptr);
    return;
  }
  ++chunksSent_;
  bytesSent_ += chunk->data.size();
  reply(job, "", false, &*chunk, room);
}

std::string BlobServer::authorize(const Job& job) {
  const std::string key =
      job.node + "\n" + job.ns + "\n" + job.model + "\n" + job.release + "\n" + job.digest;
  const int64_t now = steadyMillis();
  {
    MutexLock l(mu_);
    if (auto it = grants_.find(key); it != grants_.end()) {
      if (it->second > now) return "";
      grants_.erase(it);
    }
  }
  if (!job.release.empty()) {
    if (std::string why = authorizeRelease(job); !why.empty()) return why;
    MutexLock l(mu_);
    if (grants_.size() > 100'000) grants_.clear();
    grants_[key] = now + kGrantMillis;
    return "";
  }
  const std::string modelName = job.ns + "/" + job.model;
  auto model = store_.get(api::kModelResource, job.ns, job.model);
  if (!model.isOk()) return "model " + modelName + " not found";
  Json m = api::parseJsonBounded(model->value, kMaxObjectDepth);
  if (!api::modelDigests(m).count(job.digest)) {
    return "model " + modelName + " does not refer to " + job.digest;
  }
  store::ListOptions list;
  list.resource = "pods";
  list.namespace_ = job.ns;
  const std::string node = job.node;
  list.predicate = [node](const store::Object& o) {
    return o.value.find(api::kModelDriver) != std::string::npos &&
           o.value.find(node) != std::string::npos;
  };
  auto pods = store_.list(list);
  if (!pods.isOk()) return "cannot list pods: " + pods.status().message();
  bool used = false;
  for (const auto& o : pods->items) {
    Json pod = api::parseJsonBounded(o.value, kMaxObjectDepth);
    if (api::stringAt(pod, "spec.nodeName") != job.node) continue;
    for (const auto& v : api::modelVolumes(pod)) used = used || v.model == job.model;
  }
  if (!used) return "no pod on node " + job.node + " uses model " + modelName;
  MutexLock l(mu_);
  if (grants_.size() > 100'000) grants_.clear();
  grants_[key] = now + kGrantMillis;
  return "";
}

std::string BlobServer::authorizeRelease(const Job& job) {
  auto release = store_.get(api::kEdgecoreReleaseResource, "", job.release);
  if (!release.isOk()) return "edgecore release " + job.release + " not found";
  bool holds = false;
  for (const auto& b :
       api::releaseBinaries(api::parseJsonBounded(release->value, kMaxObjectDepth))) {
    holds = holds || b.digest == job.digest;
  }
  if (!holds) return "edgecore release " + job.release + " does not hold " + job.digest;
  store::ListOptions list;
  list.resource = api::kNodeUpgradeJobResource;
  const std::string node = job.node;
  list.predicate = [node](const store::Object& o) {
    return o.value.find(node) != std::string::npos;
  };
  auto jobs = store_.list(list);
  if (!jobs.isOk()) return "cannot list NodeUpgradeJobs: " + jobs.status().message();
  for (const auto& o : jobs->items) {
    Json j = api::parseJsonBounded(o.value, kMaxObjectDepth);
    if (api::stringAt(j, "spec.version") != job.release) continue;
    for (const auto& n : api::upgradingNodesOf(j)) {
      if (n == job.node) return "";
    }
  }
  return "no NodeUpgradeJob to " + job.release + " is upgrading node " + job.node;
}

}  // namespace ep::models
