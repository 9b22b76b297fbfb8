#include "common/time_zone.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

namespace rg {

namespace {

constexpr int64_t kSecPerDay = 86400;
constexpr int64_t kSecPerHour = 3600;
// Real offsets lie within -12:00..+14:00; TZif offsets may be up to 25 hours (RFC 8536), beyond
// which a file is treated as corrupt.
constexpr int64_t kMaxFixedOffsetSec = 14 * kSecPerHour;
constexpr int64_t kMaxFileOffsetSec = 26 * kSecPerHour;
constexpr size_t kMaxZoneFileBytes = 1 << 20;
constexpr size_t kMaxNameLength = 255;
constexpr int64_t kInfinity = std::numeric_limits<int64_t>::max();

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, day 0 = 1970-01-01).
int64_t daysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = floorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month;  // 1..12
  int day;    // 1..31
};

Civil civilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = floorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return Civil{yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

bool isLeap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int daysInMonth(int64_t y, int m) {
  static const int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && isLeap(y)) ? 29 : kDays[m - 1];
}

// 0 = Sunday; day 0 (1970-01-01) was a Thursday.
int weekdayOfDays(int64_t days) {
  return static_cast<int>(((days % 7) + 11) % 7);
}

std::string formatDate(int64_t days) {
  const Civil c = civilFromDays(days);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02d", static_cast<long long>(c.year), c.month,
                c.day);
  return buf;
}

// --- POSIX TZ strings (the TZif footer), e.g. "EST5EDT,M3.2.0,M11.1.0" or "<+1030>-10:30,...".

struct RuleDate {
  enum class Kind { kJulian1, kJulian0, kMonthWeek };
  Kind kind = Kind::kMonthWeek;
  int n = 0;  // Jn: 1..365 (never Feb 29); n: 0..365
  int month = 0, week = 0, weekday = 0;
  int64_t timeSec = 2 * kSecPerHour;  // local wall time of the change, may be negative or > 24h
};

struct PosixRule {
  int64_t stdOffset = 0;  // east of UTC, seconds
  bool hasDst = false;
  int64_t dstOffset = 0;
  RuleDate start, end;
};

class PosixParser {
 public:
  explicit PosixParser(const std::string& s) : s_(s) {}

  std::optional<PosixRule> parse() {
    PosixRule r;
    if (!name()) {
      return std::nullopt;
    }
    auto off = hms(true, 24);
    if (!off) {
      return std::nullopt;
    }
    r.stdOffset = -*off;  // POSIX offsets count west of UTC
    if (atEnd()) {
      return r;
    }
    if (!name()) {
      return std::nullopt;
    }
    r.hasDst = true;
    r.dstOffset = r.stdOffset + kSecPerHour;
    if (!atEnd() && s_[i_] != ',') {
      auto dst = hms(true, 24);
      if (!dst) {
        return std::nullopt;
      }
      r.dstOffset = -*dst;
    }
    if (atEnd()) {
      // No rule: POSIX leaves it to the implementation; tzcode uses the US rules.
      r.start = RuleDate{RuleDate::Kind::kMonthWeek, 0, 3, 2, 0, 2 * kSecPerHour};
      r.end = RuleDate{RuleDate::Kind::kMonthWeek, 0, 11, 1, 0, 2 * kSecPerHour};
      return r;
    }
    if (!eat(',') || !date(r.start) || !eat(',') || !date(r.end) || !atEnd()) {
      return std::nullopt;
    }
    return r;
  }

