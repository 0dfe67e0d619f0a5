#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/grpclite/channel.h"
#include "common/grpclite/server.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/devicetwin/device_twin.h"
#include "edgecore/metamanager/metamanager.h"

namespace ep::edgecore::dmi {

struct DeviceManagerOptions {
  std::string socketPath = "/etc/kubeedge/dmi.sock";  // --dmi-socket
  std::string nodeName;
  std::chrono::milliseconds callTimeout{5000};  // one call to a mapper
  std::chrono::milliseconds initialBackoff{500};
  std::chrono::milliseconds maxBackoff{30000};
};

struct MapperStatus {
  std::string protocol, name, address;
  size_t pending = 0;  // calls waiting to be made
  uint64_t calls = 0, failures = 0;
  std::string lastError;
};

// KubeEdge's device manager (DMI v1beta1) for this node.
//
// Serves DeviceManagerService on a unix socket: MapperRegister (a mapper announces its
// protocol and its own socket; withData returns the node's devices of that protocol and their
// models), ReportDeviceStatus and ReportDeviceStates (handed to the device twin, answered once
// durable). Calls each registered mapper's DeviceMapperService as devices and models change
// (RegisterDevice/UpdateDevice/RemoveDevice, Create/Update/RemoveDeviceModel), and again for
// everything when either side restarts (mappers are remembered in the cache database).
//
// Threads: the socket's I/O thread only queues requests; one worker thread does everything
// else (cache reads, mapper bookkeeping); each mapper's calls run on its own grpclite channel,
// one call at a time, each bounded by callTimeout and retried with capped exponential backoff,
// so a hung, crashed or garbage-answering mapper delays only itself.
class DeviceManager {
 public:
  DeviceManager(DeviceManagerOptions options, metamanager::MetaManager& cache,
                devicetwin::DeviceTwin& twin, const Clock& clock);
  ~DeviceManager();
  DeviceManager(const DeviceManager&) = delete;
  DeviceManager& operator=(const DeviceManager&) = delete;

  // Restores known mappers, subscribes to devices and models, binds the socket (errors name
  // it), starts the worker.
  Status start();
  void stop();

  std::vector<MapperStatus> mappers() const;

 private:
  struct Request {
    std::string method;
    std::string body;
    grpclite::UnaryResponder respond;
  };
  struct Completion {
    std::string protocol;
    uint64_t generation = 0;
    grpclite::RpcStatus status;
  };
  enum class OpKind { kCreateModel, kUpdateModel, kRemoveModel, kRegister, kUpdate, kRemove };
  struct Op {
    OpKind kind;
    std::string key;      // ns/name of the device or model
    std::string method;   // /v1beta1.DeviceMapperService/...
    std::string request;  // serialized
  };
  struct Mapper {
    std::string protocol, name, address;
    std::shared_ptr<grpclite::Channel> channel;
    uint64_t generation = 0;
    std::deque<Op> ops;
    bool inFlight = false;
    std::chrono::steady_clock::time_point nextAttempt{};
    std::chrono::milliseconds backoff{0};
    std::set<std::string> devices, models;  // known to the mapper (ns/name)
    uint64_t calls = 0, failures = 0;
    std::string lastError;
  };

  void run();
  void handle(Request& r);
  void mapperRegister(Request& r);
  void applyCacheEvents();
  void onDevice(const std::string& key, const nlohmann::json* device);
  void onModel(const std::string& key, const nlohmann::json* model);
  void enqueue(Mapper& m, Op op);
  void queueEverything(Mapper& m);
  void issue(Mapper& m);
  void complete(const Completion& c);
  Mapper* mapperFor(const std::string& protocol);
  std::string modelKeyOf(const nlohmann::json& device) const;

  const DeviceManagerOptions options_;
  metamanager::MetaManager& cache_;
  devicetwin::DeviceTwin& twin_;
  const Clock& clock_;
  std::unique_ptr<grpclite::Server> server_;

  // Worker thread only.
  std::shared_ptr<metamanager::Subscription> deviceSub_, modelSub_;
  // One of this node's devices, kept compact (1,000 devices per node is the memory budget's
  // case): the cached object as JSON text, parsed when a mapper needs it.
  struct DeviceEntry {
    std::string json;      // the cached Device (status included, for reportedValues)
    std::string spec;      // its spec as JSON text, to tell spec changes from status echoes
    std::string protocol;  // spec.protocol.protocolName
    std::string modelKey;  // ns/deviceModelRef.name
  };
  DeviceEntry entryOf(const nlohmann::json& device) const;
  std::map<std::string, DeviceEntry> devices_;    // this node's devices, ns/name
  std::map<std::string, nlohmann::json> models_;  // every cached model, ns/name
  std::map<std::string, Mapper> mappers_;         // by protocol

  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> requests_ EP_GUARDED_BY(mu_);
  std::deque<Completion> completions_ EP_GUARDED_BY(mu_);
  bool wake_ EP_GUARDED_BY(mu_) = false;  // cache events
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::vector<MapperStatus> status_ EP_GUARDED_BY(mu_);  // snapshot for mappers()
  std::thread worker_;
};

}  // namespace ep::edgecore::dmi
