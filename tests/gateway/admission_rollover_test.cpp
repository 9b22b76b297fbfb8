// Daily and weekly cost limits roll over at the configured zone's boundaries, not UTC's: the
// real admission store of both backends (embedded in a temp dir, Redis on a real redis-server)
// driven by a manual clock, with the day / week buckets computed the way the gateway does
// (TimeZone::dayBucket, weeklyPeriodId). The instants are written out as unix ms (computed with
// Python's zoneinfo) so the zone code under test does not also produce the expectations.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/time_zone.h"
#include "fakes/store_backends.h"
#include "storage/store.h"
#include "usage/usage_views.h"

namespace {

using rg::AdmitRequest;
using rg::AdmitVerdict;

constexpr int64_t kMinute = 60000;
constexpr int64_t kHour = 3600000;
constexpr int64_t kDay = 86400000;
// 2026-03-11 00:00 Asia/Shanghai (UTC+8) = 2026-03-10T16:00:00Z.
constexpr int64_t kShanghaiMar11 = 1773158400000;
// 2026-03-09 09:00 Asia/Shanghai, a Monday.
constexpr int64_t kShanghaiMon0900 = 1773018000000;
// America/New_York: 2026-03-08 00:00 EST (Sunday; clocks spring forward at 02:00, so this day has
// 23 hours) and 2026-03-09 00:00 EDT.
constexpr int64_t kNewYorkMar08 = 1772946000000;
constexpr int64_t kNewYorkMar09 = 1773028800000;

rg::TimeZone zone(const std::string& name) {
  auto tz = rg::TimeZone::load(name);
  EXPECT_TRUE(tz.isOk()) << name << ": " << tz.status().message();
  return tz.isOk() ? tz.value() : rg::TimeZone::utc();
}

class AdmissionRollover : public rgtest::StoreBackendTest {
 protected:
  AdmissionRollover() : StoreBackendTest("roll") {}

  void SetUp() override {
    clock_.setUnixMs(kShanghaiMar11 - 10 * kMinute);
    StoreBackendTest::SetUp();
  }

  AdmitRequest request(const std::string& rid, const rg::TimeZone& tz, int64_t estMicro) {
    AdmitRequest ar;
    ar.keyId = keyId_;
    ar.requestId = rid;
    ar.ttlMs = 10 * kMinute;
    ar.estTokens = 100;
    ar.estBilledMicroUsd = estMicro;
    ar.day = tz.dayBucket(clock_.nowUnixMs());
    return ar;
  }

  AdmitVerdict admit(const AdmitRequest& ar, int64_t* current = nullptr) {
    auto r = store_->admission().admit(ar);
    EXPECT_TRUE(r.isOk()) << r.status().message();
    if (!r.isOk()) {
      return AdmitVerdict::kAdmitted;
    }
    if (current != nullptr) {
      *current = r->current;
    }
    return r->verdict;
  }

  // Books `billedMicro` for request `rid` at the clock's time, buckets in `tz`, and drops its
  // reservation: what the gateway does when a request ends.
  void settle(const std::string& rid, const rg::TimeZone& tz, int64_t billedMicro,
              const std::string& week = "") {
    rg::TokenCounts counts;
    counts.requests = 1;
    counts.inputTokens = 10;
    counts.outputTokens = 20;
    counts.costMicroUsd = billedMicro;
    counts.billedMicroUsd = billedMicro;
    rg::UsageEvent ev = rgtest::zonedUsageEvent(tz, rid, keyId_, clock_.nowUnixMs(), counts);
    rg::SettleRequest sr;
    sr.keyId = keyId_;
    sr.requestId = rid;
    sr.usage = &ev;
    sr.weekly = !week.empty();
    sr.week = week;
    sr.weekTtlMs = 8 * kDay;
    auto r = store_->admission().settle(sr);
    ASSERT_TRUE(r.isOk()) << r.status().message();
    EXPECT_TRUE(r.value()) << "usage of " << rid << " was not booked";
  }

  std::vector<int64_t> dailyBilled(const std::vector<std::string>& days) {
    auto s = store_->usage().series(rg::UsageDim::kKey, keyId_, rg::UsageBucket::kDay, days);
    EXPECT_TRUE(s.isOk()) << s.status().message();
    std::vector<int64_t> out;
    if (s.isOk()) {
      for (const auto& p : *s) {
        out.push_back(p.counts.billedMicroUsd);
      }
    }
    return out;
  }

