// The example edge AI app (examples/digits-classifier/README.md): an HTTP service classifying
// handwritten digits with a MobileNetV2 exported to ONNX, run by OpenCV's DNN module.
//
//   digits-classifier --model-dir /models [--listen 0.0.0.0:8080] [--heldout heldout.csv]
//                     [--threads N]   (default: the machine's CPU count, which ignores a
//                                      container's CPU limit: set it to the limit there; more
//                                      threads than CPUs only add contention, inference is
//                                      CPU-bound: docs/performance.md "Classifier")
//
//   POST /v1/classify[?k=3]   body: a PNG or JPEG of one digit (any size, dark ink on a light
//                             background or the reverse) -> {"model": {...}, "predictions":
//                             [{"label": "7", "score": 0.98}, ...]} (top k, best first)
//   GET  /v1/model            the loaded model: name, version, sha256, format, file, and its
//                             accuracy on the held-out digits (measured here at every load)
//   GET  /healthz, /readyz    200 once a model is loaded, 503 before
//   GET  /version             {"app": "digits-classifier", "version": V}: V is $APP_VERSION,
//                             which the app's image sets (scripts/cri-env.sh image --env), so
//                             an image upgrade shows; "dev" without it
//
// The model directory is a models.edgeplane.io volume (docs/models.md): model.json names the
// file. A watcher polls model.json; a new version is loaded and measured beside the serving one
// and swapped in with one pointer exchange, so no request fails or waits during a reload (each
// request keeps the model it started with). A version that does not load keeps the old one.
#include <spdlog/spdlog.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/config_util.h"
#include "common/http/server.h"
#include "common/signals.h"

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kSide = 32;  // the model's input: 8x8 enlarged 4x

struct HeldOut {
  std::vector<int> labels;
  cv::Mat blob;  // [N, 1, 32, 32] float32
};

// One loaded version: its metadata and a pool of networks (cv::dnn::Net is not safe for
// concurrent forward calls; each is used under its own mutex).
struct Model {
  Json info;  // model.json
  double accuracy = -1;
  size_t heldoutSamples = 0;
  std::string loadedAt;
  struct Slot {
    std::mutex mu;
    cv::dnn::Net net;
  };
  std::vector<std::unique_ptr<Slot>> slots;
  std::atomic<size_t> next{0};

  cv::Mat forward(const cv::Mat& blob) {
    // Try each slot once without waiting, then wait on the round-robin one.
    const size_t n = slots.size();
    const size_t start = next.fetch_add(1) % n;
    for (size_t i = 0; i < n; ++i) {
      auto& s = *slots[(start + i) % n];
      std::unique_lock l(s.mu, std::try_to_lock);
      if (!l.owns_lock()) continue;
      s.net.setInput(blob);
      return s.net.forward().clone();
    }
    auto& s = *slots[start];
    std::lock_guard l(s.mu);
    s.net.setInput(blob);
    return s.net.forward().clone();
  }
};

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// 8x8 gray (0..255, ink bright) -> [1, 1, 32, 32] in 0..1 by pixel replication, as train.py.
cv::Mat toBlob(const cv::Mat& gray8x8) {
  cv::Mat f;
  gray8x8.convertTo(f, CV_32F, 1.0 / 255.0);
  cv::Mat big;
  cv::resize(f, big, cv::Size(kSide, kSide), 0, 0, cv::INTER_NEAREST);
  int dims[] = {1, 1, kSide, kSide};
  cv::Mat blob(4, dims, CV_32F);
  std::memcpy(blob.ptr<float>(), big.ptr<float>(), sizeof(float) * kSide * kSide);
  return blob;
}

HeldOut loadHeldOut(const std::string& path) {
  HeldOut h;
  std::ifstream in(path);
  std::string line;
  std::vector<cv::Mat> blobs;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<int> v;
    while (std::getline(ss, cell, ',')) v.push_back(std::stoi(cell));
    if (v.size() != 65) continue;
    h.labels.push_back(v[0]);
    cv::Mat g(8, 8, CV_8U);
    for (int i = 0; i < 64; ++i)
      g.data[i] = static_cast<uint8_t>(std::min(255, v[i + 1] * 255 / 16));
    blobs.push_back(toBlob(g));
  }
  if (!blobs.empty()) {
    int dims[] = {static_cast<int>(blobs.size()), 1, kSide, kSide};
    h.blob.create(4, dims, CV_32F);
    for (size_t i = 0; i < blobs.size(); ++i) {
      std::memcpy(h.blob.ptr<float>() + i * kSide * kSide, blobs[i].ptr<float>(),
                  sizeof(float) * kSide * kSide);
    }
  }
  return h;
}

