#include "cloudcore/encryption/encrypting_store.h"

#include <spdlog/spdlog.h>

#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"

namespace ep::encryption {
namespace {

// "secrets default/db" (the object, as errors and logs name it; never its value).
std::string describe(const std::string& resource, const std::string& ns, const std::string& name) {
  return resource + " " + (ns.empty() ? name : ns + "/" + name);
}

Result<std::string> decryptValue(const EncryptionConfig& config, const std::string& resource,
                                 const std::string& ns, const std::string& name,
                                 std::string_view stored) {
  auto plain = config.fromStorage(resource, stored, storageContext(resource, ns, name));
  if (!plain) {
    return internalError(describe(resource, ns, name) +
                         ": cannot decrypt: " + plain.status().message());
  }
  return plain;
}

Result<std::string> encryptValue(const EncryptionConfig& config, const std::string& resource,
                                 const std::string& ns, const std::string& name,
                                 std::string_view plaintext) {
  auto stored = config.toStorage(resource, plaintext, storageContext(resource, ns, name));
  if (!stored) {
    return internalError(describe(resource, ns, name) +
                         ": cannot encrypt: " + stored.status().message());
  }
  return stored;
}

const char* eventName(store::EventType type) {
  switch (type) {
    case store::EventType::kAdded:
      return "ADDED";
    case store::EventType::kModified:
      return "MODIFIED";
    case store::EventType::kDeleted:
      return "DELETED";
  }
  return "?";
}

// Decrypts one event in place. False when its value cannot be decrypted (logged): the caller
// leaves the event out.
bool decryptEvent(const EncryptionConfig& config, store::Event& e) {
  store::Object& o = e.object;
  if (!config.covers(o.resource)) return true;
  auto value = decryptValue(config, o.resource, o.namespace_, o.name, o.value);
  if (!value) {
    spdlog::warn("encryption: watch leaves out the {} event at revision {}: {}", eventName(e.type),
                 o.modRevision, value.status().message());
    return false;
  }
  o.value = std::move(*value);
  if (!e.prevValue.empty()) {
    auto prev = decryptValue(config, o.resource, o.namespace_, o.name, e.prevValue);
    if (prev) {
      e.prevValue = std::move(*prev);
    } else {
      spdlog::warn("encryption: watch event at revision {}: previous value left empty: {}",
                   o.modRevision, prev.status().message());
      e.prevValue.clear();
    }
  }
  return true;
}

class DecryptingWatch final : public store::Watch {
 public:
  DecryptingWatch(std::unique_ptr<store::Watch> inner,
                  std::shared_ptr<const EncryptionConfig> config)
      : inner_(std::move(inner)), config_(std::move(config)) {}

  std::vector<store::Event> poll(size_t max) override {
    std::vector<store::Event> out;
    // Events left out are replaced by polling again, so an empty answer still means "nothing
    // available now" and the caller waits for the next notify.
    while (out.size() < max) {
      auto events = inner_->poll(max - out.size());
      if (events.empty()) break;
      for (auto& e : events) {
        if (decryptEvent(*config_, e)) out.push_back(std::move(e));
      }
    }
    return out;
  }
  void setNotify(std::function<void()> notify) override { inner_->setNotify(std::move(notify)); }
  bool done() const override { return inner_->done(); }
  Status error() const override { return inner_->error(); }
  void stop() override { inner_->stop(); }
  // What poll() left out (undecryptable) counts as handed out: it is never delivered.
  int64_t progressRevision() const override { return inner_->progressRevision(); }

