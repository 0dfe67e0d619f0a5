#include <gtest/gtest.h>

#include <thread>
#include <utility>

#include "common/http/client.h"
#include "common/thread_annotations.h"
#include "edgecore/localapi/local_api.h"
#include "edgecore/metamanager/metamanager.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::localapi {
namespace {

namespace tv1 = edgeplane::tunnel::v1;
using Json = nlohmann::json;
using ep::testing::eventually;

void put(tv1::Sync& s, const std::string& resource, const std::string& ns, const std::string& name,
         int64_t rev, Json labels = Json::object()) {
  auto* c = s.add_changes();
  c->set_op(tv1::Change::OP_PUT);
  c->set_resource(resource);
  c->set_namespace_(ns);
  c->set_name(name);
  c->set_revision(rev);
  Json meta = {{"name", name}, {"resourceVersion", std::to_string(rev)}, {"labels", labels}};
  if (!ns.empty()) meta["namespace"] = ns;
  meta["creationTimestamp"] = "2023-11-14T22:00:00Z";
  c->set_value(Json{{"apiVersion", "v1"},
                    {"kind", resource == "pods" ? "Pod" : "ConfigMap"},
                    {"metadata", meta},
                    {"spec", {{"nodeName", "edge-1"}}}}
                   .dump());
}

class LocalApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cache_.start().isOk());
    tv1::Sync s;
    s.set_revision(20);
    put(s, "pods", "default", "web", 11, {{"app", "web"}});
    put(s, "pods", "default", "db", 12, {{"app", "db"}});
    put(s, "pods", "other", "job", 13);
    put(s, "configmaps", "default", "cfg", 14);
    ASSERT_TRUE(cache_.applySync(s).isOk());
  }

  http::ServerResponse get(const std::string& path, std::map<std::string, std::string> query = {},
                           std::string accept = "", std::string method = "GET") {
    http::ServerRequest r;
    r.method = method;
    r.path = path;
    r.query = std::move(query);
    if (!accept.empty()) r.headers["accept"] = accept;
    return handler_.handle(r);
  }

  ep::testing::TempDir dir_;
  metamanager::MetaManager cache_{metamanager::MetaManagerOptions{dir_.path()}};
  FakeClock clock_;
  LocalApiHandler handler_{cache_, clock_, {}};
};

TEST_F(LocalApiTest, ListAndGet) {
  auto r = get("/api/v1/pods");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = Json::parse(r.body);
  EXPECT_EQ(j["kind"], "PodList");
  EXPECT_EQ(j["apiVersion"], "v1");
  EXPECT_EQ(j["metadata"]["resourceVersion"], "20");
  EXPECT_EQ(j["items"].size(), 3u);

  j = Json::parse(get("/api/v1/namespaces/default/pods").body);
  EXPECT_EQ(j["items"].size(), 2u);

  j = Json::parse(get("/api/v1/pods", {{"labelSelector", "app=web"}}).body);
  ASSERT_EQ(j["items"].size(), 1u);
  EXPECT_EQ(j["items"][0]["metadata"]["name"], "web");

  j = Json::parse(get("/api/v1/pods", {{"fieldSelector", "metadata.namespace=other"}}).body);
  ASSERT_EQ(j["items"].size(), 1u);
  EXPECT_EQ(j["items"][0]["metadata"]["name"], "job");

  r = get("/api/v1/pods", {{"labelSelector", "a in ("}});
  EXPECT_EQ(r.status, 400);

  r = get("/api/v1/namespaces/default/configmaps/cfg");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body)["metadata"]["name"], "cfg");

  r = get("/api/v1/namespaces/default/pods/nope");
  EXPECT_EQ(r.status, 404);
  j = Json::parse(r.body);
  EXPECT_EQ(j["kind"], "Status");
  EXPECT_EQ(j["reason"], "NotFound");
  EXPECT_EQ(j["details"]["name"], "nope");

  EXPECT_EQ(get("/api/v1/widgets").status, 404);
  EXPECT_EQ(get("/apis/devices.kubeedge.io/v1beta1/devices").status, 200);
  EXPECT_EQ(get("/healthz").status, 200);
  EXPECT_EQ(get("/readyz").status, 200);
  j = Json::parse(get("/status").body);
  EXPECT_EQ(j["cache"]["lastAppliedRevision"], 20);
}

TEST_F(LocalApiTest, WritesAreRefused) {
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE"}) {
    auto r = get("/api/v1/namespaces/default/pods/web", {}, "", m);
    EXPECT_EQ(r.status, 405) << m;
    auto j = Json::parse(r.body);
    EXPECT_EQ(j["reason"], "MethodNotAllowed");
    EXPECT_EQ(j["message"], "the edge local API is read-only");
  }
}

