#include "common/api/proto_json.h"

#include <gtest/gtest.h>

#include <string>

namespace ep::api {
namespace {

using Json = nlohmann::json;

// A minimal protobuf writer for building request bodies as kubectl's client-go does.
struct Msg {
  std::string out;
  static std::string varint(uint64_t v) {
    std::string s;
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      s += static_cast<char>(v ? b | 0x80 : b);
    } while (v);
    return s;
  }
  Msg& num(uint32_t field, uint64_t v) {
    out += varint(field << 3 | 0) + varint(v);
    return *this;
  }
  Msg& bytes(uint32_t field, const std::string& v) {
    out += varint(field << 3 | 2) + varint(v.size()) + v;
    return *this;
  }
  Msg& msg(uint32_t field, const Msg& m) { return bytes(field, m.out); }
  Msg& entry(uint32_t field, const std::string& k, const std::string& v) {
    return msg(field, Msg().bytes(1, k).bytes(2, v));
  }
};

std::string envelope(const std::string& apiVersion, const std::string& kind, const Msg& raw) {
  Msg unknown;
  unknown.msg(1, Msg().bytes(1, apiVersion).bytes(2, kind)).bytes(2, raw.out);
  return std::string("k8s\0", 4) + unknown.out;
}

// ObjectMeta as gogo writes it: every non-pointer field, set or not.
Msg meta(const std::string& name) {
  return Msg()
      .bytes(1, name)
      .bytes(2, "")
      .bytes(3, "")
      .bytes(4, "")
      .bytes(5, "")
      .bytes(6, "")
      .num(7, 0)
      .msg(8, Msg())  // zero creationTimestamp
      .entry(11, "app", "web");
}

TEST(ProtoJsonTest, ConfigMapAndSecretAsKubectlCreateSendsThem) {
  auto cm = kubernetesProtobufToJson(envelope("v1", "ConfigMap",
                                              Msg()
                                                  .msg(1, meta("settings"))
                                                  .entry(2, "a", "1")
                                                  .entry(2, "b", "2")
                                                  .entry(3, "bin", "\x01\xff")));
  ASSERT_TRUE(cm.isOk()) << cm.status().toString();
  EXPECT_EQ(*cm, Json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "settings", "labels": {"app": "web"}},
      "data": {"a": "1", "b": "2"}, "binaryData": {"bin": "Af8="}})"));

  auto secret = kubernetesProtobufToJson(envelope(
      "v1", "Secret", Msg().msg(1, meta("db")).entry(2, "pw", "hunter2").bytes(3, "Opaque")));
  ASSERT_TRUE(secret.isOk()) << secret.status().toString();
  EXPECT_EQ((*secret)["data"]["pw"], "aHVudGVyMg==");
  EXPECT_EQ((*secret)["type"], "Opaque");
}

TEST(ProtoJsonTest, DeploymentKeepsPointerZerosAndInlinesEmbeddedStructs) {
  Msg container;
  container.bytes(1, "web").bytes(2, "nginx:1.25").msg(6, Msg().num(2, 0).num(3, 80));
  container.msg(8, Msg().msg(1, Msg().bytes(1, "cpu").msg(2, Msg().bytes(1, "500m"))));
  Msg podSpec;
  podSpec
      .msg(1, Msg().bytes(1, "scratch").msg(2, Msg().msg(2, Msg())))  // volumeSource.emptyDir
      .msg(2, container)
      .num(4, 30);
  Msg spec;
  spec.num(1, 0)  // replicas: 0, a pointer: kept
      .msg(2, Msg().entry(1, "app", "web"))
      .msg(3, Msg().msg(1, meta("")).msg(2, podSpec))
      .msg(4, Msg()
                  .bytes(1, "RollingUpdate")
                  .msg(2, Msg().msg(1, Msg().num(1, 1).bytes(3, "25%")).msg(2, Msg().num(2, 2))))
      .num(5, 0)  // minReadySeconds: 0, omitempty value: left out
      .num(7, 0);
  auto d = kubernetesProtobufToJson(
      envelope("apps/v1", "Deployment", Msg().msg(1, meta("web")).msg(2, spec)));
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  const Json& s = (*d)["spec"];
  EXPECT_EQ(s["replicas"], 0);
  EXPECT_FALSE(s.contains("minReadySeconds"));
  EXPECT_FALSE(s.contains("paused"));
  EXPECT_EQ(s["strategy"]["rollingUpdate"]["maxUnavailable"], "25%");
  EXPECT_EQ(s["strategy"]["rollingUpdate"]["maxSurge"], 2);
  const Json& pod = s["template"]["spec"];
  EXPECT_EQ(pod["volumes"][0], Json::parse(R"({"name": "scratch", "emptyDir": {}})"));
  EXPECT_EQ(pod["containers"][0]["ports"][0], Json::parse(R"({"containerPort": 80})"));
  EXPECT_EQ(pod["containers"][0]["resources"]["limits"]["cpu"], "500m");
  EXPECT_EQ(pod["terminationGracePeriodSeconds"], 30);
  EXPECT_FALSE(s["template"]["metadata"].contains("name"));
  EXPECT_FALSE((*d)["metadata"].contains("creationTimestamp"));
  EXPECT_FALSE((*d)["metadata"].contains("generation"));
}

