#pragma once

// Reading the few Kubernetes protobuf bodies kubectl sends (application/vnd.kubernetes.protobuf:
// SelfSubjectAccessReview, TokenRequest) without generated code: the protobuf wire format of
// one message at a time, and the "k8s\0" + runtime.Unknown envelope around an object. Only
// what those requests need: no writing, no groups, no packed repeated fields. Pure functions
// and immutable values: thread-safe, never throw. Results view into the input, which must
// outlive them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ep::api {

// One field of a message as it appears on the wire.
struct ProtoField {
  uint32_t number = 0;
  uint8_t wireType = 0;    // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  uint64_t value = 0;      // wire types 0, 1 and 5 (fixed values little-endian decoded)
  std::string_view bytes;  // wire type 2: the payload (a string, bytes or a nested message)
};

// The fields of one message, in wire order.
class ProtoMessage {
 public:
  // nullopt for malformed input: a truncated varint or payload, a varint longer than 10 bytes,
  // field number 0, or a wire type other than 0, 1, 2 and 5 (groups are refused).
  static std::optional<ProtoMessage> parse(std::string_view in);

  bool has(uint32_t number) const;
  // The payload of the last length-delimited occurrence of `number` ("" when there is none):
  // protobuf's "last one wins" for a singular string or message.
  std::string_view bytes(uint32_t number) const;
  // Every length-delimited occurrence of `number`, in order (a repeated string).
  std::vector<std::string_view> repeatedBytes(uint32_t number) const;
  // The last varint occurrence of `number`; nullopt when there is none.
  std::optional<uint64_t> varint(uint32_t number) const;
  const std::vector<ProtoField>& fields() const { return fields_; }

 private:
  std::vector<ProtoField> fields_;
};

// An object in Kubernetes' protobuf envelope: magic "k8s\0", then runtime.Unknown {typeMeta = 1
// {apiVersion = 1, kind = 2}, raw = 2 (the object's own message), contentEncoding = 3,
// contentType = 4}.
struct KubernetesProtobuf {
  std::string apiVersion;  // "" when the envelope names none
  std::string kind;
  std::string_view raw;
};

// nullopt when `body` lacks the magic or the envelope is malformed.
std::optional<KubernetesProtobuf> unwrapKubernetesProtobuf(std::string_view body);

// True for a Content-Type of application/vnd.kubernetes.protobuf (parameters allowed).
bool isKubernetesProtobuf(std::string_view contentType);

}  // namespace ep::api
