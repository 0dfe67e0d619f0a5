#include "common/api/status_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/api/discovery.h"
#include "common/api/table.h"

namespace ep::api {
namespace {

using Json = nlohmann::json;

TEST(StatusJsonTest, CodesMapToHttpStatusAndReason) {
  EXPECT_EQ(httpStatusFor(Code::kInvalid), 422);
  EXPECT_EQ(httpStatusFor(Code::kAlreadyExists), 409);
  EXPECT_EQ(httpStatusFor(Code::kConflict), 409);
  EXPECT_EQ(httpStatusFor(Code::kExpired), 410);
  EXPECT_EQ(httpStatusFor(Code::kUnavailable), 503);
  EXPECT_STREQ(statusReasonFor(Code::kNotFound), "NotFound");
  EXPECT_STREQ(statusReasonFor(Code::kExpired), "Expired");
}

TEST(StatusJsonTest, StatusObjectCarriesDetailsAndCauses) {
  const KindInfo* deployments = findByResource("apps", "v1", "deployments");
  ASSERT_NE(deployments, nullptr);
  Status s =
      Status(Code::kInvalid, "bad").withCauses({{"spec.replicas", "FieldValueInvalid", "x"}});
  Json j = statusObject(s, deployments, "web");
  EXPECT_EQ(j["kind"], "Status");
  EXPECT_EQ(j["status"], "Failure");
  EXPECT_EQ(j["reason"], "Invalid");
  EXPECT_EQ(j["code"], 422);
  EXPECT_EQ(j["details"]["name"], "web");
  EXPECT_EQ(j["details"]["group"], "apps");
  EXPECT_EQ(j["details"]["kind"], "Deployment");  // Invalid names the kind, as the apiserver
  EXPECT_EQ(j["details"]["causes"][0]["field"], "spec.replicas");
  EXPECT_EQ(statusObject(Status(Code::kNotFound, "gone"), deployments, "web")["details"]["kind"],
            "deployments");  // the others the resource
  EXPECT_FALSE(statusObject(notFoundError("x")).contains("details"));
}

TEST(StatusJsonTest, Responses) {
  auto r = errorResponse(notFoundError("pods \"x\" not found"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Json::parse(r.body)["message"], "pods \"x\" not found");
  auto p = plainResponse(200, "ok");
  EXPECT_EQ(p.contentType, "text/plain; charset=utf-8");
  EXPECT_EQ(p.body, "ok");
}

TEST(TableJsonTest, RowsColumnsAndMetadata) {
  const KindInfo* cms = findByResource("", "v1", "configmaps");
  ASSERT_NE(cms, nullptr);
  Json cm = {{"kind", "ConfigMap"}, {"metadata", {{"name", "a"}}}, {"data", {{"k", "v"}}}};
  Json t = tableJson(*cms, {cm}, 0, "Metadata", "7", "tok", true);
  EXPECT_EQ(t["kind"], "Table");
  EXPECT_EQ(t["metadata"]["resourceVersion"], "7");
  EXPECT_EQ(t["metadata"]["continue"], "tok");
  EXPECT_FALSE(t["columnDefinitions"].empty());
  EXPECT_EQ(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
  Json bare = tableJson(*cms, {cm}, 0, "None", "", "", false);
  EXPECT_TRUE(bare["columnDefinitions"].empty());
  EXPECT_FALSE(bare["rows"][0].contains("object"));
  EXPECT_FALSE(bare["metadata"].contains("continue"));
  EXPECT_EQ(tableRowJson(*cms, cm, 0, "Object")["object"], cm);
}

TEST(DiscoveryTest, SplitPathAndGroup) {
  EXPECT_EQ(splitPath("/api//v1/pods/"), (std::vector<std::string>{"api", "v1", "pods"}));
  Json g = apiGroupJson("apps");
  EXPECT_EQ(g["preferredVersion"]["groupVersion"], "apps/v1");
}

}  // namespace
}  // namespace ep::api