// Loads the version model.json names; throws (cv::Exception, std::exception) when it cannot.
std::shared_ptr<Model> loadModel(const fs::path& dir, const HeldOut& heldout, size_t slots) {
  Json info = Json::parse(readFile(dir / "model.json"));
  const std::string file = info.at("file").get<std::string>();
  if (file.empty() || file.find('/') != std::string::npos) {
    throw std::runtime_error("model.json: bad file name");
  }
  const std::string bytes = readFile(dir / file);
  if (bytes.empty()) throw std::runtime_error(file + ": empty or unreadable");
  auto m = std::make_shared<Model>();
  m->info = info;
  for (size_t i = 0; i < std::max<size_t>(slots, 1); ++i) {
    auto s = std::make_unique<Model::Slot>();
    s->net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
    if (s->net.empty()) throw std::runtime_error(file + ": not a model OpenCV can run");
    m->slots.push_back(std::move(s));
  }
  if (!heldout.labels.empty()) {
    cv::Mat out = m->forward(heldout.blob);
    size_t right = 0;
    for (int i = 0; i < out.rows; ++i) {
      cv::Point best;
      cv::minMaxLoc(out.row(i), nullptr, nullptr, nullptr, &best);
      if (best.x == heldout.labels[static_cast<size_t>(i)]) ++right;
    }
    m->heldoutSamples = heldout.labels.size();
    m->accuracy = static_cast<double>(right) / static_cast<double>(heldout.labels.size());
  }
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  m->loadedAt = buf;
  return m;
}

class Service {
 public:
  Service(fs::path dir, HeldOut heldout, size_t slots, std::string appVersion)
      : dir_(std::move(dir)),
        heldout_(std::move(heldout)),
        slots_(slots),
        appVersion_(std::move(appVersion)) {}

  // Loads a new version when model.json changed. Called by the watcher thread only.
  void poll() {
    std::string text = readFile(dir_ / "model.json");
    if (text.empty() || text == lastInfo_) return;
    lastInfo_ = text;
    try {
      auto m = loadModel(dir_, heldout_, slots_);
      spdlog::info("loaded model {} version {} (held-out accuracy {:.4f})",
                   m->info.value("name", ""), m->info.value("version", ""), m->accuracy);
      std::atomic_store(&model_, std::shared_ptr<Model>(std::move(m)));
    } catch (const std::exception& e) {
      spdlog::error("model {} not loaded, keeping the previous one: {}", text.substr(0, 200),
                    e.what());
    }
  }

  ep::http::ServerResponse handle(ep::http::ServerRequest& req) {
    auto model = std::atomic_load(&model_);
    if (req.path == "/healthz" || req.path == "/readyz") {
      return text(model ? 200 : 503, model ? "ok" : "no model yet");
    }
    if (req.path == "/version") {
      return json(200, {{"app", "digits-classifier"}, {"version", appVersion_}});
    }
    if (!model) return json(503, {{"error", "no model loaded yet"}});
    if (req.path == "/v1/model" && req.method == "GET") {
      Json j = describe(*model);
      j["appVersion"] = appVersion_;
      return json(200, j);
    }
    if (req.path == "/v1/classify" && req.method == "POST") return classify(*model, req);
    return json(404, {{"error", "not found: " + req.method + " " + req.path}});
  }

 private:
  static ep::http::ServerResponse text(int status, std::string body) {
    ep::http::ServerResponse r;
    r.status = status;
    r.contentType = "text/plain";
    r.body = std::move(body);
    return r;
  }
  static ep::http::ServerResponse json(int status, const Json& body) {
    ep::http::ServerResponse r;
    r.status = status;
    r.body = body.dump();
    return r;
  }
  static Json describe(const Model& m) {
    Json j = {{"name", m.info.value("name", "")},     {"version", m.info.value("version", "")},
              {"sha256", m.info.value("sha256", "")}, {"format", m.info.value("format", "")},
              {"file", m.info.value("file", "")},     {"loadedAt", m.loadedAt},
              {"heldoutSamples", m.heldoutSamples}};
    if (m.accuracy >= 0) j["heldoutAccuracy"] = std::round(m.accuracy * 10000) / 10000;
    return j;
  }

