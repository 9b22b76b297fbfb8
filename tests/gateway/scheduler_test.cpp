// The scheduler on real stores with an injected clock: ordering (priority, LRU rotation within a
// tier, creation time), bindings (dedicated, group), sticky sessions (hit, miss, invalidation,
// renewal), model mapping and families, per-account concurrency leases, cooldowns by error class
// and recovery (at expiry and on success), events, the reasons given when nothing can serve, and
// two schedulers sharing one Redis.
#include "scheduler/scheduler.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "crypto/crypto.h"
#include "fakes/gateway_process.h"
#include "fakes/redis_harness.h"
#include "fakes/support.h"
#include "gateway/account_store_fixture.h"

namespace rg {
namespace {

constexpr int64_t kMin = 60000;

class SchedulerTest : public rgtest::AccountStoreTest {
 protected:
  void SetUp() override {
    AccountStoreTest::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    cfg_.stateRefreshMs = 100;
    sched_ = std::make_unique<Scheduler>(*accounts_, *store_, clock_, cfg_, &events_, &metrics_);
  }

  std::string add(const std::string& name, int64_t priority, int64_t cap = 0,
                  std::map<std::string, std::string> mapping = {},
                  std::vector<std::string> groups = {}, bool dedicated = false) {
    NewAccountOptions o;
    o.type = "claude-console";
    o.name = name;
    o.baseUrl = "https://api.example.com";
    o.apiKey = "sk-ant-" + name + "-0123456789abcdef";
    o.priority = priority;
    o.concurrencyLimit = cap;
    o.modelMapping = std::move(mapping);
    o.groups = std::move(groups);
    o.dedicated = dedicated;
    auto r = accounts_->add(o);
    EXPECT_TRUE(r) << r.status().toString();
    clock_.advanceMs(1);
    if (r) {
      ids_[name] = r->id;
    }
    return r ? r->id : "";
  }

  PickRequest req(const std::string& model = "claude-sonnet-4-5", const std::string& session = "",
                  const ApiKeyRecord* key = nullptr) {
    PickRequest r;
    r.types = {"claude-console", "claude-official"};
    r.provider = "claude";
    r.model = model;
    r.sessionKey = session;
    r.key = key;
    r.holder = "req-" + std::to_string(++holders_);
    return r;
  }

  // Picks and releases at once; returns the account name.
  std::string pickName(const PickRequest& r) {
    auto p = sched_->pick(r);
    EXPECT_TRUE(p) << p.status().toString();
    if (!p) {
      return "";
    }
    std::string name = p->record.name;
    sched_->release(*p);
    return name;
  }

  UpstreamError err(ErrorKind k, int status, const std::string& scope = "", int64_t until = 0,
                    int64_t retryAfter = 0) {
    UpstreamError e;
    e.kind = k;
    e.status = status;
    e.scope = scope;
    e.untilUnixMs = until;
    e.retryAfterMs = retryAfter;
    e.reason = "test " + std::string(errorKindName(k));
    return e;
  }

  // Marks the account through a real pick (so the Pick is genuine).
  void fail(const std::string& id, const UpstreamError& e, const ApiKeyRecord* key = nullptr) {
    PickRequest r = req("claude-sonnet-4-5", "", key);
    auto p = sched_->pick(r);
    ASSERT_TRUE(p);
    // Re-pick until we hold the wanted account (others are excluded one by one).
    while (p->record.id != id) {
      sched_->release(*p);
      r.exclude.insert(p->record.id);
      p = sched_->pick(r);
      ASSERT_TRUE(p) << p.status().toString();
    }
    sched_->reportError(*p, e);
    sched_->release(*p);
  }

  SchedulerConfig cfg_;
  EventBus events_;
  MetricsRegistry metrics_;
  std::unique_ptr<Scheduler> sched_;
  int holders_ = 0;
  std::map<std::string, std::string> ids_;  // name -> id
};

TEST_F(SchedulerTest, PriorityThenLeastRecentlyUsedThenCreation) {
  add("a", 50);
  add("b", 50);
  add("c", 50);
  std::vector<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    seen.push_back(pickName(req()));
  }
  // Never used: creation order; then the least recently used goes next (rotation).
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "a", "b", "c"}));
  add("preferred", 10);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pickName(req()), "preferred");
  }
}

