#include "common/api/proto_json.h"

#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include "common/api/base64.h"
#include "common/api/k8s_schema.h"
#include "common/api/proto_wire.h"
#include "common/api/utf8.h"
#include "common/clock.h"

namespace ep::api {
namespace {

using Json = nlohmann::json;

using k8s::FieldSchema;
using k8s::FieldType;
using k8s::kFieldsV1;
using k8s::kIntOrString;
using k8s::kMicroTime;
using k8s::kQuantity;
using k8s::kRawExtension;
using k8s::kTime;

constexpr int kMaxDepth = 64;

std::string shortName(const std::string& full) {
  return full.substr(full.rfind('.') + 1);
}

class Decoder {
 public:
  Status error;

  // The JSON value of one message, or null (with `error` set) when malformed.
  Json message(std::string_view bytes, const std::string& name, int depth) {
    if (depth > kMaxDepth) return fail(name, "", "nested deeper than 64 messages");
    if (name == kTime || name == kMicroTime) return time(bytes, name);
    auto parsed = ProtoMessage::parse(bytes);
    if (!parsed) return fail(name, "", "malformed protobuf");
    if (name == kQuantity) return string(parsed->bytes(1), name, "string");
    if (name == kIntOrString) {
      if (parsed->varint(1).value_or(0) == 1) return string(parsed->bytes(3), name, "strVal");
      return static_cast<int32_t>(parsed->varint(2).value_or(0));
    }
    if (name == kRawExtension || name == kFieldsV1) {
      Json raw = Json::parse(parsed->bytes(1), nullptr, false);
      if (raw.is_discarded()) return fail(name, "raw", "not JSON");
      return raw;
    }
    if (!k8s::hasMessage(name)) return fail(name, "", "no schema");
    Json out = Json::object();
    for (const auto& wire : parsed->fields()) {
      const FieldSchema* f = k8s::fieldByNumber(name, wire.number);
      if (f == nullptr) continue;  // unknown field: skipped, as protobuf does
      if (!field(out, wire, *f, name, depth)) return nullptr;
    }
    return out;
  }

 private:
  Json fail(const std::string& message, const std::string& field, const std::string& why) {
    if (error.isOk()) {
      error = Status(Code::kBadRequest, "protobuf body: " + shortName(message) +
                                            (field.empty() ? "" : "." + field) + ": " + why);
    }
    return nullptr;
  }

  bool bad(const std::string& message, const std::string& field, const std::string& why) {
    fail(message, field, why);
    return false;
  }

  Json string(std::string_view s, const std::string& message, const std::string& field) {
    if (!validUtf8(s)) return fail(message, field, "invalid UTF-8");
    return std::string(s);
  }

  Json time(std::string_view bytes, const std::string& name) {
    auto parsed = ProtoMessage::parse(bytes);
    if (!parsed) return fail(name, "", "malformed protobuf");
    const auto seconds = static_cast<int64_t>(parsed->varint(1).value_or(0));
    const auto nanos = static_cast<int32_t>(parsed->varint(2).value_or(0));
    if (seconds == 0 && nanos == 0) return Json();  // the zero time: left out
    if (seconds < -62135596800LL || seconds > 253402300799LL || nanos < 0 || nanos > 999999999) {
      return fail(name, "seconds", "out of range");
    }
    if (name == kTime) return formatRfc3339(seconds * 1000);
    std::string s = formatRfc3339Nano(seconds * 1000000000LL + nanos);  // ...05.123456789Z
    auto dot = s.find('.');
    return dot == std::string::npos ? s : s.substr(0, dot + 7) + "Z";  // microseconds
  }

  // A scalar from its wire form; null with `error` set on a mismatch.
  Json scalar(const ProtoField& wire, FieldType type, const std::string& message,
              const char* field) {
    switch (type) {
      case FieldType::kString:
        if (wire.wireType != 2) break;
        return string(wire.bytes, message, field);
      case FieldType::kBytes:
        if (wire.wireType != 2) break;
        return base64Encode(wire.bytes);
      case FieldType::kInt32:
        if (wire.wireType != 0) break;
        return static_cast<int64_t>(static_cast<int32_t>(wire.value));
      case FieldType::kInt64:
        if (wire.wireType != 0) break;
        return static_cast<int64_t>(wire.value);
      case FieldType::kBool:
        if (wire.wireType != 0) break;
        return wire.value != 0;
      case FieldType::kDouble:
        if (wire.wireType == 1) return std::bit_cast<double>(wire.value);
        if (wire.wireType == 5) {
          return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(wire.value)));
        }
        break;
      default:
        break;
    }
    return fail(message, field, "wrong wire type " + std::to_string(wire.wireType));
  }

