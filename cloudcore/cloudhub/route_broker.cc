#include "cloudcore/cloudhub/route_broker.h"

#include "common/thread_annotations.h"
#include "proto/tunnel.pb.h"

namespace ep::cloudhub {

namespace pb = edgeplane::tunnel::v1;

Result<uint64_t> RouteBroker::send(const std::string& node, const RouteRequest& request,
                                   RouteCallback done) {
  auto msg = std::make_shared<pb::CloudMessage>();
  auto* d = msg->mutable_route_deliver();
  d->set_rule_namespace(request.ruleNamespace);
  d->set_rule_name(request.ruleName);
  d->set_topic(request.topic);
  d->set_service_port(request.servicePort);
  d->set_method(request.method);
  d->set_path(request.path);
  for (const auto& [name, value] : request.headers) {
    auto* h = d->add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  d->set_body(request.body);
  d->set_timeout_ms(request.timeoutMs);
  std::shared_ptr<SyncSink> sink;
  uint64_t id = 0;
  {
    MutexLock l(mu_);
    auto it = sinks_.find(node);
    if (it == sinks_.end()) return unavailableError("node " + node + " is not connected");
    if (perNode_[node] >= options_.maxPendingPerNode) {
      return unavailableError("too many rule messages pending for node " + node + " (limit " +
                              std::to_string(options_.maxPendingPerNode) + ")");
    }
    sink = it->second;
    id = nextId_++;
    d->set_id(id);
    pending_[id] = Entry{node, sink.get(), std::move(done)};
    ++perNode_[node];
  }
  if (!sink->send(std::move(msg))) {
    forget(id);
    return unavailableError("node " + node + " is not connected");
  }
  return id;
}

bool RouteBroker::forget(uint64_t id) {
  MutexLock l(mu_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return false;
  if (--perNode_[it->second.node] == 0) perNode_.erase(it->second.node);
  pending_.erase(it);
  return true;
}

bool RouteBroker::connected(const std::string& node) const {
  MutexLock l(mu_);
  return sinks_.count(node) > 0;
}

void RouteBroker::attach(const std::string& node, std::shared_ptr<SyncSink> sink) {
  {
    MutexLock l(mu_);
    sinks_[node] = std::move(sink);
  }
  if (listener_) listener_(node, true);
}

void RouteBroker::detach(const std::string& node, const SyncSink* sink) {
  std::vector<RouteCallback> orphans;
  bool ended = false;
  {
    MutexLock l(mu_);
    if (auto it = sinks_.find(node); it != sinks_.end() && it->second.get() == sink) {
      sinks_.erase(it);
      ended = true;
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.sink != sink) {
        ++it;
        continue;
      }
      orphans.push_back(std::move(it->second.done));
      if (--perNode_[it->second.node] == 0) perNode_.erase(it->second.node);
      it = pending_.erase(it);
    }
  }
  for (auto& done : orphans) {
    done(
        RouteReply{unavailableError("node " + node + " disconnected before answering"), 0, {}, {}});
  }
  if (ended && listener_) listener_(node, false);
}

void RouteBroker::onResult(const SyncSink* sink, const pb::RouteResult& result) {
  RouteCallback done;
  {
    MutexLock l(mu_);
    auto it = pending_.find(result.id());
    if (it == pending_.end() || it->second.sink != sink) return;  // forgotten or foreign
    done = std::move(it->second.done);
    if (--perNode_[it->second.node] == 0) perNode_.erase(it->second.node);
    pending_.erase(it);
  }
  RouteReply reply;
  if (!result.error().empty()) reply.status = unavailableError(result.error());
  reply.httpStatus = result.status();
  for (const auto& h : result.headers()) reply.headers.emplace_back(h.name(), h.value());
  reply.body = result.body();
  done(std::move(reply));
}

size_t RouteBroker::pending() const {
  MutexLock l(mu_);
  return pending_.size();
}

}  // namespace ep::cloudhub
