// The usage views (key-info, usage, organization usage), the admin usage API and the helpers the
// gateway shares with them, on both real storage backends (an embedded store in a temp dir and a
// real redis-server), with a manual clock and the Asia/Shanghai zone (UTC+8), so that a day or
// month bucket computed in UTC would be visibly wrong.
#include "usage/usage_views.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "admin/admin_api.h"
#include "admin/usage_routes.h"
#include "cli/usage_command.h"
#include "fakes/store_backends.h"

namespace rg {
namespace {

constexpr int64_t kHourMs = 3600000;
constexpr int64_t kDayMs = 24 * kHourMs;
const std::string kToken = "admin-token-usage-0123456789abcdef";

// Local (UTC+8) wall time -> unix ms.
int64_t local(int y, int mo, int d, int h, int mi = 0, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return (static_cast<int64_t>(timegm(&tm)) - 8 * 3600) * 1000;
}

TokenCounts counts(int64_t in, int64_t out, int64_t c5m, int64_t c1h, int64_t read, int64_t cost,
                   int64_t billed) {
  TokenCounts c;
  c.requests = 1;
  c.inputTokens = in;
  c.outputTokens = out;
  c.cacheCreate5mTokens = c5m;
  c.cacheCreate1hTokens = c1h;
  c.cacheReadTokens = read;
  c.costMicroUsd = cost;
  c.billedMicroUsd = billed;
  return c;
}

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  EXPECT_FALSE(d.HasParseError()) << body;
  EXPECT_TRUE(d.IsObject()) << body;
  return d;
}

class UsageViewsTest : public rgtest::StoreBackendTest {
 protected:
  UsageViewsTest() : StoreBackendTest("uv", /*redisPoolSize=*/2) {}

  void SetUp() override {
    auto tz = TimeZone::load("Asia/Shanghai");
    ASSERT_TRUE(tz) << tz.status().toString();
    tz_ = std::make_unique<TimeZone>(tz.value());
    clock_.setUnixMs(local(2026, 11, 25, 10));  // a Wednesday
    StoreBackendTest::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    views_ = std::make_unique<UsageViews>(*store_, clock_, *tz_);
  }

  ApiKeyRecord makeKey(const std::string& id, const std::string& name) {
    ApiKeyRecord k;
    k.id = id;
    k.name = name;
    k.hash = "hash-" + id;
    k.createdAtMs = local(2026, 11, 20, 10);  // exactly five days before "now"
    k.updatedAtMs = k.createdAtMs;
    EXPECT_TRUE(store_->keys().create(k).isOk());
    return k;
  }

  UsageEvent event(const std::string& requestId, const std::string& keyId, int64_t unixMs,
                   const TokenCounts& c, const std::string& model = "claude-sonnet-4-5",
                   const std::string& account = "acc-1") {
    return rgtest::zonedUsageEvent(*tz_, requestId, keyId, unixMs, c, model, account);
  }

  void book(const UsageEvent& e) {
    auto r = store_->usage().record(e);
    ASSERT_TRUE(r) << r.status().toString();
    EXPECT_TRUE(*r);
  }

  // Four requests of key `id`: one in October, one late yesterday (local), one just after local
  // midnight today (still yesterday in UTC) and one this morning. Request ids are global
  // idempotency keys: a second key's events need their own (idPrefix).
  void bookFour(const std::string& id, const std::string& idPrefix = "") {
    book(event(idPrefix + "e1", id, local(2026, 10, 31, 23, 30),
               counts(100, 10, 1, 2, 3, 1000000, 1500000)));
    book(event(idPrefix + "e2", id, local(2026, 11, 24, 23, 59),
               counts(200, 20, 0, 0, 0, 250000, 300000)));
    book(event(idPrefix + "e3", id, local(2026, 11, 25, 0, 30),
               counts(300, 30, 4, 0, 6, 123456, 123457)));
    book(event(idPrefix + "e4", id, local(2026, 11, 25, 9), counts(400, 40, 0, 8, 0, 7, 9)));
  }

  std::string view(ClientView v, const ApiKeyRecord& k) {
    auto r = views_->clientView(v, k);
    EXPECT_TRUE(r) << r.status().toString();
    return r ? *r : std::string("{}");
  }

  AdminResponse admin(const std::string& path, const std::string& query = "",
                      const std::string& method = "GET") {
    AdminDeps d;
    d.store = store_.get();
    d.clock = &clock_;
    d.timeZone = tz_.get();
    d.adminToken = kToken;
    AdminApi api(std::move(d));
    AdminRequest req;
    req.method = method;
    req.path = path;
    req.query = query;
    req.headers = {{"Authorization", "Bearer " + kToken}};
    return api.handle(req);
  }

