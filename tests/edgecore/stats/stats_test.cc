#include "edgecore/stats/stats.h"

#include <gtest/gtest.h>

#include "tests/edgecore/edged/fake_runtime.h"

namespace ep::edgecore::stats {
namespace {

using namespace std::chrono_literals;

TEST(ProcParsers, BusyTimeLeavesIdleIowaitAndStealOut) {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const std::string stat =
      "cpu  100 20 30 5000 400 5 6 7 50 0\ncpu0 50 10 15 2500 200 2 3 3 25 0\nintr 1 2\n";
  auto ns = parseProcStatBusyNs(stat, 100);
  ASSERT_TRUE(ns.isOk()) << ns.status().toString();
  EXPECT_EQ(*ns, uint64_t{161} * 10'000'000);  // 100+20+30+5+6 ticks of 10 ms
  // Old kernels with only the first four fields.
  EXPECT_EQ(*parseProcStatBusyNs("cpu 1 2 3 4\n", 100), uint64_t{6} * 10'000'000);
}

TEST(ProcParsers, BadProcStatNamesWhatIsWrong) {
  auto missing = parseProcStatBusyNs("cpu0 1 2 3 4\n", 100);
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("no \"cpu\" line"), std::string::npos);
  auto garbled = parseProcStatBusyNs("cpu  1 x 3 4\n", 100);
  ASSERT_FALSE(garbled.isOk());
  EXPECT_NE(garbled.status().message().find("field 2"), std::string::npos);
  EXPECT_FALSE(parseProcStatBusyNs("cpu 1 2 3 4\n", 0).isOk());
  EXPECT_FALSE(parseProcStatBusyNs("", 100).isOk());
}

TEST(ProcParsers, WorkingSetIsTotalLessAvailable) {
  const std::string meminfo =
      "MemTotal:        8000000 kB\nMemFree:          100000 kB\nMemAvailable:    6000000 kB\n";
  EXPECT_EQ(*parseMemInfoWorkingSetBytes(meminfo), uint64_t{2000000} * 1024);
  auto noAvailable = parseMemInfoWorkingSetBytes("MemTotal: 10 kB\n");
  ASSERT_FALSE(noAvailable.isOk());
  EXPECT_NE(noAvailable.status().message().find("MemAvailable"), std::string::npos);
  EXPECT_FALSE(parseMemInfoWorkingSetBytes("MemTotal: 10 kB\nMemAvailable: 20 kB\n").isOk());
}

TEST(ProcParsers, TheRealProcIsRead) {
  ProcNodeUsage proc;
  auto s = proc.sample();
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  EXPECT_GT(s->cpuBusyNs, 0u);
  EXPECT_GT(s->memoryWorkingSetBytes, 0u);
}

class FixedNode final : public NodeUsageSource {
 public:
  Result<NodeSample> sample() override {
    if (!error.isOk()) return error;
    return value;
  }
  NodeSample value;
  Status error;
};

class StatsReporterTest : public ::testing::Test {
 protected:
  // A running container of pod NS/POD on `node`, as edged labels it.
  std::string runContainer(const std::string& ns, const std::string& pod,
                           const std::string& container, const std::string& node = "edge-a") {
    std::map<std::string, std::string> labels = {
        {edged::kLabelManagedBy, edged::kManagedByValue},
        {edged::kLabelNodeName, node},
        {edged::kLabelPodNamespace, ns},
        {edged::kLabelPodName, pod},
        {edged::kLabelPodUid, pod + "-uid"},
    };
    runtime_.addImage("busybox:1.36");
    edged::PodSandboxConfig sandbox{.name = pod, .uid = pod + "-uid", .ns = ns};
    sandbox.labels = labels;
    auto sandboxId = runtime_.runPodSandbox(sandbox);
    EXPECT_TRUE(sandboxId.isOk());
    edged::ContainerConfig config{.name = container, .image = "busybox:1.36"};
    config.labels = labels;
    config.labels[edged::kLabelContainerName] = container;
    auto id = runtime_.createContainer(*sandboxId, config, sandbox);
    EXPECT_TRUE(id.isOk());
    EXPECT_TRUE(runtime_.startContainer(*id).isOk());
    return *id;
  }

