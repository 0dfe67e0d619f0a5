#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cloudcore/encryption/encrypting_store.h"
#include "cloudcore/encryption/encryption_config.h"
#include "cloudcore/store/sqlite_store.h"
#include "common/clock.h"
#include "common/pki/pki.h"
#include "tests/testing/forwarding_store.h"
#include "tests/testing/temp_dir.h"

namespace ep::encryption {
namespace {

namespace fs = std::filesystem;

// Raw keys used by the tests (AES-256 unless said otherwise).
const std::string kKey1(32, '\x11');
const std::string kKey2(32, '\x22');

struct KeySpec {
  std::string name;
  std::string secret;  // raw bytes
};

// An EncryptionConfiguration for secrets: one aesgcm provider with `keys` (in order), with
// identity after it (or before it when identityFirst), or without identity.
std::string configYaml(const std::vector<KeySpec>& keys, bool identity = true,
                       bool identityFirst = false) {
  std::string aesgcm = "  - aesgcm:\n      keys:\n";
  for (const auto& k : keys) {
    aesgcm += "      - name: " + k.name + "\n        secret: " + pki::base64Encode(k.secret) + "\n";
  }
  std::string text =
      "apiVersion: apiserver.config.k8s.io/v1\n"
      "kind: EncryptionConfiguration\n"
      "resources:\n"
      "- resources:\n"
      "  - secrets\n"
      "  providers:\n";
  if (identity && identityFirst) text += "  - identity: {}\n";
  if (!keys.empty()) text += aesgcm;
  if (identity && !identityFirst) text += "  - identity: {}\n";
  return text;
}

EncryptionConfig mustParse(const std::string& text) {
  auto c = EncryptionConfig::parse(text);
  EXPECT_TRUE(c.isOk()) << c.status().toString();
  return c.isOk() ? std::move(c).value() : EncryptionConfig();
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---------------------------------------------------------------------------------------------
// EncryptionConfiguration parsing

TEST(EncryptionConfigTest, ParsesTheKubernetesExample) {
  // The example of Kubernetes' "Encrypting Confidential Data at Rest" page, aesgcm part.
  auto c = EncryptionConfig::parse(R"(
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: c2VjcmV0IGlzIHNlY3VyZQ==
            - name: key2
              secret: dGhpcyBpcyBwYXNzd29yZA==
      - identity: {}
)");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_TRUE(c->covers("secrets"));
  EXPECT_FALSE(c->covers("configmaps"));
  EXPECT_TRUE(c->providers("configmaps").empty());
  const auto& providers = c->providers("secrets");
  ASSERT_EQ(providers.size(), 2u);
  EXPECT_EQ(providers[0].type, ProviderType::kAesGcm);
  ASSERT_EQ(providers[0].keys.size(), 2u);
  EXPECT_EQ(providers[0].keys[0].name, "key1");
  EXPECT_EQ(providers[0].keys[0].secret, "secret is secure");
  EXPECT_EQ(providers[0].keys[1].name, "key2");
  EXPECT_EQ(providers[0].keys[1].secret, "this is password");
  EXPECT_EQ(providers[1].type, ProviderType::kIdentity);
}

TEST(EncryptionConfigTest, AcceptsJsonKeySizesAndIdentityFirst) {
  auto c = EncryptionConfig::parse(
      R"({"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration",)"
      R"("resources":[{"resources":["secrets"],"providers":[{"identity":null},)"
      R"({"aesgcm":{"keys":[{"name":"a","secret":")" +
      pki::base64Encode(std::string(16, 'a')) + R"("},{"name":"b","secret":")" +
      pki::base64Encode(std::string(24, 'b')) + R"("},{"name":"c","secret":")" +
      pki::base64Encode(std::string(32, 'c')) + R"("}]}}]}]})");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  const auto& providers = c->providers("secrets");
  ASSERT_EQ(providers.size(), 2u);
  EXPECT_EQ(providers[0].type, ProviderType::kIdentity);
  EXPECT_EQ(providers[1].keys.size(), 3u);
}

