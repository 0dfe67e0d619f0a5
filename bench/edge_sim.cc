// Edge-node simulator: many lightweight simulated edgecores in one process, each a real tunnel
// client (own gRPC channel and TCP connection, protocol v1: Hello with inventory, SyncAck for
// every Sync, NODE_STATUS heartbeats through Report/ReportAck). It measures, against a running
// cloudcore:
//   - time for all nodes to connect and receive their initial Sync
//   - cloudcore RSS per connected idle node and CPU while nodes heartbeat (--cloud-pid)
//   - apply -> acknowledged-by-all latency: PATCHes of a ConfigMap that a pod on every node
//     references (p50/p99 over rounds, and across nodes)
//   - with --wait-restart: time for all nodes to reconnect and resync after cloudcore restarts
//   - with --devices-per-node N: N Devices (devices.kubeedge.io/v1beta1) bound to every node
//     are created first (create rate, cloudcore RSS with them); the nodes' initial Syncs then
//     carry them (issue 10: cloudcore with 100,000 devices across simulated nodes)
//   - with --model-mib N (and --edgectl): a model of N MiB fanned out to every node (issue 11):
//     `edgectl model push` of v1, a pod using it bound to every node, and every node fetching
//     the blob over its tunnel as edgecore does (BlobRequests of 256 KiB, 16 in flight; each
//     chunk's size is checked, its bytes are not hashed here), then v2 pushed while all hold
//     v1: the time from each push (and from the pods' creation) to the last node holding every
//     byte, the payload the cloud sent, and cloudcore's CPU and peak RSS meanwhile
// Every node joins as edgecore does (a bootstrap token the sim creates with the admin
// kubeconfig, the Join RPC with a CSR) and then speaks mutual TLS 1.3 with its own certificate;
// the join rate and the TLS connect rate are reported.
//
//   build/bench/edge_sim --cloud 127.0.0.1:6444 --kubeconfig run/cloudcore/admin.kubeconfig
//       --nodes 1000 --cloud-pid $(pidof cloudcore) --idle-seconds 20 --rounds 20
#include <grpc/grpc_security.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/http/client.h"
#include "common/kubeconfig/kubeconfig.h"
#include "common/pki/join_token.h"
#include "common/pki/pki.h"
#include "common/tunnel_features.h"
#include "proto/grpc_runtime.h"
#include "proto/tunnel.grpc.pb.h"

namespace {

namespace tv1 = edgeplane::tunnel::v1;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Options {
  std::string cloud = "127.0.0.1:6444";
  std::string kubeconfig = "run/cloudcore/admin.kubeconfig";
  std::string api;  // default: the kubeconfig's server
  int joinThreads = 16;
  int nodes = 100;
  std::string prefix = "sim-";
  int heartbeatSeconds = 10;
  // Every heartbeat a full NODE_STATUS report, as edgecore before Leases (and with a cloud that
  // does not list "node-lease"); otherwise one full report per connection, then LeaseRenewals.
  bool fullHeartbeats = false;
  int idleSeconds = 20;
  int rounds = 20;
  int cloudPid = 0;
  bool waitRestart = false;
  bool resume = true;  // TLS session resumption, as edgecore does it
  int connectParallel = 200;
  int devicesPerNode = 0;
  int modelMib = 0;
  std::string edgectl = "build/edgectl/edgectl";
};

class Sim;

// One simulated edge node: one channel, one stream at a time, reconnects on failure.
class SimNode : public grpc::ClientBidiReactor<tv1::EdgeMessage, tv1::CloudMessage> {
 public:
  SimNode(Sim* sim, int index, std::string name)
      : sim_(sim), index_(index), name_(std::move(name)) {}

  void connect(const std::shared_ptr<grpc::Channel>& channel);
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& s) override;

  void queueHeartbeat();
  const std::string& name() const { return name_; }
  std::string keyPem, certPem;  // set by the join, before the first connect
  // The node's own TLS session cache (never shared: a session carries the node's certificate).
  grpc_ssl_session_cache* sessionCache = nullptr;
  // Made once: gRPC builds the TLS context (certificates parsed, CA store loaded) per credentials
  // object, which an edge does once per certificate, not per reconnect.
  std::shared_ptr<grpc::ChannelCredentials> credentials;

  std::atomic<bool> connected{false};
  std::atomic<bool> synced{false};
  std::atomic<int64_t> changesReceived{0};
  std::atomic<uint64_t> blobBytes{0};  // model payload received (resent bytes included)

 private:
  void queue(tv1::EdgeMessage m);  // requires mu_
  // Model fan-out: the blob the bench Model names, fetched in 256 KiB chunks.
  void startFetchLocked(const std::string& digest);
  void requestMoreLocked();
  void onBlobChunkLocked(const tv1::BlobChunk& c);
  void writeNextLocked();

