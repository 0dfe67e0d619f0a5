// pod_start_bench: apply -> pod Running as seen in the cloud, against a running cloudcore with an
// edgecore on a real containerd (bench/edged_bench.sh sets that up). Creates N pods bound to one
// node, `concurrency` at a time, and times each from its create request to the first watch
// event in which the cloud sees it Running. Optionally samples an edgecore's RSS and CPU with the
// pods running and idle. Prints one JSON object; see docs/performance.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/http/client.h"
#include "common/kubeconfig/kubeconfig.h"

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct ProcSample {
  double cpuSeconds = 0;
  double rssMiB = 0;
};

ProcSample sampleProcess(int pid) {
  ProcSample s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stol(field);
      if (i == 15) stime = std::stol(field);
    }
    s.cpuSeconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rssMiB = std::stod(line.substr(6)) / 1024.0;
  }
  return s;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pod_start_bench: apply -> Running latency on a real edge node"};
  std::string server;
  std::string kubeconfigPath = "run/cloudcore/admin.kubeconfig";
  std::string node = "edge-node-1";
  std::string image = "127.0.0.1:5000/busybox:1.36";
  std::string ns = "default";
  int pods = 50;
  int concurrency = 1;
  int edgePid = 0;
  int idleSeconds = 30;
  bool keep = false;
  int settleSeconds = 5;
  app.add_option("--kubeconfig", kubeconfigPath, "credentials (default: scripts/up.sh's admin)");
  app.add_option("--server", server, "cloudcore API URL (default: the kubeconfig's)");
  app.add_option("--node", node, "node the pods are bound to");
  app.add_option("--image", image, "container image (started as: sleep 3600)");
  app.add_option("--namespace", ns, "namespace of the pods");
  app.add_option("--pods", pods, "number of pods");
  app.add_option("--concurrency", concurrency, "pods created before waiting for them");
  app.add_option("--edge-pid", edgePid, "edgecore pid to sample RSS/CPU from (0: skip)");
  app.add_option("--idle-seconds", idleSeconds, "CPU sampling window with every pod running");
  app.add_flag("--keep", keep, "leave the pods running");
  app.add_option("--settle-seconds", settleSeconds, "wait after deleting the pods");
  CLI11_PARSE(app, argc, argv);

  auto creds = ep::kubeconfig::load(kubeconfigPath);
  if (!creds) {
    std::cerr << creds.status().message() << "\n";
    return 1;
  }
  if (server.empty()) server = creds->server;
  ep::http::ClientOptions clientOptions;
  clientOptions.caPem = creds->caPem;
  clientOptions.clientCertPem = creds->clientCertPem;
  clientOptions.clientKeyPem = creds->clientKeyPem;
  clientOptions.bearerToken = creds->token;
  std::string run = std::to_string(::getpid());
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Clock::time_point> created, running;
  std::atomic<bool> stop{false};

  std::thread watcher([&] {
    ep::http::HttpClient c(server, clientOptions);
    std::string path = "/api/v1/namespaces/" + ns + "/pods?watch=1&labelSelector=bench%3D" + run;
    auto s = c.stream("GET", path, [&](std::string_view line) {
      Json e = Json::parse(line, nullptr, false);
      if (!e.is_object()) return !stop.load();
      const Json& obj = e["object"];
      std::string name = obj["metadata"].value("name", "");
      std::string phase = obj.contains("status") ? obj["status"].value("phase", "") : "";
      if (phase == "Running") {
        std::lock_guard lock(mu);
        if (!running.count(name)) {
          running[name] = Clock::now();
          cv.notify_all();
        }
      }
      return !stop.load();
    });
    if (!s.isOk() && !stop) std::cerr << "watch: " << s.toString() << "\n";
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // watch established

  ep::http::HttpClient api(server, clientOptions);
  auto wallStart = Clock::now();
  for (int i = 0; i < pods; i += concurrency) {
    std::vector<std::string> batch;
    for (int j = i; j < std::min(pods, i + concurrency); ++j) {
      std::string name = "bench-" + run + "-" + std::to_string(j);
      Json pod = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata", {{"name", name}, {"labels", {{"bench", run}}}}},
                  {"spec",
                   {{"nodeName", node},
                    {"terminationGracePeriodSeconds", 1},
                    {"containers",
                     {{{"name", "c"},
                       {"image", image},
                       {"imagePullPolicy", "IfNotPresent"},
                       {"command", {"sleep", "3600"}}}}}}}};
      {
        std::lock_guard lock(mu);
        created[name] = Clock::now();
      }
      auto r =
          api.request("POST", "/api/v1/namespaces/" + ns + "/pods", pod.dump(), "application/json");
      if (!r.isOk() || r->status != 201) {
        std::cerr << "create " << name << ": " << (r.isOk() ? r->body : r.status().toString())
                  << "\n";
        return 1;
      }
      batch.push_back(name);
    }
    std::unique_lock lock(mu);
    bool ok = cv.wait_for(lock, std::chrono::seconds(120), [&] {
      return std::all_of(batch.begin(), batch.end(),
                         [&](const std::string& n) { return running.count(n) > 0; });
    });
    if (!ok) {
      std::cerr << "timed out waiting for pods to run\n";
      return 1;
    }
  }
  double wall = std::chrono::duration<double>(Clock::now() - wallStart).count();
  std::vector<double> ms;
  {
    std::lock_guard lock(mu);
    for (const auto& [name, t0] : created) {
      ms.push_back(std::chrono::duration<double, std::milli>(running[name] - t0).count());
    }
  }
  Json out = {{"pods", pods},
              {"concurrency", concurrency},
              {"p50_ms", percentile(ms, 0.5)},
              {"p99_ms", percentile(ms, 0.99)},
              {"max_ms", percentile(ms, 1.0)},
              {"wall_s", wall}};
  if (edgePid > 0) {
    std::this_thread::sleep_for(std::chrono::seconds(3));  // let status traffic settle
    ProcSample a = sampleProcess(edgePid);
    std::this_thread::sleep_for(std::chrono::seconds(idleSeconds));
    ProcSample b = sampleProcess(edgePid);
    out["edgecore_rss_mib"] = b.rssMiB;
    out["edgecore_idle_cpu_percent"] = 100.0 * (b.cpuSeconds - a.cpuSeconds) / idleSeconds;
    out["idle_seconds"] = idleSeconds;
  }
  std::cout << out.dump() << std::endl;
  stop = true;
  if (!keep) {
    std::lock_guard lock(mu);
    for (const auto& [name, t0] : created) {
      (void)api.request("DELETE", "/api/v1/namespaces/" + ns + "/pods/" + name);  // cleanup
    }
    // Pods leave the API at once; the node stops their containers (1 s grace) in the
    // background. Give it time so that a following run starts on a quiet node.
    std::this_thread::sleep_for(std::chrono::seconds(settleSeconds));
  }
  watcher.detach();  // blocked in the watch; the process exits
  return 0;
}
