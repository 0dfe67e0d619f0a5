#include "common/api/field_selector.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::api {
namespace {

using nlohmann::json;

const KindInfo& kind(std::string_view apiVersion, std::string_view k) {
  const KindInfo* info = findByApiVersionKind(apiVersion, k);
  EXPECT_NE(info, nullptr) << apiVersion << " " << k;
  return *info;
}

FieldSelector mustParse(std::string_view text, const KindInfo& k) {
  auto r = parseFieldSelector(text, k);
  EXPECT_TRUE(r.isOk()) << text << ": " << r.status().toString();
  return r.isOk() ? *r : FieldSelector();
}

const json kPod = json::parse(R"({
  "metadata": {"name": "web-1", "namespace": "default"},
  "spec": {"nodeName": "edge-1", "restartPolicy": "Always"},
  "status": {"phase": "Running", "podIP": "10.0.0.5"}
})");

TEST(FieldSelectorTest, EmptyMatchesEverything) {
  auto sel = mustParse("", kind("v1", "Pod"));
  EXPECT_TRUE(sel.empty());
  EXPECT_TRUE(sel.matches(kPod));
  EXPECT_TRUE(mustParse(" , ", kind("v1", "Pod")).empty());
}

TEST(FieldSelectorTest, PodFields) {
  const auto& pod = kind("v1", "Pod");
  EXPECT_TRUE(mustParse("spec.nodeName=edge-1", pod).matches(kPod));
  EXPECT_TRUE(mustParse("spec.nodeName==edge-1", pod).matches(kPod));
  EXPECT_FALSE(mustParse("spec.nodeName=edge-2", pod).matches(kPod));
  EXPECT_FALSE(mustParse("spec.nodeName!=edge-1", pod).matches(kPod));
  EXPECT_TRUE(mustParse("status.phase!=Pending,metadata.name=web-1", pod).matches(kPod));
  EXPECT_FALSE(mustParse("status.phase!=Pending,metadata.name=web-2", pod).matches(kPod));
  EXPECT_TRUE(mustParse("metadata.namespace=default", pod).matches(kPod));
  EXPECT_TRUE(mustParse("status.podIP=10.0.0.5", pod).matches(kPod));
  // Missing fields compare as "": the unscheduled-pods idiom.
  EXPECT_TRUE(mustParse("status.nominatedNodeName=", pod).matches(kPod));
  EXPECT_FALSE(mustParse("spec.schedulerName!=", pod).matches(kPod));
  auto unscheduled = mustParse("spec.nodeName=", pod);
  EXPECT_FALSE(unscheduled.matches(kPod));
  EXPECT_TRUE(unscheduled.matches(json::parse(R"({"metadata": {"name": "x"}})")));
}

TEST(FieldSelectorTest, ExactValue) {
  auto sel = mustParse("status.phase!=Failed, spec.nodeName = edge-1", kind("v1", "Pod"));
  EXPECT_EQ(sel.exactValue("spec.nodeName"), "edge-1");
  EXPECT_EQ(sel.exactValue("status.phase"), std::nullopt);
  EXPECT_EQ(sel.exactValue("metadata.name"), std::nullopt);
  EXPECT_EQ(sel.toString(), "status.phase!=Failed,spec.nodeName=edge-1");
}

TEST(FieldSelectorTest, UnsupportedFieldsAreRefused) {
  struct Case {
    const char* apiVersion;
    const char* kind;
    const char* selector;
  };
  for (const Case& c : std::vector<Case>{
           {"v1", "Pod", "spec.hostNetwork=true"},
           {"v1", "ConfigMap", "data=x"},
           {"v1", "Node", "status.phase=Ready"},
           {"apps/v1", "Deployment", "spec.replicas=1"},
           {"v1", "Secret", "spec.nodeName=a"},
           {"devices.kubeedge.io/v1beta1", "DeviceModel", "spec.nodeName=a"},
       }) {
    auto r = parseFieldSelector(c.selector, kind(c.apiVersion, c.kind));
    ASSERT_FALSE(r.isOk()) << c.selector;
    EXPECT_EQ(r.status().code(), Code::kBadRequest);
    std::string field(c.selector, std::string_view(c.selector).find('='));
    EXPECT_EQ(r.status().message(), "field label not supported: " + field);
  }
}

