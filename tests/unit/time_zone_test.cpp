#include "common/time_zone.h"

#include "fakes/support.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace rgtest {
namespace {

using rg::Code;
using rg::TimeZone;

const std::string kZoneinfo = "/usr/share/zoneinfo";
constexpr int64_t kHourMs = 3600 * 1000;
constexpr int64_t kMinuteMs = 60 * 1000;

// Unix ms of a UTC wall time (timegm ignores TZ and the process's local zone).
int64_t utcMs(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

bool haveZoneinfo() {
  return std::filesystem::is_directory(kZoneinfo + "/America");
}

#define RG_REQUIRE_ZONEINFO()                                                             \
  if (!haveZoneinfo()) {                                                                  \
    GTEST_SKIP() << kZoneinfo << " is missing: install tzdata (scripts/install-deps.sh)"; \
  }

using Labels = std::vector<std::string>;

Labels bucketsOrDie(const TimeZone& tz, char kind, int64_t from, int64_t to) {
  auto r = tz.buckets(kind, from, to);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return r.isOk() ? r.value() : Labels{};
}

// --- Synthetic TZif files, to test the parser's v1 / v2 paths and footer rules in isolation.

struct ZoneType {
  int32_t offset;
  bool dst;
};

struct ZoneData {
  std::vector<int64_t> times;
  std::vector<uint8_t> indices;
  std::vector<ZoneType> types;
};

void putBe(std::string& out, uint64_t v, int bytes) {
  for (int k = bytes - 1; k >= 0; --k) {
    out += static_cast<char>((v >> (8 * k)) & 0xff);
  }
}

std::string tzifHeader(char version, const ZoneData& z) {
  std::string out = "TZif";
  out += version;
  out += std::string(15, '\0');
  for (uint64_t count : {uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{z.times.size()},
                         uint64_t{z.types.size()}, uint64_t{4}}) {
    putBe(out, count, 4);
  }
  return out;
}

std::string tzifBlock(const ZoneData& z, int timeBytes) {
  std::string out;
  for (int64_t t : z.times) {
    putBe(out, static_cast<uint64_t>(t), timeBytes);
  }
  for (uint8_t i : z.indices) {
    out += static_cast<char>(i);
  }
  for (const auto& t : z.types) {
    putBe(out, static_cast<uint32_t>(t.offset), 4);
    out += static_cast<char>(t.dst ? 1 : 0);
    out += '\0';
  }
  out += std::string("ABC\0", 4);
  return out;
}

// version '\0' writes a v1-only file from `v1`; '2' writes `v1` then the 64-bit `v2` and the
// footer.
std::string buildTzif(char version, const ZoneData& v1, const ZoneData& v2,
                      const std::string& footer) {
  std::string out = tzifHeader(version, v1) + tzifBlock(v1, 4);
  if (version != '\0') {
    out += tzifHeader(version, v2) + tzifBlock(v2, 8) + "\n" + footer + "\n";
  }
  return out;
}

const ZoneData kOneTypePlus2{{}, {}, {{7200, false}}};

// --- UTC and fixed offsets.

TEST(TimeZoneTest, UtcBucketsAndDayStart) {
  const TimeZone tz = TimeZone::utc();
  EXPECT_EQ(tz.name(), "UTC");
  EXPECT_EQ(TimeZone().name(), "UTC");
  const int64_t t = utcMs(2026, 1, 31, 23, 59, 59) + 999;
  EXPECT_EQ(tz.offsetMs(t), 0);
  EXPECT_EQ(tz.hourBucket(t), "2026-01-31T23");
  EXPECT_EQ(tz.dayBucket(t), "2026-01-31");
  EXPECT_EQ(tz.monthBucket(t), "2026-01");
  EXPECT_EQ(tz.dayStartMs(t), utcMs(2026, 1, 31));
  EXPECT_EQ(tz.dayBucket(t + 1), "2026-02-01");
  // Before the epoch, division must round down, not toward zero.
  EXPECT_EQ(tz.hourBucket(-1), "1969-12-31T23");
  EXPECT_EQ(tz.dayStartMs(-1), -86400 * 1000);

  for (const char* name : {"UTC", "utc", "Z"}) {
    auto z = TimeZone::load(name);
    ASSERT_TRUE(z.isOk()) << name << ": " << z.status().toString();
    EXPECT_EQ(z->name(), name);
    EXPECT_EQ(z->offsetMs(t), 0);
  }
}

TEST(TimeZoneTest, FixedOffsets) {
  struct Case {
    const char* name;
    int64_t offsetMs;
  };
  for (const Case& c :
       {Case{"+08:00", 8 * kHourMs}, Case{"-05:30", -(5 * kHourMs + 30 * kMinuteMs)},
        Case{"UTC+8", 8 * kHourMs}, Case{"UTC-03:30", -(3 * kHourMs + 30 * kMinuteMs)},
        Case{"+0530", 5 * kHourMs + 30 * kMinuteMs}, Case{"-12", -12 * kHourMs},
        Case{"+14:00", 14 * kHourMs}}) {
    auto tz = TimeZone::load(c.name);
    ASSERT_TRUE(tz.isOk()) << c.name << ": " << tz.status().toString();
    EXPECT_EQ(tz->name(), c.name);
    EXPECT_EQ(tz->offsetMs(utcMs(2026, 6, 1)), c.offsetMs) << c.name;
    EXPECT_EQ(tz->offsetMs(utcMs(1900, 1, 1)), c.offsetMs) << c.name;
  }

  auto plus8 = TimeZone::load("UTC+8");
  ASSERT_TRUE(plus8.isOk());
  const int64_t booking = utcMs(2026, 3, 1, 16, 30);
  EXPECT_EQ(plus8->dayBucket(booking), "2026-03-02");
  EXPECT_EQ(plus8->hourBucket(booking), "2026-03-02T00");
  EXPECT_EQ(plus8->dayStartMs(booking), utcMs(2026, 3, 1, 16));

  auto minus530 = TimeZone::load("-05:30");
  ASSERT_TRUE(minus530.isOk());
  const int64_t t = utcMs(2026, 3, 1, 3);  // 2026-02-28 21:30 local
  EXPECT_EQ(minus530->dayBucket(t), "2026-02-28");
  EXPECT_EQ(minus530->monthBucket(t), "2026-02");
  EXPECT_EQ(minus530->dayStartMs(t), utcMs(2026, 2, 28, 5, 30));
  // Local hours start at :30 UTC.
  EXPECT_EQ(bucketsOrDie(*minus530, 'h', utcMs(2026, 3, 1, 3, 29), utcMs(2026, 3, 1, 4, 30)),
            (Labels{"2026-02-28T21", "2026-02-28T22", "2026-02-28T23"}));
}

TEST(TimeZoneTest, BadFixedOffsetsAreRefusedWithTheReason) {
  for (const char* name : {"+25:00", "+14:30", "+08:60", "UTC+", "+8:3", "+08:00:00", "-", "+0a"}) {
    auto tz = TimeZone::load(name);
    ASSERT_FALSE(tz.isOk()) << name;
    EXPECT_EQ(tz.status().code(), Code::kInvalidArgument) << name;
    EXPECT_NE(tz.status().message().find(std::string("'") + name + "'"), std::string::npos)
        << tz.status().message();
  }
  auto tz = TimeZone::load("+25:00");
  EXPECT_NE(tz.status().message().find("14:00"), std::string::npos) << tz.status().message();
}

// --- IANA zones from the system's tzdata.

TEST(TimeZoneTest, ShanghaiIsPlusEightWithoutDst) {
  RG_REQUIRE_ZONEINFO();
  auto tz = TimeZone::load("Asia/Shanghai");
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  EXPECT_EQ(tz->name(), "Asia/Shanghai");
  const int64_t booking = utcMs(2026, 5, 10, 16, 30);
  EXPECT_EQ(tz->offsetMs(booking), 8 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2026, 1, 10)), 8 * kHourMs);
  EXPECT_EQ(tz->dayBucket(booking), "2026-05-11");
  EXPECT_EQ(tz->hourBucket(booking), "2026-05-11T00");
  EXPECT_EQ(tz->dayBucket(booking - 31 * kMinuteMs), "2026-05-10");
  EXPECT_EQ(tz->dayStartMs(booking), utcMs(2026, 5, 10, 16));
  // China observed DST from 1986 to 1991: the transition table is honoured.
  EXPECT_EQ(tz->offsetMs(utcMs(1988, 7, 1)), 9 * kHourMs);
}

