// Usage records and aggregates (issue 4) on both Store backends: time buckets per key, account,
// model and key+model, lifetime totals, the recent-records list, retention and idempotency.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
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

using rg::TokenCounts;
using rg::UsageBucket;
using rg::UsageDim;

void expectSameEvent(const rg::UsageEvent& a, const rg::UsageEvent& b) {
  EXPECT_EQ(a.requestId, b.requestId);
  EXPECT_EQ(a.keyId, b.keyId);
  EXPECT_EQ(a.accountId, b.accountId);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.day, b.day);
  EXPECT_EQ(a.hour, b.hour);
  EXPECT_EQ(a.month, b.month);
  EXPECT_EQ(a.unixMs, b.unixMs);
  EXPECT_EQ(a.provider, b.provider);
  EXPECT_EQ(a.upstreamModel, b.upstreamModel);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.stream, b.stream);
  EXPECT_EQ(a.firstByteMs, b.firstByteMs);
  EXPECT_EQ(a.totalMs, b.totalMs);
  EXPECT_EQ(a.client, b.client);
  EXPECT_EQ(a.counts, b.counts);
}

// One plain (non key+model) series point's counts; fails the test when the shape is wrong.
TokenCounts point(rg::UsageStore& u, UsageDim d, const std::string& id, UsageBucket b,
                  const std::string& bucket) {
  auto s = u.series(d, id, b, {bucket});
  EXPECT_TRUE(s) << s.status().toString();
  if (!s || s->size() != 1) {
    ADD_FAILURE() << "expected one point for " << id << " " << bucket;
    return TokenCounts();
  }
  EXPECT_EQ((*s)[0].bucket, bucket);
  EXPECT_EQ((*s)[0].model, "");
  return (*s)[0].counts;
}

TokenCounts life(rg::UsageStore& u, UsageDim d, const std::string& id) {
  auto t = u.lifetime(d, id);
  EXPECT_TRUE(t) << t.status().toString();
  return t ? *t : TokenCounts();
}

// model -> counts of one kKeyModel bucket.
std::map<std::string, TokenCounts> keyModels(rg::UsageStore& u, const std::string& key,
                                             UsageBucket b, const std::string& bucket) {
  std::map<std::string, TokenCounts> out;
  auto s = u.series(UsageDim::kKeyModel, key, b, {bucket});
  EXPECT_TRUE(s) << s.status().toString();
  if (s) {
    for (const rg::UsagePoint& p : *s) {
      EXPECT_EQ(p.bucket, bucket);
      out[p.model] = p.counts;
    }
  }
  return out;
}

std::vector<std::string> recentIds(rg::UsageStore& u, const std::string& key, size_t limit) {
  std::vector<std::string> out;
  auto r = u.recent(key, limit);
  EXPECT_TRUE(r) << r.status().toString();
  if (r) {
    for (const rg::UsageEvent& ev : *r) {
      out.push_back(ev.requestId);
    }
  }
  return out;
}

// A raw connection to the test server, to look at the layout from outside the store.
class RawRedis {
 public:
  explicit RawRedis(const RedisServer& server) : c_(redisConnect("127.0.0.1", server.port())) {
    EXPECT_TRUE(c_ != nullptr && c_->err == 0);
  }
  ~RawRedis() {
    if (c_ != nullptr) {
      redisFree(c_);
    }
  }
  RawRedis(const RawRedis&) = delete;
  RawRedis& operator=(const RawRedis&) = delete;
  int64_t integer(const std::string& a, const std::string& b) {
    auto* r = static_cast<redisReply*>(
        redisCommand(c_, "%s %b", a.c_str(), b.data(), static_cast<size_t>(b.size())));
    int64_t v = r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer : -1000;
    freeReplyObject(r);
    return v;
  }
  std::vector<std::string> keys(const std::string& pattern) {
    std::vector<std::string> out;
    auto* r = static_cast<redisReply*>(redisCommand(c_, "KEYS %s", pattern.c_str()));
    if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < r->elements; ++i) {
        out.emplace_back(r->element[i]->str, r->element[i]->len);
      }
    }
    freeReplyObject(r);
    return out;
  }
  std::string text(const char* command) {
    auto* r = static_cast<redisReply*>(redisCommand(c_, command));
    std::string s = r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
                        ? std::string(r->str, r->len)
                        : std::string();
    freeReplyObject(r);
    return s;
  }

 private:
  redisContext* c_;
};

// ---- Both backends ------------------------------------------------------------------------------

class UsageRecords : public StoreBackendTest {
 protected:
  UsageRecords() : StoreBackendTest("ur") {}
};

TEST_P(UsageRecords, BookingFillsEveryDimensionBucketAndLifetime) {
  rg::UsageStore& u = store_->usage();
  ASSERT_TRUE(u.record(makeUsageEvent("r1", "key-1", "acct-1", "sonnet", "2025-05-01T10", 1)));
  ASSERT_TRUE(u.record(makeUsageEvent("r2", "key-1", "acct-2", "haiku", "2025-05-01T11", 10)));
  ASSERT_TRUE(u.record(makeUsageEvent("r3", "key-2", "acct-1", "sonnet", "2025-05-02T10", 100)));
  ASSERT_TRUE(u.record(makeUsageEvent("r4", "key-1", "acct-1", "sonnet", "2025-06-01T00", 1000)));

  const UsageBucket H = UsageBucket::kHour, D = UsageBucket::kDay, M = UsageBucket::kMonth;
  // key
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", H, "2025-05-01T10"), countsOf(1, 1));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", H, "2025-05-01T11"), countsOf(1, 10));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", D, "2025-05-01"), countsOf(2, 11));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", M, "2025-05"), countsOf(2, 11));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", M, "2025-06"), countsOf(1, 1000));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-2", D, "2025-05-02"), countsOf(1, 100));
  EXPECT_EQ(life(u, UsageDim::kKey, "key-1"), countsOf(3, 1011));
  EXPECT_EQ(life(u, UsageDim::kKey, "key-2"), countsOf(1, 100));
  // account
  EXPECT_EQ(point(u, UsageDim::kAccount, "acct-1", H, "2025-05-01T10"), countsOf(1, 1));
  EXPECT_EQ(point(u, UsageDim::kAccount, "acct-1", D, "2025-05-02"), countsOf(1, 100));
  EXPECT_EQ(point(u, UsageDim::kAccount, "acct-1", M, "2025-05"), countsOf(2, 101));
  EXPECT_EQ(point(u, UsageDim::kAccount, "acct-2", M, "2025-05"), countsOf(1, 10));
  EXPECT_EQ(life(u, UsageDim::kAccount, "acct-1"), countsOf(3, 1101));
  EXPECT_EQ(life(u, UsageDim::kAccount, "acct-2"), countsOf(1, 10));
  // model
  EXPECT_EQ(point(u, UsageDim::kModel, "sonnet", H, "2025-05-02T10"), countsOf(1, 100));
  EXPECT_EQ(point(u, UsageDim::kModel, "sonnet", D, "2025-05-01"), countsOf(1, 1));
  EXPECT_EQ(point(u, UsageDim::kModel, "sonnet", M, "2025-05"), countsOf(2, 101));
  EXPECT_EQ(point(u, UsageDim::kModel, "haiku", M, "2025-05"), countsOf(1, 10));
  EXPECT_EQ(life(u, UsageDim::kModel, "sonnet"), countsOf(3, 1101));
  EXPECT_EQ(life(u, UsageDim::kModel, "haiku"), countsOf(1, 10));
  // key + model
  auto km = keyModels(u, "key-1", M, "2025-05");
  ASSERT_EQ(km.size(), 2u);
  EXPECT_EQ(km["sonnet"], countsOf(1, 1));
  EXPECT_EQ(km["haiku"], countsOf(1, 10));
  km = keyModels(u, "key-1", H, "2025-05-01T11");
  ASSERT_EQ(km.size(), 1u);
  EXPECT_EQ(km["haiku"], countsOf(1, 10));
  km = keyModels(u, "key-1", D, "2025-06-01");
  ASSERT_EQ(km.size(), 1u);
  EXPECT_EQ(km["sonnet"], countsOf(1, 1000));
  EXPECT_EQ(life(u, UsageDim::kKeyModel, "key-1"), countsOf(3, 1011));
  // The old aggregates are booked as before.
  auto total = u.keyTotal("key-1");
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, countsOf(3, 1011));
  auto acct = u.accountTotal("acct-1");
  ASSERT_TRUE(acct);
  EXPECT_EQ(*acct, countsOf(3, 1101));
  auto day = u.keyModelsDaily("key-1", "2025-05-01");
  ASSERT_TRUE(day);
  EXPECT_EQ(day->size(), 2u);
  // Unknown ids are zero, not errors.
  EXPECT_EQ(life(u, UsageDim::kKey, "nobody"), TokenCounts());
  EXPECT_EQ(point(u, UsageDim::kModel, "nobody", D, "2025-05-01"), TokenCounts());
  EXPECT_EQ(store_->errorCount(), 0u);
}