TEST(EncryptionConfigTest, ErrorsNameTheField) {
  const std::string head =
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n";
  const std::string good = pki::base64Encode(kKey1);
  const std::string rules = "resources:\n- resources: [secrets]\n  providers:\n";
  const std::string keysAt = "resources[0].providers[0].aesgcm.keys";
  struct Case {
    std::string yaml;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"", "the configuration is empty"},
      {"[1, 2]", "the configuration must be a mapping"},
      {"resources: [", "not a valid YAML document"},
      {"apiVersion: v1\nkind: EncryptionConfiguration\nresources: []",
       "apiVersion: must be apiserver.config.k8s.io/v1, not \"v1\""},
      {"kind: EncryptionConfiguration\nresources: []",
       "apiVersion: required (apiserver.config.k8s.io/v1)"},
      {"apiVersion: apiserver.config.k8s.io/v1\nresources: []",
       "kind: required (EncryptionConfiguration)"},
      {"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfig\n",
       "kind: must be EncryptionConfiguration"},
      {head + "metadata: {}\n", "metadata: unknown field"},
      {head, "resources: required"},
      {head + "resources: []\n", "resources: must not be empty"},
      {head + "resources: {secrets: 1}\n", "resources: must be a list, not object"},
      {head + "resources: [secrets]\n",
       "resources[0]: must be a mapping with resources and providers, not string"},
      {head + "resources:\n- providers: [{identity: {}}]\n", "resources[0].resources: required"},
      {head + "resources:\n- resources: [configmaps]\n  providers: [{identity: {}}]\n",
       "resources[0].resources[0]: \"configmaps\" cannot be encrypted; only \"secrets\" can"},
      {head + "resources:\n- resources: [secrets, '*.*']\n  providers: [{identity: {}}]\n",
       "resources[0].resources[1]: \"*.*\": wildcards are not supported"},
      {head + "resources:\n- resources: [secrets]\n  providers: [{identity: {}}]\n"
              "- resources: [secrets]\n  providers: [{identity: {}}]\n",
       "resources[1].resources[0]: \"secrets\" is already listed at resources[0].resources[0]"},
      {head + "resources:\n- resources: [secrets]\n  cacheSize: 1\n  providers: [{identity: {}}]",
       "resources[0].cacheSize: unknown field"},
      {head + "resources:\n- resources: [secrets]\n", "resources[0].providers: required"},
      {head + rules + "  - identity: {}\n  - kms: {name: x, endpoint: unix:///kms.sock}\n",
       "resources[0].providers[1]: provider \"kms\" is not supported (aesgcm, identity)"},
      {head + rules + "  - aescbc: {keys: [{name: k, secret: " + good + "}]}\n",
       "resources[0].providers[0]: provider \"aescbc\" is not supported (aesgcm, identity)"},
      {head + rules + "  - aesgsm: {keys: [{name: k, secret: " + good + "}]}\n",
       "resources[0].providers[0]: provider \"aesgsm\" is not supported"},
      {head + rules + "  - {}\n", "resources[0].providers[0]: no provider given"},
      {head + rules + "  - identity: {}\n    aesgcm: {keys: [{name: k, secret: " + good + "}]}\n",
       "resources[0].providers[0]: more than one provider (aesgcm, identity)"},
      {head + rules + "  - identity: {keys: []}\n",
       "resources[0].providers[0].identity: must be {}"},
      {head + rules + "  - aesgcm: {}\n", keysAt + ": required"},
      {head + rules + "  - aesgcm: {keys: []}\n", keysAt + ": must not be empty"},
      {head + rules + "  - aesgcm: {keys: [{secret: " + good + "}]}\n",
       keysAt + "[0].name: required"},
      {head + rules + "  - aesgcm: {keys: [{name: '', secret: " + good + "}]}\n",
       keysAt + "[0].name: required"},
      {head + rules + "  - aesgcm: {keys: [{name: 'a:b', secret: " + good + "}]}\n",
       keysAt + "[0].name: \"a:b\": must not contain ':'"},
      {head + rules + "  - aesgcm: {keys: [{name: 7, secret: " + good + "}]}\n",
       keysAt + "[0].name: must be a string, not number"},
      {head + rules + "  - aesgcm: {keys: [{name: k1, secret: " + good +
           "}, {name: k1, secret: " + good + "}]}\n",
       keysAt + "[1].name: duplicate key name \"k1\""},
      {head + rules + "  - aesgcm: {keys: [{name: k1}]}\n", keysAt + "[0].secret: required"},
      {head + rules + "  - aesgcm: {keys: [{name: k1, secret: 'not*base64!'}]}\n",
       keysAt + "[0].secret: not valid base64"},
      {head + rules + "  - aesgcm: {keys: [{name: k1, secret: MTIzNDU2Nzg=}]}\n",
       keysAt + "[0].secret: key is 8 bytes, must be 16, 24 or 32"},
      {head + rules + "  - aesgcm: {keys: [{name: k1, secret: " + good + ", id: 3}]}\n",
       keysAt + "[0].id: unknown field"},
      {head + rules + "  - aesgcm: {keys: [k1]}\n",
       keysAt + "[0]: must be a mapping with name and secret, not string"},
  };
  for (const auto& c : cases) {
    auto r = EncryptionConfig::parse(c.yaml);
    ASSERT_FALSE(r.isOk()) << c.yaml;
    EXPECT_EQ(r.status().code(), Code::kInvalid) << c.yaml;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos)
        << "got:  " << r.status().message() << "\nwant: " << c.want << "\nyaml:\n"
        << c.yaml;
    // Key material never appears in an error.
    EXPECT_EQ(r.status().message().find(good), std::string::npos) << r.status().message();
  }
}

TEST(EncryptionConfigTest, LoadNamesTheFile) {
  testing::TempDir dir;
  std::string path = dir.path() + "/enc.yaml";
  auto missing = EncryptionConfig::load(path);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find(path), std::string::npos);

  std::ofstream(path) << "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                         "resources:\n- resources: [secrets]\n  providers: [{kms: {}}]\n";
  auto bad = EncryptionConfig::load(path);
  EXPECT_EQ(bad.status().code(), Code::kInvalid);
  EXPECT_EQ(bad.status().message(),
            path +
                ": resources[0].providers[0]: provider \"kms\" is not supported (aesgcm, "
                "identity)");

  std::ofstream(path) << configYaml({{"key1", kKey1}});
  auto good = EncryptionConfig::load(path);
  ASSERT_TRUE(good.isOk()) << good.status().toString();
  EXPECT_EQ(good->providers("secrets")[0].keys[0].secret, kKey1);
}

