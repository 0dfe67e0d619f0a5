#include "edgecore/stats/stats.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

namespace ep::edgecore::stats {

namespace tv1 = edgeplane::tunnel::v1;

namespace {

// The unsigned decimal at the start of `s` after spaces; advances `s` past it.
std::optional<uint64_t> nextNumber(std::string_view& s) {
  size_t i = s.find_first_not_of(" \t");
  if (i == std::string_view::npos) return std::nullopt;
  s.remove_prefix(i);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc()) return std::nullopt;
  s.remove_prefix(static_cast<size_t>(end - s.data()));
  return v;
}

std::string_view lineStartingWith(std::string_view text, std::string_view prefix) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.substr(0, prefix.size()) == prefix) return line.substr(prefix.size());
    pos = end + 1;
  }
  return {};
}

Result<std::string> readSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return unavailableError("reading " + path + ": cannot open");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

Result<uint64_t> parseProcStatBusyNs(std::string_view text, long ticksPerSecond) {
  if (ticksPerSecond <= 0) return invalidError("/proc/stat: clock ticks per second unknown");
  std::string_view rest = lineStartingWith(text, "cpu ");
  if (rest.empty()) return invalidError("/proc/stat: no \"cpu\" line");
  // user nice system idle iowait irq softirq steal [guest guest_nice]
  uint64_t fields[8] = {};
  for (int i = 0; i < 8; ++i) {
    auto v = nextNumber(rest);
    if (!v) {
      if (i >= 4) break;  // very old kernels stop early; the first four are always there
      return invalidError("/proc/stat: \"cpu\" line field " + std::to_string(i + 1) +
                          ": not a number");
    }
    fields[i] = *v;
  }
  // Steal is time the hypervisor gave to others: not this node's use (a kubelet's root cgroup
  // does not count it either).
  const uint64_t busyTicks = fields[0] + fields[1] + fields[2] + fields[5] + fields[6];
  const auto hz = static_cast<uint64_t>(ticksPerSecond);
  return busyTicks / hz * 1'000'000'000ULL + busyTicks % hz * 1'000'000'000ULL / hz;
}

Result<uint64_t> parseMemInfoWorkingSetBytes(std::string_view text) {
  auto kib = [&](std::string_view key) -> std::optional<uint64_t> {
    std::string_view rest = lineStartingWith(text, key);
    if (rest.empty()) return std::nullopt;
    return nextNumber(rest);
  };
  auto total = kib("MemTotal:");
  if (!total) return invalidError("/proc/meminfo: MemTotal: missing or not a number");
  auto available = kib("MemAvailable:");
  if (!available) return invalidError("/proc/meminfo: MemAvailable: missing or not a number");
  if (*available > *total) return invalidError("/proc/meminfo: MemAvailable above MemTotal");
  return (*total - *available) * 1024;
}

Result<NodeSample> ProcNodeUsage::sample() {
  auto stat = readSmallFile(procDir_ + "/stat");
  if (!stat.isOk()) return stat.status();
  auto meminfo = readSmallFile(procDir_ + "/meminfo");
  if (!meminfo.isOk()) return meminfo.status();
  auto busy = parseProcStatBusyNs(*stat, ::sysconf(_SC_CLK_TCK));
  if (!busy.isOk()) return busy.status();
  auto memory = parseMemInfoWorkingSetBytes(*meminfo);
  if (!memory.isOk()) return memory.status();
  return NodeSample{*busy, *memory};
}

StatsReporter::StatsReporter(StatsOptions options, edged::ContainerRuntime& runtime,
                             NodeUsageSource& node, MetricsSender send, const Clock& clock)
    : options_(std::move(options)),
      runtime_(runtime),
      node_(node),
      send_(std::move(send)),
      clock_(clock) {}

StatsReporter::~StatsReporter() {
  stop();
}

namespace {

// ns per second of `cpu` between two samples `ns` apart: the average cores in use, in
// nanocores; nullopt when the counter went back (a reset) or no time passed.
std::optional<uint64_t> nanoCores(uint64_t cpuBefore, uint64_t cpuNow, int64_t ns) {
  if (ns <= 0 || cpuNow < cpuBefore) return std::nullopt;
  const long double rate =
      static_cast<long double>(cpuNow - cpuBefore) * 1e9L / static_cast<long double>(ns);
  constexpr auto kMax = static_cast<long double>(std::numeric_limits<uint64_t>::max());
  return rate >= kMax ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(rate);
}

struct PodKey {
  std::string ns, name, uid;
  auto operator<=>(const PodKey&) const = default;
};

struct PodSample {
  // By container name: the attempt (the newest instance wins), and its usage.
  std::map<std::string, std::pair<uint32_t, std::optional<tv1::ResourceUsage>>> containers;
};

}  // namespace

