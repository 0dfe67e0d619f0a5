#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ep::api::k8s {

// The shapes of Kubernetes' built-in messages, as generated into k8s_proto_schema.inc from
// Kubernetes' generated.proto and types.go (scripts/gen_k8s_proto_schema.py): field numbers,
// JSON names and types. Used to decode protobuf bodies (proto_json.h) and to find the fields a
// JSON object has that its kind does not (field_validation.h). Static tables built once on
// first use, never destroyed; every function is thread-safe.

enum class FieldType { kString, kBytes, kInt32, kInt64, kBool, kDouble, kMessage, kMap };

struct FieldSchema {
  uint32_t number;
  const char* json;
  FieldType type;
  bool repeated;
  bool inlined;         // a Go embedded struct: its fields belong to the parent in JSON
  bool omitZero;        // a Go value field tagged omitempty: left out when zero, as Go's JSON
  FieldType mapValue;   // kMap: the value's type (kMessage: `message` names it)
  const char* message;  // kMessage, or kMap with message values: the full message name
};

struct MessageSchema {
  const char* name;
  std::vector<FieldSchema> fields;
};

// Messages whose JSON form is not an object of their fields (text, numbers, raw JSON).
inline constexpr const char* kTime = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
inline constexpr const char* kMicroTime = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
inline constexpr const char* kQuantity = "k8s.io.apimachinery.pkg.api.resource.Quantity";
inline constexpr const char* kIntOrString = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
inline constexpr const char* kRawExtension = "k8s.io.apimachinery.pkg.runtime.RawExtension";
inline constexpr const char* kFieldsV1 = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
inline constexpr const char* kObjectMeta = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta";

// True for the messages above whose JSON is not an object of fields.
bool isOpaqueJson(std::string_view message);

// The field numbered `number` of `message`; nullptr when either is unknown.
const FieldSchema* fieldByNumber(const std::string& message, uint32_t number);

// The field whose JSON name is `json` in `message`, the fields of embedded (inlined) structs
// included; nullptr when unknown.
const FieldSchema* fieldByJsonName(const std::string& message, const std::string& json);

// The fields of `message` in number order (embedded structs as one inlined field each);
// nullptr when unknown.
const std::vector<FieldSchema>* fieldsOf(const std::string& message);

// Whether a schema for `message` exists.
bool hasMessage(const std::string& message);

// The full message name of "apiVersion/kind" ("apps/v1/Deployment"); nullptr when none.
const char* kindMessage(const std::string& apiVersionKind);

}  // namespace ep::api::k8s
