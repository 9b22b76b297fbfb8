#include "common/time_format.h"

#include <ctime>

namespace rg {

namespace {

std::tm utcOf(int64_t unixMs) {
  std::time_t t = static_cast<std::time_t>(unixMs / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

}  // namespace

std::string isoTimeUtc(int64_t unixMs) {
  std::tm tm = utcOf(unixMs);
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

std::string dayUtc(int64_t unixMs) {
  std::tm tm = utcOf(unixMs);
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return std::string(buf, n);
}

}  // namespace rg