Result<std::optional<tv1::ResourceMetrics>> StatsReporter::sampleOnce() {
  auto node = node_.sample();
  const int64_t nodeNs =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.steadyNow().time_since_epoch())
          .count();
  auto containers = runtime_.listContainerStats({{edged::kLabelManagedBy, edged::kManagedByValue},
                                                 {edged::kLabelNodeName, options_.nodeName}});
  MutexLock lock(mu_);
  counters_.samples += 1;
  if (!node.isOk() || !containers.isOk()) {
    Status why = node.isOk() ? containers.status() : node.status();
    counters_.lastError = why.message();
    return why;
  }
  counters_.lastError.clear();

  std::optional<Previous> before = std::exchange(nodePrevious_, Previous{nodeNs, node->cpuBusyNs});
  std::optional<uint64_t> nodeRate;
  if (before) nodeRate = nanoCores(before->cpuNs, node->cpuBusyNs, nodeNs - before->atNs);

  // Containers grouped by pod (its uid too: a pod replaced by one of the same name is another
  // pod), in a stable order.
  std::map<PodKey, PodSample> pods;
  std::map<std::string, Previous> seen;
  for (const auto& c : *containers) {
    if (!c.hasCpu || !c.hasMemory) continue;
    auto label = [&](const char* key) {
      auto it = c.labels.find(key);
      return it == c.labels.end() ? std::string() : it->second;
    };
    PodKey key{label(edged::kLabelPodNamespace), label(edged::kLabelPodName),
               label(edged::kLabelPodUid)};
    std::string name = label(edged::kLabelContainerName);
    if (name.empty()) name = c.name;
    if (key.ns.empty() || key.name.empty() || name.empty()) continue;
    // A runtime that stamps no time: the node's sampling time stands in.
    const int64_t at = c.cpuTimestampNs > 0 ? c.cpuTimestampNs : nodeNs;
    seen[c.id] = Previous{at, c.cpuUsageCoreNanoSeconds};
    std::optional<tv1::ResourceUsage> usage;
    if (auto prev = containerPrevious_.find(c.id); prev != containerPrevious_.end()) {
      if (auto rate =
              nanoCores(prev->second.cpuNs, c.cpuUsageCoreNanoSeconds, at - prev->second.atNs)) {
        usage.emplace();
        usage->set_cpu_nano_cores(*rate);
        usage->set_memory_working_set_bytes(c.memoryWorkingSetBytes);
      }
    }
    auto& slot = pods[key].containers[name];
    if (slot.first <= c.attempt) slot = {c.attempt, std::move(usage)};
  }
  containerPrevious_ = std::move(seen);  // containers gone since are forgotten
  if (!nodeRate) return std::optional<tv1::ResourceMetrics>();

  tv1::ResourceMetrics out;
  out.set_timestamp_ms(clock_.nowMillis());
  out.set_window_ms((nodeNs - before->atNs) / 1'000'000);
  out.mutable_node()->set_cpu_nano_cores(*nodeRate);
  out.mutable_node()->set_memory_working_set_bytes(node->memoryWorkingSetBytes);
  for (auto& [key, pod] : pods) {
    // A pod is reported whole or not at all (as metrics-server does): a container without a
    // rate yet would make the pod's sum too small.
    bool whole = true;
    for (const auto& [name, slot] : pod.containers) whole = whole && slot.second.has_value();
    if (!whole) continue;
    auto* p = out.add_pods();
    p->set_namespace_(key.ns);
    p->set_name(key.name);
    p->set_uid(key.uid);
    for (auto& [name, slot] : pod.containers) {
      auto* u = p->add_containers();
      u->set_name(name);
      *u->mutable_usage() = std::move(*slot.second);
    }
  }
  return std::optional<tv1::ResourceMetrics>(std::move(out));
}

StatsReporter::Counters StatsReporter::counters() const {
  MutexLock lock(mu_);
  return counters_;
}

void StatsReporter::start() {
  {
    MutexLock lock(runMu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void StatsReporter::stop() {
  {
    MutexLock lock(runMu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StatsReporter::run() {
  MutexLock lock(runMu_);
  while (!stopping_) {
    lock.unlock();
    auto metrics = sampleOnce();
    if (!metrics.isOk()) {
      spdlog::debug("stats: {}", metrics.status().toString());
    } else if (*metrics) {
      tv1::EdgeMessage m;
      *m.mutable_resource_metrics() = std::move(**metrics);
      if (send_(std::move(m))) {
        MutexLock countersLock(mu_);
        counters_.sent += 1;
      }
    }
    lock.lock();
    if (lock.waitFor(cv_, options_.interval, [this]() EP_REQUIRES(runMu_) { return stopping_; })) {
      break;
    }
  }
}

}  // namespace ep::edgecore::stats