TEST_F(SchedulerTest, ModelMappingFiltersAndRewrites) {
  add("plain", 50);
  add("mapped", 10, 0, {{"claude-opus-4-5", "us.anthropic.claude-opus-4-5-v1:0"}});
  auto p = sched_->pick(req("claude-opus-4-5"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->record.name, "mapped");
  EXPECT_EQ(p->upstreamModel, "us.anthropic.claude-opus-4-5-v1:0");
  sched_->release(*p);
  // A model the mapped account does not serve goes to the account that serves every model,
  // unchanged.
  p = sched_->pick(req("claude-haiku-4-5"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->record.name, "plain");
  EXPECT_EQ(p->upstreamModel, "");
  sched_->release(*p);
  // Case-insensitive match.
  p = sched_->pick(req("CLAUDE-OPUS-4-5"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->record.name, "mapped");
  sched_->release(*p);
}

TEST_F(SchedulerTest, NoAccountSupportsTheModelSaysSo) {
  add("only-opus", 50, 0, {{"claude-opus-4-5", "claude-opus-4-5"}});
  auto p = sched_->pick(req("claude-haiku-4-5"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.status().code(), Code::kUnavailable);
  EXPECT_NE(p.status().message().find("supports model claude-haiku-4-5"), std::string::npos)
      << p.status().message();
}

TEST_F(SchedulerTest, NoAccountAtAllSaysSo) {
  auto p = sched_->pick(req());
  ASSERT_FALSE(p);
  EXPECT_NE(p.status().message().find("no active account of type"), std::string::npos);
}

TEST_F(SchedulerTest, CooldownByClassAndRecoveryAtExpiry) {
  std::string a = add("a", 10);
  add("b", 50);
  fail(a, err(ErrorKind::kOverloaded, 529));
  EXPECT_EQ(pickName(req()), "b");
  auto cds = store_->sched().listCooldowns();
  ASSERT_TRUE(cds);
  ASSERT_EQ(cds->size(), 1u);
  EXPECT_EQ((*cds)[0].untilMs, clock_.nowUnixMs() + cfg_.overloadedCooldownMs);
  EXPECT_EQ((*cds)[0].errorClass, "overloaded");
  // One millisecond before the end it still cools; at the end it is back, with no action.
  clock_.advanceMs(cfg_.overloadedCooldownMs - 1);
  EXPECT_EQ(pickName(req()), "b");
  clock_.advanceMs(1 + cfg_.stateRefreshMs);
  EXPECT_EQ(pickName(req()), "a");
  auto evs = events_.recent();
  ASSERT_GE(evs.size(), 2u);
  EXPECT_EQ(evs.front().type, "account.cooldown");
  EXPECT_EQ(evs.front().accountId, a);
  EXPECT_EQ(evs.front().newState, "cooling_down");
  EXPECT_EQ(evs.back().type, "account.recovered");
  EXPECT_EQ(evs.back().accountId, a);
}

TEST_F(SchedulerTest, CooldownDurationsFollowThePolicy) {
  struct Case {
    ErrorKind kind;
    int status;
    int64_t resetIn;     // > 0: the plugin reports an absolute reset this far ahead
    int64_t retryAfter;  // > 0: the plugin reports a retry-after
    int64_t expect;
  };
  std::vector<Case> cases = {
      {ErrorKind::kAuth, 401, 0, 0, cfg_.authCooldownMs},
      {ErrorKind::kTransient, 503, 0, 0, cfg_.unavailableCooldownMs},
      {ErrorKind::kTransient, 500, 0, 0, cfg_.transientCooldownMs},
      {ErrorKind::kTransient, 0, 0, 0, cfg_.transientCooldownMs},
      {ErrorKind::kOverloaded, 529, 0, 0, cfg_.overloadedCooldownMs},
      // A reset time is believed (uncapped), a retry-after is capped.
      {ErrorKind::kRateLimited, 429, 4 * 3600000, 0, 4 * 3600000},
      {ErrorKind::kRateLimited, 429, 0, 3 * 3600000, cfg_.retryAfterCapMs},
      {ErrorKind::kRateLimited, 429, 0, 90000, 90000},
      {ErrorKind::kRateLimited, 429, 0, 0, cfg_.rateLimitedCooldownMs},
      {ErrorKind::kQuotaExhausted, 402, 0, 0, cfg_.quotaCooldownMs},
  };
  for (const auto& c : cases) {
    std::string id = add("acct" + std::to_string(holders_), 50);
    int64_t now = clock_.nowUnixMs();
    fail(id, err(c.kind, c.status, "", c.resetIn > 0 ? now + c.resetIn : 0, c.retryAfter));
    auto cds = store_->sched().listCooldowns();
    ASSERT_TRUE(cds);
    auto it = std::find_if(cds->begin(), cds->end(),
                           [&](const CooldownRecord& r) { return r.accountId == id; });
    ASSERT_NE(it, cds->end()) << errorKindName(c.kind) << " " << c.status;
    EXPECT_EQ(it->untilMs - now, c.expect) << errorKindName(c.kind) << " " << c.status;
    EXPECT_EQ(it->upstreamStatus, c.status);
  }
}

TEST_F(SchedulerTest, ClientErrorsNeitherMarkNorFailOver) {
  std::string a = add("a", 10);
  auto p = sched_->pick(req());
  ASSERT_TRUE(p);
  EXPECT_FALSE(sched_->reportError(*p, err(ErrorKind::kClient, 400)));
  EXPECT_FALSE(sched_->reportError(*p, err(ErrorKind::kContextTooLong, 400)));
  sched_->release(*p);
  auto cds = store_->sched().listCooldowns();
  ASSERT_TRUE(cds);
  EXPECT_TRUE(cds->empty());
  EXPECT_EQ(pickName(req()), "a");
  (void)a;
}

TEST_F(SchedulerTest, ModelFamilyLimitOnlyBlocksThatFamily) {
  std::string a = add("a", 10);
  add("b", 50);
  fail(a, err(ErrorKind::kRateLimited, 429, "opus", clock_.nowUnixMs() + 3600000));
  EXPECT_EQ(pickName(req("claude-opus-4-5")), "b");
  EXPECT_EQ(pickName(req("claude-sonnet-4-5")), "a");
  EXPECT_EQ(pickName(req("claude-haiku-4-5")), "a");
  clock_.advanceMs(3600000 + cfg_.stateRefreshMs);
  EXPECT_EQ(pickName(req("claude-opus-4-5")), "a");
}

TEST_F(SchedulerTest, SuccessClearsACooldownAtOnce) {
  std::string a = add("a", 10);
  fail(a, err(ErrorKind::kTransient, 500));
  // A request that was already running on the account when it was marked succeeds.
  Pick p;
  p.record = *accounts_->get(a);
  clock_.advanceMs(cfg_.stateRefreshMs);
  sched_->reportSuccess(p);
  auto cds = store_->sched().listCooldowns();
  ASSERT_TRUE(cds);
  EXPECT_TRUE(cds->empty());
  EXPECT_EQ(pickName(req()), "a");
  EXPECT_EQ(events_.recent().back().type, "account.recovered");
}

TEST_F(SchedulerTest, SuccessWithAnotherFamilyKeepsAFamilyLimit) {
  std::string a = add("a", 10);
  fail(a, err(ErrorKind::kRateLimited, 429, "opus", clock_.nowUnixMs() + 3600000));
  auto p = sched_->pick(req("claude-sonnet-4-5"));
  ASSERT_TRUE(p);
  clock_.advanceMs(cfg_.stateRefreshMs);
  sched_->reportSuccess(*p);
  sched_->release(*p);
  auto cds = store_->sched().listCooldowns();
  ASSERT_TRUE(cds);
  ASSERT_EQ(cds->size(), 1u);
  EXPECT_EQ((*cds)[0].scope, "opus");
  EXPECT_FALSE(sched_->pick(req("claude-opus-4-5")));
}

TEST_F(SchedulerTest, RecoveryIsAnnouncedWithoutTraffic) {
  std::string a = add("a", 10);
  fail(a, err(ErrorKind::kOverloaded, 529));
  sched_->startBackground();
  clock_.advanceMs(cfg_.overloadedCooldownMs);
  // The background refresh (every stateRefreshMs of real time) notices the end by itself.
  EXPECT_TRUE(rgtest::waitFor(
      [&] {
        auto evs = events_.recent();
        return !evs.empty() && evs.back().type == "account.recovered";
      },
      5000));
  sched_->stop();
}

TEST_F(SchedulerTest, BlockedNeedsAnOperator) {
  std::string a = add("a", 10);
  add("b", 50);
  fail(a, err(ErrorKind::kBlocked, 403));
  auto rec = accounts_->get(a);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->status, "blocked");
  clock_.advanceMs(30LL * 86400000);
  EXPECT_EQ(pickName(req()), "b");
  ASSERT_TRUE(accounts_->setStatus(a, "active", ""));
  EXPECT_EQ(pickName(req()), "a");
}

TEST_F(SchedulerTest, AllCoolingDownNamesTheFirstRecovery) {
  std::string a = add("a", 10);
  std::string b = add("b", 50);
  fail(a, err(ErrorKind::kOverloaded, 529));
  fail(b, err(ErrorKind::kTransient, 503));
  auto p = sched_->pick(req());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.status().code(), Code::kUnavailable);
  EXPECT_NE(p.status().message().find("cooling down"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("test transient"), std::string::npos) << p.status().message();
}

TEST_F(SchedulerTest, StickySessionHitMissInvalidationAndRenewal) {
  std::string a = add("a", 50);
  std::string b = add("b", 50);
  std::string first = pickName(req("claude-sonnet-4-5", "conv-1"));
  // Turns of the same conversation stay on its account although LRU would rotate.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(pickName(req("claude-sonnet-4-5", "conv-1")), first);
  }
  // Another conversation rotates as usual.
  EXPECT_NE(pickName(req("claude-sonnet-4-5", "conv-2")), first);
  std::string hash = Scheduler::stickyHash("claude", "conv-1");
  auto m = store_->sched().getSticky(hash);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->expiresAtMs, clock_.nowUnixMs() + cfg_.stickyTtlMs);
  // Renewal: not while more than the threshold remains; once less remains, back to the full TTL.
  clock_.advanceMs(cfg_.stickyTtlMs - cfg_.stickyRenewThresholdMs - 1000);
  EXPECT_EQ(pickName(req("claude-sonnet-4-5", "conv-1")), first);
  m = store_->sched().getSticky(hash);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_LT((*m)->expiresAtMs - clock_.nowUnixMs(), cfg_.stickyTtlMs);
  clock_.advanceMs(2000);
  EXPECT_EQ(pickName(req("claude-sonnet-4-5", "conv-1")), first);
  m = store_->sched().getSticky(hash);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->expiresAtMs, clock_.nowUnixMs() + cfg_.stickyTtlMs);
  // Marking the account drops its mappings: the conversation moves and stays moved.
  fail(ids_[first], err(ErrorKind::kOverloaded, 529));
  m = store_->sched().getSticky(hash);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->has_value());
  std::string moved = pickName(req("claude-sonnet-4-5", "conv-1"));
  EXPECT_NE(moved, first);
  clock_.advanceMs(cfg_.overloadedCooldownMs + cfg_.stateRefreshMs);
  EXPECT_EQ(pickName(req("claude-sonnet-4-5", "conv-1")), moved);
  (void)a;
  (void)b;
}

