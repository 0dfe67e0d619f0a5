#include "tests/testing/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/http/client.h"

namespace ep::testing {

namespace {

std::vector<char*> cArgs(std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (auto& a : argv) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::string logPath)
    : argv_(std::move(argv)), logPath_(std::move(logPath)) {}

Process::~Process() {
  if (pid_ > 0) stop(SIGKILL);
}

bool Process::start() {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int fd = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    auto args = cArgs(argv_);
    execv(args[0], args.data());
    _exit(127);
  }
  pid_ = pid;
  return true;
}

int Process::stop(int sig, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return 0;
  kill(pid_, sig);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string Process::log() const {
  std::ifstream in(logPath_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult runCommand(const std::vector<std::string>& argvIn, const std::string& stdinText,
                         std::chrono::milliseconds timeout,
                         const std::vector<std::string>& extraEnv) {
  std::vector<std::string> argv = argvIn;
  int in[2], out[2], err[2];
  if (pipe(in) || pipe(out) || pipe(err)) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    for (const auto& e : extraEnv) putenv(const_cast<char*>(e.c_str()));
    auto args = cArgs(argv);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  std::thread writer([&] {
    size_t off = 0;
    while (off < stdinText.size()) {
      ssize_t n = write(in[1], stdinText.data() + off, stdinText.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(in[1]);
  });
  CommandResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open = 2;
  bool killed = false;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 200))) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  writer.join();
  int status = 0;
  waitpid(pid, &status, 0);
  result.exitCode = killed ? -1 : (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return result;
}

namespace {

// A port the kernel hands out for bind(0): free now, but any other process may get it next.
int kernelPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

// Whether nothing is bound to `port` on any address (no SO_REUSEADDR: a port still in
// TIME_WAIT counts as taken too).
bool bindable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// The first port of the kernel's ephemeral range (bind(0) and outgoing connections).
int ephemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(in >> low)) return 32768;
  return low;
}

}  // namespace

namespace {

constexpr int kFirstPort = 15000;
constexpr const char* kPortCounter = "/tmp/ep-test-ports";

// The shared counter file, or -1. Opened without O_CREAT when it exists: with
// fs.protected_regular, O_CREAT on a file another user created in /tmp fails even for root.
int openPortCounter() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = open(kPortCounter, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) return fd;
    fd = open(kPortCounter, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) {
      fchmod(fd, 0666);  // shared by every user that runs tests on this machine
      return fd;
    }
    if (errno != EEXIST) return -1;  // else another process just created it: open that
  }
  return -1;
}

void warnFallbackOnce(const char* why) {
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true)) {
    std::fprintf(stderr,
                 "freePort: %s; falling back to bind(0) ports, which parallel tests may share\n",
                 why);
  }
}

}  // namespace

bool portsAreShared() {
  if (std::min(ephemeralLow(), 65536) - kFirstPort < 1000) return false;
  int fd = openPortCounter();
  if (fd < 0) return false;
  close(fd);
  return true;
}

// Tests run as parallel processes (ctest -j), and each picks ports before the server it starts
// binds them. bind(0) alone let two tests get the same port: one test's mosquitto then failed
// to bind and the test talked to the other test's broker. So ports come from one counter that
// all test processes share through a locked file, below the ephemeral range that bind(0) and
// outgoing connections draw from; a port is handed out again only after the whole range.
int freePort() {
  const int end = std::min(ephemeralLow(), 65536);
  if (end - kFirstPort < 1000) {
    warnFallbackOnce("the ephemeral port range starts too low");
    return kernelPort();
  }
  int fd = openPortCounter();
  if (fd < 0) {
    warnFallbackOnce("cannot open /tmp/ep-test-ports");
    return kernelPort();
  }
  if (flock(fd, LOCK_EX) != 0) {
    close(fd);
    warnFallbackOnce("cannot lock /tmp/ep-test-ports");
    return kernelPort();
  }
  char buf[16] = {};
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  int next = n > 0 ? std::atoi(buf) : 0;
  if (next < kFirstPort || next >= end) {
    next = kFirstPort + static_cast<int>(getpid() % (end - kFirstPort));
  }
  int port = 0;
  for (int tries = 0; tries < end - kFirstPort && port == 0; ++tries) {
    int candidate = next;
    next = next + 1 >= end ? kFirstPort : next + 1;
    if (bindable(candidate)) port = candidate;
  }
  std::string text = std::to_string(next) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, text.data(), text.size(), 0) < 0) port = 0;
  flock(fd, LOCK_UN);
  close(fd);
  return port != 0 ? port : kernelPort();
}

std::string buildPath(const std::string& relative) {
  const char* dir = std::getenv("EP_BUILD_DIR");
  return std::string(dir ? dir : "build") + "/" + relative;
}

bool waitReady(int port, std::chrono::milliseconds timeout, bool https) {
  http::ClientOptions o;
  // A TLS handshake on a loaded 2-core machine can take longer than a plain connect.
  o.timeout = std::chrono::milliseconds(https ? 2000 : 500);
  o.insecureSkipVerify = true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    http::HttpClient c(
        std::string(https ? "https" : "http") + "://127.0.0.1:" + std::to_string(port), o);
    auto r = c.request("GET", "/readyz");
    if (r.isOk() && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int forwardedPort(const Process& p, std::chrono::milliseconds timeout) {
  const std::string marker = "Forwarding from 127.0.0.1:";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string log = p.log();
    if (auto at = log.find(marker); at != std::string::npos) {
      const int port = std::atoi(log.c_str() + at + marker.size());
      if (port > 0) return port;
    }
    if (std::chrono::steady_clock::now() >= deadline) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace ep::testing
