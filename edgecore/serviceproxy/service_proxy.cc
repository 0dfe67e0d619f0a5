#include "edgecore/serviceproxy/service_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

extern char** environ;

namespace ep::edgecore::serviceproxy {
namespace {

using Json = nlohmann::json;

constexpr const char* kServices = "services";
constexpr const char* kEndpointSlices = "endpointslices.discovery.k8s.io";
constexpr size_t kMaxOutput = 16 << 20;  // iptables-save of a busy host stays far below

struct CommandOutput {
  int exitCode = -1;
  std::string out;
  std::string err;
};

// Runs argv (searched in PATH) with `input` on stdin; output is bounded, the command is killed
// after `timeout`. Errors: the command could not start, or timed out.
Result<CommandOutput> runCommand(const std::vector<std::string>& argv, const std::string& input,
                                 std::chrono::milliseconds timeout) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return unavailableError(std::string("pipe: ") + strerror(errno));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return unavailableError(std::string("pipe: ") + strerror(errno));
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return unavailableError(std::string("pipe: ") + strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child starts with no signal blocked and SIGPIPE at its default: edgecore blocks
  // SIGINT/SIGTERM in every thread and ignores SIGPIPE, and both would be inherited.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, pipe;
  sigemptyset(&none);
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &pipe);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]), close(out[1]), close(err[1]);
  if (rc != 0) {
    close(in[1]), close(out[0]), close(err[0]);
    return unavailableError(argv[0] + ": " + strerror(rc));
  }
  CommandOutput result;
  size_t written = 0;
  int inFd = in[1];
  if (input.empty()) {
    close(inFd);
    inFd = -1;
  } else {
    fcntl(inFd, F_SETFL, O_NONBLOCK);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timedOut = false;
  int outFd = out[0], errFd = err[0];
  while (outFd >= 0 || errFd >= 0 || inFd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    if (inFd >= 0) fds[n++] = {inFd, POLLOUT, 0};
    if (outFd >= 0) fds[n++] = {outFd, POLLIN, 0};
    if (errFd >= 0) fds[n++] = {errFd, POLLIN, 0};
    if (poll(fds, n, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      timedOut = true;  // cannot wait for it: kill it rather than block in waitpid
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == inFd) {
        ssize_t w = write(inFd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
        if (written >= input.size()) {
          close(inFd);
          inFd = -1;
        }
        continue;
      }
      int& fd = fds[i].fd == outFd ? outFd : errFd;
      std::string& sink = fds[i].fd == outFd ? result.out : result.err;
      char buf[8192];
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        if (sink.size() < kMaxOutput) sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(fd);
        fd = -1;
      }
    }
  }
  for (int fd : {inFd, outFd, errFd}) {
    if (fd >= 0) close(fd);
  }
  if (timedOut) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) return unavailableError(argv[0] + " timed out");
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string firstLine(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

class IptablesApplier final : public RuleApplier {
 public:
  Result<std::set<std::string>> listChains(const std::string& prefix) override {
    auto r = runCommand({"iptables-save", "-t", "nat"}, "", std::chrono::seconds(10));
    if (!r.isOk()) return r.status();
    if (r->exitCode != 0) {
      return unavailableError("iptables-save: " + firstLine(r->err.empty() ? r->out : r->err));
    }
    std::set<std::string> out;
    std::istringstream in(r->out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() > 1 && line[0] == ':' && line.compare(1, prefix.size(), prefix) == 0) {
        out.insert(line.substr(1, line.find(' ') - 1));
      }
    }
    return out;
  }

  Status restore(const std::string& rules) override {
    auto r =
        runCommand({"iptables-restore", "-w", "5", "--noflush"}, rules, std::chrono::seconds(15));
    if (!r.isOk()) return r.status();
    if (r->exitCode != 0) {
      return unavailableError("iptables-restore: " + firstLine(r->err.empty() ? r->out : r->err));
    }
    return Status::ok();
  }

  Status ensureJumps() override {
    struct Jump {
      const char* chain;
      const char* target;
    };
    for (Jump j : {Jump{"PREROUTING", kServicesChain}, Jump{"OUTPUT", kServicesChain},
                   Jump{"POSTROUTING", kPostroutingChain}}) {
      std::vector<std::string> rule = {"-m", "comment", "--comment", "edgeplane service proxy",
                                       "-j", j.target};
      std::vector<std::string> check = {"iptables", "-w", "5", "-t", "nat", "-C", j.chain};
      check.insert(check.end(), rule.begin(), rule.end());
      auto c = runCommand(check, "", std::chrono::seconds(10));
      if (!c.isOk()) return c.status();
      if (c->exitCode == 0) continue;
      std::vector<std::string> insert = {"iptables", "-w", "5", "-t", "nat", "-I", j.chain, "1"};
      insert.insert(insert.end(), rule.begin(), rule.end());
      auto i = runCommand(insert, "", std::chrono::seconds(10));
      if (!i.isOk()) return i.status();
      if (i->exitCode != 0) {
        return unavailableError(std::string("iptables -I ") + j.chain + ": " + firstLine(i->err));
      }
    }
    return Status::ok();
  }
};

}  // namespace

