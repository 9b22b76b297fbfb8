// One conformance suite for both Store backends (embedded in a temp dir, redis against a real
// redis-server), plus tests of what only one backend has: the journal and its lock, reconnects,
// prefixes and passwords.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
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

using rg::Code;

// Polls `cond` until it holds or `ms` pass.
bool eventually(const std::function<bool()>& cond, int ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::yield();
  }
  return cond();
}

rg::ApiKeyRecord makeKey(const std::string& id, const std::string& hash, int64_t createdAt) {
  rg::ApiKeyRecord r;
  r.id = id;
  r.name = "key " + id;
  r.hash = hash;
  r.createdAtMs = createdAt;
  r.updatedAtMs = createdAt;
  r.expiresAtMs = createdAt + 1000;
  r.permissions = {"claude", "gemini"};
  r.concurrencyLimit = 3;
  r.rateWindowMinutes = 5;
  r.rateRequests = 10;
  r.rateTokens = 10000;
  r.modelMode = rg::ModelFilterMode::kDeny;
  r.models = {"claude-opus-4", "name with \"quotes\"\nand newline"};
  return r;
}

void expectSameKey(const rg::ApiKeyRecord& a, const rg::ApiKeyRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.enabled, b.enabled);
  EXPECT_EQ(a.createdAtMs, b.createdAtMs);
  EXPECT_EQ(a.updatedAtMs, b.updatedAtMs);
  EXPECT_EQ(a.expiresAtMs, b.expiresAtMs);
  EXPECT_EQ(a.permissions, b.permissions);
  EXPECT_EQ(a.concurrencyLimit, b.concurrencyLimit);
  EXPECT_EQ(a.rateWindowMinutes, b.rateWindowMinutes);
  EXPECT_EQ(a.rateRequests, b.rateRequests);
  EXPECT_EQ(a.rateTokens, b.rateTokens);
  EXPECT_EQ(a.modelMode, b.modelMode);
  EXPECT_EQ(a.models, b.models);
}

// What a key record written before the cost-limit fields reads back as.
void expectKeyCostDefaults(const rg::ApiKeyRecord& r) {
  EXPECT_EQ(r.rateCostMicroUsd, 0);
  EXPECT_EQ(r.dailyCostMicroUsd, 0);
  EXPECT_EQ(r.totalCostMicroUsd, 0);
  EXPECT_EQ(r.weeklyCostMicroUsd, 0);
  EXPECT_EQ(r.weeklyResetDay, 1);
  EXPECT_EQ(r.weeklyResetHour, 0);
  EXPECT_EQ(r.ratePpm, 1'000'000);
  EXPECT_EQ(r.activationMs, 0);
  EXPECT_EQ(r.activatedAtMs, 0);
}

rg::AccountRecord makeAccount(const std::string& id, int64_t createdAt) {
  rg::AccountRecord r;
  r.id = id;
  r.name = "acct " + id;
  r.type = "claude-console";
  r.baseUrl = "https://api.example.test";
  r.secretSealed = "v1:abcd:c2VhbGVk";
  r.priority = 20;
  r.schedulable = false;
  r.status = "error";
  r.statusReason = "upstream said 401";
  r.createdAtMs = createdAt;
  r.updatedAtMs = createdAt + 1;
  r.lastUsedAtMs = 0;
  r.provider = "claude";
  r.sharing = "dedicated";
  r.groups = {"team-a", "group with \"quotes\""};
  r.concurrencyLimit = 4;
  r.modelMapping = {{"claude-sonnet-4", "claude-sonnet-4"}, {"opus", "claude-opus-4-1:beta"}};
  r.proxyUrl = "socks5://user@proxy.example.test:1080";
  r.subscriptionExpiresAtMs = createdAt + 86'400'000;
  r.settingsJson = R"({"region":"us-east-1","note":"a\nb"})";
  r.secretsSealed = {{"refresh_token", "v1:abcd:cmVmcmVzaA=="},
                     {"proxy_password", "v1:abcd:cHJveHk="}};
  return r;
}

void expectSameAccount(const rg::AccountRecord& a, const rg::AccountRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.baseUrl, b.baseUrl);
  EXPECT_EQ(a.secretSealed, b.secretSealed);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.schedulable, b.schedulable);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.statusReason, b.statusReason);
  EXPECT_EQ(a.createdAtMs, b.createdAtMs);
  EXPECT_EQ(a.updatedAtMs, b.updatedAtMs);
  EXPECT_EQ(a.lastUsedAtMs, b.lastUsedAtMs);
  EXPECT_EQ(a.provider, b.provider);
  EXPECT_EQ(a.sharing, b.sharing);
  EXPECT_EQ(a.groups, b.groups);
  EXPECT_EQ(a.concurrencyLimit, b.concurrencyLimit);
  EXPECT_EQ(a.modelMapping, b.modelMapping);
  EXPECT_EQ(a.proxyUrl, b.proxyUrl);
  EXPECT_EQ(a.subscriptionExpiresAtMs, b.subscriptionExpiresAtMs);
  EXPECT_EQ(a.settingsJson, b.settingsJson);
  EXPECT_EQ(a.secretsSealed, b.secretsSealed);
}

// What a record written before the full account model reads back as.
void expectAccountModelDefaults(const rg::AccountRecord& r) {
  EXPECT_EQ(r.provider, "");
  EXPECT_EQ(r.sharing, "shared");
  EXPECT_TRUE(r.groups.empty());
  EXPECT_EQ(r.concurrencyLimit, 0);
  EXPECT_TRUE(r.modelMapping.empty());
  EXPECT_EQ(r.proxyUrl, "");
  EXPECT_EQ(r.subscriptionExpiresAtMs, 0);
  EXPECT_EQ(r.settingsJson, "{}");
  EXPECT_TRUE(r.secretsSealed.empty());
}

// An admission of request `rid` for a minute that opens a one-minute window of `windowRequests`
// requests (and holds one of `concurrency` slots when that is set).
rg::AdmitRequest windowAdmission(const std::string& key, const std::string& rid,
                                 int64_t windowRequests, int64_t concurrency = 0) {
  rg::AdmitRequest req;
  req.keyId = key;
  req.requestId = rid;
  req.ttlMs = 60000;
  req.limits.concurrency = concurrency;
  req.limits.windowMs = 60000;
  req.limits.windowRequests = windowRequests;
  return req;
}

// ---- The shared suite ---------------------------------------------------------------------------

class Conformance : public StoreBackendTest {
 protected:
  Conformance() : StoreBackendTest("ct", /*redisPoolSize=*/4) {}
};

TEST_P(Conformance, BackendNameAndPing) {
  EXPECT_EQ(std::string(store_->backendName()), GetParam());
  EXPECT_TRUE(store_->ping());
  EXPECT_EQ(store_->errorCount(), 0u);
}

TEST_P(Conformance, KeyCreateGetListUpdateRemove) {
  rg::KeyStore& keys = store_->keys();
  auto a = makeKey("id-b", "hash-a", 200);
  auto b = makeKey("id-a", "hash-b", 200);  // same createdAt: ordered by id
  auto c = makeKey("id-c", "hash-c", 100);
  ASSERT_TRUE(keys.create(a));
  ASSERT_TRUE(keys.create(b));
  ASSERT_TRUE(keys.create(c));

  auto byId = keys.getById("id-b");
  ASSERT_TRUE(byId);
  ASSERT_TRUE(byId->has_value());
  expectSameKey(**byId, a);
  auto byHash = keys.getByHash("hash-b");
  ASSERT_TRUE(byHash);
  ASSERT_TRUE(byHash->has_value());
  expectSameKey(**byHash, b);

  auto list = keys.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, "id-c");
  EXPECT_EQ((*list)[1].id, "id-a");
  EXPECT_EQ((*list)[2].id, "id-b");

  a.name = "renamed";
  a.enabled = false;
  a.models = {};
  a.permissions = {"claude"};
  a.modelMode = rg::ModelFilterMode::kAllow;
  ASSERT_TRUE(keys.update(a));
  auto updated = keys.getByHash("hash-a");
  ASSERT_TRUE(updated && updated->has_value());
  expectSameKey(**updated, a);

  auto changedHash = a;
  changedHash.hash = "hash-z";
  EXPECT_EQ(keys.update(changedHash).code(), Code::kInvalidArgument);
  EXPECT_EQ(keys.update(makeKey("nope", "hash-n", 1)).code(), Code::kNotFound);

  ASSERT_TRUE(keys.remove("id-b"));
  EXPECT_EQ(keys.remove("id-b").code(), Code::kNotFound);
  auto gone = keys.getById("id-b");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  auto goneHash = keys.getByHash("hash-a");
  ASSERT_TRUE(goneHash);
  EXPECT_FALSE(goneHash->has_value());
  list = keys.list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 2u);
  // The hash of a removed key is free again.
  EXPECT_TRUE(keys.create(makeKey("id-d", "hash-a", 300)));
}

