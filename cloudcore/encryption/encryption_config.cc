#include "cloudcore/encryption/encryption_config.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/pki/pki.h"
#include "common/yaml/yaml.h"

namespace ep::encryption {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kApiVersion = "apiserver.config.k8s.io/v1";
constexpr std::string_view kKind = "EncryptionConfiguration";
constexpr std::string_view kSupportedProviders = "(aesgcm, identity)";

// Clears the calling thread's OpenSSL error queue on entry and exit, so no reason text leaks
// into an unrelated later call (as common/pki does).
struct ErrorQueueGuard {
  ErrorQueueGuard() { ERR_clear_error(); }
  ~ErrorQueueGuard() { ERR_clear_error(); }
};

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string item(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
Status fieldError(const std::string& path, const std::string& message) {
  return invalidError(path + ": " + message);
}
std::string inQuotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// Every key of `obj` must be one of `allowed`.
Status onlyFields(const Json& obj, const std::string& path,
                  std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (auto a : allowed) known = known || key == a;
    if (!known) return fieldError(child(path, key), "unknown field");
  }
  return Status::ok();
}

// The required field `key` of `obj` as a non-empty array.
Result<const Json*> requiredList(const Json& obj, const std::string& path, std::string_view key) {
  std::string p = child(path, key);
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return fieldError(p, "required");
  if (!it->is_array()) return fieldError(p, std::string("must be a list, not ") + it->type_name());
  if (it->empty()) return fieldError(p, "must not be empty");
  return &*it;
}

Result<std::string> requiredString(const Json& obj, const std::string& path, std::string_view key) {
  std::string p = child(path, key);
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return fieldError(p, "required");
  if (!it->is_string())
    return fieldError(p, std::string("must be a string, not ") + it->type_name());
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return fieldError(p, "required");
  return s;
}

Result<Provider> parseAesGcm(const Json& spec, const std::string& path) {
  if (!spec.is_object()) {
    return fieldError(path, std::string("must be a mapping with keys, not ") + spec.type_name());
  }
  if (auto s = onlyFields(spec, path, {"keys"}); !s.isOk()) return s;
  auto keys = requiredList(spec, path, "keys");
  if (!keys) return keys.status();
  Provider provider;
  provider.type = ProviderType::kAesGcm;
  for (size_t i = 0; i < (*keys)->size(); ++i) {
    const Json& k = (**keys)[i];
    std::string kp = item(child(path, "keys"), i);
    if (!k.is_object()) {
      return fieldError(
          kp, std::string("must be a mapping with name and secret, not ") + k.type_name());
    }
    if (auto s = onlyFields(k, kp, {"name", "secret"}); !s.isOk()) return s;
    auto name = requiredString(k, kp, "name");
    if (!name) return name.status();
    if (name->find(':') != std::string::npos) {
      return fieldError(child(kp, "name"), inQuotes(*name) + ": must not contain ':'");
    }
    auto secretText = requiredString(k, kp, "secret");
    if (!secretText) return secretText.status();
    auto secret = pki::base64Decode(*secretText);
    wipe(*secretText);
    if (!secret) return fieldError(child(kp, "secret"), "not valid base64");
    size_t n = secret->size();
    if (n != 16 && n != 24 && n != 32) {
      wipe(*secret);
      return fieldError(child(kp, "secret"),
                        "key is " + std::to_string(n) + " bytes, must be 16, 24 or 32");
    }
    provider.keys.push_back({std::move(*name), std::move(*secret)});
  }
  return provider;
}

Result<Provider> parseProvider(const Json& p, const std::string& path) {
  if (!p.is_object()) {
    return fieldError(path, std::string("must be a mapping naming one provider ") +
                                std::string(kSupportedProviders) + ", not " + p.type_name());
  }
  if (p.empty()) {
    return fieldError(
        path, "no provider given: one of " + std::string(kSupportedProviders) + " is required");
  }
  if (p.size() > 1) {
    std::string names;
    for (const auto& [key, value] : p.items()) names += (names.empty() ? "" : ", ") + key;
    return fieldError(
        path, "more than one provider (" + names + "): give each provider its own list element");
  }
  // Not a structured binding of *p.items().begin(): that binds to a temporary proxy
  // (stack-use-after-scope under ASan).
  const std::string type = p.begin().key();
  const auto& spec = p.begin().value();
  std::string sp = child(path, type);
  if (type == "identity") {
    if (!spec.is_null() && !(spec.is_object() && spec.empty())) return fieldError(sp, "must be {}");
    return Provider{ProviderType::kIdentity, {}};
  }
  if (type == "aesgcm") return parseAesGcm(spec, sp);
  return fieldError(
      path, "provider " + inQuotes(type) + " is not supported " + std::string(kSupportedProviders));
}

// EVP cipher for a raw key of 16, 24 or 32 bytes.
const EVP_CIPHER* gcmCipher(size_t keyBytes) {
  switch (keyBytes) {
    case 16:
      return EVP_aes_128_gcm();
    case 24:
      return EVP_aes_192_gcm();
    case 32:
      return EVP_aes_256_gcm();
    default:
      return nullptr;
  }
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

unsigned char* bytes(std::string& s, size_t offset) {
  return reinterpret_cast<unsigned char*>(s.data()) + offset;
}
const unsigned char* bytes(std::string_view s, size_t offset = 0) {
  return reinterpret_cast<const unsigned char*>(s.data()) + offset;
}

// prefix || nonce || AES-GCM(key, nonce, plaintext, aad) || tag.
Result<std::string> seal(const AesGcmKey& key, std::string_view prefix, std::string_view plaintext,
                         std::string_view aad) {
  ErrorQueueGuard guard;
  if (plaintext.size() > INT_MAX || aad.size() > INT_MAX) {
    return internalError("aesgcm: value too large");
  }
  const EVP_CIPHER* cipher = gcmCipher(key.secret.size());
  if (!cipher) return internalError("aesgcm: key " + inQuotes(key.name) + " has a bad length");
  std::string out;
  out.reserve(prefix.size() + kAesGcmNonceBytes + plaintext.size() + kAesGcmTagBytes);
  out.append(prefix);
  const size_t nonceAt = out.size();
  out.resize(nonceAt + kAesGcmNonceBytes + plaintext.size() + kAesGcmTagBytes);
  const size_t dataAt = nonceAt + kAesGcmNonceBytes;
  const size_t tagAt = dataAt + plaintext.size();
  if (RAND_bytes(bytes(out, nonceAt), static_cast<int>(kAesGcmNonceBytes)) != 1) {
    return internalError("aesgcm: the random generator failed");
  }
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, kAesGcmNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key.secret), bytes(out, nonceAt)) !=
          1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad),
                                         static_cast<int>(aad.size())) != 1) ||
      (!plaintext.empty() &&
       EVP_EncryptUpdate(ctx.get(), bytes(out, dataAt), &len, bytes(plaintext),
                         static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx.get(), bytes(out, tagAt), &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kAesGcmTagBytes, bytes(out, tagAt)) !=
          1) {
    return internalError("aesgcm: encryption failed");
  }
  return out;
}

