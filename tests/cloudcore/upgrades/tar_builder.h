#pragma once

// Builds tar archives (ustar, with pax or GNU long names when asked) and gzip streams for the
// tests of what reads image layers. Test-only.

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace ep::upgrades::testing {

class TarBuilder {
 public:
  // typeflag: '0' file, '2' symlink, '5' directory, '1' hard link.
  TarBuilder& add(const std::string& name, const std::string& data = "", char type = '0',
                  const std::string& link = "") {
    out_ += header(name.substr(0, 99), type == '0' ? data.size() : 0, type, link);
    if (type == '0') body(data);
    return *this;
  }
  // A name longer than ustar's 100 bytes, as a pax 'x' record before the entry.
  TarBuilder& addPax(const std::string& name, const std::string& data) {
    std::string rec = " path=" + name + "\n";
    size_t len = rec.size() + 1;
    while (std::to_string(len).size() + rec.size() != len) ++len;
    rec = std::to_string(len) + rec;
    out_ += header("PaxHeaders/x", rec.size(), 'x', "");
    body(rec);
    return add("truncated-name", data);
  }
  // The same with a GNU 'L' long-name entry.
  TarBuilder& addGnuLong(const std::string& name, const std::string& data) {
    std::string n = name + '\0';
    out_ += header("././@LongLink", n.size(), 'L', "");
    body(n);
    return add("truncated-name", data);
  }
  std::string finish(bool endBlocks = true) const {
    return endBlocks ? out_ + std::string(1024, '\0') : out_;
  }

  static std::string header(const std::string& name, size_t size, char type,
                            const std::string& link) {
    std::string h(512, '\0');
    std::memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 100));
    std::snprintf(&h[100], 8, "%07o", 0755);
    std::snprintf(&h[108], 8, "%07o", 0);
    std::snprintf(&h[116], 8, "%07o", 0);
    std::snprintf(&h[124], 12, "%011zo", size);
    std::snprintf(&h[136], 12, "%011o", 0);
    h[156] = type;
    std::memcpy(&h[157], link.data(), std::min<size_t>(link.size(), 100));
    std::memcpy(&h[257], "ustar", 6);
    h[263] = '0';
    h[264] = '0';
    return resum(h);
  }
  // Writes a header's checksum (after the test changed its bytes).
  static std::string resum(std::string h) {
    std::memset(&h[148], ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(&h[148], 8, "%06o", sum);
    h[155] = ' ';
    return h;
  }
  // A header as given, followed by `data` padded to the block.
  TarBuilder& addRaw(const std::string& header, const std::string& data) {
    out_ += header;
    body(data);
    return *this;
  }

 private:
  void body(const std::string& data) {
    out_ += data;
    out_ += std::string((512 - data.size() % 512) % 512, '\0');
  }
  std::string out_;
};

inline std::string gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace ep::upgrades::testing