TEST_P(Conformance, KeyDuplicatesAndMissing) {
  rg::KeyStore& keys = store_->keys();
  ASSERT_TRUE(keys.create(makeKey("k1", "h1", 1)));
  EXPECT_EQ(keys.create(makeKey("k1", "h2", 1)).code(), Code::kAlreadyExists);
  EXPECT_EQ(keys.create(makeKey("k2", "h1", 1)).code(), Code::kAlreadyExists);
  auto k2 = keys.getById("k2");
  ASSERT_TRUE(k2);
  EXPECT_FALSE(k2->has_value());  // a rejected create leaves nothing behind
  auto h2 = keys.getByHash("h2");
  ASSERT_TRUE(h2);
  EXPECT_FALSE(h2->has_value());
  auto none = keys.getByHash("unknown");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST_P(Conformance, AccountCrudAndTouch) {
  rg::AccountStore& accts = store_->accounts();
  auto a = makeAccount("acct-2", 50);
  auto b = makeAccount("acct-1", 60);
  ASSERT_TRUE(accts.create(a));
  ASSERT_TRUE(accts.create(b));
  EXPECT_EQ(accts.create(a).code(), Code::kAlreadyExists);

  auto got = accts.get("acct-2");
  ASSERT_TRUE(got && got->has_value());
  expectSameAccount(**got, a);
  auto list = accts.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "acct-2");
  EXPECT_EQ((*list)[1].id, "acct-1");

  a.status = "active";
  a.statusReason = "";
  a.schedulable = true;
  a.priority = 1;
  a.groups.clear();
  a.modelMapping.clear();
  a.secretsSealed.erase("proxy_password");
  a.proxyUrl = "";
  a.sharing = "shared";
  a.settingsJson = R"({"deployment":"gpt-4o","apiVersion":"2024-10-21"})";
  ASSERT_TRUE(accts.update(a));
  got = accts.get("acct-2");
  ASSERT_TRUE(got && got->has_value());
  expectSameAccount(**got, a);
  EXPECT_EQ(accts.update(makeAccount("missing", 1)).code(), Code::kNotFound);

  ASSERT_TRUE(accts.touchLastUsed("acct-2", 1'700'000'123'456));
  got = accts.get("acct-2");
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->lastUsedAtMs, 1'700'000'123'456);
  EXPECT_EQ((*got)->name, a.name);
  EXPECT_EQ(accts.touchLastUsed("missing", 5).code(), Code::kNotFound);

  ASSERT_TRUE(accts.remove("acct-2"));
  EXPECT_EQ(accts.remove("acct-2").code(), Code::kNotFound);
  got = accts.get("acct-2");
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
  list = accts.list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
}

TEST_P(Conformance, UsageAggregatesAndIdempotency) {
  rg::UsageStore& u = store_->usage();
  auto e1 = makeUsageEvent("req-1", "key-1", "acct-1", "claude-sonnet", "2025-01-01", 10);
  auto e2 = makeUsageEvent("req-2", "key-1", "acct-1", "claude-haiku", "2025-01-01", 100);
  auto e3 = makeUsageEvent("req-3", "key-1", "acct-2", "claude-sonnet", "2025-01-02", 1000);
  auto r1 = u.record(e1);
  ASSERT_TRUE(r1);
  EXPECT_TRUE(*r1);
  ASSERT_TRUE(u.record(e2));
  ASSERT_TRUE(u.record(e3));

  // The same request id again books nothing, even with other counts.
  auto again = e1;
  again.counts.inputTokens = 999999;
  auto r1b = u.record(again);
  ASSERT_TRUE(r1b);
  EXPECT_FALSE(*r1b);

  auto total = u.keyTotal("key-1");
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, countsOf(3, 1110));
  EXPECT_EQ(total->allTokens(), 1110 * 15);
  auto day1 = u.keyDaily("key-1", "2025-01-01");
  ASSERT_TRUE(day1);
  EXPECT_EQ(*day1, countsOf(2, 110));
  auto day2 = u.keyDaily("key-1", "2025-01-02");
  ASSERT_TRUE(day2);
  EXPECT_EQ(*day2, countsOf(1, 1000));
  auto models = u.keyModelsDaily("key-1", "2025-01-01");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ(models->at("claude-sonnet"), countsOf(1, 10));
  EXPECT_EQ(models->at("claude-haiku"), countsOf(1, 100));
  auto a1 = u.accountTotal("acct-1");
  ASSERT_TRUE(a1);
  EXPECT_EQ(*a1, countsOf(2, 110));
  auto a2 = u.accountTotal("acct-2");
  ASSERT_TRUE(a2);
  EXPECT_EQ(*a2, countsOf(1, 1000));

  // Unknown ids are zero, not errors.
  auto none = u.keyTotal("nobody");
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, rg::TokenCounts());
  auto noModels = u.keyModelsDaily("key-1", "1999-01-01");
  ASSERT_TRUE(noModels);
  EXPECT_TRUE(noModels->empty());
}

TEST_P(Conformance, UsageCostsAreSummedAndBookedOnce) {
  rg::UsageStore& u = store_->usage();
  auto e1 = makeUsageEvent("cost-1", "key-c", "acct-c", "claude-sonnet", "2025-03-01", 10);
  e1.counts.costMicroUsd = 1'234;
  e1.counts.billedMicroUsd = 2'468;
  auto e2 = makeUsageEvent("cost-2", "key-c", "acct-c", "claude-haiku", "2025-03-01", 20);
  e2.counts.costMicroUsd = 7'000'000'000;  // $7,000: beyond 32 bits
  e2.counts.billedMicroUsd = 7'000'000'001;
  ASSERT_TRUE(u.record(e1));
  ASSERT_TRUE(u.record(e2));
  // A replay with another cost books nothing.
  auto again = e1;
  again.counts.costMicroUsd = 999;
  again.counts.billedMicroUsd = 999;
  auto r = u.record(again);
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);

  rg::TokenCounts both = countsOf(2, 30);
  both.costMicroUsd = 7'000'001'234;
  both.billedMicroUsd = 7'000'002'469;
  rg::TokenCounts first = countsOf(1, 10);
  first.costMicroUsd = 1'234;
  first.billedMicroUsd = 2'468;
  auto check = [&](rg::Store& st) {
    auto total = st.usage().keyTotal("key-c");
    ASSERT_TRUE(total);
    EXPECT_EQ(*total, both);
    EXPECT_EQ(total->allTokens(), 30 * 15);  // money is not tokens
    auto day = st.usage().keyDaily("key-c", "2025-03-01");
    ASSERT_TRUE(day);
    EXPECT_EQ(*day, both);
    auto acct = st.usage().accountTotal("acct-c");
    ASSERT_TRUE(acct);
    EXPECT_EQ(*acct, both);
    auto models = st.usage().keyModelsDaily("key-c", "2025-03-01");
    ASSERT_TRUE(models);
    ASSERT_EQ(models->size(), 2u);
    EXPECT_EQ(models->at("claude-sonnet"), first);
    EXPECT_EQ(models->at("claude-haiku").costMicroUsd, 7'000'000'000);
    EXPECT_EQ(models->at("claude-haiku").billedMicroUsd, 7'000'000'001);
  };
  check(*store_);
  // The same totals from a fresh store object (journal replay / the Redis hashes).
  store_.reset();
  rg::StorePtr reopened = open();
  ASSERT_NE(reopened, nullptr);
  check(*reopened);
}

TEST_P(Conformance, UsageModelNamesWithColons) {
  auto ev = makeUsageEvent("req-x", "key-9", "acct-9", "vendor:model:v2", "2025-02-02", 7);
  ASSERT_TRUE(store_->usage().record(ev));
  auto models = store_->usage().keyModelsDaily("key-9", "2025-02-02");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ(models->at("vendor:model:v2"), countsOf(1, 7));
}

TEST_P(Conformance, LeaseLimitReleaseRenewExpiry) {
  rg::LimitStore& l = store_->limits();
  for (int i = 0; i < 3; ++i) {
    auto r = l.acquireLease("key:k", "h" + std::to_string(i), 3, 10000);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->acquired);
    EXPECT_EQ(r->count, i + 1);
  }
  auto full = l.acquireLease("key:k", "h3", 3, 10000);
  ASSERT_TRUE(full);
  EXPECT_FALSE(full->acquired);
  EXPECT_EQ(full->count, 3);
  // A holder asking again keeps its single slot.
  auto again = l.acquireLease("key:k", "h0", 3, 10000);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->acquired);
  EXPECT_EQ(again->count, 3);

  ASSERT_TRUE(l.releaseLease("key:k", "h1"));
  auto cnt = l.leaseCount("key:k");
  ASSERT_TRUE(cnt);
  EXPECT_EQ(*cnt, 2);
  auto now = l.acquireLease("key:k", "h3", 3, 10000);
  ASSERT_TRUE(now);
  EXPECT_TRUE(now->acquired);

  // Another scope is independent; limit <= 0 is unlimited.
  for (int i = 0; i < 10; ++i) {
    auto r = l.acquireLease("other", "x" + std::to_string(i), 0, 10000);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->acquired);
  }
  cnt = l.leaseCount("other");
  ASSERT_TRUE(cnt);
  EXPECT_EQ(*cnt, 10);

  // Expiry: h0 renewed at +6 s lives to +16 s; the others (expiring at +10 s) die.
  clock_.advanceMs(6000);
  auto renewed = l.renewLease("key:k", "h0", 10000);
  ASSERT_TRUE(renewed);
  EXPECT_TRUE(*renewed);
  clock_.advanceMs(4001);
  cnt = l.leaseCount("key:k");
  ASSERT_TRUE(cnt);
  EXPECT_EQ(*cnt, 1);
  auto dead = l.renewLease("key:k", "h2", 10000);
  ASSERT_TRUE(dead);
  EXPECT_FALSE(*dead);
  clock_.advanceMs(6000);
  cnt = l.leaseCount("key:k");
  ASSERT_TRUE(cnt);
  EXPECT_EQ(*cnt, 0);
  // A slot freed by expiry can be taken.
  auto fresh = l.acquireLease("key:k", "h9", 1, 10000);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(fresh->acquired);
  EXPECT_EQ(fresh->count, 1);
  // Releasing what is not held is fine.
  EXPECT_TRUE(l.releaseLease("key:k", "never"));
  EXPECT_TRUE(l.releaseLease("no-scope", "never"));
}

