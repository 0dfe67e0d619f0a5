#include "common/yaml/yaml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace ep::yaml {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json parseOne(std::string_view text) {
  auto r = parseYamlDocuments(text);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  if (!r || r->size() != 1) {
    ADD_FAILURE() << "expected exactly one document";
    return json();
  }
  return r->front();
}

TEST(ParseYamlTest, ScalarsFollowCoreSchema) {
  json v = parseOne(R"(
t1: true
t2: True
t3: TRUE
f1: false
n1: null
n2: ~
n3:
n4: Null
i1: 42
i2: -7
i3: 0x1F
i4: 0o17
i5: +3
fl1: 1.5
fl2: -2.0e3
fl3: .5
s1: yes
s2: "true"
s3: '42'
s4: 1.2.3
s5: nginx:1.25
s6: 0b101
big: 18446744073709551615
)");
  EXPECT_EQ(v["t1"], true);
  EXPECT_EQ(v["t2"], true);
  EXPECT_EQ(v["t3"], true);
  EXPECT_EQ(v["f1"], false);
  EXPECT_TRUE(v["n1"].is_null());
  EXPECT_TRUE(v["n2"].is_null());
  EXPECT_TRUE(v["n3"].is_null());
  EXPECT_TRUE(v["n4"].is_null());
  EXPECT_EQ(v["i1"], 42);
  EXPECT_TRUE(v["i1"].is_number_integer());
  EXPECT_EQ(v["i2"], -7);
  EXPECT_EQ(v["i3"], 31);
  EXPECT_EQ(v["i4"], 15);
  EXPECT_EQ(v["i5"], 3);
  EXPECT_DOUBLE_EQ(v["fl1"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(v["fl2"].get<double>(), -2000.0);
  EXPECT_DOUBLE_EQ(v["fl3"].get<double>(), 0.5);
  EXPECT_EQ(v["s1"], "yes");  // YAML 1.2: not a boolean
  EXPECT_EQ(v["s2"], "true");
  EXPECT_EQ(v["s3"], "42");
  EXPECT_EQ(v["s4"], "1.2.3");
  EXPECT_EQ(v["s5"], "nginx:1.25");
  EXPECT_EQ(v["s6"], "0b101");
  EXPECT_TRUE(v["big"].is_number_unsigned());
}

TEST(ParseYamlTest, BlockScalarsAndExplicitTagsAreStrings) {
  json v = parseOne("a: |\n  123\nb: >-\n  true\nc: !!str 12\nd: !!int \"12\"\n");
  EXPECT_EQ(v["a"], "123\n");
  EXPECT_EQ(v["b"], "true");
  EXPECT_EQ(v["c"], "12");
  EXPECT_EQ(v["d"], 12);
}

TEST(ParseYamlTest, MultipleDocumentsSkipEmptyOnes) {
  auto r = parseYamlDocuments("---\na: 1\n---\n---\n# only a comment\n---\nb: 2\n...\n");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0], json({{"a", 1}}));
  EXPECT_EQ((*r)[1], json({{"b", 2}}));
}

TEST(ParseYamlTest, EmptyInputGivesNoDocuments) {
  auto r = parseYamlDocuments("  \n\n");
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->empty());
}

TEST(ParseYamlTest, JsonInputAndListsAreExpanded) {
  auto r = parseYamlDocuments(R"({"kind":"List","apiVersion":"v1","items":[
    {"kind":"Pod","metadata":{"name":"a"}},
    {"kind":"Pod","metadata":{"name":"b"}}]})");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1]["metadata"]["name"], "b");

  auto y = parseYamlDocuments("kind: PodList\napiVersion: v1\nitems:\n- metadata: {name: x}\n");
  ASSERT_TRUE(y.isOk());
  ASSERT_EQ(y->size(), 1u);
  EXPECT_EQ((*y)[0]["metadata"]["name"], "x");
}

TEST(ParseYamlTest, JsonWithTabsParses) {
  auto r = parseYamlDocuments("{\n\t\"a\": [1, 2.5, \"x\", null, true]\n}\n");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ((*r)[0], json::parse(R"({"a":[1,2.5,"x",null,true]})"));
}

