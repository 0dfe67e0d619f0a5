// ep-thermometer-mapper: a sample KubeEdge DMI v1beta1 mapper for a simulated thermometer.
//
// It serves DeviceMapperService on its own unix socket (--socket), registers with edgecore's
// DeviceManagerService (--dmi-socket) and receives the devices of its protocol, then reports
// each device's properties every reportCycle: numeric read-only properties as a simulated
// reading (a bounded random walk inside the model's minimum/maximum), properties with a
// desired value as that value once "applied" (reported, and echoed as observedDesired), and the
// device state "online". When edgecore is unreachable it keeps trying, and registers again
// once edgecore answers (it may have restarted).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "common/grpclite/channel.h"
#include "common/grpclite/server.h"
#include "common/signals.h"
#include "dmi/api.pb.h"

namespace {

using ep::grpclite::RpcCode;
using ep::grpclite::RpcStatus;
using namespace std::chrono_literals;

struct Reading {
  double value = 21.0;
};

// Devices and models the device manager gave this mapper. Thread-safe.
class Registry {
 public:
  void setAll(const v1beta1::MapperRegisterResponse& r) {
    std::lock_guard lock(mu_);
    devices_.clear();
    models_.clear();
    for (const auto& m : r.modellist()) models_[key(m.namespace_(), m.name())] = m;
    for (const auto& d : r.devicelist()) devices_[key(d.namespace_(), d.name())] = d;
  }
  void putDevice(const v1beta1::Device& d) {
    std::lock_guard lock(mu_);
    devices_[key(d.namespace_(), d.name())] = d;
  }
  bool removeDevice(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    return devices_.erase(key(ns, name)) > 0;
  }
  void putModel(const v1beta1::DeviceModel& m) {
    std::lock_guard lock(mu_);
    models_[key(m.namespace_(), m.name())] = m;
  }
  void removeModel(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    models_.erase(key(ns, name));
  }
  std::optional<v1beta1::Device> device(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = devices_.find(key(ns, name));
    if (it == devices_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::pair<v1beta1::Device, std::optional<v1beta1::DeviceModel>>> snapshot() {
    std::lock_guard lock(mu_);
    std::vector<std::pair<v1beta1::Device, std::optional<v1beta1::DeviceModel>>> out;
    for (const auto& [k, d] : devices_) {
      auto m = models_.find(key(d.namespace_(), d.spec().devicemodelreference()));
      out.emplace_back(
          d, m == models_.end() ? std::nullopt : std::optional<v1beta1::DeviceModel>(m->second));
    }
    return out;
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return devices_.size();
  }

 private:
  static std::string key(const std::string& ns, const std::string& name) {
    return (ns.empty() ? "default" : ns) + "/" + name;
  }
  std::mutex mu_;
  std::map<std::string, v1beta1::Device> devices_;
  std::map<std::string, v1beta1::DeviceModel> models_;
};

std::string formatValue(double v, const std::string& type) {
  if (type == "INT") return std::to_string(static_cast<long long>(std::llround(v)));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::optional<double> number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ep-thermometer-mapper: a sample DMI mapper (simulated thermometer)"};
  std::string dmiSocket = "/etc/kubeedge/dmi.sock";
  std::string socket = "/etc/kubeedge/simthermo.sock";
  std::string protocol = "simthermo";
  std::string name = "thermometer-mapper";
  int64_t defaultCycleMs = 1000;
  app.add_option("--dmi-socket", dmiSocket, "edgecore's DMI socket");
  app.add_option("--socket", socket, "this mapper's DeviceMapperService socket");
  app.add_option("--protocol", protocol, "the protocol this mapper serves");
  app.add_option("--name", name, "mapper name");
  app.add_option("--report-cycle-ms", defaultCycleMs,
                 "report period for properties without reportCycle");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %L mapper %v");
  ep::blockTerminationSignals();

  Registry registry;
  std::mutex mu;
  std::map<std::string, Reading> readings;  // ns/name/property, guarded by mu
  std::atomic<bool> registered{false};

  ep::grpclite::Server server(
      {.unixPath = socket, .socketMode = 0660},
      [&](const std::string& method, std::string body, ep::grpclite::UnaryResponder respond) {
        const std::string prefix = "/v1beta1.DeviceMapperService/";
        const std::string m = method.rfind(prefix, 0) == 0 ? method.substr(prefix.size()) : "";
        auto bad = [&](const char* what) {
          respond({RpcCode::kInvalidArgument, std::string(what) + ": not a valid message"}, "");
        };
        if (m == "RegisterDevice" || m == "UpdateDevice") {
          v1beta1::RegisterDeviceRequest req;  // same shape as UpdateDeviceRequest
          if (!req.ParseFromString(body)) return bad("request");
          registry.putDevice(req.device());
          spdlog::info("{} {}/{}", m, req.device().namespace_(), req.device().name());
          if (m == "UpdateDevice")
            return respond({}, v1beta1::UpdateDeviceResponse().SerializeAsString());
          v1beta1::RegisterDeviceResponse resp;
          resp.set_devicename(req.device().name());
          resp.set_devicenamespace(req.device().namespace_());
          return respond({}, resp.SerializeAsString());
        }
        if (m == "RemoveDevice") {
          v1beta1::RemoveDeviceRequest req;
          if (!req.ParseFromString(body)) return bad("request");
          registry.removeDevice(req.devicenamespace(), req.devicename());
          spdlog::info("RemoveDevice {}/{}", req.devicenamespace(), req.devicename());
          return respond({}, v1beta1::RemoveDeviceResponse().SerializeAsString());
        }
        if (m == "CreateDeviceModel" || m == "UpdateDeviceModel") {
          v1beta1::CreateDeviceModelRequest req;
          if (!req.ParseFromString(body)) return bad("request");
          registry.putModel(req.model());
          if (m == "UpdateDeviceModel") {
            return respond({}, v1beta1::UpdateDeviceModelResponse().SerializeAsString());
          }
          v1beta1::CreateDeviceModelResponse resp;
          resp.set_devicemodelname(req.model().name());
          resp.set_devicemodelnamespace(req.model().namespace_());
          return respond({}, resp.SerializeAsString());
        }
        if (m == "RemoveDeviceModel") {
          v1beta1::RemoveDeviceModelRequest req;
          if (!req.ParseFromString(body)) return bad("request");
          registry.removeModel(req.modelnamespace(), req.modelname());
          return respond({}, v1beta1::RemoveDeviceModelResponse().SerializeAsString());
        }
        if (m == "GetDevice") {
          v1beta1::GetDeviceRequest req;
          if (!req.ParseFromString(body)) return bad("request");
          auto d = registry.device(req.devicenamespace(), req.devicename());
          if (!d) return respond({RpcCode::kNotFound, "no device " + req.devicename()}, "");
          v1beta1::GetDeviceResponse resp;
          *resp.mutable_device() = *d;
          return respond({}, resp.SerializeAsString());
        }
        respond({RpcCode::kUnimplemented, "unknown method " + method}, "");
      });
  if (auto s = server.start(); !s.isOk()) {
    spdlog::critical("{}", s.toString());
    return 1;
  }
  spdlog::info("DeviceMapperService on {}; registering with {}", socket, dmiSocket);

  auto edge = ep::grpclite::Channel::create(dmiSocket, {.connectTimeout = 2000ms});
  auto doRegister = [&] {
    v1beta1::MapperRegisterRequest req;
    req.set_withdata(true);
    auto* info = req.mutable_mapper();
    info->set_name(name);
    info->set_version("v1.0.0");
    info->set_api_version("v1beta1");
    info->set_protocol(protocol);
    info->set_address(socket);
    info->set_state("running");
    v1beta1::MapperRegisterResponse resp;
    RpcStatus s = edge->unary("/v1beta1.DeviceManagerService/MapperRegister", req, &resp, 5000ms);
    if (!s.ok()) return s;
    registry.setAll(resp);
    spdlog::info("registered: {} devices, {} models", resp.devicelist_size(),
                 resp.modellist_size());
    return s;
  };

  std::atomic<bool> stop{false};
  std::thread reporter([&] {
    std::mt19937 rng(std::random_device{}());
    std::normal_distribution<double> step(0.0, 0.3);
    auto next = std::chrono::steady_clock::now();
    int tick = 0;
    std::string lastError;
    while (!stop) {
      if (!registered) {
        RpcStatus s = doRegister();
        registered = s.ok();
        if (!s.ok()) {
          if (s.toString() != lastError) spdlog::warn("register: {}", s.toString());
          lastError = s.toString();
          std::this_thread::sleep_for(1s);
          continue;
        }
        lastError.clear();
      }
      int64_t cycle = defaultCycleMs;
      for (auto& [device, model] : registry.snapshot()) {
        v1beta1::ReportDeviceStatusRequest req;
        req.set_devicename(device.name());
        req.set_devicenamespace(device.namespace_());
        const auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
        for (const auto& p : device.spec().properties()) {
          if (p.reportcycle() > 0)
            cycle = std::min<int64_t>(cycle, std::max<int64_t>(100, p.reportcycle()));
          std::string type = "FLOAT";
          std::optional<double> lo, hi;
          if (model) {
            for (const auto& mp : model->spec().properties()) {
              if (mp.name() != p.name()) continue;
              type = mp.type();
              lo = number(mp.minimum());
              hi = number(mp.maximum());
            }
          }
          auto* twin = req.mutable_reporteddevice()->add_twins();
          twin->set_propertyname(p.name());
          std::string value;
          if (!p.desired().value().empty()) {
            value = p.desired().value();  // the actuator applies what is desired
            twin->mutable_observeddesired()->set_value(value);
          } else if (type == "INT" || type == "FLOAT" || type == "DOUBLE") {
            std::lock_guard lock(mu);
            double& v = readings[device.namespace_() + "/" + device.name() + "/" + p.name()].value;
            v += step(rng);
            if (lo) v = std::max(v, *lo);
            if (hi) v = std::min(v, *hi);
            value = formatValue(v, type);
          } else if (type == "BOOLEAN") {
            value = "true";
          } else {
            value = "ok";
          }
          twin->mutable_reported()->set_value(value);
          (*twin->mutable_reported()->mutable_metadata())["timestamp"] = std::to_string(nowMs);
          (*twin->mutable_reported()->mutable_metadata())["type"] = type;
        }
        v1beta1::ReportDeviceStatusResponse resp;
        RpcStatus s =
            edge->unary("/v1beta1.DeviceManagerService/ReportDeviceStatus", req, &resp, 5000ms);
        if (!s.ok()) {
          spdlog::warn("report {}: {}", device.name(), s.toString());
          if (s.code == RpcCode::kUnavailable || s.code == RpcCode::kNotFound) registered = false;
        }
        if (tick % 10 == 0) {
          v1beta1::ReportDeviceStatesRequest st;
          st.set_devicename(device.name());
          st.set_devicenamespace(device.namespace_());
          st.set_state("online");
          v1beta1::ReportDeviceStatesResponse sr;
          (void)edge->unary("/v1beta1.DeviceManagerService/ReportDeviceStates", st, &sr, 5000ms);
        }
      }
      ++tick;
      next += std::chrono::milliseconds(cycle);
      auto now = std::chrono::steady_clock::now();
      if (next < now) next = now;
      while (!stop && std::chrono::steady_clock::now() < next) std::this_thread::sleep_for(20ms);
    }
  });

  int sig = ep::waitForTerminationSignal();
  spdlog::info("signal {}, stopping", sig);
  stop = true;
  reporter.join();
  server.stop();
  return 0;
}
