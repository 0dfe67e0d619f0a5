#include "common/pki/join_token.h"

#include <gtest/gtest.h>

namespace ep::pki {
namespace {

const std::string kHash(64, 'a');

TEST(JoinTokenTest, RoundTrip) {
  auto t = parseJoinToken("abcdef.0123456789abcdef." + kHash);
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ(t->id, "abcdef");
  EXPECT_EQ(t->secret, "0123456789abcdef");
  EXPECT_EQ(t->caHash, "sha256:" + kHash);
  EXPECT_EQ(t->bootstrapToken(), "abcdef.0123456789abcdef");
  EXPECT_EQ(t->toString(), "abcdef.0123456789abcdef." + kHash);
  // The sha256: prefix and a trailing newline (pasted from a file) are accepted.
  EXPECT_TRUE(parseJoinToken("abcdef.0123456789abcdef.sha256:" + kHash + "\n").isOk());
  EXPECT_EQ(bootstrapTokenSecretName("abcdef"), "bootstrap-token-abcdef");
}

TEST(JoinTokenTest, MalformedTokensNameThePartAndHideTheSecret) {
  struct Case {
    std::string text;
    std::string needle;
  };
  for (const auto& c : std::vector<Case>{
           {"", "expected ID.SECRET.CAHASH"},
           {"abcdef.0123456789abcdef", "expected ID.SECRET.CAHASH"},
           {"abcde.0123456789abcdef." + kHash, "the ID must be"},
           {"ABCDEF.0123456789abcdef." + kHash, "the ID must be"},
           {"abcdef.0123456789abcdeX." + kHash, "the secret must be"},
           {"abcdef.0123456789abcdef." + kHash.substr(1), "the CA hash"},
           {"abcdef.0123456789abcdef." + std::string(64, 'G'), "the CA hash"},
           {std::string(300, 'a'), "too long"},
       }) {
    auto t = parseJoinToken(c.text);
    ASSERT_FALSE(t.isOk()) << c.text;
    EXPECT_NE(t.status().message().find(c.needle), std::string::npos) << t.status().message();
    EXPECT_EQ(t.status().message().find("0123456789abcde"), std::string::npos);
  }
  EXPECT_FALSE(parseBootstrapToken("abcdef").isOk());
  EXPECT_TRUE(parseBootstrapToken("abcdef.0123456789abcdef").isOk());
}

TEST(JoinTokenTest, ConstantTimeEquals) {
  EXPECT_TRUE(constantTimeEquals("abc", "abc"));
  EXPECT_FALSE(constantTimeEquals("abc", "abd"));
  EXPECT_FALSE(constantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(constantTimeEquals("", ""));
}

}  // namespace
}  // namespace ep::pki