TEST(EncryptionConfigTest, GeneratesTheDefaultConfigOnce) {
  testing::TempDir dir;
  std::string dataDir = dir.path() + "/data";  // does not exist yet
  std::string path = defaultConfigPath(dataDir);
  EXPECT_EQ(path, dataDir + "/pki/encryption-config.yaml");

  auto first = loadOrCreateDefaultConfig(dataDir);
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((dataDir + "/pki").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  const auto& providers = first->providers("secrets");
  ASSERT_EQ(providers.size(), 2u);
  EXPECT_EQ(providers[0].type, ProviderType::kAesGcm);
  ASSERT_EQ(providers[0].keys.size(), 1u);
  EXPECT_EQ(providers[0].keys[0].name, "key1");
  EXPECT_EQ(providers[0].keys[0].secret.size(), 32u);
  EXPECT_NE(providers[0].keys[0].secret, std::string(32, '\0'));
  EXPECT_EQ(providers[1].type, ProviderType::kIdentity);

  // Never replaced: the key is the only way to read the store.
  std::string before = readAll(path);
  auto again = generateDefaultConfig(path);
  EXPECT_EQ(again.code(), Code::kAlreadyExists) << again.toString();
  EXPECT_EQ(readAll(path), before);
  auto second = loadOrCreateDefaultConfig(dataDir);
  ASSERT_TRUE(second.isOk()) << second.status().toString();
  EXPECT_EQ(second->providers("secrets")[0].keys[0].secret, providers[0].keys[0].secret);
  // No temporary file is left behind.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dataDir + "/pki")) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);

  // Another data dir gets another key.
  auto other = loadOrCreateDefaultConfig(dir.path() + "/other");
  ASSERT_TRUE(other.isOk()) << other.status().toString();
  EXPECT_NE(other->providers("secrets")[0].keys[0].secret, providers[0].keys[0].secret);
}

// ---------------------------------------------------------------------------------------------
// The stored form

TEST(EncryptionConfigTest, MatchesAesGcmAsKubernetesStoresIt) {
  // Independent known answer (Python's cryptography AESGCM, the same Seal layout as Go):
  // key 00..1f, nonce 00..0b, AAD "secrets/default/db".
  std::string key;
  for (int i = 0; i < 32; ++i) key += static_cast<char>(i);
  auto c = mustParse(configYaml({{"k", key}}, false));
  const std::string plaintext = R"({"kind":"Secret","data":{"k":"djE="}})";
  const std::string hex =
      "000102030405060708090a0b3c20bd72ab81e021af12f2e8c38c0c4faff4e355841a7d4643458ea7274b64d8"
      "442d8c81d2f1db79e6dff92a10d8dc1ac02c9ecd4e";
  std::string sealed;
  for (size_t i = 0; i < hex.size(); i += 2) {
    sealed += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  const std::string stored = "k8s:enc:aesgcm:v1:k:" + sealed;
  auto plain = c.fromStorage("secrets", stored, "secrets/default/db");
  ASSERT_TRUE(plain.isOk()) << plain.status().toString();
  EXPECT_EQ(*plain, plaintext);
  EXPECT_EQ(storageContext("secrets", "default", "db"), "secrets/default/db");

  // Another key (the authenticated data) does not decrypt.
  auto moved = c.fromStorage("secrets", stored, "secrets/default/db2");
  EXPECT_EQ(moved.status().code(), Code::kInternal);
  EXPECT_NE(moved.status().message().find("authentication failed"), std::string::npos);
}

TEST(EncryptionConfigTest, RoundTripsWithEveryKeySize) {
  for (size_t n : {16u, 24u, 32u}) {
    auto c = mustParse(configYaml({{"key1", std::string(n, 'k')}}, false));
    const std::string plaintext = "{\"data\":{\"x\":\"c2VjcmV0\"}}";
    auto a = c.toStorage("secrets", plaintext, "secrets/ns/x");
    auto b = c.toStorage("secrets", plaintext, "secrets/ns/x");
    ASSERT_TRUE(a.isOk() && b.isOk()) << a.status().toString();
    EXPECT_TRUE(a->starts_with("k8s:enc:aesgcm:v1:key1:")) << n;
    EXPECT_EQ(a->size(),
              std::string("k8s:enc:aesgcm:v1:key1:").size() + 12 + plaintext.size() + 16);
    EXPECT_NE(*a, *b) << "a fresh nonce per write";
    EXPECT_EQ(a->find(plaintext), std::string::npos);
    auto back = c.fromStorage("secrets", *a, "secrets/ns/x");
    ASSERT_TRUE(back.isOk()) << back.status().toString();
    EXPECT_EQ(*back, plaintext);
    EXPECT_TRUE(c.isCurrent("secrets", *a));
    EXPECT_FALSE(c.isCurrent("secrets", plaintext));
    // Other resources are not transformed.
    EXPECT_EQ(*c.toStorage("configmaps", plaintext, "configmaps/ns/x"), plaintext);
  }
}

TEST(EncryptionConfigTest, ReadErrorsSayWhy) {
  auto c = mustParse(configYaml({{"key1", kKey1}}, false));
  auto plain = c.fromStorage("secrets", "{}", "secrets/a/b");
  EXPECT_NE(plain.status().message().find("no identity provider"), std::string::npos);
  auto other = c.fromStorage("secrets", "k8s:enc:aescbc:v1:key1:xxxx", "secrets/a/b");
  EXPECT_NE(other.status().message().find("provider \"aescbc\""), std::string::npos);
  auto unknown = c.fromStorage("secrets", "k8s:enc:aesgcm:v1:old:" + std::string(40, 'x'), "s");
  EXPECT_NE(unknown.status().message().find("aesgcm key \"old\", which is not in the encryption "
                                            "configuration"),
            std::string::npos);
  auto shortValue = c.fromStorage("secrets", "k8s:enc:aesgcm:v1:key1:abc", "s");
  EXPECT_NE(shortValue.status().message().find("too short"), std::string::npos);
  for (const auto* r : {&plain, &other, &unknown, &shortValue}) {
    EXPECT_EQ(r->status().code(), Code::kInternal);
  }
}

// ---------------------------------------------------------------------------------------------
// EncryptingStore over a real SqliteStore

// Forwards to another store; runs `beforeUpdate` once, before the first update() is forwarded
// (to simulate a concurrent writer).
class HookStore final : public testing::ForwardingStore {
 public:
  HookStore(store::Store& inner, std::function<void()> beforeUpdate)
      : ForwardingStore(inner), beforeUpdate_(std::move(beforeUpdate)) {}
  Result<store::Object> update(const std::string& r, const std::string& ns, const std::string& n,
                               std::string v, int64_t rev) override {
    if (beforeUpdate_) std::exchange(beforeUpdate_, nullptr)();
    return inner_.update(r, ns, n, std::move(v), rev);
  }

 private:
  std::function<void()> beforeUpdate_;
};

// A Secret whose data holds `marker` (base64, as Kubernetes stores Secret data).
std::string secretJson(const std::string& ns, const std::string& name, const std::string& marker,
                       const std::string& extra = "") {
  return R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":")" + name +
         R"(","namespace":")" + ns + R"("},"data":{"password":")" + pki::base64Encode(marker) +
         R"("},"stringData":{"hint":")" + marker + "\"}" + extra + "}";
}

class EncryptingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteStoreOptions o;
    o.dataDir = dir_.path() + "/data";
    o.compactionInterval = std::chrono::seconds(0);
    raw_ = std::make_unique<store::SqliteStore>(o, clock_);
    ASSERT_TRUE(raw_->start().isOk());
  }
  void TearDown() override { raw_->stop(); }

  std::unique_ptr<EncryptingStore> over(const std::string& yaml) {
    return std::make_unique<EncryptingStore>(*raw_, mustParse(yaml));
  }
  std::string rawValue(const std::string& ns, const std::string& name) {
    auto r = raw_->get("secrets", ns, name);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? r->value : "";
  }
  std::vector<std::string> names(const Result<store::ListResult>& r) {
    std::vector<std::string> out;
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    if (r.isOk()) {
      for (const auto& o : r->items) out.push_back(o.namespace_ + "/" + o.name);
    }
    return out;
  }
  // Every file under the data dir that contains `needle`.
  std::vector<std::string> filesContaining(const std::string& needle) {
    std::vector<std::string> hits;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path() + "/data")) {
      if (!e.is_regular_file()) continue;
      if (readAll(e.path().string()).find(needle) != std::string::npos) {
        hits.push_back(e.path().string());
      }
    }
    return hits;
  }
  // Polls until `n` events arrived or 5 s passed.
  static std::vector<store::Event> drain(store::Watch& w, size_t n) {
    std::vector<store::Event> got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto more = w.poll(n - got.size());
      if (more.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      for (auto& e : more) got.push_back(std::move(e));
    }
    return got;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<store::SqliteStore> raw_;
};

