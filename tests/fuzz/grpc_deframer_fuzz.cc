// libFuzzer: grpclite's Deframer on arbitrary bytes fed in input-chosen chunk sizes. Input layout:
// byte 0 picks maxMessageBytes, byte 1 seeds the chunk sizes, the rest is the stream. Checks that
// chunking does not change the result (same messages and error state as one whole feed), that no
// message exceeds the limit, that the messages re-frame to a prefix of the stream, and that an
// error sticks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/grpclite/channel.h"

using ep::grpclite::Deframer;
using ep::grpclite::frameMessage;

namespace {

std::vector<std::string> drain(Deframer& d, size_t max) {
  std::vector<std::string> out;
  std::string m;
  while (d.next(&m)) {
    if (m.size() > max) std::abort();
    out.push_back(m);
  }
  if (d.failed() && d.next(&m)) std::abort();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // 0..254 bytes in steps that hit small limits exactly; 255 = the channel default.
  const size_t max = data[0] == 255 ? size_t{4} << 20 : size_t{data[0]} * 3;
  uint32_t rng = 0x9e3779b9u ^ (uint32_t{data[1]} * 0x01000193u);
  const uint8_t* stream = data + 2;
  const size_t n = size - 2;

  Deframer whole(max);
  whole.feed(stream, n);
  std::vector<std::string> expected = drain(whole, max);

  Deframer chunked(max);
  std::vector<std::string> got;
  size_t pos = 0;
  while (pos < n) {
    rng = rng * 1664525u + 1013904223u;
    // Mostly tiny chunks (header splits), sometimes large ones, sometimes empty.
    size_t len = (rng >> 24) % 8 == 0 ? (rng >> 8) % 4096 : (rng >> 8) % 7;
    if (len > n - pos) len = n - pos;
    chunked.feed(stream + pos, len);
    pos += len;
    for (auto& m : drain(chunked, max)) got.push_back(std::move(m));
    if (chunked.buffered() > pos) std::abort();
  }
  for (auto& m : drain(chunked, max)) got.push_back(std::move(m));

  if (got != expected) std::abort();
  if (chunked.failed() != whole.failed()) std::abort();
  if (!whole.failed() && chunked.buffered() != whole.buffered()) std::abort();
  if (whole.failed() && whole.error().empty()) std::abort();

  // Delivered messages are exactly the frames at the start of the stream.
  std::string reframed;
  for (const auto& m : expected) reframed += frameMessage(m);
  std::string_view input(reinterpret_cast<const char*>(stream), n);
  if (input.substr(0, reframed.size()) != reframed) std::abort();
  if (!whole.failed() && reframed.size() + whole.buffered() != n) std::abort();

  // Sticky error: a valid message after it is not delivered.
  if (whole.failed()) {
    std::string ok = frameMessage("");
    whole.feed(reinterpret_cast<const uint8_t*>(ok.data()), ok.size());
    std::string m;
    if (whole.next(&m) || !whole.failed()) std::abort();
  }
  return 0;
}
