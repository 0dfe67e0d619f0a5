#pragma once

// A SQLite VFS that can simulate a power loss, for durability tests (issue 14): a SIGKILL does
// not lose what the kernel's page cache holds, so a test that only kills the process passes
// even with synchronous=OFF. This one forgets what was never synced.
//
// It wraps the default VFS and, per file (database, WAL, rollback journal), keeps the bytes
// every write replaced since that file's last successful xSync. cutPower() puts every such
// file back to its state at its last sync (undoing the writes, truncating what was appended)
// and from then on refuses every write, truncate, sync and delete, as a machine without power
// would, so nothing the open connections do afterwards reaches the files. restore() turns the
// power back on; reopen the databases afterwards.
//
// Thread-safety: the methods and the VFS calls that read or change file contents (read, write,
// truncate, sync, delete) are serialized by one mutex, so a power cut falls between two of them
// (SQLite calls the VFS from each connection's thread); locks and shared memory pass straight
// through. One instance at a time per process; it is the default VFS while it exists, so code
// under test needs no change. Not modelled: directory entries (a created or deleted file stays
// so), and partial or reordered persistence of unsynced writes (all of them are lost).

#include <cstddef>
#include <memory>

namespace ep::testing {

class PowerLossVfs {
 public:
  PowerLossVfs();
  ~PowerLossVfs();
  PowerLossVfs(const PowerLossVfs&) = delete;
  PowerLossVfs& operator=(const PowerLossVfs&) = delete;

  // The power goes: unsynced writes are undone; later writes fail with SQLITE_IOERR.
  void cutPower();
  // The power is back; later writes work (and are tracked) again.
  void restore();
  // Successful xSync calls so far, and the files cutPower() put back.
  size_t syncs() const;
  size_t filesRolledBack() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace ep::testing