TEST_P(UsageRecords, EmptyAccountIsNotBooked) {
  rg::UsageStore& u = store_->usage();
  ASSERT_TRUE(u.record(makeUsageEvent("r1", "key-1", "", "sonnet", "2025-05-01T10", 3)));
  EXPECT_EQ(life(u, UsageDim::kKey, "key-1"), countsOf(1, 3));
  EXPECT_EQ(life(u, UsageDim::kModel, "sonnet"), countsOf(1, 3));
  EXPECT_EQ(life(u, UsageDim::kAccount, ""), TokenCounts());
  EXPECT_EQ(point(u, UsageDim::kAccount, "", UsageBucket::kDay, "2025-05-01"), TokenCounts());
}

TEST_P(UsageRecords, SecondRecordWithTheSameIdChangesNothing) {
  rg::UsageStore& u = store_->usage();
  auto ev = makeUsageEvent("dup", "key-1", "acct-1", "sonnet", "2025-05-01T10", 7);
  auto first = u.record(ev);
  ASSERT_TRUE(first);
  EXPECT_TRUE(*first);
  auto again = ev;
  again.counts = countsOf(5, 99);
  again.hour = "2025-05-01T11";
  again.model = "haiku";
  auto second = u.record(again);
  ASSERT_TRUE(second);
  EXPECT_FALSE(*second);

  EXPECT_EQ(life(u, UsageDim::kKey, "key-1"), countsOf(1, 7));
  EXPECT_EQ(life(u, UsageDim::kModel, "haiku"), TokenCounts());
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kHour, "2025-05-01T11"), TokenCounts());
  EXPECT_EQ(point(u, UsageDim::kAccount, "acct-1", UsageBucket::kHour, "2025-05-01T10"),
            countsOf(1, 7));
  auto recent = u.recent("key-1", 10);
  ASSERT_TRUE(recent);
  ASSERT_EQ(recent->size(), 1u);
  expectSameEvent((*recent)[0], ev);
}

TEST_P(UsageRecords, RecentListIsNewestFirstCappedAndKeepsEveryField) {
  rg::UsageStore& u = store_->usage();
  rg::UsageRetention ret;
  ret.recentPerKey = 3;
  u.setRetention(ret);
  std::vector<rg::UsageEvent> evs;
  for (int i = 0; i < 5; ++i) {
    evs.push_back(makeUsageEvent("r" + std::to_string(i), "key-1", "acct-1", "m:odel|x",
                                 "2025-05-01T1" + std::to_string(i), i + 1));
    ASSERT_TRUE(u.record(evs.back()));
  }
  ASSERT_TRUE(u.record(makeUsageEvent("other", "key-2", "acct-1", "m", "2025-05-01T10", 1)));

  auto r = u.recent("key-1", 10);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 3u);
  expectSameEvent((*r)[0], evs[4]);
  expectSameEvent((*r)[1], evs[3]);
  expectSameEvent((*r)[2], evs[2]);
  EXPECT_EQ(recentIds(u, "key-1", 2), (std::vector<std::string>{"r4", "r3"}));
  EXPECT_TRUE(recentIds(u, "key-1", 0).empty());
  EXPECT_EQ(recentIds(u, "key-1", SIZE_MAX).size(), 3u);
  EXPECT_EQ(recentIds(u, "key-2", 10), (std::vector<std::string>{"other"}));
  EXPECT_TRUE(recentIds(u, "nobody", 10).empty());

  // Fields left at their defaults read back as defaults.
  rg::UsageEvent bare;
  bare.requestId = "bare";
  bare.keyId = "key-3";
  bare.hour = "2025-05-01T10";
  bare.day = "2025-05-01";
  bare.month = "2025-05";
  ASSERT_TRUE(u.record(bare));
  auto b = u.recent("key-3", 1);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->size(), 1u);
  expectSameEvent((*b)[0], bare);

  // recentPerKey 0 keeps no more records.
  ret.recentPerKey = 0;
  u.setRetention(ret);
  ASSERT_TRUE(u.record(makeUsageEvent("r9", "key-2", "acct-1", "m", "2025-05-01T10", 1)));
  EXPECT_EQ(recentIds(u, "key-2", 10), (std::vector<std::string>{"other"}));
}