TEST_F(SchedulerTest, StickyMappingsAreCachedBriefly) {
  add("a", 50);
  add("b", 50);
  std::string first = pickName(req("m", "conv"));
  // Gone from storage (as if another instance dropped it): this instance still has it for up
  // to sticky_cache_ms, then reads storage again.
  ASSERT_TRUE(store_->sched().deleteSticky(Scheduler::stickyHash("claude", "conv")));
  EXPECT_EQ(pickName(req("m", "conv")), first);
  clock_.advanceMs(cfg_.stickyCacheMs);
  EXPECT_NE(pickName(req("m", "conv")), first);
}

TEST_F(SchedulerTest, StickyMappingExpires) {
  add("a", 50);
  add("b", 50);
  std::string first = pickName(req("m", "conv"));
  clock_.advanceMs(cfg_.stickyTtlMs + 1);
  auto m = store_->sched().getSticky(Scheduler::stickyHash("claude", "conv"));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->has_value());
  // LRU now decides (the other account is the less recently used one).
  EXPECT_NE(pickName(req("m", "conv")), first);
}

TEST_F(SchedulerTest, DedicatedBindingHasNoFallback) {
  std::string a = add("mine", 50, 0, {}, {}, /*dedicated=*/true);
  add("shared", 10);
  ApiKeyRecord key;
  key.id = "k1";
  key.bindings["claude"] = a;
  EXPECT_EQ(pickName(req("m", "", &key)), "mine");
  // Dedicated accounts never serve the shared pool.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pickName(req()), "shared");
  }
  fail(a, err(ErrorKind::kOverloaded, 529), &key);
  auto p = sched_->pick(req("m", "", &key));
  ASSERT_FALSE(p);
  EXPECT_NE(p.status().message().find("dedicated account mine is unavailable"), std::string::npos)
      << p.status().message();
  EXPECT_NE(p.status().message().find("cooling down"), std::string::npos);
}

