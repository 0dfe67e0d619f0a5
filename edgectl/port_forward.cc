#include "edgectl/port_forward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <system_error>
#include <thread>

#include "common/http/client.h"
#include "edgectl/api_client.h"
#include "edgectl/paths.h"

namespace ep::edgectl {

namespace {

using json = nlohmann::json;

// "8080", not "0", not "http" (names are resolved against the pod separately).
std::optional<uint16_t> portNumber(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + uint32_t(c - '0');
  }
  if (n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

// The port of the pod's containers named `name`, or 0.
uint16_t namedContainerPort(const json& pod, const std::string& name) {
  const json containers = pod.value("spec", json::object()).value("containers", json::array());
  for (const auto& c : containers) {
    for (const auto& p : c.value("ports", json::array())) {
      if (p.value("name", "") == name) return static_cast<uint16_t>(p.value("containerPort", 0));
    }
  }
  return 0;
}

// "key=value,..." of a matchLabels / selector map.
std::string selectorText(const json& labels) {
  std::string out;
  for (const auto& [k, v] : labels.items()) {
    if (!v.is_string()) continue;
    out += (out.empty() ? "" : ",") + k + "=" + v.get<std::string>();
  }
  return out;
}

Result<json> getJson(Context& ctx, const std::string& path) {
  auto r = ctx.api->call("GET", path);
  if (!r) return r.status();
  if (!r->ok()) return Status(http::codeForHttpStatus(r->status), serverMessage(*r));
  return r->body;
}

// The first running pod matching `selector` (sorted by name, so the choice is stable).
Result<json> runningPodFor(Context& ctx, const std::string& what, const std::string& selector) {
  if (selector.empty()) return invalidError(what + " has no selector");
  auto list = getJson(ctx, "/api/v1/namespaces/" + percentEncode(ctx.ns) +
                               "/pods?labelSelector=" + percentEncode(selector));
  if (!list) return list.status();
  const json items = (*list).value("items", json::array());
  const json* best = nullptr;
  // By name, the first running one not being deleted (a stable choice).
  auto field = [](const json& o, const char* object, const char* key) {
    return o.value(object, json::object()).value(key, std::string());
  };
  for (const auto& p : items) {
    if (field(p, "status", "phase") != "Running" ||
        p.value("metadata", json::object()).contains("deletionTimestamp")) {
      continue;
    }
    if (best == nullptr || field(p, "metadata", "name") < field(*best, "metadata", "name")) {
      best = &p;
    }
  }
  if (best == nullptr) return notFoundError("no running pod found for " + what);
  return *best;
}

}  // namespace

Result<PortForwardTarget> resolvePortForward(Context& ctx, const PortForwardOptions& o) {
  if (o.args.size() < 2) {
    return invalidError(
        "expected TYPE/NAME and at least one port: edgectl port-forward TYPE/NAME "
        "[LOCAL_PORT:]REMOTE_PORT...");
  }
  const std::string& resource = o.args[0];
  const auto slash = resource.find('/');
  const std::string kind = slash == std::string::npos ? "pod" : resource.substr(0, slash);
  const std::string name = slash == std::string::npos ? resource : resource.substr(slash + 1);
  if (name.empty()) return invalidError("missing a name in \"" + resource + "\"");
  const std::string ns = percentEncode(ctx.ns);
  json pod;
  json service;  // set for svc/NAME
  if (kind == "pod" || kind == "pods" || kind == "po") {
    auto p = getJson(ctx, "/api/v1/namespaces/" + ns + "/pods/" + percentEncode(name));
    if (!p) return p.status();
    pod = std::move(p).value();
  } else if (kind == "svc" || kind == "service" || kind == "services") {
    auto s = getJson(ctx, "/api/v1/namespaces/" + ns + "/services/" + percentEncode(name));
    if (!s) return s.status();
    service = std::move(s).value();
    auto p = runningPodFor(ctx, "service " + name,
                           selectorText(service["spec"].value("selector", json::object())));
    if (!p) return p.status();
    pod = std::move(p).value();
  } else if (kind == "deploy" || kind == "deployment" || kind == "deployments" || kind == "rs" ||
             kind == "replicaset" || kind == "replicasets") {
    const bool rs = kind.rfind("r", 0) == 0;
    auto w = getJson(ctx, "/apis/apps/v1/namespaces/" + ns +
                              (rs ? "/replicasets/" : "/deployments/") + percentEncode(name));
    if (!w) return w.status();
    auto p = runningPodFor(
        ctx, (rs ? "replicaset " : "deployment ") + name,
        selectorText(
            (*w)["spec"].value("selector", json::object()).value("matchLabels", json::object())));
    if (!p) return p.status();
    pod = std::move(p).value();
  } else {
    return invalidError("cannot forward ports of \"" + kind +
                        "\": use a pod, service, deployment or replicaset");
  }
  const std::string phase = pod.value("status", json::object()).value("phase", "");
  if (phase != "Running") {
    return invalidError("unable to forward port because pod is not running. Current status=" +
                        (phase.empty() ? std::string("Unknown") : phase));
  }
  PortForwardTarget t;
  t.pod = pod.value("metadata", json::object()).value("name", "");
  for (size_t i = 1; i < o.args.size(); ++i) {
    const std::string& spec = o.args[i];
    const auto colon = spec.find(':');
    const std::string localText = colon == std::string::npos ? spec : spec.substr(0, colon);
    const std::string remoteText = colon == std::string::npos ? spec : spec.substr(colon + 1);
    PortForwardTarget::Mapping m;
    if (!localText.empty() || colon == std::string::npos) {
      auto local = portNumber(localText);
      // "http" alone names the remote port; the local one then takes its number.
      if (!local && colon != std::string::npos) {
        return invalidError("invalid local port \"" + localText + "\" in \"" + spec + "\"");
      }
      if (local) m.local = *local;
    }
    uint32_t remote = 0;
    if (auto n = portNumber(remoteText)) {
      remote = *n;
    }
    if (!service.is_null()) {
      // A service port: its targetPort (a number, or a container port's name), as kubectl maps.
      const json servicePorts = service["spec"].value("ports", json::array());
      const json* match = nullptr;
      for (const auto& sp : servicePorts) {
        if (sp.value("protocol", "TCP") != "TCP") continue;
        if ((remote != 0 && sp.value("port", 0) == static_cast<int>(remote)) ||
            (remote == 0 && sp.value("name", "") == remoteText)) {
          match = &sp;
          break;
        }
      }
      if (match == nullptr) {
        return invalidError("service " + name + " does not have a service port " + remoteText);
      }
      const uint32_t servicePort = match->value("port", 0u);
      const json target = match->value("targetPort", json(servicePort));
      remote = target.is_number() ? target.get<uint32_t>()
                                  : namedContainerPort(pod, target.get<std::string>());
      // kubectl: a service port named alone listens on the service port's number.
      if (colon == std::string::npos && servicePort > 0 && servicePort <= 65535) {
        m.local = static_cast<uint16_t>(servicePort);
      }
    } else if (remote == 0) {
      remote = namedContainerPort(pod, remoteText);
    }
    if (remote == 0 || remote > 65535) {
      return invalidError("pod " + t.pod + " has no port \"" + remoteText + "\" in \"" + spec +
                          "\"");
    }
    m.remote = static_cast<uint16_t>(remote);
    if (colon == std::string::npos && !portNumber(localText) && m.local == 0) m.local = m.remote;
    t.ports.push_back(m);
  }
  return t;
}

namespace {

// One forwarded connection: its local socket and its WebSocket, until either ends.
void forwardConnection(Context& ctx, std::mutex& printMu, int fd, uint16_t local, uint16_t remote,
                       const std::string& path) {
  auto ws = ctx.api->openWebSocket(path, "v4.channel.k8s.io");
  if (!ws) {
    std::lock_guard l(printMu);
    *ctx.err << "error: an error occurred forwarding " << local << " -> " << remote << ": "
             << ws.status().message() << "\n";
    ::close(fd);
    return;
  }
  std::shared_ptr<http::ClientWebSocket> socket = std::move(ws).value();
  // Local bytes to the pod on channel 0; the local side ending only stops the sending (the
  // protocol cannot pass a half-close), the answer may still come.
  std::thread sender;
  try {
    sender = std::thread([socket, fd] {
      std::string buf(32 * 1024 + 1, '\0');
      for (;;) {
        ssize_t n = ::read(fd, buf.data() + 1, buf.size() - 1);
        if (n < 0) socket->close();  // a local error ends the connection, as in kubectl
        if (n <= 0) return;
        if (!socket->write(std::string_view(buf.data(), static_cast<size_t>(n) + 1)).isOk()) return;
      }
    });
  } catch (const std::system_error& e) {
    std::lock_guard l(printMu);
    *ctx.err << "error: cannot forward a connection: " << e.what() << "\n";
    ::close(fd);
    return;
  }
  size_t prefix[2] = {2, 2};  // each channel starts with the port, 2 bytes
  std::string error;
  for (;;) {
    auto m = socket->read();
    if (!m || m->empty()) break;
    const auto channel = static_cast<uint8_t>((*m)[0]);
    if (channel > 1) continue;
    std::string_view payload = std::string_view(*m).substr(1);
    const size_t skip = std::min(prefix[channel], payload.size());
    prefix[channel] -= skip;
    payload.remove_prefix(skip);
    if (channel == 1) {
      error.append(payload.substr(0, 4096 - std::min<size_t>(error.size(), 4096)));
      continue;
    }
    bool ok = true;
    while (ok && !payload.empty()) {
      ssize_t n = ::send(fd, payload.data(), payload.size(), MSG_NOSIGNAL);
      ok = n > 0;
      if (ok) payload.remove_prefix(static_cast<size_t>(n));
    }
    if (!ok) break;
  }
  ::shutdown(fd, SHUT_RDWR);  // ends the sender's read
  socket->close();
  sender.join();
  ::close(fd);
  if (!error.empty()) {
    std::lock_guard l(printMu);
    *ctx.err << "error: an error occurred forwarding " << local << " -> " << remote << ": " << error
             << "\n";
  }
}

struct Listener {
  int fd = -1;
  std::string address;  // for messages
  uint16_t local = 0;
  uint16_t remote = 0;
};

// A listening socket on `address` (an IPv4 or IPv6 literal) and `port` (0: any).
Result<Listener> listenOn(const std::string& address, uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const bool v6 = address.find(':') != std::string::npos;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, address.c_str(), &a->sin6_addr) != 1) {
      return invalidError("--address: \"" + address + "\" is not an IP address");
    }
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &a->sin_addr) != 1) {
      return invalidError("--address: \"" + address + "\" is not an IP address");
    }
    len = sizeof(sockaddr_in);
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unavailableError("socket: " + std::string(strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 64) != 0) {
    std::string why = strerror(errno);
    ::close(fd);
    return unavailableError("unable to listen on " + address + ":" + std::to_string(port) + ": " +
                            why);
  }
  sockaddr_storage bound{};
  socklen_t boundLen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &boundLen);
  Listener l;
  l.fd = fd;
  l.address = address;
  l.local = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return l;
}

}  // namespace

