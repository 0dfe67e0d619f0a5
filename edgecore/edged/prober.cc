#include "edgecore/edged/prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/api/object_util.h"

namespace ep::edged {
namespace {

// A port given as a number or as a named containerPort.
int resolvePort(const Json& port, const Json* container) {
  if (port.is_number_integer()) return port.get<int>();
  if (!port.is_string()) return -1;
  std::string name = port.get<std::string>();
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) return std::stoi(name);
  if (container && container->contains("ports") && (*container)["ports"].is_array()) {
    for (const auto& p : (*container)["ports"]) {
      if (p.is_object() && api::stringAt(p, "name") == name) return p.value("containerPort", -1);
    }
  }
  return -1;
}

using Deadline = std::chrono::steady_clock::time_point;

int remainingMs(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Connects to host:port before `deadline`. Returns the fd or -1 with `why` set.
int connectWithDeadline(const std::string& host, int port, Deadline deadline, std::string& why) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    why = "invalid address " + host;
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::strerror(errno);
    return -1;
  }
  std::string target = host + ":" + std::to_string(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    why = "dial tcp " + target + ": connect: " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int rc = ::poll(&p, 1, remainingMs(deadline));
  if (rc <= 0) {
    why = "dial tcp " + target + ": i/o timeout";
    ::close(fd);
    return -1;
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    why = "dial tcp " + target + ": connect: " + std::strerror(err);
    ::close(fd);
    return -1;
  }
  return fd;
}

ProbeOutcome httpProbe(const Json& spec, const ProbeTarget& t, Deadline deadline) {
  std::string scheme = api::stringAt(spec, "scheme");
  if (!scheme.empty() && scheme != "HTTP") return {false, "scheme " + scheme + " is not supported"};
  int port = resolvePort(spec.contains("port") ? spec["port"] : Json(), t.container);
  if (port <= 0 || port > 65535) return {false, "invalid port"};
  std::string host = api::stringAt(spec, "host");
  if (host.empty()) host = t.podIp.empty() ? (t.hostIp.empty() ? "127.0.0.1" : t.hostIp) : t.podIp;
  std::string path = api::stringAt(spec, "path");
  if (path.empty() || path[0] != '/') path = "/" + path;
  std::string why;
  int fd = connectWithDeadline(host, port, deadline, why);
  if (fd < 0)
    return {false, "Get \"http://" + host + ":" + std::to_string(port) + path + "\": " + why};
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                    "\r\nUser-Agent: edged-probe/1.0\r\nAccept: */*\r\nConnection: close\r\n";
  if (spec.contains("httpHeaders") && spec["httpHeaders"].is_array()) {
    for (const auto& h : spec["httpHeaders"]) {
      if (h.is_object())
        req += api::stringAt(h, "name") + ": " + api::stringAt(h, "value") + "\r\n";
    }
  }
  req += "\r\n";
  size_t off = 0;
  while (off < req.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, remainingMs(deadline)) <= 0) {
      ::close(fd);
      return {false, "Get " + path + ": context deadline exceeded"};
    }
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return {false, "Get " + path + ": " + std::strerror(errno)};
    }
    off += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[1024];
  while (resp.find("\r\n") == std::string::npos && resp.size() < 4096) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, remainingMs(deadline)) <= 0) {
      ::close(fd);
      return {false, "Get " + path + ": context deadline exceeded (Client.Timeout exceeded)"};
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  int code = 0;
  if (std::sscanf(resp.c_str(), "HTTP/%*d.%*d %d", &code) != 1) {
    return {false, "Get " + path + ": malformed HTTP response"};
  }
  if (code >= 200 && code < 400) return {true, ""};
  return {false, "HTTP probe failed with statuscode: " + std::to_string(code)};
}

ProbeOutcome tcpProbe(const Json& spec, const ProbeTarget& t, Deadline deadline) {
  int port = resolvePort(spec.contains("port") ? spec["port"] : Json(), t.container);
  if (port <= 0 || port > 65535) return {false, "invalid port"};
  std::string host = api::stringAt(spec, "host");
  if (host.empty()) host = t.podIp.empty() ? (t.hostIp.empty() ? "127.0.0.1" : t.hostIp) : t.podIp;
  std::string why;
  int fd = connectWithDeadline(host, port, deadline, why);
  if (fd < 0) return {false, why};
  ::close(fd);
  return {true, ""};
}

}  // namespace

ProbeTiming probeTimingOf(const Json& probe) {
  ProbeTiming t;
  auto secs = [&](const char* key, std::chrono::seconds fallback, int64_t min) {
    int64_t v = probe.contains(key) && probe[key].is_number_integer() ? probe[key].get<int64_t>()
                                                                      : fallback.count();
    return std::chrono::seconds(std::max(min, v));
  };
  t.initialDelay = secs("initialDelaySeconds", t.initialDelay, 0);
  t.period = secs("periodSeconds", t.period, 1);
  t.timeout = secs("timeoutSeconds", t.timeout, 1);
  t.successThreshold = std::max(1, probe.value("successThreshold", 1));
  t.failureThreshold = std::max(1, probe.value("failureThreshold", 3));
  return t;
}

ProbeOutcome runProbe(const Json& probe, const ProbeTarget& target, ContainerRuntime& runtime) {
  if (!probe.is_object()) return {false, "probe is not an object"};
  ProbeTiming timing = probeTimingOf(probe);
  Deadline deadline = std::chrono::steady_clock::now() + timing.timeout;
  if (probe.contains("exec") && probe["exec"].is_object()) {
    std::vector<std::string> cmd;
    if (probe["exec"].contains("command") && probe["exec"]["command"].is_array()) {
      for (const auto& a : probe["exec"]["command"]) {
        if (a.is_string()) cmd.push_back(a.get<std::string>());
      }
    }
    if (cmd.empty()) return {false, "exec probe has no command"};
    auto r = runtime.execSync(target.containerId, cmd, timing.timeout);
    if (!r.isOk()) return {false, r.status().message()};
    if (r->exitCode == 0) return {true, ""};
    std::string out = r->stdoutData + r->stderrData;
    if (out.size() > 1024) out.resize(1024);
    return {false, "command exited with " + std::to_string(r->exitCode) +
                       (out.empty() ? std::string() : ": " + out)};
  }
  if (probe.contains("httpGet") && probe["httpGet"].is_object()) {
    return httpProbe(probe["httpGet"], target, deadline);
  }
  if (probe.contains("tcpSocket") && probe["tcpSocket"].is_object()) {
    return tcpProbe(probe["tcpSocket"], target, deadline);
  }
  return {false, "probe has no handler (exec, httpGet or tcpSocket)"};
}

}  // namespace ep::edged