TEST(TimeZoneTest, NewYorkSpringForward2026) {
  RG_REQUIRE_ZONEINFO();
  auto tz = TimeZone::load("America/New_York");
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  const int64_t change = utcMs(2026, 3, 8, 7);  // 02:00 EST -> 03:00 EDT
  EXPECT_EQ(tz->offsetMs(change - 1), -5 * kHourMs);
  EXPECT_EQ(tz->offsetMs(change), -4 * kHourMs);
  EXPECT_EQ(tz->hourBucket(change - 1), "2026-03-08T01");
  EXPECT_EQ(tz->hourBucket(change), "2026-03-08T03");
  EXPECT_EQ(bucketsOrDie(*tz, 'h', utcMs(2026, 3, 8, 4), utcMs(2026, 3, 8, 8)),
            (Labels{"2026-03-07T23", "2026-03-08T00", "2026-03-08T01", "2026-03-08T03",
                    "2026-03-08T04"}));

  // A 23-hour day.
  const int64_t dayStart = tz->dayStartMs(utcMs(2026, 3, 8, 12));
  EXPECT_EQ(dayStart, utcMs(2026, 3, 8, 5));
  const int64_t nextDayStart = tz->dayStartMs(utcMs(2026, 3, 9, 12));
  EXPECT_EQ(nextDayStart, utcMs(2026, 3, 9, 4));
  EXPECT_EQ(nextDayStart - dayStart, 23 * kHourMs);
  EXPECT_EQ(tz->dayStartMs(nextDayStart - 1), dayStart);
  EXPECT_EQ(tz->dayBucket(nextDayStart - 1), "2026-03-08");
  EXPECT_EQ(bucketsOrDie(*tz, 'h', dayStart, nextDayStart - 1).size(), 23u);
}

