// libFuzzer: cloudcore's dashboard file server on whatever a client sends (path, Accept-Encoding,
// If-None-Match, method; DashboardHandler, public and before authentication), and the
// SHA256SUMS it reads at start (DashboardAssets::load). Input: a selector byte, then fields split
// at '\n'. Checks that every 200 is a file of the built set (index.html for pages), that 304 and
// 308 have no body, and that load either fails with an error or holds only verified files: never
// a crash or memory out of proportion.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "cloudcore/dashboard/dashboard.h"
#include "common/digest/sha256.h"

namespace {

using namespace ep::dashboard;

const std::string kIndex = "<!doctype html><div id=\"app\"></div>";
const std::string kScript = "console.log(1)";

// A private directory under the system's temp dir, removed when the fuzzer exits.
std::string tempDir() {
  static const std::string dir = [] {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "ep-dashboard-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    static std::string made = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(made, ec);
    });
    return tmpl;
  }();
  return dir;
}

void write(const std::string& path, const std::string& body) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << body;
}

const DashboardHandler& handler() {
  static const DashboardHandler h = [] {
    const std::string dir = tempDir() + "/built";
    write(dir + "/index.html", kIndex);
    write(dir + "/index.html.gz", "GZ");
    write(dir + "/assets/a-1.js", kScript);
    write(dir + "/SHA256SUMS", ep::digest::sha256Of(kIndex).substr(7) + "  index.html\n" +
                                   ep::digest::sha256Of("GZ").substr(7) + "  index.html.gz\n" +
                                   ep::digest::sha256Of(kScript).substr(7) + "  assets/a-1.js\n");
    auto assets = DashboardAssets::load(dir);
    if (!assets.isOk()) std::abort();
    return DashboardHandler(std::move(*assets), "");
  }();
  return h;
}

std::vector<std::string> fields(std::string_view in, size_t n) {
  std::vector<std::string> out;
  while (out.size() + 1 < n) {
    size_t nl = in.find('\n');
    if (nl == std::string_view::npos) break;
    out.emplace_back(in.substr(0, nl));
    in.remove_prefix(nl + 1);
  }
  out.emplace_back(in);
  out.resize(n);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 4 != 0) {
    auto f = fields(in, 4);
    ep::http::ServerRequest req;
    req.method = data[0] % 4 == 3 ? f[3] : "GET";
    req.path = "/ui" + f[0];
    req.target = req.path;
    if (!DashboardHandler::handles(req.path)) return 0;  // main sends it only its own paths
    req.headers["accept-encoding"] = f[1];
    req.headers["if-none-match"] = f[2];
    auto r = handler().handle(req);
    const bool known = r.body.empty() || r.body == kIndex || r.body == "GZ" || r.body == kScript ||
                       r.status >= 300;
    if (!known) std::abort();
    if ((r.status == 304 || r.status == 308) && !r.body.empty()) std::abort();
    if (r.status == 200 && r.body.empty()) std::abort();
    return 0;
  }
  // SHA256SUMS as the fuzzer writes it, next to two real files.
  const std::string dir = tempDir() + "/load";
  static const bool once = [&] {
    write(dir + "/index.html", kIndex);
    write(dir + "/assets/a-1.js", kScript);
    return true;
  }();
  (void)once;
  write(dir + "/SHA256SUMS", std::string(in));
  auto assets = DashboardAssets::load(dir);
  if (assets.isOk()) {
    // Only files it verified: the two real ones.
    if (assets->fileCount() > 2 || assets->find("index.html") == nullptr) std::abort();
    if (assets->find("index.html")->body != kIndex) std::abort();
  }
  return 0;
}
