#include "cloudcore/cloudhub/dispatcher.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/api/models.h"
#include "common/thread_annotations.h"
#include "proto/tunnel.pb.h"

namespace ep::cloudhub {
namespace {

namespace pb = edgeplane::tunnel::v1;
using Json = nlohmann::json;

}  // namespace

Dispatcher::Dispatcher(store::Store& store, Metrics& metrics, DispatcherOptions options)
    : store_(store), metrics_(metrics), options_(options) {}

Dispatcher::~Dispatcher() {
  stop();
}

Status Dispatcher::start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  if (auto s = load(); !s.isOk()) return s;
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

void Dispatcher::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (watch_) {
    watch_->stop();
    watch_.reset();
  }
  sessions_.clear();
}

void Dispatcher::attach(const std::string& node, std::shared_ptr<SyncSink> sink,
                        std::vector<InventoryEntry> inventory) {
  {
    MutexLock l(mu_);
    if (stopping_) return;
    commands_.push_back({node, std::move(sink), nullptr, std::move(inventory)});
  }
  cv_.notify_all();
}

void Dispatcher::detach(const std::string& node, const SyncSink* sink) {
  {
    MutexLock l(mu_);
    if (stopping_) return;
    commands_.push_back({node, nullptr, sink, {}});
  }
  cv_.notify_all();
}

Status Dispatcher::load() {
  if (watch_) {
    watch_->stop();
    watch_.reset();
  }
  objects_.clear();
  byNode_.clear();
  referrers_.clear();
  damaged_.clear();
  // Lists may reflect different revisions; watching from the lowest one replays what the
  // others already saw, and put()/erase() ignore events older than the cached object.
  int64_t from = -1;
  int64_t loaded = 0;
  for (const auto& resource : trackedResources()) {
    store::ListOptions o;
    o.resource = resource;
    o.skipDamaged = true;  // held, never taken for deleted: see damaged_
    auto r = store_.list(o);
    if (!r.isOk()) return r.status();
    from = from < 0 ? r->revision : std::min(from, r->revision);
    for (const auto& k : r->damaged) damaged_.insert({k.resource, k.namespace_, k.name});
    for (const auto& obj : r->items) {
      put({obj.resource, obj.namespace_, obj.name}, obj);
      ++loaded;
    }
  }
  store::WatchOptions w;
  w.resource = "";
  w.fromRevision = from;
  auto watch = store_.watch(w);
  if (!watch.isOk()) return watch.status();
  watch_ = std::move(*watch);
  watch_->setNotify([this] {
    {
      MutexLock l(mu_);
      wake_ = true;
    }
    cv_.notify_all();
  });
  revision_ = from;
  spdlog::info("cloudhub: dispatcher loaded {} objects at revision {}", loaded, from);
  if (!damaged_.empty()) {
    spdlog::warn(
        "cloudhub: {} objects are damaged in the store: nodes that hold them keep their copies "
        "(docs/store.md, \"Damaged data\")",
        damaged_.size());
  }
  return Status::ok();
}

void Dispatcher::run() {
  for (;;) {
    std::deque<Command> commands;
    {
      MutexLock l(mu_);
      l.waitFor(cv_, std::chrono::seconds(1),
                [&]() EP_REQUIRES(mu_) { return stopping_ || wake_ || !commands_.empty(); });
      if (stopping_) return;
      wake_ = false;
      commands.swap(commands_);
    }
    try {
      step(commands);
    } catch (const std::exception& e) {
      // A broken invariant: start over from a fresh load rather than die or serve stale state.
      spdlog::error("cloudhub: dispatcher error: {}; reloading", e.what());
      for (auto& [node, s] : sessions_) s.sink->close("cloud state reloaded; reconnect to resync");
      sessions_.clear();
      if (watch_) watch_->stop();
      watch_.reset();
    }
  }
}

void Dispatcher::step(std::deque<Command>& commands) {
  if (!watch_) {
    // A reload failed earlier; retry (at most once per second, see the wait above).
    if (auto s = load(); !s.isOk()) {
      spdlog::error("cloudhub: reloading dispatcher state failed: {}", s.toString());
    }
  }
  // Events first, so an attach sees the newest state it can.
  while (watch_) {
    auto events = watch_->poll(options_.maxEventsPerPoll);
    if (events.empty()) break;
    std::set<std::string> affected;
    for (const auto& e : events) {
      applyEvent(e, affected);
      revision_ = e.object.modRevision;
    }
    for (const auto& node : affected) {
      auto it = sessions_.find(node);
      if (it != sessions_.end()) syncNode(node, it->second, false);
    }
    if (events.size() < options_.maxEventsPerPoll) break;
  }
  if (watch_ && watch_->done()) {
    spdlog::warn("cloudhub: store watch ended ({}); reloading and asking every node to resync",
                 watch_->error().toString());
    for (auto& [node, s] : sessions_) s.sink->close("cloud state reloaded; reconnect to resync");
    sessions_.clear();
    if (auto s = load(); !s.isOk()) {
      spdlog::error("cloudhub: reloading dispatcher state failed: {}", s.toString());
      watch_.reset();
    }
  }
  for (auto& cmd : commands) handleCommand(cmd);
}