TEST(TimeZoneTest, NewYorkFallBack2026) {
  RG_REQUIRE_ZONEINFO();
  auto tz = TimeZone::load("America/New_York");
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  const int64_t change = utcMs(2026, 11, 1, 6);  // 02:00 EDT -> 01:00 EST
  EXPECT_EQ(tz->offsetMs(change - 1), -4 * kHourMs);
  EXPECT_EQ(tz->offsetMs(change), -5 * kHourMs);
  // Both passes through 01:xx share the label.
  EXPECT_EQ(tz->hourBucket(change - 30 * kMinuteMs), "2026-11-01T01");
  EXPECT_EQ(tz->hourBucket(change + 30 * kMinuteMs), "2026-11-01T01");
  EXPECT_EQ(tz->hourBucket(change + kHourMs), "2026-11-01T02");
  EXPECT_EQ(bucketsOrDie(*tz, 'h', utcMs(2026, 11, 1, 4), utcMs(2026, 11, 1, 8)),
            (Labels{"2026-11-01T00", "2026-11-01T01", "2026-11-01T02", "2026-11-01T03"}));

  // A 25-hour day.
  const int64_t dayStart = tz->dayStartMs(utcMs(2026, 11, 1, 12));
  EXPECT_EQ(dayStart, utcMs(2026, 11, 1, 4));
  const int64_t nextDayStart = tz->dayStartMs(utcMs(2026, 11, 2, 12));
  EXPECT_EQ(nextDayStart, utcMs(2026, 11, 2, 5));
  EXPECT_EQ(nextDayStart - dayStart, 25 * kHourMs);
  EXPECT_EQ(tz->dayStartMs(nextDayStart - 1), dayStart);
  EXPECT_EQ(tz->dayStartMs(change + 1), dayStart);
  EXPECT_EQ(bucketsOrDie(*tz, 'h', dayStart, nextDayStart - 1).size(), 24u);
  EXPECT_EQ(bucketsOrDie(*tz, 'd', dayStart - 1, nextDayStart),
            (Labels{"2026-10-31", "2026-11-01", "2026-11-02"}));
}

TEST(TimeZoneTest, London) {
  RG_REQUIRE_ZONEINFO();
  auto tz = TimeZone::load("Europe/London");
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  const int64_t spring = utcMs(2026, 3, 29, 1);
  EXPECT_EQ(tz->offsetMs(spring - 1), 0);
  EXPECT_EQ(tz->offsetMs(spring), kHourMs);
  EXPECT_EQ(tz->hourBucket(spring - 1), "2026-03-29T00");
  EXPECT_EQ(tz->hourBucket(spring), "2026-03-29T02");
  const int64_t autumn = utcMs(2026, 10, 25, 1);
  EXPECT_EQ(tz->offsetMs(autumn - 1), kHourMs);
  EXPECT_EQ(tz->offsetMs(autumn), 0);
  EXPECT_EQ(tz->dayBucket(utcMs(2026, 1, 15, 23, 30)), "2026-01-15");
  EXPECT_EQ(tz->dayBucket(utcMs(2026, 7, 15, 23, 30)), "2026-07-16");
  EXPECT_EQ(tz->dayStartMs(utcMs(2026, 7, 15, 23, 30)), utcMs(2026, 7, 15, 23));
  EXPECT_EQ(tz->monthBucket(utcMs(2026, 6, 30, 23, 30)), "2026-07");
}

