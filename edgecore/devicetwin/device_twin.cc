#include "edgecore/devicetwin/device_twin.h"

#include <spdlog/spdlog.h>

#include "common/thread_annotations.h"

namespace ep::edgecore::devicetwin {
namespace {

using Json = nlohmann::json;
constexpr const char* kDevices = "devices.devices.kubeedge.io";
constexpr const char* kDeviceModels = "devicemodels.devices.kubeedge.io";

std::string metaField(const Json& obj, const char* field) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto f = m->find(field);
  return f != m->end() && f->is_string() ? f->get<std::string>() : "";
}

}  // namespace

DeviceTwin::DeviceTwin(DeviceTwinOptions options, metamanager::MetaManager& cache, MessageBus& bus,
                       const Clock& clock)
    : options_(std::move(options)), cache_(cache), bus_(bus), engine_(options_.nodeName, clock) {}

DeviceTwin::~DeviceTwin() {
  stop();
}

Status DeviceTwin::start() {
  auto records = cache_.listLocal(kScope);
  if (!records.isOk()) return records.status();
  Effects effects;
  for (const auto& bad : engine_.load(*records))
    effects.puts.push_back({kScope, bad, std::nullopt});
  resubscribe(effects);
  std::vector<BusMessage> none;
  commit(effects, none);
  spdlog::info("devicetwin: {} devices on node {}", engine_.deviceCount(), options_.nodeName);
  {
    MutexLock lock(mu_);
    stopping_ = false;
  }
  worker_ = std::thread([this] { run(); });
  return Status::ok();
}

void DeviceTwin::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  for (auto* sub : {&deviceSub_, &modelSub_}) {
    if (*sub) (*sub)->stop();
    sub->reset();
  }
}

void DeviceTwin::onMessage(BusMessage message) {
  MutexLock lock(mu_);
  if (queue_.size() >= options_.maxQueue) {
    // QoS 1 messages stay unacknowledged: the broker redelivers them after a reconnect.
    ++stats_.dropped;
    return;
  }
  queue_.push_back(std::move(message));
  cv_.notify_one();
}

void DeviceTwin::submit(DirectReport report) {
  {
    MutexLock lock(mu_);
    if (direct_.size() < options_.maxQueue && !stopping_) {
      direct_.push_back(std::move(report));
      cv_.notify_one();
      return;
    }
    ++stats_.dropped;
  }
  if (report.done) report.done(unavailableError("device twin is overloaded; retry"));
}

DeviceTwinStats DeviceTwin::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

// (Re)subscribes with a snapshot: the engine sees every device and model as of now, then
// every later change. Models first, so devices find their model's property types.
void DeviceTwin::resubscribe(Effects& out) {
  for (auto* sub : {&deviceSub_, &modelSub_}) {
    if (*sub) (*sub)->stop();
  }
  auto wake = [this] {
    MutexLock lock(mu_);
    wake_ = true;
    cv_.notify_one();
  };
  std::vector<Json> models, devices;
  modelSub_ = cache_.subscribe(kDeviceModels, "", &models);
  deviceSub_ = cache_.subscribe(kDevices, "", &devices);
  modelSub_->setNotify(wake);
  deviceSub_->setNotify(wake);
  for (const auto& m : models) engine_.upsertModel(m, out);
  for (const auto& d : devices) {
    auto spec = d.find("spec");
    if (spec == d.end() || !spec->is_object() || spec->value("nodeName", "") != options_.nodeName) {
      continue;
    }
    engine_.upsertDevice(d, out);
  }
  engine_.reconcileAfterList(out);
}

void DeviceTwin::applyCacheEvents(Effects& out) {
  if ((modelSub_ && modelSub_->done()) || (deviceSub_ && deviceSub_->done())) {
    spdlog::warn("devicetwin: cache watch ended (fell behind); relisting devices and models");
    resubscribe(out);
    return;
  }
  for (const auto& e : modelSub_->poll(1024)) {
    if (e.type == "DELETED") {
      engine_.removeModel(e.ns, e.name);
    } else {
      engine_.upsertModel(e.object, out);
    }
  }
  for (const auto& e : deviceSub_->poll(1024)) {
    const bool here =
        e.type != "DELETED" && e.object.is_object() &&
        e.object.value("spec", Json::object()).value("nodeName", "") == options_.nodeName;
    if (here) {
      engine_.upsertDevice(e.object, out);
    } else {
      engine_.removeDevice(e.ns, e.name.empty() ? metaField(e.object, "name") : e.name, out);
    }
  }
}

void DeviceTwin::commit(Effects& effects, std::vector<BusMessage>& acks,
                        std::vector<std::pair<DirectReport, Status>>* reports) {
  Status committed;
  for (auto& r : dataReports(effects.data)) effects.reports.push_back(std::move(r));
  if (!effects.puts.empty() || !effects.reports.empty()) {
    auto s = cache_.commitLocal(effects.puts, effects.reports);
    committed = s;
    MutexLock lock(mu_);
    ++stats_.commits;
    if (!s.isOk()) {
      // Nothing is acknowledged: the broker redelivers the batch's QoS 1 messages after the
      // next reconnect. The in-memory twin is ahead of the disk until the next successful
      // commit of the same device.
      stats_.lastError = s.toString();
      spdlog::error("devicetwin: committing twin state failed: {}", s.toString());
      acks.clear();
    }
  }
  for (auto& p : effects.publishes) {
    if (auto s = bus_.publish(std::move(p.topic), std::move(p.payload)); !s.isOk()) {
      spdlog::warn("devicetwin: publish: {}", s.toString());
    }
  }
  for (const auto& m : acks) {
    if (m.qos > 0) bus_.acknowledge(m.generation, m.packetId);
  }
  if (reports) {
    for (auto& [r, status] : *reports) {
      if (r.done) r.done(status.isOk() ? committed : status);
    }
    reports->clear();
  }
  effects = Effects{};
  acks.clear();
}

void DeviceTwin::run() {
  while (true) {
    std::vector<BusMessage> batch;
    std::vector<std::pair<DirectReport, Status>> direct;
    bool cacheEvents = false;
    {
      MutexLock lock(mu_);
      lock.wait(cv_, [this]() EP_REQUIRES(mu_) {
        return stopping_ || wake_ || !queue_.empty() || !direct_.empty();
      });
      if (stopping_) break;
      cacheEvents = wake_;
      wake_ = false;
      while (!queue_.empty() && batch.size() < options_.maxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      while (!direct_.empty() && direct.size() < options_.maxBatch) {
        direct.emplace_back(std::move(direct_.front()), Status::ok());
        direct_.pop_front();
      }
    }
    Effects effects;
    if (cacheEvents) applyCacheEvents(effects);
    for (const auto& m : batch) engine_.onMessage(m.topic, m.payload, effects);
    for (auto& [r, status] : direct)
      status = engine_.report(r.ns, r.name, r.values, r.state, effects);
    {
      MutexLock lock(mu_);
      stats_.messages += batch.size();
      stats_.devices = engine_.deviceCount();
    }
    commit(effects, batch, &direct);
  }
  // Reports still queued at stop are answered, not dropped silently.
  std::deque<DirectReport> left;
  {
    MutexLock lock(mu_);
    left.swap(direct_);
  }
  for (auto& r : left) {
    if (r.done) r.done(unavailableError("edgecore is stopping"));
  }
}

}  // namespace ep::edgecore::devicetwin
