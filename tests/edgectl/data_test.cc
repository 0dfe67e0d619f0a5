#include "edgectl/data.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/edgectl/fake_api.h"

namespace ep::edgectl {
namespace {

using Json = nlohmann::json;
using testing::FakeApi;

TEST(DataPath, BuildsTheSubresourceQuery) {
  DataOptions o;
  o.args = {"thermometer-1"};
  EXPECT_EQ(*dataPath("default", o),
            "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermometer-1/data");
  o.args = {"device/thermometer-1"};
  o.property = "temperature";
  o.since = "10m";
  o.limit = 5;
  EXPECT_EQ(*dataPath("lab", o),
            "/apis/devices.kubeedge.io/v1beta1/namespaces/lab/devices/thermometer-1/data"
            "?property=temperature&sinceSeconds=600&limit=5");
  DataOptions r;
  r.args = {"rule/edge-to-cloud"};
  EXPECT_EQ(*dataPath("default", r),
            "/apis/rules.kubeedge.io/v1/namespaces/default/rules/edge-to-cloud/data");
  r.args = {"node/edge-1"};
  EXPECT_EQ(*dataPath("default", r), "/api/v1/nodes/edge-1/data");
}

TEST(DataPath, RejectsBadArgumentsNamingThem) {
  DataOptions o;
  EXPECT_FALSE(dataPath("d", o).isOk());
  o.args = {"pod/web"};
  EXPECT_NE(dataPath("d", o).status().message().find("only devices, rules and nodes"),
            std::string::npos);
  o.args = {"thermometer-1"};
  o.since = "soon";
  EXPECT_NE(dataPath("d", o).status().message().find("--since"), std::string::npos);
  o.since = "";
  o.output = "yaml";
  EXPECT_NE(dataPath("d", o).status().message().find("--output"), std::string::npos);
  o.output = "";
  o.limit = 20000;
  EXPECT_NE(dataPath("d", o).status().message().find("--limit"), std::string::npos);
}

Json answer() {
  return {
      {"kind", "DeviceData"},
      {"items",
       {{{"property", "temperature"}, {"timestamp", "2026-12-04T10:00:00.123Z"}, {"value", "21.5"}},
        {{"property", "label"}, {"timestamp", "2026-12-04T10:00:01.000Z"}, {"value", "a,\"b\""}}}}};
}

TEST(FormatData, TableCsvAndJson) {
  DataOptions o;
  auto table = formatData(answer(), o);
  ASSERT_TRUE(table.isOk());
  EXPECT_EQ(*table,
            "PROPERTY      TIMESTAMP                  VALUE\n"
            "temperature   2026-12-04T10:00:00.123Z   21.5\n"
            "label         2026-12-04T10:00:01.000Z   a,\"b\"\n");
  o.output = "csv";
  EXPECT_EQ(*formatData(answer(), o),
            "property,timestamp,value\n"
            "temperature,2026-12-04T10:00:00.123Z,21.5\n"
            "label,2026-12-04T10:00:01.000Z,\"a,\"\"b\"\"\"\n");
  o.output = "json";
  EXPECT_EQ(Json::parse(*formatData(answer(), o)), answer());
  o.output = "";
  EXPECT_FALSE(formatData(Json::object(), o).isOk());
}

TEST(RunData, PrintsTheServersAnswerOrItsError) {
  FakeApi api;
  std::ostringstream out, err;
  Context ctx;
  ctx.api = &api;
  ctx.out = &out;
  ctx.err = &err;
  ctx.ns = "default";
  const std::string path =
      "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermometer-1/data";
  api.overrides["GET " + path] = ApiResponse{200, answer(), answer().dump()};
  DataOptions o;
  o.args = {"thermometer-1"};
  EXPECT_EQ(runData(ctx, o), 0);
  EXPECT_NE(out.str().find("21.5"), std::string::npos);
  Json empty = {{"kind", "DeviceData"}, {"items", Json::array()}};
  api.overrides["GET " + path] = ApiResponse{200, empty, empty.dump()};
  out.str("");
  EXPECT_EQ(runData(ctx, o), 0);
  EXPECT_EQ(out.str(), "");
  EXPECT_NE(err.str().find("No data found"), std::string::npos);
  Json notFound = {{"kind", "Status"},
                   {"status", "Failure"},
                   {"message", "devices.devices.kubeedge.io \"thermometer-1\" not found"},
                   {"reason", "NotFound"},
                   {"code", 404}};
  api.overrides["GET " + path] = ApiResponse{404, notFound, notFound.dump()};
  EXPECT_EQ(runData(ctx, o), 1);
  EXPECT_NE(err.str().find("not found"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace ep::edgectl