 private:
  bool atEnd() const { return i_ >= s_.size(); }
  bool eat(char c) {
    if (!atEnd() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool name() {
    if (eat('<')) {
      const size_t close = s_.find('>', i_);
      if (close == std::string::npos || close == i_) {
        return false;
      }
      for (size_t k = i_; k < close; ++k) {
        const unsigned char c = static_cast<unsigned char>(s_[k]);
        if (!std::isalnum(c) && c != '+' && c != '-') {
          return false;
        }
      }
      i_ = close + 1;
      return true;
    }
    const size_t begin = i_;
    while (!atEnd() && std::isalpha(static_cast<unsigned char>(s_[i_]))) {
      ++i_;
    }
    return i_ - begin >= 3;
  }

  std::optional<int64_t> number(int maxDigits) {
    int64_t v = 0;
    int digits = 0;
    while (!atEnd() && std::isdigit(static_cast<unsigned char>(s_[i_])) && digits < maxDigits) {
      v = v * 10 + (s_[i_] - '0');
      ++i_;
      ++digits;
    }
    if (digits == 0) {
      return std::nullopt;
    }
    return v;
  }

  // [+-]hh[:mm[:ss]] in seconds.
  std::optional<int64_t> hms(bool allowSign, int64_t maxHours) {
    int64_t sign = 1;
    if (allowSign) {
      if (eat('-')) {
        sign = -1;
      } else {
        eat('+');
      }
    }
    auto h = number(3);
    if (!h || *h > maxHours) {
      return std::nullopt;
    }
    int64_t total = *h * kSecPerHour;
    for (int64_t unit : {int64_t{60}, int64_t{1}}) {
      if (!eat(':')) {
        break;
      }
      auto v = number(2);
      if (!v || *v > 59) {
        return std::nullopt;
      }
      total += *v * unit;
    }
    return sign * total;
  }

  bool date(RuleDate& d) {
    if (eat('M')) {
      // Plain values rather than optionals: GCC's -O2 flow analysis flags optionals built on
      // both arms of a conditional as maybe-uninitialized.
      auto m = number(2);
      if (!m || !eat('.')) {
        return false;
      }
      auto w = number(1);
      if (!w || !eat('.')) {
        return false;
      }
      auto wd = number(1);
      if (!wd) {
        return false;
      }
      int64_t month = *m;
      int64_t week = *w;
      int64_t weekday = *wd;
      if (month < 1 || month > 12 || week < 1 || week > 5 || weekday > 6) {
        return false;
      }
      d.kind = RuleDate::Kind::kMonthWeek;
      d.month = static_cast<int>(month);
      d.week = static_cast<int>(week);
      d.weekday = static_cast<int>(weekday);
    } else if (eat('J')) {
      auto n = number(3);
      if (!n || *n < 1 || *n > 365) {
        return false;
      }
      d.kind = RuleDate::Kind::kJulian1;
      d.n = static_cast<int>(*n);
    } else {
      auto n = number(3);
      if (!n || *n > 365) {
        return false;
      }
      d.kind = RuleDate::Kind::kJulian0;
      d.n = static_cast<int>(*n);
    }
    d.timeSec = 2 * kSecPerHour;
    if (eat('/')) {
      auto t = hms(true, 167);  // RFC 8536 extension: -167..167 hours
      if (!t) {
        return false;
      }
      d.timeSec = *t;
    }
    return true;
  }

  const std::string& s_;
  size_t i_ = 0;
};

int64_t ruleDay(int64_t year, const RuleDate& d) {
  const int64_t jan1 = daysFromCivil(year, 1, 1);
  switch (d.kind) {
    case RuleDate::Kind::kJulian1:
      return jan1 + d.n - 1 + ((isLeap(year) && d.n >= 60) ? 1 : 0);
    case RuleDate::Kind::kJulian0:
      return jan1 + d.n;
    case RuleDate::Kind::kMonthWeek:
      break;
  }
  const int64_t first = daysFromCivil(year, d.month, 1);
  int64_t day = (d.weekday - weekdayOfDays(first) + 7) % 7 + 7 * (d.week - 1);
  while (day >= daysInMonth(year, d.month)) {
    day -= 7;  // week 5 means "the last"
  }
  return first + day;
}

// The rule's changes in `year` as (utc second, dst in effect after). Each change happens at a local
// wall time of the offset in effect before it.
void ruleChanges(const PosixRule& r, int64_t year, std::vector<std::pair<int64_t, bool>>& out) {
  out.emplace_back(ruleDay(year, r.start) * kSecPerDay + r.start.timeSec - r.stdOffset, true);
  out.emplace_back(ruleDay(year, r.end) * kSecPerDay + r.end.timeSec - r.dstOffset, false);
}

// Sorted changes for the years around `t`. On a tie the DST start sorts last so that the
// "all year DST" idiom (start Jan 1 00:00, end Dec 31 25:00) stays in DST.
std::vector<std::pair<int64_t, bool>> ruleChangesAround(const PosixRule& r, int64_t fromYear,
                                                        int64_t toYear) {
  std::vector<std::pair<int64_t, bool>> changes;
  for (int64_t y = fromYear; y <= toYear; ++y) {
    ruleChanges(r, y, changes);
  }
  std::sort(changes.begin(), changes.end());
  return changes;
}

int64_t yearOfSec(int64_t sec) {
  return civilFromDays(floorDiv(sec, kSecPerDay)).year;
}

int64_t ruleOffset(const PosixRule& r, int64_t t) {
  if (!r.hasDst) {
    return r.stdOffset;
  }
  const int64_t year = yearOfSec(t + r.stdOffset);
  const auto changes = ruleChangesAround(r, year - 1, year + 1);
  bool dst = false;
  for (const auto& c : changes) {
    if (c.first > t) {
      break;
    }
    dst = c.second;
  }
  return dst ? r.dstOffset : r.stdOffset;
}

// --- TZif (RFC 8536).

class ByteReader {
 public:
  explicit ByteReader(const std::string& b) : b_(b) {}
  size_t pos() const { return pos_; }
  bool has(uint64_t n) const { return n <= b_.size() - pos_; }
  void skip(size_t n) { pos_ += n; }
  uint8_t u8() { return static_cast<uint8_t>(b_[pos_++]); }
  uint32_t u32() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      v = (v << 8) | u8();
    }
    return v;
  }
  int64_t i64() {
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) {
      v = (v << 8) | u8();
    }
    return static_cast<int64_t>(v);
  }
  const std::string& bytes() const { return b_; }

 private:
  const std::string& b_;
  size_t pos_ = 0;
};

