#pragma once

// MQTT 3.1.1 packets (OASIS standard, 2014): the subset a client needs. Encoders build whole
// packets; PacketReader splits a byte stream into packets and decodes the ones a client
// receives (CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP), refusing anything malformed
// or larger than its limit before buffering it. Pure functions and values: no I/O, no threads.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ep::edgecore::eventbus::mqtt {

enum class PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

struct ConnectOptions {
  std::string clientId;
  bool cleanSession = true;
  uint16_t keepAliveSeconds = 30;
  std::optional<std::string> username;
  std::optional<std::string> password;
};

// One decoded packet. Fields not used by `type` are left empty.
struct Packet {
  PacketType type = PacketType::kPingresp;
  uint8_t flags = 0;  // the fixed header's low nibble
  // CONNACK
  bool sessionPresent = false;
  uint8_t returnCode = 0;
  // PUBLISH (packetId also for PUBACK/SUBACK/UNSUBACK/PUBREC/PUBREL/PUBCOMP)
  uint16_t packetId = 0;
  uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::string topic;
  std::string payload;
  // SUBACK
  std::vector<uint8_t> grantedQos;
};

// What connack return codes mean (3.2.2.3), for logs.
std::string connackReason(uint8_t code);

std::string encodeConnect(const ConnectOptions& options);
// qos 0 ignores packetId.
std::string encodePublish(std::string_view topic, std::string_view payload, uint8_t qos,
                          uint16_t packetId, bool retain = false, bool dup = false);
std::string encodePuback(uint16_t packetId);
std::string encodeSubscribe(uint16_t packetId,
                            const std::vector<std::pair<std::string, uint8_t>>& filters);
std::string encodeUnsubscribe(uint16_t packetId, const std::vector<std::string>& filters);
std::string encodePingreq();
std::string encodeDisconnect();

// Topic names a client may publish to: non-empty, at most 65535 bytes, no wildcards, no NUL.
Status checkTopicName(std::string_view topic);
// True when `topic` matches the subscription filter `filter` (+ one level, # the rest).
bool topicMatches(std::string_view filter, std::string_view topic);

// Splits a byte stream into packets. Not thread-safe; one per connection.
class PacketReader {
 public:
  // Packets whose remaining length exceeds maxPacketBytes are refused before being buffered.
  explicit PacketReader(size_t maxPacketBytes) : maxPacketBytes_(maxPacketBytes) {}

  // Appends received bytes.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next complete packet, std::nullopt when more bytes are needed, or an error (the
  // connection must be closed: the stream cannot be resynchronized).
  Result<std::optional<Packet>> next();
  size_t buffered() const { return buffer_.size() - offset_; }
  // Forgets buffered bytes (a new connection).
  void reset() {
    buffer_.clear();
    offset_ = 0;
  }

 private:
  size_t maxPacketBytes_;
  std::string buffer_;
  size_t offset_ = 0;
};

// Decodes one packet's body given its fixed header byte (exposed for tests and fuzzing).
Result<Packet> decodePacket(uint8_t header, std::string_view body);

}  // namespace ep::edgecore::eventbus::mqtt
