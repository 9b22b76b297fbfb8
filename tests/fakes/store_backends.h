#pragma once
// Stores of both backends for the tests that run against each of them: one fixture that opens a
// fresh store of the backend a test is parameterised with ("embedded" in a temp dir, "redis" on
// a real redis-server under a key prefix of the test's own), driven by a manual clock; the usage
// event the gateway books, with its time buckets in a given zone; and a handle on the storage of
// a gateway process an end-to-end test runs (gateway_process.h).
//
// Header-only on purpose: rg_test_support (tests/fakes/*.cpp) may not depend on host code, while
// this helper needs the storage library, which every binary that includes it links anyway.

#include <cstdint>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/time_zone.h"
#include "fakes/gateway_process.h"
#include "fakes/redis_harness.h"
#include "fakes/support.h"
#include "storage/store.h"

namespace rgtest {

// The redis-server of this test process, started on first use and stopped when the process
// exits: the suites share it, and every test keeps to its own key prefix.
inline RedisServer& backendRedis() {
  static RedisServer server;
  return server;
}

// Opens a store of `backend` ("redis" with `redis`, "embedded" with `embedded`); a test failure
// and nullptr when it cannot be opened.
inline rg::StorePtr openStoreOf(const std::string& backend, const rg::RedisOptions& redis,
                                const rg::EmbeddedOptions& embedded, const rg::Clock& clock) {
  rg::StatusOr<rg::StorePtr> s = backend == "redis" ? rg::openRedisStore(redis, clock)
                                                    : rg::openEmbeddedStore(embedded, clock);
  EXPECT_TRUE(s) << backend << ": " << s.status().toString();
  return s ? std::move(s.value()) : nullptr;
}

// The storage part of an end-to-end test's gateway YAML on `backend`: the data under `dir`, or
// this process's redis-server under a key prefix of the test's own (testKeyPrefix(tag)).
inline GatewayYaml gatewayStorageYaml(const std::string& backend, const TempDir& dir,
                                      const std::string& tag) {
  GatewayYaml y;
  y.backend = backend;
  y.dataDir = dir.file("data");
  y.redisUrl = backend == "redis" ? backendRedis().url() : std::string();
  y.keyPrefix = testKeyPrefix(tag);
  return y;
}

// A fresh handle on the storage of a gateway that runs with `cfg` (the embedded journal is
// re-read on open), to check what the gateway booked.
inline rg::StorePtr openGatewayStore(const GatewayYaml& cfg) {
  rg::RedisOptions ro;
  ro.url = cfg.redisUrl;
  ro.keyPrefix = cfg.keyPrefix;
  rg::EmbeddedOptions eo;
  eo.dataDir = cfg.dataDir;
  return openStoreOf(cfg.backend, ro, eo, rg::SystemClock::instance());
}

// A test parameterised with the backend name. SetUp opens store_ (a fatal failure when it cannot);
// a derived SetUp that must set the clock first does so and then calls StoreBackendTest::SetUp().
class StoreBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  // `prefixTag` starts the Redis key prefix (testKeyPrefix), so suites never share keys.
  explicit StoreBackendTest(std::string prefixTag, int redisPoolSize = 8)
      : prefixTag_(std::move(prefixTag)), redisPoolSize_(redisPoolSize) {}

  void SetUp() override {
    prefix_ = testKeyPrefix(prefixTag_);
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  bool redis() const { return GetParam() == "redis"; }

  // Another store on the same data: the same directory or the same server and prefix. An
  // embedded store with a compaction threshold of 1 byte compacts at open.
  rg::StorePtr open(int64_t compactBytes = 0) {
    rg::RedisOptions ro;
    if (redis()) {
      ro.url = backendRedis().url();  // only a redis test starts the server
    }
    ro.keyPrefix = prefix_;
    ro.poolSize = redisPoolSize_;
    rg::EmbeddedOptions eo;
    eo.dataDir = dir_.file("data");
    eo.compactThresholdBytes = compactBytes;
    return openStoreOf(GetParam(), ro, eo, clock_);
  }

  rg::ManualClock clock_;
  TempDir dir_;
  std::string prefix_;
  rg::StorePtr store_;

 private:
  std::string prefixTag_;
  int redisPoolSize_;
};

// The counts of makeUsageEvent(..., base) times `requests`: every field a multiple of `base`, so
// that sums name their parts (money beyond 32 bits for large bases).
inline rg::TokenCounts countsOf(int64_t requests, int64_t base) {
  rg::TokenCounts c;
  c.requests = requests;
  c.inputTokens = base;
  c.outputTokens = base * 2;
  c.cacheCreate5mTokens = base * 3;
  c.cacheCreate1hTokens = base * 4;
  c.cacheReadTokens = base * 5;
  c.costMicroUsd = base * 1'000'003;
  c.billedMicroUsd = base * 2'000'007;
  return c;
}

// An event with every field set and the counts countsOf(1, base). `when` is its hour bucket
// "YYYY-MM-DDTHH" (its day and month taken from it), or a day "YYYY-MM-DD" alone: the event then
// carries its day only, as the callers before the time buckets booked.
inline rg::UsageEvent makeUsageEvent(const std::string& rid, const std::string& key,
                                     const std::string& acct, const std::string& model,
                                     const std::string& when, int64_t base) {
  rg::UsageEvent ev;
  ev.requestId = rid;
  ev.keyId = key;
  ev.accountId = acct;
  ev.model = model;
  if (when.size() > 10) {
    ev.hour = when;
    ev.day = when.substr(0, 10);
    ev.month = when.substr(0, 7);
  } else {
    ev.day = when;
  }
  ev.unixMs = 1'700'000'000'000 + base;
  ev.provider = "claude";
  ev.upstreamModel = model + "-upstream";
  ev.status = 200;
  ev.stream = true;
  ev.firstByteMs = 120 + base;
  ev.totalMs = 900 + base;
  ev.client = "claude-cli";
  ev.counts = countsOf(1, base);
  return ev;
}

// A finished, streamed request of `counts` at `unixMs`, with its hour, day and month buckets in
// `tz` (as the gateway computes them).
inline rg::UsageEvent zonedUsageEvent(const rg::TimeZone& tz, const std::string& requestId,
                                      const std::string& keyId, int64_t unixMs,
                                      const rg::TokenCounts& counts,
                                      const std::string& model = "claude-sonnet-4-5",
                                      const std::string& account = "acc-1") {
  rg::UsageEvent e;
  e.requestId = requestId;
  e.keyId = keyId;
  e.accountId = account;
  e.model = model;
  e.unixMs = unixMs;
  e.hour = tz.hourBucket(unixMs);
  e.day = tz.dayBucket(unixMs);
  e.month = tz.monthBucket(unixMs);
  e.provider = "claude";
  e.status = 200;
  e.stream = true;
  e.totalMs = 1500;
  e.firstByteMs = 300;
  e.counts = counts;
  return e;
}

}  // namespace rgtest