  FakeClock clock_;
  edged::FakeRuntime runtime_{&clock_};
  FixedNode node_;
  std::vector<edgeplane::tunnel::v1::EdgeMessage> sent_;
  StatsReporter reporter_{{.nodeName = "edge-a", .interval = 10s},
                          runtime_,
                          node_,
                          [this](edgeplane::tunnel::v1::EdgeMessage&& m) {
                            sent_.push_back(std::move(m));
                            return true;
                          },
                          clock_};
};

TEST_F(StatsReporterTest, RatesComeFromTwoSamplesPerNodeAndContainer) {
  const std::string web = runContainer("default", "web", "app");
  const std::string side = runContainer("default", "web", "sidecar");
  const std::string other = runContainer("default", "elsewhere", "app", "edge-b");
  runtime_.setUsage(web, 1'000'000'000, 10 << 20);
  runtime_.setUsage(side, 0, 1 << 20);
  runtime_.setUsage(other, 0, 1 << 20);
  node_.value = {.cpuBusyNs = 50'000'000'000, .memoryWorkingSetBytes = 500 << 20};

  auto first = reporter_.sampleOnce();
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  EXPECT_FALSE(first->has_value()) << "a rate needs two samples";

  clock_.advance(10s);
  runtime_.setUsage(web, 6'000'000'000, 12 << 20);  // 5 s of CPU in 10 s: half a core
  runtime_.setUsage(side, 100'000'000, 2 << 20);    // 0.1 s: 10 millicores
  runtime_.setUsage(other, 9'000'000'000, 1 << 20);
  node_.value = {.cpuBusyNs = 70'000'000'000, .memoryWorkingSetBytes = 600 << 20};
  auto second = reporter_.sampleOnce();
  ASSERT_TRUE(second.isOk()) << second.status().toString();
  ASSERT_TRUE(second->has_value());
  const auto& m = **second;
  EXPECT_EQ(m.timestamp_ms(), clock_.nowMillis());
  EXPECT_EQ(m.window_ms(), 10'000);
  EXPECT_EQ(m.node().cpu_nano_cores(), 2'000'000'000u);  // 20 s busy in 10 s: two cores
  EXPECT_EQ(m.node().memory_working_set_bytes(), uint64_t{600} << 20);
  ASSERT_EQ(m.pods_size(), 1) << "only this node's containers";
  EXPECT_EQ(m.pods(0).namespace_(), "default");
  EXPECT_EQ(m.pods(0).name(), "web");
  EXPECT_EQ(m.pods(0).uid(), "web-uid");
  std::map<std::string, std::pair<uint64_t, uint64_t>> byName;
  for (const auto& c : m.pods(0).containers()) {
    byName[c.name()] = {c.usage().cpu_nano_cores(), c.usage().memory_working_set_bytes()};
  }
  EXPECT_EQ(byName["app"], std::make_pair(uint64_t{500'000'000}, uint64_t{12} << 20));
  EXPECT_EQ(byName["sidecar"], std::make_pair(uint64_t{10'000'000}, uint64_t{2} << 20));
}

TEST_F(StatsReporterTest, ANewOrRestartedContainerWaitsForItsSecondSample) {
  const std::string web = runContainer("default", "web", "app");
  runtime_.setUsage(web, 5'000'000'000, 1 << 20);
  node_.value = {.cpuBusyNs = 1'000'000'000, .memoryWorkingSetBytes = 1};
  ASSERT_TRUE(reporter_.sampleOnce().isOk());
  clock_.advance(10s);
  // Its counter went back (the runtime's numbers reset): no rate this time, nor a negative one.
  runtime_.setUsage(web, 1'000'000'000, 1 << 20);
  node_.value.cpuBusyNs = 2'000'000'000;
  auto m = reporter_.sampleOnce();
  ASSERT_TRUE(m.isOk() && m->has_value());
  EXPECT_EQ((*m)->pods_size(), 0);
  clock_.advance(10s);
  runtime_.setUsage(web, 2'000'000'000, 1 << 20);
  node_.value.cpuBusyNs = 3'000'000'000;
  m = reporter_.sampleOnce();
  ASSERT_TRUE(m.isOk() && m->has_value());
  ASSERT_EQ((*m)->pods_size(), 1);
  EXPECT_EQ((*m)->pods(0).containers(0).usage().cpu_nano_cores(), 100'000'000u);
}

TEST_F(StatsReporterTest, APodIsReportedWholeAndItsNewestInstanceCounts) {
  const std::string first = runContainer("default", "web", "app");
  runtime_.setUsage(first, 1'000'000'000, 1 << 20);
  node_.value = {.cpuBusyNs = 1'000'000'000, .memoryWorkingSetBytes = 1};
  ASSERT_TRUE(reporter_.sampleOnce().isOk());
  // A second container joins the pod: until it has a rate too, the pod is left out rather
  // than reported with half its use.
  const std::string side = runContainer("default", "web", "side");
  runtime_.setUsage(side, 0, 1 << 20);
  clock_.advance(10s);
  runtime_.setUsage(first, 2'000'000'000, 1 << 20);
  node_.value.cpuBusyNs = 2'000'000'000;
  auto m = reporter_.sampleOnce();
  ASSERT_TRUE(m.isOk() && m->has_value());
  EXPECT_EQ((*m)->pods_size(), 0);
  clock_.advance(10s);
  runtime_.setUsage(first, 3'000'000'000, 1 << 20);
  runtime_.setUsage(side, 500'000'000, 1 << 20);
  node_.value.cpuBusyNs = 3'000'000'000;
  m = reporter_.sampleOnce();
  ASSERT_TRUE(m.isOk() && m->has_value());
  ASSERT_EQ((*m)->pods_size(), 1);
  EXPECT_EQ((*m)->pods(0).containers_size(), 2);
}

TEST_F(StatsReporterTest, ErrorsAreCountedAndTheNextSampleRecovers) {
  node_.error = unavailableError("reading /proc/stat: cannot open");
  auto bad = reporter_.sampleOnce();
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(reporter_.counters().lastError, "reading /proc/stat: cannot open");
  node_.error = Status();
  ASSERT_TRUE(reporter_.sampleOnce().isOk());
  EXPECT_EQ(reporter_.counters().lastError, "");
  EXPECT_EQ(reporter_.counters().samples, 2u);
}

TEST_F(StatsReporterTest, TheThreadSendsWhatItSamples) {
  node_.value = {.cpuBusyNs = 1, .memoryWorkingSetBytes = 1};
  StatsReporter fast(
      {.nodeName = "edge-a", .interval = 1ms}, runtime_, node_,
      [this](edgeplane::tunnel::v1::EdgeMessage&& m) {
        sent_.push_back(std::move(m));
        return true;
      },
      SystemClock::instance());
  fast.start();
  for (int i = 0; i < 5000 && fast.counters().sent < 2; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  fast.stop();
  ASSERT_GE(fast.counters().sent, 2u);
  ASSERT_GE(sent_.size(), 2u);
  EXPECT_TRUE(sent_[0].has_resource_metrics());
}

}  // namespace
}  // namespace ep::edgecore::stats
