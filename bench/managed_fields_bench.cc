// What field ownership costs an API write (docs/performance.md, "Field ownership"):
// recordUpdate (every create/update/patch that names a manager) and applyConfiguration
// (server-side apply) on a Deployment and on ConfigMaps of 100 and 1,000 keys.
//   build/bench/managed_fields_bench
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/api/managed_fields.h"

namespace {

using Json = nlohmann::json;

const ep::api::ManagerInfo kWho{"kubectl", "apps/v1", "2026-12-06T00:00:00Z"};

Json deployment(int replicas) {
  Json containers = Json::array();
  for (int c = 0; c < 2; ++c) {
    Json env = Json::array();
    for (int e = 0; e < 10; ++e) {
      env.push_back({{"name", "VAR_" + std::to_string(e)}, {"value", std::to_string(e)}});
    }
    containers.push_back({{"name", "c" + std::to_string(c)},
                          {"image", "registry.local/app:1." + std::to_string(c)},
                          {"imagePullPolicy", "IfNotPresent"},
                          {"ports", {{{"containerPort", 8080 + c}, {"protocol", "TCP"}}}},
                          {"env", env},
                          {"resources", {{"limits", {{"cpu", "500m"}, {"memory", "256Mi"}}}}}});
  }
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}, {"namespace", "default"}, {"labels", {{"app", "web"}}}}},
      {"spec",
       {{"replicas", replicas},
        {"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "web"}}}}}, {"spec", {{"containers", containers}}}}}}}};
}

Json configMap(int keys, int version) {
  Json data = Json::object();
  for (int k = 0; k < keys; ++k) {
    data["key-" + std::to_string(k)] = "value-" + std::to_string(k + version);
  }
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", "settings"}, {"namespace", "default"}}},
          {"data", data}};
}

Json objectFor(int64_t size, int version) {
  return size == 0 ? deployment(2 + version) : configMap(static_cast<int>(size), version);
}

// One update by a second manager to an object the first created.
void BM_RecordUpdate(benchmark::State& state) {
  Json before = objectFor(state.range(0), 0);
  before["metadata"]["managedFields"] = ep::api::recordUpdate(
      Json::array(), nullptr, before, {"kubectl-create", "apps/v1", "t"}, true);
  Json after = objectFor(state.range(0), 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ep::api::recordUpdate(before["metadata"]["managedFields"], &before, after, kWho, true));
  }
}
BENCHMARK(BM_RecordUpdate)->Arg(0)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// Reapplying a configuration that changes one value (the common apply).
void BM_Apply(benchmark::State& state) {
  Json live = objectFor(state.range(0), 0);
  live["metadata"]["managedFields"] = ep::api::applyCreateManagedFields(live, kWho, true);
  Json config = objectFor(state.range(0), 1);
  for (auto _ : state) {
    auto r = ep::api::applyConfiguration(live, config, kWho, false, true);
    if (!r.isOk()) state.SkipWithError(r.status().message().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Apply)->Arg(0)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