TEST(ProtoJsonTest, TimesPackedNumbersAndRbac) {
  auto ev =
      kubernetesProtobufToJson(envelope("v1", "Event",
                                        Msg()
                                            .msg(1, meta("e"))
                                            .msg(6, Msg().num(1, 1767225600))
                                            .msg(10, Msg().num(1, 1767225600).num(2, 123456000))));
  ASSERT_TRUE(ev.isOk()) << ev.status().toString();
  EXPECT_EQ((*ev)["firstTimestamp"], "2026-01-01T00:00:00Z");
  EXPECT_EQ((*ev)["eventTime"], "2026-01-01T00:00:00.123456Z");

  // PodSecurityContext.supplementalGroups (4): packed repeated int64.
  Msg sc;
  sc.bytes(4, Msg::varint(1000) + Msg::varint(2000));
  auto pod = kubernetesProtobufToJson(
      envelope("v1", "Pod", Msg().msg(1, meta("p")).msg(2, Msg().msg(14, sc))));
  ASSERT_TRUE(pod.isOk()) << pod.status().toString();
  EXPECT_EQ((*pod)["spec"]["securityContext"]["supplementalGroups"], Json::parse("[1000, 2000]"));

  auto rb = kubernetesProtobufToJson(envelope(
      "rbac.authorization.k8s.io/v1", "RoleBinding",
      Msg()
          .msg(1, meta("rb"))
          .msg(2, Msg().bytes(1, "User").bytes(3, "bob"))
          .msg(3, Msg().bytes(1, "rbac.authorization.k8s.io").bytes(2, "Role").bytes(3, "r"))));
  ASSERT_TRUE(rb.isOk()) << rb.status().toString();
  EXPECT_EQ((*rb)["subjects"][0]["name"], "bob");
  EXPECT_EQ((*rb)["roleRef"]["kind"], "Role");

  auto del = kubernetesProtobufToJson(
      envelope("v1", "DeleteOptions", Msg().num(1, 0).bytes(4, "Foreground")));
  ASSERT_TRUE(del.isOk()) << del.status().toString();
  EXPECT_EQ((*del)["gracePeriodSeconds"], 0);
  EXPECT_EQ((*del)["propagationPolicy"], "Foreground");
}

TEST(ProtoJsonTest, BadInputIsAClearError) {
  auto unknownKind = kubernetesProtobufToJson(envelope("batch/v1", "Job", Msg()));
  EXPECT_EQ(unknownKind.status().code(), Code::kUnsupportedMedia);
  EXPECT_NE(unknownKind.status().message().find("batch/v1 Job"), std::string::npos);
  EXPECT_EQ(kubernetesProtobufToJson("not protobuf").status().code(), Code::kBadRequest);
  std::string truncated = envelope("v1", "ConfigMap", Msg().msg(1, meta("x")));
  EXPECT_EQ(kubernetesProtobufToJson(truncated.substr(0, truncated.size() - 3)).status().code(),
            Code::kBadRequest);
  // A name sent as a varint: wrong wire type, named.
  auto wire = kubernetesProtobufToJson(envelope("v1", "ConfigMap", Msg().msg(1, Msg().num(1, 7))));
  EXPECT_EQ(wire.status().code(), Code::kBadRequest);
  EXPECT_NE(wire.status().message().find("ObjectMeta.name: wrong wire type"), std::string::npos)
      << wire.status().message();
  auto utf8 = kubernetesProtobufToJson(envelope("v1", "ConfigMap", Msg().msg(1, meta("\xff\xfe"))));
  EXPECT_NE(utf8.status().message().find("invalid UTF-8"), std::string::npos);
  // Overlong forms, surrogates and code points above U+10FFFF are not UTF-8 either (found by
  // proto_json_fuzz: JSON output refuses them).
  for (const char* bad : {"\xc0\x88", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80"}) {
    auto r = kubernetesProtobufToJson(envelope("v1", "ConfigMap", Msg().msg(1, meta(bad))));
    EXPECT_EQ(r.status().code(), Code::kBadRequest) << bad;
  }
  EXPECT_TRUE(kubernetesProtobufToJson(
                  envelope("v1", "ConfigMap", Msg().msg(1, meta("caf\xc3\xa9-\xf0\x9f\x99\x82"))))
                  .isOk());
  // Unknown field numbers are skipped, as protobuf does.
  auto extra =
      kubernetesProtobufToJson(envelope("v1", "ConfigMap", Msg().msg(1, meta("x")).num(99, 1)));
  EXPECT_TRUE(extra.isOk());
  // No served message contains itself, so nesting is bounded by the schemas (the 64-level limit
  // is a guard); size is bounded by the request body limit. A large flat map decodes.
  Msg big;
  big.msg(1, meta("big"));
  for (int i = 0; i < 1000; ++i) big.entry(2, "k" + std::to_string(i), "v");
  auto flat = kubernetesProtobufToJson(envelope("v1", "ConfigMap", big));
  ASSERT_TRUE(flat.isOk());
  EXPECT_EQ((*flat)["data"].size(), 1000u);
}

}  // namespace
}  // namespace ep::api
