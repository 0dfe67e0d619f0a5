// Fuzz target for Kubernetes protobuf request bodies (common/api/proto_json): byte 0 picks the
// kind, the rest is the object's message inside a well-formed "k8s\0" envelope; every 7th input
// is also tried as a whole body. Whatever decodes must be a JSON object that serializes (valid
// UTF-8) with the envelope's apiVersion and kind.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/api/proto_json.h"

namespace {

const char* kKinds[][2] = {{"v1", "ConfigMap"},
                           {"v1", "Secret"},
                           {"v1", "Namespace"},
                           {"v1", "Pod"},
                           {"v1", "Node"},
                           {"v1", "Event"},
                           {"v1", "ServiceAccount"},
                           {"apps/v1", "Deployment"},
                           {"apps/v1", "ReplicaSet"},
                           {"rbac.authorization.k8s.io/v1", "Role"},
                           {"policy/v1", "Eviction"},
                           {"v1", "DeleteOptions"}};

std::string varint(uint64_t v) {
  std::string s;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    s += static_cast<char>(v ? b | 0x80 : b);
  } while (v);
  return s;
}

std::string field(uint32_t number, const std::string& payload) {
  return varint(number << 3 | 2) + varint(payload.size()) + payload;
}

void check(const std::string& body) {
  auto r = ep::api::kubernetesProtobufToJson(body);
  if (!r.isOk()) return;
  if (!r->is_object() || !r->contains("kind") || !r->contains("apiVersion")) __builtin_trap();
  try {
    (void)r->dump();
  } catch (...) {
    __builtin_trap();  // invalid UTF-8 got through
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& k = kKinds[data[0] % (sizeof kKinds / sizeof kKinds[0])];
  std::string raw(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string typeMeta = field(1, k[0]) + field(2, k[1]);
  check(std::string("k8s\0", 4) + field(1, typeMeta) + field(2, raw));
  if (data[0] % 7 == 0) check(raw);
  return 0;
}
