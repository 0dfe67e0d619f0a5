#include <gtest/gtest.h>

#include "common/api/rules.h"

namespace ep::api {
namespace {

using Json = nlohmann::json;

Json endpoint(const std::string& name, const std::string& type, Json props = Json::object()) {
  return {{"apiVersion", "rules.kubeedge.io/v1"},
          {"kind", "RuleEndpoint"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"ruleEndpointType", type}, {"properties", props}}}};
}

Json rule(const std::string& name, const std::string& source, Json sourceResource,
          const std::string& target, Json targetResource, const std::string& ns = "default") {
  return {{"apiVersion", "rules.kubeedge.io/v1"},
          {"kind", "Rule"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec",
           {{"source", source},
            {"sourceResource", sourceResource},
            {"target", target},
            {"targetResource", targetResource}}}};
}

std::vector<Json> endpoints() {
  return {endpoint("rest", "rest"), endpoint("bus", "eventbus"),
          endpoint("svc", "servicebus", {{"service_port", "8080"}}),
          endpoint("badsvc", "servicebus", {{"service_port", "99999"}})};
}

TEST(RouteRulesTest, ResolvesTheThreeDirectionsKubeEdgeCarries) {
  auto rules = resolveRules({rule("a", "rest", {{"path", "/a/"}}, "bus", {{"topic", "t/a"}}),
                             rule("b", "bus", {{"topic", "up"}, {"node_name", "edge-1"}}, "rest",
                                  {{"resource", "https://app.example/hook"}}),
                             rule("c", "rest", {{"path", "/c"}}, "svc", {{"path", "/target"}})},
                            endpoints());
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].problem, "");
  EXPECT_EQ(rules[0].sourcePath, "/a");
  EXPECT_EQ(rules[0].targetTopic, "t/a");
  EXPECT_EQ(rules[1].problem, "");
  EXPECT_EQ(rules[1].edgeTopic(), "default/up");
  EXPECT_EQ(rules[1].sourceNode, "edge-1");
  EXPECT_EQ(rules[1].targetUrl, "https://app.example/hook");
  EXPECT_EQ(rules[2].problem, "");
  EXPECT_EQ(rules[2].servicePort, 8080);
  EXPECT_EQ(rules[2].targetPath, "/target");
}

TEST(RouteRulesTest, UnusableRulesSayWhy) {
  auto rules = resolveRules(
      {rule("missing", "nope", {{"path", "/a"}}, "bus", {{"topic", "t"}}),
       rule("direction", "bus", {{"topic", "x"}, {"node_name", "n"}}, "bus", {{"topic", "t"}}),
       rule("nopath", "rest", Json::object(), "bus", {{"topic", "t"}}),
       rule("nonode", "bus", {{"topic", "x"}}, "rest", {{"resource", "http://a/"}}),
       rule("wild", "rest", {{"path", "/w"}}, "bus", {{"topic", "a/#"}}),
       rule("url", "bus", {{"topic", "x"}, {"node_name", "n"}}, "rest", {{"resource", "ftp://a"}}),
       rule("port", "rest", {{"path", "/p"}}, "badsvc", {{"path", "/"}}),
       rule("otherns", "rest", {{"path", "/a"}}, "bus", {{"topic", "t"}}, "prod")},
      endpoints());
  ASSERT_EQ(rules.size(), 8u);
  EXPECT_NE(rules[0].problem.find("source RuleEndpoint \"nope\" not found"), std::string::npos);
  EXPECT_NE(rules[1].problem.find("unsupported direction eventbus -> eventbus"), std::string::npos);
  EXPECT_NE(rules[2].problem.find("spec.sourceResource.path"), std::string::npos);
  EXPECT_NE(rules[3].problem.find("spec.sourceResource.node_name"), std::string::npos);
  EXPECT_NE(rules[4].problem.find("wildcards"), std::string::npos);
  EXPECT_NE(rules[5].problem.find("spec.targetResource.resource"), std::string::npos);
  EXPECT_NE(rules[6].problem.find("service_port"), std::string::npos);
  // Endpoints are looked up in the rule's own namespace.
  EXPECT_NE(rules[7].problem.find("not found in namespace prod"), std::string::npos);
}

TEST(RouteRulesTest, RestPathsMatchTheLongestPrefixOnSegmentBoundaries) {
  auto rules = resolveRules({rule("a", "rest", {{"path", "/a"}}, "bus", {{"topic", "t"}}),
                             rule("ab", "rest", {{"path", "/a/b"}}, "bus", {{"topic", "t"}}),
                             rule("root", "rest", {{"path", "/"}}, "svc", {{"path", "/x"}})},
                            endpoints());
  std::string rest;
  const RouteRule* r = matchRestRule(rules, "default", "/a/b/c", &rest);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name, "ab");
  EXPECT_EQ(rest, "/c");
  r = matchRestRule(rules, "default", "/a", &rest);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name, "a");
  EXPECT_EQ(rest, "");
  r = matchRestRule(rules, "default", "/abc", &rest);  // not "/a": not on a boundary
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name, "root");
  EXPECT_EQ(rest, "/abc");
  EXPECT_EQ(matchRestRule(rules, "other", "/a", &rest), nullptr);
}

TEST(RouteRulesTest, RouterPathsNameANodeANamespaceAndAPath) {
  auto t = parseRouterPath("/edge-1/default/a//b/");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->node, "edge-1");
  EXPECT_EQ(t->ns, "default");
  EXPECT_EQ(t->path, "/a/b");
  t = parseRouterPath("/edge-1/default");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->path, "/");
  EXPECT_FALSE(parseRouterPath("/edge-1").has_value());
  EXPECT_FALSE(parseRouterPath("/").has_value());
  EXPECT_FALSE(parseRouterPath("/Edge_1/default/x").has_value());
  EXPECT_FALSE(parseRouterPath("/edge-1/Default/x").has_value());
  EXPECT_EQ(normalizeRoutePath(""), "/");
  EXPECT_EQ(normalizeRoutePath("//a///b//"), "/a/b");
}

}  // namespace
}  // namespace ep::api
