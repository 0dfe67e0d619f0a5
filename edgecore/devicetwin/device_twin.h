#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/devicetwin/twin_engine.h"
#include "edgecore/metamanager/metamanager.h"

namespace ep::edgecore::devicetwin {

// Where twin messages go out and how QoS 1 deliveries are acknowledged (the MQTT client in
// production, a recorder in tests).
class MessageBus {
 public:
  virtual ~MessageBus() = default;
  // Never blocks.
  virtual Status publish(std::string topic, std::string payload) = 0;
  virtual void acknowledge(uint64_t generation, uint16_t packetId) = 0;
};

// One message from the bus (see eventbus::InboundMessage).
struct BusMessage {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  uint16_t packetId = 0;
  uint64_t generation = 0;
};

// A report that does not come over MQTT (a DMI mapper's): applied like a twin/update, then
// `done` is called (from the worker) with the validation error, or with the commit's result
// once the twin change and its report are durable.
struct DirectReport {
  std::string ns, name;
  std::vector<TwinEngine::ReportedValue> values;
  std::optional<std::string> state;
  std::function<void(Status)> done;
};

struct DeviceTwinOptions {
  std::string nodeName;
  size_t maxQueue = 4096;  // messages waiting for the worker; beyond it QoS 0 ones are dropped
  size_t maxBatch = 256;   // messages committed in one transaction
};

struct DeviceTwinStats {
  uint64_t devices = 0;
  uint64_t messages = 0;  // handled
  uint64_t dropped = 0;   // QoS 0 messages dropped because the queue was full
  uint64_t commits = 0;
  std::string lastError;
};

// The edge's device twin service: KubeEdge's devicetwin module. One worker thread runs the
// TwinEngine: it applies cache changes of Devices and DeviceModels (delivering desired values
// as deltas), handles device messages in batches, commits each batch's twin state and reports
// in one transaction (MetaManager::commitLocal), then publishes the results and acknowledges
// the batch's QoS 1 messages. A message is acknowledged only after its effects are durable, so
// the broker redelivers anything a crash interrupted.
//
// Thread-safety: onMessage and stats may be called from any thread and never block; start and
// stop from the owning thread.
class DeviceTwin {
 public:
  DeviceTwin(DeviceTwinOptions options, metamanager::MetaManager& cache, MessageBus& bus,
             const Clock& clock);
  ~DeviceTwin();
  DeviceTwin(const DeviceTwin&) = delete;
  DeviceTwin& operator=(const DeviceTwin&) = delete;

  // Restores the twins from the cache database, subscribes to devices and models, starts the
  // worker.
  Status start();
  void stop();

  void onMessage(BusMessage message);
  // Queues a direct report; never blocks. A full queue answers kUnavailable at once.
  void submit(DirectReport report);
  DeviceTwinStats stats() const;

 private:
  void run();
  void applyCacheEvents(Effects& out);
  void resubscribe(Effects& out);
  // Commits `effects`; then publishes, acknowledges `acks` and completes `reports` (with the
  // commit's error when it failed).
  void commit(Effects& effects, std::vector<BusMessage>& acks,
              std::vector<std::pair<DirectReport, Status>>* reports = nullptr);

  const DeviceTwinOptions options_;
  metamanager::MetaManager& cache_;
  MessageBus& bus_;
  TwinEngine engine_;  // worker thread only (and start() before the worker runs)

  std::shared_ptr<metamanager::Subscription> deviceSub_, modelSub_;  // worker thread only

  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<BusMessage> queue_ EP_GUARDED_BY(mu_);
  std::deque<DirectReport> direct_ EP_GUARDED_BY(mu_);
  bool wake_ EP_GUARDED_BY(mu_) = false;  // cache events are pending
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  DeviceTwinStats stats_ EP_GUARDED_BY(mu_);
  std::thread worker_;
};

}  // namespace ep::edgecore::devicetwin
