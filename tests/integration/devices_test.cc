// Devices end to end: cloudcore, a real edgecore, a real mosquitto; mosquitto_pub/mosquitto_sub
// play the devices (KubeEdge's topics and payloads, docs/devices.md).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/pki/pki.h"
#include "dmi/api.pb.h"
#include "tests/integration/broker_fixture.h"
#include "tests/integration/thermometer_manifests.h"
#include "tests/testing/grpc_generic.h"
#include "tests/testing/mosquitto.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kManifests = kThermometerManifests;

class DevicesTest : public BrokerEdgeFixture {
 protected:
  void startDeviceEdge() { startEdge("edge-1", {"--mqtt-server", broker_->url()}); }

  // Subscribes to `filter` and waits until the subscription is live (a probe on `probeTopic`,
  // which must match the filter, comes back), so nothing published after this is missed.
  Process* watch(const std::string& filter, const std::string& probeTopic) {
    auto p = broker_->subscribe(filter, "sub" + std::to_string(subs_.size()) + ".log");
    EXPECT_NE(p, nullptr);
    Process* raw = p.get();
    subs_.push_back(std::move(p));
    EXPECT_TRUE(eventually(
        [&] {
          broker_->publish(probeTopic, "{\"probe\":true}");
          return raw->log().find(probeTopic) != std::string::npos;
        },
        std::chrono::seconds(10)));
    return raw;
  }

  // Lines "TOPIC PAYLOAD" of a watcher's log with exactly this topic, payloads parsed.
  static std::vector<Json> messages(Process* sub, const std::string& topic) {
    std::vector<Json> out;
    std::istringstream in(sub->log());
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(topic + " ", 0) != 0) continue;
      out.push_back(Json::parse(line.substr(topic.size() + 1), nullptr, false));
    }
    return out;
  }

  Json device() {
    auto r = edgectl({"get", "device", "thermo-1", "-o", "json"});
    if (r.exitCode != 0) return Json();
    return Json::parse(r.out, nullptr, false);
  }

  // The reported value of `property` in the cloud's Device status ("" when none).
  std::string reported(const std::string& property) {
    Json d = device();
    if (!d.is_object()) return "";
    for (const auto& t : d["status"].value("twins", Json::array())) {
      if (t.value("propertyName", "") == property && t.contains("reported")) {
        return t["reported"].value("value", "");
      }
    }
    return "";
  }

  void applyDevices() {
    auto r = edgectl({"apply", "-f", writeFile("devices.yaml", kManifests)});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  // The values of `property` in the cloud's device data (edgectl data), oldest first.
  std::vector<std::string> dataValues(const std::string& property) {
    auto r = edgectl({"data", "thermo-1", "--property", property, "-o", "json"});
    std::vector<std::string> out;
    Json j = Json::parse(r.out, nullptr, false);
    if (r.exitCode != 0 || !j.is_object()) return out;
    for (const auto& item : j.value("items", Json::array())) out.push_back(item.value("value", ""));
    return out;
  }
};

