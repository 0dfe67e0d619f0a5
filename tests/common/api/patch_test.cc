#include "common/api/patch.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::api {
namespace {

using nlohmann::json;

json mergeOk(const json& target, const json& patch) {
  auto r = applyMergePatch(target, patch);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return r.isOk() ? *r : json();
}

// The examples of RFC 7386 appendix A.
TEST(MergePatchTest, Rfc7386Examples) {
  struct Case {
    const char* target;
    const char* patch;
    const char* result;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
           {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
           {R"({"a":"b"})", R"({"a":null})", R"({})"},
           {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
           {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
           {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
           {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
           {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
           {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
           {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
           {R"({"a":"foo"})", "null", "null"},
           {R"({"a":"foo"})", R"("bar")", R"("bar")"},
           {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
           {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
           {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
       }) {
    EXPECT_EQ(mergeOk(json::parse(c.target), json::parse(c.patch)), json::parse(c.result))
        << c.target << " + " << c.patch;
  }
}

TEST(MergePatchTest, DoesNotModifyInputs) {
  json target = json::parse(R"({"metadata":{"labels":{"a":"1"}}})");
  json patch = json::parse(R"({"metadata":{"labels":{"a":null,"b":"2"}}})");
  json t0 = target;
  json p0 = patch;
  EXPECT_EQ(mergeOk(target, patch), json::parse(R"({"metadata":{"labels":{"b":"2"}}})"));
  EXPECT_EQ(target, t0);
  EXPECT_EQ(patch, p0);
}

TEST(MergePatchTest, DeepNestingRefused) {
  json patch = json::object();
  json* cur = &patch;
  for (int i = 0; i < 600; ++i) cur = &((*cur)["a"] = json::object());
  auto r = applyMergePatch(json::object(), patch);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kBadRequest);
}

TEST(PatchDepthTest, HostileNestingIsRefusedNotRecursed) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "[";
  for (int i = 0; i < 100000; ++i) deep += "]";
  // Built without copying: a recursive copy of this document would itself overflow the stack
  // (nlohmann's parser and destructor are iterative, its copy is not).
  json nested = json::parse(deep);
  json wrapped = json::object();
  wrapped["spec"] = json::parse(deep);
  std::vector<Result<json>> results;
  results.push_back(applyMergePatch(json::object(), wrapped));
  results.push_back(applyJsonPatch(json::object(), nested));
  results.push_back(applyStrategicMergePatch(json::object(), wrapped));
  results.push_back(applyStrategicMergePatch(wrapped, json::object()));
  for (const auto& r : results) {
    ASSERT_FALSE(r.isOk());
    EXPECT_EQ(r.status().code(), Code::kBadRequest);
    EXPECT_NE(r.status().message().find("nested too deeply"), std::string::npos);
  }
}

TEST(JsonPatchTest, Operations) {
  json doc = json::parse(R"({"metadata":{"labels":{"a":"1"}},"spec":{"replicas":1,
                             "containers":[{"name":"app","image":"nginx:1"}]}})");
  auto r = applyJsonPatch(doc, json::parse(R"([
    {"op":"test","path":"/spec/replicas","value":1},
    {"op":"replace","path":"/spec/replicas","value":3},
    {"op":"add","path":"/metadata/labels/b","value":"2"},
    {"op":"remove","path":"/metadata/labels/a"},
    {"op":"add","path":"/spec/containers/-","value":{"name":"side","image":"busybox"}},
    {"op":"copy","from":"/spec/containers/0/image","path":"/metadata/labels/img"},
    {"op":"move","from":"/metadata/labels/b","path":"/metadata/labels/c"}
  ])"));
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(*r, json::parse(R"({"metadata":{"labels":{"c":"2","img":"nginx:1"}},
      "spec":{"replicas":3,"containers":[{"name":"app","image":"nginx:1"},
                                          {"name":"side","image":"busybox"}]}})"));
}

TEST(JsonPatchTest, MalformedPatchIsBadRequest) {
  json doc = json::parse(R"({"a":1})");
  for (const char* p :
       {R"({"op":"add"})", R"([{"path":"/a"}])", R"([{"op":"frob","path":"/a"}])",
        R"([{"op":"add","path":"a","value":1}])", R"([1])", R"([{"op":"add","value":1}])"}) {
    auto r = applyJsonPatch(doc, json::parse(p));
    ASSERT_FALSE(r.isOk()) << p;
    EXPECT_EQ(r.status().code(), Code::kBadRequest) << p << ": " << r.status().message();
  }
}

TEST(JsonPatchTest, InapplicablePatchIsInvalid) {
  json doc = json::parse(R"({"a":1,"list":[1]})");
  for (const char* p :
       {R"([{"op":"test","path":"/a","value":2}])", R"([{"op":"remove","path":"/missing"}])",
        R"([{"op":"replace","path":"/missing","value":1}])",
        R"([{"op":"add","path":"/no/such/parent","value":1}])",
        R"([{"op":"add","path":"/list/5","value":1}])"}) {
    auto r = applyJsonPatch(doc, json::parse(p));
    ASSERT_FALSE(r.isOk()) << p;
    EXPECT_EQ(r.status().code(), Code::kInvalid) << p << ": " << r.status().message();
    EXPECT_NE(r.status().message().find("operation 0"), std::string::npos);
    EXPECT_EQ(r.status().message().find("[json.exception"), std::string::npos);
  }
  // The index of the failing operation is reported; earlier operations do not leak out.
  auto r = applyJsonPatch(doc, json::parse(R"([{"op":"replace","path":"/a","value":5},
                                                {"op":"test","path":"/a","value":1}])"));
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("operation 1"), std::string::npos);
  EXPECT_EQ(doc["a"], 1);
}

TEST(JsonPatchTest, CopyAmplificationIsLimited) {
  json doc = json::parse(R"({"a":[0,1,2,3,4,5,6,7,8,9]})");
  json patch = json::array();
  for (int i = 0; i < 40; ++i) {
    patch.push_back({{"op", "copy"}, {"from", "/a"}, {"path", "/a/-"}});
  }
  auto r = applyJsonPatch(doc, patch);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_NE(r.status().message().find("limit"), std::string::npos);
}

}  // namespace
}  // namespace ep::api