TEST_P(UsageRecords, SeriesListsTheBucketsAskedForWithZerosForEmptyOnes) {
  rg::UsageStore& u = store_->usage();
  ASSERT_TRUE(u.record(makeUsageEvent("r1", "key-1", "acct-1", "sonnet", "2025-05-01T10", 1)));
  ASSERT_TRUE(u.record(makeUsageEvent("r2", "key-1", "acct-1", "haiku", "2025-05-03T10", 10)));
  ASSERT_TRUE(u.record(makeUsageEvent("r3", "key-1", "acct-1", "sonnet", "2025-05-03T11", 100)));

  std::vector<std::string> days = {"2025-05-03", "2025-05-02", "2025-05-01"};
  auto s = u.series(UsageDim::kKey, "key-1", UsageBucket::kDay, days);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*s)[i].bucket, days[i]);
    EXPECT_EQ((*s)[i].model, "");
  }
  EXPECT_EQ((*s)[0].counts, countsOf(2, 110));
  EXPECT_EQ((*s)[1].counts, TokenCounts());
  EXPECT_EQ((*s)[2].counts, countsOf(1, 1));

  // key+model: one point per (bucket, model) with usage, buckets in the order asked, models in
  // name order; empty buckets have no point.
  auto km = u.series(UsageDim::kKeyModel, "key-1", UsageBucket::kDay, days);
  ASSERT_TRUE(km);
  ASSERT_EQ(km->size(), 3u);
  EXPECT_EQ((*km)[0].bucket, "2025-05-03");
  EXPECT_EQ((*km)[0].model, "haiku");
  EXPECT_EQ((*km)[0].counts, countsOf(1, 10));
  EXPECT_EQ((*km)[1].bucket, "2025-05-03");
  EXPECT_EQ((*km)[1].model, "sonnet");
  EXPECT_EQ((*km)[1].counts, countsOf(1, 100));
  EXPECT_EQ((*km)[2].bucket, "2025-05-01");
  EXPECT_EQ((*km)[2].model, "sonnet");
  EXPECT_EQ((*km)[2].counts, countsOf(1, 1));

  auto none = u.series(UsageDim::kKey, "key-1", UsageBucket::kHour, {});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto emptyKm = u.series(UsageDim::kKeyModel, "nobody", UsageBucket::kMonth, {"2025-05"});
  ASSERT_TRUE(emptyKm);
  EXPECT_TRUE(emptyKm->empty());
}

TEST_P(UsageRecords, EventsWithoutTimeBucketsGetThemFromUnixMsInUtc) {
  rg::UsageStore& u = store_->usage();
  // 1'700'000'000'005 ms = 2023-11-14T22:13:20Z.
  auto ev = makeUsageEvent("old-1", "key-1", "acct-1", "sonnet", "2025-05-01T10", 5);
  ev.hour.clear();  // day and month stay as given
  ASSERT_TRUE(u.record(ev));
  auto ev2 = makeUsageEvent("old-2", "key-1", "acct-1", "sonnet", "2025-05-01T10", 6);
  ev2.hour.clear();
  ev2.day.clear();
  ev2.month.clear();
  ASSERT_TRUE(u.record(ev2));

  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kHour, "2023-11-14T22"),
            countsOf(2, 11));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kDay, "2025-05-01"), countsOf(1, 5));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kDay, "2023-11-14"), countsOf(1, 6));
  EXPECT_EQ(point(u, UsageDim::kAccount, "acct-1", UsageBucket::kMonth, "2025-05"), countsOf(1, 5));
  EXPECT_EQ(point(u, UsageDim::kModel, "sonnet", UsageBucket::kMonth, "2023-11"), countsOf(1, 6));
  for (UsageDim d : {UsageDim::kKey, UsageDim::kAccount, UsageDim::kModel, UsageDim::kKeyModel}) {
    std::string id = d == UsageDim::kAccount ? "acct-1"
                     : d == UsageDim::kModel ? "sonnet"
                                             : "key-1";
    EXPECT_EQ(life(u, d, id), countsOf(2, 11));
  }
  auto total = u.keyTotal("key-1");
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, countsOf(2, 11));
  auto day = u.keyDaily("key-1", "2025-05-01");
  ASSERT_TRUE(day);
  EXPECT_EQ(*day, countsOf(1, 5));
  auto acct = u.accountTotal("acct-1");
  ASSERT_TRUE(acct);
  EXPECT_EQ(*acct, countsOf(2, 11));
  auto models = u.keyModelsDaily("key-1", "2023-11-14");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ(models->at("sonnet"), countsOf(1, 6));
  auto recent = u.recent("key-1", 10);
  ASSERT_TRUE(recent);
  ASSERT_EQ(recent->size(), 2u);
  EXPECT_EQ((*recent)[0].hour, "2023-11-14T22");
  EXPECT_EQ((*recent)[0].day, "2023-11-14");
  EXPECT_EQ((*recent)[0].month, "2023-11");
  // Still idempotent.
  auto again = u.record(ev);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
}

TEST_P(UsageRecords, IdsAndModelsWithColonsAndPipesDoNotCollide) {
  rg::UsageStore& u = store_->usage();
  // Pairs that a naive "<a>:<b>" or "<a>|<b>" layout would merge.
  ASSERT_TRUE(u.record(makeUsageEvent("c1", "a:b", "x|y", "c", "2025-05-01T10", 1)));
  ASSERT_TRUE(u.record(makeUsageEvent("c2", "a", "x", "b:c", "2025-05-01T10", 10)));
  ASSERT_TRUE(u.record(makeUsageEvent("c3", "a|b", "x|y|z", "c|d", "2025-05-01T10", 100)));
  ASSERT_TRUE(u.record(makeUsageEvent("c4", "a", "y", "b|c", "2025-05-01T10", 1000)));
  // A model named like a bucket kind and a bucket.
  ASSERT_TRUE(u.record(makeUsageEvent("c5", "k", "q", "d:2025-05-01:m", "2025-05-01T10", 10000)));

  EXPECT_EQ(life(u, UsageDim::kKey, "a:b"), countsOf(1, 1));
  EXPECT_EQ(life(u, UsageDim::kKey, "a"), countsOf(2, 1010));
  EXPECT_EQ(life(u, UsageDim::kKey, "a|b"), countsOf(1, 100));
  EXPECT_EQ(life(u, UsageDim::kAccount, "x|y"), countsOf(1, 1));
  EXPECT_EQ(life(u, UsageDim::kAccount, "x"), countsOf(1, 10));
  EXPECT_EQ(life(u, UsageDim::kAccount, "x|y|z"), countsOf(1, 100));
  EXPECT_EQ(life(u, UsageDim::kModel, "c"), countsOf(1, 1));
  EXPECT_EQ(life(u, UsageDim::kModel, "b:c"), countsOf(1, 10));
  EXPECT_EQ(life(u, UsageDim::kModel, "c|d"), countsOf(1, 100));
  EXPECT_EQ(life(u, UsageDim::kModel, "b|c"), countsOf(1, 1000));
  EXPECT_EQ(life(u, UsageDim::kModel, "d:2025-05-01:m"), countsOf(1, 10000));
  EXPECT_EQ(life(u, UsageDim::kModel, "m"), TokenCounts());
  EXPECT_EQ(point(u, UsageDim::kModel, "m", UsageBucket::kDay, "2025-05-01"), TokenCounts());
  EXPECT_EQ(point(u, UsageDim::kKey, "a", UsageBucket::kHour, "2025-05-01T10"), countsOf(2, 1010));
  EXPECT_EQ(point(u, UsageDim::kKey, "a:b", UsageBucket::kMonth, "2025-05"), countsOf(1, 1));

  auto km = keyModels(u, "a", UsageBucket::kDay, "2025-05-01");
  ASSERT_EQ(km.size(), 2u);
  EXPECT_EQ(km["b:c"], countsOf(1, 10));
  EXPECT_EQ(km["b|c"], countsOf(1, 1000));
  km = keyModels(u, "a:b", UsageBucket::kDay, "2025-05-01");
  ASSERT_EQ(km.size(), 1u);
  EXPECT_EQ(km["c"], countsOf(1, 1));
  EXPECT_EQ(life(u, UsageDim::kKeyModel, "a"), countsOf(2, 1010));
  EXPECT_EQ(recentIds(u, "a", 10), (std::vector<std::string>{"c4", "c2"}));
  EXPECT_EQ(recentIds(u, "a:b", 10), (std::vector<std::string>{"c1"}));
}