TEST_F(DevicesTest, ReportedValuesReachTheCloudAndDesiredValuesReachTheDevice) {
  startDeviceEdge();
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
  Process* sub = watch("$hw/events/#", "$hw/events/probe");
  applyDevices();

  // The node announces its new device and delivers the desired value set at creation.
  ASSERT_TRUE(eventually([&] {
    return !messages(sub, "$hw/events/node/edge-1/membership/updated").empty() &&
           !messages(sub, "$hw/events/device/thermo-1/twin/update/delta").empty();
  })) << sub->log();
  Json delta = messages(sub, "$hw/events/device/thermo-1/twin/update/delta")[0];
  EXPECT_EQ(delta["delta"]["setpoint"], "20");
  EXPECT_EQ(delta["twin"]["setpoint"]["expected"]["value"], "20");
  EXPECT_EQ(delta["twin"]["setpoint"]["metadata"]["type"], "int");

  // A device reports: the result topic answers, the cloud's status shows the value.
  ASSERT_EQ(
      broker_
          ->publish(
              "$hw/events/device/thermo-1/twin/update",
              R"({"event_id":"r1","timestamp":0,"twin":{"temperature":{"actual":{"value":"21.5"},"metadata":{"type":"float"}}}})")
          .exitCode,
      0);
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "21.5"; })) << device().dump();
  auto results = messages(sub, "$hw/events/device/thermo-1/twin/update/result");
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results.back()["event_id"], "r1");
  EXPECT_EQ(results.back()["twin"]["temperature"]["actual"]["value"], "21.5");
  ASSERT_FALSE(messages(sub, "$hw/events/device/thermo-1/twin/update/document").empty());

  // observedDesired shows what reached the edge.
  Json status = device()["status"];
  bool observed = false;
  for (const auto& t : status["twins"]) {
    if (t["propertyName"] == "setpoint") observed = t["observedDesired"]["value"] == "20";
  }
  EXPECT_TRUE(observed) << status.dump();

  // A new desired value in the cloud reaches the device as a delta.
  {
    auto c = client();
    auto r =
        c.request("PATCH", "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1",
                  R"([{"op":"replace","path":"/spec/properties/1/desired/value","value":"42"}])",
                  "application/json-patch+json");
    ASSERT_TRUE(r.isOk());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  ASSERT_TRUE(eventually([&] {
    for (const auto& d : messages(sub, "$hw/events/device/thermo-1/twin/update/delta")) {
      if (d["delta"].value("setpoint", "") == "42") return true;
    }
    return false;
  })) << sub->log();

  // State: online, and the wide listing shows it with the reading.
  ASSERT_EQ(broker_
                ->publish("$hw/events/device/thermo-1/state/update",
                          R"({"event_id":"s1","state":"online"})")
                .exitCode,
            0);
  ASSERT_TRUE(eventually([&] { return device()["status"].value("state", "") == "online"; }));
  EXPECT_FALSE(device()["status"].value("lastOnlineTime", "").empty());
  auto wide = edgectl({"get", "device", "-o", "wide"});
  EXPECT_NE(wide.out.find("temperature=21.5"), std::string::npos) << wide.out;
  EXPECT_NE(wide.out.find("online"), std::string::npos) << wide.out;

  // Device data: temperature has reportToCloud, setpoint has not; edgectl data shows the
  // temperature series in order.
  ASSERT_EQ(broker_
                ->publish("$hw/events/device/thermo-1/twin/update",
                          R"({"twin":{"setpoint":{"actual":{"value":"7"}},)"
                          R"("temperature":{"actual":{"value":"22"}}}})")
                .exitCode,
            0);
  ASSERT_TRUE(eventually([&] { return dataValues("temperature").size() == 2; }))
      << edgectl({"data", "thermo-1"}).out;
  EXPECT_EQ(dataValues("temperature"), (std::vector<std::string>{"21.5", "22"}));
  EXPECT_TRUE(dataValues("setpoint").empty());
  auto csv = edgectl({"data", "thermo-1", "-o", "csv"});
  ASSERT_EQ(csv.exitCode, 0) << csv.err;
  EXPECT_EQ(csv.out.rfind("property,timestamp,value\ntemperature,", 0), 0u) << csv.out;
  auto table = edgectl({"data", "device/thermo-1", "--since", "10m"});
  EXPECT_NE(table.out.find("PROPERTY"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("22"), std::string::npos) << table.out;
  EXPECT_NE(edgectl({"data", "ghost"}).exitCode, 0);

  // twin/get and membership/get are answered.
  ASSERT_EQ(
      broker_->publish("$hw/events/device/thermo-1/twin/get", R"({"event_id":"g1"})").exitCode, 0);
  ASSERT_EQ(
      broker_->publish("$hw/events/node/edge-1/membership/get", R"({"event_id":"m1"})").exitCode,
      0);
  ASSERT_TRUE(eventually([&] {
    return !messages(sub, "$hw/events/device/thermo-1/twin/get/result").empty() &&
           !messages(sub, "$hw/events/node/edge-1/membership/get/result").empty();
  }));
  Json got = messages(sub, "$hw/events/device/thermo-1/twin/get/result")[0];
  EXPECT_EQ(got["event_id"], "g1");
  EXPECT_EQ(got["twin"]["temperature"]["actual"]["value"], "22");
  EXPECT_EQ(got["twin"]["setpoint"]["expected"]["value"], "42");
  Json members = messages(sub, "$hw/events/node/edge-1/membership/get/result")[0];
  ASSERT_EQ(members["devices"].size(), 1u);
  EXPECT_EQ(members["devices"][0]["id"], "thermo-1");
}

TEST_F(DevicesTest, BadInputIsAnsweredOnTheResultTopicAndNothingIsStored) {
  startDeviceEdge();
  Process* sub =
      watch("$hw/events/device/+/twin/update/result", "$hw/events/device/probe/twin/update/result");
  applyDevices();
  ASSERT_TRUE(eventually([&] { return device()["spec"].is_object(); }));
  // The device must have reached the edge before its reports are judged.
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"not json", "not valid JSON"},
      {R"({"event_id":"b1","twin":{"humidity":{"actual":{"value":"1"}}}})",
       "no property \"humidity\""},
      {R"({"event_id":"b2","twin":{"temperature":{"actual":{"value":"hot"}}}})", "is not a FLOAT"},
      {R"({"event_id":"b3","twin":{"temperature":{"actual":{"value":"200"}}}})", "maximum 125"},
  };
  for (const auto& [payload, reason] : bad) {
    ASSERT_EQ(broker_->publish("$hw/events/device/thermo-1/twin/update", payload).exitCode, 0);
  }
  ASSERT_EQ(broker_
                ->publish("$hw/events/device/ghost/twin/update",
                          R"({"twin":{"temperature":{"actual":{"value":"1"}}}})")
                .exitCode,
            0);
  ASSERT_TRUE(eventually([&] {
    return messages(sub, "$hw/events/device/thermo-1/twin/update/result").size() >= bad.size() &&
           !messages(sub, "$hw/events/device/ghost/twin/update/result").empty();
  })) << sub->log();
  auto results = messages(sub, "$hw/events/device/thermo-1/twin/update/result");
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(results[i]["code"], 400) << results[i].dump();
    EXPECT_NE(results[i].value("reason", "").find(bad[i].second), std::string::npos)
        << results[i].dump();
  }
  EXPECT_EQ(messages(sub, "$hw/events/device/ghost/twin/update/result")[0]["code"], 404);
  // A good report after the bad ones lands; none of the bad values ever did.
  ASSERT_EQ(broker_
                ->publish("$hw/events/device/thermo-1/twin/update",
                          R"({"twin":{"temperature":{"actual":{"value":"19"}}}})")
                .exitCode,
            0);
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "19"; }));
}