TEST(TimeZoneTest, FarFutureUsesTheFooterRule) {
  RG_REQUIRE_ZONEINFO();
  auto tz = TimeZone::load("America/New_York");
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  // 2100 is past the last transition of any TZif file (fat files stop at 2037): second Sunday of
  // March 2100 is the 14th, first Sunday of November the 7th.
  EXPECT_EQ(tz->offsetMs(utcMs(2100, 3, 14, 7) - 1), -5 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2100, 3, 14, 7)), -4 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2100, 11, 7, 6) - 1), -4 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2100, 11, 7, 6)), -5 * kHourMs);
  EXPECT_EQ(tz->hourBucket(utcMs(2100, 3, 14, 7)), "2100-03-14T03");
  EXPECT_EQ(tz->dayStartMs(utcMs(2100, 3, 15, 12)) - tz->dayStartMs(utcMs(2100, 3, 14, 12)),
            23 * kHourMs);
  auto london = TimeZone::load("Europe/London");
  ASSERT_TRUE(london.isOk());
  // Last Sunday of March 2250 is the 31st.
  EXPECT_EQ(london->offsetMs(utcMs(2250, 3, 31, 1) - 1), 0);
  EXPECT_EQ(london->offsetMs(utcMs(2250, 3, 31, 1)), kHourMs);
  EXPECT_EQ(london->hourBucket(utcMs(2250, 3, 31, 1)), "2250-03-31T02");
}

TEST(TimeZoneTest, LordHoweHalfHourDst) {
  RG_REQUIRE_ZONEINFO();
  if (!std::filesystem::exists(kZoneinfo + "/Australia/Lord_Howe")) {
    GTEST_SKIP() << "Australia/Lord_Howe is not in " << kZoneinfo;
  }
  auto tz = TimeZone::load("Australia/Lord_Howe");
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  // DST (+11:00) ends 2026-04-05 02:00 local -> 01:30 (+10:30).
  const int64_t end = utcMs(2026, 4, 4, 15);
  EXPECT_EQ(tz->offsetMs(end - 1), 11 * kHourMs);
  EXPECT_EQ(tz->offsetMs(end), 10 * kHourMs + 30 * kMinuteMs);
  EXPECT_EQ(tz->hourBucket(end - 1), "2026-04-05T01");
  EXPECT_EQ(tz->hourBucket(end), "2026-04-05T01");
  EXPECT_EQ(bucketsOrDie(*tz, 'h', utcMs(2026, 4, 4, 14), utcMs(2026, 4, 4, 16)),
            (Labels{"2026-04-05T01", "2026-04-05T02"}));
  // DST starts 2026-10-04 02:00 local (+10:30) -> 02:30 (+11:00): a 23.5-hour day.
  const int64_t start = utcMs(2026, 10, 3, 15, 30);
  EXPECT_EQ(tz->offsetMs(start - 1), 10 * kHourMs + 30 * kMinuteMs);
  EXPECT_EQ(tz->offsetMs(start), 11 * kHourMs);
  const int64_t dayStart = tz->dayStartMs(start);
  EXPECT_EQ(dayStart, utcMs(2026, 10, 3, 13, 30));
  EXPECT_EQ(tz->dayStartMs(utcMs(2026, 10, 5)) - dayStart, 23 * kHourMs + 30 * kMinuteMs);
}

// --- Weeks.

