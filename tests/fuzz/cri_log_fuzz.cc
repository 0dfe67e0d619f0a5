// libFuzzer: the CRI log parser and formatter on arbitrary bytes, split at an input-chosen
// point, with input-chosen options. Checks the formatter's contracts: output never longer than
// the input, limitBytes honoured, tailOffset within bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edgecore/edged/streaming/cri_log.h"

using namespace ep::edged::streaming;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  const size_t split = data[1];
  const int64_t limit = data[2] % 64;
  std::string_view input(reinterpret_cast<const char*>(data + 3), size - 3);

  LogOutputOptions o;
  o.timestamps = flags & 1;
  o.limitBytes = (flags & 2) ? limit : 0;
  o.sinceNs = (flags & 4) ? 1'700'000'000'000'000'000LL : 0;
  CriLogFormatter f(o);
  std::string out;
  size_t cut = split < input.size() ? split : input.size();
  f.feed(input.substr(0, cut), out);
  f.feed(input.substr(cut), out);
  if (out.size() > input.size()) std::abort();
  if (o.limitBytes > 0 && static_cast<int64_t>(out.size()) > o.limitBytes) std::abort();

  size_t start = 0;
  while (start <= input.size()) {
    size_t nl = input.find('\n', start);
    std::string_view line = input.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (auto e = parseCriLogLine(line); e && e->message.size() > line.size()) std::abort();
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  if (tailOffset(input, flags >> 3) > input.size()) std::abort();
  return 0;
}
