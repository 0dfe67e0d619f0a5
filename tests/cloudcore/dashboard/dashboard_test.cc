#include "cloudcore/dashboard/dashboard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/digest/sha256.h"
#include "tests/testing/temp_dir.h"

namespace ep::dashboard {
namespace {

namespace fs = std::filesystem;

// A built dashboard in a temp dir: files plus the SHA256SUMS the build writes.
class DashboardTest : public ::testing::Test {
 protected:
  void put(const std::string& path, const std::string& body, bool listed = true) {
    fs::create_directories((fs::path(dir_.path()) / path).parent_path());
    std::ofstream(dir_.path() + "/" + path, std::ios::binary) << body;
    if (listed) sums_ += digest::sha256Of(body).substr(7) + "  " + path + "\n";
  }
  void writeSums() { std::ofstream(dir_.path() + "/SHA256SUMS") << sums_; }
  void writeDefault() {
    put("index.html", "<!doctype html><div id=\"app\"></div>");
    put("index.html.gz", "GZ-OF-INDEX");
    put("assets/index-abc.js", "console.log(1)");
    writeSums();
  }
  DashboardHandler handler() {
    auto assets = DashboardAssets::load(dir_.path());
    EXPECT_TRUE(assets.isOk()) << assets.status().toString();
    return DashboardHandler(std::move(*assets), "");
  }
  static http::ServerResponse get(const DashboardHandler& h, const std::string& path,
                                  std::map<std::string, std::string> headers = {}) {
    http::ServerRequest req;
    req.method = "GET";
    req.path = path;
    req.target = path;
    req.headers = std::move(headers);
    return h.handle(req);
  }
  static std::string header(const http::ServerResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  testing::TempDir dir_;
  std::string sums_;
};

TEST_F(DashboardTest, ServesFilesAndTheAppForEveryPagePath) {
  writeDefault();
  auto h = handler();
  auto js = get(h, "/ui/assets/index-abc.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, "console.log(1)");
  EXPECT_EQ(js.contentType, "text/javascript; charset=utf-8");
  EXPECT_EQ(header(js, "Cache-Control"), "public, max-age=31536000, immutable");
  for (const char* page :
       {"/ui/", "/ui/nodes", "/ui/nodes/edge-1.example.com", "/ui/login", "/ui/apps/default/web"}) {
    auto r = get(h, page);
    EXPECT_EQ(r.status, 200) << page;
    EXPECT_EQ(r.body, "<!doctype html><div id=\"app\"></div>") << page;
    EXPECT_EQ(r.contentType, "text/html; charset=utf-8") << page;
    EXPECT_EQ(header(r, "Cache-Control"), "no-cache") << page;
    EXPECT_NE(header(r, "Content-Security-Policy").find("frame-ancestors 'none'"),
              std::string::npos);
    EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  }
}

TEST_F(DashboardTest, MissingScriptsAndTopLevelFilesAre404NotThePage) {
  writeDefault();
  auto h = handler();
  EXPECT_EQ(get(h, "/ui/assets/gone-123.js").status, 404);
  EXPECT_EQ(get(h, "/ui/favicon.ico").status, 404);
  EXPECT_EQ(get(h, "/ui/../../etc/passwd").status, 404);
}

TEST_F(DashboardTest, GzipEtagRedirectAndMethods) {
  writeDefault();
  auto h = handler();
  auto gz = get(h, "/ui/", {{"accept-encoding", "gzip, deflate, br"}});
  EXPECT_EQ(gz.body, "GZ-OF-INDEX");
  EXPECT_EQ(header(gz, "Content-Encoding"), "gzip");
  EXPECT_EQ(header(gz, "Vary"), "Accept-Encoding");
  auto refused = get(h, "/ui/", {{"accept-encoding", "gzip;q=0, identity"}});
  EXPECT_EQ(refused.body, "<!doctype html><div id=\"app\"></div>");
  EXPECT_EQ(header(refused, "Content-Encoding"), "");
  for (const char* refuses :
       {"gzip;q=0.0", "gzip; q=0.000, br", "gzip;Q=0", "gzip;q=0\t", "identity", "br", "*;q=0"}) {
    EXPECT_EQ(header(get(h, "/ui/", {{"accept-encoding", refuses}}), "Content-Encoding"), "")
        << refuses;
  }
  for (const char* accepts : {"GZIP", "br, gzip;q=0.5", "*", "deflate, *;q=0.1", "x-gzip"}) {
    EXPECT_EQ(header(get(h, "/ui/", {{"accept-encoding", accepts}}), "Content-Encoding"), "gzip")
        << accepts;
  }
  // Each encoding has its own ETag.
  EXPECT_NE(header(gz, "ETag"), header(refused, "ETag"));
  EXPECT_EQ(
      get(h, "/ui/", {{"if-none-match", header(refused, "ETag")}, {"accept-encoding", "gzip"}})
          .status,
      200)
      << "the plain body's ETag does not validate the gzip one";
  // No .gz for this one: always the plain body.
  EXPECT_EQ(get(h, "/ui/assets/index-abc.js", {{"accept-encoding", "gzip"}}).body,
            "console.log(1)");

  const std::string etag = header(gz, "ETag");
  ASSERT_FALSE(etag.empty());
  auto notModified = get(h, "/ui/nodes", {{"if-none-match", etag}, {"accept-encoding", "gzip"}});
  EXPECT_EQ(notModified.status, 304);
  EXPECT_TRUE(notModified.body.empty());

  auto redirect = get(h, "/ui");
  EXPECT_EQ(redirect.status, 308);
  EXPECT_EQ(header(redirect, "Location"), "/ui/");

  http::ServerRequest post;
  post.method = "POST";
  post.path = "/ui/";
  auto r = h.handle(post);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "GET");
}

TEST_F(DashboardTest, HandlesOnlyItsPaths) {
  EXPECT_TRUE(DashboardHandler::handles("/ui"));
  EXPECT_TRUE(DashboardHandler::handles("/ui/"));
  EXPECT_TRUE(DashboardHandler::handles("/ui/nodes"));
  EXPECT_FALSE(DashboardHandler::handles("/uix"));
  EXPECT_FALSE(DashboardHandler::handles("/api/v1/nodes"));
  EXPECT_FALSE(DashboardHandler::handles("/"));
}

TEST_F(DashboardTest, WithoutFilesEveryAnswerIs503SayingWhy) {
  DashboardHandler h(std::nullopt, "its files are not installed (looked in /x)");
  auto r = get(h, "/ui/nodes");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("its files are not installed (looked in /x)"), std::string::npos);
}

// Data at rest is verified: a file changed after the build, a listed file missing, a path that
// leaves the directory, a malformed line: each refused with the file named.
TEST_F(DashboardTest, DamagedOrForeignFilesAreRefusedNamingTheFile) {
  writeDefault();
  std::ofstream(dir_.path() + "/assets/index-abc.js", std::ios::app) << "tampered";
  auto damaged = DashboardAssets::load(dir_.path());
  ASSERT_FALSE(damaged.isOk());
  EXPECT_NE(damaged.status().message().find("assets/index-abc.js does not match its digest"),
            std::string::npos)
      << damaged.status().message();

  fs::remove(dir_.path() + "/assets/index-abc.js");
  auto missing = DashboardAssets::load(dir_.path());
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("index-abc.js"), std::string::npos);