 private:
  const std::unique_ptr<store::Watch> inner_;
  const std::shared_ptr<const EncryptionConfig> config_;
};

}  // namespace

EncryptingStore::EncryptingStore(store::Store& inner, EncryptionConfig config)
    : inner_(inner), config_(std::make_shared<const EncryptionConfig>(std::move(config))) {}

Status EncryptingStore::start() {
  return inner_.start();
}

void EncryptingStore::stop() {
  inner_.stop();
}

Result<store::Object> EncryptingStore::get(const std::string& resource, const std::string& ns,
                                           const std::string& name) {
  auto r = inner_.get(resource, ns, name);
  if (!r || !config_->covers(resource)) return r;
  auto plain = decryptValue(*config_, resource, ns, name, r->value);
  if (!plain) return plain.status();
  r->value = std::move(*plain);
  return r;
}

Result<store::ListResult> EncryptingStore::list(const store::ListOptions& options) {
  if (!config_->covers(options.resource)) return inner_.list(options);
  // The predicate decrypts each row once; the plaintexts of the rows it accepts are kept here
  // (for this call only) and put into the result afterwards.
  // Undecryptable rows are damaged ones to the caller: they fail the list, or with
  // skipDamaged are left out and named (never silently missing: a reader such as cloudhub's
  // dispatcher would take them for deleted).
  Mutex mu;  // locals: the annotations cannot name it, so "guarded by" stays a comment
  std::unordered_map<std::string, std::string> accepted;  // guarded by mu; "NS\0NAME" -> value
  std::vector<store::Key> undecryptable;                  // guarded by mu
  Status firstError;                                      // guarded by mu
  auto keyOf = [](const store::Object& o) { return o.namespace_ + '\0' + o.name; };
  const store::Predicate& user = options.predicate;
  store::ListOptions opts = options;
  opts.predicate = [&](const store::Object& raw) {
    auto plain = decryptValue(*config_, raw.resource, raw.namespace_, raw.name, raw.value);
    if (!plain) {
      spdlog::warn("encryption: list leaves out {}", plain.status().message());
      MutexLock lock(mu);
      undecryptable.push_back({raw.resource, raw.namespace_, raw.name});
      if (firstError.isOk()) firstError = plain.status();
      return false;
    }
    store::Object view{raw.resource,      raw.namespace_,     raw.name,
                       std::move(*plain), raw.createRevision, raw.modRevision};
    if (user && !user(view)) return false;
    MutexLock lock(mu);
    accepted[keyOf(raw)] = std::move(view.value);
    return true;
  };
  auto r = inner_.list(opts);
  if (!r) return r;
  // The inner store's predicate calls are over: the rest runs on this thread alone.
  auto& items = r->items;
  size_t kept = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    store::Object& o = items[i];
    if (auto it = accepted.find(keyOf(o)); it != accepted.end()) {
      o.value = std::move(it->second);
    } else {
      // Only if the inner store did not run the predicate on this row.
      auto plain = decryptValue(*config_, o.resource, o.namespace_, o.name, o.value);
      if (!plain) {
        spdlog::warn("encryption: list leaves out {}", plain.status().message());
        undecryptable.push_back({o.resource, o.namespace_, o.name});
        if (firstError.isOk()) firstError = plain.status();
        continue;
      }
      o.value = std::move(*plain);
      if (user && !user(o)) continue;
    }
    if (kept != i) items[kept] = std::move(o);
    ++kept;
  }
  items.erase(items.begin() + static_cast<std::ptrdiff_t>(kept), items.end());
  if (!undecryptable.empty()) {
    if (!options.skipDamaged) return firstError;
    r->damaged.insert(r->damaged.end(), undecryptable.begin(), undecryptable.end());
  }
  return r;
}

Result<store::Object> EncryptingStore::create(const std::string& resource, const std::string& ns,
                                              const std::string& name, std::string value) {
  if (!config_->covers(resource)) return inner_.create(resource, ns, name, std::move(value));
  auto stored = encryptValue(*config_, resource, ns, name, value);
  if (!stored) return stored.status();
  auto r = inner_.create(resource, ns, name, std::move(*stored));
  if (!r) return r;
  r->value = std::move(value);
  return r;
}

Result<store::Object> EncryptingStore::update(const std::string& resource, const std::string& ns,
                                              const std::string& name, std::string value,
                                              int64_t expectedRevision) {
  if (!config_->covers(resource)) {
    return inner_.update(resource, ns, name, std::move(value), expectedRevision);
  }
  auto stored = encryptValue(*config_, resource, ns, name, value);
  if (!stored) return stored.status();
  auto r = inner_.update(resource, ns, name, std::move(*stored), expectedRevision);
  if (!r) return r;
  r->value = std::move(value);
  return r;
}

Result<store::Object> EncryptingStore::remove(const std::string& resource, const std::string& ns,
                                              const std::string& name, int64_t expectedRevision) {
  auto r = inner_.remove(resource, ns, name, expectedRevision);
  if (!r || !config_->covers(resource)) return r;
  auto plain = decryptValue(*config_, resource, ns, name, r->value);
  if (plain) {
    r->value = std::move(*plain);
  } else {
    spdlog::warn("encryption: deleted, last value not returned: {}", plain.status().message());
    r->value.clear();
  }
  return r;
}