struct TzifCounts {
  uint32_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
};

bool readHeader(ByteReader& r, char& version, TzifCounts& c, std::string& why) {
  if (!r.has(44) || r.bytes().compare(r.pos(), 4, "TZif") != 0) {
    why = "not a TZif file";
    return false;
  }
  r.skip(4);
  version = static_cast<char>(r.u8());
  r.skip(15);
  c.isut = r.u32();
  c.isstd = r.u32();
  c.leap = r.u32();
  c.time = r.u32();
  c.type = r.u32();
  c.chars = r.u32();
  return true;
}

uint64_t blockSize(const TzifCounts& c, uint64_t timeSize) {
  return uint64_t{c.time} * timeSize + c.time + uint64_t{c.type} * 6 + c.chars +
         uint64_t{c.leap} * (timeSize + 4) + c.isstd + c.isut;
}

}  // namespace

struct TimeZone::Data {
  std::string name;
  std::vector<int64_t> transitions;  // utc seconds, strictly ascending
  std::vector<int64_t> offsets;      // offset after each transition
  int64_t initialOffset = 0;         // before the first transition
  std::optional<PosixRule> rule;     // from the last transition on (or always, without transitions)

  int64_t offsetSec(int64_t t) const {
    if (transitions.empty()) {
      return rule ? ruleOffset(*rule, t) : initialOffset;
    }
    if (t < transitions.front()) {
      return initialOffset;
    }
    if (rule && t >= transitions.back()) {
      return ruleOffset(*rule, t);
    }
    const auto it = std::upper_bound(transitions.begin(), transitions.end(), t);
    return offsets[static_cast<size_t>(std::distance(transitions.begin(), it) - 1)];
  }

