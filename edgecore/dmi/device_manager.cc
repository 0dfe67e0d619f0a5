#include "edgecore/dmi/device_manager.h"

#include <spdlog/spdlog.h>

#include <random>

#include "common/thread_annotations.h"
#include "dmi/api.pb.h"
#include "edgecore/dmi/dmi_convert.h"

namespace ep::edgecore::dmi {
namespace {

using Json = nlohmann::json;
using grpclite::RpcCode;
using grpclite::RpcStatus;

constexpr const char* kDevices = "devices.devices.kubeedge.io";
constexpr const char* kDeviceModels = "devicemodels.devices.kubeedge.io";
constexpr const char* kScope = "dmi";  // local_state: registered mappers by protocol
constexpr const char* kManager = "/v1beta1.DeviceManagerService/";
constexpr const char* kMapper = "/v1beta1.DeviceMapperService/";
constexpr size_t kMaxMappers = 64;

std::string keyOf(const Json& obj) {
  const Json meta = obj.value("metadata", Json::object());
  return meta.value("namespace", "") + "/" + meta.value("name", "");
}

std::string nodeOf(const Json& device) {
  return device.value("spec", Json::object()).value("nodeName", "");
}

RpcStatus toRpc(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return {};
    case Code::kInvalid:
    case Code::kBadRequest:
      return {RpcCode::kInvalidArgument, s.message()};
    case Code::kNotFound:
      return {RpcCode::kNotFound, s.message()};
    case Code::kUnavailable:
      return {RpcCode::kUnavailable, s.message()};
    default:
      return {RpcCode::kInternal, s.message()};
  }
}

// Ends a mapper call: posts the outcome to the manager's worker. Runs on the channel's thread.
class OpHandler final : public grpclite::CallHandler {
 public:
  explicit OpHandler(std::function<void(RpcStatus)> done) : done_(std::move(done)) {}
  void onMessage(std::string&&) override {}
  void onDone(const RpcStatus& status) override { done_(status); }

 private:
  std::function<void(RpcStatus)> done_;
};

}  // namespace

DeviceManager::DeviceManager(DeviceManagerOptions options, metamanager::MetaManager& cache,
                             devicetwin::DeviceTwin& twin, const Clock& clock)
    : options_(std::move(options)), cache_(cache), twin_(twin), clock_(clock) {}

DeviceManager::~DeviceManager() {
  stop();
}

Status DeviceManager::start() {
  // Mappers known before a restart get everything again (their devices may have changed).
  auto known = cache_.listLocal(kScope);
  if (!known.isOk()) return known.status();
  std::vector<Json> models, devices;
  modelSub_ = cache_.subscribe(kDeviceModels, "", &models);
  deviceSub_ = cache_.subscribe(kDevices, "", &devices);
  auto wake = [this] {
    MutexLock lock(mu_);
    wake_ = true;
    cv_.notify_one();
  };
  modelSub_->setNotify(wake);
  deviceSub_->setNotify(wake);
  for (const auto& m : models) models_[keyOf(m)] = m;
  for (const auto& d : devices) {
    if (nodeOf(d) == options_.nodeName) devices_[keyOf(d)] = entryOf(d);
  }
  for (const auto& [protocol, value] : *known) {
    Json j = Json::parse(value, nullptr, false);
    if (!j.is_object() || !j["address"].is_string()) {
      spdlog::error("dmi: stored mapper {} is unreadable; forgetting it", protocol);
      (void)cache_.commitLocal({{kScope, protocol, std::nullopt}}, {});
      continue;
    }
    Mapper& m = mappers_[protocol];
    m.protocol = protocol;
    m.name = j.value("name", "");
    m.address = j["address"];
    m.channel = grpclite::Channel::create(m.address);
    m.backoff = options_.initialBackoff;
    queueEverything(m);
    spdlog::info("dmi: mapper {} ({}) at {}: sending its {} devices again", m.name, protocol,
                 m.address, m.devices.size() + m.ops.size());
  }
  server_ = std::make_unique<grpclite::Server>(
      grpclite::ServerOptions{.unixPath = options_.socketPath},
      [this](const std::string& method, std::string body, grpclite::UnaryResponder respond) {
        MutexLock lock(mu_);
        if (requests_.size() >= 1024) {
          respond({RpcCode::kResourceExhausted, "device manager is overloaded; retry"}, "");
          return;
        }
        requests_.push_back({method, std::move(body), std::move(respond)});
        cv_.notify_one();
      });
  if (auto s = server_->start(); !s.isOk()) {
    return Status(s.code(), "dmi socket (--dmi-socket): " + s.message());
  }
  {
    MutexLock lock(mu_);
    stopping_ = false;
  }
  worker_ = std::thread([this] { run(); });
  spdlog::info("dmi: DeviceManagerService on {}", options_.socketPath);
  return Status::ok();
}

