#include "edgecore/edged/streaming/channel_session.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "common/spdy/spdy.h"
#include "common/thread_annotations.h"
#include "edgecore/edged/streaming/http_upgrade.h"
#include "edgecore/edged/streaming/websocket_client.h"

namespace ep::edged::streaming {
namespace {

constexpr const char* kProtocol = "v4.channel.k8s.io";
constexpr size_t kMaxStatus = 64 * 1024;  // the final Status is small; more is refused

class WebSocketSession final : public ChannelSession {
 public:
  explicit WebSocketSession(std::unique_ptr<WebSocketClient> s) : socket_(std::move(s)) {}
  Result<Message> read() override {
    auto m = socket_->read();
    if (!m.isOk()) return m.status();
    Message out;
    if (m->empty()) return out;  // nothing: as a marker
    out.channel = static_cast<uint8_t>((*m)[0]);
    out.data = m->substr(1);
    return out;
  }
  Status write(uint8_t channel, std::string_view data) override {
    std::string frame(1, static_cast<char>(channel));
    frame.append(data);
    return socket_->write(frame);
  }
  Status closeStdin() override { return {}; }  // nothing to say it with
  void shutdown() override { socket_->shutdown(); }

 private:
  std::unique_ptr<WebSocketClient> socket_;
};

// Stream ids are the client's (odd), in the order kubectl opens them.
class SpdySession final : public ChannelSession {
 public:
  SpdySession(int fd, std::string buffered) : fd_(fd), buffered_(std::move(buffered)) {}
  ~SpdySession() override { ::close(fd_); }

  Status open(const SpdyStreams& s) {
    uint32_t next = 1;
    auto add = [&](const char* type, uint8_t channel) -> Status {
      const uint32_t id = next;
      next += 2;
      channels_[id] = channel;
      if (channel == kChannelStdin) stdinStream_ = id;
      if (channel == kChannelResize) resizeStream_ = id;
      MutexLock l(writeMu_);
      return sendLocked(writer_.synStream(id, {{"streamtype", type}}, false));
    };
    if (Status st = add("error", kChannelStatus); !st.isOk()) return st;
    if (s.stdin) {
      if (Status st = add("stdin", kChannelStdin); !st.isOk()) return st;
    }
    if (s.stdout) {
      if (Status st = add("stdout", kChannelStdout); !st.isOk()) return st;
    }
    if (s.stderr && !s.tty) {
      if (Status st = add("stderr", kChannelStderr); !st.isOk()) return st;
    }
    if (s.tty) {
      if (Status st = add("resize", kChannelResize); !st.isOk()) return st;
    }
    return {};
  }

  // Waits until the server accepted every stream (SYN_REPLY), as kubectl does; a stream it
  // resets, or no answer within `timeout`, is an error. Frames that come meanwhile are kept for
  // read().
  Status awaitReplies(std::chrono::milliseconds timeout) {
    std::set<uint32_t> waiting;
    for (const auto& [id, channel] : channels_) waiting.insert(id);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t seen = 0;
    while (!waiting.empty()) {
      // Frames after the last acceptance are read()'s (a reset then ends the session there).
      for (; seen < frames_.size() && !waiting.empty(); ++seen) {
        const spdy::Frame& f = frames_[seen];
        if (f.type == spdy::FrameType::kSynReply) waiting.erase(f.streamId);
        if (f.type == spdy::FrameType::kRstStream && channels_.count(f.streamId)) {
          return unavailableError("the runtime refused the " + nameOf(f.streamId) +
                                  " stream (SPDY status " + std::to_string(f.value) + ")");
        }
      }
      if (waiting.empty()) break;
      std::string chunk;
      if (!buffered_.empty()) {
        chunk.swap(buffered_);
      } else {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd_, POLLIN, 0};
        int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          return unavailableError("the runtime did not accept the " + nameOf(*waiting.begin()) +
                                  " stream within " + std::to_string(timeout.count()) + " ms");
        }
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return unavailableError("the runtime closed the session before accepting it");
        chunk.assign(buf, static_cast<size_t>(n));
      }
      if (Status st = reader_.feed(chunk, frames_); !st.isOk()) return st;
    }
    return {};
  }