TEST_P(Conformance, ConcurrentAcquireNeverExceedsLimit) {
  constexpr int kThreads = 16;
  constexpr int kLimit = 5;
  constexpr int kRounds = 40;
  std::atomic<int> inFlight{0};
  std::atomic<int> maxInFlight{0};
  std::atomic<int> acquiredTotal{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        std::string holder = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto r = store_->limits().acquireLease("key:conc", holder, kLimit, 60000);
        if (!r) {
          errors++;
          continue;
        }
        if (!r->acquired) {
          continue;
        }
        if (r->count > kLimit) {
          errors++;
        }
        int n = ++inFlight;
        int seen = maxInFlight.load();
        while (n > seen && !maxInFlight.compare_exchange_weak(seen, n)) {
        }
        acquiredTotal++;
        std::this_thread::yield();
        --inFlight;
        if (!store_->limits().releaseLease("key:conc", holder)) {
          errors++;
        }
      }
    });
  }
  // And a burst that holds: exactly kLimit of 16 distinct holders get in.
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LE(maxInFlight.load(), kLimit);
  EXPECT_GT(acquiredTotal.load(), 0);

  std::atomic<int> got{0};
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_->limits().acquireLease("key:burst", "b" + std::to_string(t), kLimit, 60000);
      if (r && r->acquired) {
        got++;
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(got.load(), kLimit);
  auto cnt = store_->limits().leaseCount("key:burst");
  ASSERT_TRUE(cnt);
  EXPECT_EQ(*cnt, kLimit);
}

TEST_P(Conformance, KvAndSettings) {
  for (rg::KvStore* kv : {&store_->settings(), &store_->pluginKv()}) {
    auto missing = kv->get("a");
    ASSERT_TRUE(missing);
    EXPECT_FALSE(missing->has_value());
    std::string binary("bin\0ary\n\xff", 9);
    ASSERT_TRUE(kv->set("a", binary, 0));
    auto got = kv->get("a");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ(**got, binary);
    ASSERT_TRUE(kv->set("a", "two", 0));
    got = kv->get("a");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ(**got, "two");
    ASSERT_TRUE(kv->del("a"));
    got = kv->get("a");
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->has_value());
    EXPECT_TRUE(kv->del("never-set"));
  }
  // The two namespaces are separate.
  ASSERT_TRUE(store_->settings().set("same", "settings", 0));
  ASSERT_TRUE(store_->pluginKv().set("same", "plugin", 0));
  auto s = store_->settings().get("same");
  ASSERT_TRUE(s && s->has_value());
  EXPECT_EQ(**s, "settings");
}

TEST_P(Conformance, KvTtlExpires) {
  rg::KvStore& kv = store_->pluginKv();
  ASSERT_TRUE(kv.set("ttl", "v", 300));
  ASSERT_TRUE(kv.set("forever", "v", 0));
  auto got = kv.get("ttl");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->has_value());
  // The embedded backend expires by the injected clock; Redis by its own clock (real time).
  clock_.advanceMs(301);
  EXPECT_TRUE(eventually([&] {
    auto g = kv.get("ttl");
    return g && !g->has_value();
  }));
  auto forever = kv.get("forever");
  ASSERT_TRUE(forever);
  EXPECT_TRUE(forever->has_value());
}

// ---- Scheduler state ----------------------------------------------------------------------------

rg::CooldownRecord makeCooldown(const std::string& acct, const std::string& scope, int64_t until,
                                const std::string& reason = "429 from upstream") {
  rg::CooldownRecord r;
  r.accountId = acct;
  r.scope = scope;
  r.untilMs = until;
  r.markedAtMs = until - 60000;
  r.errorClass = "rate_limited";
  r.reason = reason;
  r.upstreamStatus = 429;
  return r;
}

// "<accountId>/<scope>" of each record, in list order.
std::vector<std::string> cooldownKeys(rg::SchedStore& s) {
  auto l = s.listCooldowns();
  EXPECT_TRUE(l) << l.status().toString();
  std::vector<std::string> out;
  if (l) {
    for (const rg::CooldownRecord& r : *l) {
      out.push_back(r.accountId + "/" + r.scope);
    }
  }
  return out;
}

std::optional<std::string> stickyAccount(rg::SchedStore& s, const std::string& hash) {
  auto g = s.getSticky(hash);
  EXPECT_TRUE(g) << g.status().toString();
  if (!g || !g->has_value()) {
    return std::nullopt;
  }
  return (*g)->accountId;
}

TEST_P(Conformance, CooldownSetReplaceListSortedAndExpiry) {
  rg::SchedStore& s = store_->sched();
  int64_t t0 = clock_.nowUnixMs();
  EXPECT_TRUE(cooldownKeys(s).empty());
  ASSERT_TRUE(s.setCooldown(makeCooldown("b", "", t0 + 10000)));
  ASSERT_TRUE(s.setCooldown(makeCooldown("a", "sonnet", t0 + 5000)));
  ASSERT_TRUE(s.setCooldown(makeCooldown("a", "", t0 + 20000)));
  ASSERT_TRUE(s.setCooldown(makeCooldown("a", "opus", t0 + 30000)));
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"a/", "a/opus", "a/sonnet", "b/"}));

  auto l = s.listCooldowns();
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 4u);
  const rg::CooldownRecord& opus = (*l)[1];
  EXPECT_EQ(opus.untilMs, t0 + 30000);
  EXPECT_EQ(opus.markedAtMs, t0 + 30000 - 60000);
  EXPECT_EQ(opus.errorClass, "rate_limited");
  EXPECT_EQ(opus.reason, "429 from upstream");
  EXPECT_EQ(opus.upstreamStatus, 429);

  // Replacing keeps one record per (account, scope), with the new fields.
  rg::CooldownRecord again = makeCooldown("a", "sonnet", t0 + 40000, "overloaded \"529\"\n");
  again.errorClass = "overloaded";
  again.upstreamStatus = 529;
  ASSERT_TRUE(s.setCooldown(again));
  l = s.listCooldowns();
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 4u);
  EXPECT_EQ((*l)[2].untilMs, t0 + 40000);
  EXPECT_EQ((*l)[2].errorClass, "overloaded");
  EXPECT_EQ((*l)[2].reason, "overloaded \"529\"\n");
  EXPECT_EQ((*l)[2].upstreamStatus, 529);

  // A record that is already over is a delete.
  ASSERT_TRUE(s.setCooldown(makeCooldown("b", "", t0)));
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"a/", "a/opus", "a/sonnet"}));
  ASSERT_TRUE(s.setCooldown(makeCooldown("c", "", t0 - 1)));
  EXPECT_EQ(cooldownKeys(s).size(), 3u);

  // Expiry by the injected clock: a record is gone at untilMs exactly.
  clock_.advanceMs(20000);
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"a/opus", "a/sonnet"}));
  clock_.advanceMs(9999);
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"a/opus", "a/sonnet"}));
  clock_.advanceMs(1);
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"a/sonnet"}));
  clock_.advanceMs(10000);
  EXPECT_TRUE(cooldownKeys(s).empty());
  // An expired record can be set again.
  ASSERT_TRUE(s.setCooldown(makeCooldown("a", "opus", clock_.nowUnixMs() + 1)));
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"a/opus"}));
  EXPECT_EQ(store_->errorCount(), 0u);
}