TEST_F(SchedulerTest, GroupBindingUsesOnlyMembers) {
  add("outsider", 1);
  add("g1", 50, 0, {}, {"team-a"});
  add("g2", 50, 0, {}, {"team-a", "team-b"});
  ApiKeyRecord key;
  key.id = "k";
  key.bindings["claude"] = "group:team-a";
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    seen.insert(pickName(req("m", "", &key)));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"g1", "g2"}));
  key.bindings["claude"] = "group:nobody";
  auto p = sched_->pick(req("m", "", &key));
  ASSERT_FALSE(p);
  EXPECT_NE(p.status().message().find("in group nobody"), std::string::npos);
}

TEST_F(SchedulerTest, ExpiredSubscriptionIsSkipped) {
  NewAccountOptions o;
  o.type = "claude-console";
  o.name = "expiring";
  o.baseUrl = "https://api.example.com";
  o.apiKey = "sk-ant-expiring-0123456789";
  o.priority = 1;
  o.subscriptionExpiresAtMs = clock_.nowUnixMs() + 1000;
  ASSERT_TRUE(accounts_->add(o));
  add("other", 50);
  EXPECT_EQ(pickName(req()), "expiring");
  clock_.advanceMs(1000);
  EXPECT_EQ(pickName(req()), "other");
}

