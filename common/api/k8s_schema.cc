#include "common/api/k8s_schema.h"

#include <unordered_map>

namespace ep::api::k8s {
namespace {

#include "common/api/k8s_proto_schema.inc"

struct Index {
  std::unordered_map<std::string, std::unordered_map<uint32_t, const FieldSchema*>> byNumber;
  std::unordered_map<std::string, std::unordered_map<std::string, const FieldSchema*>> byJson;
  std::unordered_map<std::string, const char*> kinds;  // "apiVersion/kind" -> message
  std::unordered_map<std::string, const MessageSchema*> messages;
};

// Adds the JSON names of `message` (and of the structs it embeds) to `out`.
void addJsonNames(const std::unordered_map<std::string, const MessageSchema*>& messages,
                  const std::string& message,
                  std::unordered_map<std::string, const FieldSchema*>& out, int depth) {
  auto it = messages.find(message);
  if (it == messages.end() || depth > 8) return;
  for (const auto& f : it->second->fields) {
    if (f.inlined && f.type == FieldType::kMessage) {
      addJsonNames(messages, f.message, out, depth + 1);
    } else {
      out.emplace(f.json, &f);
    }
  }
}

const Index& index() {
  static const Index* idx = [] {
    auto* i = new Index();
    std::unordered_map<std::string, const MessageSchema*> messages;
    for (const auto& m : kK8sMessages) {
      messages[m.name] = &m;
      auto& fields = i->byNumber[m.name];
      for (const auto& f : m.fields) fields[f.number] = &f;
    }
    for (const auto& m : kK8sMessages) addJsonNames(messages, m.name, i->byJson[m.name], 0);
    i->messages = std::move(messages);
    for (const auto& [k, m] : kK8sKinds) i->kinds[k] = m;
    return i;
  }();
  return *idx;
}

}  // namespace

bool isOpaqueJson(std::string_view m) {
  return m == kTime || m == kMicroTime || m == kQuantity || m == kIntOrString ||
         m == kRawExtension || m == kFieldsV1;
}

const FieldSchema* fieldByNumber(const std::string& message, uint32_t number) {
  auto it = index().byNumber.find(message);
  if (it == index().byNumber.end()) return nullptr;
  auto f = it->second.find(number);
  return f == it->second.end() ? nullptr : f->second;
}

const FieldSchema* fieldByJsonName(const std::string& message, const std::string& json) {
  auto it = index().byJson.find(message);
  if (it == index().byJson.end()) return nullptr;
  auto f = it->second.find(json);
  return f == it->second.end() ? nullptr : f->second;
}

const std::vector<FieldSchema>* fieldsOf(const std::string& message) {
  auto it = index().messages.find(message);
  return it == index().messages.end() ? nullptr : &it->second->fields;
}

bool hasMessage(const std::string& message) {
  return index().byNumber.contains(message);
}

const char* kindMessage(const std::string& apiVersionKind) {
  auto it = index().kinds.find(apiVersionKind);
  return it == index().kinds.end() ? nullptr : it->second;
}

}  // namespace ep::api::k8s