TEST_P(Conformance, CooldownClearOneScopeOrAll) {
  rg::SchedStore& s = store_->sched();
  int64_t until = clock_.nowUnixMs() + 60000;
  for (const char* scope : {"", "opus", "sonnet"}) {
    ASSERT_TRUE(s.setCooldown(makeCooldown("a", scope, until)));
  }
  ASSERT_TRUE(s.setCooldown(makeCooldown("ab", "", until)));  // "a" is a prefix of its id
  ASSERT_TRUE(s.setCooldown(makeCooldown("b", "opus", until)));

  ASSERT_TRUE(s.clearCooldown("a", std::string("opus")));
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"a/", "a/sonnet", "ab/", "b/opus"}));
  ASSERT_TRUE(s.clearCooldown("a", std::string("")));  // the whole-account scope only
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"a/sonnet", "ab/", "b/opus"}));
  ASSERT_TRUE(s.setCooldown(makeCooldown("a", "", until)));
  ASSERT_TRUE(s.clearCooldown("a", std::nullopt));
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"ab/", "b/opus"}));

  // Absent is fine.
  EXPECT_TRUE(s.clearCooldown("a", std::nullopt));
  EXPECT_TRUE(s.clearCooldown("b", std::string("haiku")));
  EXPECT_TRUE(s.clearCooldown("nobody", std::nullopt));
  EXPECT_EQ(cooldownKeys(s), (std::vector<std::string>{"ab/", "b/opus"}));

  // '|' separates account and scope in the Redis layout, so no backend accepts it in an id.
  EXPECT_EQ(s.setCooldown(makeCooldown("x|y", "", until)).code(), Code::kInvalidArgument);
  EXPECT_EQ(cooldownKeys(s).size(), 2u);
}

TEST_P(Conformance, StickySetGetRenewExpiryDelete) {
  rg::SchedStore& s = store_->sched();
  int64_t t0 = clock_.nowUnixMs();
  EXPECT_EQ(stickyAccount(s, "h1"), std::nullopt);
  ASSERT_TRUE(s.setSticky("h1", "acct-a", 10000));
  auto g = s.getSticky("h1");
  ASSERT_TRUE(g && g->has_value());
  EXPECT_EQ((*g)->accountId, "acct-a");
  EXPECT_EQ((*g)->expiresAtMs, t0 + 10000);

  // Renewing at +6 s moves the expiry to +16 s.
  clock_.advanceMs(6000);
  ASSERT_TRUE(s.setSticky("h1", "acct-a", 10000));
  clock_.advanceMs(5000);  // +11 s: alive only thanks to the renewal
  g = s.getSticky("h1");
  ASSERT_TRUE(g && g->has_value());
  EXPECT_EQ((*g)->expiresAtMs, t0 + 16000);
  clock_.advanceMs(5000);  // +16 s: gone
  EXPECT_EQ(stickyAccount(s, "h1"), std::nullopt);

  // Replacing points the mapping at another account.
  ASSERT_TRUE(s.setSticky("h2", "acct-a", 60000));
  ASSERT_TRUE(s.setSticky("h2", "acct-b", 60000));
  EXPECT_EQ(stickyAccount(s, "h2"), "acct-b");
  ASSERT_TRUE(s.setSticky("h3", "acct-b", 60000));
  ASSERT_TRUE(s.deleteSticky("h2"));
  EXPECT_EQ(stickyAccount(s, "h2"), std::nullopt);
  EXPECT_EQ(stickyAccount(s, "h3"), "acct-b");
  EXPECT_TRUE(s.deleteSticky("h2"));
  EXPECT_TRUE(s.deleteSticky("never"));
  EXPECT_EQ(store_->errorCount(), 0u);
}

TEST_P(Conformance, DeleteStickyForAccountDropsOnlyThatAccount) {
  rg::SchedStore& s = store_->sched();
  for (const char* h : {"h1", "h2", "h3"}) {
    ASSERT_TRUE(s.setSticky(h, "acct-a", 60000));
  }
  ASSERT_TRUE(s.setSticky("h4", "acct-b", 60000));
  ASSERT_TRUE(s.setSticky("h5", "acct-a", 60000));
  ASSERT_TRUE(s.setSticky("h5", "acct-b", 60000));  // moved away from acct-a
  ASSERT_TRUE(s.setSticky("h6", "acct-ab", 60000));

  auto n = s.deleteStickyForAccount("acct-a");
  ASSERT_TRUE(n) << n.status().toString();
  EXPECT_EQ(*n, 3);
  for (const char* h : {"h1", "h2", "h3"}) {
    EXPECT_EQ(stickyAccount(s, h), std::nullopt) << h;
  }
  EXPECT_EQ(stickyAccount(s, "h4"), "acct-b");
  EXPECT_EQ(stickyAccount(s, "h5"), "acct-b");
  EXPECT_EQ(stickyAccount(s, "h6"), "acct-ab");
  n = s.deleteStickyForAccount("acct-a");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0);
  n = s.deleteStickyForAccount("nobody");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0);

  // Mappings that already expired are not counted.
  ASSERT_TRUE(s.setSticky("c1", "acct-c", 1000));
  ASSERT_TRUE(s.setSticky("c2", "acct-c", 10000));
  clock_.advanceMs(2000);
  n = s.deleteStickyForAccount("acct-c");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(stickyAccount(s, "c2"), std::nullopt);

  // The account can be mapped again afterwards.
  ASSERT_TRUE(s.setSticky("h1", "acct-a", 60000));
  EXPECT_EQ(stickyAccount(s, "h1"), "acct-a");
  n = s.deleteStickyForAccount("acct-b");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(stickyAccount(s, "h1"), "acct-a");
}

TEST_P(Conformance, LockExclusivityUnlockAndExpiry) {
  rg::SchedStore& s = store_->sched();
  auto expectLock = [&](const std::string& name, const std::string& token, bool want) {
    auto r = s.tryLock(name, token, 10000);
    ASSERT_TRUE(r) << r.status().toString();
    EXPECT_EQ(*r, want) << name << " " << token;
  };
  auto expectUnlock = [&](const std::string& name, const std::string& token, bool want) {
    auto r = s.unlock(name, token);
    ASSERT_TRUE(r) << r.status().toString();
    EXPECT_EQ(*r, want) << name << " " << token;
  };
  expectLock("refresh:a", "t1", true);
  expectLock("refresh:a", "t2", false);
  expectLock("refresh:a", "t1", false);    // like SET NX: held is held
  expectLock("refresh:b", "t2", true);     // names are independent
  expectUnlock("refresh:a", "t2", false);  // wrong token: refused, still held
  expectLock("refresh:a", "t3", false);
  expectUnlock("refresh:a", "t1", true);
  expectUnlock("refresh:a", "t1", false);  // released already
  expectLock("refresh:a", "t2", true);
  expectUnlock("never", "t1", false);

  // Expiry lets another holder in, and the old holder cannot release the new one's lock.
  clock_.advanceMs(9999);
  expectLock("refresh:a", "t4", false);
  clock_.advanceMs(1);
  expectLock("refresh:a", "t4", true);
  expectUnlock("refresh:a", "t2", false);
  expectLock("refresh:a", "t5", false);
  expectUnlock("refresh:a", "t4", true);
  EXPECT_EQ(store_->errorCount(), 0u);
}

TEST_P(Conformance, ConcurrentTryLockHasExactlyOneWinner) {
  constexpr int kThreads = 16;
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    std::string name = "refresh:conc" + std::to_string(round);
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<int> wins{0};
    std::atomic<int> errors{0};
    std::vector<std::string> winners(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ready++;
        while (!go.load()) {
          std::this_thread::yield();
        }
        std::string token = "tok" + std::to_string(t);
        auto r = store_->sched().tryLock(name, token, 60000);
        if (!r) {
          errors++;
        } else if (*r) {
          wins++;
          winners[t] = token;
        }
      });
    }
    ASSERT_TRUE(eventually([&] { return ready.load() == kThreads; }));
    go = true;
    for (auto& th : threads) {
      th.join();
    }
    EXPECT_EQ(errors.load(), 0);
    ASSERT_EQ(wins.load(), 1) << "round " << round;
    // Only the winner's token releases it.
    for (int t = 0; t < kThreads; ++t) {
      if (winners[t].empty()) {
        auto u = store_->sched().unlock(name, "tok" + std::to_string(t));
        ASSERT_TRUE(u);
        EXPECT_FALSE(*u);
      }
    }
    for (const std::string& w : winners) {
      if (!w.empty()) {
        auto u = store_->sched().unlock(name, w);
        ASSERT_TRUE(u);
        EXPECT_TRUE(*u);
      }
    }
  }
}