  Sim* sim_;
  const int index_;
  const std::string name_;
  std::unique_ptr<tv1::Tunnel::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  tv1::CloudMessage in_;
  std::mutex mu_;
  std::deque<tv1::EdgeMessage> out_;  // guarded by mu_
  bool writing_ = false;              // guarded by mu_
  bool active_ = false;               // guarded by mu_: a stream is running
  uint64_t sequence_ = 0;             // guarded by mu_
  bool leases_ = false;               // guarded by mu_: the cloud listed "node-lease"
  bool statusSent_ = false;           // guarded by mu_: a full status went on this connection
  std::map<std::string, int64_t> inventory_;  // guarded by mu_: "resource/ns/name" -> rev
  int64_t lastRevision_ = 0;                  // guarded by mu_
  // Model fetch, guarded by mu_.
  std::string fetchDigest_;
  uint64_t fetchNext_ = 0, fetchDone_ = 0, fetchSize_ = 0, fetchId_ = 0;
  int fetchInflight_ = 0;
  int fetchErrors_ = 0;
  std::set<std::string> fetched_;  // digests this node holds whole
  bool fetchSizeKnown_ = false;
};

class Sim {
 public:
  explicit Sim(Options o) : opts_(std::move(o)) {}

  void run();
  // Called from gRPC threads.
  void onSynced(SimNode* n) {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  }
  void onChange(const tv1::Change& c, Clock::time_point at) {
    if (c.resource() != "configmaps" || c.name() != "bench-cm") return;
    std::lock_guard lock(mu_);
    auto& r = seen_[c.revision()];
    r.push_back(at);
    cv_.notify_all();
  }
  void onDisconnected(SimNode* n);
  // A node holds every byte of `digest`.
  void onBlobComplete(const std::string& node, const std::string& digest, Clock::time_point at) {
    std::lock_guard lock(mu_);
    blobDone_[digest].emplace(node, at);  // a node counts once
    cv_.notify_all();
  }
  const Options& opts() const { return opts_; }
  std::shared_ptr<grpc::Channel> newChannel(int index);
  // Loads the kubeconfig, creates a bootstrap token, joins every node (keys, CSRs, Join).
  bool setup();
  ep::http::HttpClient apiClient() { return ep::http::HttpClient(opts_.api, apiOptions_); }

 private:
  size_t countSynced();
  long rssKb(int pid);
  double cpuSeconds(int pid);
  void reconnectLoop();

  Options opts_;
  ep::http::ClientOptions apiOptions_;
  std::string caPem_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::mutex mu_;
  std::condition_variable cv_;
  void modelFanOut();
  // Creates makePod(node name) for every node, 16 requests at a time.
  void createPodPerNode(const std::function<json(const std::string&)>& makePod);

  std::map<int64_t, std::vector<Clock::time_point>> seen_;  // guarded by mu_
  // digest -> node -> when it held every byte. Guarded by mu_.
  std::map<std::string, std::map<std::string, Clock::time_point>> blobDone_;
  std::deque<SimNode*> reconnect_;  // guarded by mu_
  std::atomic<bool> stop_{false};
};

std::shared_ptr<grpc::Channel> Sim::newChannel(int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one TCP connection per node
  args.SetInt("edgeplane.sim.node", index);
  if (!nodes_[index]->credentials) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = caPem_;
    tls.pem_private_key = nodes_[index]->keyPem;
    tls.pem_cert_chain = nodes_[index]->certPem;
    nodes_[index]->credentials = grpc::SslCredentials(tls);
  }
  if (opts_.resume) {
    auto& cache = nodes_[index]->sessionCache;
    if (cache == nullptr) cache = grpc_ssl_session_cache_create_lru(1);
    grpc_arg arg = grpc_ssl_session_cache_create_channel_arg(cache);
    args.SetPointerWithVtable(arg.key, arg.value.pointer.p, arg.value.pointer.vtable);
  }
  return grpc::CreateCustomChannel(opts_.cloud, nodes_[index]->credentials, args);
}

