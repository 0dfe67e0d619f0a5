#pragma once

// Device data: time series of reported property values, kept in the cloud (docs/devices.md,
// "Device data"). Nodes send the samples of properties whose Device spec says reportToCloud
// through the tunnel's outbox (REPORT_KIND_DATA); cloudhub's ReportApplier appends them here;
// the API serves them at devices/NAME/data and `edgectl data` prints them.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"

struct sqlite3;

namespace ep::devicedata {

inline constexpr size_t kMaxValueBytes = 4096;   // one value, as the edge's twin allows
inline constexpr size_t kMaxQueryLimit = 10000;  // samples in one query answer
inline constexpr size_t kDefaultQueryLimit = 1000;

// The `device` of the series holding the messages Rule `rule` carried from the edge
// (docs/rules.md): a name no Device can have.
inline std::string ruleSeries(const std::string& rule) {
  return "rules/" + rule;
}
// The `device` (namespace "") of the series holding what node `node` uploaded on
// $hw/events/upload/# (docs/rules.md, "Uploads").
inline std::string nodeSeries(const std::string& node) {
  return "nodes/" + node;
}

// One reported value of one property.
struct Sample {
  std::string property;
  int64_t timestamp = 0;  // ms since the epoch, as the device or mapper stamped it
  std::string value;
  // append: the sample's position in its report (< 65,536), which with the report's sequence
  // identifies it when the report is delivered again. Unused in query results.
  uint32_t index = 0;
};

// Samples of one device.
struct DeviceSamples {
  std::string ns;
  std::string device;
  std::vector<Sample> samples;
};

struct Query {
  std::string ns;
  std::string device;
  std::string property;     // "" = every property
  int64_t sinceMillis = 0;  // samples with timestamp >= since (0 = no bound)
  size_t limit = kDefaultQueryLimit;
};

// The store's contract. Implementations are thread-safe.
class DeviceDataStore {
 public:
  virtual ~DeviceDataStore() = default;

  // Appends the samples durably (on disk before it returns ok), all or nothing. `origin`
  // identifies the delivery (the reporting node's report sequence) and Sample::index each
  // sample in it: appending the same origin and samples again stores nothing new, so a report
  // applied twice (a crash before its acknowledgement was persisted) leaves no duplicates.
  // At most 65,536 samples per call.
  // Errors: kInvalid (a sample breaks the limits above; nothing stored), kUnavailable (disk).
  [[nodiscard]] virtual Status append(uint64_t origin, const std::vector<DeviceSamples>& batch) = 0;

  // The newest `limit` samples of the query, returned oldest first (ties in arrival order).
  // Samples whose stored checksum does not match are skipped and logged, never returned.
  [[nodiscard]] virtual Result<std::vector<Sample>> query(const Query& q) = 0;
};

struct SqliteDeviceDataOptions {
  std::string path;  // the database file, e.g. DATA_DIR/devicedata.db (+ -wal, -shm)
  // Retention: samples older than maxAge (by their timestamp) and all but the newest
  // maxSamplesPerProperty of each device property are removed by a sweep every sweepInterval.
  std::chrono::milliseconds maxAge = std::chrono::hours(24);
  uint64_t maxSamplesPerProperty = 10000;
  std::chrono::milliseconds sweepInterval = std::chrono::minutes(1);
};

// DeviceDataStore on its own SQLite file (WAL, synchronous=FULL): table series (one row per
// device property) and samples (series, timestamp, origin, value, checksum). One connection
// guarded by mu_; one sweep thread.
//
// Lifecycle: start() opens (creating) the database and starts the sweep thread; stop() ends the
// thread and closes it. Calls before start() or after stop() answer kUnavailable.
class SqliteDeviceDataStore final : public DeviceDataStore {
 public:
  SqliteDeviceDataStore(SqliteDeviceDataOptions options, const Clock& clock);
  ~SqliteDeviceDataStore() override;
  SqliteDeviceDataStore(const SqliteDeviceDataStore&) = delete;
  SqliteDeviceDataStore& operator=(const SqliteDeviceDataStore&) = delete;

  [[nodiscard]] Status start();
  void stop();

  Status append(uint64_t origin, const std::vector<DeviceSamples>& batch) override;
  Result<std::vector<Sample>> query(const Query& q) override;

  // Applies the retention now; returns how many samples it removed (tests; the sweep thread
  // calls it too).
  [[nodiscard]] Result<uint64_t> sweepNow();
  // Samples skipped because their checksum did not match, since start.
  uint64_t corruptSamples() const;

 private:
  Result<int64_t> seriesLocked(const std::string& ns, const std::string& device,
                               const std::string& property, bool create) EP_REQUIRES(mu_);
  void sweepLoop();

  const SqliteDeviceDataOptions options_;
  const Clock& clock_;

  mutable Mutex mu_;
  sqlite3* db_ EP_GUARDED_BY(mu_) = nullptr;
  uint64_t corrupt_ EP_GUARDED_BY(mu_) = 0;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::condition_variable cv_;
  std::thread sweeper_;
};

// Checks one device's samples as a node sent them; "" when fine, else the field and why
// (e.g. "samples[3].value: longer than 4096 bytes").
std::string checkSamples(const DeviceSamples& d);

}  // namespace ep::devicedata