  std::ofstream(dir_.path() + "/SHA256SUMS") << std::string(64, 'a') << "  ../outside\n";
  auto escape = DashboardAssets::load(dir_.path());
  ASSERT_FALSE(escape.isOk());
  EXPECT_NE(escape.status().message().find("SHA256SUMS line 1: \"../outside\" is not a path"),
            std::string::npos)
      << escape.status().message();

  std::ofstream(dir_.path() + "/SHA256SUMS") << "not a digest line\n";
  auto malformed = DashboardAssets::load(dir_.path());
  ASSERT_FALSE(malformed.isOk());
  EXPECT_NE(malformed.status().message().find("line 1: expected \"SHA256  PATH\""),
            std::string::npos);

  fs::remove(dir_.path() + "/SHA256SUMS");
  auto none = DashboardAssets::load(dir_.path());
  ASSERT_FALSE(none.isOk());
  EXPECT_NE(none.status().message().find("SHA256SUMS"), std::string::npos);
}

TEST_F(DashboardTest, AListWithoutIndexHtmlIsRefused) {
  put("assets/a.js", "1");
  writeSums();
  auto r = DashboardAssets::load(dir_.path());
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("lists no index.html"), std::string::npos);
}

TEST_F(DashboardTest, DefaultDirectoriesAreNextToTheBinaryThenShare) {
  auto dirs = defaultAssetDirs("/usr/bin");
  ASSERT_EQ(dirs.size(), 2u);
  EXPECT_EQ(dirs[0], "/usr/bin/dashboard");
  EXPECT_EQ(dirs[1], "/usr/share/edgeplane/dashboard");
}

}  // namespace
}  // namespace ep::dashboard
