#include "common/api/label_selector.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::api {
namespace {

using nlohmann::json;
using Labels = std::map<std::string, std::string>;

LabelSelector mustParse(std::string_view text) {
  auto r = parseLabelSelector(text);
  EXPECT_TRUE(r.isOk()) << text << ": " << r.status().toString();
  return r.isOk() ? *r : LabelSelector::nothing();
}

TEST(LabelSelectorParseTest, EmptySelectsEverything) {
  for (std::string_view s : {"", "   ", "\t"}) {
    auto sel = mustParse(s);
    EXPECT_TRUE(sel.empty());
    EXPECT_TRUE(sel.matches({}));
    EXPECT_TRUE(sel.matches({{"a", "b"}}));
    EXPECT_EQ(sel.toString(), "");
  }
}

TEST(LabelSelectorParseTest, Equality) {
  for (std::string_view s : {"app=web", "app==web", " app = web ", "app ==web"}) {
    auto sel = mustParse(s);
    ASSERT_EQ(sel.requirements().size(), 1u) << s;
    EXPECT_EQ(sel.requirements()[0].op, LabelOp::kEquals);
    EXPECT_TRUE(sel.matches({{"app", "web"}}));
    EXPECT_FALSE(sel.matches({{"app", "db"}}));
    EXPECT_FALSE(sel.matches({}));
    EXPECT_EQ(sel.toString(), "app=web");
  }
}

TEST(LabelSelectorParseTest, Inequality) {
  auto sel = mustParse("app!=web");
  EXPECT_FALSE(sel.matches({{"app", "web"}}));
  EXPECT_TRUE(sel.matches({{"app", "db"}}));
  EXPECT_TRUE(sel.matches({}));  // missing label satisfies !=
  EXPECT_EQ(sel.toString(), "app!=web");
}

TEST(LabelSelectorParseTest, SetOperators) {
  auto in = mustParse("env in (prod, staging)");
  EXPECT_TRUE(in.matches({{"env", "prod"}}));
  EXPECT_TRUE(in.matches({{"env", "staging"}}));
  EXPECT_FALSE(in.matches({{"env", "dev"}}));
  EXPECT_FALSE(in.matches({}));
  EXPECT_EQ(in.toString(), "env in (prod,staging)");

  auto notin = mustParse("env notin (dev)");
  EXPECT_FALSE(notin.matches({{"env", "dev"}}));
  EXPECT_TRUE(notin.matches({{"env", "prod"}}));
  EXPECT_TRUE(notin.matches({}));
  EXPECT_EQ(notin.toString(), "env notin (dev)");

  // Values are sorted and de-duplicated; tight spacing works.
  EXPECT_EQ(mustParse("env in(b,a,b)").toString(), "env in (a,b)");
}

TEST(LabelSelectorParseTest, EmptyValuesInSets) {
  // As in Kubernetes, an empty slot is the empty value.
  auto sel = mustParse("a in ()");
  EXPECT_TRUE(sel.matches({{"a", ""}}));
  EXPECT_FALSE(sel.matches({{"a", "x"}}));
  EXPECT_EQ(mustParse("a in (x,)").toString(), "a in (,x)");
  auto eqEmpty = mustParse("a=");
  EXPECT_TRUE(eqEmpty.matches({{"a", ""}}));
  EXPECT_FALSE(eqEmpty.matches({}));
}

TEST(LabelSelectorParseTest, ExistenceAndComposition) {
  auto sel = mustParse("tier,!canary, app in (web,api),version!=v1");
  ASSERT_EQ(sel.requirements().size(), 4u);
  EXPECT_TRUE(sel.matches({{"tier", "fe"}, {"app", "web"}, {"version", "v2"}}));
  EXPECT_FALSE(sel.matches({{"tier", "fe"}, {"app", "web"}, {"canary", "true"}}));
  EXPECT_FALSE(sel.matches({{"app", "web"}}));
  EXPECT_FALSE(sel.matches({{"tier", "fe"}, {"app", "db"}}));
  EXPECT_FALSE(sel.matches({{"tier", "fe"}, {"app", "api"}, {"version", "v1"}}));
  // Sorted by key.
  EXPECT_EQ(sel.toString(), "app in (api,web),!canary,tier,version!=v1");
  // The canonical string parses back to an equivalent selector.
  EXPECT_EQ(mustParse(sel.toString()).toString(), sel.toString());
}

TEST(LabelSelectorParseTest, QualifiedKeysAndKeywordsAsValues) {
  auto sel = mustParse("app.kubernetes.io/name=in,x in (notin,in)");
  EXPECT_TRUE(sel.matches({{"app.kubernetes.io/name", "in"}, {"x", "notin"}}));
}

TEST(LabelSelectorParseTest, ErrorsNameTheOffendingPart) {
  struct Case {
    const char* input;
    const char* expect;
  };
  for (const Case& c : std::vector<Case>{
           {"a in x", "'x'"},
           {"a in (x", "end of string"},
           {"a in (x y)", "'y'"},
           {"a=b,", "after ','"},
           {",a", "','"},
           {"a b", "'b'"},
           {"a=b=c", "'='"},
           {"!", "end of string"},
           {"a>1", "'>'"},
           {"bad key=x", "'key'"},
           {"Bad_/x=y", "Bad_"},
           {"a=b c", "'c'"},
           {"a=-bad", "\"-bad\""},
           {"a in (ok,-bad)", "\"-bad\""},
           {"(a)", "'('"},
       }) {
    auto r = parseLabelSelector(c.input);
    ASSERT_FALSE(r.isOk()) << c.input;
    EXPECT_EQ(r.status().code(), Code::kBadRequest);
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.input << " -> " << r.status().message();
  }
}

TEST(LabelSelectorParseTest, KeyTooLong) {
  auto r = parseLabelSelector(std::string(64, 'a') + "=b");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("no more than 63"), std::string::npos);
}