void Dispatcher::handleCommand(Command& cmd) {
  if (cmd.detach != nullptr) {
    auto it = sessions_.find(cmd.node);
    if (it != sessions_.end() && it->second.sink.get() == cmd.detach) sessions_.erase(it);
    return;
  }
  if (!watch_) {
    cmd.sink->close("cloud state unavailable; reconnect");
    return;
  }
  NodeSession s;
  s.sink = std::move(cmd.sink);
  s.counters = metrics_.node(cmd.node);
  for (auto& e : cmd.inventory) s.sent[std::move(e.key)] = e.revision;
  auto& slot = sessions_[cmd.node];
  slot = std::move(s);
  syncNode(cmd.node, slot, true);
}

void Dispatcher::applyEvent(const store::Event& event, std::set<std::string>& affected) {
  const auto& o = event.object;
  if (!isTracked(o.resource)) return;
  ObjectKey key{o.resource, o.namespace_, o.name};
  if (damaged_.erase(key) > 0) {
    // Rewritten or deleted (an unsafe delete): every node holding its old copy gets the truth.
    for (const auto& [node, session] : sessions_) {
      if (session.sent.count(key)) affected.insert(node);
    }
  }
  nodesNeeding(key, affected);
  if (event.type == store::EventType::kDeleted) {
    auto it = objects_.find(key);
    if (it != objects_.end() && it->second.modRevision < o.modRevision) erase(key);
  } else {
    put(key, o);
  }
  nodesNeeding(key, affected);
}

void Dispatcher::put(const ObjectKey& key, const store::Object& object) {
  auto it = objects_.find(key);
  if (it != objects_.end() && it->second.modRevision >= object.modRevision) return;
  if (it != objects_.end()) erase(key);
  Cached c;
  c.modRevision = object.modRevision;
  Json parsed = Json::parse(object.value, nullptr, false);
  if (parsed.is_object()) {
    c.placement = placementOf(key.resource, key.namespace_, parsed);
    c.pullSecret = key.resource == kSecrets && parsed.contains("type") &&
                   parsed["type"].is_string() &&
                   api::isPullSecretType(parsed["type"].get<std::string>());
    if (!parsed.contains("metadata") || !parsed["metadata"].is_object()) {
      parsed["metadata"] = Json::object();
    }
    parsed["metadata"]["resourceVersion"] = std::to_string(object.modRevision);
    // Field ownership is the API's business; nodes never read it, and it would cost their cache
    // and the tunnel bytes on every change (writes from the edge keep the stored list).
    parsed["metadata"].erase("managedFields");
    c.wireValue = parsed.dump(-1, ' ', false, Json::error_handler_t::replace);
  } else {
    spdlog::error("cloudhub: stored {} {}/{} is not a JSON object; sent as stored", key.resource,
                  key.namespace_, key.name);
    c.wireValue = object.value;
  }
  for (const auto& n : c.placement.nodes) byNode_[n].insert(key);
  for (const auto& r : c.placement.refs) referrers_[r].insert(key);
  for (const auto& r : c.placement.viaRefs) referrers_[r].insert(key);
  objects_.emplace(key, std::move(c));
}

void Dispatcher::erase(const ObjectKey& key) {
  auto it = objects_.find(key);
  if (it == objects_.end()) return;
  for (const auto& n : it->second.placement.nodes) {
    auto b = byNode_.find(n);
    if (b == byNode_.end()) continue;
    b->second.erase(key);
    if (b->second.empty()) byNode_.erase(b);
  }
  for (const auto* refs : {&it->second.placement.refs, &it->second.placement.viaRefs}) {
    for (const auto& r : *refs) {
      auto f = referrers_.find(r);
      if (f == referrers_.end()) continue;
      f->second.erase(key);
      if (f->second.empty()) referrers_.erase(f);
    }
  }
  objects_.erase(it);
}