int runPortForward(Context& ctx, const PortForwardOptions& options) {
  auto target = resolvePortForward(ctx, options);
  if (!target) {
    *ctx.err << "error: " << target.status().message() << "\n";
    return 1;
  }
  std::vector<std::string> addresses;
  for (const auto& a : options.addresses) {
    size_t start = 0;
    while (start <= a.size()) {
      size_t comma = a.find(',', start);
      std::string one =
          a.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (one == "localhost") {
        addresses.push_back("127.0.0.1");
        addresses.push_back("::1");
      } else if (!one.empty()) {
        addresses.push_back(one);
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  // Every address of a port shares its local port: the first listener picks it when it is 0.
  std::vector<Listener> listeners;
  for (const auto& m : target->ports) {
    uint16_t local = m.local;
    size_t bound = 0;
    for (const auto& address : addresses) {
      auto l = listenOn(address, local);
      if (!l) {
        // kubectl goes on when one of localhost's two addresses is not available.
        *ctx.err << "error: " << l.status().message() << "\n";
        continue;
      }
      local = l->local;
      l->remote = m.remote;
      *ctx.out << "Forwarding from "
               << (address.find(':') != std::string::npos ? "[" + address + "]" : address) << ":"
               << local << " -> " << m.remote << "\n";
      listeners.push_back(*l);
      ++bound;
    }
    if (bound == 0) {
      *ctx.err << "error: unable to listen on any of the requested ports: " << m.local << "\n";
      for (auto& l : listeners) ::close(l.fd);
      return 1;
    }
  }
  ctx.out->flush();
  const std::string base = "/api/v1/namespaces/" + percentEncode(ctx.ns) + "/pods/" +
                           percentEncode(target->pod) + "/portforward?ports=";
  static std::mutex printMu;  // outlives the connections' threads
  std::vector<pollfd> fds;
  for (const auto& l : listeners) fds.push_back(pollfd{l.fd, POLLIN, 0});
  // Until interrupted (SIGINT/SIGTERM end the process, as they end kubectl's).
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      {
        std::lock_guard lock(printMu);
        *ctx.err << "error: poll: " << strerror(errno) << "\n";
        ctx.err->flush();
      }
      _exit(1);  // connection threads still use ctx: no return into main's teardown
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      int conn = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) {
        // Out of descriptors: the connection stays pending and poll() would spin; wait a bit.
        if (errno == EMFILE || errno == ENFILE) ::usleep(100 * 1000);
        continue;
      }
      const Listener& l = listeners[i];
      {
        std::lock_guard lock(printMu);
        *ctx.out << "Handling connection for " << l.local << "\n";
        ctx.out->flush();
      }
      // Each connection on a thread of its own, for as long as it lasts; the process's end
      // (an interrupt) ends them all.
      try {
        std::thread(forwardConnection, std::ref(ctx), std::ref(printMu), conn, l.local, l.remote,
                    base + std::to_string(l.remote))
            .detach();
      } catch (const std::system_error& e) {
        std::lock_guard lock(printMu);
        *ctx.err << "error: cannot forward a connection: " << e.what() << "\n";
        ::close(conn);
      }
    }
  }
}

}  // namespace ep::edgectl