  ep::http::ServerResponse classify(Model& model, const ep::http::ServerRequest& req) {
    int k = 3;
    if (auto it = req.query.find("k"); it != req.query.end()) {
      k = std::atoi(it->second.c_str());
      if (k < 1 || k > 10) return json(400, {{"error", "k: must be 1..10"}});
    }
    if (req.body.empty()) return json(400, {{"error", "body: a PNG or JPEG image is required"}});
    int w = 0, h = 0, n = 0;
    stbi_uc* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(req.body.data()),
                                        static_cast<int>(req.body.size()), &w, &h, &n, 1);
    if (px == nullptr) {
      return json(
          400, {{"error", std::string("body: not a PNG or JPEG image: ") + stbi_failure_reason()}});
    }
    if (w > 4096 || h > 4096) {
      stbi_image_free(px);
      return json(413, {{"error", "body: image larger than 4096x4096"}});
    }
    cv::Mat gray(h, w, CV_8U, px);
    cv::Mat small;
    cv::resize(gray, small, cv::Size(8, 8), 0, 0, cv::INTER_AREA);
    stbi_image_free(px);
    if (cv::mean(small)[0] > 127) small = 255 - small;  // dark ink on light paper: invert
    cv::Mat logits = model.forward(toBlob(small));
    std::vector<float> p(logits.ptr<float>(), logits.ptr<float>() + logits.cols);
    const float mx = *std::max_element(p.begin(), p.end());
    float sum = 0;
    for (auto& v : p) sum += (v = std::exp(v - mx));
    std::vector<int> order(p.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    Json preds = Json::array();
    for (int i = 0; i < k && i < static_cast<int>(order.size()); ++i) {
      preds.push_back({{"label", std::to_string(order[i])},
                       {"score", std::round(p[order[i]] / sum * 10000) / 10000}});
    }
    return json(200, {{"model",
                       {{"name", model.info.value("name", "")},
                        {"version", model.info.value("version", "")},
                        {"sha256", model.info.value("sha256", "")}}},
                      {"predictions", preds}});
  }

  const fs::path dir_;
  const HeldOut heldout_;
  const size_t slots_;
  std::string lastInfo_;  // watcher thread only
  const std::string appVersion_;
  std::shared_ptr<Model> model_;  // atomic_load/atomic_store only
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "0.0.0.0:8080", dir, heldoutPath = "/app/heldout.csv";
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--listen")
      listen = argv[i + 1];
    else if (flag == "--model-dir")
      dir = argv[i + 1];
    else if (flag == "--heldout")
      heldoutPath = argv[i + 1];
    else if (flag == "--threads")
      threads = static_cast<size_t>(std::max(1, std::atoi(argv[i + 1])));
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  ep::blockTerminationSignals();
  if (dir.empty()) {
    std::fprintf(stderr,
                 "usage: digits-classifier --model-dir DIR [--listen HOST:PORT] [--heldout CSV] "
                 "[--threads N]\n");
    return 2;
  }
  cv::setNumThreads(1);  // parallelism comes from concurrent requests, one net each
  ep::http::ServerOptions options;
  if (auto s = ep::splitHostPort("--listen", listen, options.host, options.port); !s.isOk()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 2;
  }
  options.workerThreads = threads;
  options.maxBodyBytes = 8 * 1024 * 1024;
  HeldOut heldout = loadHeldOut(heldoutPath);
  if (heldout.labels.empty())
    spdlog::warn("no held-out digits in {}: accuracy not measured", heldoutPath);
  const char* appVersion = std::getenv("APP_VERSION");
  Service service(dir, std::move(heldout), threads, appVersion && *appVersion ? appVersion : "dev");
  service.poll();
  ep::http::Server server(options, [&service](ep::http::ServerRequest& r) {
    try {
      return service.handle(r);
    } catch (const std::exception& e) {  // nothing escapes a handler
      ep::http::ServerResponse resp;
      resp.status = 500;
      resp.body = Json{{"error", e.what()}}.dump();
      return resp;
    }
  });
  if (auto s = server.start(); !s.isOk()) {
    spdlog::critical("{}", s.message());
    return 1;
  }
  spdlog::info("digits-classifier listening on {} (model dir {})", listen, dir);
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      service.poll();
    }
  });
  int sig = ep::waitForTerminationSignal();
  spdlog::info("signal {}, stopping", sig);
  stop = true;
  watcher.join();
  server.stop();
  return 0;
}