// The plaintext of `sealed` (nonce || ciphertext || tag, without the prefix).
Result<std::string> open(const AesGcmKey& key, std::string_view sealed, std::string_view aad) {
  ErrorQueueGuard guard;
  if (sealed.size() < kAesGcmNonceBytes + kAesGcmTagBytes) {
    return internalError("aesgcm key " + inQuotes(key.name) + ": the value is too short (" +
                         std::to_string(sealed.size()) + " bytes after the prefix)");
  }
  if (sealed.size() > INT_MAX || aad.size() > INT_MAX) {
    return internalError("aesgcm: value too large");
  }
  const EVP_CIPHER* cipher = gcmCipher(key.secret.size());
  if (!cipher) return internalError("aesgcm: key " + inQuotes(key.name) + " has a bad length");
  std::string_view nonce = sealed.substr(0, kAesGcmNonceBytes);
  std::string_view data =
      sealed.substr(kAesGcmNonceBytes, sealed.size() - kAesGcmNonceBytes - kAesGcmTagBytes);
  std::string tag(sealed.substr(sealed.size() - kAesGcmTagBytes));
  std::string out(data.size(), '\0');
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, kAesGcmNonceBytes, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key.secret), bytes(nonce)) != 1 ||
      (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad),
                                         static_cast<int>(aad.size())) != 1) ||
      (!data.empty() && EVP_DecryptUpdate(ctx.get(), bytes(out, 0), &len, bytes(data),
                                          static_cast<int>(data.size())) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kAesGcmTagBytes, tag.data()) != 1) {
    wipe(out);
    return internalError("aesgcm key " + inQuotes(key.name) + ": decryption failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), bytes(out, data.size()), &len) != 1) {
    wipe(out);
    return internalError("aesgcm key " + inQuotes(key.name) +
                         ": authentication failed (the value is corrupted, was altered, or "
                         "belongs to another object)");
  }
  return out;
}

std::string keyPrefix(const AesGcmKey& key) {
  return std::string(kAesGcmPrefix) + key.name + ":";
}

const std::vector<Provider> kNoProviders;

