#include "edgecore/nodestatus/node_status.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/api/upgrades.h"
#include "common/thread_annotations.h"

namespace ep::edgecore::nodestatus {

using nlohmann::json;

namespace {

std::string firstIpv4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string out;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    if (a->ifa_flags & IFF_LOOPBACK) continue;
    char buf[INET_ADDRSTRLEN] = {};
    auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf))) {
      out = buf;
      break;
    }
  }
  freeifaddrs(list);
  return out;
}

uint64_t memTotalKi() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemTotal:") return value;
  }
  return 0;
}

std::string osPrettyName() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'')) v = v.substr(1, v.size() - 2);
      return v;
    }
  }
  return "Linux";
}

std::string kubeArch(const std::string& machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64" || machine == "arm64") return "arm64";
  if (machine.rfind("arm", 0) == 0) return "arm";
  return machine;
}

}  // namespace

HostFacts SystemHostInfo::collect() {
  HostFacts f;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) f.hostname = host;
  f.internalIp = firstIpv4();
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  f.cpus = n > 0 ? static_cast<int>(n) : 1;
  f.memoryKi = memTotalKi();
  utsname u{};
  if (uname(&u) == 0) {
    f.architecture = kubeArch(u.machine);
    f.kernelVersion = u.release;
  }
  // The architecture of this binary, as kubelet reports GOARCH: a 32-bit userland on a 64-bit
  // kernel runs (and is upgraded with) 32-bit binaries (docs/upgrades.md).
  static const std::string self = [] {
    std::ifstream exe("/proc/self/exe", std::ios::binary);
    std::string header(64, '\0');
    exe.read(header.data(), static_cast<std::streamsize>(header.size()));
    header.resize(static_cast<size_t>(exe.gcount()));
    return api::elfArchitecture(header);
  }();
  if (!self.empty()) f.architecture = self;
  f.osImage = osPrettyName();
  struct statvfs vfs {};
  if (::statvfs(diskPath_.c_str(), &vfs) == 0) {
    f.diskCapacityBytes = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    f.diskAvailableBytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }
  return f;
}

