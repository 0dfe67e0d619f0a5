#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/tlsclient/client_tls.h"
#include "edgecore/eventbus/mqtt_codec.h"
#include "edgecore/eventbus/mqtt_tls.h"

namespace ep::edgecore::eventbus {

struct MqttClientOptions {
  // tcp://HOST:PORT, or ssl://HOST:PORT (also tls://, mqtts://) for TLS with `tls`.
  std::string server = "tcp://127.0.0.1:1883";
  // For ssl:// servers: the broker's CA (required unless insecureSkipVerify), an optional
  // client certificate and key, the name the broker's certificate must carry (default: HOST).
  // TLS 1.2 or 1.3.
  tlsclient::Options tls;
  // Makes TLS sessions (mqtt_tls.h: edgecore passes wolfsslMqttTls()); without it an ssl://
  // server is refused by start().
  MqttTlsFactory tlsFactory;
  mqtt::ConnectOptions connect;  // client id, session, keepalive, credentials
  // Subscribed after every (re)connect; QoS at most 1.
  std::vector<std::pair<std::string, uint8_t>> subscriptions;
  size_t maxPacketBytes = 256 * 1024;  // larger packets from the broker close the connection
  size_t maxQueued = 4096;             // publishes waiting for a connection (oldest dropped)
  size_t maxInflight = 64;             // QoS 1 publishes awaiting PUBACK
  std::chrono::milliseconds initialBackoff{500};
  std::chrono::milliseconds maxBackoff{30000};
  std::chrono::milliseconds connectTimeout{10000};
};

// A message from the broker. QoS 1 messages must be acknowledged with
// MqttClient::acknowledge(generation, packetId) once handled; until then the broker keeps them
// (and stops sending after its in-flight window), which is the client's backpressure.
struct InboundMessage {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  uint16_t packetId = 0;
  uint64_t generation = 0;  // the connection it came on
};

struct MqttClientStats {
  bool connected = false;
  uint64_t connects = 0;
  uint64_t received = 0;
  uint64_t published = 0;  // handed to the socket (QoS 1: acknowledged by the broker)
  uint64_t dropped = 0;    // publishes dropped because the queue was full
  std::string lastError;
};

// An MQTT 3.1.1 client on its own I/O thread (Boost.Asio). It connects, subscribes, keeps the
// connection alive with PINGREQ, and reconnects with exponential backoff (plus jitter) after any
// failure, resending unacknowledged QoS 1 publishes with DUP set. Publishes made while
// disconnected wait in a bounded queue.
//
// Thread-safety: publish, acknowledge, stats may be called from any thread and never block.
// The handlers run on the I/O thread and must not block (hand work to another thread).
class MqttClient {
 public:
  using MessageHandler = std::function<void(InboundMessage)>;
  // Called with true after each CONNACK+SUBACK, false when a connection ends.
  using ConnectionHandler = std::function<void(bool connected)>;

  MqttClient(MqttClientOptions options, MessageHandler onMessage,
             ConnectionHandler onConnection = nullptr);
  ~MqttClient();
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  // Checks the options and starts the I/O thread (connecting in the background).
  Status start();
  // Sends DISCONNECT when connected, closes, joins the thread. Idempotent.
  void stop();

  // Called once per publish made with one: OK when the broker acknowledged it (QoS 1) or it was
  // written (QoS 0); an error when it was dropped from a full queue. Runs on the I/O thread (or
  // the publishing thread for the drop) and must not block. Never called for publishes still
  // pending when the client stops.
  using PublishDone = std::function<void(Status)>;

  // Queues a publish. qos 0 or 1. Invalid topics are refused; a full queue drops its oldest
  // entry (counted in stats().dropped).
  Status publish(std::string topic, std::string payload, uint8_t qos = 1, bool retain = false,
                 PublishDone done = nullptr);
  // Subscriptions beyond options.subscriptions (QoS 1), e.g. the topics of Rules: the broker is
  // told the difference at once when connected, and the whole set after every reconnect.
  // Invalid filters are refused and nothing changes.
  Status setExtraSubscriptions(std::vector<std::string> filters);
  // Sends PUBACK for a QoS 1 message, if its connection is still the current one.
  void acknowledge(uint64_t generation, uint16_t packetId);
  MqttClientStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Splits tcp://HOST:PORT, ssl://HOST:PORT (also tls://, mqtts://) or HOST:PORT; `tls` (when
// not null) says whether the scheme asks for TLS. Errors name `field`.
Status parseMqttServer(const std::string& field, const std::string& server, std::string& host,
                       uint16_t& port, bool* tls = nullptr);

}  // namespace ep::edgecore::eventbus
