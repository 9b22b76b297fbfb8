// AdmissionStore (issue 4) on both backends: every verdict and the order of the checks, the strict
// estimate rule, reservations (expiry, renew, release), settle (idempotent, also against record(),
// window and weekly counters), exactness under concurrency (one store, and on Redis two stores
// sharing a server), topKeys, and the cost-limit fields of key records.

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <hiredis/hiredis.h>

#include "fakes/redis_harness.h"
#include "fakes/store_backends.h"
#include "fakes/support.h"
#include "storage/store.h"

namespace rgtest {
namespace {

using rg::AdmitVerdict;

constexpr int64_t kTtl = 60'000;
constexpr int64_t kWindow = 60'000;
constexpr const char* kDay = "2025-05-01";
constexpr const char* kWeek = "2025-W18";

rg::AdmitRequest request(const std::string& key, const std::string& rid,
                         const rg::AdmissionLimits& limits, int64_t estTokens = 0,
                         int64_t estCost = 0, bool weekly = false) {
  rg::AdmitRequest r;
  r.keyId = key;
  r.requestId = rid;
  r.limits = limits;
  r.ttlMs = kTtl;
  r.estTokens = estTokens;
  r.estBilledMicroUsd = estCost;
  r.day = kDay;
  r.weekly = weekly;
  r.week = kWeek;
  r.weekTtlMs = 7LL * 86'400'000;
  return r;
}

// A usage event of `tokens` input tokens and `billed` micro-USD on kDay.
rg::UsageEvent usage(const std::string& rid, const std::string& key, int64_t tokens, int64_t billed,
                     const std::string& day = kDay) {
  rg::UsageEvent ev;
  ev.requestId = rid;
  ev.keyId = key;
  ev.accountId = "acct-1";
  ev.model = "claude-sonnet";
  ev.day = day;
  ev.hour = day + "T10";
  ev.month = day.substr(0, 7);
  ev.unixMs = 1'700'000'000'000;
  ev.counts.requests = 1;
  ev.counts.inputTokens = tokens;
  ev.counts.billedMicroUsd = billed;
  ev.counts.costMicroUsd = billed / 2;
  return ev;
}

rg::SettleRequest settleOf(const std::string& key, const std::string& rid, const rg::UsageEvent* ev,
                           bool weekly = false) {
  rg::SettleRequest s;
  s.keyId = key;
  s.requestId = rid;
  s.usage = ev;
  s.weekly = weekly;
  s.week = kWeek;
  s.weekTtlMs = 7LL * 86'400'000;
  return s;
}

class Admission : public StoreBackendTest {
 protected:
  Admission() : StoreBackendTest("ad") {}

  rg::AdmitResult admit(const rg::AdmitRequest& r) {
    auto a = store_->admission().admit(r);
    EXPECT_TRUE(a) << a.status().toString();
    return a ? *a : rg::AdmitResult{AdmitVerdict::kAdmitted, -1, -1, -1, -1};
  }

  rg::AdmissionState state(const std::string& key, const std::string& week = kWeek) {
    auto s = store_->admission().state(key, week);
    EXPECT_TRUE(s) << s.status().toString();
    return s ? *s : rg::AdmissionState();
  }