TEST_F(SchedulerTest, ConcurrencyCapIsNeverExceededAndLeasesReturn) {
  add("a", 10, /*cap=*/2);
  add("b", 50, /*cap=*/1);
  std::vector<Pick> held;
  for (int i = 0; i < 3; ++i) {
    auto p = sched_->pick(req());
    ASSERT_TRUE(p) << p.status().toString();
    held.push_back(std::move(p.value()));
  }
  auto full = sched_->pick(req());
  ASSERT_FALSE(full);
  EXPECT_NE(full.status().message().find("concurrency limit"), std::string::npos)
      << full.status().message();
  EXPECT_EQ(sched_->leasesHeld(), 3);
  int a = 0;
  for (const auto& p : held) {
    a += p.record.name == "a" ? 1 : 0;
  }
  EXPECT_EQ(a, 2);
  for (auto& p : held) {
    sched_->release(p);
    sched_->release(p);  // idempotent
  }
  EXPECT_EQ(sched_->leasesHeld(), 0);
  auto n = store_->limits().leaseCount("acct:" + held[0].record.id);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0);
}

TEST_F(SchedulerTest, ParallelPicksRespectCaps) {
  add("a", 10, 3);
  add("b", 10, 2);
  add("c", 50, 1);
  std::atomic<int> inA{0}, inB{0}, inC{0}, maxA{0}, maxB{0}, maxC{0}, refused{0};
  auto bump = [](std::atomic<int>& cur, std::atomic<int>& mx) {
    int v = ++cur;
    int m = mx.load();
    while (v > m && !mx.compare_exchange_weak(m, v)) {
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        PickRequest r = req();
        r.holder = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto p = sched_->pick(r);
        if (!p) {
          ++refused;
          continue;
        }
        auto& cur = p->record.name == "a" ? inA : p->record.name == "b" ? inB : inC;
        auto& mx = p->record.name == "a" ? maxA : p->record.name == "b" ? maxB : maxC;
        bump(cur, mx);
        std::this_thread::yield();
        --cur;
        sched_->release(*p);
      }
    });
  }
  for (auto& t : ts) {
    t.join();
  }
  EXPECT_LE(maxA.load(), 3);
  EXPECT_LE(maxB.load(), 2);
  EXPECT_LE(maxC.load(), 1);
  EXPECT_EQ(sched_->leasesHeld(), 0);
}