TEST_P(UsageRecords, ConcurrentRecordsAreBookedExactly) {
  rg::UsageStore& u = store_->usage();
  constexpr int kThreads = 8;
  constexpr int kTotal = 200;
  std::atomic<int> next{0};
  std::atomic<int> booked{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kTotal; i = next++) {
        // Two models, two accounts, one key; every fourth request hits another hour.
        std::string model = i % 2 == 0 ? "sonnet" : "haiku";
        std::string acct = i % 3 == 0 ? "acct-1" : "acct-2";
        std::string hour = i % 4 == 0 ? "2025-05-01T11" : "2025-05-01T10";
        auto r = u.record(makeUsageEvent("cc-" + std::to_string(i), "key-1", acct, model, hour, 1));
        if (!r) {
          ++failed;
        } else if (*r) {
          ++booked;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(booked.load(), kTotal);
  EXPECT_EQ(life(u, UsageDim::kKey, "key-1"), countsOf(kTotal, kTotal));
  EXPECT_EQ(life(u, UsageDim::kKeyModel, "key-1"), countsOf(kTotal, kTotal));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kDay, "2025-05-01"),
            countsOf(kTotal, kTotal));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kHour, "2025-05-01T11"),
            countsOf(50, 50));
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kHour, "2025-05-01T10"),
            countsOf(150, 150));
  EXPECT_EQ(life(u, UsageDim::kModel, "sonnet"), countsOf(100, 100));
  EXPECT_EQ(life(u, UsageDim::kAccount, "acct-1"), countsOf(67, 67));
  EXPECT_EQ(life(u, UsageDim::kAccount, "acct-2"), countsOf(133, 133));
  auto km = keyModels(u, "key-1", UsageBucket::kMonth, "2025-05");
  EXPECT_EQ(km["sonnet"], countsOf(100, 100));
  EXPECT_EQ(km["haiku"], countsOf(100, 100));
  auto total = u.keyTotal("key-1");
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, countsOf(kTotal, kTotal));
  auto recent = u.recent("key-1", 1000);
  ASSERT_TRUE(recent);
  EXPECT_EQ(recent->size(), static_cast<size_t>(rg::UsageRetention().recentPerKey));
}

TEST_P(UsageRecords, AggregatesAndRecordsSurviveReopen) {
  {
    rg::UsageStore& u = store_->usage();
    ASSERT_TRUE(u.record(makeUsageEvent("r1", "key-1", "acct-1", "sonnet", "2025-05-01T10", 1)));
    ASSERT_TRUE(u.record(makeUsageEvent("r2", "key-1", "acct-1", "haiku", "2025-05-01T11", 10)));
  }
  store_.reset();
  store_ = open();
  ASSERT_NE(store_, nullptr);
  rg::UsageStore& u = store_->usage();
  EXPECT_EQ(life(u, UsageDim::kKey, "key-1"), countsOf(2, 11));
  EXPECT_EQ(point(u, UsageDim::kAccount, "acct-1", UsageBucket::kDay, "2025-05-01"),
            countsOf(2, 11));
  EXPECT_EQ(keyModels(u, "key-1", UsageBucket::kHour, "2025-05-01T11").at("haiku"),
            countsOf(1, 10));
  EXPECT_EQ(recentIds(u, "key-1", 10), (std::vector<std::string>{"r2", "r1"}));
  auto again = u.record(makeUsageEvent("r1", "key-1", "acct-1", "sonnet", "2025-05-01T10", 1));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
}

INSTANTIATE_TEST_SUITE_P(Backends, UsageRecords, ::testing::Values("embedded", "redis"),
                         [](const auto& p) { return p.param; });

// ---- Retention ----------------------------------------------------------------------------------

constexpr int64_t kHourMs = 3'600'000;

rg::UsageRetention shortRetention() {
  rg::UsageRetention r;
  r.hourlyMs = 1 * kHourMs;
  r.dailyMs = 2 * kHourMs;
  r.monthlyMs = 3 * kHourMs;
  r.recentPerKey = 10;
  return r;
}

TEST(UsageRetentionEmbedded, BucketsExpireByTheClockAndStayGoneAfterCompaction) {
  rg::ManualClock clock;
  TempDir dir;
  auto open = [&](int64_t compactBytes) {
    rg::EmbeddedOptions o;
    o.dataDir = dir.file("data");
    o.compactThresholdBytes = compactBytes;
    auto s = rg::openEmbeddedStore(o, clock);
    EXPECT_TRUE(s) << s.status().toString();
    if (s) {
      s.value()->usage().setRetention(shortRetention());
    }
    return s ? std::move(s.value()) : nullptr;
  };
  auto ev = makeUsageEvent("r1", "key-1", "acct-1", "sonnet", "2025-05-01T10", 1);
  const std::string H = "2025-05-01T10", D = "2025-05-01", M = "2025-05";
  auto check = [&](rg::Store& s, int64_t hourly, int64_t daily, int64_t monthly) {
    rg::UsageStore& u = s.usage();
    for (UsageDim d : {UsageDim::kKey, UsageDim::kAccount, UsageDim::kModel}) {
      std::string id = d == UsageDim::kAccount ? "acct-1"
                       : d == UsageDim::kModel ? "sonnet"
                                               : "key-1";
      EXPECT_EQ(point(u, d, id, UsageBucket::kHour, H), countsOf(hourly, hourly));
      EXPECT_EQ(point(u, d, id, UsageBucket::kDay, D), countsOf(daily, daily));
      EXPECT_EQ(point(u, d, id, UsageBucket::kMonth, M), countsOf(monthly, monthly));
      EXPECT_EQ(life(u, d, id), countsOf(2, 2));  // lifetime never expires
    }
    EXPECT_EQ(keyModels(u, "key-1", UsageBucket::kHour, H).size(), hourly > 0 ? 1u : 0u);
    EXPECT_EQ(keyModels(u, "key-1", UsageBucket::kDay, D).size(), daily > 0 ? 1u : 0u);
    EXPECT_EQ(life(u, UsageDim::kKeyModel, "key-1"), countsOf(2, 2));
    EXPECT_EQ(recentIds(u, "key-1", 10), (std::vector<std::string>{"r2", "r1"}));
  };
  {
    auto s = open(0);
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->usage().record(ev));
    clock.advanceMs(kHourMs / 2);
    ev.requestId = "r2";
    ASSERT_TRUE(s->usage().record(ev));  // each booking moves the expiry on
    check(*s, 2, 2, 2);
    clock.advanceMs(kHourMs - 1);  // 1 ms before the hourly expiry of the second booking
    check(*s, 2, 2, 2);
    clock.advanceMs(1);
    check(*s, 0, 2, 2);
  }
  // Replay of the journal applies the booked expiries, whatever the retention is now.
  {
    auto s = open(0);
    ASSERT_NE(s, nullptr);
    check(*s, 0, 2, 2);
    clock.advanceMs(kHourMs);
    check(*s, 0, 0, 2);
  }
  // Compaction (threshold 1 byte: at open) drops the expired buckets and keeps the rest.
  {
    auto s = open(1);
    ASSERT_NE(s, nullptr);
    check(*s, 0, 0, 2);
  }
  std::string journal = readFile(dir.file("data") + "/journal.jsonl");
  EXPECT_EQ(journal.find("\"op\":\"usage\","), std::string::npos) << "not compacted";
  EXPECT_NE(journal.find("\"op\":\"usage.agg\""), std::string::npos);
  EXPECT_EQ(journal.find("\"bk\":\"2025-05-01T10\""), std::string::npos);  // expired hour
  EXPECT_NE(journal.find("\"bk\":\"2025-05\""), std::string::npos);
  {
    auto s = open(0);
    ASSERT_NE(s, nullptr);
    check(*s, 0, 0, 2);
    // A booking into an expired (not yet swept) bucket starts it afresh.
    ev.requestId = "r3";
    clock.advanceMs(kHourMs);  // the month bucket has expired too now
    ASSERT_TRUE(s->usage().record(ev));
    EXPECT_EQ(point(s->usage(), UsageDim::kKey, "key-1", UsageBucket::kMonth, M), countsOf(1, 1));
    EXPECT_EQ(point(s->usage(), UsageDim::kKey, "key-1", UsageBucket::kHour, H), countsOf(1, 1));
    EXPECT_EQ(life(s->usage(), UsageDim::kKey, "key-1"), countsOf(3, 3));
  }
}