TEST_F(EncryptingStoreTest, RoundTripStoresOnlyCiphertext) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  const std::string v1 = secretJson("default", "db", "hunter2-v1");
  auto c = enc->create("secrets", "default", "db", v1);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->value, v1);
  EXPECT_GT(c->modRevision, 0);

  std::string stored = rawValue("default", "db");
  EXPECT_TRUE(stored.starts_with("k8s:enc:aesgcm:v1:key1:"));
  EXPECT_EQ(stored.find("hunter2"), std::string::npos);
  EXPECT_EQ(stored.find(pki::base64Encode("hunter2-v1")), std::string::npos);

  auto g = enc->get("secrets", "default", "db");
  ASSERT_TRUE(g.isOk()) << g.status().toString();
  EXPECT_EQ(g->value, v1);
  EXPECT_EQ(g->modRevision, c->modRevision);

  const std::string v2 = secretJson("default", "db", "hunter2-v2");
  auto u = enc->update("secrets", "default", "db", v2, c->modRevision);
  ASSERT_TRUE(u.isOk()) << u.status().toString();
  EXPECT_EQ(u->value, v2);
  auto stale = enc->update("secrets", "default", "db", v1, c->modRevision);
  EXPECT_EQ(stale.status().code(), Code::kConflict);
  EXPECT_EQ(enc->create("secrets", "default", "db", v1).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(enc->get("secrets", "default", "nope").status().code(), Code::kNotFound);

  store::ListOptions lo;
  lo.resource = "secrets";
  auto l = enc->list(lo);
  ASSERT_TRUE(l.isOk()) << l.status().toString();
  ASSERT_EQ(l->items.size(), 1u);
  EXPECT_EQ(l->items[0].value, v2);

  auto d = enc->remove("secrets", "default", "db", 0);
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  EXPECT_EQ(d->value, v2);
  EXPECT_EQ(enc->get("secrets", "default", "db").status().code(), Code::kNotFound);

  // Other resources pass through untouched.
  const std::string cm = R"({"kind":"ConfigMap","data":{"a":"b"}})";
  ASSERT_TRUE(enc->create("configmaps", "default", "cm", cm).isOk());
  EXPECT_EQ(raw_->get("configmaps", "default", "cm")->value, cm);
  EXPECT_EQ(enc->get("configmaps", "default", "cm")->value, cm);
}

