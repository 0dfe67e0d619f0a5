#include "edgectl/top.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/edgectl/fake_api.h"

namespace ep::edgectl {
namespace {

using Json = nlohmann::json;
using testing::FakeApi;

class TopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.api = &api_;
    ctx_.out = &out_;
    ctx_.err = &err_;
    withMetricsGroup(true);
  }
  void withMetricsGroup(bool served) {
    Json groups = Json::array({{{"name", "apps"}}});
    if (served) groups.push_back({{"name", "metrics.k8s.io"}});
    answer("/apis", {{"kind", "APIGroupList"}, {"groups", groups}});
  }
  void answer(const std::string& path, const Json& body, int status = 200) {
    api_.overrides["GET " + path] = ApiResponse{status, body, body.dump()};
  }
  static Json node(const std::string& name, const std::string& cpu, const std::string& memory) {
    return {{"metadata", {{"name", name}}},
            {"status", {{"allocatable", {{"cpu", cpu}, {"memory", memory}}}}}};
  }
  static Json nodeMetrics(const std::string& name, const std::string& cpu,
                          const std::string& memory) {
    return {{"metadata", {{"name", name}}}, {"usage", {{"cpu", cpu}, {"memory", memory}}}};
  }
  static Json podMetrics(const std::string& ns, const std::string& name,
                         std::vector<std::tuple<std::string, std::string, std::string>> cs) {
    Json containers = Json::array();
    for (const auto& [c, cpu, memory] : cs) {
      containers.push_back({{"name", c}, {"usage", {{"cpu", cpu}, {"memory", memory}}}});
    }
    return {{"metadata", {{"name", name}, {"namespace", ns}}}, {"containers", containers}};
  }
  int run(std::vector<std::string> args, TopOptions o = {}) {
    o.args = std::move(args);
    return runTop(ctx_, o);
  }

  FakeApi api_;
  std::ostringstream out_, err_;
  Context ctx_;
};

TEST_F(TopTest, NodesWithPercentagesAndTheOnesWithoutMetrics) {
  answer("/apis/metrics.k8s.io/v1beta1/nodes",
         {{"items", {nodeMetrics("edge-a", "250000000n", "512Mi")}}});
  answer("/api/v1/nodes", {{"items", {node("edge-a", "2", "4Gi"), node("edge-b", "1", "1Gi")}}});
  ASSERT_EQ(run({"node"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME     CPU(cores)   CPU(%)      MEMORY(bytes)   MEMORY(%)   \n"
            "edge-a   250m         12%         512Mi           12%         \n"
            "edge-b   <unknown>    <unknown>   <unknown>       <unknown>   \n");
}

TEST_F(TopTest, PodsSummedSortedAndPerContainer) {
  answer("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
         {{"items",
           {podMetrics("default", "small", {{"app", "1m", "1Mi"}}),
            podMetrics("default", "big", {{"app", "100m", "10Mi"}, {"side", "50m", "20Mi"}})}}});
  TopOptions sorted;
  sorted.sortBy = "cpu";
  ASSERT_EQ(run({"pod"}, sorted), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME    CPU(cores)   MEMORY(bytes)   \n"
            "big     150m         30Mi            \n"
            "small   1m           1Mi             \n");
  out_.str("");
  TopOptions containers;
  containers.containers = true;
  containers.noHeaders = true;
  ASSERT_EQ(run({"pods"}, containers), 0);
  EXPECT_EQ(out_.str(),
            "small   app    1m     1Mi    \n"
            "big     app    100m   10Mi   \n"
            "big     side   50m    20Mi   \n");
}

// kubectl sums a pod's containers in nanocores and rounds once: two containers at 1.5m each
// are 2m each and 3m together (not 4m).
TEST_F(TopTest, PodCpuIsRoundedOnceAfterSumming) {
  answer("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
         {{"items",
           {podMetrics("default", "p", {{"a", "1500000n", "1Mi"}, {"b", "1500000n", "1Mi"}})}}});
  ASSERT_EQ(run({"pod"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME   CPU(cores)   MEMORY(bytes)   \n"
            "p      3m           2Mi             \n");
  out_.str("");
  TopOptions containers;
  containers.containers = true;
  containers.noHeaders = true;
  ASSERT_EQ(run({"pod"}, containers), 0);
  EXPECT_EQ(out_.str(),
            "p     a     2m    1Mi   \n"
            "p     b     2m    1Mi   \n");
}

TEST_F(TopTest, SaysWhyThereIsNothingToShow) {
  answer("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", {{"items", Json::array()}});
  answer("/api/v1/namespaces/default/pods", {{"items", Json::array()}});
  EXPECT_EQ(run({"pod"}), 0);
  EXPECT_EQ(err_.str(), "No resources found in default namespace.\n");
  err_.str("");
  answer("/api/v1/namespaces/default/pods", {{"items", {{{"metadata", {{"name", "new"}}}}}}});
  EXPECT_EQ(run({"pod"}), 1);
  EXPECT_EQ(err_.str(), "error: metrics not available yet\n");
  err_.str("");
  answer("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/gone",
         {{"kind", "Status"},
          {"reason", "NotFound"},
          {"message", "podmetrics.metrics.k8s.io \"default/gone\" not found"}},
         404);
  EXPECT_EQ(run({"pod", "gone"}), 1);
  EXPECT_EQ(err_.str(),
            "Error from server (NotFound): podmetrics.metrics.k8s.io \"default/gone\" not found\n");
  err_.str("");
  withMetricsGroup(false);
  EXPECT_EQ(run({"node"}), 1);
  EXPECT_EQ(err_.str(), "error: Metrics API not available\n");
}

TEST_F(TopTest, BadArgumentsAreNamed) {
  EXPECT_EQ(run({"deploy"}), 1);
  EXPECT_EQ(err_.str(), "error: unknown resource \"deploy\" (node or pod)\n");
  err_.str("");
  TopOptions o;
  o.sortBy = "name";
  EXPECT_EQ(run({"pod"}, o), 1);
  EXPECT_EQ(err_.str(), "error: --sort-by accepts only cpu or memory\n");
  err_.str("");
  TopOptions both;
  both.selector = "app=x";
  EXPECT_EQ(run({"pod", "web"}, both), 1);
  EXPECT_NE(err_.str().find("only one of NAME or --selector"), std::string::npos);
  EXPECT_TRUE(api_.calls.empty()) << "nothing is asked of the server for bad arguments";
}

}  // namespace
}  // namespace ep::edgectl