  // The instants in (from, to] where the offset may change, ascending (no-op changes possible).
  std::vector<int64_t> changePoints(int64_t from, int64_t to) const {
    std::vector<int64_t> points;
    auto it = std::upper_bound(transitions.begin(), transitions.end(), from);
    for (; it != transitions.end() && *it <= to; ++it) {
      points.push_back(*it);
    }
    if (rule && rule->hasDst) {
      const int64_t ruleFrom = transitions.empty() ? from : std::max(from, transitions.back());
      if (ruleFrom < to) {
        for (const auto& c : ruleChangesAround(*rule, yearOfSec(ruleFrom) - 1, yearOfSec(to) + 1)) {
          if (c.first > ruleFrom && c.first <= to) {
            points.push_back(c.first);
          }
        }
      }
    }
    std::sort(points.begin(), points.end());
    return points;
  }

  // The earliest instant >= lower whose local time is >= localSec. Local time jumps at offset
  // changes, so this walks the constant-offset segments around localSec.
  int64_t earliestAtOrAfterLocal(int64_t localSec, int64_t lower) const {
    const int64_t from = std::max(localSec - 2 * kSecPerDay, lower);
    const int64_t to = std::max(from, localSec) + 2 * kSecPerDay;
    const std::vector<int64_t> points = changePoints(from, to);
    int64_t start = from;
    for (size_t k = 0; k <= points.size(); ++k) {
      const int64_t end = k < points.size() ? points[k] : kInfinity;
      if (start < end) {
        const int64_t off = offsetSec(start);
        if (end == kInfinity || end + off > localSec) {
          return std::max(start, localSec - off);
        }
      }
      start = end;
    }
    return start;  // unreachable: the last segment is open-ended
  }

  int64_t localSec(int64_t t) const { return t + offsetSec(t); }
};

namespace {

std::string quoted(const std::string& name) {
  std::string out = "'";
  for (char c : name.substr(0, 80)) {
    out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  return out + (name.size() > 80 ? "...'" : "'");
}

Status zoneError(const std::string& name, const std::string& why) {
  return invalidArgument("time zone " + quoted(name) + ": " + why);
}

bool equalsIgnoreCase(const std::string& a, const char* b) {
  size_t k = 0;
  for (; k < a.size() && b[k] != '\0'; ++k) {
    if (std::tolower(static_cast<unsigned char>(a[k])) !=
        std::tolower(static_cast<unsigned char>(b[k]))) {
      return false;
    }
  }
  return k == a.size() && b[k] == '\0';
}

// "+08:00", "-0530", "+8", optionally after "UTC". nullopt if `s` does not look like an offset;
// a Status if it does but is malformed or out of range.
std::optional<StatusOr<int64_t>> parseFixedOffset(const std::string& name) {
  std::string s = name;
  if (s.size() > 3 && equalsIgnoreCase(s.substr(0, 3), "UTC") && (s[3] == '+' || s[3] == '-')) {
    s = s.substr(3);
  }
  if (s.empty() || (s[0] != '+' && s[0] != '-')) {
    return std::nullopt;
  }
  const int64_t sign = s[0] == '-' ? -1 : 1;
  size_t i = 1;
  auto digits = [&](size_t maxCount, size_t& count) {
    int64_t v = 0;
    count = 0;
    while (i < s.size() && count < maxCount && std::isdigit(static_cast<unsigned char>(s[i]))) {
      v = v * 10 + (s[i] - '0');
      ++i;
      ++count;
    }
    return v;
  };
  size_t hourDigits = 0;
  const int64_t hours = digits(2, hourDigits);
  int64_t minutes = 0;
  size_t minuteDigits = 2;
  if (hourDigits == 0) {
    return StatusOr<int64_t>(zoneError(name, "expected hours after the sign"));
  }
  if (i < s.size() && s[i] == ':') {
    ++i;
    minutes = digits(2, minuteDigits);
  } else if (i < s.size() && hourDigits == 2) {
    minutes = digits(2, minuteDigits);
  }
  if (i != s.size() || minuteDigits != 2) {
    return StatusOr<int64_t>(zoneError(name, "offset must look like +hh, +hh:mm or +hhmm"));
  }
  if (minutes > 59) {
    return StatusOr<int64_t>(zoneError(name, "minutes must be below 60"));
  }
  const int64_t total = hours * kSecPerHour + minutes * 60;
  if (total > kMaxFixedOffsetSec) {
    return StatusOr<int64_t>(zoneError(name, "offset must be within -14:00..+14:00"));
  }
  return StatusOr<int64_t>(sign * total);
}

// IANA names are relative paths of letters, digits and "_+-" in "/"-separated components; this
// rejects anything that could address a file outside the zoneinfo directory.
bool isSafeZoneName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return false;
  }
  size_t begin = 0;
  while (begin <= name.size()) {
    size_t end = name.find('/', begin);
    if (end == std::string::npos) {
      end = name.size();
    }
    const std::string part = name.substr(begin, end - begin);
    if (part.empty() || part == "." || part == ".." || part[0] == '-') {
      return false;
    }
    for (char c : part) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (!std::isalnum(u) && c != '_' && c != '+' && c != '-' && c != '.') {
        return false;
      }
    }
    begin = end + 1;
  }
  return true;
}