TEST(FieldSelectorTest, KindSpecificFields) {
  auto secret = mustParse("type=kubernetes.io/tls", kind("v1", "Secret"));
  EXPECT_TRUE(secret.matches(json::parse(R"({"type": "kubernetes.io/tls"})")));
  EXPECT_FALSE(secret.matches(json::parse(R"({"type": "Opaque"})")));

  auto ns = mustParse("status.phase=Active", kind("v1", "Namespace"));
  EXPECT_TRUE(ns.matches(json::parse(R"({"status": {"phase": "Active"}})")));

  auto device = mustParse("spec.nodeName=edge-1", kind("devices.kubeedge.io/v1beta1", "Device"));
  EXPECT_TRUE(device.matches(json::parse(R"({"spec": {"nodeName": "edge-1"}})")));

  const auto& event = kind("v1", "Event");
  json ev = json::parse(R"({
    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u1"},
    "reason": "Scheduled", "type": "Normal", "source": {"component": "scheduler"},
    "reportingComponent": "default-scheduler"})");
  EXPECT_TRUE(mustParse("involvedObject.kind=Pod,involvedObject.name=web-1", event).matches(ev));
  EXPECT_TRUE(mustParse("involvedObject.uid=u1,reason=Scheduled,type=Normal", event).matches(ev));
  EXPECT_TRUE(mustParse("source=scheduler", event).matches(ev));
  EXPECT_TRUE(mustParse("reportingComponent=default-scheduler", event).matches(ev));
  EXPECT_FALSE(mustParse("type=Warning", event).matches(ev));
}

TEST(FieldSelectorTest, BooleansCompareAsText) {
  const auto& node = kind("v1", "Node");
  json cordoned = json::parse(R"({"spec": {"unschedulable": true}})");
  json schedulable = json::parse(R"({"spec": {}})");
  EXPECT_TRUE(mustParse("spec.unschedulable=true", node).matches(cordoned));
  EXPECT_FALSE(mustParse("spec.unschedulable=true", node).matches(schedulable));
  // Absent means false, as Kubernetes reports it.
  EXPECT_TRUE(mustParse("spec.unschedulable=false", node).matches(schedulable));
  EXPECT_EQ(fieldLabelValue(cordoned, "spec.unschedulable"), "true");
}

TEST(FieldSelectorTest, EscapedValues) {
  const auto& pod = kind("v1", "Pod");
  auto sel = mustParse(R"(metadata.name=a\,b\=c\\d)", pod);
  ASSERT_EQ(sel.requirements().size(), 1u);
  EXPECT_EQ(sel.requirements()[0].value, R"(a,b=c\d)");
  EXPECT_TRUE(sel.matches(json::parse(R"({"metadata": {"name": "a,b=c\\d"}})")));
  EXPECT_EQ(sel.toString(), R"(metadata.name=a\,b\=c\\d)");
  EXPECT_EQ(mustParse(sel.toString(), pod).requirements()[0].value, R"(a,b=c\d)");
}

TEST(FieldSelectorTest, SyntaxErrors) {
  const auto& pod = kind("v1", "Pod");
  for (std::string_view s : {"metadata.name", "metadata.name=a=b", R"(metadata.name=a\x)",
                             R"(metadata.name=a\)", "=x", "spec.nodeName=a,status.phase"}) {
    auto r = parseFieldSelector(s, pod);
    EXPECT_FALSE(r.isOk()) << s;
    EXPECT_EQ(r.status().code(), Code::kBadRequest) << s;
  }
  auto r = parseFieldSelector("metadata.name", pod);
  EXPECT_NE(r.status().message().find("can't understand 'metadata.name'"), std::string::npos);
}

TEST(FieldSelectorTest, SupportedFieldLabels) {
  auto pod = supportedFieldLabels(kind("v1", "Pod"));
  EXPECT_EQ(pod.size(), 9u);
  EXPECT_EQ(supportedFieldLabels(kind("v1", "Event")).size(), 13u);
  EXPECT_EQ(supportedFieldLabels(kind("v1", "ConfigMap")),
            (std::vector<std::string>{"metadata.name", "metadata.namespace"}));
}

}  // namespace
}  // namespace ep::api
