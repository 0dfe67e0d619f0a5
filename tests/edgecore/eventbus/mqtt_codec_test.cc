#include "edgecore/eventbus/mqtt_codec.h"

#include <gtest/gtest.h>

namespace ep::edgecore::eventbus::mqtt {
namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(MqttCodecTest, ConnectCarriesProtocolFlagsAndCredentials) {
  auto p = encodeConnect({.clientId = "edge",
                          .cleanSession = false,
                          .keepAliveSeconds = 30,
                          .username = "u",
                          .password = "pw"});
  // type 1, remaining length, "MQTT", level 4, flags user|password (no clean session), 30 s.
  EXPECT_EQ(p.substr(0, 12), bytes({0x10, 23, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xC0, 0, 30}));
  EXPECT_EQ(p.substr(12), bytes({0, 4, 'e', 'd', 'g', 'e', 0, 1, 'u', 0, 2, 'p', 'w'}));
  auto clean = encodeConnect({.clientId = "c"});
  EXPECT_EQ(static_cast<uint8_t>(clean[9]), 0x02);
}

TEST(MqttCodecTest, PublishRoundTripsThroughTheReader) {
  PacketReader r(1024);
  r.feed(encodePublish("a/b", "hello", 1, 7, /*retain=*/true, /*dup=*/true));
  auto p = r.next();
  ASSERT_TRUE(p.isOk()) << p.status().toString();
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->type, PacketType::kPublish);
  EXPECT_EQ((*p)->topic, "a/b");
  EXPECT_EQ((*p)->payload, "hello");
  EXPECT_EQ((*p)->qos, 1);
  EXPECT_EQ((*p)->packetId, 7);
  EXPECT_TRUE((*p)->retain);
  EXPECT_TRUE((*p)->dup);
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(MqttCodecTest, ReaderWaitsForWholePacketsAcrossArbitrarySplits) {
  std::string stream = encodePublish("t", std::string(300, 'x'), 0, 0) + encodePuback(9) +
                       bytes({0xD0, 0x00}) + bytes({0x20, 0x02, 0x01, 0x00});
  for (size_t split = 0; split <= stream.size(); ++split) {
    PacketReader r(1024);
    std::vector<PacketType> seen;
    r.feed(stream.substr(0, split));
    for (int step = 0; step < 2; ++step) {
      while (true) {
        auto p = r.next();
        ASSERT_TRUE(p.isOk()) << split;
        if (!p->has_value()) break;
        seen.push_back((*p)->type);
      }
      if (step == 0) r.feed(stream.substr(split));
    }
    ASSERT_EQ(seen.size(), 4u) << split;
    EXPECT_EQ(seen[3], PacketType::kConnack);
  }
}

TEST(MqttCodecTest, RemainingLengthUsesUpToFourBytes) {
  // 321 bytes of body → two length bytes (0xC1 0x02).
  auto p = encodePublish("t", std::string(318, 'y'), 0, 0);
  EXPECT_EQ(static_cast<uint8_t>(p[1]), 0xC1);
  EXPECT_EQ(static_cast<uint8_t>(p[2]), 0x02);
  PacketReader r(1 << 20);
  r.feed(bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
  auto bad = r.next();
  EXPECT_FALSE(bad.isOk());
}

TEST(MqttCodecTest, OversizedPacketsAreRefusedBeforeTheyAreBuffered) {
  PacketReader r(100);
  r.feed(bytes({0x30, 0x80, 0x08}));  // announces 1024 bytes
  auto p = r.next();
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().code(), Code::kTooLarge);
}

TEST(MqttCodecTest, MalformedPacketsNameWhatIsWrong) {
  auto check = [](std::string packet, const std::string& needle) {
    PacketReader r(1024);
    r.feed(packet);
    auto p = r.next();
    ASSERT_FALSE(p.isOk()) << needle;
    EXPECT_NE(p.status().message().find(needle), std::string::npos) << p.status().message();
  };
  check(bytes({0x36, 0x03, 0x00, 0x01, 'a'}), "QoS 3");
  check(bytes({0x32, 0x03, 0x00, 0x01, 'a'}), "packet identifier");
  check(bytes({0x30, 0x03, 0x00, 0x05, 'a'}), "truncated topic");
  check(bytes({0x30, 0x03, 0x00, 0x01, '+'}), "wildcards");
  check(bytes({0x20, 0x01, 0x00}), "CONNACK");
  check(bytes({0x90, 0x03, 0x00, 0x01, 0x07}), "invalid return code");
  check(bytes({0x00, 0x00}), "reserved packet type");
  check(bytes({0x10, 0x00}), "not sent to clients");
}

TEST(MqttCodecTest, SubackListsGrantedQos) {
  PacketReader r(1024);
  r.feed(bytes({0x90, 0x04, 0x00, 0x05, 0x01, 0x80}));
  auto p = r.next();
  ASSERT_TRUE(p.isOk());
  EXPECT_EQ((*p)->packetId, 5);
  EXPECT_EQ((*p)->grantedQos, (std::vector<uint8_t>{1, 0x80}));
  EXPECT_EQ(encodeSubscribe(5, {{"a/#", 1}}), bytes({0x82, 0x08, 0, 5, 0, 3, 'a', '/', '#', 1}));
}

TEST(MqttCodecTest, TopicFiltersMatchAsTheStandardSays) {
  EXPECT_TRUE(topicMatches("$hw/events/device/+/twin/+", "$hw/events/device/d1/twin/update"));
  EXPECT_FALSE(
      topicMatches("$hw/events/device/+/twin/+", "$hw/events/device/d1/twin/update/result"));
  EXPECT_TRUE(topicMatches("$hw/events/upload/#", "$hw/events/upload/a/b"));
  EXPECT_TRUE(topicMatches("a/#", "a"));
  EXPECT_FALSE(topicMatches("#", "$SYS/x"));
  EXPECT_FALSE(topicMatches("+/x", "$hw/x"));
  EXPECT_TRUE(topicMatches("a/+/c", "a//c"));
  EXPECT_FALSE(topicMatches("a/b", "a/b/c"));
}

TEST(MqttCodecTest, TopicNamesAreChecked) {
  EXPECT_TRUE(checkTopicName("a/b").isOk());
  EXPECT_FALSE(checkTopicName("").isOk());
  EXPECT_FALSE(checkTopicName("a/#").isOk());
  EXPECT_FALSE(checkTopicName(std::string("a\0b", 3)).isOk());
}

}  // namespace
}  // namespace ep::edgecore::eventbus::mqtt
