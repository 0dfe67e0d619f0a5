#pragma once

// SPDY/3.1 framing, as far as Kubernetes' streaming protocols need it: kubectl's port-forward
// to cloudcore (SPDY inside a WebSocket, subprotocol "SPDY/3.1+portforward.k8s.io";
// cloudcore/apiserver/port_forward.h) and edgecore's exec and attach sessions with the container
// runtime's streaming server (edgecore/edged/streaming/channel_session.h). Frames are
// parsed from an arbitrary split of the byte stream and written back; name/value header blocks
// are zlib-compressed with SPDY/3's dictionary, one compression context per direction for the
// whole session, as the protocol requires. No flow control: Kubernetes' SPDY peer (spdystream)
// neither sends nor honours WINDOW_UPDATE.
//
// Threading: a FrameReader or FrameWriter is used by one thread at a time (not thread-safe).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ep::spdy {

enum class FrameType : uint16_t {
  kData = 0,  // not a control frame
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;
// RST_STREAM status codes.
inline constexpr uint32_t kProtocolError = 1;
inline constexpr uint32_t kRefusedStream = 3;
inline constexpr uint32_t kCancel = 5;

// Header names are lower case; a value may hold several values separated by NUL.
using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of header `name` in `headers`, or empty.
std::string headerValue(const Headers& headers, std::string_view name);

struct Frame {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  // Data, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE: the stream; GOAWAY: the last
  // good stream.
  uint32_t streamId = 0;
  // RST_STREAM and GOAWAY: the status code; PING: its id; WINDOW_UPDATE: the delta.
  uint32_t value = 0;
  Headers headers;   // SYN_STREAM, SYN_REPLY, HEADERS
  std::string data;  // data frames
  bool fin() const { return (flags & kFlagFin) != 0; }
};

// The SPDY/3 header compression dictionary (1,423 bytes; its Adler-32, 0xe3c6a7c2, is the zlib
// dictionary id a peer's stream names).
const std::string& headerDictionary();

struct ReaderLimits {
  // A frame's payload (the 24-bit length allows 16 MiB; kubectl writes at most 32 KiB).
  size_t maxFrame = 1024 * 1024;
  // A decompressed header block, and the pairs in it.
  size_t maxHeaderBlock = 64 * 1024;
  size_t maxHeaders = 256;
};

// Parses frames from the bytes of a session. After an error the session is broken: every later
// feed() fails too.
class FrameReader {
 public:
  explicit FrameReader(ReaderLimits limits = {});
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Appends `bytes` and moves every complete frame into `out`, in order. kInvalid naming what is
  // wrong (version, length, header block) on a protocol error. Memory: at most one incomplete
  // frame (≤ maxFrame + 8 bytes) is kept.
  [[nodiscard]] Status feed(std::string_view bytes, std::vector<Frame>& out);

 private:
  [[nodiscard]] Status parseFrame(std::string_view frame, std::vector<Frame>& out);
  [[nodiscard]] Status decodeHeaders(std::string_view compressed, Headers& out);

  const ReaderLimits limits_;
  std::string pending_;  // an incomplete frame
  Status broken_;
  struct Zlib;
  std::unique_ptr<Zlib> zlib_;
};

// Serializes frames. Header blocks share one compression context, so frames must reach the peer
// in the order they were made.
class FrameWriter {
 public:
  FrameWriter();
  ~FrameWriter();
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

  std::string synStream(uint32_t streamId, const Headers& headers, bool fin);
  std::string synReply(uint32_t streamId, const Headers& headers, bool fin);
  // `data` at most 16 MiB - 1 (the caller splits larger payloads).
  std::string data(uint32_t streamId, std::string_view data, bool fin);
  std::string rstStream(uint32_t streamId, uint32_t status);
  std::string ping(uint32_t id);
  std::string goAway(uint32_t lastGoodStreamId, uint32_t status);

 private:
  std::string encodeHeaders(const Headers& headers);

  struct Zlib;
  std::unique_ptr<Zlib> zlib_;
};

}  // namespace ep::spdy