TEST_F(DevicesTest, ReportsWhileTheCloudIsDownArriveAfterItReturnsAcrossAnEdgeRestart) {
  startDeviceEdge();
  applyDevices();
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  Process* sub = watch("$hw/events/device/thermo-1/#", "$hw/events/device/thermo-1/probe");

  cloud_.reset();  // the cloud goes away; broker and edge stay
  for (int v = 1; v <= 5; ++v) {
    ASSERT_EQ(broker_
                  ->publish("$hw/events/device/thermo-1/twin/update",
                            R"({"twin":{"temperature":{"actual":{"value":")" + std::to_string(v) +
                                R"("}}}})")
                  .exitCode,
              0);
  }
  ASSERT_EQ(
      broker_->publish("$hw/events/device/thermo-1/state/update", R"({"state":"online"})").exitCode,
      0);
  // The edge answers devices with the cloud gone.
  ASSERT_TRUE(eventually([&] {
    return messages(sub, "$hw/events/device/thermo-1/twin/update/result").size() >= 5 &&
           !messages(sub, "$hw/events/device/thermo-1/state/update/result").empty();
  })) << sub->log();

  // edgecore restarts while still offline: the twin and its pending report survive.
  ASSERT_EQ(edges_["edge-1"].proc->stop(SIGTERM), 0);
  startDeviceEdge();
  const size_t before = messages(sub, "$hw/events/device/thermo-1/twin/get/result").size();
  ASSERT_EQ(
      broker_->publish("$hw/events/device/thermo-1/twin/get", R"({"event_id":"after"})").exitCode,
      0);
  ASSERT_TRUE(eventually(
      [&] { return messages(sub, "$hw/events/device/thermo-1/twin/get/result").size() > before; }));
  EXPECT_EQ(messages(sub, "$hw/events/device/thermo-1/twin/get/result")
                .back()["twin"]["temperature"]["actual"]["value"],
            "5");

  restartCloud();
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "5"; }, std::chrono::seconds(30)))
      << device().dump();
  EXPECT_EQ(device()["status"].value("state", ""), "online");
  // Every value reported offline reached the device data, in order (temperature has
  // reportToCloud), although the status kept only the last.
  ASSERT_TRUE(eventually([&] { return dataValues("temperature").size() >= 5; }))
      << edgectl({"data", "thermo-1"}).out;
  EXPECT_EQ(dataValues("temperature"), (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

// TLS to the broker (mqtt.server ssl://, mqtt.caFile/certFile/keyFile): the twin works over
// mutual TLS with a real mosquitto, and an edgecore that does not trust the broker's
// certificate refuses the connection and says why.
TEST_F(DevicesTest, TwinWorksOverMutualTlsAndAnUntrustedBrokerIsRefused) {
  using namespace std::chrono_literals;
  auto ca = pki::createCa("mqtt-test-ca", 24h);
  auto other = pki::createCa("some-other-ca", 24h);
  ASSERT_TRUE(ca.isOk() && other.isOk());
  auto server = pki::issueKeyAndCertificate(
      *ca, {.commonName = "broker", .ipAddresses = {"127.0.0.1"}, .serverAuth = true});
  auto client = pki::issueKeyAndCertificate(*ca, {.commonName = "edgecore", .clientAuth = true});
  ASSERT_TRUE(server.isOk() && client.isOk());
  const std::string tlsDir = dir_.path() + "/tls";
  std::filesystem::create_directories(tlsDir);
  MosquittoTls files{.caFile = writeFile("tls/ca.crt", ca->certPem),
                     .certFile = writeFile("tls/server.crt", server->certPem),
                     .keyFile = writeFile("tls/server.key", server->keyPem),
                     .clientCertFile = writeFile("tls/client.crt", client->certPem),
                     .clientKeyFile = writeFile("tls/client.key", client->keyPem)};
  Mosquitto tlsBroker(tlsDir, files);
  ASSERT_TRUE(tlsBroker.start()) << tlsBroker.log();
  ASSERT_EQ(tlsBroker.url().rfind("ssl://", 0), 0u);

  const std::string config =
      writeFile("edge-tls.yaml", "mqtt:\n  caFile: " + files.caFile +
                                     "\n  certFile: " + files.clientCertFile +
                                     "\n  keyFile: " + files.clientKeyFile + "\n");
  startEdge("edge-1", {"--mqtt-server", tlsBroker.url(), "--config", config});
  applyDevices();
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  // The twin's subscriptions are live once a probe comes back over TLS.
  auto sub = tlsBroker.subscribe("$hw/events/device/thermo-1/#", "tls-sub.log");
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(eventually([&] {
    if (tlsBroker
            .publish("$hw/events/device/thermo-1/twin/update",
                     R"({"twin":{"temperature":{"actual":{"value":"23.5"}}}})")
            .exitCode != 0) {
      return false;
    }
    return sub->log().find("twin/update/result") != std::string::npos;
  })) << sub->log()
      << edges_["edge-1"].proc->log();
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "23.5"; })) << device().dump();

  // The broker goes away while edgecore's TLS read is pending (the session must outlive its
  // aborted operations), then returns: edgecore reconnects over TLS and the twin works again.
  sub.reset();
  tlsBroker.stop();
  ASSERT_TRUE(tlsBroker.start()) << tlsBroker.log();
  sub = tlsBroker.subscribe("$hw/events/device/thermo-1/#", "tls-sub2.log");
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(eventually(
      [&] {
        if (tlsBroker
                .publish("$hw/events/device/thermo-1/twin/update",
                         R"({"twin":{"temperature":{"actual":{"value":"24"}}}})")
                .exitCode != 0) {
          return false;
        }
        return reported("temperature") == "24";
      },
      std::chrono::seconds(30)))
      << edges_["edge-1"].proc->log();
  EXPECT_TRUE(edges_["edge-1"].proc->running());

  const std::string untrusting = writeFile(
      "edge-untrusting.yaml", "mqtt:\n  caFile: " + writeFile("tls/other-ca.crt", other->certPem) +
                                  "\n  certFile: " + files.clientCertFile +
                                  "\n  keyFile: " + files.clientKeyFile + "\n");
  startEdge("edge-2", {"--mqtt-server", tlsBroker.url(), "--config", untrusting});
  ASSERT_TRUE(eventually([&] {
    return edges_["edge-2"].proc->log().find("certificate verify failed") != std::string::npos;
  })) << edges_["edge-2"].proc->log();
}