  std::unique_ptr<TimeZone> tz_;
  std::unique_ptr<UsageViews> views_;
};

void expectPeriod(const rapidjson::Value& p, int64_t requests, int64_t in, int64_t out,
                  int64_t cacheCreate, int64_t read, int64_t all, const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_TRUE(p.IsObject());
  EXPECT_EQ(p["requests"].GetInt64(), requests);
  EXPECT_EQ(p["inputTokens"].GetInt64(), in);
  EXPECT_EQ(p["outputTokens"].GetInt64(), out);
  EXPECT_EQ(p["cacheCreateTokens"].GetInt64(), cacheCreate);
  EXPECT_EQ(p["cacheReadTokens"].GetInt64(), read);
  EXPECT_EQ(p["allTokens"].GetInt64(), all);
  EXPECT_EQ(p["tokens"].GetInt64(), all);
}

// ---- Client views ----------------------------------------------------------------------------

TEST_P(UsageViewsTest, KeyInfoTotalsDailyMonthlyInTheZone) {
  ApiKeyRecord k = makeKey("key-1", "team a");
  k.rateTokens = 5000;
  bookFour(k.id);
  std::string body = view(ClientView::kKeyInfo, k);
  auto d = parse(body);
  ASSERT_TRUE(d.HasMember("keyInfo")) << body;
  const auto& ki = d["keyInfo"];
  EXPECT_STREQ(ki["id"].GetString(), "key-1");
  EXPECT_STREQ(ki["name"].GetString(), "team a");
  EXPECT_EQ(ki["tokenLimit"].GetInt64(), 5000);
  const auto& u = ki["usage"];
  expectPeriod(u["total"], 4, 1000, 100, 15, 9, 1124, "total");
  // e3 is after local midnight (yesterday in UTC): today = e3 + e4.
  expectPeriod(u["daily"], 2, 700, 70, 12, 6, 788, "daily");
  expectPeriod(u["monthly"], 3, 900, 90, 12, 6, 1008, "monthly");
  EXPECT_EQ(u["total"]["ephemeral5mTokens"].GetInt64(), 5);
  EXPECT_EQ(u["total"]["ephemeral1hTokens"].GetInt64(), 10);
  // Money printed from the integers with exactly six decimals.
  EXPECT_NE(body.find(R"("total":{"tokens":1124,)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("cost":1.923466,"realCost":1.373463})"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("cost":0.123466,"realCost":0.123463})"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("cost":0.423466,"realCost":0.373463})"), std::string::npos) << body;
  // Averages over the five days since the key was created.
  EXPECT_NE(body.find(R"("averages":{"rpm":0.00,"tpm":0.16,"dailyRequests":0.80,)"
                      R"("dailyTokens":224.80})"),
            std::string::npos)
      << body;
  EXPECT_STREQ(d["timestamp"].GetString(), "2026-11-25T02:00:00.000Z");
  EXPECT_TRUE(ki.HasMember("limits"));
}

TEST_P(UsageViewsTest, RecentRecordsNewestFirstAtMostTwenty) {
  ApiKeyRecord k = makeKey("key-r", "recent");
  bookFour(k.id);
  auto d = parse(view(ClientView::kUsage, k));
  const auto& recs = d["usage"]["recentRecords"];
  ASSERT_EQ(recs.Size(), 4u);
  EXPECT_STREQ(recs[0]["requestId"].GetString(), "e4");
  EXPECT_STREQ(recs[3]["requestId"].GetString(), "e1");
  const auto& r = recs[0];
  EXPECT_STREQ(r["timestamp"].GetString(), "2026-11-25T01:00:00.000Z");
  EXPECT_STREQ(r["model"].GetString(), "claude-sonnet-4-5");
  EXPECT_STREQ(r["accountId"].GetString(), "acc-1");
  EXPECT_TRUE(r["stream"].GetBool());
  EXPECT_EQ(r["statusCode"].GetInt64(), 200);
  EXPECT_EQ(r["durationMs"].GetInt64(), 1500);
  EXPECT_EQ(r["inputTokens"].GetInt64(), 400);
  EXPECT_EQ(r["outputTokens"].GetInt64(), 40);
  EXPECT_EQ(r["cacheCreateTokens"].GetInt64(), 8);
  EXPECT_EQ(r["ephemeral5mTokens"].GetInt64(), 0);
  EXPECT_EQ(r["ephemeral1hTokens"].GetInt64(), 8);
  EXPECT_EQ(r["cacheReadTokens"].GetInt64(), 0);
  EXPECT_EQ(r["totalTokens"].GetInt64(), 448);
  EXPECT_DOUBLE_EQ(r["cost"].GetDouble(), 0.000009);
  EXPECT_DOUBLE_EQ(r["realCost"].GetDouble(), 0.000007);

  for (int i = 0; i < 25; ++i) {
    book(event("more-" + std::to_string(i), k.id, local(2026, 11, 25, 9, 30, i),
               counts(1, 1, 0, 0, 0, 0, 0)));
  }
  auto d2 = parse(view(ClientView::kUsage, k));
  const auto& recs2 = d2["usage"]["recentRecords"];
  ASSERT_EQ(recs2.Size(), UsageViews::kRecentRecords);
  EXPECT_STREQ(recs2[0]["requestId"].GetString(), "more-24");
  // The usage view has the reference's limit fields at the top level.
  EXPECT_EQ(d2["limits"]["tokens"].GetInt64(), 0);
  EXPECT_EQ(d2["limits"]["requests"].GetInt64(), 0);
  EXPECT_TRUE(d2["limits"]["expiresAt"].IsNull());
  EXPECT_FALSE(d2.HasMember("keyInfo"));
}

