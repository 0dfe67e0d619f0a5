// cri_pod_start: bare pod start time through CriRuntime against a real runtime: for each of N
// pods, runPodSandbox + createContainer + startContainer (image already pulled), then stop and
// remove everything. Prints per-phase latency percentiles. With the test harness:
//   scripts/cri-env.sh up /tmp/cri && set -a && . /tmp/cri/env && set +a
//   build/bench/cri_pod_start -n 20 -p 1   # endpoint and image from EP_CRI_ENDPOINT/EP_REGISTRY
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgecore/edged/runtime/cri_runtime.h"

namespace {

using Clock = std::chrono::steady_clock;
using ep::edged::ContainerConfig;
using ep::edged::CriRuntime;
using ep::edged::CriRuntimeOptions;
using ep::edged::PodSandboxConfig;

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Sample {
  double sandbox = 0, create = 0, start = 0, total = 0;
};

void printRow(const char* name, std::vector<double> v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) { return v[std::min(v.size() - 1, size_t(p * (v.size() - 1) + 0.5))]; };
  double sum = 0;
  for (double x : v) sum += x;
  std::printf("%-16s mean %8.1f  p50 %8.1f  p90 %8.1f  max %8.1f ms\n", name, sum / v.size(),
              pct(0.5), pct(0.9), v.back());
}

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Pod (sandbox + one container) start latency through CRI"};
  std::string endpoint = envOr("EP_CRI_ENDPOINT", "unix:///run/containerd/containerd.sock");
  std::string image = envOr("EP_REGISTRY", "127.0.0.1:5000") + "/busybox:1.36";
  int pods = 20;
  int parallel = 1;
  bool hostNetwork = false;
  bool keep = false;
  std::string logRoot = "/tmp/ep-cri-bench-logs";
  app.add_option("--endpoint", endpoint, "CRI endpoint (default $EP_CRI_ENDPOINT)");
  app.add_option("--image", image, "container image (pulled first if absent)");
  app.add_option("-n,--pods", pods, "number of pods")->check(CLI::PositiveNumber);
  app.add_option("-p,--parallel", parallel, "pods started at once")->check(CLI::PositiveNumber);
  app.add_flag("--host-network", hostNetwork, "host-network sandboxes (no CNI)");
  app.add_flag("--keep", keep, "leave the pods running (scripts/cri-env.sh down removes them)");
  app.add_option("--log-root", logRoot, "directory for the pods' log directories");
  CLI11_PARSE(app, argc, argv);

  CriRuntimeOptions opts;
  opts.endpoint = endpoint;
  CriRuntime rt(opts);
  auto version = rt.version();
  // A containerd that just started answers "not initialized" for a moment.
  for (int i = 0; i < 100 && !version; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    version = rt.version();
  }
  if (!version) {
    std::fprintf(stderr, "cri_pod_start: %s\n", version.status().toString().c_str());
    return 1;
  }
  auto present = rt.imageStatus(image);
  if (!present || !present->has_value()) {
    auto ref = rt.pullImage(image, nullptr, nullptr);
    if (!ref) {
      std::fprintf(stderr, "cri_pod_start: %s\n", ref.status().toString().c_str());
      return 1;
    }
  }
  std::printf("runtime %s, image %s, %d pods, %d at once, %s network\n", version->c_str(),
              image.c_str(), pods, parallel, hostNetwork ? "host" : "bridge");

  std::mutex mu;
  std::vector<Sample> samples;
  std::vector<std::string> sandboxIds;
  std::atomic<int> next{0}, failures{0};
  const std::string runTag = std::to_string(::getpid());
  auto worker = [&] {
    for (int i = next++; i < pods; i = next++) {
      PodSandboxConfig sb;
      sb.name = "bench-" + std::to_string(i);
      sb.ns = "bench";
      sb.uid = "bench-" + runTag + "-" + std::to_string(i);
      sb.hostname = hostNetwork ? "" : sb.name;
      sb.hostNetwork = hostNetwork;
      sb.logDirectory = logRoot + "/" + sb.uid;
      sb.labels = {{"edgeplane.io/bench", runTag}};
      ContainerConfig cc;
      cc.name = "c";
      cc.image = image;
      cc.command = {"sleep", "3600"};
      cc.logPath = "c/0.log";
      Sample s;
      auto t0 = Clock::now();
      auto id = rt.runPodSandbox(sb);
      auto t1 = Clock::now();
      if (!id) {
        std::fprintf(stderr, "runPodSandbox: %s\n", id.status().toString().c_str());
        ++failures;
        continue;
      }
      {
        std::lock_guard lock(mu);
        sandboxIds.push_back(*id);
      }
      auto cid = rt.createContainer(*id, cc, sb);
      auto t2 = Clock::now();
      if (!cid) {
        std::fprintf(stderr, "createContainer: %s\n", cid.status().toString().c_str());
        ++failures;
        continue;
      }
      auto st = rt.startContainer(*cid);
      auto t3 = Clock::now();
      if (!st.isOk()) {
        std::fprintf(stderr, "startContainer: %s\n", st.toString().c_str());
        ++failures;
        continue;
      }
      s.sandbox = ms(t1 - t0);
      s.create = ms(t2 - t1);
      s.start = ms(t3 - t2);
      s.total = ms(t3 - t0);
      std::lock_guard lock(mu);
      samples.push_back(s);
    }
  };
  auto wallStart = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < parallel; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  double wall = ms(Clock::now() - wallStart);

  std::vector<double> sandbox, create, start, total;
  for (const auto& s : samples) {
    sandbox.push_back(s.sandbox);
    create.push_back(s.create);
    start.push_back(s.start);
    total.push_back(s.total);
  }
  printRow("runPodSandbox", sandbox);
  printRow("createContainer", create);
  printRow("startContainer", start);
  printRow("pod total", total);
  std::printf("%zu pods started in %.0f ms wall (%.1f pods/s), %d failures\n", samples.size(), wall,
              samples.size() * 1000.0 / wall, failures.load());

  if (keep) return failures.load() == 0 ? 0 : 1;
  // Teardown (stopPodSandbox kills the container; removePodSandbox removes it).
  auto teardownStart = Clock::now();
  std::atomic<size_t> idx{0};
  threads.clear();
  for (int t = 0; t < parallel; ++t) {
    threads.emplace_back([&] {
      for (size_t i = idx++; i < sandboxIds.size(); i = idx++) {
        (void)rt.stopPodSandbox(sandboxIds[i]);  // the removal below reports failures
        auto s = rt.removePodSandbox(sandboxIds[i]);
        if (!s.isOk()) std::fprintf(stderr, "removePodSandbox: %s\n", s.toString().c_str());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::printf("teardown of %zu pods: %.0f ms\n", sandboxIds.size(),
              ms(Clock::now() - teardownStart));
  std::error_code ec;
  std::filesystem::remove_all(logRoot, ec);
  return failures.load() == 0 ? 0 : 1;
}