TEST_F(DevicesTest, EdgecoreReconnectsToARestartedBroker) {
  startDeviceEdge();
  applyDevices();
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  broker_->stop();
  ASSERT_TRUE(broker_->start());  // same port
  // Its session is gone with the broker's memory; edgecore subscribes again on reconnect.
  Process* sub = watch("$hw/events/device/thermo-1/twin/update/result",
                       "$hw/events/device/thermo-1/twin/update/result");
  ASSERT_TRUE(eventually(
      [&] {
        broker_->publish("$hw/events/device/thermo-1/twin/update",
                         R"({"event_id":"again","twin":{"temperature":{"actual":{"value":"7"}}}})");
        for (const auto& m : messages(sub, "$hw/events/device/thermo-1/twin/update/result")) {
          if (m.value("event_id", "") == "again") return true;
        }
        return false;
      },
      std::chrono::seconds(40)));
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "7"; }));
}

// ---- DMI: KubeEdge v1beta1 mappers over real unix sockets ----

// A unix socket that accepts connections and then either never answers (`garbage` false) or
// answers every connection with bytes that are not HTTP/2 and closes it.
class BadMapperSocket {
 public:
  BadMapperSocket(const std::string& path, bool garbage) : path_(path), garbage_(garbage) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ::unlink(path.c_str());
    ok_ =
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 16) == 0;
    thread_ = std::thread([this] {
      while (true) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        accepted_++;
        if (garbage_) {
          const char junk[] = "HTTP/1.0 500 nonsense\r\n\r\n\x01\x02\x03";
          (void)!::write(c, junk, sizeof junk);
          ::close(c);
        } else {
          held_.push_back(c);  // never answered
        }
      }
    });
  }
  ~BadMapperSocket() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : held_) ::close(c);
    ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  int accepted() const { return accepted_; }

 private:
  std::string path_;
  bool garbage_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<int> accepted_{0};
  std::vector<int> held_;
  std::thread thread_;
};

