#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/apiserver/pod_stream_opener.h"
#include "cloudcore/registry/registry.h"

namespace ep::apiserver {

struct PodStreamsOptions {
  // How long a request waits for the edge to find the container (or fail) before 504.
  std::chrono::milliseconds firstReplyTimeout{30000};
  // Requests that may wait for their node's first reply at once, each holding an HTTP worker;
  // more get 503 at once, so stuck nodes never take every worker of the API (issue 14).
  // cloudcore sets half its API workers.
  size_t maxWaitingOpens = 4;
};

// pods/log, pods/exec and pods/attach (docs/api.md) for pods on edge nodes, carried by a
// StreamOpener (pod_stream_opener.h; in cloudcore, cloudhub's StreamBroker over the tunnel).
// Validates like the Kubernetes API server (pod, container, node), then opens a tunnel stream to
// the pod's node and waits for the edge's first reply so that edge errors (container not found, no
// previous container) become HTTP errors. Logs then stream as chunked text/plain; exec and attach
// answer a WebSocket upgrade (v5.channel.k8s.io / v4.channel.k8s.io: 1 stdout, 2 stderr, 3 a v1
// Status; from the client 0 stdin, 4 terminal size, v5's 255 end of stdin) or, for exec without
// input and without an upgrade, a JSON ExecResult streamed once the command ends (edgectl's
// fallback). Handlers run on the HTTP worker pool and may block up to firstReplyTimeout, at most
// maxWaitingOpens of them at once; an open stream holds no worker. Thread-safe; `registry` and
// `broker` must outlive it.
class PodStreams {
 public:
  PodStreams(registry::Registry& registry, StreamOpener& broker, PodStreamsOptions options = {});

  // Registers pods/log, pods/exec, pods/attach and pods/portforward on `handler`.
  void install(ApiHandler& handler);

  ServerResponse logs(ServerRequest& req, const std::string& ns, const std::string& name);
  ServerResponse exec(ServerRequest& req, const std::string& ns, const std::string& name);
  ServerResponse attach(ServerRequest& req, const std::string& ns, const std::string& name);
  // kubectl port-forward: a WebSocket offering SPDY/3.1+portforward.k8s.io becomes a
  // PortForwardSession (port_forward.h) to the pod's node; holds no worker once upgraded.
  ServerResponse portForward(ServerRequest& req, const std::string& ns, const std::string& name);

 private:
  // exec and attach: checks, then a WebSocket (or, for exec without input, an ExecResult).
  ServerResponse remoteCommand(ServerRequest& req, const std::string& ns, const std::string& name,
                               StreamRequest::Kind kind);

  registry::Registry& registry_;
  StreamOpener& broker_;
  const PodStreamsOptions options_;
  std::atomic<size_t> waitingOpens_{0};  // requests waiting for a node's first reply
};

// Every value of query parameter `name` in a raw request target, in order (exec's repeated
// `command`). Percent-decoded.
std::vector<std::string> queryValues(const std::string& target, const std::string& name);

// The v1 Status JSON kubectl expects on exec's error channel for `exitCode` (Success for 0,
// Failure/NonZeroExitCode with an ExitCode cause otherwise).
std::string execStatusJson(int32_t exitCode);

}  // namespace ep::apiserver