bool Sim::setup() {
  auto creds = ep::kubeconfig::load(opts_.kubeconfig);
  if (!creds) {
    std::fprintf(stderr, "%s\n", creds.status().message().c_str());
    return false;
  }
  if (opts_.api.empty()) opts_.api = creds->server;
  apiOptions_.caPem = creds->caPem;
  apiOptions_.clientCertPem = creds->clientCertPem;
  apiOptions_.clientKeyPem = creds->clientKeyPem;
  apiOptions_.bearerToken = creds->token;
  caPem_ = creds->caPem;
  // One bootstrap token for all simulated nodes (unlimited uses, one hour).
  std::string id = *ep::pki::randomToken(6), secret = *ep::pki::randomToken(16);
  auto b64 = [](const std::string& s) { return ep::pki::base64Encode(s); };
  json token = {{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"type", "bootstrap.kubernetes.io/token"},
                {"metadata", {{"name", "bootstrap-token-" + id}, {"namespace", "kube-system"}}},
                {"data",
                 {{"token-id", b64(id)},
                  {"token-secret", b64(secret)},
                  {"usage-bootstrap-authentication", b64("true")},
                  {"expiration",
                   b64(ep::formatRfc3339(ep::SystemClock::instance().nowMillis() + 3600000))}}}};
  auto api = apiClient();
  auto r = api.request("POST", "/api/v1/namespaces/kube-system/secrets", token.dump(),
                       "application/json");
  if (!r.isOk() || r->status != 201) {
    std::fprintf(stderr, "creating the bootstrap token failed: %s\n",
                 r.isOk() ? r->body.c_str() : r.status().message().c_str());
    return false;
  }
  for (int i = 0; i < opts_.nodes; ++i) {
    nodes_.push_back(std::make_unique<SimNode>(this, i, opts_.prefix + std::to_string(i)));
  }
  auto t0 = Clock::now();
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> joiners;
  for (int t = 0; t < opts_.joinThreads; ++t) {
    joiners.emplace_back([&] {
      grpc::SslCredentialsOptions tls;
      tls.pem_root_certs = caPem_;
      auto channel = grpc::CreateChannel(opts_.cloud, grpc::SslCredentials(tls));
      auto stub = tv1::Tunnel::NewStub(channel);
      for (int i = next++; i < opts_.nodes; i = next++) {
        auto& n = *nodes_[i];
        auto key = ep::pki::generateKey();
        auto csr = ep::pki::createCsr(*key, "system:node:" + n.name(), {"system:nodes"});
        tv1::JoinRequest req;
        req.set_token(id + "." + secret);
        req.set_node_name(n.name());
        req.set_csr(*csr);
        tv1::JoinResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        auto st = stub->Join(&ctx, req, &resp);
        if (!st.ok()) {
          if (failed++ < 5)
            std::fprintf(stderr, "join %s: %s\n", n.name().c_str(), st.error_message().c_str());
          continue;
        }
        n.keyPem = *key;
        n.certPem = resp.certificate();
      }
    });
  }
  for (auto& t : joiners) t.join();
  double ms = msSince(t0);
  std::printf("joined: %d/%d nodes in %.0f ms (%.0f joins/s, %d threads)\n",
              opts_.nodes - failed.load(), opts_.nodes, ms, (opts_.nodes - failed) / (ms / 1000),
              opts_.joinThreads);
  return failed == 0;
}

void SimNode::connect(const std::shared_ptr<grpc::Channel>& channel) {
  std::lock_guard lock(mu_);
  if (active_) return;
  active_ = true;
  stub_ = tv1::Tunnel::NewStub(channel);
  ctx_ = std::make_unique<grpc::ClientContext>();
  out_.clear();
  writing_ = false;
  synced = false;
  tv1::EdgeMessage hello;
  auto* h = hello.mutable_hello();
  h->set_node_name(name_);
  h->set_protocol_version(1);
  h->set_edgecore_version("edge-sim");
  h->set_last_applied_revision(lastRevision_);
  for (const auto& [key, rev] : inventory_) {
    auto a = key.find('/'), b = key.find('/', a + 1);
    auto* o = h->add_inventory();
    o->set_resource(key.substr(0, a));
    o->set_namespace_(key.substr(a + 1, b - a - 1));
    o->set_name(key.substr(b + 1));
    o->set_revision(rev);
  }
  stub_->async()->Connect(ctx_.get(), this);
  queue(std::move(hello));
  StartRead(&in_);
  StartCall();
}

void SimNode::queue(tv1::EdgeMessage m) {
  out_.push_back(std::move(m));
  writeNextLocked();
}

void SimNode::writeNextLocked() {
  if (writing_ || out_.empty()) return;
  writing_ = true;
  StartWrite(&out_.front());
}

void SimNode::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (!ok) return;
  out_.pop_front();
  writeNextLocked();
}

