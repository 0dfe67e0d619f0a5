#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ep::testing {

// A child process for integration tests. stdout and stderr go to `logPath`. The destructor
// kills the process (SIGKILL) if it still runs. Not thread-safe.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string logPath);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool start();
  // Sends `sig` and waits for exit (up to timeout). Returns the wait status, -1 on timeout.
  int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool running();
  pid_t pid() const { return pid_; }
  std::string log() const;

 private:
  std::vector<std::string> argv_;
  std::string logPath_;
  pid_t pid_ = -1;
};

// The local port a running `kubectl|edgectl port-forward` printed ("Forwarding from
// 127.0.0.1:PORT -> ..."), polled in its log until `timeout`; 0 if it never did.
int forwardedPort(const Process& p, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Result of running a command to completion.
struct CommandResult {
  int exitCode = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv with optional stdin text; waits up to timeout (then SIGKILL, exitCode -1).
CommandResult runCommand(const std::vector<std::string>& argv, const std::string& stdinText = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::vector<std::string>& extraEnv = {});

// A TCP port that was free a moment ago and that no other test process on this machine is
// handed until every port of the range below the ephemeral range has been handed out (one
// counter in /tmp/ep-test-ports, under flock). Falls back to bind(0) when that file is unusable.
int freePort();
// Whether freePort() can use the shared counter here (else it falls back, saying so once).
bool portsAreShared();

// $EP_BUILD_DIR/relative (the build tree that holds the binaries under test).
std::string buildPath(const std::string& relative);

// Polls http[s]://127.0.0.1:port/readyz until it answers 200 or timeout (https: the server's
// certificate is not checked; /readyz needs no credentials).
bool waitReady(int port, std::chrono::milliseconds timeout = std::chrono::seconds(20),
               bool https = false);

}  // namespace ep::testing
