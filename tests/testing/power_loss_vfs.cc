#include "tests/testing/power_loss_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ep::testing {

namespace {

// What a file looked like at its last sync: its size then, and the old contents of every
// region written since (in write order).
struct UndoLog {
  int64_t syncedSize = 0;
  std::vector<std::pair<int64_t, std::string>> writes;
};

}  // namespace

struct PowerLossVfs::State {
  sqlite3_vfs vfs{};  // first: SQLite hands it back to the callbacks
  sqlite3_vfs* real = nullptr;
  std::mutex mu;
  bool dead = false;                    // guarded by mu
  std::map<std::string, UndoLog> logs;  // guarded by mu; by path
  size_t syncs = 0;                     // guarded by mu
  size_t rolledBack = 0;                // guarded by mu
};

namespace {

using State = PowerLossVfs::State;

struct File {
  sqlite3_file base;  // first: SQLite sees this
  State* state;
  sqlite3_file* real;  // the wrapped file, allocated right after this struct
  std::string* path;   // null for files not tracked (temporary, shm)
};

State* stateOf(sqlite3_vfs* vfs) {
  return static_cast<State*>(vfs->pAppData);
}

int64_t realSize(sqlite3_file* f) {
  sqlite3_int64 size = 0;
  if (f->pMethods->xFileSize(f, &size) != SQLITE_OK) return 0;
  return size;
}

// The undo log of `p`'s file; a file without one (first change since it was opened after a
// restore()) was synced as it is now, `size` bytes.
UndoLog& logFor(File* p, int64_t size) {
  auto [it, inserted] = p->state->logs.try_emplace(*p->path);
  if (inserted) it->second.syncedSize = size;
  return it->second;
}

int xClose(sqlite3_file* f) {
  File* p = reinterpret_cast<File*>(f);
  int rc = p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
  delete p->path;
  p->path = nullptr;
  return rc;
}

int xRead(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  File* p = reinterpret_cast<File*>(f);
  std::lock_guard lock(p->state->mu);
  return p->real->pMethods->xRead(p->real, buf, n, off);
}

int xWrite(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  File* p = reinterpret_cast<File*>(f);
  std::lock_guard lock(p->state->mu);
  if (p->state->dead) return SQLITE_IOERR_WRITE;
  if (p->path != nullptr) {
    const int64_t size = realSize(p->real);
    const int64_t keep = std::min<int64_t>(n, size - off);
    std::string old;
    if (keep > 0) {
      old.resize(static_cast<size_t>(keep));
      if (p->real->pMethods->xRead(p->real, old.data(), static_cast<int>(keep), off) != SQLITE_OK) {
        return SQLITE_IOERR_WRITE;
      }
    }
    logFor(p, size).writes.emplace_back(off, std::move(old));
  }
  return p->real->pMethods->xWrite(p->real, buf, n, off);
}

int xTruncate(sqlite3_file* f, sqlite3_int64 size) {
  File* p = reinterpret_cast<File*>(f);
  std::lock_guard lock(p->state->mu);
  if (p->state->dead) return SQLITE_IOERR_TRUNCATE;
  if (p->path != nullptr) {
    const int64_t current = realSize(p->real);
    if (size < current) {
      std::string old(static_cast<size_t>(current - size), '\0');
      if (p->real->pMethods->xRead(p->real, old.data(), static_cast<int>(old.size()), size) !=
          SQLITE_OK) {
        return SQLITE_IOERR_TRUNCATE;
      }
      logFor(p, current).writes.emplace_back(size, std::move(old));
    }
  }
  return p->real->pMethods->xTruncate(p->real, size);
}

int xSync(sqlite3_file* f, int flags) {
  File* p = reinterpret_cast<File*>(f);
  std::lock_guard lock(p->state->mu);
  if (p->state->dead) return SQLITE_IOERR_FSYNC;
  int rc = p->real->pMethods->xSync(p->real, flags);
  if (rc == SQLITE_OK) {
    ++p->state->syncs;
    if (p->path != nullptr) {
      UndoLog& log = p->state->logs[*p->path];
      log.writes.clear();
      log.syncedSize = realSize(p->real);
    }
  }
  return rc;
}

int xFileSize(sqlite3_file* f, sqlite3_int64* size) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xFileSize(p->real, size);
}
int xLock(sqlite3_file* f, int l) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xLock(p->real, l);
}
int xUnlock(sqlite3_file* f, int l) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xUnlock(p->real, l);
}
int xCheckReservedLock(sqlite3_file* f, int* out) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xCheckReservedLock(p->real, out);
}
int xFileControl(sqlite3_file* f, int op, void* arg) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xFileControl(p->real, op, arg);
}
int xSectorSize(sqlite3_file* f) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xSectorSize(p->real);
}
int xDeviceCharacteristics(sqlite3_file* f) {
  File* p = reinterpret_cast<File*>(f);
  // Not the real device's promises (e.g. SAFE_APPEND): this device loses unsynced data.
  return p->real->pMethods->xDeviceCharacteristics(p->real) &
         ~(SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL | SQLITE_IOCAP_POWERSAFE_OVERWRITE);
}
int xShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xShmMap(p->real, page, size, extend, out);
}
int xShmLock(sqlite3_file* f, int offset, int n, int flags) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}
void xShmBarrier(sqlite3_file* f) {
  File* p = reinterpret_cast<File*>(f);
  p->real->pMethods->xShmBarrier(p->real);
}
int xShmUnmap(sqlite3_file* f, int deleteFlag) {
  File* p = reinterpret_cast<File*>(f);
  return p->real->pMethods->xShmUnmap(p->real, deleteFlag);
}
// No memory-mapped reads: every read goes through xRead and sees the rolled-back bytes.
int xFetch(sqlite3_file*, sqlite3_int64, int, void** out) {
  *out = nullptr;
  return SQLITE_OK;
}
int xUnfetch(sqlite3_file*, sqlite3_int64, void*) {
  return SQLITE_OK;
}