TEST_P(Conformance, KeyBindingsRoundTrip) {
  rg::KeyStore& keys = store_->keys();
  rg::ApiKeyRecord k = makeKey("kb", "hb", 5);
  k.bindings = {{"claude", "3f2c0e7a-acct"}, {"gemini", "group:team \"a\""}};
  ASSERT_TRUE(keys.create(k));
  auto byId = keys.getById("kb");
  ASSERT_TRUE(byId && byId->has_value());
  EXPECT_EQ((*byId)->bindings, k.bindings);
  auto byHash = keys.getByHash("hb");
  ASSERT_TRUE(byHash && byHash->has_value());
  EXPECT_EQ((*byHash)->bindings, k.bindings);

  k.bindings = {{"openai", "group:pool"}};
  ASSERT_TRUE(keys.update(k));
  auto list = keys.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].bindings, k.bindings);

  k.bindings.clear();
  ASSERT_TRUE(keys.update(k));
  byId = keys.getById("kb");
  ASSERT_TRUE(byId && byId->has_value());
  EXPECT_TRUE((*byId)->bindings.empty());
  // A key created without bindings has none.
  ASSERT_TRUE(keys.create(makeKey("kn", "hn", 6)));
  auto plain = keys.getById("kn");
  ASSERT_TRUE(plain && plain->has_value());
  EXPECT_TRUE((*plain)->bindings.empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::Values("embedded", "redis"),
                         [](const auto& p) { return p.param; });

// ---- Embedded only ------------------------------------------------------------------------------

class EmbeddedConformance : public ::testing::Test {
 protected:
  rg::StatusOr<rg::StorePtr> open(int64_t compactBytes = 0, bool fsync = false) {
    rg::EmbeddedOptions o;
    o.dataDir = dataDir();
    o.fsyncEachWrite = fsync;
    o.compactThresholdBytes = compactBytes;
    return rg::openEmbeddedStore(o, clock_);
  }
  std::string dataDir() const { return dir_.file("data"); }
  std::string journal() const { return dataDir() + "/journal.jsonl"; }

  // Writes one of everything durable.
  static void writeAll(rg::Store& s) {
    ASSERT_TRUE(s.keys().create(makeKey("k1", "h1", 10)));
    ASSERT_TRUE(s.keys().create(makeKey("k2", "h2", 20)));
    ASSERT_TRUE(s.keys().remove("k2"));
    ASSERT_TRUE(s.accounts().create(makeAccount("a1", 10)));
    ASSERT_TRUE(s.accounts().touchLastUsed("a1", 777));
    ASSERT_TRUE(s.usage().record(makeUsageEvent("r1", "k1", "a1", "m1", "2025-01-01", 10)));
    ASSERT_TRUE(s.usage().record(makeUsageEvent("r2", "k1", "a1", "m2", "2025-01-01", 20)));
    ASSERT_TRUE(s.settings().set("site", "relaygate", 0));
    ASSERT_TRUE(s.pluginKv().set("claude/token", "abc", 0));
    ASSERT_TRUE(s.pluginKv().set("gone", "x", 0));
    ASSERT_TRUE(s.pluginKv().del("gone"));
  }

  static void checkAll(rg::Store& s) {
    auto k1 = s.keys().getByHash("h1");
    ASSERT_TRUE(k1 && k1->has_value());
    expectSameKey(**k1, makeKey("k1", "h1", 10));
    auto k2 = s.keys().getById("k2");
    ASSERT_TRUE(k2);
    EXPECT_FALSE(k2->has_value());
    auto a1 = s.accounts().get("a1");
    ASSERT_TRUE(a1 && a1->has_value());
    EXPECT_EQ((*a1)->lastUsedAtMs, 777);
    EXPECT_EQ((*a1)->secretSealed, makeAccount("a1", 10).secretSealed);
    auto total = s.usage().keyTotal("k1");
    ASSERT_TRUE(total);
    EXPECT_EQ(*total, countsOf(2, 30));
    auto models = s.usage().keyModelsDaily("k1", "2025-01-01");
    ASSERT_TRUE(models);
    EXPECT_EQ(models->size(), 2u);
    auto acct = s.usage().accountTotal("a1");
    ASSERT_TRUE(acct);
    EXPECT_EQ(*acct, countsOf(2, 30));
    // The booked request ids survive too: a retry after restart books nothing.
    auto again = s.usage().record(makeUsageEvent("r1", "k1", "a1", "m1", "2025-01-01", 10));
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
    auto site = s.settings().get("site");
    ASSERT_TRUE(site && site->has_value());
    EXPECT_EQ(**site, "relaygate");
    auto tok = s.pluginKv().get("claude/token");
    ASSERT_TRUE(tok && tok->has_value());
    EXPECT_EQ(**tok, "abc");
    auto gone = s.pluginKv().get("gone");
    ASSERT_TRUE(gone);
    EXPECT_FALSE(gone->has_value());
  }

  rg::ManualClock clock_;
  TempDir dir_;
};

TEST_F(EmbeddedConformance, CooldownsAreSharedBetweenStoresAndDurable) {
  int64_t t0 = clock_.nowUnixMs();
  {
    auto a = open();
    auto b = open();  // another process on the same dir (its own descriptors and flock)
    ASSERT_TRUE(a && b);
    rg::SchedStore& sa = (*a)->sched();
    rg::SchedStore& sb = (*b)->sched();
    ASSERT_TRUE(sa.setCooldown(makeCooldown("acct-1", "opus", t0 + 60000)));
    auto seen = sb.listCooldowns();
    ASSERT_TRUE(seen) << seen.status().toString();
    ASSERT_EQ(seen->size(), 1u);
    EXPECT_EQ((*seen)[0].accountId, "acct-1");
    EXPECT_EQ((*seen)[0].reason, "429 from upstream");
    EXPECT_EQ((*seen)[0].upstreamStatus, 429);

    // A clear in one store is seen by the other; so is a replacement.
    ASSERT_TRUE(sb.setCooldown(makeCooldown("acct-2", "", t0 + 30000)));
    ASSERT_TRUE(sb.clearCooldown("acct-1", std::nullopt));
    EXPECT_EQ(cooldownKeys(sa), (std::vector<std::string>{"acct-2/"}));
    ASSERT_TRUE(sa.setCooldown(makeCooldown("acct-2", "", t0 + 90000, "replaced")));
    auto replaced = sb.listCooldowns();
    ASSERT_TRUE(replaced);
    ASSERT_EQ(replaced->size(), 1u);
    EXPECT_EQ((*replaced)[0].untilMs, t0 + 90000);
    EXPECT_EQ((*replaced)[0].reason, "replaced");
    ASSERT_TRUE(sa.setCooldown(makeCooldown("acct-3", "sonnet", t0 + 10000)));

    // Sticky mappings and locks stay in their process.
    ASSERT_TRUE(sa.setSticky("h", "acct-2", 60000));
    auto lockA = sa.tryLock("refresh", "ta", 60000);
    ASSERT_TRUE(lockA && *lockA);
    EXPECT_EQ(stickyAccount(sb, "h"), std::nullopt);
  }
  // A restart sees the live cooldowns; sticky mappings and locks are gone.
  auto s = open();
  ASSERT_TRUE(s) << s.status().toString();
  EXPECT_EQ(cooldownKeys((*s)->sched()), (std::vector<std::string>{"acct-2/", "acct-3/sonnet"}));
  EXPECT_EQ(stickyAccount((*s)->sched(), "h"), std::nullopt);
  auto lock = (*s)->sched().tryLock("refresh", "tb", 60000);
  ASSERT_TRUE(lock);
  EXPECT_TRUE(*lock);
  clock_.advanceMs(10000);
  EXPECT_EQ(cooldownKeys((*s)->sched()), (std::vector<std::string>{"acct-2/"}));
}

TEST_F(EmbeddedConformance, CompactionDropsExpiredCooldowns) {
  int64_t t0 = clock_.nowUnixMs();
  auto s = open(4096);
  ASSERT_TRUE(s);
  rg::SchedStore& sched = (*s)->sched();
  ASSERT_TRUE(sched.setCooldown(makeCooldown("short-lived", "", t0 + 1000)));
  ASSERT_TRUE(sched.setCooldown(makeCooldown("long-lived", "", t0 + 3'600'000)));
  clock_.advanceMs(1000);
  // Churn until a compaction has rewritten the journal (it shrinks below the threshold).
  std::string big(200, 'x');
  for (int i = 0; i < 100 && readFile(journal()).find("short-lived") != std::string::npos; ++i) {
    ASSERT_TRUE((*s)->settings().set("churn", big + std::to_string(i), 0));
  }
  std::string text = readFile(journal());
  EXPECT_EQ(text.find("short-lived"), std::string::npos);
  EXPECT_NE(text.find("long-lived"), std::string::npos);
  auto reopened = open();
  ASSERT_TRUE(reopened);
  EXPECT_EQ(cooldownKeys((*reopened)->sched()), (std::vector<std::string>{"long-lived/"}));
}