void DeviceManager::stop() {
  if (server_) server_->stop();  // no new requests
  {
    MutexLock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  mappers_.clear();  // channels end their calls and join their threads
  for (auto* sub : {&deviceSub_, &modelSub_}) {
    if (*sub) (*sub)->stop();
    sub->reset();
  }
  std::deque<Request> left;
  {
    MutexLock lock(mu_);
    left.swap(requests_);
  }
  for (auto& r : left) r.respond({RpcCode::kUnavailable, "edgecore is stopping"}, "");
}

std::vector<MapperStatus> DeviceManager::mappers() const {
  MutexLock lock(mu_);
  return status_;
}

void DeviceManager::run() {
  while (true) {
    std::deque<Request> requests;
    std::deque<Completion> completions;
    bool cacheEvents = false;
    {
      MutexLock lock(mu_);
      // Wake for work, or when the earliest retry is due.
      auto due = std::chrono::steady_clock::time_point::max();
      for (const auto& [p, m] : mappers_) {
        if (!m.inFlight && !m.ops.empty()) due = std::min(due, m.nextAttempt);
      }
      lock.waitUntil(cv_, due, [this]() EP_REQUIRES(mu_) {
        return stopping_ || wake_ || !requests_.empty() || !completions_.empty();
      });
      if (stopping_) return;
      requests.swap(requests_);
      completions.swap(completions_);
      cacheEvents = wake_;
      wake_ = false;
    }
    for (auto& c : completions) complete(c);
    if (cacheEvents) applyCacheEvents();
    for (auto& r : requests) handle(r);
    for (auto& [p, m] : mappers_) issue(m);
    std::vector<MapperStatus> snapshot;
    for (const auto& [p, m] : mappers_) {
      snapshot.push_back(
          {m.protocol, m.name, m.address, m.ops.size(), m.calls, m.failures, m.lastError});
    }
    MutexLock lock(mu_);
    status_ = std::move(snapshot);
  }
}

void DeviceManager::handle(Request& r) {
  const std::string method = r.method.rfind(kManager, 0) == 0
                                 ? r.method.substr(std::string(kManager).size())
                                 : std::string();
  if (method == "MapperRegister") return mapperRegister(r);
  if (method == "ReportDeviceStatus") {
    v1beta1::ReportDeviceStatusRequest req;
    if (!req.ParseFromString(r.body)) {
      return r.respond(
          {RpcCode::kInvalidArgument, "ReportDeviceStatusRequest: not a valid message"}, "");
    }
    if (req.devicename().empty())
      return r.respond({RpcCode::kInvalidArgument, "deviceName: required"}, "");
    auto values = reportedValues(req.reporteddevice(), clock_.nowMillis());
    if (!values.isOk()) return r.respond(toRpc(values.status()), "");
    auto respond = std::move(r.respond);
    twin_.submit({.ns = namespaceOrDefault(req.devicenamespace()),
                  .name = req.devicename(),
                  .values = std::move(*values),
                  .state = std::nullopt,
                  .done = [respond](Status s) {
                    respond(toRpc(s),
                            s.isOk() ? v1beta1::ReportDeviceStatusResponse().SerializeAsString()
                                     : std::string());
                  }});
    return;
  }
  if (method == "ReportDeviceStates") {
    v1beta1::ReportDeviceStatesRequest req;
    if (!req.ParseFromString(r.body)) {
      return r.respond(
          {RpcCode::kInvalidArgument, "ReportDeviceStatesRequest: not a valid message"}, "");
    }
    if (req.devicename().empty())
      return r.respond({RpcCode::kInvalidArgument, "deviceName: required"}, "");
    auto respond = std::move(r.respond);
    twin_.submit({.ns = namespaceOrDefault(req.devicenamespace()),
                  .name = req.devicename(),
                  .values = {},
                  .state = req.state(),
                  .done = [respond](Status s) {
                    respond(toRpc(s),
                            s.isOk() ? v1beta1::ReportDeviceStatesResponse().SerializeAsString()
                                     : std::string());
                  }});
    return;
  }
  r.respond({RpcCode::kUnimplemented, "unknown method " + r.method}, "");
}

void DeviceManager::mapperRegister(Request& r) {
  v1beta1::MapperRegisterRequest req;
  if (!req.ParseFromString(r.body)) {
    return r.respond({RpcCode::kInvalidArgument, "MapperRegisterRequest: not a valid message"}, "");
  }
  const auto& info = req.mapper();
  if (info.protocol().empty())
    return r.respond({RpcCode::kInvalidArgument, "mapper.protocol: required"}, "");
  if (info.address().empty() || info.address()[0] != '/') {
    return r.respond({RpcCode::kInvalidArgument,
                      "mapper.address: must be the absolute path of the mapper's unix socket"},
                     "");
  }
  if (mappers_.find(info.protocol()) == mappers_.end() && mappers_.size() >= kMaxMappers) {
    return r.respond({RpcCode::kResourceExhausted, "too many mappers on this node"}, "");
  }
  Mapper& m = mappers_[info.protocol()];
  const bool moved = m.address != info.address();
  m.protocol = info.protocol();
  m.name = info.name();
  if (moved || !m.channel) {
    m.address = info.address();
    m.channel = grpclite::Channel::create(m.address);
  }
  ++m.generation;  // completions of calls made before this registration are ignored
  m.ops.clear();
  m.inFlight = false;
  m.devices.clear();
  m.models.clear();
  m.backoff = options_.initialBackoff;
  m.nextAttempt = {};
  Json record = {{"name", m.name},
                 {"address", m.address},
                 {"version", info.version()},
                 {"apiVersion", info.api_version()}};
  if (auto s = cache_.commitLocal({{kScope, m.protocol, record.dump()}}, {}); !s.isOk()) {
    spdlog::warn("dmi: remembering mapper {}: {}", m.protocol, s.toString());
  }
  v1beta1::MapperRegisterResponse resp;
  if (req.withdata()) {
    std::set<std::string> wantedModels;
    for (const auto& [key, d] : devices_) {
      if (d.protocol != m.protocol) continue;
      *resp.add_devicelist() = toDmiDevice(Json::parse(d.json));
      m.devices.insert(key);
      wantedModels.insert(d.modelKey);
    }
    // The models of those devices, and any other model of the mapper's protocol.
    for (const auto& [key, model] : models_) {
      if (!wantedModels.count(key) && modelProtocol(model) != m.protocol) continue;
      *resp.add_modellist() = toDmiModel(model);
      m.models.insert(key);
    }
  } else {
    queueEverything(m);
  }
  spdlog::info("dmi: mapper {} registered for protocol {} at {} ({} devices, {} models)", m.name,
               m.protocol, m.address, resp.devicelist_size(), resp.modellist_size());
  r.respond({}, resp.SerializeAsString());
}

DeviceManager::DeviceEntry DeviceManager::entryOf(const Json& device) const {
  return {device.dump(), device.value("spec", Json::object()).dump(), deviceProtocol(device),
          modelKeyOf(device)};
}

std::string DeviceManager::modelKeyOf(const Json& device) const {
  const Json meta = device.value("metadata", Json::object());
  const Json spec = device.value("spec", Json::object());
  return meta.value("namespace", "") + "/" +
         spec.value("deviceModelRef", Json::object()).value("name", "");
}

DeviceManager::Mapper* DeviceManager::mapperFor(const std::string& protocol) {
  auto it = mappers_.find(protocol);
  return it == mappers_.end() ? nullptr : &it->second;
}

void DeviceManager::queueEverything(Mapper& m) {
  std::set<std::string> modelKeys;
  for (const auto& [key, d] : devices_) {
    if (d.protocol == m.protocol) modelKeys.insert(d.modelKey);
  }
  for (const auto& key : modelKeys) {
    auto model = models_.find(key);
    if (model != models_.end()) onModel(key, &model->second);
  }
  for (const auto& [key, d] : devices_) {
    if (d.protocol != m.protocol) continue;
    const Json device = Json::parse(d.json);
    onDevice(key, &device);
  }
}

void DeviceManager::applyCacheEvents() {
  if (modelSub_->done() || deviceSub_->done()) {
    // Fell behind: relist and resend what differs (every mapper gets its devices again).
    spdlog::warn("dmi: cache watch ended; relisting devices and models");
    std::vector<Json> models, devices;
    modelSub_->stop();
    deviceSub_->stop();
    auto wake = [this] {
      MutexLock lock(mu_);
      wake_ = true;
      cv_.notify_one();
    };
    modelSub_ = cache_.subscribe(kDeviceModels, "", &models);
    deviceSub_ = cache_.subscribe(kDevices, "", &devices);
    modelSub_->setNotify(wake);
    deviceSub_->setNotify(wake);
    models_.clear();
    devices_.clear();
    for (const auto& m : models) models_[keyOf(m)] = m;
    for (const auto& d : devices) {
      if (nodeOf(d) == options_.nodeName) devices_[keyOf(d)] = entryOf(d);
    }
    for (auto& [p, m] : mappers_) queueEverything(m);
    return;
  }
  for (const auto& e : modelSub_->poll(1024)) {
    const std::string key = e.ns + "/" + e.name;
    if (e.type == "DELETED") {
      models_.erase(key);
      onModel(key, nullptr);
    } else {
      const bool same = models_.count(key) &&
                        models_[key].value("spec", Json()) == e.object.value("spec", Json());
      models_[key] = e.object;
      if (!same) onModel(key, &models_[key]);
    }
  }
  for (const auto& e : deviceSub_->poll(1024)) {
    const std::string key = e.ns + "/" + e.name;
    if (e.type == "DELETED" || nodeOf(e.object) != options_.nodeName) {
      if (devices_.erase(key) > 0) onDevice(key, nullptr);
      continue;
    }
    auto old = devices_.find(key);
    DeviceEntry entry = entryOf(e.object);
    // Status echoes of what the twin reported are not a change for the mapper.
    const bool echo = old != devices_.end() && old->second.spec == entry.spec;
    devices_[key] = std::move(entry);
    if (!echo) onDevice(key, &e.object);
  }
}

// A device appeared, changed (its spec) or went away (`device` null): the mappers concerned get
// the matching call.
void DeviceManager::onDevice(const std::string& key, const Json* device) {
  const std::string protocol = device ? deviceProtocol(*device) : "";
  for (auto& [p, m] : mappers_) {
    const bool known =
        m.devices.count(key) > 0 || std::any_of(m.ops.begin(), m.ops.end(), [&](const Op& o) {
          return o.key == key && (o.kind == OpKind::kRegister || o.kind == OpKind::kUpdate);
        });
    if (p != protocol) {
      if (known) {
        v1beta1::RemoveDeviceRequest req;
        req.set_devicename(key.substr(key.find('/') + 1));
        req.set_devicenamespace(key.substr(0, key.find('/')));
        enqueue(m, {OpKind::kRemove, key, std::string(kMapper) + "RemoveDevice",
                    req.SerializeAsString()});
      }
      continue;
    }
    if (!device) continue;
    // The device's model first, if the mapper does not have it.
    const std::string modelKey = modelKeyOf(*device);
    if (!m.models.count(modelKey)) {
      auto model = models_.find(modelKey);
      if (model != models_.end()) onModel(modelKey, &model->second);
    }
    if (known) {
      v1beta1::UpdateDeviceRequest req;
      *req.mutable_device() = toDmiDevice(*device);
      enqueue(m, {OpKind::kUpdate, key, std::string(kMapper) + "UpdateDevice",
                  req.SerializeAsString()});
    } else {
      v1beta1::RegisterDeviceRequest req;
      *req.mutable_device() = toDmiDevice(*device);
      enqueue(m, {OpKind::kRegister, key, std::string(kMapper) + "RegisterDevice",
                  req.SerializeAsString()});
    }
  }
}

void DeviceManager::onModel(const std::string& key, const Json* model) {
  for (auto& [p, m] : mappers_) {
    bool wanted = false;
    if (model) {
      for (const auto& [dk, d] : devices_) {
        if (d.protocol == p && d.modelKey == key) wanted = true;
      }
    }
    const bool known =
        m.models.count(key) > 0 || std::any_of(m.ops.begin(), m.ops.end(), [&](const Op& o) {
          return o.key == key && (o.kind == OpKind::kCreateModel || o.kind == OpKind::kUpdateModel);
        });
    if (!wanted) {
      if (known && !model) {
        v1beta1::RemoveDeviceModelRequest req;
        req.set_modelname(key.substr(key.find('/') + 1));
        req.set_modelnamespace(key.substr(0, key.find('/')));
        enqueue(m, {OpKind::kRemoveModel, key, std::string(kMapper) + "RemoveDeviceModel",
                    req.SerializeAsString()});
      }
      continue;
    }
    if (known) {
      v1beta1::UpdateDeviceModelRequest req;
      *req.mutable_model() = toDmiModel(*model);
      enqueue(m, {OpKind::kUpdateModel, key, std::string(kMapper) + "UpdateDeviceModel",
                  req.SerializeAsString()});
    } else {
      v1beta1::CreateDeviceModelRequest req;
      *req.mutable_model() = toDmiModel(*model);
      enqueue(m, {OpKind::kCreateModel, key, std::string(kMapper) + "CreateDeviceModel",
                  req.SerializeAsString()});
    }
  }
}

// Queues a call; a pending (not yet sent) call for the same object is replaced by it, in its
// place when it is the same kind of call, so the mapper gets the latest state once.
void DeviceManager::enqueue(Mapper& m, Op op) {
  const bool isModel = op.kind == OpKind::kCreateModel || op.kind == OpKind::kUpdateModel ||
                       op.kind == OpKind::kRemoveModel;
  for (size_t i = m.inFlight ? 1 : 0; i < m.ops.size(); ++i) {
    Op& o = m.ops[i];
    const bool oModel = o.kind == OpKind::kCreateModel || o.kind == OpKind::kUpdateModel ||
                        o.kind == OpKind::kRemoveModel;
    if (o.key != op.key || oModel != isModel) continue;
    // Register then Update before either was sent: still a Register, with the new content.
    if ((o.kind == OpKind::kRegister && op.kind == OpKind::kUpdate) ||
        (o.kind == OpKind::kCreateModel && op.kind == OpKind::kUpdateModel)) {
      o.request = std::move(op.request);
      return;
    }
    m.ops.erase(m.ops.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  m.ops.push_back(std::move(op));
}

void DeviceManager::issue(Mapper& m) {
  if (m.inFlight || m.ops.empty() || !m.channel) return;
  if (std::chrono::steady_clock::now() < m.nextAttempt) return;
  m.inFlight = true;
  ++m.calls;
  const Op& op = m.ops.front();
  const std::string protocol = m.protocol;
  const uint64_t generation = m.generation;
  auto handler = std::make_shared<OpHandler>([this, protocol, generation](RpcStatus status) {
    MutexLock lock(mu_);
    completions_.push_back({protocol, generation, std::move(status)});
    cv_.notify_one();
  });
  auto call = m.channel->startCall(op.method, handler, {.timeout = options_.callTimeout});
  call->write(op.request);
  call->writesDone();
}

void DeviceManager::complete(const Completion& c) {
  Mapper* m = mapperFor(c.protocol);
  if (!m || c.generation != m->generation || !m->inFlight || m->ops.empty()) return;
  m->inFlight = false;
  const Op op = m->ops.front();
  if (c.status.ok()) {
    m->ops.pop_front();
    m->backoff = options_.initialBackoff;
    m->lastError.clear();
    switch (op.kind) {
      case OpKind::kCreateModel:
      case OpKind::kUpdateModel:
        m->models.insert(op.key);
        break;
      case OpKind::kRemoveModel:
        m->models.erase(op.key);
        break;
      case OpKind::kRegister:
      case OpKind::kUpdate:
        m->devices.insert(op.key);
        break;
      case OpKind::kRemove:
        m->devices.erase(op.key);
        break;
    }
    return;
  }
  ++m->failures;
  const std::string what = op.method.substr(op.method.rfind('/') + 1) + " " + op.key;
  if (m->lastError.empty()) {
    spdlog::warn("dmi: mapper {} ({}): {} failed: {}; retrying with backoff", m->name, m->protocol,
                 what, c.status.toString());
  } else {
    spdlog::debug("dmi: mapper {}: {} failed again: {}", m->name, what, c.status.toString());
  }
  m->lastError = what + ": " + c.status.toString();
  thread_local std::mt19937 rng{std::random_device{}()};
  const auto jitter = std::chrono::milliseconds(
      std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(1, m->backoff.count() / 4))(rng));
  m->nextAttempt = std::chrono::steady_clock::now() + m->backoff + jitter;
  m->backoff = std::min(options_.maxBackoff, m->backoff * 2);
}

}  // namespace ep::edgecore::dmi