TEST_F(EncryptingStoreTest, ConcurrentWritersAndReaders) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        std::string v = secretJson("default", name, "pw-" + name);
        auto c = enc->create("secrets", "default", name, v);
        auto g = enc->get("secrets", "default", name);
        if (!c.isOk() || !g.isOk() || g->value != v) ++failures;
        store::ListOptions lo;
        lo.resource = "secrets";
        lo.limit = 5;
        if (!enc->list(lo).isOk()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  store::ListOptions lo;
  lo.resource = "secrets";
  EXPECT_EQ(names(enc->list(lo)).size(), 100u);
}

TEST_F(EncryptingStoreTest, NoPlaintextInAnyFileOfTheDataDir) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  const std::string marker = "zebra-quartz-secret-4711";
  const std::string cmMarker = "plain-configmap-marker-0815";
  for (int i = 0; i < 30; ++i) {
    std::string name = "s" + std::to_string(i);
    auto c = enc->create("secrets", "default", name, secretJson("default", name, marker));
    ASSERT_TRUE(c.isOk()) << c.status().toString();
    if (i % 3 == 0) {
      ASSERT_TRUE(enc->update("secrets", "default", name,
                              secretJson("default", name, marker, R"(,"type":"Opaque")"),
                              c->modRevision)
                      .isOk());
    }
    if (i % 5 == 0) {
      ASSERT_TRUE(enc->remove("secrets", "default", name, 0).isOk());
    }
  }
  // A ConfigMap is not encrypted: it shows the scan would find a plaintext value.
  ASSERT_TRUE(enc->create("configmaps", "default", "cm", "{\"data\":\"" + cmMarker + "\"}").isOk());

  auto expectNoPlaintext = [&](const char* when) {
    EXPECT_FALSE(filesContaining(cmMarker).empty()) << when;
    EXPECT_EQ(filesContaining(marker), std::vector<std::string>()) << when;
    EXPECT_EQ(filesContaining(pki::base64Encode(marker)), std::vector<std::string>()) << when;
    EXPECT_EQ(filesContaining("\"kind\":\"Secret\""), std::vector<std::string>()) << when;
  };
  expectNoPlaintext("store open (WAL)");
  raw_->stop();  // checkpoints the WAL into store.db
  expectNoPlaintext("store closed");
  ASSERT_TRUE(raw_->start().isOk());
  EXPECT_NE(enc->get("secrets", "default", "s1")->value.find(pki::base64Encode(marker)),
            std::string::npos);
}

TEST_F(EncryptingStoreTest, WatchEventsAreDecrypted) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  store::WatchOptions secretsOnly;
  secretsOnly.resource = "secrets";
  auto ws = enc->watch(secretsOnly);
  auto wall = enc->watch({});  // every resource
  ASSERT_TRUE(ws.isOk() && wall.isOk());

  const std::string v1 = secretJson("default", "db", "pw-1");
  const std::string v2 = secretJson("default", "db", "pw-2");
  const std::string cm = R"({"kind":"ConfigMap"})";
  auto c = enc->create("secrets", "default", "db", v1);
  ASSERT_TRUE(c.isOk());
  ASSERT_TRUE(enc->update("secrets", "default", "db", v2, c->modRevision).isOk());
  ASSERT_TRUE(enc->create("configmaps", "default", "cm", cm).isOk());
  ASSERT_TRUE(enc->remove("secrets", "default", "db", 0).isOk());

  auto events = drain(**ws, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, store::EventType::kAdded);
  EXPECT_EQ(events[0].object.value, v1);
  EXPECT_EQ(events[1].type, store::EventType::kModified);
  EXPECT_EQ(events[1].object.value, v2);
  EXPECT_EQ(events[1].prevValue, v1);
  EXPECT_EQ(events[2].type, store::EventType::kDeleted);
  EXPECT_EQ(events[2].object.value, v2);

  auto all = drain(**wall, 4);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[1].prevValue, v1);
  EXPECT_EQ(all[2].object.resource, "configmaps");
  EXPECT_EQ(all[2].object.value, cm);
  EXPECT_EQ(all[3].object.value, v2);
  (*ws)->stop();
  (*wall)->stop();
}

