#include "common/spdy/spdy.h"

#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace ep::spdy {

namespace {

constexpr uint16_t kVersion = 3;
constexpr size_t kFrameHeader = 8;

// zlib failing on memory it owns is a broken invariant, not something a peer can cause.
[[noreturn]] void zlibFailed(const char* what) {
  std::fprintf(stderr, "spdy: zlib %s failed\n", what);
  std::abort();
}

uint32_t be32(std::string_view s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

void put32(std::string& out, uint32_t v) {
  out.push_back(char(v >> 24));
  out.push_back(char(v >> 16));
  out.push_back(char(v >> 8));
  out.push_back(char(v));
}

// The 8-byte header of a control frame.
std::string controlHeader(FrameType type, uint8_t flags, size_t length) {
  std::string out;
  out.reserve(kFrameHeader + length);
  put32(out, 0x80000000u | (uint32_t{kVersion} << 16) | uint32_t(type));
  put32(out, (uint32_t{flags} << 24) | uint32_t(length & 0xffffff));
  return out;
}

std::string typeName(uint16_t type) {
  switch (FrameType(type)) {
    case FrameType::kSynStream:
      return "SYN_STREAM";
    case FrameType::kSynReply:
      return "SYN_REPLY";
    case FrameType::kRstStream:
      return "RST_STREAM";
    case FrameType::kSettings:
      return "SETTINGS";
    case FrameType::kPing:
      return "PING";
    case FrameType::kGoAway:
      return "GOAWAY";
    case FrameType::kHeaders:
      return "HEADERS";
    case FrameType::kWindowUpdate:
      return "WINDOW_UPDATE";
    default:
      return "control frame type " + std::to_string(type);
  }
}

}  // namespace

std::string headerValue(const Headers& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

const std::string& headerDictionary() {
  // SPDY/3 (draft-mbelshe-httpbis-spdy-00, 2.6.10.1): these words, each after its length as 4
  // bytes big-endian, then the text below as is.
  static const std::string dictionary = [] {
    static constexpr std::array<const char*, 65> kWords = {
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    };
    std::string d;
    for (const char* w : kWords) {
      put32(d, static_cast<uint32_t>(std::char_traits<char>::length(w)));
      d += w;
    }
    d += "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
         "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad "
         "Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not "
         "Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec "
         "00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/"
         "jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
         "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    return d;
  }();
  return dictionary;
}

// ---------------------------------------------------------------------------------------------
// FrameReader

struct FrameReader::Zlib {
  z_stream z{};
  bool ready = false;
  ~Zlib() {
    if (ready) inflateEnd(&z);
  }
};

FrameReader::FrameReader(ReaderLimits limits) : limits_(limits), zlib_(std::make_unique<Zlib>()) {}

FrameReader::~FrameReader() = default;

Status FrameReader::feed(std::string_view bytes, std::vector<Frame>& out) {
  if (!broken_.isOk()) return broken_;
  pending_.append(bytes);
  size_t at = 0;
  while (pending_.size() - at >= kFrameHeader) {
    const size_t length = be32(pending_, at + 4) & 0xffffff;
    if (length > limits_.maxFrame) {
      broken_ = invalidError("SPDY frame of " + std::to_string(length) +
                             " bytes is over the limit of " + std::to_string(limits_.maxFrame));
      pending_.clear();
      return broken_;
    }
    if (pending_.size() - at < kFrameHeader + length) break;
    Status s = parseFrame(std::string_view(pending_).substr(at, kFrameHeader + length), out);
    if (!s.isOk()) {
      broken_ = s;
      pending_.clear();
      return broken_;
    }
    at += kFrameHeader + length;
  }
  pending_.erase(0, at);
  return Status::ok();
}

Status FrameReader::parseFrame(std::string_view f, std::vector<Frame>& out) {
  const uint32_t first = be32(f, 0);
  Frame frame;
  frame.flags = static_cast<uint8_t>(uint8_t(f[4]));
  std::string_view payload = f.substr(kFrameHeader);
  if ((first & 0x80000000u) == 0) {
    frame.type = FrameType::kData;
    frame.streamId = first & 0x7fffffff;
    if (frame.streamId == 0) return invalidError("SPDY data frame on stream 0");
    frame.data.assign(payload);
    out.push_back(std::move(frame));
    return Status::ok();
  }
  const uint16_t version = (first >> 16) & 0x7fff;
  const uint16_t type = first & 0xffff;
  if (version != kVersion) {
    return invalidError("SPDY version " + std::to_string(version) + " is not supported (3 is)");
  }
  auto need = [&](size_t n) -> Status {
    if (payload.size() < n) {
      return invalidError(typeName(type) + " frame of " + std::to_string(payload.size()) +
                          " bytes is too short (at least " + std::to_string(n) + ")");
    }
    return Status::ok();
  };
  frame.type = FrameType(type);
  switch (frame.type) {
    case FrameType::kSynStream: {
      if (auto s = need(10); !s.isOk()) return s;
      frame.streamId = be32(payload, 0) & 0x7fffffff;
      if (frame.streamId == 0) return invalidError("SYN_STREAM on stream 0");
      if (auto s = decodeHeaders(payload.substr(10), frame.headers); !s.isOk()) return s;
      break;
    }
    case FrameType::kSynReply:
    case FrameType::kHeaders: {
      if (auto s = need(4); !s.isOk()) return s;
      frame.streamId = be32(payload, 0) & 0x7fffffff;
      if (auto s = decodeHeaders(payload.substr(4), frame.headers); !s.isOk()) return s;
      break;
    }
    case FrameType::kRstStream:
    case FrameType::kWindowUpdate:
    case FrameType::kGoAway: {
      if (auto s = need(8); !s.isOk()) return s;
      frame.streamId = be32(payload, 0) & 0x7fffffff;
      frame.value = be32(payload, 4) & (frame.type == FrameType::kWindowUpdate ? 0x7fffffff : ~0u);
      break;
    }
    case FrameType::kPing: {
      if (auto s = need(4); !s.isOk()) return s;
      frame.value = be32(payload, 0);
      break;
    }
    default:
      // SETTINGS and anything unknown carry nothing this session needs; the spec says to ignore
      // unknown control frames.
      return Status::ok();
  }
  out.push_back(std::move(frame));
  return Status::ok();
}

Status FrameReader::decodeHeaders(std::string_view compressed, Headers& out) {
  Zlib& zl = *zlib_;
  if (!zl.ready) {
    if (inflateInit(&zl.z) != Z_OK) zlibFailed("inflate setup");
    zl.ready = true;
  }
  // Every header block of the session continues one zlib stream and ends with a sync flush, so
  // the whole block comes out of its own bytes.
  std::string block;
  zl.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zl.z.avail_in = static_cast<uInt>(compressed.size());
  std::array<char, 4096> buf;
  for (;;) {
    zl.z.next_out = reinterpret_cast<Bytef*>(buf.data());
    zl.z.avail_out = static_cast<uInt>(buf.size());
    int rc = inflate(&zl.z, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      const std::string& d = headerDictionary();
      if (inflateSetDictionary(&zl.z, reinterpret_cast<const Bytef*>(d.data()),
                               static_cast<uInt>(d.size())) != Z_OK) {
        return invalidError("SPDY header block: compressed with another dictionary than SPDY/3's");
      }
      rc = Z_OK;
    }
    block.append(buf.data(), buf.size() - zl.z.avail_out);
    if (block.size() > limits_.maxHeaderBlock) {
      return invalidError("SPDY header block is over the limit of " +
                          std::to_string(limits_.maxHeaderBlock) + " bytes");
    }
    if (rc == Z_BUF_ERROR || (rc == Z_OK && zl.z.avail_in == 0 && zl.z.avail_out != 0)) break;
    if (rc == Z_STREAM_END) {
      return invalidError("SPDY header block: the compressed stream ended");
    }
    if (rc != Z_OK) {
      return invalidError(std::string("SPDY header block: ") +
                          (zl.z.msg != nullptr ? zl.z.msg : "zlib error"));
    }
  }
  if (zl.z.avail_in != 0) return invalidError("SPDY header block: bytes after its end");
  // Name/value pairs: a 32-bit count, then per pair a 32-bit length and the name, a 32-bit
  // length and the value.
  std::string_view b = block;
  if (b.size() < 4)
    return invalidError("SPDY header block of " + std::to_string(b.size()) +
                        " bytes holds no pair count");
  const uint32_t count = be32(b, 0);
  if (count > limits_.maxHeaders) {
    return invalidError("SPDY header block has " + std::to_string(count) +
                        " pairs, over the limit of " + std::to_string(limits_.maxHeaders));
  }
  b.remove_prefix(4);
  auto string = [&b](std::string& s) {
    if (b.size() < 4) return false;
    const uint32_t n = be32(b, 0);
    if (b.size() - 4 < n) return false;
    s.assign(b.substr(4, n));
    b.remove_prefix(4 + size_t{n});
    return true;
  };
  for (uint32_t i = 0; i < count; ++i) {
    std::string name, value;
    if (!string(name) || !string(value)) {
      return invalidError("SPDY header block: pair " + std::to_string(i + 1) + " of " +
                          std::to_string(count) + " is cut short");
    }
    if (name.empty()) return invalidError("SPDY header block: an empty header name");
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    out.emplace_back(std::move(name), std::move(value));
  }
  if (!b.empty()) return invalidError("SPDY header block: bytes after its last pair");
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// FrameWriter

struct FrameWriter::Zlib {
  z_stream z{};
  bool ready = false;
  ~Zlib() {
    if (ready) deflateEnd(&z);
  }
};

FrameWriter::FrameWriter() : zlib_(std::make_unique<Zlib>()) {}

FrameWriter::~FrameWriter() = default;

std::string FrameWriter::encodeHeaders(const Headers& headers) {
  Zlib& zl = *zlib_;
  if (!zl.ready) {
    const std::string& d = headerDictionary();
    if (deflateInit(&zl.z, Z_DEFAULT_COMPRESSION) != Z_OK ||
        deflateSetDictionary(&zl.z, reinterpret_cast<const Bytef*>(d.data()),
                             static_cast<uInt>(d.size())) != Z_OK) {
      zlibFailed("deflate setup");
    }
    zl.ready = true;
  }
  std::string block;
  put32(block, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    put32(block, static_cast<uint32_t>(name.size()));
    block += name;
    put32(block, static_cast<uint32_t>(value.size()));
    block += value;
  }
  std::string out;
  zl.z.next_in = reinterpret_cast<Bytef*>(block.data());
  zl.z.avail_in = static_cast<uInt>(block.size());
  std::array<char, 4096> buf;
  do {
    zl.z.next_out = reinterpret_cast<Bytef*>(buf.data());
    zl.z.avail_out = static_cast<uInt>(buf.size());
    if (deflate(&zl.z, Z_SYNC_FLUSH) == Z_STREAM_ERROR) {
      zlibFailed("deflate");
    }
    out.append(buf.data(), buf.size() - zl.z.avail_out);
  } while (zl.z.avail_out == 0);
  return out;
}

std::string FrameWriter::synStream(uint32_t streamId, const Headers& headers, bool fin) {
  std::string block = encodeHeaders(headers);
  std::string out = controlHeader(FrameType::kSynStream, fin ? kFlagFin : 0, 10 + block.size());
  put32(out, streamId & 0x7fffffff);
  put32(out, 0);        // associated stream
  out.append(2, '\0');  // priority, slot
  return out + block;
}

std::string FrameWriter::synReply(uint32_t streamId, const Headers& headers, bool fin) {
  std::string block = encodeHeaders(headers);
  std::string out = controlHeader(FrameType::kSynReply, fin ? kFlagFin : 0, 4 + block.size());
  put32(out, streamId & 0x7fffffff);
  return out + block;
}

std::string FrameWriter::data(uint32_t streamId, std::string_view data, bool fin) {
  std::string out;
  out.reserve(kFrameHeader + data.size());
  put32(out, streamId & 0x7fffffff);
  put32(out, (uint32_t{fin ? kFlagFin : uint8_t{0}} << 24) | uint32_t(data.size() & 0xffffff));
  out.append(data);
  return out;
}

std::string FrameWriter::rstStream(uint32_t streamId, uint32_t status) {
  std::string out = controlHeader(FrameType::kRstStream, 0, 8);
  put32(out, streamId & 0x7fffffff);
  put32(out, status);
  return out;
}

std::string FrameWriter::ping(uint32_t id) {
  std::string out = controlHeader(FrameType::kPing, 0, 4);
  put32(out, id);
  return out;
}

std::string FrameWriter::goAway(uint32_t lastGoodStreamId, uint32_t status) {
  std::string out = controlHeader(FrameType::kGoAway, 0, 8);
  put32(out, lastGoodStreamId & 0x7fffffff);
  put32(out, status);
  return out;
}

}  // namespace ep::spdy