void SimNode::queueHeartbeat() {
  std::lock_guard lock(mu_);
  if (!active_ || !connected) return;
  if (leases_ && statusSent_ && !sim_->opts().fullHeartbeats) {
    tv1::EdgeMessage m;
    m.mutable_lease_renewal()->set_timestamp_ms(ep::SystemClock::instance().nowMillis());
    queue(std::move(m));
    return;
  }
  statusSent_ = true;
  json node = {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", name_},
        {"labels", {{"node-role.kubernetes.io/edge", ""}, {"edgeplane.io/sim", "true"}}}}},
      {"status",
       {{"conditions",
         {{{"type", "Ready"},
           {"status", "True"},
           {"reason", "EdgeReady"},
           {"lastHeartbeatTime", ep::formatRfc3339(ep::SystemClock::instance().nowMillis())}}}},
        {"nodeInfo",
         {{"kubeletVersion", "v1.32.0-edge-sim"},
          {"architecture", "amd64"},
          {"operatingSystem", "linux"}}},
        {"capacity", {{"cpu", "2"}, {"memory", "1Gi"}, {"pods", "110"}}},
        {"allocatable", {{"cpu", "2"}, {"memory", "1Gi"}, {"pods", "110"}}}}}};
  tv1::EdgeMessage m;
  auto* r = m.mutable_report();
  r->set_sequence(++sequence_);
  r->set_kind(tv1::REPORT_KIND_NODE_STATUS);
  r->set_name(name_);
  r->set_payload(node.dump());
  queue(std::move(m));
}

void SimNode::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  auto now = Clock::now();
  std::unique_lock lock(mu_);
  if (in_.has_hello_reply()) {
    if (!in_.hello_reply().accepted()) {
      std::fprintf(stderr, "%s refused: %s\n", name_.c_str(), in_.hello_reply().reason().c_str());
    } else {
      connected = true;
      const auto& features = in_.hello_reply().features();
      leases_ =
          std::find(features.begin(), features.end(), ep::kFeatureNodeLease) != features.end();
      statusSent_ = false;
      // Answers to requests of the previous connection will not come: start the blob again.
      if (!fetchDigest_.empty()) {
        std::string d = fetchDigest_;
        fetchDigest_.clear();
        startFetchLocked(d);
      }
      lock.unlock();
      queueHeartbeat();
      lock.lock();
    }
  } else if (in_.has_sync()) {
    const auto& s = in_.sync();
    for (const auto& c : s.changes()) {
      std::string key = c.resource() + "/" + c.namespace_() + "/" + c.name();
      if (c.op() == tv1::Change::OP_DELETE) {
        inventory_.erase(key);
      } else {
        inventory_[key] = c.revision();
      }
      changesReceived++;
      sim_->onChange(c, now);
      if (c.resource() == "models.sedna.io" && c.name() == "bench-model" &&
          c.op() == tv1::Change::OP_PUT) {
        // spec.url: blob://sha256/HEX/FILE
        std::string url = json::parse(c.value(), nullptr, false)["spec"].value("url", "");
        const std::string prefix = "blob://sha256/";
        if (url.rfind(prefix, 0) == 0) {
          startFetchLocked("sha256:" + url.substr(prefix.size(), 64));
        }
      }
    }
    lastRevision_ = std::max(lastRevision_, s.revision());
    tv1::EdgeMessage ack;
    ack.mutable_sync_ack()->set_revision(s.revision());
    queue(std::move(ack));
    if (s.initial()) {
      synced = true;
      lock.unlock();
      sim_->onSynced(this);
      lock.lock();
    }
  } else if (in_.has_blob_chunk()) {
    onBlobChunkLocked(in_.blob_chunk());
    if (fetchSizeKnown_ && fetchDone_ == fetchSize_ && !fetchDigest_.empty() &&
        fetchInflight_ == 0) {
      std::string d = fetchDigest_;
      fetchDigest_.clear();
      fetched_.insert(d);
      lock.unlock();
      sim_->onBlobComplete(name_, d, now);
      lock.lock();
    }
  }
  StartRead(&in_);
}

void SimNode::startFetchLocked(const std::string& digest) {
  if (digest == fetchDigest_ || fetched_.count(digest)) return;
  fetchDigest_ = digest;
  fetchErrors_ = 0;
  fetchNext_ = fetchDone_ = fetchSize_ = 0;
  fetchSizeKnown_ = false;
  fetchInflight_ = 0;  // answers for an older digest are ignored
  requestMoreLocked();
}

void SimNode::requestMoreLocked() {
  constexpr uint64_t kChunk = 256 * 1024;
  // One request until the size is known, then a window of 16 (edgecore's default).
  const int window = fetchSizeKnown_ ? 16 : 1;
  while (!fetchDigest_.empty() && fetchInflight_ < window &&
         (!fetchSizeKnown_ || fetchNext_ < fetchSize_)) {
    tv1::EdgeMessage m;
    auto* r = m.mutable_blob_request();
    r->set_id(++fetchId_);
    r->set_digest(fetchDigest_);
    r->set_offset(fetchNext_);
    r->set_namespace_("default");
    r->set_model("bench-model");
    fetchNext_ += kChunk;
    ++fetchInflight_;
    queue(std::move(m));
  }
}