class DmiTest : public DevicesTest {
 protected:
  std::string dmiSocket() { return dir_.path() + "/dmi.sock"; }
  void startDmiEdge() { startEdge("edge-1", {"--dmi-socket", dmiSocket()}); }
  Process* startMapper(const std::string& logName = "mapper.log") {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{buildPath("mappers/ep-thermometer-mapper"), "--dmi-socket",
                                 dmiSocket(), "--socket", dir_.path() + "/simthermo.sock",
                                 "--report-cycle-ms", "200"},
        dir_.path() + "/" + logName);
    EXPECT_TRUE(p->start());
    mappers_.push_back(std::move(p));
    return mappers_.back().get();
  }
  void TearDown() override {
    if (HasFailure()) {
      for (auto& m : mappers_) std::cerr << "---- mapper ----\n" << tail(m->log(), 3000) << "\n";
    }
    mappers_.clear();
    DevicesTest::TearDown();
  }
  // One DeviceManagerService call with gRPC++ (as a mapper's gRPC library would make it).
  // (grpclite is not linked here: its wolfSSL Asio build cannot share a binary with the
  // OpenSSL one the test's HTTP client uses.)
  grpc::Status callRaw(const std::string& method, const std::string& body, std::string* response) {
    auto channel = grpc::CreateChannel("unix://" + dmiSocket(), grpc::InsecureChannelCredentials());
    return genericUnaryCall(channel, "/v1beta1.DeviceManagerService/" + method, body, response);
  }
  grpc::Status call(const std::string& method, const google::protobuf::MessageLite& req,
                    google::protobuf::MessageLite* resp) {
    std::string out;
    auto s = callRaw(method, req.SerializeAsString(), &out);
    if (s.ok() && !resp->ParseFromString(out))
      return grpc::Status(grpc::StatusCode::INTERNAL, "bad response");
    return s;
  }
  // Applies a device of `protocol` named `name` bound to edge-1 (the thermometer model).
  void applyDevice(const std::string& name, const std::string& protocol) {
    std::string yaml = std::string(kManifests);
    yaml = yaml.substr(yaml.find("---\n") + 4);
    auto replaceAll = [&](const std::string& from, const std::string& to) {
      for (size_t at = 0; (at = yaml.find(from, at)) != std::string::npos; at += to.size()) {
        yaml.replace(at, from.size(), to);
      }
    };
    replaceAll("thermo-1", name);
    replaceAll("simthermo", protocol);
    auto r = edgectl({"apply", "-f", writeFile(name + ".yaml", yaml)});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }
  std::string reportedOf(const std::string& device, const std::string& property) {
    auto r = edgectl({"get", "device", device, "-o", "json"});
    Json d = Json::parse(r.out, nullptr, false);
    if (!d.is_object()) return "";
    for (const auto& t : d["status"].value("twins", Json::array())) {
      if (t.value("propertyName", "") == property && t.contains("reported")) {
        return t["reported"].value("value", "");
      }
    }
    return "";
  }
  int patchDesired(const std::string& device, const std::string& value) {
    auto c = client();
    auto r =
        c.request("PATCH", "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/" + device,
                  R"([{"op":"replace","path":"/spec/properties/1/desired/value","value":")" +
                      value + R"("}])",
                  "application/json-patch+json");
    return r.isOk() ? r->status : -1;
  }

  std::vector<std::unique_ptr<Process>> mappers_;
};