TEST_F(EmbeddedConformance, KeyLinesWithoutBindingsReadBackEmpty) {
  {
    auto s = open();
    ASSERT_TRUE(s);
  }
  {
    std::ofstream out(journal(), std::ios::app | std::ios::binary);
    out << R"({"op":"key.put","rec":{"id":"old","name":"o","hash":"hold","enabled":true,)"
        << R"("createdAtMs":1,"updatedAtMs":1,"expiresAtMs":0,"permissions":["claude"],)"
        << R"("concurrencyLimit":0,"rateWindowMinutes":0,"rateRequests":0,"rateTokens":0,)"
        << R"("modelMode":0,"models":[]}})"
        << "\n";
  }
  auto s = open();
  ASSERT_TRUE(s) << s.status().toString();
  auto got = (*s)->keys().getByHash("hold");
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->permissions, std::vector<std::string>{"claude"});
  EXPECT_TRUE((*got)->bindings.empty());
  expectKeyCostDefaults(**got);
  EXPECT_EQ((*s)->errorCount(), 0u);
}

TEST_F(EmbeddedConformance, DurableAcrossReopen) {
  for (bool fsync : {false, true}) {
    TempDir fresh;
    rg::EmbeddedOptions o;
    o.dataDir = fresh.file("d");
    o.fsyncEachWrite = fsync;
    {
      auto s = rg::openEmbeddedStore(o, clock_);
      ASSERT_TRUE(s) << s.status().toString();
      writeAll(**s);
    }
    auto s = rg::openEmbeddedStore(o, clock_);
    ASSERT_TRUE(s) << s.status().toString();
    checkAll(**s);
  }
}

TEST_F(EmbeddedConformance, EphemeralStateIsNotDurable) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->limits().acquireLease("key:x", "h", 1, 60000));
    auto a = (*s)->admission().admit(windowAdmission("key:x", "r1", 1, /*concurrency=*/1));
    ASSERT_TRUE(a);
    ASSERT_EQ(a->verdict, rg::AdmitVerdict::kAdmitted);
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto lease = (*s)->limits().acquireLease("key:x", "other", 1, 60000);
  ASSERT_TRUE(lease);
  EXPECT_TRUE(lease->acquired);
  // Reservations and rate windows are gone with the process.
  auto a = (*s)->admission().admit(windowAdmission("key:x", "r2", 1, /*concurrency=*/1));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->verdict, rg::AdmitVerdict::kAdmitted);
}

TEST_F(EmbeddedConformance, TtlKvSurvivesReopenUntilItExpires) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->pluginKv().set("t", "v", 10000));
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto got = (*s)->pluginKv().get("t");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->has_value());
  clock_.advanceMs(10000);
  got = (*s)->pluginKv().get("t");
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
}

TEST_F(EmbeddedConformance, AccountLinesWithoutTheNewFieldsReadBackWithDefaults) {
  {
    auto s = open();
    ASSERT_TRUE(s);
  }
  {
    std::ofstream out(journal(), std::ios::app | std::ios::binary);
    out << R"({"op":"acct.put","rec":{"id":"old","name":"o","type":"claude-console",)"
        << R"("baseUrl":"https://x","secretSealed":"v1:k:AA==","priority":7,"schedulable":true,)"
        << R"("status":"active","statusReason":"","createdAtMs":1,"updatedAtMs":2,)"
        << R"("lastUsedAtMs":3}})"
        << "\n";
  }
  auto s = open();
  ASSERT_TRUE(s) << s.status().toString();
  auto got = (*s)->accounts().get("old");
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->priority, 7);
  EXPECT_EQ((*got)->secretSealed, "v1:k:AA==");
  expectAccountModelDefaults(**got);
}

TEST_F(EmbeddedConformance, UsageLinesWithoutCostsReadBackAsZeroCost) {
  {
    auto s = open();
    ASSERT_TRUE(s);
  }
  {
    // A usage line as written before costs were stored.
    std::ofstream out(journal(), std::ios::app | std::ios::binary);
    out << R"({"op":"usage","rid":"old-1","key":"k-old","acct":"a-old","model":"m",)"
        << R"("day":"2025-01-01","ms":1,"at":1,"c":{"requests":1,"inputTokens":5,)"
        << R"("outputTokens":6,"cacheCreate5mTokens":0,"cacheCreate1hTokens":0,)"
        << R"("cacheReadTokens":0}})"
        << "\n";
  }
  auto s = open();
  ASSERT_TRUE(s) << s.status().toString();
  auto total = (*s)->usage().keyTotal("k-old");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 1);
  EXPECT_EQ(total->outputTokens, 6);
  EXPECT_EQ(total->costMicroUsd, 0);
  EXPECT_EQ(total->billedMicroUsd, 0);
  // New bookings add to the old totals.
  auto ev = makeUsageEvent("new-1", "k-old", "a-old", "m", "2025-01-01", 1);
  ev.counts.costMicroUsd = 42;
  ev.counts.billedMicroUsd = 84;
  ASSERT_TRUE((*s)->usage().record(ev));
  total = (*s)->usage().keyTotal("k-old");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 2);
  EXPECT_EQ(total->costMicroUsd, 42);
  EXPECT_EQ(total->billedMicroUsd, 84);
}

TEST_F(EmbeddedConformance, TornLastLineIsIgnored) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    writeAll(**s);
  }
  // A crash mid-write leaves half a record without its newline.
  {
    std::ofstream out(journal(), std::ios::app | std::ios::binary);
    out << R"({"op":"key.put","rec":{"id":"torn","hash":"ht","na)";
  }
  {
    auto s = open();
    ASSERT_TRUE(s) << s.status().toString();
    checkAll(**s);
    auto torn = (*s)->keys().getById("torn");
    ASSERT_TRUE(torn);
    EXPECT_FALSE(torn->has_value());
    ASSERT_TRUE((*s)->settings().set("after", "torn", 0));
  }
  // Writes after the torn line are not glued onto it: they survive the next open.
  auto s = open();
  ASSERT_TRUE(s) << s.status().toString();
  auto after = (*s)->settings().get("after");
  ASSERT_TRUE(after && after->has_value());
  EXPECT_EQ(**after, "torn");
  EXPECT_EQ(readFile(journal()).back(), '\n');
}

TEST_F(EmbeddedConformance, TornLineWithoutReopenCompactionStillReplays) {
  // Raw journal lines written by hand (format v1), the last one torn: what a crash leaves.
  std::string dir = dataDir();
  ASSERT_TRUE(open());  // creates the dir
  writeFile(journal(),
            "{\"op\":\"header\",\"v\":1}\n"
            "{\"op\":\"set.put\",\"k\":\"a\",\"v\":\"1\",\"exp\":0}\n"
            "{\"op\":\"set.put\",\"k\":\"b\",\"v\":\"2\",\"exp\":0}\n"
            "{\"op\":\"set.del\",\"k\":\"a\"}\n"
            "{\"op\":\"set.put\",\"k\":\"c\",\"v\":");
  auto s = open();
  ASSERT_TRUE(s) << s.status().toString();
  auto a = (*s)->settings().get("a");
  auto b = (*s)->settings().get("b");
  auto c = (*s)->settings().get("c");
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(a->has_value());
  ASSERT_TRUE(b->has_value());
  EXPECT_EQ(**b, "2");
  EXPECT_FALSE(c->has_value());
}

TEST_F(EmbeddedConformance, NewerJournalFormatIsRefused) {
  ASSERT_TRUE(open());
  writeFile(journal(), "{\"op\":\"header\",\"v\":99}\n");
  auto s = open();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("version 99"), std::string::npos);
}