  Result<Message> read() override {
    for (;;) {
      while (next_ < frames_.size()) {
        spdy::Frame f = std::move(frames_[next_++]);
        auto m = handle(f);
        if (!m.isOk()) return m.status();
        if (m->has_value()) return std::move(**m);
      }
      frames_.clear();
      next_ = 0;
      if (!broken_.isOk()) return broken_;
      if (ended_) return flushStatusOr(unavailableError("the streaming session ended"));
      std::string chunk;
      if (!buffered_.empty()) {
        chunk.swap(buffered_);
      } else {
        char buf[16 * 1024];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || shut_) {
          ended_ = true;
          continue;
        }
        chunk.assign(buf, static_cast<size_t>(n));
      }
      // Frames parsed before a protocol error are still delivered (final output, the status).
      if (Status st = reader_.feed(chunk, frames_); !st.isOk()) {
        shutdown();
        broken_ = st;
      }
    }
  }

  Status write(uint8_t channel, std::string_view data) override {
    if (channel == kChannelResize && resizeStream_ == 0) return {};  // no terminal: no sizes
    const uint32_t id = channel == kChannelStdin    ? stdinStream_
                        : channel == kChannelResize ? resizeStream_
                                                    : 0;
    if (id == 0) return invalidError("no stream for channel " + std::to_string(channel));
    std::string payload(data);
    if (channel == kChannelResize) payload += "\n";  // a JSON stream of sizes, as kubectl's
    MutexLock l(writeMu_);
    if (stdinClosed_ && channel == kChannelStdin) return invalidError("stdin is closed");
    return sendLocked(writer_.data(id, payload, false));
  }

  Status closeStdin() override {
    if (stdinStream_ == 0) return {};
    MutexLock l(writeMu_);
    if (stdinClosed_) return {};
    stdinClosed_ = true;
    return sendLocked(writer_.data(stdinStream_, {}, true));
  }

  void shutdown() override {
    if (!shut_.exchange(true)) ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  // What a frame means for the reader: a message, nothing, or the end.
  Result<std::optional<Message>> handle(const spdy::Frame& f) {
    switch (f.type) {
      case spdy::FrameType::kData: {
        auto it = channels_.find(f.streamId);
        if (it == channels_.end()) return std::optional<Message>();
        if (it->second == kChannelStatus) {
          if (status_.size() + f.data.size() > kMaxStatus) {
            return invalidError("the runtime's exec status is over 64 KiB");
          }
          status_ += f.data;
          if (f.fin()) return flushStatus();
          return std::optional<Message>();
        }
        if (f.data.empty()) return std::optional<Message>();
        return std::optional<Message>(Message{it->second, f.data});
      }
      case spdy::FrameType::kSynReply:
      case spdy::FrameType::kHeaders:
        if (f.fin() && channels_.count(f.streamId) && channels_[f.streamId] == kChannelStatus) {
          return flushStatus();
        }
        return std::optional<Message>();
      case spdy::FrameType::kPing:
        // The server's pings (even ids; odd ones are this side's) are answered when that costs
        // no wait: the reader never blocks behind a writer stuck on a full socket.
        if (f.value % 2 == 0)
          replyIfFree([&]() EP_NO_THREAD_SAFETY_ANALYSIS { return writer_.ping(f.value); });
        return std::optional<Message>();
      case spdy::FrameType::kSynStream:
        // The server opens no streams in this protocol: refused (when that costs no wait).
        replyIfFree([&]() EP_NO_THREAD_SAFETY_ANALYSIS {
          return writer_.rstStream(f.streamId, spdy::kRefusedStream);
        });
        return std::optional<Message>();
      case spdy::FrameType::kRstStream:
        // containerd ends a session with the status, a reset of every stream, GOAWAY and the
        // close; a reset of the status or output stream alone ends it too.
        if (channels_.count(f.streamId) &&
            (channels_[f.streamId] == kChannelStatus || channels_[f.streamId] == kChannelStdout)) {
          ended_ = true;
        }
        return std::optional<Message>();
      default:  // GOAWAY (the close follows), SETTINGS, WINDOW_UPDATE: nothing to do
        return std::optional<Message>();
    }
  }

  Result<std::optional<Message>> flushStatus() {
    if (statusSent_ || status_.empty()) return std::optional<Message>();
    statusSent_ = true;
    return std::optional<Message>(Message{kChannelStatus, std::move(status_)});
  }
  Result<Message> flushStatusOr(Status end) {
    auto s = flushStatus();
    if (s.isOk() && s->has_value()) return std::move(**s);
    return end;
  }

  // Sends what `make` builds if the write lock is free now; else drops it.
  template <typename Make>
  void replyIfFree(Make make) EP_NO_THREAD_SAFETY_ANALYSIS {
    if (!writeMu_.try_lock()) return;
    (void)sendLocked(make());
    writeMu_.unlock();
  }

  std::string nameOf(uint32_t id) const {
    auto it = channels_.find(id);
    if (it == channels_.end()) return "unknown";
    switch (it->second) {
      case kChannelStatus:
        return "error";
      case kChannelStdin:
        return "stdin";
      case kChannelStdout:
        return "stdout";
      case kChannelStderr:
        return "stderr";
      default:
        return "resize";
    }
  }

  Status sendLocked(const std::string& bytes) EP_REQUIRES(writeMu_) {
    std::string_view data = bytes;
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return unavailableError("the streaming session ended");
      data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

  const int fd_;
  std::atomic<bool> shut_{false};
  // Reader side (one thread).
  std::string buffered_;
  spdy::FrameReader reader_;
  std::vector<spdy::Frame> frames_;  // parsed, handled up to next_
  size_t next_ = 0;
  std::string status_;
  bool statusSent_ = false;
  bool ended_ = false;
  Status broken_;  // a protocol error, returned once the frames before it are delivered
  // Set by open() before any other call; read-only after.
  std::map<uint32_t, uint8_t> channels_;
  uint32_t stdinStream_ = 0;
  uint32_t resizeStream_ = 0;
  // Writer side: frames are made and sent under one lock (their header compression is
  // ordered).
  Mutex writeMu_;
  spdy::FrameWriter writer_ EP_GUARDED_BY(writeMu_);
  bool stdinClosed_ EP_GUARDED_BY(writeMu_) = false;
};

}  // namespace