constexpr const char* kDefaultConfigTemplate =
    "# Created by cloudcore on its first start (docs/security.md, \"Secrets at rest\").\n"
    "# Secrets are encrypted in the store with this key. Keep a copy of this file in a safe\n"
    "# place, apart from backups of the store: without it the Secrets cannot be read.\n"
    "apiVersion: apiserver.config.k8s.io/v1\n"
    "kind: EncryptionConfiguration\n"
    "resources:\n"
    "  - resources:\n"
    "      - secrets\n"
    "    providers:\n"
    "      - aesgcm:\n"
    "          keys:\n"
    "            - name: key1\n"
    "              secret: ";
constexpr const char* kDefaultConfigTail =
    "\n"
    "      # Reads Secrets stored in plaintext by versions without encryption at rest.\n"
    "      - identity: {}\n";

}  // namespace

std::string storageContext(std::string_view resource, std::string_view ns, std::string_view name) {
  std::string out;
  out.reserve(resource.size() + ns.size() + name.size() + 2);
  out.append(resource).append("/").append(ns).append("/").append(name);
  return out;
}

EncryptionConfig::~EncryptionConfig() {
  for (auto& rule : rules_) {
    for (auto& provider : rule.providers) {
      for (auto& key : provider.keys) wipe(key.secret);
    }
  }
}

Result<EncryptionConfig> EncryptionConfig::parse(std::string_view yamlText) {
  auto doc = yaml::parseYamlDocument(yamlText);
  if (!doc) return invalidError("not a valid YAML document: " + doc.status().message());
  const Json& root = *doc;
  if (root.is_null()) return invalidError("the configuration is empty");
  if (!root.is_object()) {
    return invalidError(std::string("the configuration must be a mapping (apiVersion: ") +
                        std::string(kApiVersion) + ", kind: " + std::string(kKind) + "), not " +
                        root.type_name());
  }
  if (auto s = onlyFields(root, "", {"apiVersion", "kind", "resources"}); !s.isOk()) return s;
  for (auto [field, want] : {std::pair{"apiVersion", kApiVersion}, std::pair{"kind", kKind}}) {
    auto it = root.find(field);
    if (it == root.end() || it->is_null()) {
      return fieldError(field, "required (" + std::string(want) + ")");
    }
    if (!it->is_string() || it->get_ref<const std::string&>() != want) {
      return fieldError(field, "must be " + std::string(want) + ", not " + it->dump());
    }
  }
  auto rules = requiredList(root, "", "resources");
  if (!rules) return rules.status();
  EncryptionConfig config;
  std::string secretsAt;  // where "secrets" was listed first
  for (size_t i = 0; i < (*rules)->size(); ++i) {
    const Json& r = (**rules)[i];
    std::string rp = item("resources", i);
    if (!r.is_object()) {
      return fieldError(
          rp, std::string("must be a mapping with resources and providers, not ") + r.type_name());
    }
    if (auto s = onlyFields(r, rp, {"resources", "providers"}); !s.isOk()) return s;
    Rule rule;
    auto resources = requiredList(r, rp, "resources");
    if (!resources) return resources.status();
    for (size_t j = 0; j < (*resources)->size(); ++j) {
      const Json& name = (**resources)[j];
      std::string np = item(child(rp, "resources"), j);
      if (!name.is_string()) {
        return fieldError(np, std::string("must be a string, not ") + name.type_name());
      }
      const auto& s = name.get_ref<const std::string&>();
      if (s.find('*') != std::string::npos) {
        return fieldError(np, inQuotes(s) +
                                  ": wildcards are not supported; only \"secrets\" can be "
                                  "encrypted");
      }
      if (s != "secrets") {
        return fieldError(np, inQuotes(s) + " cannot be encrypted; only \"secrets\" can");
      }
      if (!secretsAt.empty()) {
        return fieldError(np, inQuotes(s) + " is already listed at " + secretsAt);
      }
      secretsAt = np;
      rule.resources.push_back(s);
    }
    auto providers = requiredList(r, rp, "providers");
    if (!providers) return providers.status();
    std::vector<std::string> keyNames;
    for (size_t j = 0; j < (*providers)->size(); ++j) {
      std::string pp = item(child(rp, "providers"), j);
      auto provider = parseProvider((**providers)[j], pp);
      if (!provider) return provider.status();
      for (size_t k = 0; k < provider->keys.size(); ++k) {
        const std::string& keyName = provider->keys[k].name;
        for (const auto& seen : keyNames) {
          if (seen == keyName) {
            return fieldError(item(pp + ".aesgcm.keys", k) + ".name",
                              "duplicate key name " + inQuotes(keyName));
          }
        }
        keyNames.push_back(keyName);
      }
      rule.providers.push_back(std::move(*provider));
    }
    config.rules_.push_back(std::move(rule));
  }
  return config;
}