Status parseTzif(const std::string& name, const std::string& bytes, TimeZone::Data& d) {
  ByteReader r(bytes);
  char version = 0;
  TzifCounts c;
  std::string why;
  if (!readHeader(r, version, c, why)) {
    return zoneError(name, why);
  }
  uint64_t timeSize = 4;
  if (version != '\0') {
    // v2+: skip the 32-bit block; the 64-bit block after the second header covers all times.
    const uint64_t v1 = blockSize(c, 4);
    if (!r.has(v1)) {
      return zoneError(name, "truncated TZif file");
    }
    r.skip(static_cast<size_t>(v1));
    char version2 = 0;
    if (!readHeader(r, version2, c, why)) {
      return zoneError(name, "bad second TZif header");
    }
    timeSize = 8;
  }
  if (c.type == 0 || c.type > 256 || (c.isut != 0 && c.isut != c.type) ||
      (c.isstd != 0 && c.isstd != c.type)) {
    return zoneError(name, "inconsistent TZif counts");
  }
  if (c.leap != 0) {
    // "right/" zones count leap seconds; unix timestamps do not.
    return zoneError(name, "leap-second zones are not supported");
  }
  if (!r.has(blockSize(c, timeSize))) {
    return zoneError(name, "truncated TZif file");
  }
  std::vector<int64_t> times(c.time);
  for (auto& t : times) {
    t = timeSize == 8 ? r.i64() : static_cast<int64_t>(static_cast<int32_t>(r.u32()));
  }
  std::vector<uint8_t> indices(c.time);
  for (auto& idx : indices) {
    idx = r.u8();
    if (idx >= c.type) {
      return zoneError(name, "transition refers to a missing time type");
    }
  }
  std::vector<int64_t> typeOffsets(c.type);
  for (auto& off : typeOffsets) {
    off = static_cast<int64_t>(static_cast<int32_t>(r.u32()));
    const uint8_t isDst = r.u8();
    const uint8_t desig = r.u8();
    if (off < -kMaxFileOffsetSec || off > kMaxFileOffsetSec || isDst > 1 ||
        (c.chars != 0 && desig >= c.chars)) {
      return zoneError(name, "bad time type in TZif file");
    }
  }
  r.skip(static_cast<size_t>(uint64_t{c.chars} + c.isstd + c.isut));
  for (size_t k = 1; k < times.size(); ++k) {
    if (times[k] <= times[k - 1]) {
      return zoneError(name, "TZif transitions are not in ascending order");
    }
  }
  d.transitions = std::move(times);
  d.offsets.clear();
  for (uint8_t idx : indices) {
    d.offsets.push_back(typeOffsets[idx]);
  }
  d.initialOffset = typeOffsets[0];
  if (timeSize == 8) {
    const std::string& b = r.bytes();
    const size_t open = r.pos();
    const size_t close = open < b.size() ? b.find('\n', open + 1) : std::string::npos;
    if (open >= b.size() || b[open] != '\n' || close == std::string::npos) {
      return zoneError(name, "missing TZif footer");
    }
    const std::string footer = b.substr(open + 1, close - open - 1);
    if (!footer.empty()) {
      d.rule = PosixParser(footer).parse();
      if (!d.rule) {
        return zoneError(name, "unsupported TZ footer rule \"" + footer + "\"");
      }
    }
  }
  return Status::ok();
}

}  // namespace