TEST_F(EmbeddedConformance, CompactionKeepsDataAndBoundsTheJournal) {
  // Above the snapshot of writeAll (its usage fills every time bucket: ~6 KiB).
  constexpr int64_t kThreshold = 16384;
  {
    auto s = open(kThreshold);
    ASSERT_TRUE(s);
    writeAll(**s);
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE((*s)->settings().set("counter", std::to_string(i), 0));
      ASSERT_TRUE((*s)->accounts().touchLastUsed("a1", 1000 + i));
    }
    // 2000 lines of ~50 bytes were written; compaction keeps the file near its snapshot.
    EXPECT_LT(static_cast<int64_t>(readFile(journal()).size()), 2 * kThreshold);
    EXPECT_EQ((*s)->errorCount(), 0u);
  }
  auto s = open(kThreshold);
  ASSERT_TRUE(s);
  auto counter = (*s)->settings().get("counter");
  ASSERT_TRUE(counter && counter->has_value());
  EXPECT_EQ(**counter, "999");
  auto a1 = (*s)->accounts().get("a1");
  ASSERT_TRUE(a1 && a1->has_value());
  EXPECT_EQ((*a1)->lastUsedAtMs, 1999);
  // Everything else from writeAll, except lastUsedAtMs which the loop moved on.
  ASSERT_TRUE((*s)->accounts().touchLastUsed("a1", 777));
  checkAll(**s);
  // No temp file is left behind.
  EXPECT_TRUE(readFile(dataDir() + "/journal.jsonl.tmp").empty());
}

TEST_F(EmbeddedConformance, WriteThatTriggersCompactionIsKept) {
  // Every write here may be the one that crosses the threshold; none may be lost by it.
  constexpr int kWrites = 300;
  {
    auto s = open(1024);
    ASSERT_TRUE(s);
    for (int i = 0; i < kWrites; ++i) {
      ASSERT_TRUE((*s)->settings().set("k" + std::to_string(i), std::to_string(i), 0));
      ASSERT_TRUE((*s)->usage().record(
          makeUsageEvent("r" + std::to_string(i), "key", "acct", "m", "2025-01-01", 1)));
    }
  }
  auto s = open(1024);
  ASSERT_TRUE(s);
  for (int i = 0; i < kWrites; ++i) {
    auto v = (*s)->settings().get("k" + std::to_string(i));
    ASSERT_TRUE(v && v->has_value()) << "k" << i << " lost";
    EXPECT_EQ(**v, std::to_string(i));
  }
  auto total = (*s)->usage().keyTotal("key");
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, kWrites);
}

TEST_F(EmbeddedConformance, SurvivesKill9) {
  // A child process writes and is killed with SIGKILL: no destructor, no flush, lock not released
  // by hand. Whatever record() and friends acknowledged must be there for the next open.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rg::EmbeddedOptions o;
    o.dataDir = dataDir();
    auto s = rg::openEmbeddedStore(o, clock_);
    if (!s) {
      ::_exit(2);
    }
    rg::Store& st = **s;
    bool ok = st.keys().create(makeKey("k1", "h1", 10)).isOk() &&
              st.accounts().create(makeAccount("a1", 10)).isOk() &&
              st.accounts().touchLastUsed("a1", 777).isOk() &&
              st.usage().record(makeUsageEvent("r1", "k1", "a1", "m1", "2025-01-01", 10)).isOk() &&
              st.usage().record(makeUsageEvent("r2", "k1", "a1", "m2", "2025-01-01", 20)).isOk() &&
              st.settings().set("site", "relaygate", 0).isOk() &&
              st.pluginKv().set("claude/token", "abc", 0).isOk();
    if (!ok) {
      ::_exit(3);
    }
    ::kill(::getpid(), SIGKILL);
    ::_exit(4);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  ASSERT_EQ(WTERMSIG(status), SIGKILL);
  auto s = open();
  ASSERT_TRUE(s) << s.status().toString();
  rg::Store& st = **s;
  auto k1 = st.keys().getByHash("h1");
  ASSERT_TRUE(k1 && k1->has_value());
  auto a1 = st.accounts().get("a1");
  ASSERT_TRUE(a1 && a1->has_value());
  EXPECT_EQ((*a1)->lastUsedAtMs, 777);
  auto total = st.usage().keyTotal("k1");
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, countsOf(2, 30));
  auto again = st.usage().record(makeUsageEvent("r2", "k1", "a1", "m2", "2025-01-01", 20));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  auto tok = st.pluginKv().get("claude/token");
  ASSERT_TRUE(tok && tok->has_value());
  EXPECT_EQ(**tok, "abc");
}

TEST_F(EmbeddedConformance, EmptyDataDirIsRejected) {
  rg::EmbeddedOptions o;
  auto s = rg::openEmbeddedStore(o, clock_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
}

// ---- Redis only ---------------------------------------------------------------------------------

// Raw keys on a server, to check the layout from outside the store.
std::vector<std::string> rawKeys(const RedisServer& server, const std::string& pattern) {
  std::vector<std::string> out;
  redisContext* c = redisConnect("127.0.0.1", server.port());
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) {
      redisFree(c);
    }
    ADD_FAILURE() << "cannot connect to redis";
    return out;
  }
  if (!server.password().empty()) {
    freeReplyObject(redisCommand(c, "AUTH %s", server.password().c_str()));
  }
  auto* r = static_cast<redisReply*>(redisCommand(c, "KEYS %s", pattern.c_str()));
  if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
  }
  freeReplyObject(r);
  redisFree(c);
  return out;
}

void rawCommand(const RedisServer& server, const char* command) {
  redisContext* c = redisConnect("127.0.0.1", server.port());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  auto* r = static_cast<redisReply*>(redisCommand(c, command));
  EXPECT_TRUE(r != nullptr && r->type != REDIS_REPLY_ERROR);
  freeReplyObject(r);
  redisFree(c);
}

class RedisConformance : public ::testing::Test {
 protected:
  rg::StatusOr<rg::StorePtr> open(const RedisServer& server, const std::string& prefix,
                                  const std::string& url = "") {
    rg::RedisOptions o;
    o.url = url.empty() ? server.url() : url;
    o.keyPrefix = prefix;
    o.poolSize = 2;
    o.commandTimeoutMs = 1000;
    o.connectTimeoutMs = 1000;
    return rg::openRedisStore(o, clock_);
  }
  rg::ManualClock clock_;
};

TEST_F(RedisConformance, KeyHashesWithoutBindingsReadBackEmpty) {
  RedisServer server;
  auto s = open(server, "oldk:");
  ASSERT_TRUE(s);
  rawCommand(server,
             "HSET oldk:key:old id old name o hash hold enabled 1 createdAtMs 1 "
             "permissions [\"claude\"] modelMode 0 models []");
  rawCommand(server, "HSET oldk:keys:byhash hold old");
  rawCommand(server, "SADD oldk:keys:ids old");
  auto got = (*s)->keys().getByHash("hold");
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->permissions, std::vector<std::string>{"claude"});
  EXPECT_TRUE((*got)->bindings.empty());
  expectKeyCostDefaults(**got);
}

TEST_F(RedisConformance, SchedulerLayoutAndExpiredCooldownsArePruned) {
  RedisServer server;
  auto a = open(server, "sch:");
  auto b = open(server, "sch:");  // a second instance on the same Redis
  ASSERT_TRUE(a && b);
  int64_t t0 = clock_.nowUnixMs();
  ASSERT_TRUE((*a)->sched().setCooldown(makeCooldown("acct-1", "opus", t0 + 1000)));
  ASSERT_TRUE((*a)->sched().setCooldown(makeCooldown("acct-2", "", t0 + 60000)));
  EXPECT_EQ(cooldownKeys((*b)->sched()), (std::vector<std::string>{"acct-1/opus", "acct-2/"}));
  ASSERT_TRUE((*a)->sched().setSticky("sess", "acct-2", 60000));
  EXPECT_EQ(stickyAccount((*b)->sched(), "sess"), "acct-2");
  auto lock = (*a)->sched().tryLock("refresh:acct-2", "tok", 60000);
  ASSERT_TRUE(lock && *lock);
  lock = (*b)->sched().tryLock("refresh:acct-2", "other", 60000);
  ASSERT_TRUE(lock);
  EXPECT_FALSE(*lock);

  EXPECT_EQ(rawKeys(server, "sch:cooldowns").size(), 1u);
  EXPECT_EQ(rawKeys(server, "sch:sticky:sess").size(), 1u);
  EXPECT_EQ(rawKeys(server, "sch:sticky_acct:acct-2").size(), 1u);
  EXPECT_EQ(rawKeys(server, "sch:lock:refresh:acct-2").size(), 1u);

  // Listing after expiry deletes the expired field; the last one going removes the hash.
  clock_.advanceMs(1000);
  EXPECT_EQ(cooldownKeys((*b)->sched()), (std::vector<std::string>{"acct-2/"}));
  clock_.advanceMs(59000);
  EXPECT_TRUE(cooldownKeys((*a)->sched()).empty());
  EXPECT_TRUE(rawKeys(server, "sch:cooldowns").empty());

  // deleteStickyForAccount removes the mapping keys and the reverse index.
  ASSERT_TRUE((*a)->sched().setSticky("sess", "acct-2", 60000));
  auto n = (*b)->sched().deleteStickyForAccount("acct-2");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  EXPECT_TRUE(rawKeys(server, "sch:sticky*").empty());

  // A mapping whose key Redis expired (PX, real time) and that was then made for another account
  // leaves a stale entry in the first account's index: deleting that account must spare it.
  ASSERT_TRUE((*a)->sched().setSticky("keep", "acct-a", 60000));
  ASSERT_TRUE((*a)->sched().setSticky("moved", "acct-a", 20));
  ASSERT_TRUE(eventually([&] { return rawKeys(server, "sch:sticky:moved").empty(); }));
  ASSERT_TRUE((*a)->sched().setSticky("moved", "acct-b", 60000));
  n = (*b)->sched().deleteStickyForAccount("acct-a");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(stickyAccount((*b)->sched(), "keep"), std::nullopt);
  EXPECT_EQ(stickyAccount((*b)->sched(), "moved"), "acct-b");
}

