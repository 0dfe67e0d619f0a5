#include "common/api/names.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/api/field_error.h"

namespace ep::api {
namespace {

TEST(NamesTest, Dns1123Label) {
  EXPECT_TRUE(checkDns1123Label("my-name").empty());
  EXPECT_TRUE(checkDns1123Label("a").empty());
  EXPECT_TRUE(checkDns1123Label("123-abc").empty());
  EXPECT_TRUE(checkDns1123Label(std::string(63, 'a')).empty());
  EXPECT_FALSE(checkDns1123Label("").empty());
  EXPECT_FALSE(checkDns1123Label("My-Name").empty());
  EXPECT_FALSE(checkDns1123Label("-a").empty());
  EXPECT_FALSE(checkDns1123Label("a-").empty());
  EXPECT_FALSE(checkDns1123Label("a.b").empty());
  auto errs = checkDns1123Label(std::string(64, 'a'));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "must be no more than 63 characters");
  errs = checkDns1123Label("Bad_Name");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].rfind("a lowercase RFC 1123 label must consist of", 0), 0u) << errs[0];
}

TEST(NamesTest, Dns1123Subdomain) {
  EXPECT_TRUE(checkDns1123Subdomain("example.com").empty());
  EXPECT_TRUE(checkDns1123Subdomain("a.b-c.d").empty());
  EXPECT_FALSE(checkDns1123Subdomain("a..b").empty());
  EXPECT_FALSE(checkDns1123Subdomain(".a").empty());
  EXPECT_FALSE(checkDns1123Subdomain("a.").empty());
  EXPECT_FALSE(checkDns1123Subdomain("a.-b").empty());
  EXPECT_FALSE(checkDns1123Subdomain("Bad_Name").empty());
  std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                        std::string(63, 'c') + "." + std::string(61, 'd');
  EXPECT_EQ(longest.size(), 253u);
  EXPECT_TRUE(checkDns1123Subdomain(longest).empty());
  auto errs = checkDns1123Subdomain(longest + "e");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "must be no more than 253 characters");
}

TEST(NamesTest, QualifiedName) {
  EXPECT_TRUE(checkQualifiedName("app").empty());
  EXPECT_TRUE(checkQualifiedName("MyName").empty());
  EXPECT_TRUE(checkQualifiedName("my.name_x-1").empty());
  EXPECT_TRUE(checkQualifiedName("app.kubernetes.io/name").empty());
  EXPECT_TRUE(checkQualifiedName("node-role.kubernetes.io/control-plane").empty());
  EXPECT_FALSE(checkQualifiedName("").empty());
  EXPECT_FALSE(checkQualifiedName("_app").empty());
  EXPECT_FALSE(checkQualifiedName("bad key").empty());
  auto errs = checkQualifiedName("/name");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "prefix part must be non-empty");
  errs = checkQualifiedName("example.com/");
  ASSERT_FALSE(errs.empty());
  EXPECT_EQ(errs[0], "name part must be non-empty");
  errs = checkQualifiedName("Example.com/name");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].rfind("prefix part a lowercase RFC 1123 subdomain", 0), 0u);
  errs = checkQualifiedName("a/b/c");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].rfind("a qualified name must consist of", 0), 0u);
  errs = checkQualifiedName(std::string(64, 'a'));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "name part must be no more than 63 characters");
}

TEST(NamesTest, LabelValue) {
  EXPECT_TRUE(checkLabelValue("").empty());
  EXPECT_TRUE(checkLabelValue("v1.2_3-x").empty());
  EXPECT_FALSE(checkLabelValue("-v").empty());
  EXPECT_FALSE(checkLabelValue("a b").empty());
  EXPECT_FALSE(checkLabelValue("a/b").empty());
  auto errs = checkLabelValue(std::string(64, 'x'));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "must be no more than 63 characters");
}