void Dispatcher::nodesNeeding(const ObjectKey& key, std::set<std::string>& out) const {
  if (auto it = objects_.find(key); it != objects_.end()) {
    out.insert(it->second.placement.nodes.begin(), it->second.placement.nodes.end());
  }
  // Referrers, and their referrers (refs are followed two levels, see refs.h).
  if (auto r = referrers_.find(key); r != referrers_.end()) {
    for (const auto& mid : r->second) {
      auto it = objects_.find(mid);
      if (it != objects_.end()) {
        out.insert(it->second.placement.nodes.begin(), it->second.placement.nodes.end());
      }
      if (auto r2 = referrers_.find(mid); r2 != referrers_.end()) {
        for (const auto& root : r2->second) {
          auto it2 = objects_.find(root);
          if (it2 != objects_.end()) {
            out.insert(it2->second.placement.nodes.begin(), it2->second.placement.nodes.end());
          }
        }
      }
    }
  }
}

std::map<ObjectKey, int64_t> Dispatcher::needed(const std::string& node) const {
  std::map<ObjectKey, int64_t> out;
  auto b = byNode_.find(node);
  if (b == byNode_.end()) return out;
  for (const auto& root : b->second) {
    auto it = objects_.find(root);
    if (it == objects_.end()) continue;
    out[root] = it->second.modRevision;
    for (const auto& ref : it->second.placement.refs) {
      auto r = objects_.find(ref);
      if (r == objects_.end()) continue;
      out[ref] = r->second.modRevision;
      for (const auto& ref2 : r->second.placement.viaRefs) {  // second level (refs.h)
        auto r2 = objects_.find(ref2);
        if (r2 == objects_.end()) continue;
        if (ref2.resource == kSecrets && !r2->second.pullSecret) continue;
        out[ref2] = r2->second.modRevision;
      }
    }
  }
  return out;
}

void Dispatcher::syncNode(const std::string& node, NodeSession& session, bool initial) {
  auto need = needed(node);
  // Changes go into Syncs of at most maxSyncBytes each, all at the current revision. The edge
  // applies each in its own transaction; if the stream breaks between two of them, the next
  // Hello's inventory shows what arrived and the rest is sent then.
  std::vector<std::shared_ptr<pb::CloudMessage>> msgs;
  size_t bytes = 0;
  auto nextChange = [&](size_t size) {
    if (msgs.empty() || (bytes > 0 && bytes + size > options_.maxSyncBytes)) {
      msgs.push_back(std::make_shared<pb::CloudMessage>());
      pb::Sync* sync = msgs.back()->mutable_sync();
      sync->set_revision(revision_);
      sync->set_initial(initial && msgs.size() == 1);
      bytes = 0;
    }
    bytes += size;
    return msgs.back()->mutable_sync()->add_changes();
  };
  for (const auto& [key, rev] : need) {
    auto have = session.sent.find(key);
    if (have != session.sent.end() && have->second == rev) continue;
    const Cached& c = objects_.at(key);
    pb::Change* ch = nextChange(c.wireValue.size() + key.name.size() + key.namespace_.size() + 32);
    ch->set_op(pb::Change::OP_PUT);
    ch->set_resource(key.resource);
    ch->set_namespace_(key.namespace_);
    ch->set_name(key.name);
    ch->set_revision(rev);
    ch->set_value(c.wireValue);
  }
  std::map<ObjectKey, int64_t> held;  // damaged in the store: the node's copy stays
  for (const auto& [key, rev] : session.sent) {
    if (need.count(key)) continue;
    if (damaged_.count(key)) {
      held.emplace(key, rev);
      continue;
    }
    pb::Change* ch = nextChange(key.name.size() + key.namespace_.size() + 32);
    ch->set_op(pb::Change::OP_DELETE);
    ch->set_resource(key.resource);
    ch->set_namespace_(key.namespace_);
    ch->set_name(key.name);
    ch->set_revision(revision_);
  }
  session.sent = std::move(need);
  session.sent.insert(held.begin(), held.end());
  if (msgs.empty()) {
    if (!initial) return;
    msgs.push_back(std::make_shared<pb::CloudMessage>());  // an empty initial Sync still goes
    msgs.back()->mutable_sync()->set_revision(revision_);
    msgs.back()->mutable_sync()->set_initial(true);
  }
  for (auto& msg : msgs) {
    const auto changes = static_cast<size_t>(msg->sync().changes_size());
    if (!session.sink->send(std::move(msg))) {
      spdlog::warn("cloudhub: node {}: stream closed or queue full; dropping its session", node);
      sessions_.erase(node);  // `session` dangles from here on
      return;
    }
    session.counters->syncsSent++;
    session.counters->changesSent += changes;
  }
}

}  // namespace ep::cloudhub