TEST_F(DmiTest, MapperGetsItsDevicesAndItsReportsReachTheCloud) {
  startDmiEdge();
  applyDevices();
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  Process* mapper = startMapper();
  ASSERT_TRUE(eventually([&] {
    return mapper->log().find("registered: 1 devices, 1 models") != std::string::npos;
  })) << mapper->log();
  // Readings and the applied desired value arrive in the cloud; the device is online.
  ASSERT_TRUE(eventually([&] {
    return !reportedOf("thermo-1", "temperature").empty() &&
           reportedOf("thermo-1", "setpoint") == "20";
  })) << device().dump();
  ASSERT_TRUE(eventually([&] { return device()["status"].value("state", "") == "online"; }));
  const double t = std::stod(reportedOf("thermo-1", "temperature"));
  EXPECT_GE(t, -40);
  EXPECT_LE(t, 125);

  // A new desired value reaches the mapper (UpdateDevice), which applies and reports it.
  ASSERT_EQ(patchDesired("thermo-1", "42"), 200);
  ASSERT_TRUE(eventually([&] { return reportedOf("thermo-1", "setpoint") == "42"; }))
      << mapper->log();
  EXPECT_NE(mapper->log().find("UpdateDevice default/thermo-1"), std::string::npos);

  // edgecore restarts: it calls the known mapper again with everything (RegisterDevice).
  const size_t before = mapper->log().size();
  ASSERT_EQ(edges_["edge-1"].proc->stop(SIGTERM), 0);
  startDmiEdge();
  ASSERT_TRUE(eventually([&] {
    return mapper->log().substr(before).find("RegisterDevice default/thermo-1") !=
               std::string::npos ||
           mapper->log().substr(before).find("registered: 1 devices") != std::string::npos;
  })) << mapper->log();
  ASSERT_EQ(patchDesired("thermo-1", "7"), 200);
  ASSERT_TRUE(eventually([&] { return reportedOf("thermo-1", "setpoint") == "7"; }))
      << mapper->log();

  // The device leaves the node: the mapper is told to remove it.
  ASSERT_EQ(edgectl({"delete", "device", "thermo-1"}).exitCode, 0);
  ASSERT_TRUE(eventually([&] {
    return mapper->log().find("RemoveDevice default/thermo-1") != std::string::npos;
  })) << mapper->log();
}

