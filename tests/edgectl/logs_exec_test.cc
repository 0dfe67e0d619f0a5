#include "edgectl/logs_exec.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/edgectl/fake_api.h"

namespace ep::edgectl {
namespace {

using testing::FakeApi;

struct Harness {
  FakeApi api;
  std::ostringstream out, err;
  Context ctx() {
    Context c;
    c.api = &api;
    c.out = &out;
    c.err = &err;
    c.ns = "edge";
    return c;
  }
};

TEST(LogsPath, BuildsKubernetesQuery) {
  LogsOptions o;
  o.args = {"web"};
  EXPECT_EQ(*logsPath("default", o), "/api/v1/namespaces/default/pods/web/log");
  o.args = {"pod/web"};
  o.container = "app";
  o.follow = true;
  o.tail = 10;
  o.previous = true;
  o.timestamps = true;
  o.since = "2m";
  o.limitBytes = 100;
  EXPECT_EQ(*logsPath("ns1", o),
            "/api/v1/namespaces/ns1/pods/web/log?container=app&follow=true&tailLines=10&"
            "previous=true&timestamps=true&sinceSeconds=120&limitBytes=100");
}

TEST(LogsPath, RejectsBadArguments) {
  LogsOptions o;
  EXPECT_FALSE(logsPath("d", o).isOk());
  o.args = {"a", "b"};
  EXPECT_FALSE(logsPath("d", o).isOk());
  o.args = {"deploy/web"};
  EXPECT_FALSE(logsPath("d", o).isOk());
  o.args = {"web"};
  o.since = "soon";
  EXPECT_FALSE(logsPath("d", o).isOk());
  o.since = "";
  o.tail = -5;
  EXPECT_FALSE(logsPath("d", o).isOk());
}

TEST(ExecPath, RepeatsCommandAndEncodes) {
  ExecOptions o;
  o.args = {"web", "sh", "-c", "echo a&b"};
  o.container = "app";
  EXPECT_EQ(*execPath("default", o),
            "/api/v1/namespaces/default/pods/web/exec?stdout=true&stderr=true&container=app&"
            "command=sh&command=-c&command=echo%20a%26b");
  o.args = {"web"};
  EXPECT_FALSE(execPath("default", o).isOk());
  o.args = {};
  EXPECT_FALSE(execPath("default", o).isOk());
}

TEST(RunLogs, PrintsTheBodyAndServerErrors) {
  Harness r;
  r.api.overrides["GET /api/v1/namespaces/edge/pods/web/log"] = {200, nullptr, "a\nb\n"};
  LogsOptions o;
  o.args = {"web"};
  auto ctx = r.ctx();
  EXPECT_EQ(runLogs(ctx, o), 0);
  EXPECT_EQ(r.out.str(), "a\nb\n");
  Harness bad;
  nlohmann::json status = {{"kind", "Status"},
                           {"status", "Failure"},
                           {"reason", "BadRequest"},
                           {"code", 400},
                           {"message", "container x is not valid for pod web"}};
  bad.api.overrides["GET /api/v1/namespaces/edge/pods/web/log?container=x"] = {400, status,
                                                                               status.dump()};
  o.container = "x";
  auto ctx2 = bad.ctx();
  EXPECT_EQ(runLogs(ctx2, o), 1);
  EXPECT_NE(bad.err.str().find("container x is not valid for pod web"), std::string::npos);
}

TEST(RunLogs, FollowStreamsLines) {
  Harness r;
  r.api.overrides["GET /api/v1/namespaces/edge/pods/web/log?follow=true"] = {200, nullptr,
                                                                             "one\ntwo\n"};
  LogsOptions o;
  o.args = {"web"};
  o.follow = true;
  auto ctx = r.ctx();
  EXPECT_EQ(runLogs(ctx, o), 0);
  EXPECT_EQ(r.out.str(), "one\ntwo\n");
}

TEST(RunExec, SplitsOutputAndReturnsTheExitCode) {
  Harness r;
  nlohmann::json answer = {{"stdout", "out\n"}, {"stderr", "err\n"}, {"exitCode", 3}};
  r.api.overrides
      ["POST /api/v1/namespaces/edge/pods/web/exec?stdout=true&stderr=true&command=false"] = {
      200, answer, answer.dump()};
  ExecOptions o;
  o.args = {"web", "false"};
  auto ctx = r.ctx();
  EXPECT_EQ(runExec(ctx, o), 3);
  EXPECT_EQ(r.out.str(), "out\n");
  EXPECT_EQ(r.err.str(), "err\ncommand terminated with exit code 3\n");
}

}  // namespace
}  // namespace ep::edgectl
