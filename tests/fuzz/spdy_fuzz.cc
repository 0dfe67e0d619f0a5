// libFuzzer: cloudcore's SPDY/3.1 reader (kubectl port-forward) on whatever a client sends,
// split at an input-chosen point: frames of any header and length, header blocks that are not
// zlib, not SPDY's dictionary, cut short or inflating far beyond their size. Checks that it
// ends with an error or frames within its limits, never a crash, a hang or memory out of
// proportion to the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/spdy/spdy.h"

using namespace ep::spdy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  ReaderLimits limits;
  limits.maxFrame = 64 * 1024;
  FrameReader reader(limits);
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = in.empty() ? 0 : data[0] % (in.size() + 1);
  std::vector<Frame> frames;
  if (reader.feed(in.substr(0, split), frames).isOk()) (void)reader.feed(in.substr(split), frames);
  for (const auto& f : frames) {
    if (f.data.size() > limits.maxFrame || f.headers.size() > limits.maxHeaders) std::abort();
    size_t block = 0;
    for (const auto& [n, v] : f.headers) block += n.size() + v.size();
    if (block > limits.maxHeaderBlock) std::abort();
  }
  return 0;
}