Result<EncryptionConfig> EncryptionConfig::load(const std::string& path) {
  auto text = pki::readFile(path);
  if (!text) return text.status();
  auto config = parse(*text);
  wipe(*text);
  if (!config) return Status(config.status().code(), path + ": " + config.status().message());
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    spdlog::warn("encryption: {} holds the encryption keys but is readable by others (mode {:o})",
                 path, st.st_mode & 07777);
  }
  return config;
}

const EncryptionConfig::Rule* EncryptionConfig::ruleFor(std::string_view resource) const {
  for (const auto& rule : rules_) {
    for (const auto& r : rule.resources) {
      if (r == resource) return &rule;
    }
  }
  return nullptr;
}

bool EncryptionConfig::covers(std::string_view resource) const {
  return ruleFor(resource) != nullptr;
}

const std::vector<Provider>& EncryptionConfig::providers(std::string_view resource) const {
  const Rule* rule = ruleFor(resource);
  return rule ? rule->providers : kNoProviders;
}

Result<std::string> EncryptionConfig::toStorage(std::string_view resource,
                                                std::string_view plaintext,
                                                std::string_view context) const {
  const Rule* rule = ruleFor(resource);
  if (!rule || rule->providers.front().type == ProviderType::kIdentity) {
    return std::string(plaintext);
  }
  const AesGcmKey& key = rule->providers.front().keys.front();
  return seal(key, keyPrefix(key), plaintext, context);
}

Result<std::string> EncryptionConfig::fromStorage(std::string_view resource,
                                                  std::string_view stored,
                                                  std::string_view context) const {
  const Rule* rule = ruleFor(resource);
  if (!rule) return std::string(stored);
  if (!stored.starts_with(kEncryptedPrefix)) {
    for (const auto& p : rule->providers) {
      if (p.type == ProviderType::kIdentity) return std::string(stored);
    }
    return internalError(
        "the value is stored without encryption and the encryption configuration has no "
        "identity provider");
  }
  if (!stored.starts_with(kAesGcmPrefix)) {
    std::string_view rest = stored.substr(kEncryptedPrefix.size());
    std::string_view provider = rest.substr(0, std::min(rest.find(':'), size_t{32}));
    return internalError("the value is encrypted by provider " + inQuotes(provider) +
                         ", which is not supported " + std::string(kSupportedProviders));
  }
  std::string_view rest = stored.substr(kAesGcmPrefix.size());
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return internalError("the value has a malformed aesgcm prefix (no key name)");
  }
  std::string_view keyName = rest.substr(0, colon);
  for (const auto& p : rule->providers) {
    for (const auto& key : p.keys) {
      if (key.name == keyName) return open(key, rest.substr(colon + 1), context);
    }
  }
  return internalError("the value is encrypted with aesgcm key " + inQuotes(keyName) +
                       ", which is not in the encryption configuration");
}

bool EncryptionConfig::isCurrent(std::string_view resource, std::string_view stored) const {
  const Rule* rule = ruleFor(resource);
  if (!rule) return true;
  const Provider& first = rule->providers.front();
  if (first.type == ProviderType::kIdentity) return !stored.starts_with(kEncryptedPrefix);
  return stored.starts_with(keyPrefix(first.keys.front()));
}

Status generateDefaultConfig(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0)
    return Status(Code::kAlreadyExists, path + " already exists");
  auto key = pki::randomBytes(32);
  if (!key) return key.status();
  std::string encoded = pki::base64Encode(*key);
  wipe(*key);
  std::string text = std::string(kDefaultConfigTemplate) + encoded + kDefaultConfigTail;
  wipe(encoded);
  Status s = pki::createFileExclusive(path, text, 0600);
  wipe(text);
  return s;
}

std::string defaultConfigPath(const std::string& dataDir) {
  return dataDir + "/pki/encryption-config.yaml";
}

Result<EncryptionConfig> loadOrCreateDefaultConfig(const std::string& dataDir) {
  std::string path = defaultConfigPath(dataDir);
  Status created = generateDefaultConfig(path);
  if (created.isOk()) {
    spdlog::info(
        "encryption: created {} with a new aesgcm key; Secrets are encrypted with it. Keep a "
        "copy apart from backups of the data dir: without it the Secrets cannot be read",
        path);
  } else if (created.code() != Code::kAlreadyExists) {
    return Status(created.code(), "encryption: " + created.message());
  }
  return EncryptionConfig::load(path);
}

}  // namespace ep::encryption
