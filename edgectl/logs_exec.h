#pragma once

// edgectl logs and edgectl exec: container output and commands of pods on edge nodes, through
// cloudcore's pods/log and pods/exec (which reach the node over the tunnel).

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "edgectl/context.h"

namespace ep::edgectl {

struct LogsOptions {
  std::vector<std::string> args;  // POD or pod/POD
  std::string container;          // -c
  bool follow = false;            // -f
  int64_t tail = -1;              // --tail; -1: all
  bool previous = false;          // -p, --previous
  bool timestamps = false;        // --timestamps
  std::string since;              // --since, e.g. 5s, 2m, 3h
  int64_t limitBytes = 0;         // --limit-bytes
};

struct ExecOptions {
  std::vector<std::string> args;  // POD -- COMMAND [ARGS...]
  std::string container;          // -c
  int64_t timeoutSeconds = 0;     // --timeout (seconds, 0: the node's default)
};

// The request path (with query) of `edgectl logs` in `ns`; kInvalid on bad flags.
Result<std::string> logsPath(const std::string& ns, const LogsOptions& options);
// The request path of `edgectl exec`; kInvalid without a pod or a command.
Result<std::string> execPath(const std::string& ns, const ExecOptions& options);

// Prints the log to ctx.out (following with -f until the container exits or the server ends
// the stream). Returns the process exit code.
int runLogs(Context& ctx, const LogsOptions& options);
// Runs the command, prints its stdout to ctx.out and stderr to ctx.err. Returns the remote exit
// code (1 when the request failed). Non-interactive only: uses the API's JSON answer (the
// non-WebSocket form of pods/exec).
int runExec(Context& ctx, const ExecOptions& options);

}  // namespace ep::edgectl
