#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

// A private containerd + image registry (scripts/cri-env.sh) for tests that need a real
// container runtime. Needs EP_SOURCE_DIR defined at compile time (the repository root).
namespace ep::testing {

// Owns one environment in a fresh temp dir: up() starts it, the destructor (or down()) stops
// it and removes the dir. The registry port is a free one; the CNI bridge and subnet are
// derived from it (10.P1.P2.0/24 for port P1*256+P2), so environments of concurrent test
// processes do not collide. Not thread-safe; one per test process is the intended use.
class CriEnv {
 public:
  CriEnv() = default;
  ~CriEnv() { down(); }
  CriEnv(const CriEnv&) = delete;
  CriEnv& operator=(const CriEnv&) = delete;

  // Why this machine cannot run the environment (not root, containerd missing); empty if it
  // can. Tests skip with this message.
  static std::string skipReason() {
    if (geteuid() != 0) return "needs root (containerd and runc run as root)";
    for (const char* tool :
         {"containerd", "runc", "docker-registry", "skopeo", "umoci", "htpasswd", "openssl"}) {
      if (!inPath(tool)) {
        return std::string(tool) + " is not installed (scripts/install-deps.sh installs it)";
      }
    }
    return {};
  }

  // Starts everything; on failure returns false and error() holds the script's output.
  bool up() {
    if (port_ == 0) port_ = freePort();  // kept across down() + up(): a "reboot"
    if (securePort_ == 0) {
      do {
        securePort_ = freePort();
      } while (securePort_ == port_);
    }
    std::string script = std::string(EP_SOURCE_DIR) + "/scripts/cri-env.sh";
    auto r = runCommand({script, "up", dir_.path()}, "", std::chrono::minutes(3), scriptEnv());
    started_ = true;
    if (r.exitCode != 0) {
      error_ = "cri-env.sh up failed (exit " + std::to_string(r.exitCode) + "):\n" + r.out + r.err +
               "\n--- containerd.log tail ---\n" + tail(dir_.path() + "/containerd.log");
      return false;
    }
    return true;
  }

  void down() {
    if (!started_) return;
    started_ = false;
    std::string script = std::string(EP_SOURCE_DIR) + "/scripts/cri-env.sh";
    runCommand({script, "down", dir_.path()}, "", std::chrono::minutes(1), scriptEnv());
  }

  const std::string& dir() const { return dir_.path(); }
  std::string endpoint() const { return "unix://" + dir_.path() + "/containerd.sock"; }
  std::string registry() const { return "127.0.0.1:" + std::to_string(port_); }
  // The registry with TLS (its own CA, which containerd trusts for it) and htpasswd
  // authentication: user securePassword()'s owner "edgeplane", images under edgeplane/.
  std::string secureRegistry() const { return "127.0.0.1:" + std::to_string(securePort_); }
  std::string secureRegistryCa() const { return dir_.path() + "/registry-auth/ca.crt"; }
  static std::string secureUser() { return "edgeplane"; }
  std::string securePassword() const {
    std::string p = tail(dir_.path() + "/registry-auth/password");
    while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.pop_back();
    return p;
  }
  // "10.P1.P2." (the pod subnet's first three octets).
  std::string subnetPrefix() const {
    return "10." + std::to_string(port_ >> 8) + "." + std::to_string(port_ & 255) + ".";
  }
  std::string bridge() const { return "epcri" + std::to_string(port_); }
  const std::string& error() const { return error_; }

 private:
  static bool inPath(const std::string& tool) {
    const char* path = std::getenv("PATH");
    std::string dirs = std::string(path ? path : "") + ":/usr/sbin:/sbin";
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string d = dirs.substr(start, end - start);
      if (!d.empty() && access((d + "/" + tool).c_str(), X_OK) == 0) return true;
      start = end + 1;
    }
    return false;
  }

  static std::string tail(const std::string& file, size_t bytes = 4000) {
    std::ifstream in(file);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
  }

  std::vector<std::string> scriptEnv() const {
    return {"EP_REGISTRY_PORT=" + std::to_string(port_),
            "EP_SECURE_REGISTRY_PORT=" + std::to_string(securePort_),
            "EP_CNI_SUBNET=" + subnetPrefix() + "0/24", "EP_CNI_BRIDGE=" + bridge()};
  }

  TempDir dir_;
  int port_ = 0;
  int securePort_ = 0;
  bool started_ = false;
  std::string error_;
};

}  // namespace ep::testing