TEST(TimeZoneTest, WeekStartMondayMidnight) {
  const TimeZone utc = TimeZone::utc();
  // 2026-05-11 is a Monday.
  const int64_t monday = utcMs(2026, 5, 11);
  EXPECT_EQ(utc.weekStartMs(monday, 1, 0), monday);
  EXPECT_EQ(utc.weekStartMs(monday - 1, 1, 0), monday - 7 * 24 * kHourMs);
  EXPECT_EQ(utc.weekStartMs(utcMs(2026, 5, 17, 23, 59, 59), 1, 0), monday);
  EXPECT_EQ(utc.weekBucket(monday - 1, 1, 0), "2026-05-04");
  EXPECT_EQ(utc.weekBucket(monday + 3 * 24 * kHourMs, 1, 0), "2026-05-11");
  // Out-of-range arguments are normalised rather than trusted: 8 == Monday, hour clamps to 23.
  EXPECT_EQ(utc.weekStartMs(monday, 8, 0), monday);
  EXPECT_EQ(utc.weekStartMs(monday, 1, 99), monday - 7 * 24 * kHourMs + 23 * kHourMs);

  RG_REQUIRE_ZONEINFO();
  auto tz = TimeZone::load("Asia/Shanghai");
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  const int64_t localMonday = utcMs(2026, 5, 10, 16);  // Monday 00:00 +08:00
  EXPECT_EQ(tz->weekStartMs(utcMs(2026, 5, 10, 16, 30), 1, 0), localMonday);
  EXPECT_EQ(tz->weekBucket(utcMs(2026, 5, 10, 16, 30), 1, 0), "2026-05-11");
  EXPECT_EQ(tz->weekStartMs(localMonday - 1, 1, 0), localMonday - 7 * 24 * kHourMs);
  EXPECT_EQ(tz->weekBucket(localMonday - 1, 1, 0), "2026-05-04");
}

TEST(TimeZoneTest, WeekStartSundayTenAcrossDst) {
  RG_REQUIRE_ZONEINFO();
  auto ny = TimeZone::load("America/New_York");
  ASSERT_TRUE(ny.isOk()) << ny.status().toString();
  // Sunday 2026-03-08 10:00 EDT = 14:00Z; the previous reset was Sunday 03-01 10:00 EST = 15:00Z.
  const int64_t reset = utcMs(2026, 3, 8, 14);
  EXPECT_EQ(ny->weekStartMs(reset, 0, 10), reset);
  EXPECT_EQ(ny->weekBucket(reset, 0, 10), "2026-03-08");
  EXPECT_EQ(ny->weekStartMs(reset - 1, 0, 10), utcMs(2026, 3, 1, 15));
  EXPECT_EQ(ny->weekBucket(reset - 1, 0, 10), "2026-03-01");
  EXPECT_EQ(reset - utcMs(2026, 3, 1, 15), 7 * 24 * kHourMs - kHourMs);
  EXPECT_EQ(ny->weekStartMs(utcMs(2026, 3, 14, 23), 0, 10), reset);
  // A reset inside the spring-forward gap (Sunday 02:00) starts when the gap ends.
  EXPECT_EQ(ny->weekStartMs(utcMs(2026, 3, 8, 12), 0, 2), utcMs(2026, 3, 8, 7));
  EXPECT_EQ(ny->weekBucket(utcMs(2026, 3, 8, 12), 0, 2), "2026-03-08");

  auto sh = TimeZone::load("Asia/Shanghai");
  ASSERT_TRUE(sh.isOk());
  // Sunday 2026-05-10 10:00 +08:00 = 02:00Z.
  EXPECT_EQ(sh->weekStartMs(utcMs(2026, 5, 16, 12), 0, 10), utcMs(2026, 5, 10, 2));
  EXPECT_EQ(sh->weekStartMs(utcMs(2026, 5, 10, 1, 59), 0, 10), utcMs(2026, 5, 3, 2));
  EXPECT_EQ(sh->weekBucket(utcMs(2026, 5, 10, 1, 59), 0, 10), "2026-05-03");
}

// --- Bucket ranges.

TEST(TimeZoneTest, BucketRangesAcrossMonthLengthsAndLeapYears) {
  const TimeZone utc = TimeZone::utc();
  EXPECT_EQ(bucketsOrDie(utc, 'd', utcMs(2028, 2, 27, 12), utcMs(2028, 3, 1)),
            (Labels{"2028-02-27", "2028-02-28", "2028-02-29", "2028-03-01"}));
  EXPECT_EQ(bucketsOrDie(utc, 'd', utcMs(2027, 2, 28), utcMs(2027, 3, 1)),
            (Labels{"2027-02-28", "2027-03-01"}));
  EXPECT_EQ(bucketsOrDie(utc, 'd', utcMs(2028, 1, 1), utcMs(2028, 12, 31, 23)).size(), 366u);
  EXPECT_EQ(bucketsOrDie(utc, 'd', utcMs(2027, 1, 1), utcMs(2027, 12, 31, 23)).size(), 365u);
  EXPECT_EQ(bucketsOrDie(utc, 'd', utcMs(2100, 2, 28), utcMs(2100, 3, 1)),
            (Labels{"2100-02-28", "2100-03-01"}));
  EXPECT_EQ(bucketsOrDie(utc, 'm', utcMs(2026, 1, 31), utcMs(2026, 5, 1)),
            (Labels{"2026-01", "2026-02", "2026-03", "2026-04", "2026-05"}));
  EXPECT_EQ(bucketsOrDie(utc, 'h', utcMs(2028, 2, 28, 23, 59), utcMs(2028, 2, 29, 1)),
            (Labels{"2028-02-28T23", "2028-02-29T00", "2028-02-29T01"}));
  EXPECT_EQ(bucketsOrDie(utc, 'd', utcMs(2026, 6, 1, 5), utcMs(2026, 6, 1, 6)),
            (Labels{"2026-06-01"}));

  auto plus8 = TimeZone::load("+08:00");
  ASSERT_TRUE(plus8.isOk());
  EXPECT_EQ(bucketsOrDie(*plus8, 'm', utcMs(2026, 11, 15), utcMs(2027, 2, 28, 16)),
            (Labels{"2026-11", "2026-12", "2027-01", "2027-02", "2027-03"}));
  EXPECT_EQ(bucketsOrDie(*plus8, 'd', utcMs(2028, 2, 28, 15, 59), utcMs(2028, 2, 29, 16)),
            (Labels{"2028-02-28", "2028-02-29", "2028-03-01"}));
}

