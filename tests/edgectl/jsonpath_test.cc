// edgectl's JSONPath templates against what kubectl 1.32 prints for the same template and
// object (the expectations were taken from `kubectl ... -o jsonpath=`), and the errors it
// gives.
#include "edgectl/jsonpath.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::edgectl {
namespace {

using nlohmann::json;

// kubectl's documentation example (reference/kubectl/jsonpath), plus a Ready condition.
const json kDoc = json::parse(R"({
  "kind": "List",
  "items": [
    {"kind": "None",
     "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
     "status": {"capacity": {"cpu": "4"},
                "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}],
                "conditions": [{"type": "Ready", "status": "True"}]}},
    {"kind": "None",
     "metadata": {"name": "127.0.0.2"},
     "status": {"capacity": {"cpu": "8"},
                "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.2"},
                              {"type": "another", "address": "127.0.0.3"}],
                "conditions": [{"type": "Ready", "status": "False"}]}}
  ],
  "users": [
    {"name": "myself", "user": {}},
    {"name": "e2e", "user": {"username": "admin", "password": "secret"}}
  ],
  "spec": {"replicas": 3, "ratio": 0.5, "paused": false, "note": null}
})");

std::string run(const std::string& tmpl, const json& doc = kDoc) {
  auto t = JsonPathTemplate::parse(tmpl);
  if (!t.isOk()) return "parse error: " + t.status().message();
  auto out = t->execute(doc);
  if (!out.isOk()) return "error: " + out.status().message();
  return *out;
}

TEST(JsonPathTest, FieldsTextAndCurrentObject) {
  EXPECT_EQ(run("kind is {.kind}"), "kind is List");
  EXPECT_EQ(run("{['kind']}"), "List");
  EXPECT_EQ(run("{$.kind}"), "List");
  EXPECT_EQ(run("{.items[0].metadata.labels.kubernetes\\.io/hostname}"), "127.0.0.1");
  // Inside ['...'] dots separate fields too, unless escaped.
  EXPECT_EQ(run("{.items[0].metadata.labels['kubernetes\\.io/hostname']}"), "127.0.0.1");
  EXPECT_EQ(run("{.items[0].metadata.labels['kubernetes.io/hostname']}"), "");
  EXPECT_EQ(run("{.items[0]['metadata.name']}"), "127.0.0.1");
  EXPECT_EQ(run("{@}", json{{"a", 1}}), "{\"a\":1}");
  EXPECT_EQ(run("a}b{.kind}"), "a}bList");
}

TEST(JsonPathTest, ValuesPrintAsKubectlPrintsThem) {
  EXPECT_EQ(run("{.spec.replicas}"), "3");
  EXPECT_EQ(run("{.spec.ratio}"), "0.5");
  EXPECT_EQ(run("{.spec.paused}"), "false");
  EXPECT_EQ(run("{.spec.note}"), "null");
  EXPECT_EQ(run("{.items[0].status.capacity}"), "{\"cpu\":\"4\"}");
  EXPECT_EQ(run("{.users[0].user}"), "{}");
  EXPECT_EQ(run("{.items[1].status.addresses[*].type}"), "LegacyHostIP another");
}

TEST(JsonPathTest, WildcardsRecursionSlicesAndUnions) {
  EXPECT_EQ(run("{.items[*].metadata.name}"), "127.0.0.1 127.0.0.2");
  EXPECT_EQ(run("{..name}"), "127.0.0.1 127.0.0.2 myself e2e");
  EXPECT_EQ(run("{.users[0].name}"), "myself");
  EXPECT_EQ(run("{.users[-1].name}"), "e2e");
  EXPECT_EQ(run("{.users[-1:].name}"), "e2e");
  EXPECT_EQ(run("{.users[0:0].name}"), "");
  EXPECT_EQ(run("{.items[::2].metadata.name}"), "127.0.0.1");
  EXPECT_EQ(run("{.users[0,1].name}"), "myself e2e");
  // A union gives each member's results in turn (kubectl's documentation example).
  EXPECT_EQ(run("{.items[*]['metadata.name', 'status.capacity']}"),
            "127.0.0.1 127.0.0.2 {\"cpu\":\"4\"} {\"cpu\":\"8\"}");
  EXPECT_EQ(run("{.items[*].metadata['name','labels']}"),
            "127.0.0.1 127.0.0.2 {\"kubernetes.io/hostname\":\"127.0.0.1\"}");
  EXPECT_EQ(run("{.items[0].status.capacity.*}"), "4");
}

