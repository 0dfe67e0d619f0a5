#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"
#include "edgecore/edged/runtime/container_runtime.h"
#include "edgecore/edgehub/stream_handler.h"

namespace ep::edged::streaming {

class ChannelSession;

struct StreamServerOptions {
  // Streams running at once; more are refused with STREAM_ERROR_UNAVAILABLE.
  size_t maxStreams = 16;
  // How often a following stream looks for new log data and whether the container exited.
  std::chrono::milliseconds pollInterval{200};
  std::chrono::milliseconds statusInterval{1000};
  // Exec timeout when the cloud sets none, and the upper bound of any.
  std::chrono::seconds defaultExecTimeout{300};
  std::chrono::seconds maxExecTimeout{3600};
  // Interactive exec and attach: how long connecting to the runtime's streaming server may take.
  std::chrono::milliseconds connectTimeout{10000};
};

// Serves the cloud's logs and exec streams (docs/tunnel.md, "Streams") from the container
// runtime: finds the pod's container by its io.kubernetes.* labels (latest attempt, or the
// one before for `previous`), reads and follows its CRI log file, runs exec through
// ContainerRuntime::execSync. Interactive exec and attach (stdin/tty, STREAM_KIND_ATTACH) go
// through the runtime's streaming server (ContainerRuntime::streamingUrl, then v4.channel.k8s.io
// over SPDY/3.1 when stdin without a terminal is asked for, so that its end can be passed on,
// else over a WebSocket): output as StreamData, the cloud's StreamInputs written in as they
// queue up and acknowledged with StreamInputAck; such a stream has a second thread for the input.
// Port-forward (STREAM_KIND_PORT_FORWARD) works the same way, on the pod's sandbox (CRI
// PortForward): the client's bytes are the input and the pod's the output.
//
// Threading: the StreamHandler methods only record state and start/notify threads; they never
// block. Each stream runs on its own thread (at most maxStreams), which does all runtime calls
// and file reads and sends through the stream's StreamSender. Output respects the stream's
// flow-control window (StreamOpen.initial_window + StreamWindow grants) in chunks of at most
// 32 KiB, so a fast log never fills the tunnel's send queue. A stream ends when its output is
// done, on StreamCancel, when the connection closes, or at stop().
//
// Lifecycle: construct, hand to EdgeHub::setStreamHandler, and call stop() after
// EdgeHub::stop() (stop() joins every stream thread). `runtime` must outlive stop().
class StreamServer final : public edgecore::edgehub::StreamHandler {
 public:
  StreamServer(ContainerRuntime& runtime, StreamServerOptions options = {});
  ~StreamServer() override;
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  void onStreamOpen(const edgeplane::tunnel::v1::StreamOpen& open,
                    edgecore::edgehub::StreamSender send) override;
  void onStreamCancel(uint64_t id) override;
  void onStreamWindow(uint64_t id, uint64_t bytes) override;
  void onStreamInput(edgeplane::tunnel::v1::StreamInput&& input) override;
  void onConnectionClosed() override;

  // Cancels every stream and joins their threads. Idempotent.
  void stop();
  // Streams currently running (tests, /status).
  size_t activeStreams() const;

  // One stream's shared state; defined in the .cc.
  struct Stream;

 private:
  void run(std::shared_ptr<Stream> stream);
  // Sends the container's log per the stream's options; follows it when asked.
  Status streamLogs(Stream& stream, const ContainerStatus& container);
  // Interactive exec or attach through the runtime's streaming server; the exit code (0 for
  // attach) or why not.
  Result<int32_t> streamInteractive(Stream& stream, const ContainerStatus& container);
  // Port-forward to the pod's port through the runtime's streaming server (CRI PortForward):
  // the pod's bytes as StreamData, the cloud's StreamInputs written in. OK when the connection
  // ended; the runtime's error text otherwise.
  Status streamPortForward(Stream& stream);
  struct WriterGuard;
  void writeInput(Stream& stream, ChannelSession& session);
  void reapFinishedLocked() EP_REQUIRES(mu_);

  ContainerRuntime& runtime_;
  const StreamServerOptions options_;

  mutable Mutex mu_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::map<uint64_t, std::shared_ptr<Stream>> streams_ EP_GUARDED_BY(mu_);  // running
  std::vector<std::thread> finished_ EP_GUARDED_BY(mu_);                    // to join
  std::map<uint64_t, std::thread> threads_ EP_GUARDED_BY(mu_);
};

}  // namespace ep::edged::streaming
