// libFuzzer target for what a node sends and reads for metrics.k8s.io: a ResourceMetrics
// message as the cloud receives it (validation, the store's bounds), and /proc/stat and
// /proc/meminfo text as edgecore/stats parses it. Invariants: nothing crashes; a message the
// store keeps passed validation and stays within its bounds; a rejected one leaves the node's
// previous sample in place.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cloudcore/resourcemetrics/resource_metrics_store.h"
#include "edgecore/stats/stats.h"
#include "proto/tunnel.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ep::edgecore::stats::parseProcStatBusyNs(text, 100);
  (void)ep::edgecore::stats::parseMemInfoWorkingSetBytes(text);

  edgeplane::tunnel::v1::ResourceMetrics m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return 0;
  ep::FakeClock clock;
  ep::resourcemetrics::ResourceMetricsStore store(clock);
  edgeplane::tunnel::v1::ResourceMetrics good;
  good.set_timestamp_ms(1);
  good.set_window_ms(1000);
  store.onResourceMetrics("edge", good);
  const bool valid = ep::resourcemetrics::validateResourceMetrics(m).isOk();
  store.onResourceMetrics("edge", m);
  auto kept = store.node("edge");
  if (kept == nullptr) __builtin_trap();
  if (valid) {
    if (kept->timestampMs != m.timestamp_ms()) __builtin_trap();
    if (kept->pods.size() > ep::resourcemetrics::kMaxPodsPerNode) __builtin_trap();
    size_t containers = 0;
    for (const auto& [key, list] : kept->pods) containers += list.size();
    if (containers > ep::resourcemetrics::kMaxContainersPerNode) __builtin_trap();
  } else if (kept->timestampMs != 1 || store.rejected() != 1) {
    __builtin_trap();
  }
  return 0;
}
