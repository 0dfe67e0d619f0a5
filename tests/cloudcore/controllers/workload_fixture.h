#pragma once

// Builders shared by the workload controller tests: nodes, pods and Deployments written through
// a real Registry (StoreFixture), plus pod readiness written through the status subresource as
// edgecore would. Use from one test thread.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloudcore/controllers/workload_util.h"
#include "tests/testing/store_fixture.h"

namespace ep::controllers::testing {

using nlohmann::json;

class WorkloadTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.start().isOk()); }
  void TearDown() override { env_.stop(); }

  registry::Registry& reg() { return *env_.registry; }

  // A Ready node with the given allocatable and labels.
  void addNode(const std::string& name, const std::string& cpu = "4",
               const std::string& memory = "8Gi", json labels = json::object(),
               json taints = nullptr, const std::string& ready = "True") {
    json node = {{"metadata", {{"name", name}, {"labels", labels}}},
                 {"spec", json::object()},
                 {"status",
                  {{"allocatable", {{"cpu", cpu}, {"memory", memory}, {"pods", "110"}}},
                   {"conditions",
                    {{{"type", "Ready"},
                      {"status", ready},
                      {"lastHeartbeatTime", formatRfc3339(env_.clock.nowMillis())},
                      {"lastTransitionTime", formatRfc3339(env_.clock.nowMillis())}}}}}}};
    if (!taints.is_null()) node["spec"]["taints"] = taints;
    auto r = reg().create(nodeKind(), "", node);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  void setNodeReady(const std::string& name, const std::string& status) {
    auto n = reg().get(nodeKind(), "", name);
    ASSERT_TRUE(n.isOk());
    json next = *n;
    for (auto& c : next["status"]["conditions"]) {
      if (c["type"] == "Ready") {
        c["status"] = status;
        c["lastTransitionTime"] = formatRfc3339(env_.clock.nowMillis());
      }
    }
    ASSERT_TRUE(reg().update(nodeKind(), "", name, next, registry::Subresource::kStatus).isOk());
  }

  json podSpec(const std::string& cpu = "", const std::string& memory = "") {
    json c = {{"name", "app"}, {"image", "nginx:1.25"}};
    if (!cpu.empty()) c["resources"]["requests"]["cpu"] = cpu;
    if (!memory.empty()) c["resources"]["requests"]["memory"] = memory;
    return {{"containers", json::array({c})}};
  }
  json createPod(const std::string& name, json spec, const std::string& ns = "default") {
    json pod = {{"metadata", {{"name", name}}}, {"spec", spec}};
    auto r = reg().create(podKind(), ns, pod);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : json();
  }
  json pod(const std::string& name, const std::string& ns = "default") {
    auto r = reg().get(podKind(), ns, name);
    return r.isOk() ? *r : json();
  }
  std::vector<json> pods(const std::string& selector = "", const std::string& ns = "default") {
    registry::ListQuery q;
    q.labelSelector = selector;
    auto r = reg().list(podKind(), ns, q);
    EXPECT_TRUE(r.isOk());
    return r.isOk() ? r->items : std::vector<json>();
  }
  std::vector<json> events(const std::string& ns = "default") {
    auto r = reg().list(eventKind(), ns, {});
    return r.isOk() ? r->items : std::vector<json>();
  }
  // Edge-style status report: phase Running and Ready=status.
  void setPodReady(const std::string& name, bool ready = true, const std::string& ns = "default") {
    json p = pod(name, ns);
    ASSERT_FALSE(p.is_null());
    json next = p;
    next["status"]["phase"] = "Running";
    setCondition(next, "Ready", ready ? "True" : "False", "", "", env_.clock.nowMillis());
    auto r = reg().update(podKind(), ns, name, next, registry::Subresource::kStatus);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  void setPodPhase(const std::string& name, const std::string& phase,
                   const std::string& ns = "default") {
    json next = pod(name, ns);
    next["status"]["phase"] = phase;
    ASSERT_TRUE(reg().update(podKind(), ns, name, next, registry::Subresource::kStatus).isOk());
  }

  ep::testing::StoreFixture env_;
};

}  // namespace ep::controllers::testing