TEST(ParseYamlTest, DuplicateKeysAreRefusedWithPosition) {
  auto r = parseYamlDocuments("a: 1\n---\nmetadata:\n  name: x\n  name: y\n");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_THAT(r.status().message(), HasSubstr("document 1"));
  EXPECT_THAT(r.status().message(), HasSubstr("line 5, column 3"));
  EXPECT_THAT(r.status().message(), HasSubstr("duplicate key \"name\""));
}

TEST(ParseYamlTest, DuplicateKeysInJsonAreRefused) {
  auto r = parseYamlDocuments("{\"a\": 1, \"a\": 2}");
  ASSERT_FALSE(r.isOk());
  EXPECT_THAT(r.status().message(), HasSubstr("duplicate key \"a\""));
  EXPECT_THAT(r.status().message(), HasSubstr("document 0"));
}

TEST(ParseYamlTest, SyntaxErrorNamesDocumentAndLine) {
  auto r = parseYamlDocuments("a: 1\n---\nb: 2\n---\nc: [1, 2\nd: 3\n");
  ASSERT_FALSE(r.isOk());
  EXPECT_THAT(r.status().message(), HasSubstr("document 2: line"));
}

TEST(ParseYamlTest, AnchorsAliasesAndMergeKeys) {
  json v = parseOne(R"(
base: &b
  image: nginx
  port: 80
copy: *b
merged:
  <<: *b
  port: 8080
)");
  EXPECT_EQ(v["copy"], v["base"]);
  EXPECT_EQ(v["merged"]["image"], "nginx");
  EXPECT_EQ(v["merged"]["port"], 8080);
}

TEST(ParseYamlTest, NonStringKeysBecomeText) {
  json v = parseOne("1: a\ntrue: b\n");
  EXPECT_EQ(v["1"], "a");
  EXPECT_EQ(v["true"], "b");
}

TEST(ParseYamlTest, ComplexKeysAreRefused) {
  auto r = parseYamlDocuments("? [a, b]\n: c\n");
  ASSERT_FALSE(r.isOk());
  EXPECT_THAT(r.status().message(), HasSubstr("mapping keys must be scalars"));
}

TEST(ParseYamlTest, SingleDocumentHelper) {
  auto one = parseYamlDocument("server: http://127.0.0.1:6443\n");
  ASSERT_TRUE(one.isOk());
  EXPECT_EQ((*one)["server"], "http://127.0.0.1:6443");
  auto none = parseYamlDocument("");
  ASSERT_TRUE(none.isOk());
  EXPECT_TRUE(none->is_null());
  EXPECT_FALSE(parseYamlDocument("a: 1\n---\nb: 2\n").isOk());
}

TEST(ToYamlTest, KubectlLikeLayout) {
  json pod = json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {}},
    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                             "ports": [{"containerPort": 80}], "args": []}],
             "nodeSelector": {}}
  })");
  EXPECT_EQ(toYaml(pod),
            "apiVersion: v1\n"
            "kind: Pod\n"
            "metadata:\n"
            "  annotations: {}\n"
            "  labels:\n"
            "    app: web\n"
            "  name: web\n"
            "spec:\n"
            "  containers:\n"
            "  - args: []\n"
            "    image: nginx:1.25\n"
            "    name: nginx\n"
            "    ports:\n"
            "    - containerPort: 80\n"
            "  nodeSelector: {}\n");
}

TEST(ToYamlTest, QuotesAmbiguousStrings) {
  json v = {{"a", "true"},   {"b", "123"},       {"c", ""},     {"d", "yes"},
            {"e", "null"},   {"f", "a: b"},      {"g", "#x"},   {"h", " lead"},
            {"i", "it's"},   {"j", "tab\there"}, {"k", "1.5"},  {"l", "-"},
            {"m", "--port"}, {"n", "~"},         {"o", "0x10"}, {"p", "2024-01-01T00:00:00Z"},
            {"q", "\"hi\""}};
  std::string y = toYaml(v);
  EXPECT_THAT(y, HasSubstr("a: \"true\"\n"));
  EXPECT_THAT(y, HasSubstr("b: \"123\"\n"));
  EXPECT_THAT(y, HasSubstr("c: \"\"\n"));
  EXPECT_THAT(y, HasSubstr("d: \"yes\"\n"));
  EXPECT_THAT(y, HasSubstr("f: \"a: b\"\n"));
  EXPECT_THAT(y, HasSubstr("p: \"2024-01-01T00:00:00Z\"\n"));
  EXPECT_THAT(y, HasSubstr("q: \"\\\"hi\\\"\"\n"));
  EXPECT_THAT(y, HasSubstr("i: it's\n"));
  EXPECT_THAT(y, HasSubstr("j: \"tab\\there\"\n"));
  EXPECT_THAT(y, HasSubstr("m: --port\n"));
  EXPECT_THAT(toYaml(json{{"uid", "8a51d93f-77a0-41b9-9746-adc4fc5079f0"}}),
              HasSubstr("uid: 8a51d93f-77a0-41b9-9746-adc4fc5079f0\n"));
  EXPECT_THAT(toYaml(json{{"b", "0b101"}}), HasSubstr("b: \"0b101\"\n"));
}