TEST(LabelSelectorJsonTest, MatchLabelsAndExpressions) {
  auto sel = labelSelectorFromJson(json::parse(R"({
    "matchLabels": {"app": "web"},
    "matchExpressions": [
      {"key": "env", "operator": "In", "values": ["prod", "staging"]},
      {"key": "canary", "operator": "DoesNotExist"},
      {"key": "tier", "operator": "Exists"},
      {"key": "zone", "operator": "NotIn", "values": ["z1"]}
    ]})"),
                                   "spec.selector");
  ASSERT_TRUE(sel.isOk()) << sel.status().toString();
  EXPECT_TRUE(sel->matches({{"app", "web"}, {"env", "prod"}, {"tier", "x"}, {"zone", "z2"}}));
  EXPECT_FALSE(sel->matches({{"app", "web"}, {"env", "prod"}, {"tier", "x"}, {"zone", "z1"}}));
  EXPECT_FALSE(sel->matches({{"app", "web"}, {"env", "prod"}}));
  EXPECT_FALSE(sel->matches({{"app", "web"}, {"env", "prod"}, {"tier", "x"}, {"canary", "1"}}));
  EXPECT_EQ(sel->toString(), "app=web,!canary,env in (prod,staging),tier,zone notin (z1)");
}

TEST(LabelSelectorJsonTest, EmptyAndNull) {
  auto everything = labelSelectorFromJson(json::object());
  ASSERT_TRUE(everything.isOk());
  EXPECT_TRUE(everything->empty());
  EXPECT_TRUE(everything->matches({{"x", "y"}}));

  auto nothing = labelSelectorFromJson(json(nullptr));
  ASSERT_TRUE(nothing.isOk());
  EXPECT_FALSE(nothing->empty());
  EXPECT_TRUE(nothing->matchesNothing());
  EXPECT_FALSE(nothing->matches({}));
  EXPECT_FALSE(nothing->matches({{"x", "y"}}));
}

