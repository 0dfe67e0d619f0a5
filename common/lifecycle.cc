#include "common/lifecycle.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace ep {

Lifecycle::Lifecycle(std::string component) : component_(std::move(component)) {}

Lifecycle::~Lifecycle() {
  if (services_.empty()) return;
  // Straight to stderr (where the daemons log): the process is about to abort.
  std::fprintf(stderr, "%s: %zu services still running when their lifecycle ended (first: %s)\n",
               component_.c_str(), services_.size(), services_.front().name.c_str());
  std::abort();
}

Status Lifecycle::start(std::string name, const std::function<Status()>& start,
                        std::function<void()> stop) {
  Status s = start ? start() : Status::ok();
  if (!s.isOk()) {
    // Messages that already name their module ("store: ...") are logged as they are.
    if (s.message().rfind(name + ":", 0) == 0) {
      spdlog::critical("{}", s.message());
    } else {
      spdlog::critical("{}: {}", name, s.message());
    }
    return s;
  }
  spdlog::debug("{}: started {}", component_, name);
  services_.push_back({std::move(name), std::move(stop)});
  return Status::ok();
}

void Lifecycle::started(std::string name, std::function<void()> stop) {
  spdlog::debug("{}: started {}", component_, name);
  services_.push_back({std::move(name), std::move(stop)});
}

void Lifecycle::stopAll() {
  while (!services_.empty()) {
    Service s = std::move(services_.back());
    services_.pop_back();
    spdlog::debug("{}: stopping {}", component_, s.name);
    if (s.stop) s.stop();
  }
}

int Lifecycle::fail(int exitCode) {
  stopAll();
  return exitCode;
}

}  // namespace ep