TEST(TimeZoneTest, BucketRangeLimitsAndErrors) {
  const TimeZone utc = TimeZone::utc();
  const int64_t from = utcMs(2026, 1, 1);
  const int64_t to = utcMs(2026, 1, 10, 12);
  auto ten = utc.buckets('d', from, to, 10);
  ASSERT_TRUE(ten.isOk()) << ten.status().toString();
  EXPECT_EQ(ten->size(), 10u);
  EXPECT_EQ(ten->back(), "2026-01-10");
  auto nine = utc.buckets('d', from, to, 9);
  ASSERT_FALSE(nine.isOk());
  EXPECT_EQ(nine.status().code(), Code::kInvalidArgument);
  EXPECT_NE(nine.status().message().find("9"), std::string::npos);
  auto tooMany = utc.buckets('h', 0, 10001 * kHourMs);
  EXPECT_EQ(tooMany.status().code(), Code::kInvalidArgument);
  auto huge = utc.buckets('h', 0, INT64_MAX);
  EXPECT_EQ(huge.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(utc.buckets('w', from, to).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(utc.buckets('d', to, from).status().code(), Code::kInvalidArgument);
  auto single = utc.buckets('m', from, from);
  ASSERT_TRUE(single.isOk());
  EXPECT_EQ(single.value(), (Labels{"2026-01"}));
}

// --- Names that must be refused.

TEST(TimeZoneTest, UnknownAndUnsafeNamesAreRefused) {
  TempDir dir;
  const std::string zoneinfo = dir.file("zoneinfo");
  std::filesystem::create_directories(zoneinfo + "/Test");
  std::filesystem::create_directories(dir.file("outside"));
  const std::string valid = buildTzif('2', kOneTypePlus2, kOneTypePlus2, "<+02>-2");
  writeFile(zoneinfo + "/Test/Real", valid);
  // A perfectly valid zone file outside the directory must not be reachable.
  writeFile(dir.file("outside/Evil"), valid);
  std::filesystem::create_symlink("../../outside/Evil", zoneinfo + "/Test/Escape");
  std::filesystem::create_symlink("Real", zoneinfo + "/Test/Alias");

  auto real = TimeZone::load("Test/Real", zoneinfo);
  ASSERT_TRUE(real.isOk()) << real.status().toString();
  EXPECT_EQ(real->offsetMs(0), 2 * kHourMs);
  auto alias = TimeZone::load("Test/Alias", zoneinfo);
  ASSERT_TRUE(alias.isOk()) << alias.status().toString();
  EXPECT_EQ(alias->offsetMs(0), 2 * kHourMs);

  for (const std::string& name :
       std::vector<std::string>{"Mars/Olympus", "../outside/Evil", "Test/../../outside/Evil",
                                "Test/Escape", dir.file("outside/Evil"), "", "Test", "Test/",
                                "Test//Real", "./Test/Real", "Test/Re al", "Test/Real\n"}) {
    auto tz = TimeZone::load(name, zoneinfo);
    ASSERT_FALSE(tz.isOk()) << name;
    EXPECT_EQ(tz.status().code(), Code::kInvalidArgument) << name;
    EXPECT_NE(tz.status().message().find("time zone '"), std::string::npos);
  }
  auto escape = TimeZone::load("Test/Escape", zoneinfo);
  EXPECT_NE(escape.status().message().find("outside"), std::string::npos)
      << escape.status().message();
  auto mars = TimeZone::load("Mars/Olympus", zoneinfo);
  EXPECT_NE(mars.status().message().find("'Mars/Olympus'"), std::string::npos);
  EXPECT_NE(mars.status().message().find("no such zone"), std::string::npos);
  auto noDir = TimeZone::load("Asia/Shanghai", dir.file("missing"));
  EXPECT_NE(noDir.status().message().find("tzdata"), std::string::npos) << noDir.status().message();
}

TEST(TimeZoneTest, SystemZoneinfoRefusesTraversal) {
  RG_REQUIRE_ZONEINFO();
  for (const char* name :
       {"Mars/Olympus", "../etc/passwd", "../../../etc/passwd", "/etc/passwd", "America"}) {
    auto tz = TimeZone::load(name);
    ASSERT_FALSE(tz.isOk()) << name;
    EXPECT_EQ(tz.status().code(), Code::kInvalidArgument);
    EXPECT_NE(tz.status().message().find(name), std::string::npos) << tz.status().message();
  }
  auto alias = TimeZone::load("US/Eastern");  // a symlink inside the directory
  ASSERT_TRUE(alias.isOk()) << alias.status().toString();
  EXPECT_EQ(alias->offsetMs(utcMs(2026, 7, 1)), -4 * kHourMs);
}

// --- The TZif parser on synthetic files.

TEST(TimeZoneTest, TzifVersion1) {
  TempDir dir;
  // +01:00 until 2001-09-09T01:46:40Z, +02:00 (DST) until 2004-11-09T11:33:20Z, then +01:00.
  const ZoneData v1{{1000000000, 1100000000}, {1, 0}, {{3600, false}, {7200, true}}};
  writeFile(dir.file("V1"), buildTzif('\0', v1, {}, ""));
  auto tz = TimeZone::load("V1", dir.path());
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  EXPECT_EQ(tz->offsetMs(0), kHourMs);
  EXPECT_EQ(tz->offsetMs(1000000000LL * 1000 - 1), kHourMs);
  EXPECT_EQ(tz->offsetMs(1000000000LL * 1000), 2 * kHourMs);
  EXPECT_EQ(tz->offsetMs(1100000000LL * 1000 - 1), 2 * kHourMs);
  EXPECT_EQ(tz->offsetMs(1100000000LL * 1000), kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2300, 1, 1)), kHourMs);  // no footer: the last type stays
}

