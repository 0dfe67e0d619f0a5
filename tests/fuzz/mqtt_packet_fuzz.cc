// MQTT packets from the broker: the reader never crashes, never buffers past its limit, and a
// decoded PUBLISH encodes back to a packet that decodes the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edgecore/eventbus/mqtt_codec.h"

using namespace ep::edgecore::eventbus::mqtt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  PacketReader reader(4096);
  // Split the stream where the first byte says, to exercise partial reads.
  size_t split = size > 0 ? data[0] % (size + 1) : 0;
  for (std::string_view chunk : {in.substr(0, split), in.substr(split)}) {
    reader.feed(chunk);
    while (true) {
      auto p = reader.next();
      if (!p.isOk() || !p->has_value()) break;
      const Packet& packet = **p;
      if (packet.type == PacketType::kPublish) {
        if (packet.topic.empty() || packet.qos > 2) std::abort();
        PacketReader again(1 << 20);
        again.feed(encodePublish(packet.topic, packet.payload, packet.qos, packet.packetId,
                                 packet.retain, packet.dup));
        auto q = again.next();
        if (!q.isOk() || !q->has_value() || (*q)->topic != packet.topic ||
            (*q)->payload != packet.payload || (*q)->packetId != packet.packetId) {
          std::abort();
        }
      }
    }
    if (!reader.next().isOk()) break;
  }
  return 0;
}