TEST(UsageRetentionRedis, BucketKeysExpireLifetimeAndRecentDoNot) {
  RedisServer server;
  rg::ManualClock clock;
  rg::RedisOptions o;
  o.url = server.url();
  o.keyPrefix = "ret:";
  auto s = rg::openRedisStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  rg::UsageStore& u = (*s)->usage();
  u.setRetention(shortRetention());
  ASSERT_TRUE(u.record(makeUsageEvent("r1", "key-1", "acct-1", "sonnet", "2025-05-01T10", 1)));

  RawRedis raw(server);
  const int64_t limits[] = {1 * kHourMs, 2 * kHourMs, 3 * kHourMs};
  const char* kinds[] = {"h", "d", "m"};
  const char* buckets[] = {"2025-05-01T10", "2025-05-01", "2025-05"};
  for (const std::string dimId : {"k:key-1", "a:acct-1", "m:sonnet", "km:key-1"}) {
    std::string dim = dimId.substr(0, dimId.find(':'));
    std::string id = dimId.substr(dimId.find(':') + 1);
    for (int i = 0; i < 3; ++i) {
      std::string key = "ret:u:" + dim + ":" + kinds[i] + ":" + buckets[i] + ":" + id;
      int64_t pttl = raw.integer("PTTL", key);
      EXPECT_GT(pttl, limits[i] - 60'000) << key;
      EXPECT_LE(pttl, limits[i]) << key;
    }
    std::string lifeKey = "ret:u:" + dim + ":life:" + id;
    EXPECT_EQ(raw.integer("EXISTS", lifeKey), 1) << lifeKey;
    EXPECT_EQ(raw.integer("PTTL", lifeKey), -1) << lifeKey;
  }
  EXPECT_EQ(raw.integer("LLEN", "ret:u:recent:key-1"), 1);
  EXPECT_EQ(raw.integer("PTTL", "ret:u:recent:key-1"), -1);
  // The top-keys index of each bucket expires with the bucket.
  for (int i = 0; i < 3; ++i) {
    std::string key = std::string("ret:u:top:") + kinds[i] + ":" + buckets[i];
    int64_t pttl = raw.integer("PTTL", key);
    EXPECT_GT(pttl, limits[i] - 60'000) << key;
    EXPECT_LE(pttl, limits[i]) << key;
  }
  // 4 dims x (3 buckets + lifetime), the recent list, 3 top-keys zsets, the request id marker;
  // no other aggregate (the older usage:key:* and friends are gone).
  EXPECT_EQ(raw.keys("ret:*").size(), 4u * 4 + 1 + 3 + 1 + 1);  // + the migration marker
  EXPECT_EQ(raw.keys("ret:migr:usage-buckets").size(), 1u);
  EXPECT_TRUE(raw.keys("ret:usage:key*").empty());
  EXPECT_TRUE(raw.keys("ret:usage:acct*").empty());

  // A key Redis expired reads as zero.
  std::string hourKey = "ret:u:k:h:2025-05-01T10:key-1";
  raw.text(("PEXPIRE " + hourKey + " 1").c_str());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (raw.integer("EXISTS", hourKey) != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(raw.integer("EXISTS", hourKey), 0);
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kHour, "2025-05-01T10"), TokenCounts());
  EXPECT_EQ(point(u, UsageDim::kKey, "key-1", UsageBucket::kDay, "2025-05-01"), countsOf(1, 1));
}

// ---- Embedded: journal compatibility and sharing
// --------------------------------------------------

TEST(UsageJournalEmbedded, OldUsageLineIsBookedIntoLifetimeAndBuckets) {
  rg::ManualClock clock;
  TempDir dir;
  rg::EmbeddedOptions o;
  o.dataDir = dir.file("data");
  {
    auto s = rg::openEmbeddedStore(o, clock);
    ASSERT_TRUE(s) << s.status().toString();
  }
  {
    // A usage line as written before issue 4 (no hour/month/exp/cap, no record fields).
    std::ofstream out(o.dataDir + "/journal.jsonl", std::ios::app | std::ios::binary);
    out << R"({"op":"usage","rid":"old-1","key":"k-old","acct":"a-old","model":"m",)"
        << R"("day":"2025-01-01","ms":1,"at":)" << clock.nowUnixMs()  // within id retention
        << R"(,"c":{"requests":1,"inputTokens":5,)"
        << R"("outputTokens":6,"cacheCreate5mTokens":0,"cacheCreate1hTokens":0,)"
        << R"("cacheReadTokens":0,"costMicroUsd":7,"billedMicroUsd":8}})"
        << "\n";
  }
  auto s = rg::openEmbeddedStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  rg::UsageStore& u = (*s)->usage();
  TokenCounts old;
  old.requests = 1;
  old.inputTokens = 5;
  old.outputTokens = 6;
  old.costMicroUsd = 7;
  old.billedMicroUsd = 8;
  auto total = u.keyTotal("k-old");
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, old);
  EXPECT_EQ(life(u, UsageDim::kAccount, "a-old"), old);
  EXPECT_EQ(life(u, UsageDim::kModel, "m"), old);
  auto day = u.keyDaily("k-old", "2025-01-01");
  ASSERT_TRUE(day);
  EXPECT_EQ(*day, old);
  auto models = u.keyModelsDaily("k-old", "2025-01-01");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->size(), 1u);
  // Its hour comes from its unixMs in UTC; it had no recent record and gets none.
  EXPECT_EQ(point(u, UsageDim::kKey, "k-old", UsageBucket::kHour, "1970-01-01T00"), old);
  EXPECT_TRUE(recentIds(u, "k-old", 10).empty());
  // Its request id is remembered; a new booking adds to the totals.
  auto again = u.record(makeUsageEvent("old-1", "k-old", "a-old", "m", "2025-01-01T00", 1));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  ASSERT_TRUE(u.record(makeUsageEvent("new-1", "k-old", "a-old", "m", "2025-01-01T00", 1)));
  total = u.keyTotal("k-old");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 2);
  EXPECT_EQ(total->billedMicroUsd, 8 + 2'000'007);
  EXPECT_EQ((*s)->errorCount(), 0u);
}