TEST(LabelSelectorJsonTest, ErrorsNameFieldPaths) {
  auto r = labelSelectorFromJson(
      json::parse(R"({"matchExpressions": [{"key": "a", "operator": "Foo"}]})"), "spec.selector");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_EQ(r.status().message().rfind(
                "spec.selector.matchExpressions[0].operator: Unsupported value: \"Foo\"", 0),
            0u)
      << r.status().message();

  auto errs = validateLabelSelectorJson(json::parse(R"({
    "matchLabels": {"bad key": "v", "ok": "-bad", "num": 3},
    "matchExpressions": [
      {"key": "a", "operator": "In"},
      {"key": "b", "operator": "Exists", "values": ["x"]},
      {"operator": "Exists"},
      "str",
      {"key": "c", "operator": "In", "values": [1]}
    ]})"),
                                        "spec.selector");
  std::vector<std::string> fields;
  for (const auto& e : errs) fields.push_back(e.field + " " + e.reason);
  EXPECT_EQ(fields, (std::vector<std::string>{
                        "spec.selector.matchLabels FieldValueInvalid",
                        "spec.selector.matchLabels[num] FieldValueTypeInvalid",
                        "spec.selector.matchLabels FieldValueInvalid",
                        "spec.selector.matchExpressions[0].values FieldValueRequired",
                        "spec.selector.matchExpressions[1].values FieldValueForbidden",
                        "spec.selector.matchExpressions[2].key FieldValueRequired",
                        "spec.selector.matchExpressions[3] FieldValueTypeInvalid",
                        "spec.selector.matchExpressions[4].values[0] FieldValueTypeInvalid",
                    }));
  EXPECT_EQ(errs[3].message,
            "spec.selector.matchExpressions[0].values: Required value: must be specified when "
            "`operator` is 'In' or 'NotIn'");

  auto notObject = labelSelectorFromJson(json("app=web"), "spec.selector");
  ASSERT_FALSE(notObject.isOk());
  EXPECT_EQ(notObject.status().message(),
            "spec.selector: Invalid value: \"app=web\": must be an object");
}

TEST(LabelSelectorJsonTest, WithoutPrefix) {
  auto r = labelSelectorFromJson(json::parse(R"({"matchLabels": {"a": 1}})"));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(), "matchLabels[a]: Invalid value: 1: must be a string");
}

TEST(LabelValidationTest, KeysAndValues) {
  EXPECT_TRUE(validateLabelKey("app.kubernetes.io/name").isOk());
  EXPECT_TRUE(validateLabelValue("").isOk());
  EXPECT_TRUE(validateLabelValue("v1.0").isOk());
  Status s = validateLabelKey("bad key");
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_NE(s.message().find("\"bad key\""), std::string::npos);
  EXPECT_FALSE(validateLabelKey("").isOk());
  EXPECT_FALSE(validateLabelValue(std::string(64, 'v')).isOk());
  EXPECT_FALSE(validateLabelValue("a b").isOk());
}

TEST(LabelSelectorTest, ConstructedSelectorsSortRequirements) {
  LabelSelector sel({{"z", LabelOp::kExists, {}}, {"a", LabelOp::kIn, {"y", "x", "y"}}});
  EXPECT_EQ(sel.toString(), "a in (x,y),z");
  EXPECT_TRUE(sel.matches({{"a", "x"}, {"z", ""}}));
}

// Kubernetes' filtered watch: objects entering the selection are ADDED, leaving it DELETED.
TEST(FilteredWatchEventTypeTest, FollowsObjectsInAndOutOfTheSelection) {
  // created
  EXPECT_EQ(filteredWatchEventType(false, false, true), "ADDED");
  EXPECT_EQ(filteredWatchEventType(false, false, false), "");
  // modified
  EXPECT_EQ(filteredWatchEventType(false, true, true), "MODIFIED");
  EXPECT_EQ(filteredWatchEventType(false, true, false), "DELETED");
  // deleted: whatever the last version would match now
  EXPECT_EQ(filteredWatchEventType(true, true, true), "DELETED");
  EXPECT_EQ(filteredWatchEventType(true, true, false), "DELETED");
  EXPECT_EQ(filteredWatchEventType(true, false, true), "");
  EXPECT_EQ(filteredWatchEventType(true, false, false), "");
}

}  // namespace
}  // namespace ep::api
