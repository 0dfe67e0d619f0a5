#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "cloudcore/encryption/encryption_config.h"
#include "cloudcore/store/store.h"
#include "common/status.h"

namespace ep::encryption {

// A Store that encrypts the values of the resources its EncryptionConfig covers (Secrets) on
// their way into another Store and decrypts them on their way out, so the inner store, its
// files, its WAL and its history only ever hold the stored form (encryption_config.h). Keys and
// revisions are untouched; resources the configuration does not cover pass through unchanged.
//
// For covered resources:
//  - create() and update() store config.toStorage(value) (the first provider) and return the
//    plaintext value with the inner store's revisions;
//  - get() returns the plaintext; a value that cannot be decrypted (a key the configuration
//    does not have, failed authentication: corrupted, altered or moved to another key) is
//    kInternal "secrets NS/NAME: cannot decrypt: REASON", never the raw bytes;
//  - list() decrypts every row before the caller's predicate sees it and before `limit`
//    counts it. A row that cannot be decrypted is left out of the result and logged (warning
//    naming the object and the reason) instead of failing the whole list, so one damaged
//    Secret does not hide the others; get() on it still reports the error;
//  - watch events carry the plaintext in object.value and prevValue. An event whose value
//    cannot be decrypted is left out and logged, as list() does (the one exception to the
//    "no gaps" promise of Watch); an undecryptable prevValue is logged and delivered empty;
//  - remove() returns the deleted object with its last value decrypted. The object is gone
//    even when that value cannot be decrypted: then the value is empty and a warning logged.
//
// Threading: every method is thread-safe, as the inner store's are; the configuration is
// immutable. Lifecycle: the inner store must outlive this object and every watch it opened;
// start() and stop() are forwarded to it (call them on one of the two, not both).
class EncryptingStore final : public store::Store {
 public:
  EncryptingStore(store::Store& inner, EncryptionConfig config);

  Status start() override;
  void stop() override;

  Result<store::Object> get(const std::string& resource, const std::string& ns,
                            const std::string& name) override;
  Result<store::ListResult> list(const store::ListOptions& options) override;
  Result<store::Object> create(const std::string& resource, const std::string& ns,
                               const std::string& name, std::string value) override;
  Result<store::Object> update(const std::string& resource, const std::string& ns,
                               const std::string& name, std::string value,
                               int64_t expectedRevision) override;
  Result<store::Object> remove(const std::string& resource, const std::string& ns,
                               const std::string& name, int64_t expectedRevision) override;
  Result<store::Object> removeUnsafe(const std::string& resource, const std::string& ns,
                                     const std::string& name, std::string tombstone,
                                     int64_t expectedRevision) override;
  Result<std::unique_ptr<store::Watch>> watch(const store::WatchOptions& options) override;

  int64_t currentRevision() override;
  int64_t compactedRevision() override;
  Status compact(int64_t revision) override;
  Status probeWrite() override { return inner_.probeWrite(); }

  const EncryptionConfig& config() const { return *config_; }

 private:
  friend Result<size_t> rewriteAll(EncryptingStore& store, const std::string& resource);

  store::Store& inner_;
  const std::shared_ptr<const EncryptionConfig> config_;  // shared with open watches
};

// Key rotation and migration (docs/security.md, "Secrets at rest"): rewrites every object of
// `resource` whose stored form is not the one the configuration's first provider writes (an
// older key, plaintext, or encrypted when the first provider is identity), so that afterwards
// no object needs any other key. Each object is decrypted and written back with
// compare-and-swap on its modRevision; a conflict (a concurrent write) re-reads it and tries
// again, an object deleted meanwhile is skipped. Objects already in the current form are not
// written. Returns how many were rewritten.
//
// Errors: kInvalid when the configuration does not cover `resource`; the inner store's error
// when it fails (objects rewritten until then stay rewritten; running again continues); and,
// after rewriting everything else, kInternal naming the objects (up to 10) that cannot be
// decrypted: they still use a key that must not be removed yet.
Result<size_t> rewriteAll(EncryptingStore& store, const std::string& resource);

}  // namespace ep::encryption
