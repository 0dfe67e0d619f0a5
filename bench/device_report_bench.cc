// Device report throughput and latency, device → edge → cloud (bench/devices.sh runs it).
//
// Creates a DeviceModel and --devices Devices bound to --node (or reuses them), waits until the
// node's cache has them, watches them in the cloud, then reports values at --rate per second for
// --seconds, over MQTT (twin/update on KubeEdge's topic, QoS 1) or DMI (ReportDeviceStatus on
// the node's socket, --concurrency calls in flight). Each value is its sequence number, so the
// watch tells when each one reached the Device's status. Prints the rate achieved, the status
// updates the cloud made per second, how long the cloud took to converge after the last
// report, and the report → status latency (p50/p99/max) of the values that reached the status
// (the outbox coalesces per device: when reports outrun the tunnel, intermediate values are
// replaced by later ones, and only the values that appear are timed).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/http/client.h"
#include "common/kubeconfig/kubeconfig.h"
#include "dmi/api.pb.h"
#include "edgecore/eventbus/mqtt_client.h"

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

long rssKiB(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"device report throughput and latency"};
  std::string kubeconfigPath, node = "bench-node", mode = "mqtt", mqtt = "tcp://127.0.0.1:1883",
                              dmi, edgeApi = "http://127.0.0.1:10550", ns = "default";
  int devices = 1000, seconds = 10, concurrency = 16, edgePid = 0, settle = 0;
  double rate = 2000;
  app.add_option("--kubeconfig", kubeconfigPath)->required();
  app.add_option("--node", node);
  app.add_option("--mode", mode, "mqtt or dmi");
  app.add_option("--mqtt", mqtt);
  app.add_option("--dmi", dmi, "the node's DMI socket");
  app.add_option("--edge-api", edgeApi, "the node's local API");
  app.add_option("--devices", devices);
  app.add_option("--rate", rate, "reports per second");
  app.add_option("--seconds", seconds);
  app.add_option("--concurrency", concurrency, "DMI calls in flight");
  app.add_option("--edge-pid", edgePid, "edgecore pid for RSS");
  app.add_option("--settle", settle, "seconds to wait idle after the devices are cached (RSS)");
  CLI11_PARSE(app, argc, argv);

  auto creds = ep::kubeconfig::load(kubeconfigPath);
  if (!creds) {
    std::cerr << creds.status().message() << "\n";
    return 1;
  }
  ep::http::ClientOptions co;
  co.caPem = creds->caPem;
  co.clientCertPem = creds->clientCertPem;
  co.clientKeyPem = creds->clientKeyPem;
  co.bearerToken = creds->token;
  ep::http::HttpClient api(creds->server, co);
  const std::string base = "/apis/devices.kubeedge.io/v1beta1/namespaces/" + ns;

  // 1. Model and devices (created once; reused by later runs).
  Json model = {
      {"apiVersion", "devices.kubeedge.io/v1beta1"},
      {"kind", "DeviceModel"},
      {"metadata", {{"name", "bench-model"}}},
      {"spec",
       {{"protocol", "benchproto"},
        {"properties", {{{"name", "value"}, {"type", "INT"}, {"accessMode", "ReadOnly"}}}}}}};
  (void)api.request("POST", base + "/devicemodels", model.dump(), "application/json");
  auto t0 = Clock::now();
  for (int i = 0; i < devices; ++i) {
    Json d = {
        {"apiVersion", "devices.kubeedge.io/v1beta1"},
        {"kind", "Device"},
        {"metadata", {{"name", "bench-" + std::to_string(i)}, {"labels", {{"bench", "devices"}}}}},
        {"spec",
         {{"deviceModelRef", {{"name", "bench-model"}}},
          {"nodeName", node},
          {"protocol", {{"protocolName", "benchproto"}}},
          {"properties", {{{"name", "value"}, {"reportToCloud", true}}}}}}};
    auto r = api.request("POST", base + "/devices", d.dump(), "application/json");
    if (!r.isOk() || (r->status != 201 && r->status != 409)) {
      std::cerr << "create device " << i << ": " << (r.isOk() ? r->body : r.status().message())
                << "\n";
      return 1;
    }
  }
  // Until the node's cache holds them all.
  ep::http::HttpClient edge(edgeApi);
  for (int tries = 0;; ++tries) {
    auto r = edge.request("GET", base + "/devices");
    if (r.isOk() && r->status == 200) {
      Json list = Json::parse(r->body, nullptr, false);
      if (list.is_object() && static_cast<int>(list["items"].size()) >= devices) break;
    }
    if (tries > 600) {
      std::cerr << "the devices did not reach the node\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cout << "devices: " << devices << " on " << node << " (ready after " << ms(Clock::now() - t0)
            << " ms)";
  if (edgePid > 0) std::cout << ", edgecore RSS " << rssKiB(edgePid) / 1024.0 << " MiB";
  std::cout << "\n";
  if (settle > 0 && edgePid > 0) {
    std::this_thread::sleep_for(std::chrono::seconds(settle));
    std::cout << "edgecore RSS after " << settle
              << " s idle with the devices: " << rssKiB(edgePid) / 1024.0 << " MiB\n";
  }

  // 2. Watch from now.
  auto list = api.request("GET", base + "/devices?labelSelector=bench%3Ddevices&limit=1");
  std::string rv =
      list.isOk() ? Json::parse(list->body)["metadata"].value("resourceVersion", "") : "";
  const size_t total = static_cast<size_t>(rate * seconds);
  std::vector<Clock::time_point> sent(total);
  std::vector<std::atomic<bool>> sentSet(total);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> latencies;
  std::map<int, int64_t> latestSeen;  // device → highest seq in its status
  size_t updates = 0;
  Clock::time_point lastUpdate{};
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    ep::http::HttpClient w(creds->server, co);
    auto s = w.stream(
        "GET", base + "/devices?watch=1&labelSelector=bench%3Ddevices&resourceVersion=" + rv,
        [&](std::string_view line) {
          Json e = Json::parse(line, nullptr, false);
          if (!e.is_object() || e.value("type", "") != "MODIFIED") return !stop.load();
          const auto now = Clock::now();
          const Json& obj = e["object"];
          std::string name = obj["metadata"].value("name", "");
          int dev = std::atoi(name.c_str() + 6);
          for (const auto& t : obj.value("status", Json::object()).value("twins", Json::array())) {
            if (!t.contains("reported")) continue;
            int64_t seq = std::atoll(t["reported"].value("value", "-1").c_str());
            std::lock_guard lock(mu);
            auto& latest = latestSeen[dev];
            if (seq >= 0 && static_cast<size_t>(seq) < total && seq > latest && sentSet[seq]) {
              latencies.push_back(ms(now - sent[seq]));
              latest = seq;
              ++updates;
              lastUpdate = now;
              cv.notify_all();
            }
          }
          return !stop.load();
        });
    if (!s.isOk() && !stop) std::cerr << "watch: " << s.message() << "\n";
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // 3. Report.
  std::unique_ptr<ep::edgecore::eventbus::MqttClient> client;
  std::unique_ptr<grpc::GenericStub> stub;
  std::shared_ptr<grpc::Channel> channel;
  std::atomic<int> inflight{0};
  std::atomic<size_t> failures{0};
  if (mode == "mqtt") {
    ep::edgecore::eventbus::MqttClientOptions o;
    o.server = mqtt;
    o.connect.clientId = "device-report-bench";
    o.maxQueued = total + 16;
    o.maxInflight = 256;
    std::atomic<bool> up{false};
    client = std::make_unique<ep::edgecore::eventbus::MqttClient>(
        o, [](ep::edgecore::eventbus::InboundMessage) {}, [&](bool c) { up = c; });
    if (!client->start().isOk()) return 1;
    for (int i = 0; i < 100 && !up; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } else {
    channel = grpc::CreateChannel("unix://" + dmi, grpc::InsecureChannelCredentials());
    stub = std::make_unique<grpc::GenericStub>(channel);
  }
  const auto start = Clock::now();
  const int64_t startWallMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  for (size_t i = 0; i < total; ++i) {
    auto due = start +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / rate));
    std::this_thread::sleep_until(due);
    const int dev = static_cast<int>(i % static_cast<size_t>(devices));
    const std::string name = "bench-" + std::to_string(dev);
    sent[i] = Clock::now();
    sentSet[i] = true;
    if (mode == "mqtt") {
      (void)client->publish(
          "$hw/events/device/" + name + "/twin/update",
          R"({"twin":{"value":{"actual":{"value":")" + std::to_string(i) + R"("}}}})", 1);
    } else {
      while (inflight.load() >= concurrency) std::this_thread::yield();
      v1beta1::ReportDeviceStatusRequest req;
      req.set_devicename(name);
      req.set_devicenamespace(ns);
      auto* twin = req.mutable_reporteddevice()->add_twins();
      twin->set_propertyname("value");
      twin->mutable_reported()->set_value(std::to_string(i));
      auto ctx = std::make_shared<grpc::ClientContext>();
      auto body = std::make_shared<grpc::ByteBuffer>();
      auto reply = std::make_shared<grpc::ByteBuffer>();
      grpc::Slice slice(req.SerializeAsString());
      *body = grpc::ByteBuffer(&slice, 1);
      ++inflight;
      stub->UnaryCall(ctx.get(), "/v1beta1.DeviceManagerService/ReportDeviceStatus",
                      grpc::StubOptions(), body.get(), reply.get(),
                      [&, ctx, body, reply](grpc::Status st) {
                        if (!st.ok()) ++failures;
                        --inflight;
                      });
    }
  }
  const auto published = Clock::now();
  while (inflight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto accepted = Clock::now();

  // 4. Until every device's status shows its last value (or 60 s).
  std::map<int, int64_t> lastSent;
  for (size_t i = 0; i < total; ++i)
    lastSent[static_cast<int>(i % static_cast<size_t>(devices))] = static_cast<int64_t>(i);
  bool converged = false;
  {
    std::unique_lock lock(mu);
    converged = cv.wait_for(lock, std::chrono::seconds(60), [&] {
      for (const auto& [d, s] : lastSent) {
        if (latestSeen[d] != s) return false;
      }
      return true;
    });
  }
  const auto done = Clock::now();
  stop = true;
  (void)api.request("PATCH", base + "/devices/bench-0",
                    R"({"metadata":{"annotations":{"bench":"end"}}})",
                    "application/merge-patch+json");
  if (client) client->stop();

  std::unique_lock lock(mu);
  const double sendSeconds = std::chrono::duration<double>(published - start).count();
  const double acceptSeconds = std::chrono::duration<double>(accepted - start).count();
  std::cout << "mode " << mode << ": " << total << " reports in " << sendSeconds << " s ("
            << total / sendSeconds << "/s offered";
  if (mode == "dmi")
    std::cout << ", " << total / acceptSeconds << "/s acknowledged, " << failures << " failed";
  std::cout << ")\n";
  std::cout << "cloud: " << updates << " status updates seen ("
            << updates / std::max(1e-9, std::chrono::duration<double>(lastUpdate - start).count())
            << "/s), " << (converged ? "converged " : "NOT converged ") << ms(done - published)
            << " ms after the last report\n";
  std::cout << "latency report -> cloud status (values that appeared): p50 "
            << percentile(latencies, 0.5) << " ms, p99 " << percentile(latencies, 0.99)
            << " ms, max " << percentile(latencies, 1.0) << " ms\n";
  // Device data keeps every value (reportToCloud), not only the latest: count device 0's.
  {
    size_t sent = 0;
    for (size_t i = 0; i < total; i += static_cast<size_t>(devices)) ++sent;
    // From the run's start to the millisecond: the previous run's last values of bench-0 (a
    // device of the same name) are not this run's.
    char secsText[64], since[80];
    const time_t secs = static_cast<time_t>(startWallMs / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::strftime(secsText, sizeof secsText, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(since, sizeof since, "%s.%03dZ", secsText, static_cast<int>(startWallMs % 1000));
    size_t stored = 0;
    for (int tries = 0; tries < 100; ++tries) {
      auto r = api.request("GET", base + "/devices/bench-0/data?limit=10000&sinceTime=" + since);
      if (r.isOk() && r->status == 200) {
        stored = Json::parse(r->body, nullptr, false).value("items", Json::array()).size();
      }
      if (stored >= sent) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::cout << "device data: bench-0 has " << stored << " of the " << sent
              << " values reported to it in this run\n";
  }
  if (edgePid > 0) std::cout << "edgecore RSS " << rssKiB(edgePid) / 1024.0 << " MiB\n";
  std::cout.flush();
  // The watch thread blocks in its stream; the process ends without waiting for it.
  lock.unlock();
  watcher.detach();
  std::_Exit(converged ? 0 : 3);
}