// What a store shows after moving the usage totals of older versions (k1 of account a1, on
// 2025-01-01 and 2024-12-31, models m1 and m2) into the buckets; the figures the two backends'
// upgrade tests differ in. m1 has 3 requests (300 billed) on 2025-01-01 and 4 (400) overall.
struct MigratedUsage {
  TokenCounts life;  // of the key, its account and its models together
  int64_t dayRequests = 0;
  int64_t dayBilledMicroUsd = 0;
  int64_t m2DayRequests = 0;
  int64_t m2LifeRequests = 0;
};

void expectMigratedUsage(rg::Store& s, const MigratedUsage& want) {
  rg::UsageStore& u = s.usage();
  auto total = u.keyTotal("k1");
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, want.life);
  auto acct = u.accountTotal("a1");
  ASSERT_TRUE(acct);
  EXPECT_EQ(*acct, want.life);
  EXPECT_EQ(life(u, UsageDim::kKeyModel, "k1"), want.life);
  auto day = u.keyDaily("k1", "2025-01-01");
  ASSERT_TRUE(day);
  EXPECT_EQ(day->requests, want.dayRequests);
  EXPECT_EQ(day->billedMicroUsd, want.dayBilledMicroUsd);
  auto older = u.keyDaily("k1", "2024-12-31");
  ASSERT_TRUE(older);
  EXPECT_EQ(older->requests, 1);
  auto models = u.keyModelsDaily("k1", "2025-01-01");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ(models->at("m1").requests, 3);
  EXPECT_EQ(models->at("m1").billedMicroUsd, 300);
  EXPECT_EQ(models->at("m2").requests, want.m2DayRequests);
  EXPECT_EQ(life(u, UsageDim::kModel, "m1").requests, 4);
  EXPECT_EQ(life(u, UsageDim::kModel, "m1").billedMicroUsd, 400);
  EXPECT_EQ(life(u, UsageDim::kModel, "m2").requests, want.m2LifeRequests);
  auto top = u.topKeys(UsageBucket::kDay, {"2025-01-01", "2024-12-31"}, 10);
  ASSERT_TRUE(top);
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].keyId, "k1");
  EXPECT_EQ((*top)[0].billedMicroUsd, want.life.billedMicroUsd);
  EXPECT_EQ(s.errorCount(), 0u);
}

// A snapshot as the previous version compacted it: the older totals (usage.key/acct/day/model,
// which hold every event) next to the bucket aggregates (only the events booked with hour and
// month), then a line booked after the snapshot.
TEST(UsageJournalEmbedded, OlderSnapshotTotalsBecomeLifetimeAndDayBuckets) {
  rg::ManualClock clock;
  TempDir dir;
  rg::EmbeddedOptions o;
  o.dataDir = dir.file("data");
  ASSERT_EQ(::mkdir(o.dataDir.c_str(), 0700), 0);
  auto c = [](int64_t requests, int64_t input, int64_t billed) {
    return R"({"requests":)" + std::to_string(requests) + R"(,"inputTokens":)" +
           std::to_string(input) + R"(,"billedMicroUsd":)" + std::to_string(billed) + "}";
  };
  {
    std::ofstream out(o.dataDir + "/journal.jsonl", std::ios::binary);
    out << R"({"op":"header","v":1})"
        << "\n"
        << R"({"op":"usage.key","id":"k1","c":)" << c(5, 50, 500) << "}\n"
        << R"({"op":"usage.acct","id":"a1","c":)" << c(5, 50, 500) << "}\n"
        << R"({"op":"usage.day","id":"k1","day":"2025-01-01","c":)" << c(4, 40, 400) << "}\n"
        << R"({"op":"usage.day","id":"k1","day":"2024-12-31","c":)" << c(1, 10, 100) << "}\n"
        << R"({"op":"usage.model","id":"k1","day":"2025-01-01","model":"m1","c":)" << c(3, 30, 300)
        << "}\n"
        << R"({"op":"usage.model","id":"k1","day":"2025-01-01","model":"m2","c":)" << c(1, 10, 100)
        << "}\n"
        << R"({"op":"usage.model","id":"k1","day":"2024-12-31","model":"m1","c":)" << c(1, 10, 100)
        << "}\n"
        // The bucket aggregates hold one of the five events (booked with hour/month): m1.
        << R"({"op":"usage.agg","dim":0,"b":3,"bk":"","id":"k1","exp":0,"c":)" << c(1, 10, 100)
        << "}\n"
        << R"({"op":"usage.agg","dim":1,"b":3,"bk":"","id":"a1","exp":0,"c":)" << c(1, 10, 100)
        << "}\n"
        << R"({"op":"usage.agg","dim":2,"b":3,"bk":"","id":"m1","exp":0,"c":)" << c(1, 10, 100)
        << "}\n"
        << R"({"op":"usage.agg","dim":3,"b":3,"bk":"","id":"k1","exp":0,"model":"m1","c":)"
        << c(1, 10, 100) << "}\n"
        << R"({"op":"usage.agg","dim":0,"b":1,"bk":"2025-01-01","id":"k1","exp":)"
        << clock.nowUnixMs() + 86'400'000 << R"(,"c":)" << c(1, 10, 100) << "}\n"
        << R"({"op":"usage.rid","id":"seen","at":)" << clock.nowUnixMs() << "}\n"
        << R"({"op":"usage","rid":"after","key":"k1","acct":"a1","model":"m2",)"
        << R"("day":"2025-01-01","hour":"2025-01-01T10","month":"2025-01","ms":1,"at":)"
        << clock.nowUnixMs() << R"(,"c":)" << c(1, 1, 1) << "}\n";
  }
  MigratedUsage want;
  want.life.requests = 6;  // the five older events and the one booked after the snapshot
  want.life.inputTokens = 51;
  want.life.billedMicroUsd = 501;
  want.dayRequests = 5;
  want.dayBilledMicroUsd = 401;
  want.m2DayRequests = 2;
  // Per model overall: m1 = 1 (bucketed) + 3 (older), m2 = 1 (older) + 1 (after).
  want.m2LifeRequests = 2;
  auto check = [&](rg::Store& s) {
    expectMigratedUsage(s, want);
    auto seen = s.usage().record(makeUsageEvent("seen", "k1", "a1", "m1", "2025-01-01T00", 1));
    ASSERT_TRUE(seen);
    EXPECT_FALSE(*seen);
    EXPECT_EQ(s.errorCount(), 0u);
  };
  {
    auto s = rg::openEmbeddedStore(o, clock);
    ASSERT_TRUE(s) << s.status().toString();
    check(**s);
  }
  // Compacted in the new format (threshold 1 byte: at open), the same totals.
  o.compactThresholdBytes = 1;
  {
    auto s = rg::openEmbeddedStore(o, clock);
    ASSERT_TRUE(s) << s.status().toString();
    check(**s);
  }
  std::string journal = readFile(o.dataDir + "/journal.jsonl");
  EXPECT_EQ(journal.find("usage.key"), std::string::npos);
  o.compactThresholdBytes = 0;
  auto s = rg::openEmbeddedStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  check(**s);
}