  std::string keyId_ = "5b0a6a52-7f3e-4b53-9a5e-1f1d9b2f0a11";
};

TEST_P(AdmissionRollover, DailyCostLimitRollsAtTheZonesMidnight) {
  rg::TimeZone tz = zone("Asia/Shanghai");
  ASSERT_EQ(tz.dayStartMs(kShanghaiMar11 + kHour), kShanghaiMar11);
  // 23:59 local: the day's limit is 1000, a request may cost 600, it costs 900.
  clock_.setUnixMs(kShanghaiMar11 - kMinute);
  AdmitRequest first = request("r1", tz, 600);
  first.limits.dailyCostMicroUsd = 1000;
  EXPECT_EQ(first.day, "2026-03-10");
  EXPECT_EQ(admit(first), AdmitVerdict::kAdmitted);
  settle("r1", tz, 900);
  // Still 23:59:30 local: 900 booked + 600 > 1000.
  clock_.setUnixMs(kShanghaiMar11 - 30000);
  AdmitRequest second = request("r2", tz, 600);
  second.limits.dailyCostMicroUsd = 1000;
  int64_t current = -1;
  EXPECT_EQ(admit(second, &current), AdmitVerdict::kDailyCost);
  EXPECT_EQ(current, 900);
  // 00:00:01 local the next day (still 16:00:01 on 2026-03-10 in UTC): a fresh day.
  clock_.setUnixMs(kShanghaiMar11 + 1000);
  EXPECT_EQ(rg::TimeZone::utc().dayBucket(clock_.nowUnixMs()), "2026-03-10");
  second = request("r2", tz, 600);
  second.limits.dailyCostMicroUsd = 1000;
  EXPECT_EQ(second.day, "2026-03-11");
  EXPECT_EQ(admit(second), AdmitVerdict::kAdmitted);
  settle("r2", tz, 300);
  // Two local day buckets, split at Shanghai's midnight; nothing under the UTC day label's
  // neighbour, and the lifetime total has both.
  EXPECT_EQ(dailyBilled({"2026-03-10", "2026-03-11"}), (std::vector<int64_t>{900, 300}));
  auto hours = store_->usage().series(rg::UsageDim::kKey, keyId_, rg::UsageBucket::kHour,
                                      {"2026-03-10T23", "2026-03-11T00", "2026-03-10T16"});
  ASSERT_TRUE(hours.isOk()) << hours.status().message();
  ASSERT_EQ(hours->size(), 3u);
  EXPECT_EQ((*hours)[0].counts.billedMicroUsd, 900);
  EXPECT_EQ((*hours)[1].counts.billedMicroUsd, 300);
  EXPECT_EQ((*hours)[2].counts.requests, 0);  // the UTC hour label is not what is booked
  auto total = store_->usage().keyTotal(keyId_);
  ASSERT_TRUE(total.isOk());
  EXPECT_EQ(total->billedMicroUsd, 1200);
  EXPECT_EQ(total->requests, 2);
  auto st = store_->admission().state(keyId_, "");
  ASSERT_TRUE(st.isOk()) << st.status().message();
  EXPECT_EQ(st->inFlight, 0);
  EXPECT_EQ(st->reservedMicroUsd, 0);
}

TEST_P(AdmissionRollover, DailyCostLimitOnA23HourDstDay) {
  rg::TimeZone tz = zone("America/New_York");
  ASSERT_EQ(tz.dayStartMs(kNewYorkMar08 + 12 * kHour), kNewYorkMar08);
  ASSERT_EQ(tz.dayStartMs(kNewYorkMar09 + kHour), kNewYorkMar09);
  ASSERT_EQ(kNewYorkMar09 - kNewYorkMar08, 23 * kHour);
  // 00:00:30 and 23:59 local on the short day book into one bucket.
  clock_.setUnixMs(kNewYorkMar08 + 30000);
  AdmitRequest ar = request("n1", tz, 100);
  ar.limits.dailyCostMicroUsd = 1000;
  EXPECT_EQ(ar.day, "2026-03-08");
  EXPECT_EQ(admit(ar), AdmitVerdict::kAdmitted);
  settle("n1", tz, 500);
  clock_.setUnixMs(kNewYorkMar09 - kMinute);
  ar = request("n2", tz, 100);
  ar.limits.dailyCostMicroUsd = 1000;
  EXPECT_EQ(ar.day, "2026-03-08");
  EXPECT_EQ(admit(ar), AdmitVerdict::kAdmitted);
  settle("n2", tz, 450);
  clock_.setUnixMs(kNewYorkMar09 - 30000);
  ar = request("n3", tz, 100);
  ar.limits.dailyCostMicroUsd = 1000;
  int64_t current = -1;
  EXPECT_EQ(admit(ar, &current), AdmitVerdict::kDailyCost);
  EXPECT_EQ(current, 950);
  // Local midnight (04:00 UTC): admitted again.
  clock_.setUnixMs(kNewYorkMar09 + 1000);
  ar = request("n3", tz, 100);
  ar.limits.dailyCostMicroUsd = 1000;
  EXPECT_EQ(ar.day, "2026-03-09");
  EXPECT_EQ(admit(ar), AdmitVerdict::kAdmitted);
  settle("n3", tz, 100);
  EXPECT_EQ(dailyBilled({"2026-03-07", "2026-03-08", "2026-03-09"}),
            (std::vector<int64_t>{0, 950, 100}));
}

TEST_P(AdmissionRollover, WeeklyLimitRollsAtTheResetDayAndHour) {
  rg::TimeZone tz = zone("Asia/Shanghai");
  // Weeks reset on Monday 09:00 local.
  EXPECT_EQ(rg::weeklyPeriodId(tz, kShanghaiMon0900 - 1000, 1, 9), "2026-03-02T09");
  EXPECT_EQ(rg::weeklyPeriodId(tz, kShanghaiMon0900, 1, 9), "2026-03-09T09");
  EXPECT_EQ(rg::weeklyPeriodId(tz, kShanghaiMon0900 + 6 * kDay + 23 * kHour, 1, 9),
            "2026-03-09T09");
  EXPECT_EQ(rg::weeklyPeriodId(tz, kShanghaiMon0900 + 7 * kDay, 1, 9), "2026-03-16T09");
  EXPECT_EQ(rg::nextWeeklyResetMs(tz, kShanghaiMon0900 - 1000, 1, 9), kShanghaiMon0900);
  // New York, weeks starting Sunday 00:00 local (7 = Sunday), across the spring-forward Sunday.
  rg::TimeZone ny = zone("America/New_York");
  EXPECT_EQ(rg::weeklyPeriodId(ny, kNewYorkMar08 - 1000, 7, 0), "2026-03-01T00");
  EXPECT_EQ(rg::weeklyPeriodId(ny, kNewYorkMar08, 7, 0), "2026-03-08T00");
  EXPECT_EQ(rg::weeklyPeriodId(ny, kNewYorkMar09 + 12 * kHour, 7, 0), "2026-03-08T00");

  // The admission counter of the weekly limit follows the period id.
  auto weekly = [&](const std::string& rid) {
    AdmitRequest ar = request(rid, tz, 100);
    ar.limits.weeklyCostMicroUsd = 1000;
    ar.weekly = true;
    ar.week = rg::weeklyPeriodId(tz, clock_.nowUnixMs(), 1, 9);
    ar.weekTtlMs = 8 * kDay;
    return ar;
  };
  clock_.setUnixMs(kShanghaiMon0900 - 2 * kMinute);
  AdmitRequest ar = weekly("w1");
  EXPECT_EQ(ar.week, "2026-03-02T09");
  EXPECT_EQ(admit(ar), AdmitVerdict::kAdmitted);
  settle("w1", tz, 950, ar.week);
  auto st = store_->admission().state(keyId_, "2026-03-02T09");
  ASSERT_TRUE(st.isOk()) << st.status().message();
  EXPECT_EQ(st->weeklyCostMicroUsd, 950);
  clock_.setUnixMs(kShanghaiMon0900 - kMinute);
  ar = weekly("w2");
  int64_t current = -1;
  EXPECT_EQ(admit(ar, &current), AdmitVerdict::kWeeklyCost);
  EXPECT_EQ(current, 950);
  // The same request outside the weekly limit (a non-Claude model) is not counted against it.
  AdmitRequest other = ar;
  other.weekly = false;
  other.week.clear();
  other.limits.weeklyCostMicroUsd = 0;
  EXPECT_EQ(admit(other), AdmitVerdict::kAdmitted);
  ASSERT_TRUE(store_->admission().release(keyId_, "w2").isOk());
  // 09:00:00 on Monday: a new week.
  clock_.setUnixMs(kShanghaiMon0900);
  ar = weekly("w2");
  EXPECT_EQ(ar.week, "2026-03-09T09");
  EXPECT_EQ(admit(ar), AdmitVerdict::kAdmitted);
  settle("w2", tz, 200, ar.week);
  st = store_->admission().state(keyId_, "2026-03-09T09");
  ASSERT_TRUE(st.isOk()) << st.status().message();
  EXPECT_EQ(st->weeklyCostMicroUsd, 200);
  EXPECT_EQ(st->inFlight, 0);
  st = store_->admission().state(keyId_, "2026-03-02T09");
  ASSERT_TRUE(st.isOk());
  EXPECT_EQ(st->weeklyCostMicroUsd, 950);
}

INSTANTIATE_TEST_SUITE_P(Backends, AdmissionRollover, ::testing::Values("embedded", "redis"),
                         [](const auto& paramInfo) { return paramInfo.param; });

}  // namespace