TEST(NamesTest, ConfigKey) {
  EXPECT_TRUE(checkConfigKey("key.name").empty());
  EXPECT_TRUE(checkConfigKey("KEY_NAME").empty());
  EXPECT_TRUE(checkConfigKey(".dockerconfigjson").empty());
  EXPECT_FALSE(checkConfigKey("").empty());
  EXPECT_FALSE(checkConfigKey("bad key").empty());
  EXPECT_FALSE(checkConfigKey("a/b").empty());
  EXPECT_EQ(checkConfigKey("."), std::vector<std::string>{"must not be '.'"});
  EXPECT_EQ(checkConfigKey(".."), std::vector<std::string>{"must not be '..'"});
  EXPECT_EQ(checkConfigKey("..a"), std::vector<std::string>{"must not start with '..'"});
}

TEST(NamesTest, PortName) {
  EXPECT_TRUE(checkPortName("http").empty());
  EXPECT_TRUE(checkPortName("http-alt2").empty());
  EXPECT_FALSE(checkPortName("HTTP").empty());
  EXPECT_FALSE(checkPortName("8080").empty());
  EXPECT_FALSE(checkPortName("a--b").empty());
  EXPECT_FALSE(checkPortName("-a").empty());
  EXPECT_FALSE(checkPortName("abcdefghijklmnop").empty());
}

TEST(NamesTest, EnvVarName) {
  EXPECT_TRUE(checkEnvVarName("PATH").empty());
  EXPECT_TRUE(checkEnvVarName("my.var-1").empty());
  EXPECT_FALSE(checkEnvVarName("").empty());
  EXPECT_FALSE(checkEnvVarName("A=B").empty());
  EXPECT_FALSE(checkEnvVarName("tab\there").empty());
}

TEST(FieldErrorTest, MessagesFollowKubernetesWording) {
  EXPECT_EQ(fieldRequired("spec.containers[0].image").message,
            "spec.containers[0].image: Required value");
  EXPECT_EQ(fieldRequired("spec.x", "must be set").message, "spec.x: Required value: must be set");
  auto e = fieldTypeInvalid("spec.replicas", "three", "must be an integer");
  EXPECT_EQ(e.message, "spec.replicas: Invalid value: \"three\": must be an integer");
  EXPECT_EQ(e.reason, "FieldValueTypeInvalid");
  EXPECT_EQ(e.body(), "Invalid value: \"three\": must be an integer");
  EXPECT_EQ(fieldInvalid("spec.replicas", -1, "must be greater than or equal to 0").message,
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0");
  EXPECT_EQ(fieldNotSupported("spec.restartPolicy", "Sometimes", {"Always", "Never"}).message,
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: "
            "\"Always\", \"Never\"");
  EXPECT_EQ(fieldDuplicate("spec.volumes[1].name", "data").message,
            "spec.volumes[1].name: Duplicate value: \"data\"");
  EXPECT_EQ(fieldNotFound("x", "v").reason, "FieldValueNotFound");
  EXPECT_EQ(fieldForbidden("spec", "nope").message, "spec: Forbidden: nope");
  EXPECT_EQ(fieldTooLong("metadata.annotations", 262144).message,
            "metadata.annotations: Too long: may not be more than 262144 bytes");
  EXPECT_EQ(joinFieldErrors({fieldRequired("a")}), "a: Required value");
  EXPECT_EQ(joinFieldErrors({fieldRequired("a"), fieldRequired("b")}),
            "[a: Required value, b: Required value]");
  // Long and deeply nested values are cut.
  EXPECT_EQ(renderValue(std::string(2000, 'x')).size(), 1024u + 3u);
  std::string deep(1000, '[');
  deep += std::string(1000, ']');
  EXPECT_EQ(renderValue(nlohmann::json::parse(deep)), "[...]");
  // Invalid UTF-8 never throws.
  EXPECT_NO_THROW(fieldInvalid("x", std::string("\xff\xfe"), "bad"));
}

}  // namespace
}  // namespace ep::api