TEST(UsageJournalEmbedded, AnotherStoreOnTheDirSeesBucketsAndRecords) {
  rg::ManualClock clock;
  TempDir dir;
  rg::EmbeddedOptions o;
  o.dataDir = dir.file("data");
  auto a = rg::openEmbeddedStore(o, clock);
  auto b = rg::openEmbeddedStore(o, clock);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(
      (*a)->usage().record(makeUsageEvent("r1", "key-1", "acct-1", "m", "2025-05-01T10", 1)));
  ASSERT_TRUE(
      (*b)->usage().record(makeUsageEvent("r2", "key-1", "acct-1", "m", "2025-05-01T10", 10)));
  auto dup = (*b)->usage().record(makeUsageEvent("r1", "key-1", "acct-1", "m", "2025-05-01T10", 1));
  ASSERT_TRUE(dup);
  EXPECT_FALSE(*dup);
  for (rg::Store* s : {a->get(), b->get()}) {
    EXPECT_EQ(point(s->usage(), UsageDim::kKey, "key-1", UsageBucket::kHour, "2025-05-01T10"),
              countsOf(2, 11));
    EXPECT_EQ(life(s->usage(), UsageDim::kModel, "m"), countsOf(2, 11));
    EXPECT_EQ(recentIds(s->usage(), "key-1", 10), (std::vector<std::string>{"r2", "r1"}));
  }
}

// ---- Redis: one round trip per record
// ------------------------------------------------------------

TEST(UsageRecordRedis, RecordIsOneEvalshaRoundTrip) {
  RedisServer server;
  rg::ManualClock clock;
  rg::RedisOptions o;
  o.url = server.url();
  o.keyPrefix = "rt:";
  auto s = rg::openRedisStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  rg::UsageStore& u = (*s)->usage();
  // The first call loads the script (EVALSHA -> NOSCRIPT -> EVAL).
  ASSERT_TRUE(u.record(makeUsageEvent("warm", "key-1", "acct-1", "sonnet", "2025-05-01T10", 1)));
  RawRedis raw(server);
  raw.text("CONFIG RESETSTAT");
  constexpr int kRecords = 20;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(u.record(
        makeUsageEvent("r" + std::to_string(i), "key-1", "acct-1", "sonnet", "2025-05-01T10", 1)));
  }
  std::string stats = raw.text("INFO commandstats");
  // Commands a script runs are counted too; the only top-level command may be EVALSHA, and the
  // rest must be what the script calls (or this raw connection's CONFIG/INFO).
  std::map<std::string, int64_t> calls;
  size_t pos = 0;
  while ((pos = stats.find("cmdstat_", pos)) != std::string::npos) {
    size_t colon = stats.find(':', pos);
    size_t c = stats.find("calls=", colon);
    calls[stats.substr(pos + 8, colon - pos - 8)] = std::stoll(stats.substr(c + 6));
    pos = colon;
  }
  EXPECT_EQ(calls["evalsha"], kRecords);
  // Server time per booking (informational: the script's cost on the request path).
  size_t usec = stats.find("usec_per_call=", stats.find("cmdstat_evalsha:"));
  if (usec != std::string::npos) {
    std::cout << "usage record: EVALSHA usec_per_call="
              << stats.substr(usec + 14, stats.find(',', usec) - usec - 14) << "\n";
  }
  EXPECT_EQ(calls["set"], kRecords);  // the request id marker, inside the script
  EXPECT_EQ(calls["lpush"], kRecords);
  EXPECT_EQ(calls["zincrby"], 3 * kRecords);  // the top-keys index of hour, day, month
  for (const auto& [name, n] : calls) {
    EXPECT_TRUE(name == "evalsha" || name == "set" || name == "hincrby" || name == "pexpire" ||
                name == "zincrby" || name == "lpush" || name == "ltrim" ||
                name.rfind("config", 0) == 0 || name == "info")
        << name << " called " << n << " times";
  }
}

// ---- Upgrades: the usage totals of older versions -----------------------------------------------