TEST(JsonPathTest, Filters) {
  EXPECT_EQ(run("{.users[?(@.name==\"e2e\")].user.password}"), "secret");
  EXPECT_EQ(run("{.users[?(@.name=='e2e')].user.password}"), "secret");
  EXPECT_EQ(run("{.items[*].status.conditions[?(@.type==\"Ready\")].status}"), "True False");
  EXPECT_EQ(run("{.users[?(@.user.password)].name}"), "e2e");
  EXPECT_EQ(run("{.users[?(@.name!=\"e2e\")].name}"), "myself");
  EXPECT_EQ(run("{.users[?(@.nope==\"x\")].name}"), "");
  json nums = json::parse(R"({"a":[{"n":1},{"n":2.5},{"n":3},{"n":"3"}]})");
  EXPECT_EQ(run("{.a[?(@.n>=2.5)].n}", nums), "2.5 3");
  EXPECT_EQ(run("{.a[?(@.n<2)].n}", nums), "1");
  EXPECT_EQ(run("{.a[?(@.n==3)].n}", nums), "3");
  EXPECT_EQ(run("{.a[?(@.n==\"3\")].n}", nums), "3");
}

TEST(JsonPathTest, RangeAndQuotedText) {
  EXPECT_EQ(run("{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}"),
            "[127.0.0.1, {\"cpu\":\"4\"}] [127.0.0.2, {\"cpu\":\"8\"}] ");
  EXPECT_EQ(run("{range .items[*]}{.metadata.name}{'\\t'}{end}"), "127.0.0.1\t127.0.0.2\t");
  EXPECT_EQ(run("{range .items[*]}{.metadata.name}{\"\\n\"}{end}"), "127.0.0.1\n127.0.0.2\n");
  // Nested ranges, and $ reaching the root from inside one.
  EXPECT_EQ(run("{range .items[*]}{range .status.addresses[*]}{.address}/{$.kind} {end}{end}"),
            "127.0.0.1/List 127.0.0.2/List 127.0.0.3/List ");
  // A range over one array value iterates once, as kubectl does.
  EXPECT_EQ(run("{range .users}<{@}>{end}"),
            "<[{\"name\":\"myself\",\"user\":{}},{\"name\":\"e2e\",\"user\":{\"password\":"
            "\"secret\",\"username\":\"admin\"}}]>");
  // kubectl accepts a range the template ends without {end}.
  EXPECT_EQ(run("{range .users[*]}{.name}"), "myselfe2e");
}

TEST(JsonPathTest, MissingKeysPrintNothing) {
  EXPECT_EQ(run("{.nope}"), "");
  EXPECT_EQ(run("{.nope[0]}"), "");
  EXPECT_EQ(run("{.kind.x}"), "");
  EXPECT_EQ(run("<{.nope}>"), "<>");
}

TEST(JsonPathTest, ExecutionErrorsAsKubectlWordsThem) {
  EXPECT_EQ(run("{.users[5]}"), "error: array index out of bounds: index 5, length 2");
  EXPECT_EQ(run("{.users[0:5]}"), "error: array index out of bounds: index 4, length 2");
  EXPECT_EQ(run("{.users[-3]}"), "error: array index out of bounds: index -1, length 2");
  EXPECT_EQ(run("{.spec.replicas[0]}"), "error: int64 is not array or slice");
  EXPECT_EQ(run("{.kind[?(@.a)]}"), "error: string is not array or slice and cannot be filtered");
  EXPECT_EQ(run("{.users[::0]}"), "error: step must be > 0");
}

TEST(JsonPathTest, ParseErrorsSayWhere) {
  EXPECT_EQ(run("{.metadata.name"), "parse error: unclosed action at 15");
  EXPECT_EQ(run("{metadata}"), "parse error: unrecognized identifier metadata at 1");
  EXPECT_EQ(run("{.metadata[name]}"), "parse error: invalid array index name at 11");
  EXPECT_EQ(run("{end}"), "parse error: {end} without {range} at 5");
  EXPECT_EQ(run("{}"), "parse error: empty action at 1");
  EXPECT_EQ(run("{\"abc}"), "parse error: unterminated quoted string at 1");
  EXPECT_EQ(run("{.a[?(@.b==)]}"), "parse error: expected a value to compare with at 11");
  EXPECT_EQ(run("{.a[1}"), "parse error: unclosed '[' at 5");
  EXPECT_EQ(run("{\"\\0\"}"), "parse error: unknown escape \\0 at 2");
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "{range .a}";
  EXPECT_EQ(run(deep).rfind("parse error: ranges nested too deeply", 0), 0u) << run(deep);
}

TEST(JsonPathTest, OutputIsBounded) {
  // Nested ranges over recursive descent multiply: the executor stops at its limit.
  json wide = json::array();
  for (int i = 0; i < 2000; ++i) wide.push_back(json{{"x", std::string(100, 'a')}});
  auto t = JsonPathTemplate::parse("{range ..x}{range $..x}{range $..x}{@}{end}{end}{end}");
  ASSERT_TRUE(t.isOk());
  auto out = t->execute(wide);
  ASSERT_FALSE(out.isOk());
  EXPECT_NE(out.status().message().find("64 MiB"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace ep::edgectl