Result<store::Object> EncryptingStore::removeUnsafe(const std::string& resource,
                                                    const std::string& ns, const std::string& name,
                                                    std::string tombstone,
                                                    int64_t expectedRevision) {
  if (!config_->covers(resource)) {
    return inner_.removeUnsafe(resource, ns, name, std::move(tombstone), expectedRevision);
  }
  if (expectedRevision == 0) {
    // What cannot be read here may be an intact row that does not decrypt: then its revision
    // is what the inner store must find. A value that decrypts is readable: remove() it.
    auto row = inner_.get(resource, ns, name);
    if (row.isOk()) {
      if (decryptValue(*config_, resource, ns, name, row->value).isOk()) {
        return Status(Code::kConflict, resource + " \"" + (ns.empty() ? name : ns + "/" + name) +
                                           "\" can be read; delete it normally");
      }
      expectedRevision = row->modRevision;
    } else if (!store::isDamaged(row.status())) {
      return row.status();
    }
  }
  // The tombstone is stored like any value, so watches decrypt it like any other event.
  auto stored = encryptValue(*config_, resource, ns, name, tombstone);
  if (!stored) return stored.status();
  auto r = inner_.removeUnsafe(resource, ns, name, std::move(*stored), expectedRevision);
  if (!r) return r;
  r->value = std::move(tombstone);
  return r;
}

Result<std::unique_ptr<store::Watch>> EncryptingStore::watch(const store::WatchOptions& options) {
  auto w = inner_.watch(options);
  if (!w || (!options.resource.empty() && !config_->covers(options.resource))) return w;
  return std::unique_ptr<store::Watch>(std::make_unique<DecryptingWatch>(std::move(*w), config_));
}

int64_t EncryptingStore::currentRevision() {
  return inner_.currentRevision();
}

int64_t EncryptingStore::compactedRevision() {
  return inner_.compactedRevision();
}

Status EncryptingStore::compact(int64_t revision) {
  return inner_.compact(revision);
}

Result<size_t> rewriteAll(EncryptingStore& store, const std::string& resource) {
  constexpr int64_t kPageSize = 500;
  constexpr int kMaxAttempts = 20;
  constexpr size_t kMaxNamed = 10;
  const EncryptionConfig& config = *store.config_;
  if (!config.covers(resource)) {
    return invalidError("rewrite: the encryption configuration does not cover " + resource);
  }
  size_t rewritten = 0;
  std::vector<std::string> undecryptable;
  store::ListOptions page;
  page.resource = resource;
  page.limit = kPageSize;
  do {
    // The raw rows, so objects that cannot be decrypted are seen (and reported) too.
    auto rows = store.inner_.list(page);
    if (!rows) return rows.status();
    for (store::Object& raw : rows->items) {
      for (int attempt = 0;; ++attempt) {
        if (config.isCurrent(resource, raw.value)) break;
        auto plain = decryptValue(config, resource, raw.namespace_, raw.name, raw.value);
        if (!plain) {
          undecryptable.push_back(plain.status().message());
          break;
        }
        auto u =
            store.update(resource, raw.namespace_, raw.name, std::move(*plain), raw.modRevision);
        if (u) {
          ++rewritten;
          break;
        }
        if (u.status().code() == Code::kNotFound) break;  // deleted meanwhile
        if (u.status().code() != Code::kConflict) return u.status();
        if (attempt + 1 == kMaxAttempts) {
          return Status(Code::kConflict,
                        "rewrite: " + describe(resource, raw.namespace_, raw.name) +
                            ": still changing after " + std::to_string(kMaxAttempts) + " attempts");
        }
        auto fresh = store.inner_.get(resource, raw.namespace_, raw.name);
        if (!fresh && fresh.status().code() == Code::kNotFound) break;
        if (!fresh) return fresh.status();
        raw = std::move(*fresh);
      }
    }
    page.continueToken = rows->continueToken;
  } while (!page.continueToken.empty());
  if (!undecryptable.empty()) {
    std::string msg = "rewrite: rewrote " + std::to_string(rewritten) + " of " + resource + "; " +
                      std::to_string(undecryptable.size()) +
                      " cannot be decrypted and were not rewritten (keep the keys they need): ";
    for (size_t i = 0; i < undecryptable.size() && i < kMaxNamed; ++i) {
      msg += (i ? "; " : "") + undecryptable[i];
    }
    if (undecryptable.size() > kMaxNamed) msg += "; ...";
    return internalError(msg);
  }
  spdlog::info("encryption: rewrote {} {}", rewritten, resource);
  return rewritten;
}

}  // namespace ep::encryption
