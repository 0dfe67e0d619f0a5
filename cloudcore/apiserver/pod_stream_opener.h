#pragma once

// The seam between the API's pod log/exec endpoints (pod_streams.h) and whatever carries a
// stream to the pod's node. The apiserver owns this interface; cloudhub's StreamBroker
// implements it over the tunnel, and tests may fake it. Header-only, standard library only.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace ep::apiserver {

// What the API asks an edge node for (docs/tunnel.md, "Streams").
struct StreamRequest {
  enum class Kind { kLogs, kExec, kAttach, kPortForward };
  Kind kind = Kind::kLogs;
  std::string ns;
  std::string pod;
  std::string container;  // resolved by the caller: never empty, except for port-forward
  // Logs (Kubernetes PodLogOptions).
  bool follow = false;
  int64_t tailLines = -1;  // -1: all
  bool previous = false;
  bool timestamps = false;
  int64_t sinceSeconds = 0;
  int64_t limitBytes = 0;
  // Exec.
  std::vector<std::string> command;
  int64_t timeoutSeconds = 0;
  // Exec and attach: interactive when either is set (attach always is). Input then follows
  // through StreamHandle::input/resize.
  bool stdin = false;
  bool tty = false;
  bool interactive() const { return stdin || tty || kind == Kind::kAttach; }
  // Port-forward: a TCP connection to `port` on the pod's loopback, in the pod's network
  // namespace. Its bytes are the output's kStdout both ways: input() carries the client's bytes,
  // and closeStdin its end of sending (a half-close).
  uint16_t port = 0;
};

// Output channels of a stream. kReady comes once, empty, first: the edge found the container.
enum class StreamChannel { kReady = 0, kStdout = 1, kStderr = 2 };

// Receives one stream's output. Called on the carrier's threads (for cloudhub: gRPC reactions,
// and onClose also from the thread that notices a disconnect); calls for one stream never
// overlap and come in order. Must be thread-safe against the consumer and must not block.
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  virtual void onData(StreamChannel channel, std::string data) = 0;
  // The last call. `status` is OK on success (`exitCode` is exec's exit code), otherwise the
  // edge's error (kNotFound, kBadRequest, kTimeout, ...) or kUnavailable when the node
  // disconnected.
  virtual void onClose(Status status, int32_t exitCode) = 0;
  // Interactive streams: the edge wrote `inputs` more of the input()/resize() calls, holding
  // `bytes` stdin bytes.
  virtual void onInputAck(uint64_t bytes, uint32_t inputs) = 0;
};

// The API's side of one open stream. Thread-safe, non-blocking. Destroying it does not cancel:
// call cancel().
class StreamHandle {
 public:
  virtual ~StreamHandle() = default;
  // The consumer used up `bytes` of output: the edge may send that much more.
  virtual void consumed(size_t bytes) = 0;
  // The client went away: the stream is cancelled on the edge and forgotten; after it returns no
  // callback starts (one already running may still finish).
  virtual void cancel() = 0;
  // Interactive streams: stdin bytes for the container (at most 32 KiB a call), then
  // (closeStdin) the end of stdin. The caller keeps what the observer has not acknowledged
  // (onInputAck) within 32 calls and about 64 KiB, the tunnel protocol's bound.
  virtual void input(std::string data, bool closeStdin) = 0;
  // Interactive streams with a tty: the terminal's new size.
  virtual void resize(uint32_t width, uint32_t height) = 0;
};

// Opens streams to nodes. Thread-safe, non-blocking.
class StreamOpener {
 public:
  virtual ~StreamOpener() = default;
  // kUnavailable when the node is not connected or has too many streams open; kBadRequest for
  // an interactive request or a port-forward to a node whose edgecore cannot serve one.
  virtual Result<std::shared_ptr<StreamHandle>> open(const std::string& node,
                                                     const StreamRequest& request,
                                                     std::shared_ptr<StreamObserver> observer) = 0;
};

}  // namespace ep::apiserver