TimeZone::TimeZone() : TimeZone(utc()) {}

TimeZone TimeZone::utc() {
  static const std::shared_ptr<const Data> kUtc = [] {
    auto d = std::make_shared<Data>();
    d->name = "UTC";
    return d;
  }();
  return TimeZone(kUtc);
}

StatusOr<TimeZone> TimeZone::load(const std::string& name, const std::string& zoneinfoDir) {
  if (equalsIgnoreCase(name, "UTC") || equalsIgnoreCase(name, "Z")) {
    auto d = std::make_shared<Data>();
    d->name = name;
    return TimeZone(std::move(d));
  }
  if (auto fixed = parseFixedOffset(name)) {
    if (!fixed->isOk()) {
      return fixed->status();
    }
    auto d = std::make_shared<Data>();
    d->name = name;
    d->initialOffset = fixed->value();
    return TimeZone(std::move(d));
  }
  if (!isSafeZoneName(name)) {
    return zoneError(name, "not a fixed offset and not a valid IANA zone name");
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::canonical(zoneinfoDir, ec);
  if (ec) {
    return zoneError(name, "zoneinfo directory " + zoneinfoDir +
                               " is not readable (is tzdata "
                               "installed?): " +
                               ec.message());
  }
  const fs::path file = fs::canonical(dir / name, ec);
  if (ec) {
    return zoneError(name, "no such zone under " + zoneinfoDir);
  }
  // A symlink must not lead out of the zoneinfo directory.
  const std::string dirPrefix = dir.string() + "/";
  if (file.string().compare(0, dirPrefix.size(), dirPrefix) != 0) {
    return zoneError(name, "resolves outside " + zoneinfoDir);
  }
  if (!fs::is_regular_file(file, ec)) {
    return zoneError(name, "not a zone file under " + zoneinfoDir);
  }
  const auto size = fs::file_size(file, ec);
  if (ec || size > kMaxZoneFileBytes) {
    return zoneError(name, "zone file is unreadable or too large");
  }
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return zoneError(name, "cannot read " + file.string());
  }
  auto d = std::make_shared<Data>();
  d->name = name;
  Status st = parseTzif(name, bytes, *d);
  if (!st.isOk()) {
    return st;
  }
  return TimeZone(std::move(d));
}

const std::string& TimeZone::name() const {
  return data_->name;
}

int64_t TimeZone::offsetMs(int64_t unixMs) const {
  return data_->offsetSec(floorDiv(unixMs, 1000)) * 1000;
}

std::string TimeZone::hourBucket(int64_t unixMs) const {
  const int64_t local = data_->localSec(floorDiv(unixMs, 1000));
  char buf[16];
  std::snprintf(buf, sizeof buf, "T%02d",
                static_cast<int>(floorDiv(local, kSecPerHour) - floorDiv(local, kSecPerDay) * 24));
  return formatDate(floorDiv(local, kSecPerDay)) + buf;
}

std::string TimeZone::dayBucket(int64_t unixMs) const {
  return formatDate(floorDiv(data_->localSec(floorDiv(unixMs, 1000)), kSecPerDay));
}

