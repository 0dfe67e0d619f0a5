#include "edgecore/edged/streaming/http_upgrade.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace ep::edged::streaming {
namespace {

constexpr size_t kMaxHandshake = 16 * 1024;

struct Target {
  std::string host;  // numeric
  uint16_t port = 0;
  std::string path;
};

Result<Target> parseUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    return badRequestError("streaming URL \"" + url +
                           "\": only http:// is supported (disable TLS streaming in the runtime)");
  }
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Target t;
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos)
      return badRequestError("streaming URL \"" + url + "\": bad host");
    t.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = authority.substr(close + 2);
  } else {
    size_t colon = authority.rfind(':');
    t.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (port.empty()) port = "80";
  const auto digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), digit) || std::stoi(port) == 0 ||
      std::stoi(port) > 65535) {
    return badRequestError("streaming URL \"" + url + "\": bad port");
  }
  t.port = static_cast<uint16_t>(std::stoi(port));
  return t;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Closes a socket unless released.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

}  // namespace

std::string streamingServerName(const std::string& url) {
  auto t = parseUrl(url);
  return "the container runtime's streaming server " +
         (t.isOk() ? t->host + ":" + std::to_string(t->port) : url);
}

std::string responseHeader(const std::string& head, const std::string& name) {
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string::npos) {
    pos += 2;
    size_t end = head.find("\r\n", pos);
    std::string line = head.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos && lower(line.substr(0, colon)) == name) {
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      v.erase(v.find_last_not_of(" \t") + 1);
      return v;
    }
  }
  return {};
}

Result<UpgradedConnection> upgradeConnection(
    const std::string& url, std::chrono::milliseconds timeout,
    const std::function<std::string(const std::string& hostPort, const std::string& path)>&
        makeRequest) {
  auto target = parseUrl(url);
  if (!target.isOk()) return target.status();
  sockaddr_storage addr{};
  socklen_t addrLen = 0;
  int family = AF_INET;
  if (auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
      inet_pton(AF_INET, target->host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(target->port);
    addrLen = sizeof(sockaddr_in);
  } else if (auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
             inet_pton(AF_INET6, target->host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(target->port);
    addrLen = sizeof(sockaddr_in6);
    family = AF_INET6;
  } else {
    return badRequestError("streaming URL \"" + url + "\": the host must be an IP address");
  }
  FdGuard fd{::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (fd.fd < 0) return unavailableError(std::string("socket: ") + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto waitFor = [&](short events) -> bool {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd.fd, events, 0};
      int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r < 0 && errno == EINTR) continue;
      return r > 0;
    }
  };
  const std::string where = "the container runtime's streaming server " + target->host + ":" +
                            std::to_string(target->port);
  if (::connect(fd.fd, reinterpret_cast<sockaddr*>(&addr), addrLen) != 0) {
    if (errno != EINPROGRESS || !waitFor(POLLOUT)) {
      return unavailableError("cannot connect to " + where);
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      return unavailableError("cannot connect to " + where + ": " + std::strerror(err));
    }
  }
  int one = 1;
  setsockopt(fd.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // keystrokes go out at once

  const std::string host = family == AF_INET6 ? "[" + target->host + "]" : target->host;
  const std::string request = makeRequest(host + ":" + std::to_string(target->port), target->path);
  std::string_view pending = request;
  while (!pending.empty()) {
    if (!waitFor(POLLOUT)) return unavailableError("timed out sending the upgrade to " + where);
    ssize_t n = ::send(fd.fd, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return unavailableError("sending the upgrade to " + where + " failed");
    pending.remove_prefix(static_cast<size_t>(n));
  }
  std::string response;
  size_t headEnd = std::string::npos;
  while ((headEnd = response.find("\r\n\r\n")) == std::string::npos) {
    if (response.size() > kMaxHandshake) {
      return unavailableError(where + " answered an oversized upgrade response");
    }
    if (!waitFor(POLLIN)) return unavailableError("timed out waiting for " + where);
    char buf[4096];
    ssize_t n = ::recv(fd.fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return unavailableError(where + " closed the connection during the upgrade");
    response.append(buf, static_cast<size_t>(n));
  }
  UpgradedConnection out;
  out.head = response.substr(0, headEnd + 2);
  const std::string statusLine = out.head.substr(0, out.head.find("\r\n"));
  if (statusLine.rfind("HTTP/1.1 101", 0) != 0) {
    // The body (if any came along) says why: containerd answers a plain-text reason.
    std::string body = response.substr(headEnd + 4, 512);
    return unavailableError(where + " refused the upgrade: " + statusLine +
                            (body.empty() ? "" : ": " + body));
  }
  out.buffered = response.substr(headEnd + 4);
  // Blocking from here on: reads and writes run on their own threads and shutdown() ends them.
  int flags = fcntl(fd.fd, F_GETFL);
  if (flags < 0 || fcntl(fd.fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return unavailableError(std::string("fcntl: ") + std::strerror(errno));
  }
  out.fd = fd.release();
  return out;
}

}  // namespace ep::edged::streaming
