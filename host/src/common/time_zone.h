#pragma once
// Time zone for the local-time boundaries of usage aggregates and cost limits (hour / day / week /
// month buckets). Reads TZif files itself because GCC 12 has no <chrono> time zone support and the
// libc functions (localtime_r after setenv("TZ")) change process-wide state.
//
// Immutable after load(): copies share the parsed data, and every method is safe to call from any
// thread.

#include "common/status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rg {

class TimeZone {
 public:
  // UTC.
  TimeZone();
  static TimeZone utc();

  // "UTC", "Z", fixed offsets east of UTC ("+08:00", "-05:30", "+8", "UTC+8", "UTC-03:30", within
  // +-14:00), or an IANA name ("Asia/Shanghai") read from the TZif file under zoneinfoDir. Names
  // are confined to zoneinfoDir (no "..", no absolute paths, symlinks must resolve inside it).
  // Instants after the file's last transition use its POSIX TZ footer rule. Errors
  // (kInvalidArgument) name the zone and the reason.
  static StatusOr<TimeZone> load(const std::string& name,
                                 const std::string& zoneinfoDir = "/usr/share/zoneinfo");

  const std::string& name() const;

  // local = utc + offset.
  int64_t offsetMs(int64_t unixMs) const;

  // Local labels. In the repeated hour of a fall-back change both passes share one hour label.
  std::string hourBucket(int64_t unixMs) const;   // "YYYY-MM-DDTHH"
  std::string dayBucket(int64_t unixMs) const;    // "YYYY-MM-DD"
  std::string monthBucket(int64_t unixMs) const;  // "YYYY-MM"

  // The first instant (unix ms) of the local day containing unixMs (on a day whose midnight falls
  // in a DST gap, the end of the gap).
  int64_t dayStartMs(int64_t unixMs) const;
  // The first instant of the week containing unixMs whose weeks reset on `weekday` (0 = Sunday,
  // taken modulo 7) at `hour`:00 local (clamped to 0..23), and that week's label: its local start
  // date "YYYY-MM-DD".
  int64_t weekStartMs(int64_t unixMs, int weekday, int hour) const;
  std::string weekBucket(int64_t unixMs, int weekday, int hour) const;

  // The labels of the hour ('h'), day ('d') or month ('m') buckets from fromMs to toMs inclusive,
  // in order, without duplicates. kInvalidArgument for an unknown kind, fromMs > toMs, or more than
  // maxBuckets labels.
  StatusOr<std::vector<std::string>> buckets(char kind, int64_t fromMs, int64_t toMs,
                                             size_t maxBuckets = 10000) const;

  struct Data;

 private:
  explicit TimeZone(std::shared_ptr<const Data> data) : data_(std::move(data)) {}

  std::shared_ptr<const Data> data_;
};

}  // namespace rg
