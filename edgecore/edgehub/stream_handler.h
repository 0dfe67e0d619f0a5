#pragma once

#include <cstdint>
#include <functional>

#include "proto/tunnel.pb.h"

namespace ep::edgecore::edgehub {

// Sends one message on the tunnel connection a stream was opened on, through that
// connection's bounded send queue. Thread-safe and never blocks; false once the connection is
// gone (the stream is then dead: stop it). Valid while the EdgeHub that made it exists.
using StreamSender = std::function<bool(edgeplane::tunnel::v1::EdgeMessage&&)>;

// Where EdgeHub hands the cloud's stream messages (logs, exec, attach; docs/tunnel.md,
// "Streams").
// Implemented by edged's StreamServer; a seam so edgehub needs nothing from edged.
//
// Threading: the on* methods are called on gRPC reaction threads (and onConnectionClosed on
// the EdgeHub supervisor thread); they must be thread-safe and must not block. The handler
// must outlive the EdgeHub's start()..stop().
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // A new stream; reply with StreamData/StreamClose through `send`.
  virtual void onStreamOpen(const edgeplane::tunnel::v1::StreamOpen& open, StreamSender send) = 0;
  virtual void onStreamCancel(uint64_t id) = 0;
  virtual void onStreamWindow(uint64_t id, uint64_t bytes) = 0;
  // Input of an interactive stream (stdin, its end, terminal size); answer stdin with
  // StreamInputAck once written.
  virtual void onStreamInput(edgeplane::tunnel::v1::StreamInput&& input) = 0;
  // The connection ended (or EdgeHub stopped): every open stream is dead.
  virtual void onConnectionClosed() = 0;
};

// Where EdgeHub hands the cloud's rule messages (docs/rules.md). Implemented by the edge
// router; a seam so edgehub needs nothing from it. onRouteDeliver is called on the tunnel's I/O
// thread: it must not block. Answer with exactly one RouteResult through `send` (false when the
// connection is gone: the cloud then delivers again).
class RouteHandler {
 public:
  virtual ~RouteHandler() = default;
  virtual void onRouteDeliver(edgeplane::tunnel::v1::RouteDeliver deliver, StreamSender send) = 0;
};

// Where EdgeHub hands model blob chunks (docs/models.md). Implemented by edgecore/models'
// ModelFetcher; a seam so edgehub needs nothing from it. onTunnelUp is called on the hub's worker
// thread once a connection is accepted, with the sender for BlobRequests on it; onBlobChunk on
// the tunnel's I/O thread; onTunnelDown on the supervisor thread when that connection ended
// (its requests are lost: ask again on the next one). None may block.
class BlobHandler {
 public:
  virtual ~BlobHandler() = default;
  virtual void onTunnelUp(StreamSender send) = 0;
  virtual void onBlobChunk(edgeplane::tunnel::v1::BlobChunk&& chunk) = 0;
  virtual void onTunnelDown() = 0;
};

}  // namespace ep::edgecore::edgehub