void SimNode::onBlobChunkLocked(const tv1::BlobChunk& c) {
  if (c.digest() != fetchDigest_) return;
  --fetchInflight_;
  if (!c.error().empty()) {
    std::fprintf(stderr, "%s: blob %s at %llu: %s\n", name_.c_str(), c.digest().c_str(),
                 static_cast<unsigned long long>(c.offset()), c.error().c_str());
    if (!c.retryable() && ++fetchErrors_ > 100) {
      fetchDigest_.clear();  // give up; the run reports the node as missing
      return;
    }
    tv1::EdgeMessage m;  // ask again for the same chunk
    auto* r = m.mutable_blob_request();
    r->set_id(++fetchId_);
    r->set_digest(fetchDigest_);
    r->set_offset(c.offset());
    r->set_namespace_("default");
    r->set_model("bench-model");
    ++fetchInflight_;
    queue(std::move(m));
    return;
  }
  if (!fetchSizeKnown_) {
    fetchSizeKnown_ = true;
    fetchSize_ = c.blob_size();
  }
  const uint64_t expect = std::min<uint64_t>(256 * 1024, fetchSize_ - c.offset());
  if (c.data().size() != expect) {
    std::fprintf(stderr, "%s: chunk at %llu has %zu bytes, expected %llu\n", name_.c_str(),
                 static_cast<unsigned long long>(c.offset()), c.data().size(),
                 static_cast<unsigned long long>(expect));
  }
  fetchDone_ += c.data().size();
  blobBytes += c.data().size();
  requestMoreLocked();
}

void SimNode::OnDone(const grpc::Status& s) {
  {
    std::lock_guard lock(mu_);
    active_ = false;
    connected = false;
    synced = false;
  }
  sim_->onDisconnected(this);
}

void Sim::onDisconnected(SimNode* n) {
  std::lock_guard lock(mu_);
  reconnect_.push_back(n);
  cv_.notify_all();
}

void Sim::reconnectLoop() {
  // Capped exponential backoff with full jitter per wave, like edgehub.
  std::mt19937 rng(42);
  while (!stop_) {
    std::vector<SimNode*> wave;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(200),
                   [&] { return !reconnect_.empty() || stop_; });
      while (!reconnect_.empty()) {
        wave.push_back(reconnect_.front());
        reconnect_.pop_front();
      }
    }
    if (wave.empty() || stop_) continue;
    std::uniform_int_distribution<int> jitter(0, 500);
    std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
    for (auto* n : wave) {
      int idx = static_cast<int>(std::stoi(n->name().substr(opts_.prefix.size())));
      n->connect(newChannel(idx));
    }
  }
}

size_t Sim::countSynced() {
  size_t n = 0;
  for (auto& node : nodes_) n += node->synced ? 1 : 0;
  return n;
}

long Sim::rssKb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double Sim::cpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::vector<double> percentiles(std::vector<double> v) {
  if (v.empty()) return {0, 0, 0};
  std::sort(v.begin(), v.end());
  auto at = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
  return {at(0.5), at(0.99), v.back()};
}