TEST_F(SchedulerTest, ExcludedAccountsAreNotPickedAgain) {
  std::string a = add("a", 10);
  std::string b = add("b", 50);
  PickRequest r = req();
  r.exclude = {a};
  EXPECT_EQ(pickName(r), "b");
  r.exclude = {a, b};
  auto p = sched_->pick(r);
  ASSERT_FALSE(p);
  EXPECT_NE(p.status().message().find("failed for this request"), std::string::npos);
}

TEST_F(SchedulerTest, ModelFamily) {
  EXPECT_EQ(Scheduler::modelFamily("claude-opus-4-5-20251101"), "opus");
  EXPECT_EQ(Scheduler::modelFamily("claude-3-5-Sonnet"), "sonnet");
  EXPECT_EQ(Scheduler::modelFamily("claude-haiku-4-5"), "haiku");
  EXPECT_EQ(Scheduler::modelFamily("gpt-5"), "");
}

// Two gateways on one Redis: what one decides, the other honours.
TEST(SchedulerRedisTest, TwoInstancesShareCooldownsAndStickyMappings) {
  rgtest::RedisServer redis;
  const Clock& clock = SystemClock::instance();
  RedisOptions ro;
  ro.url = redis.url();
  ro.keyPrefix = "rgt:";
  auto s1 = openRedisStore(ro, clock);
  auto s2 = openRedisStore(ro, clock);
  ASSERT_TRUE(s1 && s2);
  crypto::SecretBox box(std::string(32, 'k'), "test");
  AccountService acc1(**s1, clock, box, 0);
  AccountService acc2(**s2, clock, box, 0);
  SchedulerConfig cfg;
  cfg.stateRefreshMs = 100;
  EventBus ev1, ev2;
  Scheduler one(acc1, **s1, clock, cfg, &ev1, nullptr);
  Scheduler two(acc2, **s2, clock, cfg, &ev2, nullptr);
  for (const char* name : {"a", "b", "c"}) {
    NewAccountOptions o;
    o.type = "claude-console";
    o.name = name;
    o.baseUrl = "https://api.example.com";
    o.apiKey = std::string("sk-ant-") + name + "-0123456789abcdef";
    ASSERT_TRUE(acc1.add(o));
  }
  PickRequest r;
  r.types = {"claude-console"};
  r.provider = "claude";
  r.model = "claude-sonnet-4-5";
  r.holder = "h1";
  // Instance one marks the account it got; instance two never picks it.
  auto p = one.pick(r);
  ASSERT_TRUE(p);
  std::string marked = p->record.id;
  UpstreamError e;
  e.kind = ErrorKind::kOverloaded;
  e.status = 529;
  e.reason = "overloaded";
  EXPECT_TRUE(one.reportError(*p, e));
  one.release(*p);
  for (int i = 0; i < 6; ++i) {
    r.holder = "h2-" + std::to_string(i);
    auto q = two.pick(r);
    ASSERT_TRUE(q) << q.status().toString();
    EXPECT_NE(q->record.id, marked);
    two.release(*q);
  }
  // A conversation mapped by one continues on the same account through two.
  r.sessionKey = "shared-conversation";
  auto s = one.pick(r);
  ASSERT_TRUE(s);
  std::string mapped = s->record.id;
  one.release(*s);
  for (int i = 0; i < 4; ++i) {
    auto q = two.pick(r);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->record.id, mapped);
    EXPECT_TRUE(q->sticky);
    two.release(*q);
  }
  // Clearing the cooldown through one store makes it schedulable for two.
  ASSERT_TRUE((*s1)->sched().clearCooldown(marked, std::nullopt));
  auto cds = (*s2)->sched().listCooldowns();
  ASSERT_TRUE(cds);
  EXPECT_TRUE(cds->empty());
}

}  // namespace
}  // namespace rg
