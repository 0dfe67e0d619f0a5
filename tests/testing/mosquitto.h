#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/process.h"

namespace ep::testing {

// Files of a TLS listener (PEM paths). With clientCert/clientKey the broker requires a client
// certificate from its CA, and the helper's own clients present these.
struct MosquittoTls {
  std::string caFile, certFile, keyFile;
  std::string clientCertFile, clientKeyFile;
};

// A real mosquitto broker on a free loopback port, configured under `dir` (anonymous access,
// in-memory persistence; with `tls`, a TLS listener only). Killed on destruction.
class Mosquitto {
 public:
  explicit Mosquitto(std::string dir, std::optional<MosquittoTls> tls = std::nullopt)
      : dir_(std::move(dir)), tls_(std::move(tls)) {}

  static bool available() {
    return runCommand({"sh", "-c", "test -x /usr/sbin/mosquitto && command -v mosquitto_pub"})
               .exitCode == 0;
  }

  bool start() {
    if (port_ == 0) port_ = freePort();
    const std::string conf = dir_ + "/mosquitto.conf";
    std::ofstream out(conf);
    out << "listener " << port_ << " 127.0.0.1\n"
        << "allow_anonymous true\n"
        << "persistence false\n";
    if (tls_) {
      // As root mosquitto would switch to its own user, which cannot read the test's files.
      out << "user root\n"
          << "cafile " << tls_->caFile << "\n"
          << "certfile " << tls_->certFile << "\n"
          << "keyfile " << tls_->keyFile << "\n"
          << "require_certificate " << (tls_->clientCertFile.empty() ? "false" : "true") << "\n";
    }
    out.close();
    // The log is appended to across restarts: only what this start writes counts.
    std::error_code ec;
    const auto logFrom = std::filesystem::exists(dir_ + "/mosquitto.log", ec)
                             ? std::filesystem::file_size(dir_ + "/mosquitto.log", ec)
                             : 0;
    proc_ = std::make_unique<Process>(std::vector<std::string>{"/usr/sbin/mosquitto", "-c", conf},
                                      dir_ + "/mosquitto.log");
    if (!proc_->start()) return false;
    // Ready when this broker says it listens on the port and the port accepts: a port that
    // accepts while this broker has exited belongs to some other process.
    const std::string listening = "listen socket on port " + std::to_string(port_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!proc_->running()) return false;
      const std::string log = proc_->log();
      if (log.size() > logFrom && log.find(listening, logFrom) != std::string::npos && accepts()) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void stop() { proc_.reset(); }

  int port() const { return port_; }
  std::string url() const {
    return (tls_ ? "ssl://127.0.0.1:" : "tcp://127.0.0.1:") + std::to_string(port_);
  }
  std::string log() const { return proc_ ? proc_->log() : ""; }

  // mosquitto_pub of one message (QoS 1).
  CommandResult publish(const std::string& topic, const std::string& payload) const {
    std::vector<std::string> args = {
        "mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port_), "-q", "1", "-t",
        topic,           "-m", payload};
    addTlsArgs(args);
    return runCommand(args);
  }

  // A mosquitto_sub printing "TOPIC PAYLOAD" lines to a log; started before what it watches.
  std::unique_ptr<Process> subscribe(const std::string& filter, const std::string& logName) const {
    std::vector<std::string> args = {"/usr/bin/mosquitto_sub",
                                     "-h",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(port_),
                                     "-q",
                                     "1",
                                     "-v",
                                     "-t",
                                     filter};
    addTlsArgs(args);
    auto p = std::make_unique<Process>(args, dir_ + "/" + logName);
    if (!p->start()) return nullptr;
    return p;
  }

 private:
  void addTlsArgs(std::vector<std::string>& args) const {
    if (!tls_) return;
    args.insert(args.end(), {"--cafile", tls_->caFile});
    if (!tls_->clientCertFile.empty()) {
      args.insert(args.end(), {"--cert", tls_->clientCertFile, "--key", tls_->clientKeyFile});
    }
  }

  bool accepts() const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }

  std::string dir_;
  std::optional<MosquittoTls> tls_;
  int port_ = 0;
  std::unique_ptr<Process> proc_;
};

}  // namespace ep::testing