std::unique_ptr<ChannelSession> webSocketSession(std::unique_ptr<WebSocketClient> socket) {
  return std::make_unique<WebSocketSession>(std::move(socket));
}

Result<std::unique_ptr<ChannelSession>> adoptSpdySession(int fd, std::string buffered,
                                                         SpdyStreams streams,
                                                         std::chrono::milliseconds timeout) {
  auto s = std::make_unique<SpdySession>(fd, std::move(buffered));
  if (Status st = s->open(streams); !st.isOk()) return st;
  if (Status st = s->awaitReplies(timeout); !st.isOk()) return st;
  return std::unique_ptr<ChannelSession>(std::move(s));
}

Result<std::unique_ptr<ChannelSession>> connectSpdySession(const std::string& url,
                                                           SpdyStreams streams,
                                                           std::chrono::milliseconds timeout) {
  auto conn = upgradeConnection(url, timeout, [](const std::string& host, const std::string& path) {
    return "POST " + path + " HTTP/1.1\r\nHost: " + host +
           "\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: " +
           kProtocol + "\r\nContent-Length: 0\r\nUser-Agent: edgecore\r\n\r\n";
  });
  if (!conn.isOk()) return conn.status();
  const std::string where = streamingServerName(url);
  const std::string chosen = responseHeader(conn->head, "x-stream-protocol-version");
  if (chosen != kProtocol) {
    ::close(conn->fd);
    return unavailableError(where + " does not speak " + kProtocol + " over SPDY" +
                            (chosen.empty() ? "" : " (it chose " + chosen + ")"));
  }
  return adoptSpdySession(conn->fd, std::move(conn->buffered), streams, timeout);
}

}  // namespace ep::edged::streaming