std::string TimeZone::monthBucket(int64_t unixMs) const {
  const std::string day = dayBucket(unixMs);
  return day.substr(0, day.size() - 3);
}

int64_t TimeZone::dayStartMs(int64_t unixMs) const {
  const int64_t local = data_->localSec(floorDiv(unixMs, 1000));
  const int64_t midnight = floorDiv(local, kSecPerDay) * kSecPerDay;
  return data_->earliestAtOrAfterLocal(midnight, std::numeric_limits<int64_t>::min()) * 1000;
}

namespace {

// The local second of the last week boundary (weekday, hour:00) at or before `local`.
int64_t weekBoundaryLocal(int64_t local, int weekday, int hour) {
  weekday = ((weekday % 7) + 7) % 7;
  hour = std::clamp(hour, 0, 23);
  const int64_t day = floorDiv(local, kSecPerDay);
  const int64_t boundaryDay = day - (weekdayOfDays(day) - weekday + 7) % 7;
  int64_t boundary = boundaryDay * kSecPerDay + hour * kSecPerHour;
  if (boundary > local) {
    boundary -= 7 * kSecPerDay;
  }
  return boundary;
}

}  // namespace

int64_t TimeZone::weekStartMs(int64_t unixMs, int weekday, int hour) const {
  const int64_t boundary =
      weekBoundaryLocal(data_->localSec(floorDiv(unixMs, 1000)), weekday, hour);
  return data_->earliestAtOrAfterLocal(boundary, std::numeric_limits<int64_t>::min()) * 1000;
}

std::string TimeZone::weekBucket(int64_t unixMs, int weekday, int hour) const {
  const int64_t boundary =
      weekBoundaryLocal(data_->localSec(floorDiv(unixMs, 1000)), weekday, hour);
  return formatDate(floorDiv(boundary, kSecPerDay));
}

StatusOr<std::vector<std::string>> TimeZone::buckets(char kind, int64_t fromMs, int64_t toMs,
                                                     size_t maxBuckets) const {
  if (kind != 'h' && kind != 'd' && kind != 'm') {
    return invalidArgument("bucket kind must be 'h', 'd' or 'm'");
  }
  if (fromMs > toMs) {
    return invalidArgument("bucket range starts after it ends");
  }
  std::vector<std::string> out;
  const int64_t toSec = floorDiv(toMs, 1000);
  int64_t cur = floorDiv(fromMs, 1000);
  while (true) {
    const int64_t curMs = cur * 1000;
    std::string label = kind == 'h'   ? hourBucket(curMs)
                        : kind == 'd' ? dayBucket(curMs)
                                      : monthBucket(curMs);
    if (out.empty() || out.back() != label) {
      if (out.size() >= maxBuckets) {
        return invalidArgument("bucket range spans more than " + std::to_string(maxBuckets) +
                               " buckets");
      }
      out.push_back(std::move(label));
    }
    // The next bucket starts at the first instant after `cur` whose local time reaches the next
    // local boundary (this skips the repeated hour after a fall-back change).
    const int64_t local = data_->localSec(cur);
    int64_t next = 0;
    if (kind == 'h') {
      next = (floorDiv(local, kSecPerHour) + 1) * kSecPerHour;
    } else if (kind == 'd') {
      next = (floorDiv(local, kSecPerDay) + 1) * kSecPerDay;
    } else {
      const Civil c = civilFromDays(floorDiv(local, kSecPerDay));
      next =
          daysFromCivil(c.month == 12 ? c.year + 1 : c.year, c.month == 12 ? 1 : c.month + 1, 1) *
          kSecPerDay;
    }
    const int64_t nextStart = data_->earliestAtOrAfterLocal(next, cur + 1);
    if (nextStart > toSec) {
      break;
    }
    cur = nextStart;
  }
  return out;
}

}  // namespace rg