TEST(TimeZoneTest, TzifVersion2UsesThe64BitBlockAndFooter) {
  TempDir dir;
  // The 32-bit block says +02:00 forever; the 64-bit block has a transition before 1901 that a
  // 32-bit reader cannot represent, then the footer's US rule from 2007 on.
  const ZoneData v2{{-3000000000LL, 1167627600}, {1, 1}, {{-17762, false}, {-18000, false}}};
  writeFile(dir.file("V2"), buildTzif('3', kOneTypePlus2, v2, "EST5EDT,M3.2.0,M11.1.0"));
  auto tz = TimeZone::load("V2", dir.path());
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  EXPECT_EQ(tz->offsetMs(-3000000000LL * 1000 - 1), -17762 * 1000);
  EXPECT_EQ(tz->offsetMs(0), -5 * kHourMs);
  // 2026 is after the last transition: only the footer knows about DST.
  EXPECT_EQ(tz->offsetMs(utcMs(2026, 3, 8, 7) - 1), -5 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2026, 3, 8, 7)), -4 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2026, 11, 1, 6) - 1), -4 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2026, 11, 1, 6)), -5 * kHourMs);
  EXPECT_EQ(tz->dayStartMs(utcMs(2026, 11, 2, 12)) - tz->dayStartMs(utcMs(2026, 11, 1, 12)),
            25 * kHourMs);
  EXPECT_EQ(bucketsOrDie(*tz, 'h', utcMs(2026, 11, 1, 4), utcMs(2026, 11, 1, 8)),
            (Labels{"2026-11-01T00", "2026-11-01T01", "2026-11-01T02", "2026-11-01T03"}));

  // A slim file (footer only) must agree with the system's fat file hour by hour through 2026.
  if (haveZoneinfo()) {
    auto fat = TimeZone::load("America/New_York");
    ASSERT_TRUE(fat.isOk()) << fat.status().toString();
    for (int64_t t = utcMs(2026, 1, 1); t < utcMs(2027, 1, 1); t += kHourMs) {
      ASSERT_EQ(tz->offsetMs(t), fat->offsetMs(t)) << t;
      ASSERT_EQ(tz->dayStartMs(t), fat->dayStartMs(t)) << t;
    }
  }
}

