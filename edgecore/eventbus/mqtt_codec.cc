#include "edgecore/eventbus/mqtt_codec.h"

namespace ep::edgecore::eventbus::mqtt {
namespace {

constexpr size_t kMaxRemainingLength = 268435455;  // 4-byte variable length integer

void putU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void putString(std::string& out, std::string_view s) {
  putU16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}

// Fixed header (type, flags, remaining length) + body.
std::string frame(PacketType type, uint8_t flags, const std::string& body) {
  std::string out;
  out.reserve(body.size() + 5);
  out.push_back(static_cast<char>((static_cast<uint8_t>(type) << 4) | (flags & 0x0f)));
  size_t n = body.size();
  do {
    uint8_t b = n % 128;
    n /= 128;
    if (n > 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (n > 0);
  out.append(body);
  return out;
}

// Reads big-endian fields from a packet body, remembering the first error.
class Cursor {
 public:
  explicit Cursor(std::string_view body) : body_(body) {}
  bool u8(uint8_t& v) {
    if (pos_ + 1 > body_.size()) return false;
    v = static_cast<uint8_t>(body_[pos_++]);
    return true;
  }
  bool u16(uint16_t& v) {
    if (pos_ + 2 > body_.size()) return false;
    v = static_cast<uint16_t>((static_cast<uint8_t>(body_[pos_]) << 8) |
                              static_cast<uint8_t>(body_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  bool str(std::string& v) {
    uint16_t n = 0;
    if (!u16(n) || pos_ + n > body_.size()) return false;
    v.assign(body_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  std::string_view rest() const { return body_.substr(pos_); }
  bool atEnd() const { return pos_ == body_.size(); }

 private:
  std::string_view body_;
  size_t pos_ = 0;
};

Status malformed(const char* packet, const std::string& why) {
  return badRequestError(std::string("mqtt ") + packet + ": " + why);
}

}  // namespace

std::string connackReason(uint8_t code) {
  switch (code) {
    case 0:
      return "accepted";
    case 1:
      return "unacceptable protocol version";
    case 2:
      return "client identifier rejected";
    case 3:
      return "server unavailable";
    case 4:
      return "bad user name or password";
    case 5:
      return "not authorized";
    default:
      return "return code " + std::to_string(code);
  }
}

std::string encodeConnect(const ConnectOptions& o) {
  std::string body;
  putString(body, "MQTT");
  body.push_back(4);  // protocol level 3.1.1
  uint8_t flags = 0;
  if (o.cleanSession) flags |= 0x02;
  if (o.password) flags |= 0x40;
  if (o.username) flags |= 0x80;
  body.push_back(static_cast<char>(flags));
  putU16(body, o.keepAliveSeconds);
  putString(body, o.clientId);
  if (o.username) putString(body, *o.username);
  if (o.password) putString(body, *o.password);
  return frame(PacketType::kConnect, 0, body);
}

std::string encodePublish(std::string_view topic, std::string_view payload, uint8_t qos,
                          uint16_t packetId, bool retain, bool dup) {
  std::string body;
  body.reserve(topic.size() + payload.size() + 4);
  putString(body, topic);
  if (qos > 0) putU16(body, packetId);
  body.append(payload);
  uint8_t flags = static_cast<uint8_t>((qos & 0x3) << 1);
  if (retain) flags |= 0x01;
  if (dup && qos > 0) flags |= 0x08;
  return frame(PacketType::kPublish, flags, body);
}

std::string encodePuback(uint16_t packetId) {
  std::string body;
  putU16(body, packetId);
  return frame(PacketType::kPuback, 0, body);
}

std::string encodeSubscribe(uint16_t packetId,
                            const std::vector<std::pair<std::string, uint8_t>>& filters) {
  std::string body;
  putU16(body, packetId);
  for (const auto& [filter, qos] : filters) {
    putString(body, filter);
    body.push_back(static_cast<char>(qos & 0x3));
  }
  return frame(PacketType::kSubscribe, 0x02, body);
}

std::string encodeUnsubscribe(uint16_t packetId, const std::vector<std::string>& filters) {
  std::string body;
  putU16(body, packetId);
  for (const auto& filter : filters) putString(body, filter);
  return frame(PacketType::kUnsubscribe, 0x02, body);
}

std::string encodePingreq() {
  return frame(PacketType::kPingreq, 0, {});
}
std::string encodeDisconnect() {
  return frame(PacketType::kDisconnect, 0, {});
}

Status checkTopicName(std::string_view topic) {
  if (topic.empty()) return invalidError("topic: must not be empty");
  if (topic.size() > 65535) return invalidError("topic: longer than 65535 bytes");
  for (char c : topic) {
    if (c == '+' || c == '#') return invalidError("topic: wildcards are not allowed in a name");
    if (c == '\0') return invalidError("topic: contains NUL");
  }
  return Status::ok();
}

bool topicMatches(std::string_view filter, std::string_view topic) {
  // Topics starting with $ match no filter starting with a wildcard (4.7.2).
  if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
      (filter[0] == '+' || filter[0] == '#')) {
    return false;
  }
  size_t f = 0, t = 0;
  while (true) {
    size_t fe = filter.find('/', f);
    std::string_view flevel = filter.substr(f, fe == std::string_view::npos ? fe : fe - f);
    if (flevel == "#") return true;
    if (t > topic.size()) return false;
    size_t te = topic.find('/', t);
    std::string_view tlevel = topic.substr(t, te == std::string_view::npos ? te : te - t);
    if (flevel != "+" && flevel != tlevel) return false;
    const bool fLast = fe == std::string_view::npos;
    const bool tLast = te == std::string_view::npos;
    if (fLast || tLast) {
      if (fLast && tLast) return true;
      // "a/#" matches "a" too.
      return tLast && !fLast && filter.substr(fe + 1) == "#";
    }
    f = fe + 1;
    t = te + 1;
  }
}

Result<Packet> decodePacket(uint8_t header, std::string_view body) {
  Packet p;
  const uint8_t type = header >> 4;
  p.flags = header & 0x0f;
  if (type < 1 || type > 14)
    return malformed("packet", "reserved packet type " + std::to_string(type));
  p.type = static_cast<PacketType>(type);
  Cursor c(body);
  switch (p.type) {
    case PacketType::kConnack: {
      uint8_t ack = 0;
      if (p.flags != 0 || !c.u8(ack) || !c.u8(p.returnCode) || !c.atEnd()) {
        return malformed("CONNACK", "must be 2 bytes with flags 0");
      }
      if (ack & 0xfe) return malformed("CONNACK", "reserved acknowledge flags set");
      p.sessionPresent = ack & 0x01;
      return p;
    }
    case PacketType::kPublish: {
      p.qos = (p.flags >> 1) & 0x03;
      p.dup = p.flags & 0x08;
      p.retain = p.flags & 0x01;
      if (p.qos == 3) return malformed("PUBLISH", "QoS 3 is reserved");
      if (!c.str(p.topic)) return malformed("PUBLISH", "truncated topic");
      if (auto s = checkTopicName(p.topic); !s.isOk()) return malformed("PUBLISH", s.message());
      if (p.qos > 0) {
        if (!c.u16(p.packetId)) return malformed("PUBLISH", "truncated packet identifier");
        if (p.packetId == 0) return malformed("PUBLISH", "packet identifier 0");
      }
      p.payload.assign(c.rest());
      return p;
    }
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
    case PacketType::kUnsuback: {
      const uint8_t want = p.type == PacketType::kPubrel ? 0x02 : 0x00;
      if (p.flags != want || !c.u16(p.packetId) || !c.atEnd()) {
        return malformed("acknowledgement", "must be a 2-byte packet identifier");
      }
      return p;
    }
    case PacketType::kSuback: {
      if (p.flags != 0 || !c.u16(p.packetId)) return malformed("SUBACK", "truncated");
      uint8_t code = 0;
      while (c.u8(code)) {
        if (code > 2 && code != 0x80) return malformed("SUBACK", "invalid return code");
        p.grantedQos.push_back(code);
      }
      if (p.grantedQos.empty()) return malformed("SUBACK", "no return codes");
      return p;
    }
    case PacketType::kPingresp:
    case PacketType::kPingreq:
    case PacketType::kDisconnect:
      if (p.flags != 0 || !body.empty()) return malformed("packet", "must be empty");
      return p;
    default:
      return malformed("packet", "type " + std::to_string(type) + " is not sent to clients");
  }
}

Result<std::optional<Packet>> PacketReader::next() {
  const size_t avail = buffer_.size() - offset_;
  if (avail < 2) return std::optional<Packet>();
  const auto* p = reinterpret_cast<const uint8_t*>(buffer_.data() + offset_);
  size_t length = 0, multiplier = 1, i = 1;
  while (true) {
    if (i >= avail) return std::optional<Packet>();  // length not complete yet
    const uint8_t b = p[i];
    length += (b & 0x7f) * multiplier;
    ++i;
    if (!(b & 0x80)) break;
    if (i > 4) return malformed("packet", "remaining length longer than 4 bytes");
    multiplier *= 128;
  }
  if (length > kMaxRemainingLength || length > maxPacketBytes_) {
    return Status(Code::kTooLarge, "mqtt packet of " + std::to_string(length) +
                                       " bytes exceeds the limit of " +
                                       std::to_string(maxPacketBytes_));
  }
  if (avail < i + length) return std::optional<Packet>();
  auto decoded = decodePacket(p[0], std::string_view(buffer_.data() + offset_ + i, length));
  offset_ += i + length;
  // Compact once the consumed prefix dominates, so the buffer never grows with the stream.
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > 4096 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  if (!decoded.isOk()) return decoded.status();
  return std::optional<Packet>(std::move(*decoded));
}

}  // namespace ep::edgecore::eventbus::mqtt
