// API throughput driver: an in-process cloudcore API (SQLite store, registry, HTTP server on a
// loopback port) and N client threads with keep-alive connections. Phase 1 creates ConfigMaps
// for --seconds, phase 2 gets them for --seconds. Prints requests/s and latency percentiles.
//   build/bench/api_bench --clients 16 --seconds 5
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/registry/registry.h"
#include "cloudcore/store/sqlite_store.h"
#include "common/http/client.h"
#include "common/http/server.h"
#include "common/log.h"

namespace {

struct PhaseResult {
  int64_t ok = 0;
  int64_t errors = 0;
  std::vector<double> latenciesUs;
};

template <typename Fn>
PhaseResult runPhase(int clients, int seconds, const std::string& url, Fn fn) {
  PhaseResult total;
  std::mutex mu;
  std::vector<std::thread> threads;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      ep::http::HttpClient client(url);
      PhaseResult local;
      for (int64_t i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
        auto start = std::chrono::steady_clock::now();
        bool ok = fn(client, t, i);
        local.latenciesUs.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                .count());
        (ok ? local.ok : local.errors)++;
      }
      std::lock_guard lock(mu);
      total.ok += local.ok;
      total.errors += local.errors;
      total.latenciesUs.insert(total.latenciesUs.end(), local.latenciesUs.begin(),
                               local.latenciesUs.end());
    });
  }
  for (auto& t : threads) t.join();
  std::sort(total.latenciesUs.begin(), total.latenciesUs.end());
  return total;
}

void report(const char* name, const PhaseResult& r, int seconds) {
  auto pct = [&](double p) {
    if (r.latenciesUs.empty()) return 0.0;
    return r.latenciesUs[std::min(r.latenciesUs.size() - 1,
                                  static_cast<size_t>(p * r.latenciesUs.size()))] /
           1000.0;
  };
  std::printf("%-8s %8.0f req/s  ok=%lld errors=%lld  p50=%.2fms p99=%.2fms\n", name,
              static_cast<double>(r.ok) / seconds, static_cast<long long>(r.ok),
              static_cast<long long>(r.errors), pct(0.5), pct(0.99));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"api_bench: cloudcore API create/get throughput"};
  int clients = 16, seconds = 5;
  app.add_option("--clients", clients, "concurrent client connections");
  app.add_option("--seconds", seconds, "duration of each phase");
  CLI11_PARSE(app, argc, argv);
  (void)ep::setupLogging("warn", "api_bench");

  std::string tmpl = (std::filesystem::temp_directory_path() / "ep-apibench-XXXXXX").string();
  std::string dir = mkdtemp(tmpl.data());
  ep::store::SqliteStoreOptions so;
  so.dataDir = dir;
  ep::store::SqliteStore store(so, ep::SystemClock::instance());
  if (!store.start().isOk()) return 1;
  ep::registry::Registry registry(store, ep::SystemClock::instance());
  if (!registry.ensureSystemNamespaces().isOk()) return 1;
  ep::apiserver::ApiHandler handler(registry, ep::SystemClock::instance());
  ep::http::ServerOptions ho;
  ho.port = 0;
  ho.workerThreads = static_cast<size_t>(std::max(8, clients));
  ep::http::Server server(ho, [&](ep::http::ServerRequest& r) { return handler.handle(r); });
  if (!server.start().isOk()) return 1;
  std::string url = "http://127.0.0.1:" + std::to_string(server.port());

  std::atomic<int64_t> created{0};
  auto create = runPhase(clients, seconds, url, [&](ep::http::HttpClient& c, int t, int64_t i) {
    std::string name = "cm-" + std::to_string(t) + "-" + std::to_string(i);
    auto r = c.request("POST", "/api/v1/namespaces/default/configmaps",
                       R"({"metadata":{"name":")" + name +
                           R"(","labels":{"app":"bench"}},"data":{"key":"value"}})",
                       "application/json");
    bool ok = r.isOk() && r->status == 201;
    if (ok) created++;
    return ok;
  });
  auto get = runPhase(clients, seconds, url, [&](ep::http::HttpClient& c, int t, int64_t i) {
    std::string name = "cm-" + std::to_string(t) + "-" + std::to_string(i % 100);
    auto r = c.request("GET", "/api/v1/namespaces/default/configmaps/" + name);
    return r.isOk() && r->status == 200;
  });
  std::printf("clients=%d seconds=%d\n", clients, seconds);
  report("create", create, seconds);
  report("get", get, seconds);
  server.stop();
  store.stop();
  std::filesystem::remove_all(dir);
  return 0;
}