  bool field(Json& out, const ProtoField& wire, const FieldSchema& f, const std::string& message,
             int depth) {
    Json value;
    if (f.type == FieldType::kMap) {
      if (wire.wireType != 2)
        return bad(message, f.json, "wrong wire type " + std::to_string(wire.wireType));
      auto entry = ProtoMessage::parse(wire.bytes);
      if (!entry) return bad(message, f.json, "malformed map entry");
      Json key = string(entry->bytes(1), message, f.json);
      if (!error.isOk()) return false;
      Json v;
      if (f.mapValue == FieldType::kMessage) {
        v = this->message(entry->bytes(2), f.message, depth + 1);
      } else {
        // An absent value is the type's zero value.
        const bool text = f.mapValue == FieldType::kString || f.mapValue == FieldType::kBytes;
        ProtoField valueWire{2, static_cast<uint8_t>(text ? 2 : 0), 0, {}};
        for (const auto& e : entry->fields()) {
          if (e.number == 2) valueWire = e;  // last one wins
        }
        v = scalar(valueWire, f.mapValue, message, f.json);
      }
      if (!error.isOk()) return false;
      if (!out.contains(f.json)) out[f.json] = Json::object();
      out[f.json][key.get<std::string>()] = std::move(v);
      return true;
    }
    if (f.type == FieldType::kMessage) {
      if (wire.wireType != 2)
        return bad(message, f.json, "wrong wire type " + std::to_string(wire.wireType));
      value = this->message(wire.bytes, f.message, depth + 1);
      if (!error.isOk()) return false;
      if (f.inlined && value.is_object()) {
        for (auto& [k, v] : value.items()) out[k] = std::move(v);
        return true;
      }
      if (value.is_null() && !f.repeated) return true;  // the zero time
    } else if (f.repeated && wire.wireType == 2 && f.type != FieldType::kString &&
               f.type != FieldType::kBytes) {
      // A packed repeated scalar: a run of varints (or fixed values) in one payload.
      auto& array = out[f.json];
      if (!array.is_array()) array = Json::array();
      std::string_view rest = wire.bytes;
      while (!rest.empty()) {
        uint64_t v = 0;
        int shift = 0;
        size_t i = 0;
        for (;; ++i) {
          if (i >= rest.size() || shift > 63) {
            return bad(message, f.json, "malformed packed field");
          }
          v |= static_cast<uint64_t>(static_cast<unsigned char>(rest[i]) & 0x7f) << shift;
          shift += 7;
          if ((static_cast<unsigned char>(rest[i]) & 0x80) == 0) break;
        }
        rest.remove_prefix(i + 1);
        array.push_back(scalar(ProtoField{f.number, 0, v, {}}, f.type, message, f.json));
        if (!error.isOk()) return false;
      }
      return true;
    } else {
      value = scalar(wire, f.type, message, f.json);
      if (!error.isOk()) return false;
      // gogo writes every non-pointer field, set or not; Go's JSON leaves the zero ones out
      // where the field is tagged omitempty.
      if (!f.repeated && f.omitZero &&
          (value == Json("") || value == Json(0) || value == Json(false) ||
           (f.type == FieldType::kBytes && value == Json("")))) {
        return true;
      }
    }
    if (f.repeated) {
      auto& array = out[f.json];
      if (!array.is_array()) array = Json::array();
      array.push_back(std::move(value));
    } else {
      out[f.json] = std::move(value);
    }
    return true;
  }
};

}  // namespace

Result<Json> kubernetesProtobufToJson(std::string_view body) {
  auto envelope = unwrapKubernetesProtobuf(body);
  if (!envelope) {
    return Status(Code::kBadRequest,
                  "protobuf body: not a Kubernetes protobuf object (\"k8s\\0\" + runtime.Unknown)");
  }
  const char* kind = k8s::kindMessage(envelope->apiVersion + "/" + envelope->kind);
  if (kind == nullptr) {
    return Status(Code::kUnsupportedMedia,
                  "the body of the request was in an unknown format - " + envelope->apiVersion +
                      " " + envelope->kind +
                      " is not accepted as application/vnd.kubernetes.protobuf; accepted media "
                      "types include: application/json");
  }
  Decoder d;
  Json out = d.message(envelope->raw, kind, 0);
  if (!d.error.isOk()) return d.error;
  if (!out.is_object()) return Status(Code::kBadRequest, "protobuf body: not an object");
  out["apiVersion"] = envelope->apiVersion;
  out["kind"] = envelope->kind;
  return out;
}

}  // namespace ep::api