TEST_F(RedisConformance, AccountHashesWithoutTheNewFieldsReadBackWithDefaults) {
  RedisServer server;
  auto s = open(server, "old:");
  ASSERT_TRUE(s);
  rawCommand(server,
             "HSET old:acct:old id old name o type claude-console baseUrl https://x "
             "secretSealed v1:k:AA== priority 7 schedulable 1 status active "
             "createdAtMs 1 updatedAtMs 2 lastUsedAtMs 3");
  rawCommand(server, "SADD old:accts:ids old");
  auto got = (*s)->accounts().get("old");
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->priority, 7);
  EXPECT_EQ((*got)->secretSealed, "v1:k:AA==");
  expectAccountModelDefaults(**got);
  auto list = (*s)->accounts().list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  expectAccountModelDefaults((*list)[0]);
}

TEST_F(RedisConformance, PrefixIsolationAndLayout) {
  RedisServer server;
  auto a = open(server, "tenantA:");
  auto b = open(server, "tenantB:");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->keys().create(makeKey("k1", "h1", 1)));
  ASSERT_TRUE((*b)->keys().create(makeKey("k1", "h1", 1)));  // same id and hash: other prefix
  ASSERT_TRUE((*a)->settings().set("s", "A", 0));
  ASSERT_TRUE((*a)->usage().record(makeUsageEvent("r", "k1", "a1", "m", "2025-01-01", 1)));
  auto bRecord = (*b)->usage().record(makeUsageEvent("r", "k1", "a1", "m", "2025-01-01", 1));
  ASSERT_TRUE(bRecord);
  EXPECT_TRUE(*bRecord);  // request ids are per prefix too
  ASSERT_TRUE((*a)->limits().acquireLease("key:k1", "h", 1, 10000));
  auto admitted = (*a)->admission().admit(windowAdmission("k1", "r1", 5));
  ASSERT_TRUE(admitted);
  EXPECT_EQ(admitted->verdict, rg::AdmitVerdict::kAdmitted);
  ASSERT_TRUE((*a)->accounts().create(makeAccount("a1", 1)));
  ASSERT_TRUE((*a)->pluginKv().set("p", "v", 0));

  auto s = (*b)->settings().get("s");
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->has_value());
  ASSERT_TRUE((*b)->keys().remove("k1"));
  auto stillA = (*a)->keys().getByHash("h1");
  ASSERT_TRUE(stillA);
  EXPECT_TRUE(stillA->has_value());
  auto leaseB = (*b)->limits().leaseCount("key:k1");
  ASSERT_TRUE(leaseB);
  EXPECT_EQ(*leaseB, 0);

  // Every key the store wrote is under its prefix.
  auto all = rawKeys(server, "*");
  EXPECT_FALSE(all.empty());
  for (const std::string& k : all) {
    EXPECT_TRUE(k.rfind("tenantA:", 0) == 0 || k.rfind("tenantB:", 0) == 0) << k;
  }
  EXPECT_FALSE(rawKeys(server, "tenantA:lease:*").empty());
  EXPECT_FALSE(rawKeys(server, "tenantA:adm:win:*").empty());
  EXPECT_FALSE(rawKeys(server, "tenantA:adm:rz:*").empty());
  EXPECT_FALSE(rawKeys(server, "tenantA:adm:rv:*").empty());
  EXPECT_FALSE(rawKeys(server, "tenantA:adm:rs:*").empty());
  EXPECT_FALSE(rawKeys(server, "tenantA:usage:req:*").empty());
}

TEST_F(RedisConformance, ReconnectsAfterServerRestart) {
  RedisServer server;
  auto s = open(server, "re:");
  ASSERT_TRUE(s);
  rg::Store& st = **s;
  ASSERT_TRUE(st.settings().set("x", "1", 0));
  uint64_t errorsBefore = st.errorCount();

  server.stop();
  rg::Status down = st.settings().set("x", "2", 0);
  EXPECT_EQ(down.code(), Code::kUnavailable);
  EXPECT_NE(down.message().find("redis"), std::string::npos) << down.message();
  EXPECT_EQ(st.ping().code(), Code::kUnavailable);
  EXPECT_GT(st.errorCount(), errorsBefore);

  server.restart();  // same port, empty data (no persistence)
  EXPECT_TRUE(eventually([&] { return st.ping().isOk(); })) << st.ping().toString();
  ASSERT_TRUE(st.settings().set("x", "3", 0));
  auto x = st.settings().get("x");
  ASSERT_TRUE(x && x->has_value());
  EXPECT_EQ(**x, "3");
  // Scripts are gone from the restarted server's cache: EVALSHA falls back to EVAL.
  auto lease = st.limits().acquireLease("key:r", "h", 1, 10000);
  ASSERT_TRUE(lease) << lease.status().toString();
  EXPECT_TRUE(lease->acquired);
}

TEST_F(RedisConformance, IdleConnectionsRecoverTransparently) {
  RedisServer server;
  auto s = open(server, "idle:");
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->settings().set("x", "1", 0));
  // Kill the pooled (idle) connections from the server side.
  rawCommand(server, "CLIENT KILL TYPE normal SKIPME yes");
  auto x = (*s)->settings().get("x");
  ASSERT_TRUE(x) << x.status().toString();
  ASSERT_TRUE(x->has_value());
  EXPECT_EQ(**x, "1");
}

TEST_F(RedisConformance, ScriptFlushFallsBackToEval) {
  RedisServer server;
  auto s = open(server, "flush:");
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->admission().admit(windowAdmission("w", "r1", 5)));
  rawCommand(server, "SCRIPT FLUSH");
  auto w = (*s)->admission().admit(windowAdmission("w", "r2", 5));
  ASSERT_TRUE(w) << w.status().toString();
  EXPECT_EQ(w->verdict, rg::AdmitVerdict::kAdmitted);
  auto st = (*s)->admission().state("w", "");
  ASSERT_TRUE(st) << st.status().toString();
  EXPECT_EQ(st->windowRequests, 2);
  EXPECT_EQ((*s)->errorCount(), 0u);
}

TEST_F(RedisConformance, PasswordAuth) {
  const std::string password = "s3cret-Pass-for-test";
  RedisServer server(password);
  auto noPass = open(server, "auth:", server.urlWithoutPassword());
  ASSERT_FALSE(noPass);
  EXPECT_EQ(noPass.status().code(), Code::kUnavailable);

  auto wrong =
      open(server, "auth:", "redis://:wrong-Pass-xyz@127.0.0.1:" + std::to_string(server.port()));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.status().code(), Code::kUnavailable);
  EXPECT_EQ(wrong.status().message().find("wrong-Pass-xyz"), std::string::npos)
      << "password leaked into the error: " << wrong.status().message();

  auto inUrl = open(server, "auth:");
  ASSERT_TRUE(inUrl) << inUrl.status().toString();
  ASSERT_TRUE((*inUrl)->settings().set("a", "b", 0));

  rg::RedisOptions o;
  o.url = server.urlWithoutPassword() + "/3";
  o.password = password;  // the option overrides the url's
  o.keyPrefix = "auth:";
  auto byOption = rg::openRedisStore(o, clock_);
  ASSERT_TRUE(byOption) << byOption.status().toString();
  // Database 3 is another keyspace.
  auto a = (*byOption)->settings().get("a");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->has_value());
}

TEST_F(RedisConformance, BadUrlAndUnreachableServer) {
  rg::RedisOptions o;
  o.url = "http://127.0.0.1:6379";
  auto bad = rg::openRedisStore(o, clock_);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  o.url = "rediss://:pw@127.0.0.1:6379";  // TLS: hiredis 0.14 cannot
  bad = rg::openRedisStore(o, clock_);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("TLS"), std::string::npos);

  // A port nothing listens on (a server we stopped).
  int port = 0;
  {
    RedisServer server;
    port = server.port();
  }
  o.url = "redis://127.0.0.1:" + std::to_string(port);
  auto down = rg::openRedisStore(o, clock_);
  ASSERT_FALSE(down);
  EXPECT_EQ(down.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace rgtest