TEST_F(EncryptingStoreTest, WatchLeavesOutEventsThatCannotBeDecrypted) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  store::WatchOptions wo;
  wo.resource = "secrets";
  auto w = enc->watch(wo);
  ASSERT_TRUE(w.isOk());
  // Written around the decorator: claims key1 but is not a valid ciphertext.
  ASSERT_TRUE(
      raw_->create("secrets", "default", "bad", "k8s:enc:aesgcm:v1:key1:" + std::string(40, 'x'))
          .isOk());
  const std::string good = secretJson("default", "good", "pw");
  ASSERT_TRUE(enc->create("secrets", "default", "good", good).isOk());
  // Events come in revision order, so "bad" (revision 1) would be first.
  auto events = drain(**w, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].object.name, "good");
  EXPECT_EQ(events[0].object.value, good);
  EXPECT_TRUE((*w)->poll(10).empty());
  (*w)->stop();
}

TEST_F(EncryptingStoreTest, ListPredicateSeesPlaintextAndPagesCountOnlyMatches) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  for (const char* ns : {"team-a", "team-b"}) {
    for (int i = 0; i < 5; ++i) {
      std::string name = "s" + std::to_string(i);
      std::string tier = i % 2 == 0 ? R"(,"tier":"gold")" : R"(,"tier":"tin")";
      ASSERT_TRUE(enc->create("secrets", ns, name, secretJson(ns, name, "pw", tier)).isOk());
    }
  }
  std::atomic<int> calls{0};
  store::ListOptions lo;
  lo.resource = "secrets";
  lo.limit = 2;
  lo.predicate = [&calls](const store::Object& o) {
    ++calls;
    EXPECT_TRUE(o.value.starts_with("{")) << "the predicate must see the plaintext";
    return o.value.find(R"("tier":"gold")") != std::string::npos;
  };
  std::vector<std::string> got;
  for (int page = 0; page < 10; ++page) {
    auto r = enc->list(lo);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_LE(r->items.size(), 2u);
    for (const auto& o : r->items) {
      EXPECT_NE(o.value.find(R"("tier":"gold")"), std::string::npos);
      got.push_back(o.namespace_ + "/" + o.name);
    }
    if (r->continueToken.empty()) break;
    lo.continueToken = r->continueToken;
  }
  EXPECT_EQ(got, (std::vector<std::string>{"team-a/s0", "team-a/s2", "team-a/s4", "team-b/s0",
                                           "team-b/s2", "team-b/s4"}));
  EXPECT_GE(calls.load(), 10);

  store::ListOptions one;
  one.resource = "secrets";
  one.namespace_ = "team-b";
  EXPECT_EQ(names(enc->list(one)).size(), 5u);
}

TEST_F(EncryptingStoreTest, TamperedValueIsAnErrorAndListLeavesItOut) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  for (const char* n : {"a", "b", "c"}) {
    ASSERT_TRUE(enc->create("secrets", "default", n, secretJson("default", n, "pw")).isOk());
  }
  std::string stored = rawValue("default", "b");
  stored[stored.size() / 2] ^= 0x01;  // one bit of the ciphertext
  ASSERT_TRUE(raw_->update("secrets", "default", "b", stored, 0).isOk());

  auto g = enc->get("secrets", "default", "b");
  ASSERT_FALSE(g.isOk());
  EXPECT_EQ(g.status().code(), Code::kInternal);
  EXPECT_NE(g.status().message().find("secrets default/b: cannot decrypt: aesgcm key \"key1\": "
                                      "authentication failed"),
            std::string::npos)
      << g.status().message();

  store::ListOptions lo;
  lo.resource = "secrets";
  // A list fails (a reader must not take the Secret for deleted) ...
  auto strict = enc->list(lo);
  ASSERT_FALSE(strict.isOk());
  EXPECT_NE(strict.status().message().find("secrets default/b: cannot decrypt"), std::string::npos)
      << strict.status().message();
  // ... or, asked to, leaves it out and names it.
  lo.skipDamaged = true;
  auto skipped = enc->list(lo);
  EXPECT_EQ(names(skipped), (std::vector<std::string>{"default/a", "default/c"}));
  ASSERT_TRUE(skipped.isOk());
  ASSERT_EQ(skipped->damaged.size(), 1u);
  EXPECT_EQ(skipped->damaged[0], (store::Key{"secrets", "default", "b"}));
  lo.limit = 2;  // the row left out does not count against the limit
  auto page = enc->list(lo);
  EXPECT_EQ(names(page), (std::vector<std::string>{"default/a", "default/c"}));
  EXPECT_TRUE(page->continueToken.empty());

  // A damaged value can still be deleted around the decorator's check (the row goes away).
  auto d = enc->remove("secrets", "default", "b", 0);
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  EXPECT_EQ(d->value, "");
}