void Sim::run() {
  if (!setup()) std::_Exit(1);
  if (opts_.devicesPerNode > 0) {
    auto api = apiClient();
    (void)api.request("POST", "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devicemodels",
                      R"({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"DeviceModel",
                    "metadata":{"name":"sim-thermometer"},
                    "spec":{"protocol":"simthermo","properties":[
                      {"name":"temperature","type":"FLOAT","accessMode":"ReadOnly"}]}})",
                      "application/json");
    const long rss0 = opts_.cloudPid ? rssKb(opts_.cloudPid) : -1;
    const int total = opts_.nodes * opts_.devicesPerNode;
    std::atomic<int> next{0}, failed{0};
    auto d0 = Clock::now();
    std::vector<std::thread> creators;
    for (int t = 0; t < 16; ++t) {
      creators.emplace_back([&] {
        auto c = apiClient();
        for (int i = next++; i < total; i = next++) {
          const std::string node = opts_.prefix + std::to_string(i / opts_.devicesPerNode);
          json d = {{"apiVersion", "devices.kubeedge.io/v1beta1"},
                    {"kind", "Device"},
                    {"metadata", {{"name", "dev-" + std::to_string(i)}}},
                    {"spec",
                     {{"nodeName", node},
                      {"deviceModelRef", {{"name", "sim-thermometer"}}},
                      {"protocol", {{"protocolName", "simthermo"}}},
                      {"properties",
                       {{{"name", "temperature"},
                         {"reportToCloud", true},
                         {"visitors", {{"protocolName", "simthermo"}}}}}}}}};
          auto r = c.request("POST", "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices",
                             d.dump(), "application/json");
          if (!r.isOk() || (r->status != 201 && r->status != 409)) ++failed;
        }
      });
    }
    for (auto& t : creators) t.join();
    const double ms = msSince(d0);
    std::printf("devices: %d created in %.0f ms (%.0f/s, %d failed)", total, ms,
                total / (ms / 1000), failed.load());
    if (opts_.cloudPid) {
      const long rss1 = rssKb(opts_.cloudPid);
      std::printf("; cloudcore RSS %ld KiB -> %ld KiB (%.2f KiB per device)", rss0, rss1,
                  static_cast<double>(rss1 - rss0) / total);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  long rssBefore = opts_.cloudPid ? rssKb(opts_.cloudPid) : -1;
  std::thread reconnector([this] { reconnectLoop(); });
  // Heartbeats from the first connect on, as edgecore sends them (each node every
  // heartbeatSeconds once connected): a node left silent while the others connect would see its
  // Lease lapse, be marked Unknown and have its stream closed by the cloud.
  std::atomic<bool> beating{true};
  std::thread heart([&] {
    while (beating) {
      auto start = Clock::now();
      for (auto& n : nodes_) {
        n->queueHeartbeat();
        std::this_thread::sleep_for(std::chrono::microseconds(opts_.heartbeatSeconds * 1000000LL /
                                                              std::max(1, opts_.nodes)));
        if (!beating) break;
      }
      auto until = start + std::chrono::seconds(opts_.heartbeatSeconds);
      while (beating && Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });

  auto t0 = Clock::now();
  for (int i = 0; i < opts_.nodes; ++i) {
    nodes_[i]->connect(newChannel(i));
    // Pace connection setup a little so the accept queue is not flooded.
    if (i % opts_.connectParallel == opts_.connectParallel - 1) {
      while (countSynced() + opts_.connectParallel < static_cast<size_t>(i) &&
             msSince(t0) < 600000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::minutes(10), [&] {
      lock.unlock();
      bool all = countSynced() == nodes_.size();
      lock.lock();
      return all;
    });
  }
  double connectMs = msSince(t0);
  std::printf("connected+synced (mTLS): %zu/%d nodes in %.0f ms (%.0f TLS connections/s)\n",
              countSynced(), opts_.nodes, connectMs, countSynced() / (connectMs / 1000));

  if (opts_.cloudPid) {
    // The first heartbeat after a connect is the full status: measure from the second round
    // on (the steady state). A long interval (e.g. 3600 s: no heartbeats in the window) waits
    // only as long as a 10 s one would.
    std::this_thread::sleep_for(std::chrono::seconds(3 + std::min(opts_.heartbeatSeconds, 10)));
    double cpu0 = cpuSeconds(opts_.cloudPid);
    auto w0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(opts_.idleSeconds));
    double cpu = (cpuSeconds(opts_.cloudPid) - cpu0) / (msSince(w0) / 1000.0);
    long rssAfter = rssKb(opts_.cloudPid);
    std::printf("cloudcore RSS: %ld KiB before, %ld KiB with %d nodes: %.1f KiB per node\n",
                rssBefore, rssAfter, opts_.nodes,
                static_cast<double>(rssAfter - rssBefore) / opts_.nodes);
    std::printf("cloudcore CPU with heartbeats every %ds: %.1f%% of one core\n",
                opts_.heartbeatSeconds, cpu * 100);
  }

  // Latency: a ConfigMap every node's pod references, then PATCH rounds.
  auto api = apiClient();
  (void)api.request("POST", "/api/v1/namespaces/default/configmaps",
                    R"({"metadata":{"name":"bench-cm"},"data":{"round":"0"}})",
                    "application/json");  // may exist from an earlier run
  createPodPerNode([](const std::string& n) {
    return json{{"metadata", {{"name", "bench-" + n}}},
                {"spec",
                 {{"nodeName", n},
                  {"containers",
                   {{{"name", "app"},
                     {"image", "busybox:1.36"},
                     {"envFrom", {{{"configMapRef", {{"name", "bench-cm"}}}}}}}}}}}};
  });
  // Wait until every node holds its pod and the configmap.
  auto haveAll = [&] {
    for (auto& n : nodes_) {
      if (n->changesReceived < 2 + opts_.devicesPerNode + (opts_.devicesPerNode > 0 ? 1 : 0))
        return false;
    }
    return true;
  };
  for (int i = 0; i < 6000 && !haveAll(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::vector<double> allNodes, perNode;
  for (int round = 1; round <= opts_.rounds; ++round) {
    auto start = Clock::now();
    auto r = api.request("PATCH", "/api/v1/namespaces/default/configmaps/bench-cm",
                         R"({"data":{"round":")" + std::to_string(round) + R"("}})",
                         "application/merge-patch+json");
    if (!r.isOk() || r->status != 200) {
      std::fprintf(stderr, "patch failed\n");
      break;
    }
    int64_t rev =
        std::stoll(json::parse(r->body)["metadata"]["resourceVersion"].get<std::string>());
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30),
                 [&] { return seen_[rev].size() >= static_cast<size_t>(opts_.nodes); });
    auto& times = seen_[rev];
    double maxMs = 0;
    for (auto t : times) {
      double ms = std::chrono::duration<double, std::milli>(t - start).count();
      perNode.push_back(ms);
      maxMs = std::max(maxMs, ms);
    }
    if (times.size() < static_cast<size_t>(opts_.nodes)) {
      std::printf("round %d: only %zu/%d nodes received it\n", round, times.size(), opts_.nodes);
    }
    allNodes.push_back(maxMs);
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(opts_.nodes > 1000 ? 500 : 50));
  }
  auto a = percentiles(allNodes), p = percentiles(perNode);
  std::printf(
      "apply->received-by-all over %d rounds, %d nodes: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      opts_.rounds, opts_.nodes, a[0], a[1], a[2]);
  std::printf("apply->received per node: p50 %.1f ms, p99 %.1f ms\n", p[0], p[1]);

  if (opts_.modelMib > 0) modelFanOut();

  if (opts_.waitRestart) {
    std::printf("waiting for cloudcore to restart (kill and start it now)...\n");
    std::fflush(stdout);
    while (countSynced() == nodes_.size())
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    auto down = Clock::now();
    while (countSynced() < nodes_.size() && msSince(down) < 600000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::printf("reconnect+resync of %zu nodes after restart: %.0f ms after the first disconnect\n",
                countSynced(), msSince(down));
  }
  beating = false;
  heart.join();
  stop_ = true;
  reconnector.join();
  std::fflush(stdout);
  std::_Exit(0);  // streams are still open; the OS reclaims them
}

void Sim::createPodPerNode(const std::function<json(const std::string&)>& makePod) {
  std::vector<std::thread> creators;
  std::atomic<int> next{0};
  for (int t = 0; t < 16; ++t) {
    creators.emplace_back([&] {
      auto c = apiClient();
      for (int i = next++; i < opts_.nodes; i = next++) {
        (void)c.request("POST", "/api/v1/namespaces/default/pods",
                        makePod(opts_.prefix + std::to_string(i)).dump(), "application/json");
      }
    });
  }
  for (auto& t : creators) t.join();
}

void Sim::modelFanOut() {
  // Two versions of random bytes, pushed as edgectl does.
  std::mt19937_64 rng(7);
  const uint64_t size = static_cast<uint64_t>(opts_.modelMib) << 20;
  std::vector<std::string> files;
  for (int v = 1; v <= 2; ++v) {
    std::string path = "/tmp/ep-sim-model-v" + std::to_string(v) + ".bin";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    std::vector<uint64_t> buf(1 << 16);
    for (uint64_t done = 0; done < size; done += buf.size() * 8) {
      for (auto& x : buf) x = rng();
      out.write(reinterpret_cast<const char*>(buf.data()),
                static_cast<std::streamsize>(std::min<uint64_t>(buf.size() * 8, size - done)));
    }
    files.push_back(path);
  }
  auto push = [&](int v) {
    std::string cmd = opts_.edgectl + " --kubeconfig " + opts_.kubeconfig +
                      " model push bench-model " + files[static_cast<size_t>(v - 1)] +
                      " --version v" + std::to_string(v) + " --format bin >/dev/null";
    auto t = Clock::now();
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "%s failed\n", cmd.c_str());
      std::_Exit(1);
    }
    return msSince(t);
  };
  auto waitAll = [&](const std::string& digest, Clock::time_point from, long& peakRss) {
    std::vector<double> ms;
    auto deadline = Clock::now() + std::chrono::minutes(10);
    while (Clock::now() < deadline) {
      if (opts_.cloudPid) peakRss = std::max(peakRss, rssKb(opts_.cloudPid));
      std::unique_lock lock(mu_);
      const auto& done = blobDone_[digest];
      if (done.size() >= nodes_.size() ||
          Clock::now() + std::chrono::milliseconds(50) >= deadline) {
        for (const auto& [node, t] : done) {
          ms.push_back(std::chrono::duration<double, std::milli>(t - from).count());
        }
        if (done.size() < nodes_.size()) {
          std::printf("%zu of %zu nodes never held %s\n", nodes_.size() - done.size(),
                      nodes_.size(), digest.c_str());
        }
        break;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    return ms;
  };
  auto digestOf = [](const std::string& path) {
    std::string cmd = "sha256sum " + path;
    FILE* f = popen(cmd.c_str(), "r");
    char hex[65] = {};
    if (f == nullptr || std::fread(hex, 1, 64, f) != 64) std::_Exit(1);
    pclose(f);
    return "sha256:" + std::string(hex);
  };
  const std::string d1 = digestOf(files[0]), d2 = digestOf(files[1]);
  auto bytesNow = [&] {
    uint64_t b = 0;
    for (auto& n : nodes_) b += n->blobBytes;
    return b;
  };

  double pushMs = push(1);
  std::printf("model: %d MiB, edgectl model push v1 in %.0f ms\n", opts_.modelMib, pushMs);
  // A pod using the Model on every node: the node receives the Model and fetches its blob.
  double cpu0 = opts_.cloudPid ? cpuSeconds(opts_.cloudPid) : 0;
  uint64_t b0 = bytesNow();
  long peak = 0;
  auto t0 = Clock::now();
  createPodPerNode([](const std::string& n) {
    return json{{"metadata", {{"name", "model-" + n}}},
                {"spec",
                 {{"nodeName", n},
                  {"containers",
                   {{{"name", "app"},
                     {"image", "busybox:1.36"},
                     {"volumeMounts", {{{"name", "model"}, {"mountPath", "/models"}}}}}}},
                  {"volumes",
                   {{{"name", "model"},
                     {"csi",
                      {{"driver", "models.edgeplane.io"},
                       {"volumeAttributes", {{"model", "bench-model"}}}}}}}}}}};
  });
  auto v1 = percentiles(waitAll(d1, t0, peak));
  double secs = msSince(t0) / 1000;
  double cpu = opts_.cloudPid ? cpuSeconds(opts_.cloudPid) - cpu0 : 0;
  uint64_t sent = bytesNow() - b0;
  std::printf(
      "model v1 to %d nodes (pods created -> every byte on the node): p50 %.0f ms, p99 %.0f ms, "
      "last %.0f ms; cloud sent %.1f MiB (%.2fx the model per node), %.0f MiB/s aggregate; "
      "cloudcore CPU %.1f s (%.2f cores), peak RSS %ld KiB\n",
      opts_.nodes, v1[0], v1[1], v1[2], sent / 1048576.0,
      static_cast<double>(sent) / static_cast<double>(size) / opts_.nodes, sent / 1048576.0 / secs,
      cpu, cpu / secs, peak);

  // The new version: push -> every node holds it.
  cpu0 = opts_.cloudPid ? cpuSeconds(opts_.cloudPid) : 0;
  b0 = bytesNow();
  peak = 0;
  t0 = Clock::now();
  pushMs = push(2);
  auto v2 = percentiles(waitAll(d2, t0, peak));
  secs = msSince(t0) / 1000;
  cpu = opts_.cloudPid ? cpuSeconds(opts_.cloudPid) - cpu0 : 0;
  sent = bytesNow() - b0;
  std::printf(
      "model v2 (push started -> every byte on every node): p50 %.0f ms, p99 %.0f ms, last %.0f "
      "ms (the push itself %.0f ms); cloud sent %.1f MiB; cloudcore CPU %.1f s, peak RSS %ld "
      "KiB\n",
      v2[0], v2[1], v2[2], pushMs, sent / 1048576.0, cpu, peak);
  for (auto& f : files) std::remove(f.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"edge_sim: simulated edge nodes against a cloudcore"};
  app.add_option("--cloud", o.cloud, "cloudhub HOST:PORT");
  app.add_option("--kubeconfig", o.kubeconfig, "admin credentials (creates the join token)");
  app.add_option("--api", o.api, "cloudcore API URL (default: the kubeconfig's)");
  app.add_option("--join-threads", o.joinThreads, "parallel joins");
  app.add_option("--nodes", o.nodes, "simulated nodes");
  app.add_option("--prefix", o.prefix, "node name prefix");
  app.add_option("--heartbeat-seconds", o.heartbeatSeconds, "heartbeat interval");
  app.add_flag("--full-heartbeats", o.fullHeartbeats,
               "every heartbeat a full NODE_STATUS report (edgecore before node Leases)");
  app.add_option("--idle-seconds", o.idleSeconds, "idle measurement window");
  app.add_option("--rounds", o.rounds, "latency rounds");
  app.add_option("--cloud-pid", o.cloudPid, "cloudcore pid for RSS/CPU sampling");
  app.add_option("--devices-per-node", o.devicesPerNode,
                 "Devices created per node before the nodes connect (0: none)");
  app.add_flag("--wait-restart", o.waitRestart, "measure reconnect after a cloudcore restart");
  app.add_flag("--resume,!--no-resume", o.resume,
               "resume TLS sessions on reconnect, as edgecore does (default on)");
  app.add_option("--model-mib", o.modelMib,
                 "fan a model of this many MiB out to every node (0: skip; issue 11)");
  app.add_option("--edgectl", o.edgectl, "edgectl binary for --model-mib's pushes");
  CLI11_PARSE(app, argc, argv);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  ep::tuneGrpcRuntime();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Sim sim(o);
  sim.run();
}
