// cloudcore --join-token-file: the token kept in a file for edge containers, on a real
// Registry (SQLite).
#include "cloudcore/certs/join_token_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/api/kinds.h"
#include "common/pki/join_token.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/temp_dir.h"

namespace ep::certs {
namespace {

using nlohmann::json;

std::string firstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

class JoinTokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.start().isOk()); }
  void TearDown() override { env_.stop(); }
  registry::Registry& reg() { return *env_.registry; }

  ep::testing::StoreFixture env_;
  ep::testing::TempDir dir_;
  const std::string path_ = dir_.path() + "/token";
  const std::string ca_ = "sha256:" + std::string(64, 'a');
};

TEST_F(JoinTokenFileTest, WritesATokenOnceAndKeepsItWhileItIsValid) {
  ASSERT_TRUE(ensureJoinTokenFile(reg(), ca_, path_).isOk());
  const std::string first = firstLine(path_);
  auto token = pki::parseJoinToken(first);
  ASSERT_TRUE(token.isOk()) << first;
  EXPECT_EQ(token->caHash, ca_);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto& secrets = *api::findByApiVersionKind("v1", "Secret");
  auto secret = reg().get(secrets, "kube-system", pki::bootstrapTokenSecretName(token->id));
  ASSERT_TRUE(secret.isOk());
  EXPECT_EQ((*secret)["type"], "bootstrap.kubernetes.io/token");
  EXPECT_FALSE((*secret)["data"].contains("expiration"));
  EXPECT_FALSE((*secret)["data"].contains("usages-remaining"));  // every edge of the project

  // A restart keeps it.
  ASSERT_TRUE(ensureJoinTokenFile(reg(), ca_, path_).isOk());
  EXPECT_EQ(firstLine(path_), first);

  // A Secret that no longer holds the file's secret: a new token, the old Secret deleted.
  json changed = *secret;
  changed["data"]["token-secret"] = "b3RoZXJzZWNyZXQxMjM0NTY=";  // "othersecret123456"
  ASSERT_TRUE(reg()
                  .update(secrets, "kube-system", pki::bootstrapTokenSecretName(token->id), changed)
                  .isOk());
  ASSERT_TRUE(ensureJoinTokenFile(reg(), ca_, path_).isOk());
  EXPECT_NE(firstLine(path_), first);
  EXPECT_EQ(
      reg().get(secrets, "kube-system", pki::bootstrapTokenSecretName(token->id)).status().code(),
      Code::kNotFound);
  token = pki::parseJoinToken(firstLine(path_));
  ASSERT_TRUE(token.isOk());

  // Gone from the cluster, of another CA, or not a token at all: a new one.
  const std::string before = firstLine(path_);
  ASSERT_TRUE(
      reg().remove(secrets, "kube-system", pki::bootstrapTokenSecretName(token->id)).isOk());
  ASSERT_TRUE(ensureJoinTokenFile(reg(), ca_, path_).isOk());
  const std::string second = firstLine(path_);
  EXPECT_NE(second, before);
  ASSERT_TRUE(ensureJoinTokenFile(reg(), "sha256:" + std::string(64, 'b'), path_).isOk());
  EXPECT_NE(firstLine(path_), second);
  std::ofstream(path_, std::ios::trunc) << "garbage\n";
  ASSERT_TRUE(ensureJoinTokenFile(reg(), ca_, path_).isOk());
  EXPECT_TRUE(pki::parseJoinToken(firstLine(path_)).isOk());
}

TEST_F(JoinTokenFileTest, AnUnwritableFileIsAnErrorNamingIt) {
  auto s = ensureJoinTokenFile(reg(), ca_, dir_.path() + "/no/such/dir/token");
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("--join-token-file " + dir_.path() + "/no/such/dir/token"),
            std::string::npos)
      << s.message();
  // No token was left in the cluster without its file.
  auto all = reg().list(*api::findByApiVersionKind("v1", "Secret"), "kube-system", {});
  ASSERT_TRUE(all.isOk());
  for (const auto& secret : all->items) {
    EXPECT_NE(secret["type"], "bootstrap.kubernetes.io/token") << secret.dump();
  }
}

}  // namespace
}  // namespace ep::certs
