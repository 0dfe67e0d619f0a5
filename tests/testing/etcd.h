#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/process.h"

namespace ep::testing {

// A real etcd (Debian's etcd-server) of `members` members on free loopback ports, data under
// `dir`/mN. Members can be killed (SIGKILL) and started again on their data, as a crashed host
// would come back. Killed on destruction. Not thread-safe.
class EtcdCluster {
 public:
  explicit EtcdCluster(std::string dir, int members = 1) : dir_(std::move(dir)) {
    for (int i = 0; i < members; ++i) members_.push_back(Member{freePort(), freePort(), nullptr});
  }
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Why this machine cannot run etcd; empty if it can. Tests skip with this message.
  static std::string skipReason() {
    if (runCommand({"sh", "-c", "test -x /usr/bin/etcd"}).exitCode != 0) {
      return "etcd is not installed (scripts/install-deps.sh installs etcd-server)";
    }
    return {};
  }

  // Starts every member and waits until each serves clients (a quorum formed).
  bool start() {
    for (size_t i = 0; i < members_.size(); ++i) {
      if (!launch(i)) return false;
    }
    for (size_t i = 0; i < members_.size(); ++i) {
      if (!waitServing(i)) return false;
    }
    return true;
  }
  // Starts member i again on its data (after kill), waiting until it serves.
  bool startMember(size_t i) { return launch(i) && waitServing(i); }
  void killMember(size_t i) {
    if (members_[i].proc) members_[i].proc->stop(SIGKILL);
    members_[i].proc.reset();
  }

  size_t size() const { return members_.size(); }
  std::string endpoint(size_t i) const {
    return "127.0.0.1:" + std::to_string(members_[i].clientPort);
  }
  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < members_.size(); ++i) out.push_back(endpoint(i));
    return out;
  }
  // cloudcore --store value.
  std::string url() const {
    std::string u = "etcd://";
    for (size_t i = 0; i < members_.size(); ++i) u += (i ? "," : "") + endpoint(i);
    return u;
  }
  std::string log(size_t i) const { return members_[i].proc ? members_[i].proc->log() : ""; }

 private:
  struct Member {
    int clientPort;
    int peerPort;
    std::unique_ptr<Process> proc;
    uintmax_t logFrom = 0;
  };

  std::string name(size_t i) const { return "m" + std::to_string(i); }
  std::string peerUrl(size_t i) const {
    return "http://127.0.0.1:" + std::to_string(members_[i].peerPort);
  }

  bool launch(size_t i) {
    Member& m = members_[i];
    std::string cluster;
    for (size_t j = 0; j < members_.size(); ++j) {
      cluster += (j ? "," : "") + name(j) + "=" + peerUrl(j);
    }
    const std::string client = "http://" + endpoint(i);
    const std::string logPath = dir_ + "/" + name(i) + ".log";
    std::error_code ec;
    m.logFrom = std::filesystem::exists(logPath, ec) ? std::filesystem::file_size(logPath, ec) : 0;
    m.proc = std::make_unique<Process>(
        std::vector<std::string>{
            "/usr/bin/etcd", "--name", name(i), "--data-dir", dir_ + "/" + name(i),
            "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls",
            peerUrl(i), "--initial-advertise-peer-urls", peerUrl(i), "--initial-cluster", cluster,
            "--initial-cluster-token", "ep-test", "--initial-cluster-state", "new"},
        logPath);
    return m.proc->start();
  }

  bool waitServing(size_t i) {
    Member& m = members_[i];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!m.proc || !m.proc->running()) return false;
      const std::string log = m.proc->log();
      if (log.size() > m.logFrom &&
          log.find("ready to serve client requests", m.logFrom) != std::string::npos &&
          accepts(m.clientPort)) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  static bool accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }

  std::string dir_;
  std::vector<Member> members_;
};

}  // namespace ep::testing