TEST(ToYamlTest, MultiLineStringsUseBlockLiterals) {
  json v = {{"script", "echo a\necho b\n"}, {"nofinal", "x\ny"}, {"keep", "x\n\n"}};
  std::string y = toYaml(v);
  EXPECT_THAT(y, HasSubstr("script: |\n  echo a\n  echo b\n"));
  EXPECT_THAT(y, HasSubstr("nofinal: |-\n  x\n  y\n"));
  EXPECT_THAT(y, HasSubstr("keep: |+\n  x\n\n"));
}

TEST(ToYamlTest, ScalarsAndEmptyContainersAtTopLevel) {
  EXPECT_EQ(toYaml(json::object()), "{}\n");
  EXPECT_EQ(toYaml(json::array()), "[]\n");
  EXPECT_EQ(toYaml(json(5)), "5\n");
  EXPECT_EQ(toYaml(json("true")), "\"true\"\n");
  EXPECT_EQ(toYaml(json(nullptr)), "null\n");
  EXPECT_EQ(toYaml(json::parse("[[1,2],[3]]")), "- - 1\n  - 2\n- - 3\n");
}

// Regression (found by yaml_documents_fuzz): a key starting with a byte order mark was written
// plain; reading it back dropped the mark and took the rest ("# ...") for a comment.
TEST(ToYamlTest, ByteOrderMarksAreQuotedAndEscaped) {
  json doc = {{"\xEF\xBB\xBF# not a comment", nullptr}, {"v", "a\xEF\xBB\xBF"}};
  std::string y = toYaml(doc);
  EXPECT_THAT(y, HasSubstr("\"\\uFEFF# not a comment\": null"));
  auto back = parseYamlDocuments(y);
  ASSERT_TRUE(back.isOk()) << back.status().message();
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0], doc);
}

// Regression (found by yaml_documents_fuzz): a key longer than YAML's 1024-character limit for
// implicit keys was written as one, and reading it back failed ("illegal map value"). Such keys
// are written explicitly ("? key" / ": value"), with every kind of value, also in a list item.
TEST(ToYamlTest, KeysOverTheImplicitKeyLimitAreExplicit) {
  const std::string longKey(1500, 'k');
  json doc = {{longKey, 1},
              {longKey + "m", {{"nested", "v"}, {longKey + "n", {1, 2}}}},
              {longKey + "s", {"a", {{"b", 1}}}},
              {"list", {{{longKey, "first"}, {"x", {}}}}},
              {"short", "v"}};
  std::string y = toYaml(doc);
  EXPECT_THAT(y, HasSubstr("? " + longKey + "\n: 1\n"));
  auto back = parseYamlDocuments(y);
  ASSERT_TRUE(back.isOk()) << back.status().message() << "\n" << y;
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0], doc) << y;
}

