#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

// Encryption at rest (README.md): Kubernetes' EncryptionConfiguration, and the transformation of
// stored values it defines. Values are stored exactly as Kubernetes' aesgcm provider stores
// them, so the format and the procedures (key rotation, decrypting everything) are the ones
// Kubernetes documents.
namespace ep::encryption {

// The stored form of a value encrypted with aesgcm key NAME:
//   "k8s:enc:aesgcm:v1:NAME:" || 12-byte random nonce || ciphertext || 16-byte GCM tag
// (Go's cipher.AEAD Seal output after the nonce, as Kubernetes writes it). The additional
// authenticated data is the value's store key, see storageContext().
inline constexpr std::string_view kEncryptedPrefix = "k8s:enc:";
inline constexpr std::string_view kAesGcmPrefix = "k8s:enc:aesgcm:v1:";
inline constexpr size_t kAesGcmNonceBytes = 12;
inline constexpr size_t kAesGcmTagBytes = 16;

// The authenticated data bound to a stored value: "RESOURCE/NAMESPACE/NAME" (e.g.
// "secrets/default/db"; Kubernetes binds the etcd key the same way). A value copied to another
// key does not decrypt.
std::string storageContext(std::string_view resource, std::string_view ns, std::string_view name);

enum class ProviderType { kAesGcm, kIdentity };

struct AesGcmKey {
  std::string name;    // non-empty, no ':' (it is part of the stored prefix)
  std::string secret;  // the raw key: 16, 24 or 32 bytes (AES-128, -192, -256)
};

struct Provider {
  ProviderType type = ProviderType::kIdentity;
  std::vector<AesGcmKey> keys;  // aesgcm only, in the configured order (the first encrypts)
};

// A parsed `apiVersion: apiserver.config.k8s.io/v1, kind: EncryptionConfiguration`:
//
//   resources:
//   - resources: [secrets]
//     providers:
//     - aesgcm: {keys: [{name: key1, secret: BASE64-OF-16-24-OR-32-BYTES}]}
//     - identity: {}
//
// Supported: the resource `secrets` (every other resource and the `*.*`-style wildcards are
// refused) and the providers `aesgcm` and `identity` (aescbc, secretbox, kms are refused).
// New values are written by the first provider (its first key); reads try every provider:
// aesgcm by the key name in the value's prefix, identity for values without a `k8s:enc:`
// prefix (plaintext written before encryption was enabled).
//
// Immutable after construction; every const method is thread-safe. Key material is wiped
// from memory when the object is destroyed; error messages never contain it.
class EncryptionConfig {
 public:
  EncryptionConfig() = default;  // encrypts nothing
  ~EncryptionConfig();
  EncryptionConfig(const EncryptionConfig&) = default;
  EncryptionConfig& operator=(const EncryptionConfig&) = default;
  EncryptionConfig(EncryptionConfig&&) = default;
  EncryptionConfig& operator=(EncryptionConfig&&) = default;

  // Parses and validates YAML (or JSON) text. kInvalid naming the field path, e.g.
  // `resources[0].providers[1]: provider "kms" is not supported (aesgcm, identity)` or
  // `resources[0].providers[0].aesgcm.keys[0].secret: key is 8 bytes, must be 16, 24 or 32`.
  static Result<EncryptionConfig> parse(std::string_view yamlText);
  // Reads and parses a file; errors are prefixed with the path. Warns (log) when the file can
  // be read by group or others: it holds the keys.
  static Result<EncryptionConfig> load(const std::string& path);

  // Whether values of `resource` (e.g. "secrets") are transformed at all.
  bool covers(std::string_view resource) const;
  // The providers for `resource` in configured order; empty when not covered.
  const std::vector<Provider>& providers(std::string_view resource) const;

  // The stored form of `plaintext` for `resource`, written by its first provider: aesgcm with
  // the first key and a fresh random nonce, or the plaintext itself for identity (and for
  // resources not covered). `context` is storageContext() of the value's key. kInternal only if
  // the random generator or OpenSSL fails.
  Result<std::string> toStorage(std::string_view resource, std::string_view plaintext,
                                std::string_view context) const;
  // The plaintext of a stored value. kInternal when it cannot be read: an aesgcm key the
  // configuration does not have, a failed authentication (corrupted or tampered data, or a
  // value moved to another key), a provider prefix that is not configured, or a plaintext
  // value when there is no identity provider. The message says which, never the data.
  Result<std::string> fromStorage(std::string_view resource, std::string_view stored,
                                  std::string_view context) const;
  // Whether `stored` is already in the form toStorage() writes now (same provider and key), so
  // rewriting it would change nothing but the nonce.
  bool isCurrent(std::string_view resource, std::string_view stored) const;

 private:
  struct Rule {
    std::vector<std::string> resources;
    std::vector<Provider> providers;
  };
  const Rule* ruleFor(std::string_view resource) const;

  std::vector<Rule> rules_;
};

// Writes a new configuration file for `secrets` with one random 32-byte aesgcm key named
// `key1` followed by `identity: {}` (so plaintext Secrets written by older versions stay
// readable), mode 0600; missing parent directories are created with mode 0700. Never replaces
// a file: kAlreadyExists when `path` exists (its keys are the only way to read the store).
// Crash-safe: the file appears complete or not at all.
Status generateDefaultConfig(const std::string& path);

// The configuration cloudcore uses without --encryption-provider-config:
// DATA_DIR/pki/encryption-config.yaml, created by generateDefaultConfig() on first start
// (logged) and loaded on every start.
std::string defaultConfigPath(const std::string& dataDir);
Result<EncryptionConfig> loadOrCreateDefaultConfig(const std::string& dataDir);

}  // namespace ep::encryption
