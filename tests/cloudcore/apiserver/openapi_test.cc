#include "cloudcore/apiserver/openapi.h"

#include <gtest/gtest.h>

#include "common/api/proto_wire.h"

namespace ep::apiserver {
namespace {

using api::ProtoMessage;

TEST(OpenApiTest, V2DefinesEveryServedKindWithItsGroupVersionKind) {
  const auto& defs = openApiV2Json()["definitions"];
  const auto& pod = defs["io.k8s.api.core.v1.Pod"];
  ASSERT_TRUE(pod.is_object());
  EXPECT_EQ(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
  EXPECT_EQ(pod["x-kubernetes-group-version-kind"][0]["group"], "");
  EXPECT_EQ(pod["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
  EXPECT_EQ(pod["properties"]["apiVersion"]["type"], "string");
  const auto& spec = defs["io.k8s.api.core.v1.PodSpec"]["properties"];
  EXPECT_EQ(spec["containers"]["type"], "array");
  EXPECT_EQ(spec["containers"]["x-kubernetes-patch-merge-key"], "name");
  EXPECT_EQ(spec["volumes"]["x-kubernetes-patch-strategy"], "merge,retainKeys");
  EXPECT_EQ(spec["nodeSelector"]["additionalProperties"]["type"], "string");
  // An embedded struct's fields belong to the parent (Volume inlines VolumeSource).
  EXPECT_TRUE(defs["io.k8s.api.core.v1.Volume"]["properties"].contains("configMap"));
  EXPECT_FALSE(defs["io.k8s.api.core.v1.Volume"]["properties"].contains("volumeSource"));
  // Values with their own JSON forms.
  EXPECT_EQ(defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"], "string");
  EXPECT_EQ(defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"], "int-or-string");
  EXPECT_EQ(defs["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"], "date-time");
  // KubeEdge and Sedna kinds: the envelope, spec and status free-form.
  const auto& device = defs["io.kubeedge.devices.v1beta1.Device"];
  EXPECT_EQ(device["x-kubernetes-group-version-kind"][0]["group"], "devices.kubeedge.io");
  EXPECT_EQ(device["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"], true);
  EXPECT_TRUE(defs.contains("io.sedna.v1alpha1.Model"));
}

// The protobuf form is gnostic's openapi_v2.Document: swagger = 1, definitions = 9 holding
// NamedSchema{name = 1, value = 2: Schema{_ref = 1, type = 22, properties = 25,
// vendor_extension = 31}}; one entry per JSON definition.
TEST(OpenApiTest, V2ProtobufIsTheGnosticDocument) {
  auto doc = ProtoMessage::parse(openApiV2Protobuf());
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->bytes(1), "2.0");
  auto defs = ProtoMessage::parse(doc->bytes(9));
  ASSERT_TRUE(defs);
  auto named = defs->repeatedBytes(1);
  EXPECT_EQ(named.size(), openApiV2Json()["definitions"].size());
  bool sawPod = false;
  for (auto n : named) {
    auto entry = ProtoMessage::parse(n);
    ASSERT_TRUE(entry);
    if (entry->bytes(1) != "io.k8s.api.core.v1.Pod") continue;
    sawPod = true;
    auto schema = ProtoMessage::parse(entry->bytes(2));
    ASSERT_TRUE(schema);
    EXPECT_EQ(ProtoMessage::parse(schema->bytes(22))->bytes(1), "object");
    bool gvk = false;
    for (auto ext : schema->repeatedBytes(31)) {
      auto any = ProtoMessage::parse(ext);
      if (any->bytes(1) != "x-kubernetes-group-version-kind") continue;
      gvk = true;
      EXPECT_EQ(ProtoMessage::parse(any->bytes(2))->bytes(2),
                "- group: \"\"\n  kind: \"Pod\"\n  version: \"v1\"\n");
    }
    EXPECT_TRUE(gvk);
  }
  EXPECT_TRUE(sawPod);
}

// Each group-version's v3 document holds the schemas its kinds reach, with v3 references, and
// the root names it by a hash of its content (kubectl caches by URL).
TEST(OpenApiTest, V3DocumentsCarryTheSchemasTheirKindsReach) {
  const auto& apps = openApiV3GroupVersion("apps/v1");
  ASSERT_TRUE(apps.is_object());
  const auto& schemas = apps["components"]["schemas"];
  EXPECT_TRUE(schemas.contains("io.k8s.api.apps.v1.Deployment"));
  EXPECT_TRUE(schemas.contains("io.k8s.api.core.v1.Container"));  // through the pod template
  EXPECT_FALSE(schemas.contains("io.k8s.api.core.v1.Node"));      // not reached from apps/v1
  EXPECT_EQ(schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec");
  for (const auto& [name, schema] : schemas.items()) {
    EXPECT_EQ(schema.dump().find("#/definitions/"), std::string::npos) << name;
  }
  EXPECT_TRUE(apps["paths"].contains("/apis/apps/v1/namespaces/{namespace}/deployments/{name}"));
  EXPECT_TRUE(openApiV3GroupVersion("nope/v1").is_null());

  const auto& root = openApiV3Root()["paths"];
  std::string url = root["apis/apps/v1"]["serverRelativeURL"];
  EXPECT_EQ(url.rfind("/openapi/v3/apis/apps/v1?hash=", 0), 0u) << url;
  EXPECT_NE(url, root["api/v1"]["serverRelativeURL"].get<std::string>());
  EXPECT_TRUE(root.contains("apis/devices.kubeedge.io/v1beta1"));
}

}  // namespace
}  // namespace ep::apiserver
