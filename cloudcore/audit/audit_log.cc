#include "cloudcore/audit/audit_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/thread_annotations.h"

namespace ep::audit {

AuditLog::AuditLog(AuditLogOptions options) : options_(std::move(options)) {}

AuditLog::~AuditLog() {
  stop();
}

Status AuditLog::start() {
  std::error_code ec;
  auto parent = std::filesystem::path(options_.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return unavailableError("audit log: cannot open " + options_.path + ": " +
                            std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

void AuditLog::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

void AuditLog::record(std::string line) {
  {
    MutexLock l(mu_);
    if (stopping_ || queue_.size() >= options_.maxQueued) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(line));
  }
  cv_.notify_one();
}

uint64_t AuditLog::dropped() const {
  MutexLock l(mu_);
  return dropped_;
}

uint64_t AuditLog::written() const {
  MutexLock l(mu_);
  return written_;
}

void AuditLog::flush() {
  MutexLock l(mu_);
  while (!((queue_.empty() && !writing_) || !thread_.joinable())) l.wait(drained_);
}

void AuditLog::run() {
  MutexLock l(mu_);
  for (;;) {
    while (!stopping_ && queue_.empty()) l.wait(cv_);
    if (queue_.empty() && stopping_) break;
    std::deque<std::string> batch;
    batch.swap(queue_);
    writing_ = true;
    l.unlock();
    for (const auto& line : batch) writeLine(line);
    l.lock();
    written_ += batch.size();
    writing_ = false;
    drained_.notify_all();
  }
  drained_.notify_all();
}

void AuditLog::writeLine(const std::string& line) {
  if (fd_ < 0) return;
  if (size_ > 0 && size_ + line.size() + 1 > options_.maxBytes) rotate();
  std::string out = line + "\n";
  const char* p = out.data();
  size_t left = out.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      static std::atomic<uint64_t> failures{0};
      if (failures++ % 1000 == 0) {
        spdlog::error("audit log: writing {}: {}", options_.path, std::strerror(errno));
      }
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  size_ += out.size();
}

void AuditLog::rotate() {
  ::fsync(fd_);
  ::close(fd_);
  fd_ = -1;
  const std::string& base = options_.path;
  if (options_.maxBackups <= 0) {
    ::unlink(base.c_str());
  } else {
    ::unlink((base + "." + std::to_string(options_.maxBackups)).c_str());
    for (int i = options_.maxBackups - 1; i >= 1; --i) {
      ::rename((base + "." + std::to_string(i)).c_str(),
               (base + "." + std::to_string(i + 1)).c_str());
    }
    ::rename(base.c_str(), (base + ".1").c_str());
  }
  fd_ = ::open(base.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  size_ = 0;
  if (fd_ < 0) spdlog::error("audit log: reopening {}: {}", base, std::strerror(errno));
}

}  // namespace ep::audit