TEST(TimeZoneTest, FooterJulianDayRules) {
  TempDir dir;
  // +02:00 standard, +03:00 from J60 (1-based, Feb 29 never counted: always Mar 1) to day 300
  // (0-based, Feb 29 counted), both at 00:00 local. Expected instants cross-checked with glibc.
  writeFile(dir.file("J"), buildTzif('2', kOneTypePlus2, kOneTypePlus2, "XST-2XDT,J60/0,300/0"));
  auto tz = TimeZone::load("J", dir.path());
  ASSERT_TRUE(tz.isOk()) << tz.status().toString();
  EXPECT_EQ(tz->offsetMs(utcMs(2028, 2, 29, 22) - 1), 2 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2028, 2, 29, 22)), 3 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2027, 2, 28, 22) - 1), 2 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2027, 2, 28, 22)), 3 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2028, 10, 26, 21) - 1), 3 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2028, 10, 26, 21)), 2 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2027, 10, 27, 21) - 1), 3 * kHourMs);
  EXPECT_EQ(tz->offsetMs(utcMs(2027, 10, 27, 21)), 2 * kHourMs);
  // A day starting in the gap (00:00 -> 01:00) starts when the gap ends.
  EXPECT_EQ(tz->dayStartMs(utcMs(2028, 3, 1, 12)), utcMs(2028, 2, 29, 22));
  EXPECT_EQ(tz->dayBucket(utcMs(2028, 2, 29, 22)), "2028-03-01");
  EXPECT_EQ(tz->hourBucket(utcMs(2028, 2, 29, 22)), "2028-03-01T01");
}

TEST(TimeZoneTest, CorruptTzifFilesAreRefused) {
  TempDir dir;
  const std::string good = buildTzif('2', kOneTypePlus2, kOneTypePlus2, "<+02>-2");
  struct Case {
    const char* name;
    std::string bytes;
    const char* why;
  };
  const ZoneData badIndex{{100}, {5}, {{0, false}}};
  const ZoneData descending{{200, 100}, {0, 0}, {{0, false}}};
  const std::vector<Case> cases = {
      {"Empty", "", "not a TZif file"},
      {"Text", "root:x:0:0:root:/root:/bin/bash\n", "not a TZif file"},
      {"Truncated", good.substr(0, good.size() - 12), "truncated"},
      {"NoFooter", good.substr(0, good.size() - 9), "footer"},
      {"BadFooter", buildTzif('2', kOneTypePlus2, kOneTypePlus2, "EST5EDT,M13.1.0,M11.1.0"),
       "unsupported TZ footer"},
      {"BadIndex", buildTzif('\0', badIndex, {}, ""), "missing time type"},
      {"Descending", buildTzif('\0', descending, {}, ""), "ascending"},
      {"NoTypes", buildTzif('\0', ZoneData{}, {}, ""), "counts"},
  };
  for (const Case& c : cases) {
    writeFile(dir.file(c.name), c.bytes);
    auto tz = TimeZone::load(c.name, dir.path());
    ASSERT_FALSE(tz.isOk()) << c.name;
    EXPECT_EQ(tz.status().code(), Code::kInvalidArgument) << c.name;
    EXPECT_NE(tz.status().message().find(c.why), std::string::npos)
        << c.name << ": " << tz.status().message();
    EXPECT_NE(tz.status().message().find(c.name), std::string::npos) << tz.status().message();
  }
}

// --- Concurrency: one loaded zone shared by several threads.

TEST(TimeZoneTest, SharedAcrossThreads) {
  TempDir dir;
  writeFile(dir.file("Shared"),
            buildTzif('2', kOneTypePlus2, kOneTypePlus2, "EST5EDT,M3.2.0,M11.1.0"));
  auto loaded = TimeZone::load("Shared", dir.path());
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  const TimeZone tz = loaded.value();
  const TimeZone copy = tz;
  std::vector<std::string> expected;
  for (int k = 0; k < 500; ++k) {
    expected.push_back(tz.hourBucket(utcMs(2026, 1, 1) + k * 17 * kHourMs));
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        for (int k = 0; k < 500; ++k) {
          if (copy.hourBucket(utcMs(2026, 1, 1) + k * 17 * kHourMs) != expected[k]) {
            ++mismatches;
          }
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(expected[0], "2025-12-31T19");
}

}  // namespace
}  // namespace rgtest
