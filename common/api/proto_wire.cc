#include "common/api/proto_wire.h"

namespace ep::api {
namespace {

constexpr std::string_view kMagic("k8s\0", 4);

// Reads a varint at in[i]; advances i. False when truncated or longer than 10 bytes.
bool readVarint(std::string_view in, size_t& i, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift <= 63; shift += 7) {
    if (i >= in.size()) return false;
    auto b = static_cast<uint8_t>(in[i++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

uint64_t littleEndian(std::string_view in, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t k = 0; k < n; ++k)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(in[at + k])) << (8 * k);
  return v;
}

}  // namespace

std::optional<ProtoMessage> ProtoMessage::parse(std::string_view in) {
  ProtoMessage m;
  size_t i = 0;
  while (i < in.size()) {
    uint64_t key = 0;
    if (!readVarint(in, i, key)) return std::nullopt;
    ProtoField f;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff) return std::nullopt;
    f.number = static_cast<uint32_t>(key >> 3);
    f.wireType = static_cast<uint8_t>(key & 7);
    switch (f.wireType) {
      case 0:
        if (!readVarint(in, i, f.value)) return std::nullopt;
        break;
      case 1:
        if (in.size() - i < 8) return std::nullopt;
        f.value = littleEndian(in, i, 8);
        i += 8;
        break;
      case 2: {
        uint64_t n = 0;
        if (!readVarint(in, i, n) || n > in.size() - i) return std::nullopt;
        f.bytes = in.substr(i, n);
        i += n;
        break;
      }
      case 5:
        if (in.size() - i < 4) return std::nullopt;
        f.value = littleEndian(in, i, 4);
        i += 4;
        break;
      default:
        return std::nullopt;
    }
    m.fields_.push_back(f);
  }
  return m;
}

bool ProtoMessage::has(uint32_t number) const {
  for (const auto& f : fields_) {
    if (f.number == number) return true;
  }
  return false;
}

std::string_view ProtoMessage::bytes(uint32_t number) const {
  std::string_view out;
  for (const auto& f : fields_) {
    if (f.number == number && f.wireType == 2) out = f.bytes;
  }
  return out;
}

std::vector<std::string_view> ProtoMessage::repeatedBytes(uint32_t number) const {
  std::vector<std::string_view> out;
  for (const auto& f : fields_) {
    if (f.number == number && f.wireType == 2) out.push_back(f.bytes);
  }
  return out;
}

std::optional<uint64_t> ProtoMessage::varint(uint32_t number) const {
  std::optional<uint64_t> out;
  for (const auto& f : fields_) {
    if (f.number == number && f.wireType == 0) out = f.value;
  }
  return out;
}

std::optional<KubernetesProtobuf> unwrapKubernetesProtobuf(std::string_view body) {
  if (body.substr(0, kMagic.size()) != kMagic) return std::nullopt;
  auto unknown = ProtoMessage::parse(body.substr(kMagic.size()));
  if (!unknown) return std::nullopt;
  auto typeMeta = ProtoMessage::parse(unknown->bytes(1));
  if (!typeMeta) return std::nullopt;
  return KubernetesProtobuf{std::string(typeMeta->bytes(1)), std::string(typeMeta->bytes(2)),
                            unknown->bytes(2)};
}

bool isKubernetesProtobuf(std::string_view contentType) {
  constexpr std::string_view kType = "application/vnd.kubernetes.protobuf";
  if (contentType.substr(0, kType.size()) != kType) return false;
  std::string_view rest = contentType.substr(kType.size());
  return rest.empty() || rest[0] == ';' || rest[0] == ' ';
}

}  // namespace ep::api