namespace {

bool underDiskPressure(const HostFacts& f) {
  return f.diskCapacityBytes > 0 && static_cast<double>(f.diskAvailableBytes) <
                                        kDiskPressureAvailableShare * f.diskCapacityBytes;
}

bool isDiskFull(const Status& s) {
  const std::string& m = s.message();
  return m.find("disk is full") != std::string::npos ||
         m.find("No space left") != std::string::npos;
}

std::string mib(uint64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

json buildNode(const NodeIdentity& id, const HostFacts& facts, int64_t nowMillis) {
  json labels = json::object();
  for (const auto& [k, v] : id.labels) labels[k] = v;
  labels["kubernetes.io/hostname"] = id.nodeName;
  labels["kubernetes.io/os"] = "linux";
  labels["kubernetes.io/arch"] = facts.architecture;
  labels["node-role.kubernetes.io/edge"] = "";

  json spec = json::object();
  if (!id.taints.empty()) {
    json taints = json::array();
    for (const auto& t : id.taints) {
      json tj = {{"key", t.key}, {"effect", t.effect}};
      if (!t.value.empty()) tj["value"] = t.value;
      taints.push_back(std::move(tj));
    }
    spec["taints"] = std::move(taints);
  }

  json addresses = json::array();
  if (!facts.internalIp.empty()) {
    addresses.push_back({{"type", "InternalIP"}, {"address", facts.internalIp}});
  }
  addresses.push_back(
      {{"type", "Hostname"}, {"address", facts.hostname.empty() ? id.nodeName : facts.hostname}});

  json resources = {{"cpu", std::to_string(facts.cpus)},
                    {"memory", std::to_string(facts.memoryKi) + "Ki"},
                    {"pods", "110"}};
  if (facts.diskCapacityBytes > 0) {
    resources["ephemeral-storage"] = std::to_string(facts.diskCapacityBytes);
  }
  const std::string now = formatRfc3339(nowMillis);
  json ready = {{"type", "Ready"},          {"status", "True"},
                {"reason", "EdgeReady"},    {"message", "edgecore is posting ready status"},
                {"lastHeartbeatTime", now}, {"lastTransitionTime", now}};
  const bool pressure = underDiskPressure(facts);
  json disk = {
      {"type", "DiskPressure"},
      {"status", pressure ? "True" : "False"},
      {"reason", pressure ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure"},
      {"message", facts.diskCapacityBytes == 0
                      ? "edgecore cannot see its data dir's filesystem"
                      : mib(facts.diskAvailableBytes) + " of " + mib(facts.diskCapacityBytes) +
                            " available on the data dir's filesystem" +
                            (pressure ? " (under 10%)" : "")},
      {"lastHeartbeatTime", now},
      {"lastTransitionTime", now}};
  json status = {{"addresses", std::move(addresses)},
                 {"capacity", resources},
                 {"allocatable", resources},
                 {"conditions", json::array({std::move(ready), std::move(disk)})},
                 {"nodeInfo",
                  {{"operatingSystem", "linux"},
                   {"architecture", facts.architecture},
                   {"kernelVersion", facts.kernelVersion},
                   {"osImage", facts.osImage},
                   {"kubeletVersion", "v1.32.0-edgeplane-" + id.edgecoreVersion},
                   {"kubeProxyVersion", ""},
                   {"containerRuntimeVersion", facts.containerRuntimeVersion.empty()
                                                   ? id.containerRuntimeVersion
                                                   : facts.containerRuntimeVersion},
                   {"machineID", ""},
                   {"systemUUID", ""},
                   {"bootID", ""}}}};
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", id.nodeName}, {"labels", std::move(labels)}}},
          {"spec", std::move(spec)},
          {"status", std::move(status)}};
}

std::string statusFingerprint(const json& node) {
  json copy = node;
  json* conditions = nullptr;
  if (auto status = copy.find("status"); status != copy.end() && status->is_object()) {
    if (auto c = status->find("conditions"); c != status->end() && c->is_array()) {
      conditions = &*c;
    }
  }
  if (conditions != nullptr) {
    for (auto& c : *conditions) {
      if (!c.is_object()) continue;
      c.erase("lastHeartbeatTime");
      c.erase("lastTransitionTime");
      if (c.value("type", "") != "EdgecoreUpgrade") c.erase("message");
    }
  }
  return copy.dump();
}

NodeStatusReporter::NodeStatusReporter(NodeIdentity identity, ReporterOptions options,
                                       HostInfo& host, metamanager::Outbox& outbox, Clock& clock)
    : identity_(std::move(identity)),
      options_(std::move(options)),
      host_(host),
      outbox_(outbox),
      clock_(clock) {}

NodeStatusReporter::~NodeStatusReporter() {
  stop();
}

Status NodeStatusReporter::reportOnce() {
  MutexLock lock(reportMu_);
  const int64_t now = clock_.nowMillis();
  const int64_t previousBeat = lastBeatMillis_;
  lastBeatMillis_ = now;
  const HostFacts raw = host_.collect();
  // While the reserve is given up, its room counts as taken: the disk is as full as it was.
  HostFacts shown = raw;
  const DiskReserve& reserve = options_.reserve;
  if (!reserve.path.empty() && ::access(reserve.path.c_str(), F_OK) != 0) {
    shown.diskAvailableBytes -= std::min(shown.diskAvailableBytes, reserve.bytes);
  }
  json node = buildNode(identity_, shown, now);
  if (options_.extraConditions) {
    for (auto& c : options_.extraConditions()) node["status"]["conditions"].push_back(std::move(c));
  }
  std::string fingerprint = statusFingerprint(node);
  const uint64_t connection = options_.leases ? options_.leases->leaseConnection() : 0;
  const int64_t gap = previousBeat == 0 ? 0 : now - previousBeat;
  const bool full = connection == 0 || connection != lastFullConnection_ ||
                    fingerprint != lastFingerprint_ ||
                    now - lastFullMillis_ >= options_.statusReportFrequency.count() ||
                    gap > 2 * options_.interval.count();
  if (!full && options_.leases->renewLease(connection)) {
    leaseRenewals_.fetch_add(1);
    return Status::ok();
  }
  Status s = enqueueFull(raw, node.dump());
  if (s.isOk()) {
    fullReports_.fetch_add(1);
    lastFingerprint_ = std::move(fingerprint);
    lastFullMillis_ = now;
    lastFullConnection_ = connection;
  } else if (connection != 0 && options_.leases->renewLease(connection)) {
    // The outbox cannot take it (a full disk): the node is still alive, and a renewal needs no
    // disk. The full status is tried again with the next heartbeat.
    leaseRenewals_.fetch_add(1);
  }
  return s;
}

Status NodeStatusReporter::enqueueFull(const HostFacts& raw, const std::string& node) {
  const DiskReserve& reserve = options_.reserve;
  const bool haveReserve = !reserve.path.empty() && ::access(reserve.path.c_str(), F_OK) == 0;
  auto r =
      outbox_.enqueue(edgeplane::tunnel::v1::REPORT_KIND_NODE_STATUS, "", identity_.nodeName, node);
  if (!r.isOk() && isDiskFull(r.status()) && haveReserve && ::unlink(reserve.path.c_str()) == 0) {
    // The disk is full: give back the reserve so this heartbeat (DiskPressure True) still goes
    // out, and the node does not turn Unknown.
    spdlog::warn("node status: the disk is full ({}); released the {} reserve at {} to report it",
                 r.status().message(), mib(reserve.bytes), reserve.path);
    r = outbox_.enqueue(edgeplane::tunnel::v1::REPORT_KIND_NODE_STATUS, "", identity_.nodeName,
                        node);
    return r.status();
  }
  if (r.isOk()) keepReserve(raw);
  return r.status();
}

void NodeStatusReporter::keepReserve(const HostFacts& facts) {
  const DiskReserve& reserve = options_.reserve;
  if (reserve.path.empty() || ::access(reserve.path.c_str(), F_OK) == 0) return;
  // Room for it, and after it still at least its size above the pressure threshold.
  const double threshold =
      kDiskPressureAvailableShare * static_cast<double>(facts.diskCapacityBytes);
  if (static_cast<double>(facts.diskAvailableBytes) < threshold + 2.0 * reserve.bytes) return;
  int fd = ::open(reserve.path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(reserve.bytes));
  ::close(fd);
  if (rc != 0) {
    ::unlink(reserve.path.c_str());
    return;
  }
  spdlog::info("node status: {} kept back at {} for reporting a full disk", mib(reserve.bytes),
               reserve.path);
}

Status NodeStatusReporter::start() {
  Status first = reportOnce();
  if (!first.isOk()) spdlog::warn("node status: {}", first.toString());
  {
    MutexLock lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
  return first;
}

void NodeStatusReporter::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void NodeStatusReporter::run() {
  MutexLock lock(mu_);
  while (!stopping_) {
    if (lock.waitFor(cv_, options_.interval, [this]() EP_REQUIRES(mu_) { return stopping_; }))
      break;
    lock.unlock();
    if (auto s = reportOnce(); !s.isOk()) spdlog::warn("node status: {}", s.toString());
    lock.lock();
  }
}

}  // namespace ep::edgecore::nodestatus