std::unique_ptr<RuleApplier> makeIptablesApplier() {
  return std::make_unique<IptablesApplier>();
}

ServiceProxy::ServiceProxy(ServiceProxyOptions options, metamanager::CacheReader& cache,
                           RuleApplier& applier)
    : options_(std::move(options)), cache_(cache), applier_(applier) {}

ServiceProxy::~ServiceProxy() {
  stop();
}

void ServiceProxy::subscribe() {
  for (auto& s : subs_) s->stop();
  subs_.clear();
  for (const char* resource : {kServices, kEndpointSlices}) {
    auto sub = cache_.subscribe(resource, "");
    sub->setNotify([this] {
      {
        MutexLock l(mu_);
        dirty_ = true;
      }
      cv_.notify_all();
    });
    subs_.push_back(std::move(sub));
  }
}

void ServiceProxy::start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
    dirty_ = true;
  }
  subscribe();
  thread_ = std::thread([this] { run(); });
}

void ServiceProxy::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& s : subs_) s->stop();
  subs_.clear();
}

void ServiceProxy::run() {
  auto lastForced = std::chrono::steady_clock::now();
  std::string lastLogged;  // an error repeated every pass is logged once
  for (;;) {
    {
      MutexLock l(mu_);
      l.waitFor(cv_, options_.resync, [&]() EP_REQUIRES(mu_) { return stopping_ || dirty_; });
      if (stopping_) return;
      dirty_ = false;
    }
    for (auto& s : subs_) s->poll(SIZE_MAX);  // the events only wake us: the cache is re-read
    bool resubscribe = false;
    for (auto& s : subs_) resubscribe = resubscribe || s->done();
    if (resubscribe) subscribe();
    const auto now = std::chrono::steady_clock::now();
    const bool force = now - lastForced >= options_.resync;
    if (force) lastForced = now;
    if (auto s = syncOnce(force); !s.isOk()) {
      if (s.message() != lastLogged) spdlog::warn("serviceproxy: {}", s.message());
      lastLogged = s.message();
    } else {
      lastLogged.clear();
    }
    MutexLock l(mu_);
    l.waitFor(cv_, options_.minGap, [&]() EP_REQUIRES(mu_) { return stopping_; });
  }
}

Status ServiceProxy::syncOnce(bool force) {
  auto services = cache_.list(kServices, "");
  auto slices = services.isOk() ? cache_.list(kEndpointSlices, "") : services.status();
  Status result = Status::ok();
  std::vector<ServicePort> ports;
  if (!slices.isOk()) {
    result = slices.status();
  } else {
    ports = computeServicePorts(*services, *slices, options_.nodeName);
  }
  if (result.isOk() && !known_ && (!ports.empty() || !listFailed_)) {
    auto chains = applier_.listChains(kChainPrefix);
    if (chains.isOk()) {
      known_ = true;
      listFailed_ = false;
      chains_ = *chains;
    } else if (ports.empty()) {
      // Nothing to program and the packet filter cannot be read (not root, no iptables): a node
      // without Services never needs it. Read again once there is something to program.
      listFailed_ = true;
    } else {
      result = chains.status();
    }
  }
  if (result.isOk() && !known_ && ports.empty()) {
    MutexLock l(mu_);
    counters_.lastError = "";
    return Status::ok();
  }
  if (result.isOk()) {
    // Nothing of ours exists and nothing is wanted: leave the packet filter alone.
    if (ports.empty() && chains_.empty()) {
      MutexLock l(mu_);
      counters_ = {0, 0, counters_.applies, ""};
      return Status::ok();
    }
    std::string rules = renderNatRules(ports, chains_);
    if (force || rules != applied_) {
      result = applier_.restore(rules);
      if (result.isOk()) {
        chains_ = chainsOf(ports);
        result = applier_.ensureJumps();
      } else {
        known_ = false;  // re-read what exists before the next attempt
      }
      applied_ = result.isOk() ? rules : std::string();
      if (result.isOk()) {
        uint64_t backends = 0;
        for (const auto& p : ports) backends += p.backends.size();
        spdlog::info("serviceproxy: {} service ports, {} local endpoints programmed", ports.size(),
                     backends);
        MutexLock l(mu_);
        counters_.servicePorts = ports.size();
        counters_.backends = backends;
        ++counters_.applies;
      }
    }
  }
  MutexLock l(mu_);
  counters_.lastError = result.isOk() ? "" : result.message();
  return result;
}

ServiceProxyCounters ServiceProxy::counters() const {
  MutexLock l(mu_);
  return counters_;
}

nlohmann::json ServiceProxy::statusJson() const {
  auto c = counters();
  return {{"mode", "iptables"},
          {"servicePorts", c.servicePorts},
          {"endpoints", c.backends},
          {"applies", c.applies},
          {"lastError", c.lastError}};
}

}  // namespace ep::edgecore::serviceproxy