TEST_F(LocalApiTest, Table) {
  auto r = get("/api/v1/namespaces/default/pods", {},
               "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
  ASSERT_EQ(r.status, 200);
  auto j = Json::parse(r.body);
  EXPECT_EQ(j["kind"], "Table");
  EXPECT_EQ(j["columnDefinitions"][0]["name"], "Name");
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["cells"][0], "db");
  EXPECT_EQ(j["metadata"]["resourceVersion"], "20");
}

TEST_F(LocalApiTest, WatchInitialThenLive) {
  auto r = get("/api/v1/namespaces/default/pods", {{"watch", "1"}, {"labelSelector", "app"}});
  ASSERT_TRUE(r.stream);
  int wakes = 0;
  r.stream->setWake([&] { ++wakes; });
  bool finished = false;
  std::string out = r.stream->next(finished);
  EXPECT_FALSE(finished);
  EXPECT_NE(out.find("\"type\":\"ADDED\""), std::string::npos);
  EXPECT_NE(out.find("\"web\""), std::string::npos);
  EXPECT_NE(out.find("\"db\""), std::string::npos);

  tv1::Sync s;
  s.set_revision(21);
  put(s, "pods", "default", "web", 21, {{"app", "web2"}});
  put(s, "pods", "default", "nolabel", 21);  // filtered out
  put(s, "pods", "other", "x", 21);          // other namespace
  auto* d = s.add_changes();
  d->set_op(tv1::Change::OP_DELETE);
  d->set_resource("pods");
  d->set_namespace_("default");
  d->set_name("db");
  d->set_revision(21);
  ASSERT_TRUE(cache_.applySync(s).isOk());
  EXPECT_GE(wakes, 1);
  out = r.stream->next(finished);
  std::vector<Json> events;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    events.push_back(Json::parse(out.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  ASSERT_EQ(events.size(), 2u) << out;
  EXPECT_EQ(events[0]["type"], "MODIFIED");
  EXPECT_EQ(events[0]["object"]["metadata"]["labels"]["app"], "web2");
  EXPECT_EQ(events[1]["type"], "DELETED");
  EXPECT_EQ(events[1]["object"]["metadata"]["name"], "db");
  r.stream->close();
  out = r.stream->next(finished);
  EXPECT_TRUE(finished);

  // A specific resourceVersion other than the current one cannot be served.
  EXPECT_EQ(get("/api/v1/pods", {{"watch", "1"}, {"resourceVersion", "3"}}).status, 410);
  auto live = get("/api/v1/pods", {{"watch", "true"}, {"resourceVersion", "21"}});
  EXPECT_TRUE(live.stream);
}

// Through the real HTTP server: list, then a watch that sees a live change.
TEST_F(LocalApiTest, OverHttp) {
  http::ServerOptions so;
  so.port = 0;
  so.workerThreads = 2;
  LocalApi api(so, cache_, clock_, {.status = [] { return Json{{"tunnel", "fake"}}; }});
  ASSERT_TRUE(api.start().isOk());
  const std::string base = "http://127.0.0.1:" + std::to_string(api.port());
  http::HttpClient c(base);
  auto r = c.request("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
  ASSERT_TRUE(r.isOk());
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(Json::parse(r->body)["items"].size(), 1u);
  r = c.request("GET", "/status");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(Json::parse(r->body)["tunnel"], "fake");
  r = c.request("DELETE", "/api/v1/namespaces/default/pods/web");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 405);

  // The pod is created only once the watch's initial list has arrived, so it can only come
  // through the live watch.
  ep::Mutex mu;
  std::vector<std::pair<std::string, std::string>> events;  // type, name
  std::thread watcher([&] {
    http::HttpClient w(base);
    (void)w.stream("GET", "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=10",
                   [&](std::string_view line) {
                     Json e = Json::parse(line);
                     ep::MutexLock lock(mu);
                     events.emplace_back(e.value("type", ""),
                                         e["object"]["metadata"].value("name", ""));
                     return events.size() < 3;  // 2 initial ADDED + 1 live
                   });
  });
  auto count = [&] {
    ep::MutexLock lock(mu);
    return events.size();
  };
  EXPECT_TRUE(eventually([&] { return count() >= 2; }));  // (the watcher must be joined)
  tv1::Sync s;
  s.set_revision(30);
  put(s, "pods", "default", "new", 30);
  ASSERT_TRUE(cache_.applySync(s).isOk());
  watcher.join();
  ep::MutexLock lock(mu);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_NE(events[0].second, "new");
  EXPECT_NE(events[1].second, "new");
  EXPECT_EQ(events[2], std::make_pair(std::string("ADDED"), std::string("new")));
  api.stop();
}

}  // namespace
}  // namespace ep::edgecore::localapi
