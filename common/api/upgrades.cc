#include "common/api/upgrades.h"

#include <cstdlib>

#include "common/api/models.h"
#include "common/api/object_util.h"

namespace ep::api {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kKubeletVersionPrefix = "v1.32.0-edgeplane-";

}  // namespace

std::string upgradeConditionPrefix(std::string_view jobName, std::string_view jobUid,
                                   std::string_view version) {
  return "NodeUpgradeJob " + std::string(jobName) + " (" + std::string(jobUid) + ") to " +
         std::string(version) + ": ";
}

std::string kubeletVersionFor(std::string_view edgecoreVersion) {
  return std::string(kKubeletVersionPrefix) + std::string(edgecoreVersion);
}

std::string edgecoreVersionOf(const Json& node) {
  std::string v = stringAt(node, "status.nodeInfo.kubeletVersion");
  if (v.rfind(kKubeletVersionPrefix, 0) != 0) return "";
  return v.substr(kKubeletVersionPrefix.size());
}

std::pair<std::string, std::string> imagePullSecretRef(std::string_view value) {
  const auto slash = value.find('/');
  if (slash == std::string_view::npos) return {"kube-system", std::string(value)};
  return {std::string(value.substr(0, slash)), std::string(value.substr(slash + 1))};
}

std::optional<double> parseFailureTolerate(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(v >= 0 && v <= 1)) {
    return std::nullopt;
  }
  return v;
}

namespace {

// The architectures edgecore is built for: ELF e_machine, word size, GOARCH name.
struct ElfArchitecture {
  unsigned machine;
  bool is64;
  std::string_view name;
};
constexpr ElfArchitecture kArchitectures[] = {
    {62, true, "amd64"}, {3, false, "386"},      {183, true, "arm64"},
    {40, false, "arm"},  {243, true, "riscv64"},
};

}  // namespace

std::string elfArchitecture(std::string_view h) {
  if (h.size() < 20 || h.substr(0, 4) !=
                           "\x7f"
                           "ELF") {
    return "";
  }
  const bool is64 = h[4] == 2;
  const bool little = h[5] == 1;
  const auto b0 = static_cast<unsigned char>(h[18]);
  const auto b1 = static_cast<unsigned char>(h[19]);
  const unsigned machine = little ? (b0 | (b1 << 8)) : ((b0 << 8) | b1);
  for (const auto& a : kArchitectures) {
    if (a.machine == machine && a.is64 == is64) return std::string(a.name);
  }
  return "";
}

bool isKnownArchitecture(std::string_view name) {
  for (const auto& a : kArchitectures) {
    if (a.name == name) return true;
  }
  return false;
}

std::vector<ReleaseBinary> releaseBinaries(const Json& release) {
  std::vector<ReleaseBinary> out;
  auto spec = release.find("spec");
  if (spec == release.end() || !spec->is_object()) return out;
  auto bins = spec->find("binaries");
  if (bins == spec->end() || !bins->is_array()) return out;
  for (const auto& b : *bins) {
    if (!b.is_object()) continue;
    ReleaseBinary r{stringAt(b, "architecture"), stringAt(b, "digest"), 0, stringAt(b, "pushedAt")};
    if (auto s = b.find("size"); s != b.end() && s->is_number_integer() && s->get<int64_t>() >= 0) {
      r.size = s->get<uint64_t>();
    }
    if (r.architecture.empty() || !isSha256Digest(r.digest)) continue;
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<ReleaseBinary> releaseBinaryFor(const Json& release, std::string_view arch) {
  for (auto& b : releaseBinaries(release)) {
    if (b.architecture == arch) return b;
  }
  return std::nullopt;
}

std::vector<NodeUpgradeStatus> nodeUpgradeStatuses(const Json& job) {
  std::vector<NodeUpgradeStatus> out;
  auto status = job.find("status");
  if (status == job.end() || !status->is_object()) return out;
  auto list = status->find("nodeStatus");
  if (list == status->end() || !list->is_array()) return out;
  for (const auto& e : *list) {
    if (!e.is_object()) continue;
    NodeUpgradeStatus s{stringAt(e, "nodeName"), stringAt(e, "state"),  stringAt(e, "event"),
                        stringAt(e, "action"),   stringAt(e, "reason"), stringAt(e, "time")};
    if (!s.nodeName.empty()) out.push_back(std::move(s));
  }
  return out;
}

Json toJson(const NodeUpgradeStatus& s) {
  Json j = {{"nodeName", s.nodeName}, {"state", s.state}};
  if (!s.event.empty()) j["event"] = s.event;
  if (!s.action.empty()) j["action"] = s.action;
  if (!s.reason.empty()) j["reason"] = s.reason;
  if (!s.time.empty()) j["time"] = s.time;
  return j;
}

std::vector<std::string> upgradingNodesOf(const Json& job) {
  std::vector<std::string> out;
  for (const auto& s : nodeUpgradeStatuses(job)) {
    if (s.state == kUpgradeInProgress) out.push_back(s.nodeName);
  }
  return out;
}

}  // namespace ep::api