TEST_F(EncryptingStoreTest, ValueMovedToAnotherKeyDoesNotDecrypt) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  ASSERT_TRUE(enc->create("secrets", "team-a", "db", secretJson("team-a", "db", "pw")).isOk());
  std::string stored = rawValue("team-a", "db");
  ASSERT_TRUE(raw_->create("secrets", "team-a", "copy", stored).isOk());
  ASSERT_TRUE(raw_->create("secrets", "team-b", "db", stored).isOk());
  for (auto [ns, name] : {std::pair{"team-a", "copy"}, std::pair{"team-b", "db"}}) {
    auto g = enc->get("secrets", ns, name);
    EXPECT_EQ(g.status().code(), Code::kInternal);
    EXPECT_NE(g.status().message().find("authentication failed"), std::string::npos)
        << g.status().message();
  }
  EXPECT_TRUE(enc->get("secrets", "team-a", "db").isOk());
}

TEST_F(EncryptingStoreTest, IdentityReadsPlaintextFromOlderVersions) {
  // Written by a version without encryption at rest.
  const std::string old = secretJson("default", "legacy", "old-pw");
  ASSERT_TRUE(raw_->create("secrets", "default", "legacy", old).isOk());

  auto withIdentity = over(configYaml({{"key1", kKey1}}));
  auto g = withIdentity->get("secrets", "default", "legacy");
  ASSERT_TRUE(g.isOk()) << g.status().toString();
  EXPECT_EQ(g->value, old);

  auto withoutIdentity = over(configYaml({{"key1", kKey1}}, false));
  auto refused = withoutIdentity->get("secrets", "default", "legacy");
  EXPECT_EQ(refused.status().code(), Code::kInternal);
  EXPECT_NE(refused.status().message().find(
                "secrets default/legacy: cannot decrypt: the value is stored without encryption"),
            std::string::npos)
      << refused.status().message();

  // Migration: rewriting encrypts it.
  auto n = rewriteAll(*withIdentity, "secrets");
  ASSERT_TRUE(n.isOk()) << n.status().toString();
  EXPECT_EQ(*n, 1u);
  EXPECT_TRUE(rawValue("default", "legacy").starts_with("k8s:enc:aesgcm:v1:key1:"));
  EXPECT_EQ(withoutIdentity->get("secrets", "default", "legacy")->value, old);
}

TEST_F(EncryptingStoreTest, MigratedPlaintextLeavesTheFilesOnceCompacted) {
  const std::string marker = "legacy-plaintext-marker-2023";
  for (int i = 0; i < 20; ++i) {  // written by a version without encryption at rest
    std::string name = "legacy" + std::to_string(i);
    ASSERT_TRUE(
        raw_->create("secrets", "default", name, secretJson("default", name, marker)).isOk());
  }
  auto enc = over(configYaml({{"key1", kKey1}}));
  auto n = rewriteAll(*enc, "secrets");
  ASSERT_TRUE(n.isOk()) << n.status().toString();
  EXPECT_EQ(*n, 20u);
  // The plaintext is still in the watch history until it is compacted.
  EXPECT_FALSE(filesContaining(marker).empty());
  ASSERT_TRUE(raw_->compact(raw_->currentRevision()).isOk());
  raw_->stop();
  // Debian's SQLite deletes securely (SQLITE_SECURE_DELETE): freed content is zeroed.
  EXPECT_EQ(filesContaining(marker), std::vector<std::string>());
  EXPECT_EQ(filesContaining(pki::base64Encode(marker)), std::vector<std::string>());
  ASSERT_TRUE(raw_->start().isOk());
  EXPECT_TRUE(enc->get("secrets", "default", "legacy7").isOk());
}

TEST_F(EncryptingStoreTest, UnknownKeyIsNamed) {
  auto enc1 = over(configYaml({{"key1", kKey1}}));
  ASSERT_TRUE(enc1->create("secrets", "default", "db", secretJson("default", "db", "pw")).isOk());
  auto enc2 = over(configYaml({{"key2", kKey2}}));
  auto g = enc2->get("secrets", "default", "db");
  EXPECT_EQ(g.status().code(), Code::kInternal);
  EXPECT_EQ(g.status().message(),
            "secrets default/db: cannot decrypt: the value is encrypted with aesgcm key \"key1\", "
            "which is not in the encryption configuration");
  // Same name, different key material: authentication fails.
  auto wrong = over(configYaml({{"key1", kKey2}}));
  EXPECT_NE(wrong->get("secrets", "default", "db").status().message().find("authentication"),
            std::string::npos);
}