const sqlite3_io_methods kMethods = {
    3,
    xClose,
    xRead,
    xWrite,
    xTruncate,
    xSync,
    xFileSize,
    xLock,
    xUnlock,
    xCheckReservedLock,
    xFileControl,
    xSectorSize,
    xDeviceCharacteristics,
    xShmMap,
    xShmLock,
    xShmBarrier,
    xShmUnmap,
    xFetch,
    xUnfetch,
};

int vfsOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* out, int flags, int* outFlags) {
  State* st = stateOf(vfs);
  File* p = reinterpret_cast<File*>(out);
  p->state = st;
  p->real = reinterpret_cast<sqlite3_file*>(p + 1);
  p->path = nullptr;
  std::memset(p->real, 0, static_cast<size_t>(st->real->szOsFile));
  int rc = st->real->xOpen(st->real, name, p->real, flags, outFlags);
  if (rc != SQLITE_OK) {
    p->base.pMethods = nullptr;
    return rc;
  }
  p->base.pMethods = &kMethods;
  const bool tracked =
      name != nullptr &&
      (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)) != 0;
  if (tracked) {
    p->path = new std::string(name);
    std::lock_guard lock(st->mu);
    if (!st->logs.count(*p->path)) st->logs[*p->path].syncedSize = realSize(p->real);
  }
  return SQLITE_OK;
}

int vfsDelete(sqlite3_vfs* vfs, const char* name, int syncDir) {
  State* st = stateOf(vfs);
  std::lock_guard lock(st->mu);
  if (st->dead) return SQLITE_IOERR_DELETE;
  st->logs.erase(name);
  return st->real->xDelete(st->real, name, syncDir);
}
int vfsAccess(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  State* st = stateOf(vfs);
  return st->real->xAccess(st->real, name, flags, out);
}
int vfsFullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  State* st = stateOf(vfs);
  return st->real->xFullPathname(st->real, name, n, out);
}
int vfsRandomness(sqlite3_vfs* vfs, int n, char* out) {
  State* st = stateOf(vfs);
  return st->real->xRandomness(st->real, n, out);
}
int vfsSleep(sqlite3_vfs* vfs, int us) {
  State* st = stateOf(vfs);
  return st->real->xSleep(st->real, us);
}
int vfsCurrentTime(sqlite3_vfs* vfs, double* out) {
  State* st = stateOf(vfs);
  return st->real->xCurrentTime(st->real, out);
}
int vfsGetLastError(sqlite3_vfs* vfs, int n, char* out) {
  State* st = stateOf(vfs);
  return st->real->xGetLastError(st->real, n, out);
}
int vfsCurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  State* st = stateOf(vfs);
  return st->real->xCurrentTimeInt64(st->real, out);
}

}  // namespace

PowerLossVfs::PowerLossVfs() : state_(std::make_unique<State>()) {
  State* st = state_.get();
  st->real = sqlite3_vfs_find(nullptr);
  if (st->real == nullptr) std::abort();  // SQLite without a default VFS: nothing to wrap
  sqlite3_vfs& v = st->vfs;
  v.iVersion = 2;
  v.szOsFile = static_cast<int>(sizeof(File)) + st->real->szOsFile;
  v.mxPathname = st->real->mxPathname;
  v.zName = "ep-powerloss";
  v.pAppData = st;
  v.xOpen = vfsOpen;
  v.xDelete = vfsDelete;
  v.xAccess = vfsAccess;
  v.xFullPathname = vfsFullPathname;
  v.xDlOpen = nullptr;
  v.xDlError = nullptr;
  v.xDlSym = nullptr;
  v.xDlClose = nullptr;
  v.xRandomness = vfsRandomness;
  v.xSleep = vfsSleep;
  v.xCurrentTime = vfsCurrentTime;
  v.xGetLastError = vfsGetLastError;
  v.xCurrentTimeInt64 = vfsCurrentTimeInt64;
  sqlite3_vfs_register(&v, /*makeDflt=*/1);
}

PowerLossVfs::~PowerLossVfs() {
  sqlite3_vfs_unregister(&state_->vfs);
  sqlite3_vfs_register(state_->real, /*makeDflt=*/1);
}

void PowerLossVfs::cutPower() {
  std::lock_guard lock(state_->mu);
  state_->dead = true;
  for (auto& [path, log] : state_->logs) {
    if (log.writes.empty()) continue;
    // Directly on the file: the VFS refuses writes from now on.
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;  // deleted meanwhile: nothing to put back
    for (auto it = log.writes.rbegin(); it != log.writes.rend(); ++it) {
      if (!it->second.empty() && ::pwrite(fd, it->second.data(), it->second.size(), it->first) !=
                                     static_cast<ssize_t>(it->second.size())) {
        std::abort();  // the test's own files cannot be restored: no result would mean anything
      }
    }
    if (::ftruncate(fd, log.syncedSize) != 0) std::abort();
    ::close(fd);
    log.writes.clear();
    ++state_->rolledBack;
  }
}

void PowerLossVfs::restore() {
  std::lock_guard lock(state_->mu);
  state_->dead = false;
  state_->logs.clear();
}

size_t PowerLossVfs::syncs() const {
  std::lock_guard lock(state_->mu);
  return state_->syncs;
}

size_t PowerLossVfs::filesRolledBack() const {
  std::lock_guard lock(state_->mu);
  return state_->rolledBack;
}

}  // namespace ep::testing
