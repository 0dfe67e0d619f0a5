#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::audit {

struct AuditLogOptions {
  std::string path;                  // the live file; rotated copies are path.1 ... path.N
  uint64_t maxBytes = 100ull << 20;  // rotate when the live file would grow past this
  int maxBackups = 10;               // rotated files kept
  size_t maxQueued = 10000;          // events waiting for the writer; more are dropped, counted
};

// An append-only log of JSON lines (audit.k8s.io/v1 Event objects, one per line), written by
// its own thread so that request handlers never wait for the disk. Size-rotated: when a line
// would take the live file past maxBytes, path.(N-1) becomes path.N, ..., path becomes path.1
// and a new live file starts. The file is created 0600.
//
// Threading: record() is thread-safe and never blocks on I/O (a full queue drops the event and
// counts it). start()/stop() from one owner thread; stop() writes what is queued, then joins.
class AuditLog {
 public:
  explicit AuditLog(AuditLogOptions options);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Opens (creates) the file; an error names the path.
  Status start();
  void stop();

  // Queues one line (a JSON object without the newline).
  void record(std::string line);

  uint64_t dropped() const;
  uint64_t written() const;
  // Blocks until everything queued so far is written (tests, shutdown).
  void flush();

 private:
  void run();
  void writeLine(const std::string& line);
  void rotate();

  const AuditLogOptions options_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::condition_variable drained_;
  std::deque<std::string> queue_ EP_GUARDED_BY(mu_);
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  bool writing_ EP_GUARDED_BY(mu_) = false;
  uint64_t dropped_ EP_GUARDED_BY(mu_) = 0;
  uint64_t written_ EP_GUARDED_BY(mu_) = 0;
  // Writer thread only:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::thread thread_;
};

}  // namespace ep::audit