// Redis: the hashes of the versions before the time buckets (usage:key/acct/keyday/keymodels),
// next to what the version right before booked in the buckets for its one bucketed event, are
// moved into the buckets once at open, with the embedded backend's semantics (see
// OlderSnapshotTotalsBecomeLifetimeAndDayBuckets), and a marker makes later opens skip the scan.
TEST(UsageMigrationRedis, OlderTotalsMoveIntoTheBucketsOnceAtOpen) {
  RedisServer server;
  rg::ManualClock clock;
  RawRedis raw(server);
  const std::string p = "mig:";
  auto hset = [&](const std::string& key, const std::string& fields) {
    raw.text(("HSET " + p + key + " " + fields).c_str());
  };
  hset("usage:key:k1", "requests 5 inputTokens 50 billedMicroUsd 500");
  hset("usage:acct:a1", "requests 5 inputTokens 50 billedMicroUsd 500");
  hset("usage:keyday:k1:2025-01-01", "requests 4 inputTokens 40 billedMicroUsd 400");
  hset("usage:keyday:k1:2024-12-31", "requests 1 inputTokens 10 billedMicroUsd 100");
  hset("usage:keymodels:k1:2025-01-01",
       "requests:m1 3 inputTokens:m1 30 billedMicroUsd:m1 300 requests:m2 1 inputTokens:m2 10 "
       "billedMicroUsd:m2 100");
  hset("usage:keymodels:k1:2024-12-31", "requests:m1 1 inputTokens:m1 10 billedMicroUsd:m1 100");
  // The one event the version right before booked in the buckets too (m1, on 2025-01-01).
  const char* one = "requests 1 inputTokens 10 billedMicroUsd 100";
  for (const char* k : {"u:k:life:k1", "u:a:life:a1", "u:m:life:m1", "u:k:d:2025-01-01:k1"}) {
    hset(k, one);
  }
  for (const char* k : {"u:km:life:k1", "u:km:d:2025-01-01:k1"}) {
    hset(k, "requests:m1 1 inputTokens:m1 10 billedMicroUsd:m1 100");
  }
  raw.text(("SET " + p + "usage:req:seen 1").c_str());
  rg::RedisOptions o;
  o.url = server.url();
  o.keyPrefix = p;
  MigratedUsage want;
  want.life.requests = 5;
  want.life.inputTokens = 50;
  want.life.billedMicroUsd = 500;
  want.dayRequests = 4;
  want.dayBilledMicroUsd = 400;
  want.m2DayRequests = 1;
  // Per model overall: m1 = 1 (bucketed) + 4 (older) - 1 (the bucketed one is in the older).
  want.m2LifeRequests = 1;
  auto check = [&](rg::Store& s) { expectMigratedUsage(s, want); };
  {
    auto s = rg::openRedisStore(o, clock);
    ASSERT_TRUE(s) << s.status().toString();
    check(**s);
  }
  EXPECT_TRUE(raw.keys(p + "usage:key*").empty());
  EXPECT_TRUE(raw.keys(p + "usage:acct*").empty());
  EXPECT_EQ(raw.keys(p + "usage:req:*").size(), 1u);             // idempotency markers stay
  EXPECT_GT(raw.integer("PTTL", p + "u:k:d:2024-12-31:k1"), 0);  // a new day bucket expires
  // Reopened: unchanged, and no second scan (an old-format hash written now stays unread).
  hset("usage:key:k2", "requests 7");
  auto s = rg::openRedisStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  check(**s);
  auto k2 = (*s)->usage().keyTotal("k2");
  ASSERT_TRUE(k2);
  EXPECT_EQ(k2->requests, 0);
  EXPECT_EQ(raw.keys(p + "usage:key:k2").size(), 1u);
}

// ---- Embedded: idempotency memory, settle failures, format versions ----------------------------

std::string writeJournal(const TempDir& dir, const std::string& text) {
  std::string data = dir.file("data");
  ::mkdir(data.c_str(), 0700);
  std::ofstream out(data + "/journal.jsonl", std::ios::binary | std::ios::trunc);
  out << text;
  return data;
}

// Request ids are remembered for 24 hours however many are booked in between (far more than the
// 50,000 of the count-bounded memory before).
TEST(UsageIdsEmbedded, RememberedForADayNotForACount) {
  rg::ManualClock clock;
  TempDir dir;
  std::string text = "{\"op\":\"header\",\"v\":2}\n";
  constexpr int kIds = 60'000;
  for (int i = 0; i < kIds; ++i) {
    text += "{\"op\":\"usage.rid\",\"id\":\"id" + std::to_string(i) +
            "\",\"at\":" + std::to_string(clock.nowUnixMs() - 1000) + "}\n";
  }
  rg::EmbeddedOptions o;
  o.dataDir = writeJournal(dir, text);
  auto s = rg::openEmbeddedStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  rg::UsageStore& u = (*s)->usage();
  auto first = u.record(makeUsageEvent("id0", "k", "a", "m", "2025-05-01T10", 1));
  ASSERT_TRUE(first);
  EXPECT_FALSE(*first);
  clock.advanceMs(24LL * 3600 * 1000 - 2000);  // still within the day
  auto later = u.record(makeUsageEvent("id1", "k", "a", "m", "2025-05-01T10", 1));
  ASSERT_TRUE(later);
  EXPECT_FALSE(*later);
  clock.advanceMs(2000);  // past it: forgotten
  auto again = u.record(makeUsageEvent("id0", "k", "a", "m", "2025-05-01T10", 1));
  ASSERT_TRUE(again);
  EXPECT_TRUE(*again);
}

// A settle that cannot be booked (here: a newer version rewrote the journal) keeps the
// reservation, as the Redis script does when it fails.
TEST(AdmissionEmbedded, SettleThatCannotBookKeepsTheReservation) {
  rg::ManualClock clock;
  TempDir dir;
  rg::EmbeddedOptions o;
  o.dataDir = dir.file("data");
  auto s = rg::openEmbeddedStore(o, clock);
  ASSERT_TRUE(s) << s.status().toString();
  rg::AdmitRequest r;
  r.keyId = "k";
  r.requestId = "r1";
  r.ttlMs = 60'000;
  r.limits.concurrency = 1;
  r.estTokens = 5;
  auto a = (*s)->admission().admit(r);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->verdict, rg::AdmitVerdict::kAdmitted);
  {
    std::ofstream out(o.dataDir + "/journal.new", std::ios::binary);
    out << "{\"op\":\"header\",\"v\":99}\n";
  }
  ASSERT_EQ(::rename((o.dataDir + "/journal.new").c_str(), (o.dataDir + "/journal.jsonl").c_str()),
            0);
  rg::UsageEvent ev = makeUsageEvent("r1", "k", "a", "m", "2025-05-01T10", 1);
  rg::SettleRequest sr;
  sr.keyId = "k";
  sr.requestId = "r1";
  sr.usage = &ev;
  auto st = (*s)->admission().settle(sr);
  ASSERT_FALSE(st);
  auto state = (*s)->admission().state("k", "");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->inFlight, 1);
  EXPECT_EQ(state->reservedTokens, 5);
  r.requestId = "r2";
  a = (*s)->admission().admit(r);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->verdict, rg::AdmitVerdict::kConcurrency);
}

TEST(JournalVersionEmbedded, VersionOneIsReadAndRewrittenAsTwoANewerOneIsRefused) {
  rg::ManualClock clock;
  TempDir dir;
  rg::EmbeddedOptions o;
  o.dataDir = writeJournal(dir,
                           "{\"op\":\"header\",\"v\":1}\n"
                           "{\"op\":\"set.put\",\"k\":\"s\",\"v\":\"kept\",\"exp\":0}\n");
  {
    auto s = rg::openEmbeddedStore(o, clock);
    ASSERT_TRUE(s) << s.status().toString();
    auto v = (*s)->settings().get("s");
    ASSERT_TRUE(v && v->has_value());
    EXPECT_EQ(**v, "kept");
  }
  // Rewritten with this version's header, so that an older build refuses it rather than
  // skipping the lines it does not know.
  std::string journal = readFile(o.dataDir + "/journal.jsonl");
  EXPECT_EQ(journal.rfind("{\"op\":\"header\",\"v\":2}\n", 0), 0u) << journal;
  {
    auto s = rg::openEmbeddedStore(o, clock);
    ASSERT_TRUE(s) << s.status().toString();
    auto v = (*s)->settings().get("s");
    ASSERT_TRUE(v && v->has_value());
  }
  // A journal of a newer version: refused at open with a message that says so.
  writeJournal(dir, "{\"op\":\"header\",\"v\":3}\n");
  auto s = rg::openEmbeddedStore(o, clock);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), rg::Code::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("version 3 is not supported"), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("newer relaygate"), std::string::npos);
}

}  // namespace
}  // namespace rgtest