  bool settle(const rg::SettleRequest& r) {
    auto s = store_->admission().settle(r);
    EXPECT_TRUE(s) << s.status().toString();
    return s && *s;
  }
};

TEST_P(Admission, ConcurrencyLimitReleaseAndRefresh) {
  rg::AdmissionLimits l;
  l.concurrency = 2;
  l.windowMs = kWindow;
  auto a = admit(request("k", "r1", l));
  EXPECT_EQ(a.verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(a.inFlight, 1);
  a = admit(request("k", "r2", l));
  EXPECT_EQ(a.verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(a.inFlight, 2);
  a = admit(request("k", "r3", l));
  EXPECT_EQ(a.verdict, AdmitVerdict::kConcurrency);
  EXPECT_EQ(a.current, 2);
  EXPECT_EQ(a.limit, 2);
  EXPECT_EQ(a.inFlight, 2);
  EXPECT_EQ(a.windowEndMs, clock_.nowUnixMs() + kWindow);
  // A request id that holds a reservation is refreshed, not counted again.
  a = admit(request("k", "r2", l));
  EXPECT_EQ(a.verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(a.inFlight, 2);
  EXPECT_EQ(state("k").windowRequests, 2);
  // Another key is independent.
  EXPECT_EQ(admit(request("other", "r3", l)).verdict, AdmitVerdict::kAdmitted);

  ASSERT_TRUE(store_->admission().release("k", "r1"));
  ASSERT_TRUE(store_->admission().release("k", "never-held"));
  ASSERT_TRUE(store_->admission().release("no-key", "never-held"));
  a = admit(request("k", "r3", l));
  EXPECT_EQ(a.verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(a.inFlight, 2);
  auto st = state("k");
  EXPECT_EQ(st.inFlight, 2);
  EXPECT_EQ(st.windowRequests, 3);
  EXPECT_EQ(store_->errorCount(), 0u);
}

TEST_P(Admission, WindowRequestsFixedWindowFromTheFirstRequest) {
  rg::AdmissionLimits l;
  l.windowMs = kWindow;
  l.windowRequests = 3;
  int64_t t0 = clock_.nowUnixMs();
  for (int i = 0; i < 3; ++i) {
    auto a = admit(request("k", "r" + std::to_string(i), l));
    EXPECT_EQ(a.verdict, AdmitVerdict::kAdmitted);
    EXPECT_EQ(a.windowEndMs, t0 + kWindow);
    ASSERT_TRUE(store_->admission().release("k", "r" + std::to_string(i)));
    clock_.advanceMs(1000);
  }
  // Released requests still count in the window.
  auto a = admit(request("k", "r3", l));
  EXPECT_EQ(a.verdict, AdmitVerdict::kWindowRequests);
  EXPECT_EQ(a.current, 3);
  EXPECT_EQ(a.limit, 3);
  EXPECT_EQ(a.windowEndMs, t0 + kWindow);
  EXPECT_EQ(a.inFlight, 0);
  EXPECT_EQ(state("k").windowRequests, 3);

  clock_.setUnixMs(t0 + kWindow);  // the window has ended
  EXPECT_EQ(state("k").windowEndMs, 0);
  a = admit(request("k", "r4", l));
  EXPECT_EQ(a.verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(a.windowEndMs, t0 + 2 * kWindow);
  auto st = state("k");
  EXPECT_EQ(st.windowRequests, 1);
  EXPECT_EQ(st.windowTokens, 0);
  EXPECT_EQ(st.windowEndMs, t0 + 2 * kWindow);
  // No window configured: nothing is counted.
  rg::AdmissionLimits none;
  EXPECT_EQ(admit(request("plain", "p1", none)).windowEndMs, 0);
  EXPECT_EQ(state("plain").windowEndMs, 0);
}

TEST_P(Admission, WindowTokensStrictEstimateAndSettledUsage) {
  rg::AdmissionLimits l;
  l.windowMs = kWindow;
  l.windowTokens = 1000;
  EXPECT_EQ(admit(request("k", "r1", l, 600)).verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(admit(request("k", "r2", l, 400)).verdict, AdmitVerdict::kAdmitted);  // = limit
  auto a = admit(request("k", "r3", l, 1));
  EXPECT_EQ(a.verdict, AdmitVerdict::kWindowTokens);
  EXPECT_EQ(a.current, 1000);  // reserved by the others
  EXPECT_EQ(a.limit, 1000);
  auto st = state("k");
  EXPECT_EQ(st.reservedTokens, 1000);
  EXPECT_EQ(st.inFlight, 2);

  // r1 used 100 of its 600: the window now holds 100, r2 still reserves 400.
  auto ev = usage("r1", "k", 100, 0);
  EXPECT_TRUE(settle(settleOf("k", "r1", &ev)));
  st = state("k");
  EXPECT_EQ(st.windowTokens, 100);
  EXPECT_EQ(st.reservedTokens, 400);
  EXPECT_EQ(st.inFlight, 1);
  EXPECT_EQ(admit(request("k", "r3", l, 500)).verdict, AdmitVerdict::kAdmitted);
  a = admit(request("k", "r4", l, 1));
  EXPECT_EQ(a.verdict, AdmitVerdict::kWindowTokens);
  EXPECT_EQ(a.current, 1000);
}

TEST_P(Admission, WindowCostStrictEstimate) {
  rg::AdmissionLimits l;
  l.windowMs = kWindow;
  l.windowCostMicroUsd = 1'000'000;
  EXPECT_EQ(admit(request("k", "r1", l, 0, 700'000)).verdict, AdmitVerdict::kAdmitted);
  auto a = admit(request("k", "r2", l, 0, 300'001));
  EXPECT_EQ(a.verdict, AdmitVerdict::kWindowCost);
  EXPECT_EQ(a.current, 700'000);
  EXPECT_EQ(a.limit, 1'000'000);
  auto ev = usage("r1", "k", 10, 200'000);
  EXPECT_TRUE(settle(settleOf("k", "r1", &ev)));
  auto st = state("k");
  EXPECT_EQ(st.windowCostMicroUsd, 200'000);
  EXPECT_EQ(st.windowTokens, 10);
  EXPECT_EQ(st.reservedMicroUsd, 0);
  EXPECT_EQ(admit(request("k", "r2", l, 0, 800'000)).verdict, AdmitVerdict::kAdmitted);
  // Past the window, settled cost is not added to a dead window.
  clock_.advanceMs(kWindow);
  auto ev2 = usage("r2", "k", 10, 900'000);
  EXPECT_TRUE(settle(settleOf("k", "r2", &ev2)));
  EXPECT_EQ(state("k").windowCostMicroUsd, 0);
  EXPECT_EQ(admit(request("k", "r3", l, 0, 1'000'000)).verdict, AdmitVerdict::kAdmitted);
}

TEST_P(Admission, DailyAndTotalCostFromTheUsageBuckets) {
  ASSERT_TRUE(store_->usage().record(usage("u1", "k", 1, 700)));
  rg::AdmissionLimits l;
  l.dailyCostMicroUsd = 1000;
  EXPECT_EQ(admit(request("k", "r1", l, 0, 300)).verdict, AdmitVerdict::kAdmitted);
  auto a = admit(request("k", "r2", l, 0, 1));
  EXPECT_EQ(a.verdict, AdmitVerdict::kDailyCost);
  EXPECT_EQ(a.current, 1000);  // 700 booked + 300 reserved
  EXPECT_EQ(a.limit, 1000);
  // Another day has nothing booked.
  auto other = request("k", "r2", l, 0, 600);
  other.day = "2025-05-02";
  EXPECT_EQ(admit(other).verdict, AdmitVerdict::kAdmitted);
  ASSERT_TRUE(store_->admission().release("k", "r1"));
  ASSERT_TRUE(store_->admission().release("k", "r2"));

  ASSERT_TRUE(store_->usage().record(usage("u2", "k", 1, 700, "2025-04-01")));
  rg::AdmissionLimits t;
  t.totalCostMicroUsd = 1500;
  EXPECT_EQ(admit(request("k", "t1", t, 0, 100)).verdict, AdmitVerdict::kAdmitted);
  a = admit(request("k", "t2", t, 0, 1));
  EXPECT_EQ(a.verdict, AdmitVerdict::kTotalCost);
  EXPECT_EQ(a.current, 1500);
  EXPECT_EQ(a.limit, 1500);
}

TEST_P(Admission, ChecksRunInTheDocumentedOrder) {
  // One live reservation (10 tokens, 10 micro-USD) that opened the window, 100 booked today
  // and 50 booked this week through a settle (which also fills the window).
  rg::AdmissionLimits open;
  open.windowMs = kWindow;
  ASSERT_EQ(admit(request("k", "r0", open, 10, 10)).verdict, AdmitVerdict::kAdmitted);
  ASSERT_TRUE(store_->usage().record(usage("u1", "k", 5, 100)));
  auto wk = usage("w1", "k", 7, 50);
  ASSERT_TRUE(settle(settleOf("k", "w1", &wk, true)));

  rg::AdmissionLimits l;
  l.concurrency = 1;
  l.windowMs = kWindow;
  l.windowRequests = 1;
  l.windowTokens = 1;
  l.windowCostMicroUsd = 1;
  l.dailyCostMicroUsd = 1;
  l.totalCostMicroUsd = 1;
  l.weeklyCostMicroUsd = 1;
  struct Step {
    AdmitVerdict verdict;
    int64_t current;
    int64_t rg::AdmissionLimits::*lift;
  };
  const Step steps[] = {
      {AdmitVerdict::kConcurrency, 1, &rg::AdmissionLimits::concurrency},
      {AdmitVerdict::kWindowRequests, 1, &rg::AdmissionLimits::windowRequests},
      {AdmitVerdict::kWindowTokens, 7 + 10, &rg::AdmissionLimits::windowTokens},
      {AdmitVerdict::kWindowCost, 50 + 10, &rg::AdmissionLimits::windowCostMicroUsd},
      {AdmitVerdict::kDailyCost, 150 + 10, &rg::AdmissionLimits::dailyCostMicroUsd},
      {AdmitVerdict::kTotalCost, 150 + 10, &rg::AdmissionLimits::totalCostMicroUsd},
      {AdmitVerdict::kWeeklyCost, 50 + 10, &rg::AdmissionLimits::weeklyCostMicroUsd},
  };
  for (const Step& s : steps) {
    auto a = admit(request("k", "r1", l, 0, 0, true));
    EXPECT_EQ(a.verdict, s.verdict) << static_cast<int>(s.verdict);
    EXPECT_EQ(a.current, s.current) << static_cast<int>(s.verdict);
    EXPECT_EQ(a.limit, 1) << static_cast<int>(s.verdict);
    EXPECT_EQ(a.inFlight, 1);
    if (s.verdict == AdmitVerdict::kWeeklyCost) {
      // The weekly limit applies only to weekly requests.
      EXPECT_EQ(admit(request("k", "r1", l, 0, 0, false)).verdict, AdmitVerdict::kAdmitted);
      ASSERT_TRUE(store_->admission().release("k", "r1"));
    }
    l.*s.lift = 0;
  }
  auto a = admit(request("k", "r1", l, 0, 0, true));
  EXPECT_EQ(a.verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(a.inFlight, 2);
  // Refusals counted nothing: r0 and the two admissions of r1.
  EXPECT_EQ(state("k").windowRequests, 3);
}

TEST_P(Admission, ExpiredReservationIsDroppedAfterItsTtl) {
  rg::AdmissionLimits l;
  l.concurrency = 1;
  auto r = request("k", "r1", l, 100, 100);
  r.ttlMs = 10'000;
  ASSERT_EQ(admit(r).verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(admit(request("k", "r2", l)).verdict, AdmitVerdict::kConcurrency);
  clock_.advanceMs(9'999);
  EXPECT_EQ(state("k").inFlight, 1);
  clock_.advanceMs(1);
  auto st = state("k");
  EXPECT_EQ(st.inFlight, 0);
  EXPECT_EQ(st.reservedTokens, 0);
  EXPECT_EQ(admit(request("k", "r2", l)).verdict, AdmitVerdict::kAdmitted);
  auto renewed = store_->admission().renew("k", "r1", 10'000);
  ASSERT_TRUE(renewed);
  EXPECT_FALSE(*renewed);
  // A bad ttl is refused rather than admitting a reservation that never lives.
  auto bad = request("k", "r3", l);
  bad.ttlMs = 0;
  EXPECT_EQ(store_->admission().admit(bad).status().code(), rg::Code::kInvalidArgument);
}

TEST_P(Admission, RenewExtendsALiveReservation) {
  rg::AdmissionLimits l;
  l.concurrency = 1;
  auto r = request("k", "r1", l);
  r.ttlMs = 10'000;
  ASSERT_EQ(admit(r).verdict, AdmitVerdict::kAdmitted);
  clock_.advanceMs(6'000);
  auto renewed = store_->admission().renew("k", "r1", 10'000);
  ASSERT_TRUE(renewed);
  EXPECT_TRUE(*renewed);
  clock_.advanceMs(6'000);  // past the first expiry
  EXPECT_EQ(admit(request("k", "r2", l)).verdict, AdmitVerdict::kConcurrency);
  clock_.advanceMs(4'000);  // the renewed expiry
  EXPECT_EQ(admit(request("k", "r2", l)).verdict, AdmitVerdict::kAdmitted);
  renewed = store_->admission().renew("k", "nobody", 10'000);
  ASSERT_TRUE(renewed);
  EXPECT_FALSE(*renewed);
  ASSERT_TRUE(store_->admission().release("k", "r2"));
  renewed = store_->admission().renew("k", "r2", 10'000);
  ASSERT_TRUE(renewed);
  EXPECT_FALSE(*renewed);
}

TEST_P(Admission, SettleBooksOnceAndCountsWindowAndWeekOnce) {
  rg::AdmissionLimits l;
  l.windowMs = kWindow;
  ASSERT_EQ(admit(request("k", "r1", l, 1000, 1000)).verdict, AdmitVerdict::kAdmitted);
  auto ev = usage("r1", "k", 40, 300);
  EXPECT_TRUE(settle(settleOf("k", "r1", &ev, true)));
  auto st = state("k");
  EXPECT_EQ(st.windowTokens, 40);
  EXPECT_EQ(st.windowCostMicroUsd, 300);
  EXPECT_EQ(st.weeklyCostMicroUsd, 300);
  EXPECT_EQ(st.inFlight, 0);
  EXPECT_EQ(st.reservedMicroUsd, 0);
  // Replayed: nothing more, even with other counts.
  auto replay = usage("r1", "k", 999, 999);
  EXPECT_FALSE(settle(settleOf("k", "r1", &replay, true)));
  st = state("k");
  EXPECT_EQ(st.windowTokens, 40);
  EXPECT_EQ(st.weeklyCostMicroUsd, 300);
  auto total = store_->usage().keyTotal("k");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 1);
  EXPECT_EQ(total->billedMicroUsd, 300);

  // record() then settle() of the same id: booked once, counted nowhere else, reservation gone.
  ASSERT_EQ(admit(request("k", "r2", l, 10, 10)).verdict, AdmitVerdict::kAdmitted);
  auto ev2 = usage("r2", "k", 5, 7);
  auto rec = store_->usage().record(ev2);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(*rec);
  EXPECT_FALSE(settle(settleOf("k", "r2", &ev2, true)));
  st = state("k");
  EXPECT_EQ(st.windowTokens, 40);
  EXPECT_EQ(st.weeklyCostMicroUsd, 300);
  EXPECT_EQ(st.inFlight, 0);
  total = store_->usage().keyTotal("k");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 2);
  // settle() then record(): record books nothing.
  auto ev3 = usage("r3", "k", 1, 1);
  EXPECT_TRUE(settle(settleOf("k", "r3", &ev3)));
  rec = store_->usage().record(ev3);
  ASSERT_TRUE(rec);
  EXPECT_FALSE(*rec);
  EXPECT_EQ(store_->errorCount(), 0u);
}

TEST_P(Admission, SettleWithoutReservationBooksAndWithoutUsageOnlyReleases) {
  auto ev = usage("r1", "nolimits", 3, 30);
  EXPECT_TRUE(settle(settleOf("nolimits", "r1", &ev)));
  auto total = store_->usage().keyTotal("nolimits");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->billedMicroUsd, 30);
  auto recent = store_->usage().recent("nolimits", 10);
  ASSERT_TRUE(recent);
  EXPECT_EQ(recent->size(), 1u);

  rg::AdmissionLimits l;
  l.concurrency = 1;
  ASSERT_EQ(admit(request("k", "r2", l)).verdict, AdmitVerdict::kAdmitted);
  EXPECT_FALSE(settle(settleOf("k", "r2", nullptr)));
  EXPECT_EQ(state("k").inFlight, 0);
  total = store_->usage().keyTotal("k");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 0);
}

TEST_P(Admission, WeeklyCounterOnlyForWeeklySettlesAndPerWeek) {
  auto a = usage("r1", "k", 1, 100);
  EXPECT_TRUE(settle(settleOf("k", "r1", &a, false)));
  EXPECT_EQ(state("k").weeklyCostMicroUsd, 0);
  auto b = usage("r2", "k", 1, 250);
  EXPECT_TRUE(settle(settleOf("k", "r2", &b, true)));
  EXPECT_EQ(state("k").weeklyCostMicroUsd, 250);
  EXPECT_EQ(state("k", "2025-W19").weeklyCostMicroUsd, 0);
  EXPECT_EQ(state("k", "").weeklyCostMicroUsd, 0);
  rg::AdmissionLimits l;
  l.weeklyCostMicroUsd = 300;
  EXPECT_EQ(admit(request("k", "w1", l, 0, 51, true)).verdict, AdmitVerdict::kWeeklyCost);
  EXPECT_EQ(admit(request("k", "w1", l, 0, 50, true)).verdict, AdmitVerdict::kAdmitted);
  // Another week starts from nothing booked (live reservations count in any week).
  ASSERT_TRUE(store_->admission().release("k", "w1"));
  auto next = request("k", "w2", l, 0, 300, true);
  next.week = "2025-W19";
  EXPECT_EQ(admit(next).verdict, AdmitVerdict::kAdmitted);
}

TEST_P(Admission, ConcurrentAdmitsNeverExceedTheWindowRequests) {
  rg::AdmissionLimits l;
  l.windowMs = kWindow;
  l.windowRequests = 50;
  constexpr int kThreads = 200;
  std::atomic<int> admitted{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto a = store_->admission().admit(request("k", "t" + std::to_string(t), l));
      if (!a) {
        ++errors;
      } else if (a->verdict == AdmitVerdict::kAdmitted) {
        ++admitted;
      } else if (a->verdict != AdmitVerdict::kWindowRequests) {
        ++errors;
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(admitted.load(), 50);
  auto st = state("k");
  EXPECT_EQ(st.windowRequests, 50);
  EXPECT_EQ(st.inFlight, 50);
}

TEST_P(Admission, ConcurrentAdmitsNeverExceedACostLimit) {
  rg::AdmissionLimits l;
  l.dailyCostMicroUsd = 1000;
  constexpr int kThreads = 100;
  std::atomic<int> admitted{0};
  std::atomic<int64_t> admittedCost{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto a = store_->admission().admit(request("k", "t" + std::to_string(t), l, 0, 30));
      if (!a) {
        ++errors;
      } else if (a->verdict == AdmitVerdict::kAdmitted) {
        ++admitted;
        admittedCost += 30;
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LE(admittedCost.load(), 1000);
  EXPECT_EQ(admitted.load(), 1000 / 30);  // every slot that fits is taken, no more
  EXPECT_EQ(state("k").reservedMicroUsd, admittedCost.load());
}

TEST_P(Admission, TopKeysByBilledCostOverBuckets) {
  rg::UsageStore& u = store_->usage();
  ASSERT_TRUE(u.record(usage("a1", "key-a", 1, 500, "2025-05-01")));
  ASSERT_TRUE(u.record(usage("a2", "key-a", 1, 100, "2025-05-02")));
  ASSERT_TRUE(u.record(usage("b1", "key-b", 1, 550, "2025-05-02")));
  ASSERT_TRUE(u.record(usage("c1", "key-c", 1, 600, "2025-05-01")));
  ASSERT_TRUE(u.record(usage("d1", "key-d", 1, 50, "2025-05-03")));
  ASSERT_TRUE(u.record(usage("e1", "key-e", 1, 0, "2025-05-01")));
  // A replay is not counted twice.
  ASSERT_TRUE(u.record(usage("a1", "key-a", 1, 500, "2025-05-01")));

  auto top = u.topKeys(rg::UsageBucket::kDay, {"2025-05-01", "2025-05-02"}, 10);
  ASSERT_TRUE(top) << top.status().toString();
  ASSERT_EQ(top->size(), 4u);
  // key-a and key-c tie at 600: by key id.
  EXPECT_EQ((*top)[0].keyId, "key-a");
  EXPECT_EQ((*top)[0].billedMicroUsd, 600);
  EXPECT_EQ((*top)[1].keyId, "key-c");
  EXPECT_EQ((*top)[1].billedMicroUsd, 600);
  EXPECT_EQ((*top)[2].keyId, "key-b");
  EXPECT_EQ((*top)[2].billedMicroUsd, 550);
  EXPECT_EQ((*top)[3].keyId, "key-e");
  EXPECT_EQ((*top)[3].billedMicroUsd, 0);

  top = u.topKeys(rg::UsageBucket::kDay, {"2025-05-01", "2025-05-02", "2025-05-03"}, 2);
  ASSERT_TRUE(top);
  ASSERT_EQ(top->size(), 2u);
  EXPECT_EQ((*top)[0].keyId, "key-a");
  EXPECT_EQ((*top)[1].keyId, "key-c");
  top = u.topKeys(rg::UsageBucket::kMonth, {"2025-05"}, 1);
  ASSERT_TRUE(top);
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].keyId, "key-a");
  EXPECT_EQ((*top)[0].billedMicroUsd, 600);
  top = u.topKeys(rg::UsageBucket::kHour, {"2025-05-03T10"}, 10);
  ASSERT_TRUE(top);
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].keyId, "key-d");
  top = u.topKeys(rg::UsageBucket::kDay, {}, 10);
  ASSERT_TRUE(top);
  EXPECT_TRUE(top->empty());
  top = u.topKeys(rg::UsageBucket::kDay, {"1999-01-01"}, 10);
  ASSERT_TRUE(top);
  EXPECT_TRUE(top->empty());
  // Large amounts stay exact.
  ASSERT_TRUE(u.record(usage("big", "key-big", 1, 7'000'000'000'001, "2025-05-01")));
  top = u.topKeys(rg::UsageBucket::kDay, {"2025-05-01"}, 1);
  ASSERT_TRUE(top);
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].billedMicroUsd, 7'000'000'000'001);
}

TEST_P(Admission, KeyCostFieldsRoundTrip) {
  rg::ApiKeyRecord r;
  r.id = "k1";
  r.name = "n";
  r.hash = "h1";
  r.createdAtMs = 1;
  r.rateCostMicroUsd = 1'000'001;
  r.dailyCostMicroUsd = 2'000'002;
  r.totalCostMicroUsd = 9'000'000'000'003;
  r.weeklyCostMicroUsd = 4'000'004;
  r.weeklyResetDay = 7;
  r.weeklyResetHour = 23;
  r.ratePpm = 1'500'000;
  r.activationMs = 86'400'000;
  r.activatedAtMs = 1'700'000'000'123;
  ASSERT_TRUE(store_->keys().create(r));
  auto check = [&](rg::Store& s, const rg::ApiKeyRecord& want) {
    auto got = s.keys().getByHash(want.hash);
    ASSERT_TRUE(got && got->has_value());
    const rg::ApiKeyRecord& g = **got;
    EXPECT_EQ(g.rateCostMicroUsd, want.rateCostMicroUsd);
    EXPECT_EQ(g.dailyCostMicroUsd, want.dailyCostMicroUsd);
    EXPECT_EQ(g.totalCostMicroUsd, want.totalCostMicroUsd);
    EXPECT_EQ(g.weeklyCostMicroUsd, want.weeklyCostMicroUsd);
    EXPECT_EQ(g.weeklyResetDay, want.weeklyResetDay);
    EXPECT_EQ(g.weeklyResetHour, want.weeklyResetHour);
    EXPECT_EQ(g.ratePpm, want.ratePpm);
    EXPECT_EQ(g.activationMs, want.activationMs);
    EXPECT_EQ(g.activatedAtMs, want.activatedAtMs);
  };
  check(*store_, r);
  r.ratePpm = 0;  // a free key: 0 stays 0, not the default
  r.weeklyResetDay = 3;
  r.activatedAtMs = 0;
  ASSERT_TRUE(store_->keys().update(r));
  check(*store_, r);
  store_.reset();
  store_ = open();
  ASSERT_NE(store_, nullptr);
  check(*store_, r);
  auto list = store_->keys().list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].ratePpm, 0);
}

TEST_P(Admission, WeeklyCounterIsDurableAndExpires) {
  auto ev = usage("r1", "k", 1, 250);
  auto s = settleOf("k", "r1", &ev, true);
  s.weekTtlMs = 3'600'000;
  EXPECT_TRUE(settle(s));
  store_.reset();
  store_ = open(GetParam() == "embedded" ? 1 : 0);  // embedded: compacted at open
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(state("k").weeklyCostMicroUsd, 250);
  store_.reset();
  store_ = open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(state("k").weeklyCostMicroUsd, 250);
  if (GetParam() == "embedded") {
    // Redis expires by its own (real) time; the embedded counter by the clock.
    clock_.advanceMs(3'600'000);
    EXPECT_EQ(state("k").weeklyCostMicroUsd, 0);
  }
}

// The running sums of the reservations follow every way a reservation goes (expiry, settle,
// release) and a refreshed request keeps the estimate it was admitted with.
TEST_P(Admission, ReservedSumsFollowExpirySettleReleaseAndRefresh) {
  rg::AdmissionLimits l;
  l.windowMs = kWindow;
  l.windowTokens = 1000;
  auto shortLived = request("k", "r1", l, 10, 100);
  shortLived.ttlMs = 1000;
  EXPECT_EQ(admit(shortLived).verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(admit(request("k", "r2", l, 20, 200)).verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(admit(request("k", "r3", l, 30, 300)).verdict, AdmitVerdict::kAdmitted);
  // A refresh with another estimate keeps the first one.
  auto again = admit(request("k", "r2", l, 500, 5000));
  EXPECT_EQ(again.verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(again.inFlight, 3);
  auto st = state("k");
  EXPECT_EQ(st.inFlight, 3);
  EXPECT_EQ(st.reservedTokens, 60);
  EXPECT_EQ(st.reservedMicroUsd, 600);
  clock_.advanceMs(1000);  // r1 expires
  st = state("k");
  EXPECT_EQ(st.inFlight, 2);
  EXPECT_EQ(st.reservedTokens, 50);
  EXPECT_EQ(st.reservedMicroUsd, 500);
  // The tokens check uses the sums: 50 reserved + 951 > 1000, 50 + 950 fits.
  auto over = admit(request("k", "r4", l, 951));
  EXPECT_EQ(over.verdict, AdmitVerdict::kWindowTokens);
  EXPECT_EQ(over.current, 50);
  auto ev = usage("r2", "k", 7, 70);
  EXPECT_TRUE(settle(settleOf("k", "r2", &ev)));
  st = state("k");
  EXPECT_EQ(st.inFlight, 1);
  EXPECT_EQ(st.reservedTokens, 30);
  EXPECT_EQ(st.reservedMicroUsd, 300);
  ASSERT_TRUE(store_->admission().release("k", "r3"));
  ASSERT_TRUE(store_->admission().release("k", "r3"));  // absent = fine, nothing subtracted
  st = state("k");
  EXPECT_EQ(st.inFlight, 0);
  EXPECT_EQ(st.reservedTokens, 0);
  EXPECT_EQ(st.reservedMicroUsd, 0);
  auto renewed = store_->admission().renew("k", "r3", kTtl);
  ASSERT_TRUE(renewed);
  EXPECT_FALSE(*renewed);
  // Everything gone: a fresh start with the full budget (the window holds r2's 7 tokens).
  auto fits = admit(request("k", "r5", l, 993));
  EXPECT_EQ(fits.verdict, AdmitVerdict::kAdmitted);
  EXPECT_EQ(state("k").reservedTokens, 993);
}

// The weekly counter must expire: a weekly admit or settle without a positive ttl is refused.
TEST_P(Admission, WeeklyRequestsNeedAPositiveWeekTtl) {
  rg::AdmissionLimits l;
  l.weeklyCostMicroUsd = 1000;
  auto req = request("k", "r1", l, 0, 10, true);
  req.weekTtlMs = 0;
  auto a = store_->admission().admit(req);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), rg::Code::kInvalidArgument);
  auto ev = usage("r1", "k", 1, 10);
  auto s = settleOf("k", "r1", &ev, true);
  s.weekTtlMs = -1;
  auto st = store_->admission().settle(s);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.status().code(), rg::Code::kInvalidArgument);
  auto total = store_->usage().keyTotal("k");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 0);  // nothing booked
  // Not weekly: the ttl is not used and not checked.
  req.weekly = false;
  EXPECT_TRUE(store_->admission().admit(req));
}

INSTANTIATE_TEST_SUITE_P(Backends, Admission, ::testing::Values("embedded", "redis"),
                         [](const auto& p) { return p.param; });

// ---- Redis: several instances on one server -----------------------------------------------------

TEST(AdmissionRedis, TwoStoresOnOneServerAdmitExactlyTheWindow) {
  RedisServer server;
  rg::ManualClock clock;
  auto open = [&] {
    rg::RedisOptions o;
    o.url = server.url();
    o.keyPrefix = "two:";
    o.poolSize = 8;
    auto s = rg::openRedisStore(o, clock);
    EXPECT_TRUE(s) << s.status().toString();
    return s ? std::move(s.value()) : nullptr;
  };
  rg::StorePtr a = open();
  rg::StorePtr b = open();
  ASSERT_TRUE(a && b);
  rg::AdmissionLimits l;
  l.windowMs = kWindow;
  l.windowRequests = 50;
  std::atomic<int> admitted{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 200; ++t) {
    rg::Store* s = t % 2 == 0 ? a.get() : b.get();
    threads.emplace_back([&, s, t] {
      auto r = s->admission().admit(request("k", "t" + std::to_string(t), l));
      if (!r) {
        ++errors;
      } else if (r->verdict == AdmitVerdict::kAdmitted) {
        ++admitted;
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(admitted.load(), 50);
  auto st = b->admission().state("k", "");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->windowRequests, 50);
  EXPECT_EQ(st->inFlight, 50);
}

// Server-side calls of every command since the last CONFIG RESETSTAT (commands a script runs are
// counted too), and the EVALSHA usec_per_call.
std::map<std::string, int64_t> commandCalls(redisContext* c, double* evalshaUsec = nullptr) {
  auto* r = static_cast<redisReply*>(redisCommand(c, "INFO commandstats"));
  std::string stats = r != nullptr && r->type == REDIS_REPLY_STRING ? r->str : "";
  freeReplyObject(r);
  std::map<std::string, int64_t> calls;
  size_t pos = 0;
  while ((pos = stats.find("cmdstat_", pos)) != std::string::npos) {
    size_t colon = stats.find(':', pos);
    std::string name = stats.substr(pos + 8, colon - pos - 8);
    calls[name] = std::stoll(stats.substr(stats.find("calls=", colon) + 6));
    if (name == "evalsha" && evalshaUsec != nullptr) {
      *evalshaUsec = std::stod(stats.substr(stats.find("usec_per_call=", colon) + 14));
    }
    pos = colon;
  }
  return calls;
}

void rawText(redisContext* c, const char* command) {
  freeReplyObject(redisCommand(c, command));
}

std::vector<std::string> rawKeysOf(redisContext* c, const char* pattern) {
  std::vector<std::string> out;
  auto* r = static_cast<redisReply*>(redisCommand(c, "KEYS %s", pattern));
  if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
  }
  freeReplyObject(r);
  return out;
}

// Admit / settle / renew / release touch the request's own reservation and the expired ones,
// never every live one: the commands a script runs do not grow with the requests in flight.
TEST(AdmissionRedis, CostDoesNotGrowWithTheReservationsInFlight) {
  RedisServer server;
  rg::ManualClock clock;
  rg::RedisOptions o;
  o.url = server.url();
  o.keyPrefix = "perf:";
  auto s = rg::openRedisStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  rg::AdmissionStore& adm = (*s)->admission();
  rg::AdmissionLimits l;
  l.windowMs = kWindow;
  l.windowTokens = 1'000'000'000;
  redisContext* c = redisConnect("127.0.0.1", server.port());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  auto measure = [&](int live, const std::string& tag, int64_t* inside) {
    for (int i = 0; i < live; ++i) {
      auto a = adm.admit(request("k" + tag, "live" + std::to_string(i), l, 10, 10));
      ASSERT_TRUE(a && a->verdict == AdmitVerdict::kAdmitted);
    }
    rawText(c, "CONFIG RESETSTAT");
    constexpr int kRounds = 20;
    for (int i = 0; i < kRounds; ++i) {
      std::string rid = tag + "-r" + std::to_string(i);  // booked once: fresh ids per run
      auto a = adm.admit(request("k" + tag, rid, l, 10, 10));
      ASSERT_TRUE(a && a->verdict == AdmitVerdict::kAdmitted);
      EXPECT_EQ(a->inFlight, live + 1);
      ASSERT_TRUE(adm.renew("k" + tag, rid, kTtl));
      if (i % 2 == 0) {
        auto ev = usage(rid, "k" + tag, 1, 1);
        ASSERT_TRUE(adm.settle(settleOf("k" + tag, rid, &ev)));
      } else {
        ASSERT_TRUE(adm.release("k" + tag, rid));
      }
    }
    double usec = 0;
    auto calls = commandCalls(c, &usec);
    *inside = 0;
    for (const auto& [name, n] : calls) {
      EXPECT_TRUE(name != "hgetall" && name != "hvals" && name != "hkeys") << name;
      if (name != "evalsha" && name != "eval" && name.rfind("config", 0) != 0 && name != "info") {
        *inside += n;
      }
    }
    std::cout << "admission with " << live << " in flight: EVALSHA usec_per_call=" << usec
              << ", commands run by the scripts per round=" << *inside / kRounds << "\n";
  };
  int64_t few = -1;
  int64_t many = -2;
  measure(2, "a", &few);
  measure(500, "b", &many);
  EXPECT_EQ(few, many);
  redisFree(c);
}

// topKeys works on Redis 4 (no ZUNION, 6.2+): one script over ZUNIONSTORE, and ties at the limit
// come in key id order.
TEST(AdmissionRedis, TopKeysUsesNoZunionAndCutsTiesByKeyId) {
  RedisServer server;
  rg::ManualClock clock;
  rg::RedisOptions o;
  o.url = server.url();
  o.keyPrefix = "top:";
  auto s = rg::openRedisStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  rg::UsageStore& u = (*s)->usage();
  const std::pair<const char*, int64_t> costs[] = {{"e", 1},  {"d", 10}, {"a", 5},
                                                   {"c", 10}, {"b", 10}, {"f", 10}};
  int n = 0;
  for (const auto& [key, cost] : costs) {
    ASSERT_TRUE(u.record(usage("r" + std::to_string(n++), key, 1, cost)));
  }
  ASSERT_TRUE(u.record(usage("r-old", "e", 1, 20, "2025-04-30")));
  redisContext* c = redisConnect("127.0.0.1", server.port());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  rawText(c, "CONFIG RESETSTAT");
  auto ids = [&](size_t limit) {
    auto top = u.topKeys(rg::UsageBucket::kDay, {kDay, "2025-04-30"}, limit);
    EXPECT_TRUE(top) << top.status().toString();
    std::string out;
    for (const auto& k : top ? *top : std::vector<rg::UsageStore::KeyCost>()) {
      out += k.keyId + "=" + std::to_string(k.billedMicroUsd) + " ";
    }
    return out;
  };
  EXPECT_EQ(ids(1), "e=21 ");
  EXPECT_EQ(ids(2), "e=21 b=10 ");
  EXPECT_EQ(ids(3), "e=21 b=10 c=10 ");
  EXPECT_EQ(ids(5), "e=21 b=10 c=10 d=10 f=10 ");
  EXPECT_EQ(ids(6), "e=21 b=10 c=10 d=10 f=10 a=5 ");
  EXPECT_EQ(ids(100), "e=21 b=10 c=10 d=10 f=10 a=5 ");
  auto calls = commandCalls(c);
  EXPECT_EQ(calls.count("zunion"), 0u);
  EXPECT_GT(calls["zunionstore"], 0);
  EXPECT_TRUE(rawKeysOf(c, "top:u:top:scratch*").empty());  // the scratch key is gone
  redisFree(c);
}

}  // namespace
}  // namespace rgtest