TEST_F(DmiTest, BadReportsAreRefusedWithAStatusAndNothingIsStored) {
  startDmiEdge();
  applyDevices();
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  ASSERT_TRUE(eventually([&] { return ::access(dmiSocket().c_str(), F_OK) == 0; }));
  auto report = [&](const std::string& device, const std::string& property,
                    const std::string& value) {
    v1beta1::ReportDeviceStatusRequest req;
    req.set_devicename(device);  // no namespace, as KubeEdge 1.15 mappers send: "default"
    auto* twin = req.mutable_reporteddevice()->add_twins();
    twin->set_propertyname(property);
    twin->mutable_reported()->set_value(value);
    v1beta1::ReportDeviceStatusResponse resp;
    return call("ReportDeviceStatus", req, &resp);
  };
  auto s = report("ghost", "temperature", "1");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  s = report("thermo-1", "humidity", "1");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("no property \"humidity\""), std::string::npos)
      << s.error_message();
  s = report("thermo-1", "temperature", "hot");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  s = report("thermo-1", "setpoint", "101");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("maximum 100"), std::string::npos) << s.error_message();
  // Not a protobuf message at all.
  std::string out;
  s = callRaw("ReportDeviceStatus", std::string("\xff\xff\xff", 3), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // A mapper without an absolute socket path is refused.
  v1beta1::MapperRegisterRequest reg;
  reg.mutable_mapper()->set_protocol("p");
  reg.mutable_mapper()->set_address("relative.sock");
  v1beta1::MapperRegisterResponse regResp;
  s = call("MapperRegister", reg, &regResp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // A good report lands; none of the bad ones did.
  s = report("thermo-1", "temperature", "18.5");
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(eventually([&] { return reportedOf("thermo-1", "temperature") == "18.5"; }));
  EXPECT_EQ(reportedOf("thermo-1", "setpoint"), "");
}

TEST_F(DmiTest, HungAndGarbageMappersDoNotHoldUpAGoodOne) {
  startDmiEdge();
  BadMapperSocket hung(dir_.path() + "/hung.sock", /*garbage=*/false);
  BadMapperSocket garbage(dir_.path() + "/garbage.sock", /*garbage=*/true);
  ASSERT_TRUE(hung.ok() && garbage.ok());
  for (const auto& [protocol, path] : std::vector<std::pair<std::string, std::string>>{
           {"hung", dir_.path() + "/hung.sock"}, {"garbage", dir_.path() + "/garbage.sock"}}) {
    v1beta1::MapperRegisterRequest reg;
    reg.set_withdata(true);
    reg.mutable_mapper()->set_name(protocol + "-mapper");
    reg.mutable_mapper()->set_protocol(protocol);
    reg.mutable_mapper()->set_address(path);
    v1beta1::MapperRegisterResponse resp;
    grpc::Status s;
    // The DMI socket comes up after the local API the fixture waits for.
    ASSERT_TRUE(eventually([&] { return (s = call("MapperRegister", reg, &resp)).ok(); }))
        << s.error_message();
    EXPECT_EQ(resp.devicelist_size(), 0);
  }
  applyDevices();  // thermo-1 (simthermo, desired 20)
  applyDevice("stuck-1", "hung");
  applyDevice("broken-1", "garbage");
  Process* mapper = startMapper();
  ASSERT_TRUE(eventually([&] { return reportedOf("thermo-1", "setpoint") == "20"; }))
      << mapper->log();
  // Both bad mappers were called (and are being retried) ...
  ASSERT_TRUE(eventually([&] { return hung.accepted() >= 1 && garbage.accepted() >= 1; }));
  // ... while desired values keep reaching the good one promptly.
  for (const char* v : {"31", "32", "33"}) {
    ASSERT_EQ(patchDesired("thermo-1", v), 200);
    ASSERT_TRUE(eventually([&] { return reportedOf("thermo-1", "setpoint") == v; },
                           std::chrono::seconds(10)))
        << mapper->log();
  }
  ASSERT_TRUE(eventually([&] { return garbage.accepted() >= 2; }, std::chrono::seconds(15)))
      << "the garbage mapper is retried";
  EXPECT_NE(
      edges_["edge-1"].proc->log().find("(garbage): CreateDeviceModel default/thermometer failed"),
      std::string::npos)
      << tail(edges_["edge-1"].proc->log(), 3000);
  // The hung mapper's call is timed out (callTimeout 5 s) and retried, still not in the way.
  ASSERT_TRUE(eventually(
      [&] {
        return edges_["edge-1"].proc->log().find(
                   "(hung): CreateDeviceModel default/thermometer failed") != std::string::npos;
      },
      std::chrono::seconds(30)));
  ASSERT_EQ(patchDesired("thermo-1", "34"), 200);
  ASSERT_TRUE(eventually([&] { return reportedOf("thermo-1", "setpoint") == "34"; }))
      << mapper->log();
}

}  // namespace
}  // namespace ep::testing
