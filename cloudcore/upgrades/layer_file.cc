#include "cloudcore/upgrades/layer_file.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

namespace ep::upgrades {
namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxRecordBytes = 1u << 20;  // a pax header or GNU long name
// Bounds the work a small compressed blob can ask for (a gzip bomb).
constexpr uint64_t kMaxExpandedBytes = uint64_t{16} << 30;

std::string normalize(std::string_view p) {
  while (true) {
    if (p.rfind("./", 0) == 0) {
      p.remove_prefix(2);
    } else if (!p.empty() && p.front() == '/') {
      p.remove_prefix(1);
    } else {
      break;
    }
  }
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return std::string(p);
}

// A NUL-terminated field of at most n bytes.
std::string field(const char* h, size_t n) {
  return std::string(h, strnlen(h, n));
}

// A numeric header field: octal text, or base-256 when the first byte's high bit is set.
std::optional<uint64_t> number(const unsigned char* f, size_t n) {
  if (f[0] & 0x80) {
    if (f[0] & 0x40) return std::nullopt;  // negative
    uint64_t v = f[0] & 0x3f;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 56) return std::nullopt;
      v = (v << 8) | f[i];
    }
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (f[i] == ' ' || f[i] == 0)) ++i;
  bool any = false;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v >> 60) return std::nullopt;
    v = v * 8 + (f[i] - '0');
    any = true;
  }
  for (; i < n; ++i) {
    if (f[i] != ' ' && f[i] != 0) return std::nullopt;
  }
  if (!any) return uint64_t{0};
  return v;
}

}  // namespace

struct LayerFileFinder::Impl {
  enum class Mode { kHeader, kData, kPad };
  enum class Sink { kSkip, kFile, kPax, kLongName };
  enum class Compression { kUnknown, kPlain, kGzip };

  std::string path;
  std::string dir;  // of path; "" at the root
  uint64_t maxFileBytes;
  std::function<Status(std::string_view)> onData;

  Status error;
  Compression compression = Compression::kUnknown;
  std::string sniff;  // the first bytes until the compression is known
  z_stream zs{};
  bool zInit = false;
  bool zEnd = false;  // the current gzip member ended
  uint64_t expanded = 0;

  Mode mode = Mode::kHeader;
  Sink sink = Sink::kSkip;
  std::array<unsigned char, kBlock> header{};
  size_t headerLen = 0;
  uint64_t remaining = 0;
  uint64_t pad = 0;
  std::string record;
  std::optional<std::string> nextPath;  // from a pax header or a GNU long name
  std::optional<uint64_t> nextSize;     // from a pax header
  uint64_t entries = 0;
  std::string entryName;
  int zeroBlocks = 0;
  bool ended = false;  // two zero blocks: the archive's end
  bool found = false;
  bool deleted = false;
  uint64_t fileSize = 0;

  ~Impl() {
    if (zInit) inflateEnd(&zs);
  }

  Status fail(const std::string& what) {
    error = invalidError("layer: " + what);
    return error;
  }
  std::string entry() const {
    return "entry " + std::to_string(entries) + " (" + entryName.substr(0, 200) + ")";
  }

  Status feed(std::string_view in) {
    if (!error.isOk()) return error;
    if (compression == Compression::kUnknown) {
      sniff.append(in);
      if (sniff.size() < 2) return {};
      compression = (static_cast<unsigned char>(sniff[0]) == 0x1f &&
                     static_cast<unsigned char>(sniff[1]) == 0x8b)
                        ? Compression::kGzip
                        : Compression::kPlain;
      std::string first = std::move(sniff);
      sniff.clear();
      return feedDecided(first);
    }
    return feedDecided(in);
  }

