// The edge service proxy's cost (docs/performance.md, "Service proxy"):
//   service_proxy_bench                 Google Benchmark of computeServicePorts + renderNatRules
//                                       for 10/100/1000 Services with 2 local endpoints each;
//   service_proxy_bench --print N       the iptables-restore input for N such Services, for
//                                       bench/service_proxy.sh, which times iptables-restore.
#include <benchmark/benchmark.h>

#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "edgecore/serviceproxy/service_rules.h"

namespace {

using Json = nlohmann::json;
namespace sp = ep::edgecore::serviceproxy;

struct Objects {
  std::vector<Json> services;
  std::vector<Json> slices;
};

Objects makeObjects(int n) {
  Objects o;
  for (int i = 0; i < n; ++i) {
    std::string name = "svc-" + std::to_string(i);
    std::string ip = "10.96." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 2);
    o.services.push_back({{"metadata", {{"name", name}, {"namespace", "default"}}},
                          {"spec",
                           {{"type", "NodePort"},
                            {"clusterIP", ip},
                            {"ports", Json::array({{{"name", "http"},
                                                    {"port", 80},
                                                    {"protocol", "TCP"},
                                                    {"nodePort", 30000 + i}}})}}}});
    Json eps = Json::array();
    for (int b = 0; b < 2; ++b) {
      eps.push_back({{"addresses", Json::array({"10.88." + std::to_string(i / 120) + "." +
                                                std::to_string((i % 120) * 2 + b + 1)})},
                     {"nodeName", "edge-1"},
                     {"conditions", {{"ready", true}}}});
    }
    o.slices.push_back(
        {{"metadata",
          {{"name", name + "-abcde"},
           {"namespace", "default"},
           {"labels", {{"kubernetes.io/service-name", name}}}}},
         {"addressType", "IPv4"},
         {"ports", Json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}})},
         {"endpoints", eps}});
  }
  return o;
}

void BM_ComputeAndRender(benchmark::State& state) {
  Objects o = makeObjects(static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    auto ports = sp::computeServicePorts(o.services, o.slices, "edge-1");
    std::string rules = sp::renderNatRules(ports, {});
    bytes = rules.size();
    benchmark::DoNotOptimize(rules);
  }
  state.counters["rulesBytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ComputeAndRender)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--print") == 0) {
    Objects o = makeObjects(std::stoi(argv[2]));
    std::cout << sp::renderNatRules(sp::computeServicePorts(o.services, o.slices, "edge-1"), {});
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