TEST_F(EncryptingStoreTest, KeyRotation) {
  const std::string a = secretJson("default", "a", "pw-a");
  const std::string b = secretJson("default", "b", "pw-b");
  const std::string c = secretJson("other", "c", "pw-c");
  // Before: key1.
  auto enc = over(configYaml({{"key1", kKey1}}));
  ASSERT_TRUE(enc->create("secrets", "default", "a", a).isOk());
  // 1. key2 added second: still writes with key1.
  enc = over(configYaml({{"key1", kKey1}, {"key2", kKey2}}));
  ASSERT_TRUE(enc->create("secrets", "default", "b", b).isOk());
  EXPECT_TRUE(rawValue("default", "b").starts_with("k8s:enc:aesgcm:v1:key1:"));
  // 2. key2 first: reads both keys, writes key2.
  enc = over(configYaml({{"key2", kKey2}, {"key1", kKey1}}));
  ASSERT_TRUE(enc->create("secrets", "other", "c", c).isOk());
  EXPECT_TRUE(rawValue("other", "c").starts_with("k8s:enc:aesgcm:v1:key2:"));
  EXPECT_EQ(enc->get("secrets", "default", "a")->value, a);
  EXPECT_EQ(enc->get("secrets", "default", "b")->value, b);
  // 3. Rewrite everything: a and b move to key2, c is already there.
  auto n = rewriteAll(*enc, "secrets");
  ASSERT_TRUE(n.isOk()) << n.status().toString();
  EXPECT_EQ(*n, 2u);
  for (auto [ns, name] :
       {std::pair{"default", "a"}, std::pair{"default", "b"}, std::pair{"other", "c"}}) {
    EXPECT_TRUE(rawValue(ns, name).starts_with("k8s:enc:aesgcm:v1:key2:")) << name;
  }
  auto again = rewriteAll(*enc, "secrets");
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(*again, 0u);
  // 4. key1 removed: everything still reads.
  enc = over(configYaml({{"key2", kKey2}}, false));
  store::ListOptions lo;
  lo.resource = "secrets";
  auto all = enc->list(lo);
  ASSERT_TRUE(all.isOk());
  ASSERT_EQ(all->items.size(), 3u);
  EXPECT_EQ(all->items[0].value, a);
  EXPECT_EQ(all->items[1].value, b);
  EXPECT_EQ(all->items[2].value, c);
  // And key1 alone reads nothing any more.
  auto old = over(configYaml({{"key1", kKey1}}, false));
  EXPECT_FALSE(old->list(lo).isOk());
  lo.skipDamaged = true;
  EXPECT_TRUE(old->list(lo)->items.empty());
  EXPECT_EQ(old->list(lo)->damaged.size(), 3u);
}

TEST_F(EncryptingStoreTest, RewriteAllRetriesOnConflictAndKeepsTheConcurrentWrite) {
  auto enc1 = over(configYaml({{"key1", kKey1}}));
  ASSERT_TRUE(enc1->create("secrets", "default", "a", secretJson("default", "a", "v1")).isOk());
  const std::string concurrent = secretJson("default", "a", "v2-concurrent");
  // Another writer, still on key1, updates the Secret between rewriteAll's read and its write.
  HookStore hooked(
      *raw_, [&] { ASSERT_TRUE(enc1->update("secrets", "default", "a", concurrent, 0).isOk()); });
  EncryptingStore enc2(hooked, mustParse(configYaml({{"key2", kKey2}, {"key1", kKey1}})));
  auto n = rewriteAll(enc2, "secrets");
  ASSERT_TRUE(n.isOk()) << n.status().toString();
  EXPECT_EQ(*n, 1u);
  EXPECT_TRUE(rawValue("default", "a").starts_with("k8s:enc:aesgcm:v1:key2:"));
  EXPECT_EQ(enc2.get("secrets", "default", "a")->value, concurrent);
}

TEST_F(EncryptingStoreTest, RewriteAllReportsWhatItCannotDecrypt) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  ASSERT_TRUE(enc->create("secrets", "default", "a", secretJson("default", "a", "pw")).isOk());
  ASSERT_TRUE(
      raw_->create("secrets", "default", "broken", "k8s:enc:aesgcm:v1:key1:" + std::string(40, 'x'))
          .isOk());
  auto rotated = over(configYaml({{"key2", kKey2}, {"key1", kKey1}}));
  auto n = rewriteAll(*rotated, "secrets");
  ASSERT_FALSE(n.isOk());
  EXPECT_EQ(n.status().code(), Code::kInternal);
  EXPECT_NE(n.status().message().find("rewrote 1 of secrets; 1 cannot be decrypted"),
            std::string::npos)
      << n.status().message();
  EXPECT_NE(n.status().message().find("secrets default/broken: cannot decrypt"), std::string::npos);
  EXPECT_TRUE(rawValue("default", "a").starts_with("k8s:enc:aesgcm:v1:key2:"));

  EXPECT_EQ(rewriteAll(*rotated, "configmaps").status().code(), Code::kInvalid);
}

TEST_F(EncryptingStoreTest, IdentityFirstDecryptsEverything) {
  auto enc = over(configYaml({{"key1", kKey1}}));
  const std::string v = secretJson("default", "a", "pw");
  ASSERT_TRUE(enc->create("secrets", "default", "a", v).isOk());
  // Turning encryption off, as Kubernetes documents it: identity first, the key still listed.
  auto off = over(configYaml({{"key1", kKey1}}, true, true));
  auto n = rewriteAll(*off, "secrets");
  ASSERT_TRUE(n.isOk()) << n.status().toString();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(rawValue("default", "a"), v);
}

}  // namespace
}  // namespace ep::encryption