  Status feedDecided(std::string_view in) {
    if (compression == Compression::kPlain) return tar(in);
    if (!zInit) {
      if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return fail("cannot start gzip");
      zInit = true;
    }
    std::array<unsigned char, 64 * 1024> out;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    while (true) {
      if (zEnd) {
        // Another gzip member may follow (concatenated streams); zero padding may too.
        while (zs.avail_in > 0 && *zs.next_in == 0) {
          ++zs.next_in;
          --zs.avail_in;
        }
        if (zs.avail_in == 0) break;
        if (inflateReset(&zs) != Z_OK) return fail("cannot restart gzip");
        zEnd = false;
      }
      zs.next_out = out.data();
      zs.avail_out = static_cast<uInt>(out.size());
      int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return fail(std::string("the gzip stream is corrupt (") + (zs.msg ? zs.msg : "zlib error") +
                    ")");
      }
      const size_t produced = out.size() - zs.avail_out;
      expanded += produced;
      if (expanded > kMaxExpandedBytes) return fail("expands beyond 16 GiB");
      if (produced > 0) {
        if (Status s = tar(std::string_view(reinterpret_cast<const char*>(out.data()), produced));
            !s.isOk()) {
          return s;
        }
      }
      if (rc == Z_STREAM_END) {
        zEnd = true;
        continue;
      }
      // All input taken and the output drained (zlib filled less than the buffer).
      if (zs.avail_in == 0 && zs.avail_out != 0) break;
      if (rc == Z_BUF_ERROR && produced == 0) break;
    }
    return {};
  }

  Status finish() {
    if (!error.isOk()) return error;
    if (compression == Compression::kUnknown) {
      compression = Compression::kPlain;
      std::string first = std::move(sniff);
      if (Status s = tar(first); !s.isOk()) return s;
    }
    if (compression == Compression::kGzip) {
      if (!zInit) return fail("empty gzip stream");
      // Whatever output zlib still holds.
      if (Status s = feedDecided({}); !s.isOk()) return s;
      if (!zEnd) return fail("the gzip stream ends early");
    }
    if (ended) return {};
    if (mode != Mode::kHeader || headerLen != 0) return fail("the archive ends inside " + entry());
    return {};
  }

  Status tar(std::string_view in) {
    while (!in.empty()) {
      if (ended) return {};  // after the end blocks: padding
      if (mode == Mode::kHeader) {
        size_t k = std::min(kBlock - headerLen, in.size());
        std::memcpy(header.data() + headerLen, in.data(), k);
        headerLen += k;
        in.remove_prefix(k);
        if (headerLen == kBlock) {
          headerLen = 0;
          if (Status s = onHeader(); !s.isOk()) return s;
        }
      } else if (mode == Mode::kData) {
        size_t k = static_cast<size_t>(std::min<uint64_t>(remaining, in.size()));
        if (Status s = onEntryData(in.substr(0, k)); !s.isOk()) return s;
        remaining -= k;
        in.remove_prefix(k);
        if (remaining == 0) {
          if (Status s = endEntry(); !s.isOk()) return s;
        }
      } else {
        size_t k = static_cast<size_t>(std::min<uint64_t>(pad, in.size()));
        pad -= k;
        in.remove_prefix(k);
        if (pad == 0) mode = Mode::kHeader;
      }
    }
    return {};
  }

  Status onHeader() {
    if (std::all_of(header.begin(), header.end(), [](unsigned char c) { return c == 0; })) {
      if (++zeroBlocks == 2) ended = true;
      return {};
    }
    zeroBlocks = 0;
    ++entries;
    const char* h = reinterpret_cast<const char*>(header.data());
    entryName = field(h, 100);
    auto sum = number(header.data() + 148, 8);
    uint64_t computed = 0;
    for (size_t i = 0; i < kBlock; ++i) computed += (i >= 148 && i < 156) ? ' ' : header[i];
    if (!sum || *sum != computed) {
      return fail(entry() + ": bad header checksum (not a tar archive?)");
    }
    const char type = h[156];
    auto size = number(header.data() + 124, 12);
    if (!size) return fail(entry() + ": bad size field");
    std::string name;
    // POSIX ustar ("ustar\0") has a name prefix there; GNU's magic ("ustar  ") keeps times.
    if (std::memcmp(h + 257, "ustar\0", 6) == 0) {
      std::string prefix = field(h + 345, 155);
      name = prefix.empty() ? entryName : prefix + "/" + entryName;
    } else {
      name = entryName;
    }
    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
      // Records about the next entry (or all: 'g', not needed here).
      if (*size > kMaxRecordBytes) return fail(entry() + ": a record over 1 MiB");
      sink = (type == 'x') ? Sink::kPax : (type == 'L') ? Sink::kLongName : Sink::kSkip;
      record.clear();
      return startData(*size);
    }
    if (nextPath) name = std::move(*nextPath);
    if (nextSize) size = *nextSize;
    nextPath.reset();
    nextSize.reset();
    name = normalize(name);
    entryName = name;
    sink = Sink::kSkip;
    const bool regular = type == '0' || type == '\0' || type == '7';
    if (name == path) {
      if (!regular) {
        const char* what = type == '2'   ? "a symbolic link"
                           : type == '1' ? "a hard link"
                           : type == '5' ? "a directory"
                                         : "not a regular file";
        return fail(entry() + ": is " + what + "; the binary must be a regular file");
      }
      if (found) return fail(entry() + ": the file appears twice");
      if (*size > maxFileBytes) {
        return fail(entry() + ": " + std::to_string(*size) + " bytes, over the limit of " +
                    std::to_string(maxFileBytes));
      }
      found = true;
      fileSize = *size;
      sink = Sink::kFile;
    } else {
      checkWhiteout(name);
      // A parent of the file that is not a directory here hides the layers' files below it.
      if (type != '5' && path.size() > name.size() && path.rfind(name + "/", 0) == 0) {
        deleted = true;
      }
    }
    // Links, devices, directories and FIFOs carry no data; every other type (regular files,
    // GNU sparse files, types unknown here) has `size` bytes, skipped unless they are the file.
    const bool headerOnly = type >= '1' && type <= '6';
    return startData(headerOnly ? 0 : *size);
  }

  void checkWhiteout(const std::string& name) {
    auto slash = name.rfind('/');
    const std::string d = slash == std::string::npos ? "" : name.substr(0, slash);
    const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    if (base.rfind(".wh.", 0) != 0) return;
    auto under = [&](const std::string& top) {
      return top.empty() || path == top || path.rfind(top + "/", 0) == 0;
    };
    if (base == ".wh..wh..opq") {
      if (under(d) && path != d) deleted = true;
      return;
    }
    const std::string target = (d.empty() ? "" : d + "/") + base.substr(4);
    if (under(target)) deleted = true;
  }

  Status startData(uint64_t size) {
    remaining = size;
    pad = (kBlock - size % kBlock) % kBlock;
    if (size > 0) {
      mode = Mode::kData;
      return {};
    }
    return endEntry();
  }

  Status onEntryData(std::string_view d) {
    switch (sink) {
      case Sink::kFile:
        if (Status s = onData(d); !s.isOk()) {
          error = s;
          return s;
        }
        return {};
      case Sink::kPax:
      case Sink::kLongName:
        record.append(d);
        return {};
      case Sink::kSkip:
        return {};
    }
    return {};
  }

  Status endEntry() {
    if (sink == Sink::kLongName) {
      nextPath = field(record.data(), record.size());
    } else if (sink == Sink::kPax) {
      if (Status s = parsePax(); !s.isOk()) return s;
    }
    sink = Sink::kSkip;
    mode = pad > 0 ? Mode::kPad : Mode::kHeader;
    return {};
  }

  // "LEN key=value\n" records; path and size are the ones that matter here.
  Status parsePax() {
    std::string_view r = record;
    while (!r.empty()) {
      size_t sp = r.find(' ');
      if (sp == std::string_view::npos || sp == 0 || sp > 20) {
        return fail(entry() + ": malformed pax record");
      }
      uint64_t len = 0;
      for (size_t i = 0; i < sp; ++i) {
        if (r[i] < '0' || r[i] > '9') return fail(entry() + ": malformed pax record length");
        len = len * 10 + static_cast<uint64_t>(r[i] - '0');
      }
      if (len <= sp + 1 || len > r.size() || r[len - 1] != '\n') {
        return fail(entry() + ": malformed pax record length");
      }
      std::string_view kv = r.substr(sp + 1, len - sp - 2);
      r.remove_prefix(len);
      size_t eq = kv.find('=');
      if (eq == std::string_view::npos) return fail(entry() + ": pax record without '='");
      std::string_view key = kv.substr(0, eq), value = kv.substr(eq + 1);
      if (key == "path") {
        nextPath = std::string(value);
      } else if (key == "size") {
        uint64_t v = 0;
        if (value.empty() || value.size() > 19) return fail(entry() + ": bad pax size");
        for (char c : value) {
          if (c < '0' || c > '9') return fail(entry() + ": bad pax size");
          v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        nextSize = v;
      }
    }
    return {};
  }
};

LayerFileFinder::LayerFileFinder(std::string path, uint64_t maxFileBytes,
                                 std::function<Status(std::string_view)> onData)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = normalize(path);
  auto slash = impl_->path.rfind('/');
  impl_->dir = slash == std::string::npos ? "" : impl_->path.substr(0, slash);
  impl_->maxFileBytes = maxFileBytes;
  impl_->onData = std::move(onData);
}

LayerFileFinder::~LayerFileFinder() = default;

Status LayerFileFinder::feed(std::string_view bytes) {
  return impl_->feed(bytes);
}

Status LayerFileFinder::finish() {
  return impl_->finish();
}

LayerFileFinder::Outcome LayerFileFinder::outcome() const {
  if (impl_->found) return Outcome::kFound;
  return impl_->deleted ? Outcome::kDeleted : Outcome::kAbsent;
}

uint64_t LayerFileFinder::fileSize() const {
  return impl_->fileSize;
}

}  // namespace ep::upgrades