// Regression (found by yaml_documents_fuzz): bytes that are not UTF-8 were accepted into keys;
// written back, a key starting with 0xFE 0xFF made the reader take the stream for UTF-16.
TEST(ParseYamlTest, InvalidUtf8AndControlCharactersAreRefusedWithTheirPosition) {
  auto r = parseYamlDocuments("# c\n!tag \xFE\xFF\xFF\xFFR env:\n  k: v\n");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_THAT(r.status().message(), HasSubstr("line 2, column 6: invalid UTF-8 (byte 0xFE)"));
  for (std::string bad : {"a: \xC0\xAF\n", "a: \xED\xA0\x80\n", "a: \xF4\x90\x80\x80\n",
                          "a: \xE2\x82\n", "{\"a\": \"\xFF\"}"}) {
    EXPECT_FALSE(parseYamlDocuments(bad).isOk()) << bad;
  }
  // Regression (found by yaml_documents_fuzz): "\x0B\0\0\0..." was read as UTF-32LE.
  auto ctl = parseYamlDocuments(std::string("\x0B\0\0\0\0\napiVersion: apps/v1\n", 24));
  ASSERT_FALSE(ctl.isOk());
  EXPECT_THAT(ctl.status().message(),
              HasSubstr("line 1, column 1: control character 0x0B (only tab, LF and CR"));
  auto nul = parseYamlDocuments(std::string("a: b\n\0", 6));
  ASSERT_FALSE(nul.isOk());
  EXPECT_THAT(nul.status().message(), HasSubstr("line 2, column 1: control character 0x00"));
  auto ok = parseYamlDocuments("a: \"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"\r\nb: \"x\ty\"\r\n");
  ASSERT_TRUE(ok.isOk()) << ok.status().message();
  EXPECT_EQ((*ok)[0]["a"], "h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ((*ok)[0]["b"], "x\ty");
}

// JSON has no NaN or infinity: as in Kubernetes, such values are refused (found by
// yaml_documents_fuzz: ".NAN" was stored as NaN and read back as null).
TEST(ParseYamlTest, NonFiniteNumbersAreRefused) {
  for (const char* bad : {"a: .inf\n", "a: -.Inf\n", "a:\n  b: .NaN\n", "a: 1e999\n",
                          "a: !!float .nan\n", "- .NAN\n"}) {
    auto r = parseYamlDocuments(bad);
    ASSERT_FALSE(r.isOk()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("is not a finite number")) << bad;
  }
  auto r = parseYamlDocuments("a:\n  b: .NaN\n");
  EXPECT_THAT(r.status().message(), HasSubstr("line 2, column 6"));
  auto quoted = parseYamlDocuments("a: \".inf\"\nb: '.nan'\n");
  ASSERT_TRUE(quoted.isOk()) << quoted.status().message();
  EXPECT_EQ((*quoted)[0]["a"], ".inf");
}

class RoundTripTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTripTest, ParsesBackEqual) {
  json original = json::parse(GetParam());
  std::string y = toYaml(original);
  auto back = parseYamlDocuments(y);
  ASSERT_TRUE(back.isOk()) << back.status().toString() << "\n" << y;
  if (original.is_null()) {
    EXPECT_TRUE(back->empty());
    return;
  }
  ASSERT_EQ(back->size(), 1u) << y;
  EXPECT_EQ(back->front(), original) << y;
}

INSTANTIATE_TEST_SUITE_P(
    Values, RoundTripTest,
    ::testing::Values(
        R"({"a":1,"b":-2,"c":1.25,"d":true,"e":null,"f":"s","g":[],"h":{}})",
        R"({"strings":["true","False","~","null","0o17","0x1f","1e3",".inf","-.5","+1","yes","on",
            "1_000","12:30","- x","-","---","...","a #b","a:","x: y","[a]","{b}","*ref","&a","!t",
            "%p","@a","`b","'q'","\"dq\"","|","> f","? k","<<"," ",""," a","b ","ü", "\u0001x"]})",
        R"({"multi":["a\nb","a\nb\n","a\nb\n\n","\nleading","  indented\nsecond","x\n  y\n",
            "trailing spaces  \nz","tab\tinside\nline","\ttab first\nline","cr\r\nlf"]})",
        R"({"nested":[{"a":[{"b":[[1,2],[]],"c":{}}]},[["x"]],{"d":{"e":{"f":"g"}}}]})",
        R"({"keys":{"true":1,"123":2,"":3,"a: b":4,"- x":5,"<<":6,"multi\nline":7}})",
        R"(["a",{"b":"c\nd"},["e"]])", R"("just a string")", R"(3.5)", R"(null)",
        R"({"big":18446744073709551615,"neg":-9223372036854775808,"f":1e100,"small":1e-7})"));

}  // namespace
}  // namespace ep::yaml