TEST_P(UsageViewsTest, LimitsShowEveryConfiguredLimitWithItsCurrentValue) {
  ApiKeyRecord k = makeKey("key-l", "limited");
  k.concurrencyLimit = 3;
  k.rateWindowMinutes = 60;
  k.rateRequests = 100;
  k.rateTokens = 100000;
  k.rateCostMicroUsd = 5000000;
  k.dailyCostMicroUsd = 2000000;
  k.totalCostMicroUsd = 10000000;
  k.weeklyCostMicroUsd = 50000000;
  k.weeklyResetDay = 7;  // Sunday
  k.weeklyResetHour = 5;
  k.expiresAtMs = local(2026, 12, 31, 0);
  k.activationMs = 30 * kDayMs;
  k.activatedAtMs = local(2026, 11, 21, 12);
  const std::string week = weeklyPeriodId(*tz_, clock_.nowUnixMs(), 7, 5);
  EXPECT_EQ(week, "2026-11-22T05");

  AdmitRequest a;
  a.keyId = k.id;
  a.limits.concurrency = 3;
  a.limits.windowMs = 60 * 60000;
  a.limits.windowRequests = 100;
  a.ttlMs = 60000;
  a.estTokens = 100;
  a.estBilledMicroUsd = 1000;
  a.day = tz_->dayBucket(clock_.nowUnixMs());
  a.weekly = true;
  a.week = week;
  a.weekTtlMs = 14 * kDayMs;
  a.requestId = "live";
  auto r1 = store_->admission().admit(a);
  ASSERT_TRUE(r1) << r1.status().toString();
  ASSERT_EQ(r1->verdict, AdmitVerdict::kAdmitted);
  a.requestId = "done";
  auto r2 = store_->admission().admit(a);
  ASSERT_TRUE(r2) << r2.status().toString();
  ASSERT_EQ(r2->verdict, AdmitVerdict::kAdmitted);
  UsageEvent ev = event("done", k.id, clock_.nowUnixMs(), counts(500, 50, 0, 0, 0, 600000, 700000));
  SettleRequest st;
  st.keyId = k.id;
  st.requestId = "done";
  st.usage = &ev;
  st.weekly = true;
  st.week = week;
  st.weekTtlMs = 14 * kDayMs;
  auto booked = store_->admission().settle(st);
  ASSERT_TRUE(booked) << booked.status().toString();
  EXPECT_TRUE(*booked);
  clock_.advanceMs(60000 / 2);

  std::string body = view(ClientView::kKeyInfo, k);
  auto d = parse(body);
  const auto& l = d["keyInfo"]["limits"];
  EXPECT_EQ(l["tokens"].GetInt64(), 100000);
  EXPECT_EQ(l["requests"].GetInt64(), 100);
  EXPECT_EQ(l["concurrency"]["limit"].GetInt64(), 3);
  EXPECT_EQ(l["concurrency"]["inFlight"].GetInt64(), 1);  // "live" is still held
  const auto& w = l["rateWindow"];
  EXPECT_EQ(w["windowMinutes"].GetInt64(), 60);
  EXPECT_EQ(w["requests"]["limit"].GetInt64(), 100);
  EXPECT_EQ(w["requests"]["current"].GetInt64(), 2);
  EXPECT_EQ(w["tokens"]["current"].GetInt64(), 550);
  EXPECT_NE(body.find(R"("cost":{"limit":5.000000,"current":0.700000})"), std::string::npos)
      << body;
  // The window opened at the first admit (30 s ago, 02:00Z) and lasts 60 minutes.
  EXPECT_STREQ(w["resetAt"].GetString(), "2026-11-25T03:00:00.000Z");
  EXPECT_NE(body.find(R"("dailyCost":{"limit":2.000000,"current":0.700000,)"
                      R"("resetAt":"2026-11-25T16:00:00.000Z"})"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find(R"("totalCost":{"limit":10.000000,"current":0.700000})"), std::string::npos)
      << body;
  const auto& wk = l["weeklyCost"];
  EXPECT_DOUBLE_EQ(wk["current"].GetDouble(), 0.7);
  EXPECT_DOUBLE_EQ(wk["limit"].GetDouble(), 50.0);
  EXPECT_STREQ(wk["period"].GetString(), "2026-11-22T05");
  // Next Sunday 05:00 local.
  EXPECT_STREQ(wk["resetAt"].GetString(), "2026-11-28T21:00:00.000Z");
  EXPECT_STREQ(l["expiresAt"].GetString(), "2026-12-30T16:00:00.000Z");
  EXPECT_TRUE(l["activation"]["activated"].GetBool());
  EXPECT_EQ(l["activation"]["durationMs"].GetInt64(), 30 * kDayMs);
  EXPECT_STREQ(l["activation"]["activatedAt"].GetString(), "2026-11-21T04:00:00.000Z");

  // After the window has passed its counters are no longer shown as current.
  clock_.advanceMs(61 * 60000);
  auto later = parse(view(ClientView::kUsage, k));
  EXPECT_EQ(later["limits"]["rateWindow"]["requests"]["current"].GetInt64(), 0);
  EXPECT_TRUE(later["limits"]["rateWindow"]["resetAt"].IsNull());

  // Unconfigured limits are absent.
  ApiKeyRecord plain = makeKey("key-p", "plain");
  auto p = parse(view(ClientView::kUsage, plain));
  for (const char* name :
       {"concurrency", "rateWindow", "dailyCost", "totalCost", "weeklyCost", "activation"}) {
    EXPECT_FALSE(p["limits"].HasMember(name)) << name;
  }
}

TEST_P(UsageViewsTest, OrganizationUsageCreditBalance) {
  ApiKeyRecord cost = makeKey("key-c", "cost");
  cost.totalCostMicroUsd = 10000000;
  cost.rateTokens = 99;  // the cost limit wins
  bookFour(cost.id);
  std::string body = view(ClientView::kOrgUsage, cost);
  EXPECT_EQ(body, R"({"object":"usage","data":[{"type":"credit_balance",)"
                  R"("credit_balance":8.076534}]})");

  ApiKeyRecord tokens = makeKey("key-t", "tokens");
  tokens.rateTokens = 5000;
  book(event("t1", tokens.id, local(2026, 11, 25, 8), counts(1000, 100, 5, 10, 9, 1, 1)));
  auto d = parse(view(ClientView::kOrgUsage, tokens));
  EXPECT_EQ(d["data"][0]["credit_balance"].GetInt64(), 5000 - 1124);

  ApiKeyRecord none = makeKey("key-n", "none");
  auto n = parse(view(ClientView::kOrgUsage, none));
  EXPECT_TRUE(n["data"][0]["credit_balance"].IsNull());

  // Over the limit: a negative balance, still exact.
  ApiKeyRecord over = makeKey("key-o", "over");
  over.totalCostMicroUsd = 1000000;
  bookFour(over.id, "over-");  // request ids are unique across keys
  auto o = view(ClientView::kOrgUsage, over);
  EXPECT_NE(o.find(R"("credit_balance":-0.923466)"), std::string::npos) << o;
}

// ---- Admin usage API ---------------------------------------------------------------------------

TEST_P(UsageViewsTest, AdminSeriesByDayHourMonthAndModel) {
  ApiKeyRecord k = makeKey("key-a", "admin");
  bookFour(k.id);
  book(event("h1", k.id, local(2026, 11, 25, 9, 15), counts(1, 2, 0, 0, 0, 10, 20), "claude-haiku",
             "acc-2"));

  // from = 2026-11-24T00:00Z is 08:00 local: days 24 and 25.
  auto r = admin("/admin/usage",
                 "dim=key&id=key-a&from=2026-11-24&to=2026-11-25T23:00:00%2B08:00&by=day");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse(r.body);
  EXPECT_STREQ(d["time_zone"].GetString(), "Asia/Shanghai");
  EXPECT_STREQ(d["by"].GetString(), "day");
  ASSERT_EQ(d["points"].Size(), 2u) << r.body;
  EXPECT_STREQ(d["points"][0]["bucket"].GetString(), "2026-11-24");
  EXPECT_EQ(d["points"][0]["requests"].GetInt64(), 1);
  EXPECT_EQ(d["points"][1]["requests"].GetInt64(), 3);
  EXPECT_EQ(d["points"][1]["input_tokens"].GetInt64(), 701);
  EXPECT_EQ(d["points"][1]["cache_create_5m_tokens"].GetInt64(), 4);
  EXPECT_EQ(d["points"][1]["cache_create_1h_tokens"].GetInt64(), 8);
  EXPECT_EQ(d["points"][1]["all_tokens"].GetInt64(), 791);
  EXPECT_EQ(d["points"][1]["billed_micro_usd"].GetInt64(), 123486);
  EXPECT_STREQ(d["points"][1]["billed_usd"].GetString(), "0.123486");
  EXPECT_STREQ(d["points"][1]["cost_usd"].GetString(), "0.123473");
  EXPECT_EQ(d["total"]["requests"].GetInt64(), 4);
  EXPECT_EQ(d["total"]["cost_micro_usd"].GetInt64(), 373473);
  EXPECT_STREQ(d["total"]["billed_usd"].GetString(), "0.423486");

  auto h = parse(admin("/admin/usage",
                       "dim=key&id=key-a&by=hour&from=2026-11-25T00:00:00%2B08:00"
                       "&to=2026-11-25T09:30:00%2B08:00")
                     .body);
  ASSERT_EQ(h["points"].Size(), 10u);
  EXPECT_STREQ(h["points"][0]["bucket"].GetString(), "2026-11-25T00");
  EXPECT_EQ(h["points"][0]["input_tokens"].GetInt64(), 300);
  EXPECT_EQ(h["points"][9]["requests"].GetInt64(), 2);
  EXPECT_EQ(h["total"]["requests"].GetInt64(), 3);

  auto m = parse(admin("/admin/usage", "id=key-a&by=month&from=2026-10-01T00:00:00%2B08:00").body);
  ASSERT_EQ(m["points"].Size(), 2u);
  EXPECT_STREQ(m["points"][0]["bucket"].GetString(), "2026-10");
  EXPECT_EQ(m["points"][0]["requests"].GetInt64(), 1);
  EXPECT_EQ(m["points"][1]["requests"].GetInt64(), 4);

  auto bm = parse(admin("/admin/usage", "dim=key&id=key-a&by_model=1&from=2026-11-25").body);
  ASSERT_TRUE(bm["by_model"].GetBool());
  ASSERT_EQ(bm["points"].Size(), 2u);  // 2026-11-25 local: haiku and sonnet
  EXPECT_STREQ(bm["points"][0]["model"].GetString(), "claude-haiku");
  EXPECT_EQ(bm["points"][0]["requests"].GetInt64(), 1);
  EXPECT_STREQ(bm["points"][1]["model"].GetString(), "claude-sonnet-4-5");
  EXPECT_EQ(bm["points"][1]["requests"].GetInt64(), 2);

  auto acc = parse(admin("/admin/usage", "dim=account&id=acc-2").body);
  EXPECT_EQ(acc["total"]["requests"].GetInt64(), 1);
  auto model = parse(admin("/admin/usage",
                           "dim=model&id=claude-sonnet-4-5&by=month&"
                           "from=2026-10-01T00:00:00%2B08:00")
                         .body);
  EXPECT_EQ(model["total"]["requests"].GetInt64(), 4);

  // Defaults: the last seven days by day, ending now.
  auto dflt = parse(admin("/admin/usage", "id=key-a").body);
  ASSERT_EQ(dflt["points"].Size(), 8u);
  EXPECT_STREQ(dflt["points"][7]["bucket"].GetString(), "2026-11-25");
  EXPECT_EQ(dflt["to"].GetInt64(), clock_.nowUnixMs());
  EXPECT_EQ(dflt["from"].GetInt64(), clock_.nowUnixMs() - 7 * kDayMs);
  EXPECT_EQ(dflt["total"]["requests"].GetInt64(), 4);
}

TEST_P(UsageViewsTest, AdminUsageErrors) {
  auto bad = [&](const std::string& query, const std::string& needle) {
    auto r = admin("/admin/usage", query);
    EXPECT_EQ(r.status, 400) << query << ": " << r.body;
    auto d = parse(r.body);
    EXPECT_STREQ(d["error"]["type"].GetString(), "invalid_request_error");
    EXPECT_NE(std::string(d["error"]["message"].GetString()).find(needle), std::string::npos)
        << r.body;
  };
  bad("id=x&by=week", "by:");
  bad("id=x&dim=user", "dim:");
  bad("dim=key", "id is required");
  bad("id=x&from=2026-11-25&to=2026-11-24", "is after");
  bad("id=x&from=yesterday", "from:");
  bad("id=x&by=hour&from=2025-01-01", "more than 1000 hour buckets");
  bad("dim=account&id=x&by_model=1", "by_model=1 needs dim=key");
  auto post = admin("/admin/usage", "", "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(*findHeader(post.headers, "Allow"), "GET");
  EXPECT_EQ(admin("/admin/usage/nope").status, 404);
  EXPECT_EQ(admin("/admin/usage/recent").status, 400);
  EXPECT_EQ(admin("/admin/usage/top", "limit=0").status, 400);
  // The admin token is needed, as for every admin route.
  AdminDeps deps;
  deps.store = store_.get();
  deps.clock = &clock_;
  deps.adminToken = kToken;
  AdminApi api(std::move(deps));
  AdminRequest req;
  req.method = "GET";
  req.path = "/admin/usage";
  req.query = "id=x";
  EXPECT_EQ(api.handle(req).status, 401);
}

TEST_P(UsageViewsTest, AdminTopAndRecent) {
  ApiKeyRecord a = makeKey("key-top-a", "alpha");
  ApiKeyRecord b = makeKey("key-top-b", "beta");
  bookFour(a.id);  // billed 1.923466 in total, 0.423466 this month
  book(event("b1", b.id, local(2026, 11, 25, 8), counts(1, 1, 0, 0, 0, 900000, 1000000)));
  book(event("gone1", "key-deleted", local(2026, 11, 25, 8), counts(1, 1, 0, 0, 0, 1, 2)));

  auto r = admin("/admin/usage/top", "by=month&from=2026-11-01");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse(r.body);
  ASSERT_EQ(d["keys"].Size(), 3u) << r.body;
  EXPECT_STREQ(d["keys"][0]["key_id"].GetString(), "key-top-b");
  EXPECT_STREQ(d["keys"][0]["name"].GetString(), "beta");
  EXPECT_EQ(d["keys"][0]["billed_micro_usd"].GetInt64(), 1000000);
  EXPECT_STREQ(d["keys"][1]["key_id"].GetString(), "key-top-a");
  EXPECT_STREQ(d["keys"][1]["billed_usd"].GetString(), "0.423466");
  EXPECT_TRUE(d["keys"][2]["deleted"].GetBool());
  auto one = parse(admin("/admin/usage/top", "by=month&from=2026-11-01&limit=1").body);
  EXPECT_EQ(one["keys"].Size(), 1u);
  // Including October puts alpha first.
  auto oct = parse(admin("/admin/usage/top", "by=month&from=2026-10-01").body);
  EXPECT_STREQ(oct["keys"][0]["key_id"].GetString(), "key-top-a");

  auto rec = admin("/admin/usage/recent", "key=key-top-a&limit=2");
  ASSERT_EQ(rec.status, 200) << rec.body;
  auto rd = parse(rec.body);
  ASSERT_EQ(rd["records"].Size(), 2u);
  EXPECT_STREQ(rd["records"][0]["request_id"].GetString(), "e4");
  EXPECT_STREQ(rd["records"][1]["request_id"].GetString(), "e3");
  EXPECT_EQ(rd["records"][0]["time"].GetInt64(), local(2026, 11, 25, 9));
  EXPECT_STREQ(rd["records"][0]["hour"].GetString(), "2026-11-25T09");
  EXPECT_EQ(rd["records"][0]["cache_create_1h_tokens"].GetInt64(), 8);
  EXPECT_STREQ(rd["records"][0]["billed_usd"].GetString(), "0.000009");
}

INSTANTIATE_TEST_SUITE_P(Backends, UsageViewsTest, ::testing::Values("embedded", "redis"),
                         [](const auto& p) { return p.param; });

// ---- The CLI command ---------------------------------------------------------------------------

// `relaygate usage` in-process against an embedded store at the config's data dir. The command
// reads the system clock, so the usage is booked now.
TEST(UsageCommand, TablesJsonAndErrors) {
  rgtest::TempDir dir;
  Config cfg;
  cfg.storage.backend = "embedded";
  cfg.storage.dataDir = dir.file("data");
  cfg.accounting.timeZone = "Asia/Shanghai";
  auto tz = TimeZone::load("Asia/Shanghai");
  ASSERT_TRUE(tz);
  const int64_t now = SystemClock::instance().nowUnixMs();
  {
    auto store =
        openEmbeddedStore(EmbeddedOptions{cfg.storage.dataDir, false, 0}, SystemClock::instance());
    ASSERT_TRUE(store) << store.status().toString();
    ApiKeyRecord k;
    k.id = "cli-key";
    k.name = "cli name";
    k.hash = "cli-hash";
    k.createdAtMs = now;
    ASSERT_TRUE((*store)->keys().create(k).isOk());
    UsageEvent e;
    e.requestId = "cli-req-1";
    e.keyId = k.id;
    e.accountId = "acc-cli";
    e.model = "claude-opus-4";
    e.unixMs = now;
    e.hour = tz->hourBucket(now);
    e.day = tz->dayBucket(now);
    e.month = tz->monthBucket(now);
    e.counts = counts(1234, 56, 7, 8, 9, 2500000, 3000001);
    auto r = (*store)->usage().record(e);
    ASSERT_TRUE(r) << r.status().toString();
  }
  auto run = [&](std::vector<std::string> pos, std::map<std::string, std::string> flags,
                 int* code) {
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    *code = runUsageCommand(cfg, pos, flags);
    std::string err = ::testing::internal::GetCapturedStderr();
    return ::testing::internal::GetCapturedStdout() + err;
  };
  int code = -1;
  std::string table = run({"usage"}, {{"key", "cli-key"}}, &code);
  EXPECT_EQ(code, 0) << table;
  EXPECT_NE(table.find("time zone Asia/Shanghai"), std::string::npos) << table;
  EXPECT_NE(table.find(tz->dayBucket(now)), std::string::npos) << table;
  EXPECT_NE(table.find("BILLED_USD"), std::string::npos) << table;
  // The TOTAL row: requests, input, output, 5m, 1h, read, all, cost, billed.
  EXPECT_NE(table.find("1   1234      56           7           8           9        1314  "),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("3.000001"), std::string::npos) << table;

  std::string json = run({"usage"}, {{"key", "cli-key"}, {"json", "1"}, {"by", "hour"}}, &code);
  EXPECT_EQ(code, 0) << json;
  auto d = parse(json);
  EXPECT_EQ(d["total"]["all_tokens"].GetInt64(), 1314);
  EXPECT_EQ(d["points"].Size(), 25u);  // the last 24 hours, both ends included

  std::string top = run({"usage", "top"}, {}, &code);
  EXPECT_EQ(code, 0) << top;
  EXPECT_NE(top.find("cli name"), std::string::npos) << top;

  std::string recent = run({"usage", "recent"}, {{"key", "cli-key"}}, &code);
  EXPECT_EQ(code, 0) << recent;
  EXPECT_NE(recent.find("cli-req-1"), std::string::npos) << recent;
  EXPECT_NE(recent.find("claude-opus-4"), std::string::npos) << recent;

  std::string noDim = run({"usage"}, {}, &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(noDim.find("exactly one of --key"), std::string::npos) << noDim;
  std::string badBy = run({"usage"}, {{"key", "cli-key"}, {"by", "year"}}, &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(badBy.find("by: expected hour, day or month"), std::string::npos) << badBy;
  run({"usage", "top"}, {{"key", "x"}}, &code);
  EXPECT_EQ(code, 2);
}

// ---- Pure helpers
// --------------------------------------------------------------------------------

TEST(UsageViewsPure, MatchClientView) {
  for (const char* mount : {"/api/v1/", "/v1/", "/claude/v1/"}) {
    std::string m = mount;
    EXPECT_EQ(matchClientView("GET", m + "key-info"), ClientView::kKeyInfo) << m;
    EXPECT_EQ(matchClientView("GET", m + "usage"), ClientView::kUsage) << m;
    EXPECT_EQ(matchClientView("GET", m + "organizations/org-1/usage"), ClientView::kOrgUsage) << m;
    EXPECT_EQ(matchClientView("POST", m + "usage"), std::nullopt) << m;
    EXPECT_EQ(matchClientView("GET", m + "key-info/"), std::nullopt) << m;
    EXPECT_EQ(matchClientView("GET", m + "organizations//usage"), std::nullopt) << m;
    EXPECT_EQ(matchClientView("GET", m + "organizations/a/b/usage"), std::nullopt) << m;
    EXPECT_EQ(matchClientView("GET", m + "organizations/usage"), std::nullopt) << m;
    EXPECT_EQ(matchClientView("GET", m + "usage/x"), std::nullopt) << m;
  }
  EXPECT_EQ(matchClientView("GET", "/gemini/v1/usage"), std::nullopt);
  EXPECT_EQ(matchClientView("GET", "/usage"), std::nullopt);
  EXPECT_EQ(matchClientView("GET", "/api/claude/v1/usage"), std::nullopt);
}

TEST(UsageViewsPure, WeeklyPeriodIdAcrossTheReset) {
  auto tz = TimeZone::load("Asia/Shanghai");
  ASSERT_TRUE(tz);
  // Monday 00:00 reset: Sunday 23:59:59.999 local is still the week of Monday the 23rd.
  EXPECT_EQ(weeklyPeriodId(*tz, local(2026, 11, 30, 0) - 1, 1, 0), "2026-11-23T00");
  EXPECT_EQ(weeklyPeriodId(*tz, local(2026, 11, 30, 0), 1, 0), "2026-11-30T00");
  // Monday 05:00 reset.
  EXPECT_EQ(weeklyPeriodId(*tz, local(2026, 11, 30, 4, 59), 1, 5), "2026-11-23T05");
  EXPECT_EQ(weeklyPeriodId(*tz, local(2026, 11, 30, 5), 1, 5), "2026-11-30T05");
  // 7 and 0 are both Sunday; hours are clamped.
  EXPECT_EQ(weeklyPeriodId(*tz, local(2026, 11, 25, 10), 7, 0), "2026-11-22T00");
  EXPECT_EQ(weeklyPeriodId(*tz, local(2026, 11, 25, 10), 0, 0), "2026-11-22T00");
  EXPECT_EQ(weeklyPeriodId(*tz, local(2026, 11, 25, 10), 3, 99), "2026-11-18T23");
  EXPECT_EQ(nextWeeklyResetMs(*tz, local(2026, 11, 30, 0) - 1, 1, 0), local(2026, 11, 30, 0));
  EXPECT_EQ(nextWeeklyResetMs(*tz, local(2026, 11, 30, 0), 1, 0), local(2026, 12, 7, 0));
  EXPECT_EQ(nextLocalMidnightMs(*tz, local(2026, 11, 25, 23, 59)), local(2026, 11, 26, 0));
  EXPECT_EQ(nextLocalMidnightMs(*tz, local(2026, 11, 26, 0)), local(2026, 11, 27, 0));

  // In a zone with DST the next reset is still the local reset hour (Berlin, 2026-03-29).
  auto berlin = TimeZone::load("Europe/Berlin");
  ASSERT_TRUE(berlin);
  int64_t sat = (static_cast<int64_t>(1774702800)) * 1000;  // 2026-03-28T13:00:00Z (14:00 CET)
  int64_t nextMon = nextWeeklyResetMs(*berlin, sat, 1, 0);
  EXPECT_EQ(berlin->hourBucket(nextMon), "2026-03-30T00");
  EXPECT_EQ(berlin->hourBucket(nextMon - 1), "2026-03-29T23");
  EXPECT_EQ(nextLocalMidnightMs(*berlin, sat + kDayMs) - nextLocalMidnightMs(*berlin, sat),
            23 * kHourMs);
}

TEST(UsageViewsPure, ClaudeFamilyModels) {
  for (const char* m : {"claude-sonnet-4-20250514", "CLAUDE-3-opus-20240229",
                        "us.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-v2",
                        "my-opus-proxy", "Haiku", "sonnet"}) {
    EXPECT_TRUE(isClaudeFamilyModel(m)) << m;
  }
  for (const char* m : {"gpt-4o", "gemini-2.5-pro", "claude", "", "mistral.mixtral-8x7b"}) {
    EXPECT_FALSE(isClaudeFamilyModel(m)) << m;
  }
}

TEST(UsageViewsPure, MicroUsdAndTimes) {
  EXPECT_EQ(formatMicroUsd(0), "0.000000");
  EXPECT_EQ(formatMicroUsd(1), "0.000001");
  EXPECT_EQ(formatMicroUsd(1234567), "1.234567");
  EXPECT_EQ(formatMicroUsd(-5), "-0.000005");
  EXPECT_EQ(formatMicroUsd(INT64_MIN), "-9223372036854.775808");
  EXPECT_EQ(formatMicroUsd(INT64_MAX), "9223372036854.775807");
  EXPECT_EQ(isoTimeMs(1795572000123), "2026-11-25T02:00:00.123Z");
  EXPECT_EQ(isoTimeMs(0), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace rg
