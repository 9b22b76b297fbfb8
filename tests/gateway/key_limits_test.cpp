// The per-key limits of issue 4 below the CLI and the admin API: the decimal USD parser (no
// floating point), the conversion of operator input with errors in the caller's spelling, the
// key service's validation and partial update, and activation expiry on a real embedded store
// with a manual clock (including a second service, as after a restart or in another process).
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "accounting/pricing.h"
#include "auth/key_input.h"
#include "auth/key_service.h"
#include "gateway/account_store_fixture.h"

namespace rg {
namespace {

constexpr int64_t kHourMs = 3'600'000;

// ---- Money -------------------------------------------------------------------------------------

TEST(UsdParser, ConvertsDecimalTextExactly) {
  struct {
    const char* text;
    int64_t micro;
  } cases[] = {
      {"10", 10'000'000},
      {"0.25", 250'000},
      {"12.345678", 12'345'678},
      {"0", 0},
      {"0.000001", 1},
      {"000012.5", 12'500'000},
      {".5", 500'000},
      {"1.2500000", 1'250'000},  // zeros past 6 places carry nothing
      {"1e2", 100'000'000},
      {"1.5E-3", 1'500},
      {"25e-6", 25},
      {"0.1", 100'000},
      {"1000000000", 1'000'000'000'000'000},
      {"999999999.999999", 999'999'999'999'999},
      {"0e-999999", 0},
  };
  for (const auto& c : cases) {
    auto v = parseUsdMicros(c.text);
    ASSERT_TRUE(v) << c.text << ": " << v.status().toString();
    EXPECT_EQ(*v, c.micro) << c.text;
  }
}

TEST(UsdParser, RejectsWithAClearReason) {
  struct {
    const char* text;
    const char* why;
  } cases[] = {
      {"", "expected a USD amount"},
      {"abc", "expected a USD amount"},
      {"1.", "expected a USD amount"},
      {"1e", "expected a USD amount"},
      {"12,5", "expected a USD amount"},
      {" 1", "expected a USD amount"},
      {"+1", "expected a USD amount"},
      {"$5", "expected a USD amount"},
      {"1.5.2", "expected a USD amount"},
      {"-1", "must not be negative"},
      {"-0.5", "must not be negative"},
      {"1.2345678", "at most 6 decimal places"},
      {"1e-7", "at most 6 decimal places"},
      {"1000000000.000001", "at most 1000000000 USD"},
      {"1e10", "at most 1000000000 USD"},
      {"99999999999999999999999", "at most 1000000000 USD"},
      {"1e99999999999", "exponent out of range"},
  };
  // 10^900000 USD written so that a clamped exponent would have read it as $1.
  std::string huge = "0." + std::string(99999, '0') + "1e1000000";
  auto h = parseUsdMicros(huge);
  ASSERT_FALSE(h) << "parsed as " << *h;
  EXPECT_NE(h.status().message().find("exponent out of range"), std::string::npos);
  for (const auto& c : cases) {
    auto v = parseUsdMicros(c.text);
    ASSERT_FALSE(v) << c.text << " parsed as " << *v;
    EXPECT_EQ(v.status().code(), Code::kInvalidArgument);
    EXPECT_NE(v.status().message().find(c.why), std::string::npos)
        << c.text << ": " << v.status().message();
  }
}

TEST(UsdParser, FormatsWithTrailingZerosTrimmedAndReadsBack) {
  EXPECT_EQ(formatUsdMicros(10'500'000), "10.5");
  EXPECT_EQ(formatUsdMicros(12'345'678), "12.345678");
  EXPECT_EQ(formatUsdMicros(0), "0");
  EXPECT_EQ(formatUsdMicros(1), "0.000001");
  EXPECT_EQ(formatUsdMicros(1'000'000), "1");
  EXPECT_EQ(formatUsdMicros(-2'500'000), "-2.5");
  EXPECT_EQ(formatRatePpm(1'500'000), "1.5");
  EXPECT_EQ(formatRatePpm(kRatePpmOne), "1");
  for (int64_t v :
       {int64_t{0}, int64_t{1}, int64_t{999'999}, int64_t{123'456'789}, kMaxCostMicroUsd}) {
    auto back = parseUsdMicros(formatUsdMicros(v));
    ASSERT_TRUE(back) << v;
    EXPECT_EQ(*back, v);
  }
}

// ---- Operator input ----------------------------------------------------------------------------

KeyInput named() {
  KeyInput in;
  in.name = "k";
  return in;
}

TEST(KeyInputLimits, DefaultsAndEveryNewField) {
  auto d = newKeyOptions(named(), 0, InputSpelling::kJson);
  ASSERT_TRUE(d) << d.status().toString();
  EXPECT_EQ(d->weeklyResetDay, 1);
  EXPECT_EQ(d->weeklyResetHour, 0);
  EXPECT_EQ(d->ratePpm, kRatePpmOne);
  EXPECT_EQ(d->activationMs, 0);
  EXPECT_EQ(d->dailyCostMicroUsd, 0);

  KeyInput in = named();
  in.rateWindowMinutes = 60;
  in.rateCostUsd = "2.5";
  in.dailyCostUsd = "10";
  in.totalCostUsd = "100.000001";
  in.weeklyCostUsd = "0.25";
  in.weeklyResetDay = 7;
  in.weeklyResetHour = 23;
  in.rate = "1.5";
  in.activationDays = 3;
  auto o = newKeyOptions(in, 0, InputSpelling::kCliFlags);
  ASSERT_TRUE(o) << o.status().toString();
  EXPECT_EQ(o->rateCostMicroUsd, 2'500'000);
  EXPECT_EQ(o->dailyCostMicroUsd, 10'000'000);
  EXPECT_EQ(o->totalCostMicroUsd, 100'000'001);
  EXPECT_EQ(o->weeklyCostMicroUsd, 250'000);
  EXPECT_EQ(o->weeklyResetDay, 7);
  EXPECT_EQ(o->weeklyResetHour, 23);
  EXPECT_EQ(o->ratePpm, 1'500'000);
  EXPECT_EQ(o->activationMs, 3 * 24 * kHourMs);
  EXPECT_TRUE(KeyService::validateOptions(*o));

  in.activationDays.reset();
  in.activationHours = 5;
  EXPECT_EQ(newKeyOptions(in, 0, InputSpelling::kCliFlags)->activationMs, 5 * kHourMs);
}

// The message of newKeyOptions, or of validateOptions when the input converts.
std::string problem(const KeyInput& in, InputSpelling sp) {
  auto o = newKeyOptions(in, 1'000, sp);
  if (!o) {
    return o.status().message();
  }
  Status v = KeyService::validateOptions(*o, sp);
  return v ? std::string("(accepted)") : v.message();
}

TEST(KeyInputLimits, ErrorsNameTheInputInTheCallersSpelling) {
  struct Case {
    void (*set)(KeyInput&);
    const char* cli;
    const char* json;
  } cases[] = {
      {[](KeyInput& k) { k.dailyCostUsd = "ten"; }, "--daily-cost: expected a USD amount",
       "daily_cost_usd: expected a USD amount"},
      {[](KeyInput& k) { k.totalCostUsd = "-5"; }, "--total-cost: must not be negative",
       "total_cost_usd: must not be negative"},
      {[](KeyInput& k) { k.weeklyCostUsd = "0.0000001"; }, "--weekly-cost: at most 6 decimal",
       "weekly_cost_usd: at most 6 decimal"},
      {[](KeyInput& k) { k.rateCostUsd = "5"; }, "--rate-cost needs --rate-window-min",
       "rate_cost_usd needs rate_window_minutes"},
      {[](KeyInput& k) { k.rateTokens = 5; }, "--rate-tokens needs --rate-window-min",
       "rate_tokens needs rate_window_minutes"},
      {[](KeyInput& k) { k.rate = "0"; }, "--rate: expected a decimal multiplier",
       "rate: expected a decimal multiplier"},
      {[](KeyInput& k) { k.rate = "1001"; }, "--rate: expected", "rate: expected"},
      {[](KeyInput& k) { k.rate = "x2"; }, "--rate: expected", "rate: expected"},
      {[](KeyInput& k) { k.weeklyResetDay = 0; }, "--weekly-reset-day: expected 1 (Monday)",
       "weekly_reset_day: expected 1 (Monday)"},
      {[](KeyInput& k) { k.weeklyResetDay = 8; }, "--weekly-reset-day", "weekly_reset_day"},
      {[](KeyInput& k) { k.weeklyResetHour = 24; }, "--weekly-reset-hour: expected 0..23",
       "weekly_reset_hour: expected 0..23"},
      {[](KeyInput& k) { k.weeklyResetHour = -1; }, "--weekly-reset-hour", "weekly_reset_hour"},
      {[](KeyInput& k) { k.concurrencyLimit = -1; }, "--concurrency must not be negative",
       "concurrency_limit must not be negative"},
      {[](KeyInput& k) {
         k.activationHours = 1;
         k.activationDays = 1;
       },
       "either --activation-hours or --activation-days", "either activation_hours or "},
      {[](KeyInput& k) { k.activationDays = 3651; }, "--activation-days: expected 0 (off) up to",
       "activation_days: expected 0 (off) up to"},
      {[](KeyInput& k) { k.activationHours = -2; }, "--activation-hours: expected",
       "activation_hours: expected"},
      {[](KeyInput& k) {
         k.activationHours = 1;
         k.expiresAtMs = 10'000;
       },
       "--expires-at and --activation-hours / --activation-days exclude each other",
       "expires_at and activation_hours / activation_days exclude each other"},
  };
  for (const auto& c : cases) {
    KeyInput in = named();
    c.set(in);
    std::string cli = problem(in, InputSpelling::kCliFlags);
    std::string json = problem(in, InputSpelling::kJson);
    EXPECT_NE(cli.find(c.cli), std::string::npos) << cli;
    EXPECT_NE(json.find(c.json), std::string::npos) << json;
  }
  // The same limits with their window are fine.
  KeyInput ok = named();
  ok.rateWindowMinutes = 5;
  ok.rateCostUsd = "5";
  ok.rateTokens = 5;
  EXPECT_EQ(problem(ok, InputSpelling::kJson), "(accepted)");
}

// ---- The key service ---------------------------------------------------------------------------

class KeyLimitsTest : public rgtest::AccountStoreTest {
 protected:
  void SetUp() override {
    AccountStoreTest::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    keys_ = service(/*cacheTtlMs=*/60'000);
  }
  std::unique_ptr<KeyService> service(int64_t cacheTtlMs) {
    return std::make_unique<KeyService>(*store_, clock_, "hash-secret", cacheTtlMs);
  }
  ApiKeyRecord stored(const std::string& id) {
    auto r = store_->keys().getById(id);
    EXPECT_TRUE(r && r->has_value());
    return r && r->has_value() ? **r : ApiKeyRecord();
  }
  std::unique_ptr<KeyService> keys_;
};

TEST_F(KeyLimitsTest, CreateStoresEveryLimit) {
  NewKeyOptions o;
  o.name = "limited";
  o.rateWindowMinutes = 10;
  o.rateCostMicroUsd = 1;
  o.dailyCostMicroUsd = 2;
  o.totalCostMicroUsd = 3;
  o.weeklyCostMicroUsd = 4;
  o.weeklyResetDay = 3;
  o.weeklyResetHour = 9;
  o.ratePpm = 250'000;
  o.activationMs = kHourMs;
  auto c = keys_->create(o);
  ASSERT_TRUE(c) << c.status().toString();
  ApiKeyRecord r = stored(c->record.id);
  EXPECT_EQ(r.rateCostMicroUsd, 1);
  EXPECT_EQ(r.dailyCostMicroUsd, 2);
  EXPECT_EQ(r.totalCostMicroUsd, 3);
  EXPECT_EQ(r.weeklyCostMicroUsd, 4);
  EXPECT_EQ(r.weeklyResetDay, 3);
  EXPECT_EQ(r.weeklyResetHour, 9);
  EXPECT_EQ(r.ratePpm, 250'000);
  EXPECT_EQ(r.activationMs, kHourMs);
  EXPECT_EQ(r.activatedAtMs, 0);
  EXPECT_EQ(r.expiresAtMs, 0);

  o.rateWindowMinutes = 0;  // a window cost cap without a window
  auto bad = keys_->create(o, InputSpelling::kJson);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message(), "rate_cost_usd needs rate_window_minutes");
  EXPECT_EQ(keys_->list()->size(), 1u);
}

TEST_F(KeyLimitsTest, ActivationExpiryStartsAtTheFirstUseAndSurvivesARestart) {
  NewKeyOptions o;
  o.name = "trial";
  o.activationMs = 2 * kHourMs;
  auto c = keys_->create(o);
  ASSERT_TRUE(c) << c.status().toString();
  // Unused for days: still not expiring.
  clock_.advanceMs(72 * kHourMs);
  EXPECT_EQ(stored(c->record.id).activatedAtMs, 0);
  const int64_t firstUse = clock_.nowUnixMs();
  auto a = keys_->authenticate(c->plainKey);
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ((*a)->activatedAtMs, firstUse);
  EXPECT_EQ((*a)->expiresAtMs, firstUse + 2 * kHourMs);
  ApiKeyRecord r = stored(c->record.id);
  EXPECT_EQ(r.activatedAtMs, firstUse);
  EXPECT_EQ(r.expiresAtMs, firstUse + 2 * kHourMs);

  // Later uses do not move it, in this service and in a new one (a restart, another process).
  clock_.advanceMs(kHourMs);
  ASSERT_TRUE(keys_->authenticate(c->plainKey));
  auto restarted = service(/*cacheTtlMs=*/0);
  auto b = restarted->authenticate(c->plainKey);
  ASSERT_TRUE(b) << b.status().toString();
  EXPECT_EQ((*b)->activatedAtMs, firstUse);
  EXPECT_EQ(stored(c->record.id).expiresAtMs, firstUse + 2 * kHourMs);

  clock_.setUnixMs(firstUse + 2 * kHourMs - 1);
  EXPECT_TRUE(restarted->authenticate(c->plainKey));
  clock_.setUnixMs(firstUse + 2 * kHourMs);
  auto expired = restarted->authenticate(c->plainKey);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(expired.status().message(), "API key has expired");
  // The first service's cache holds the activated record: it expires there too.
  EXPECT_FALSE(keys_->authenticate(c->plainKey));
}

TEST_F(KeyLimitsTest, UpdateChangesOnlyTheGivenFieldsAndIsSeenAtOnce) {
  NewKeyOptions o;
  o.name = "team";
  o.concurrencyLimit = 3;
  o.rateWindowMinutes = 10;
  o.rateRequests = 100;
  o.dailyCostMicroUsd = 5'000'000;
  o.permissions = {"claude"};
  auto c = keys_->create(o);
  ASSERT_TRUE(c);
  auto before = keys_->authenticate(c->plainKey);  // cached for a minute
  ASSERT_TRUE(before);
  EXPECT_EQ((*before)->ratePpm, kRatePpmOne);

  clock_.advanceMs(1000);
  KeyPatch p;
  p.ratePpm = 2'000'000;
  p.totalCostMicroUsd = 50'000'000;
  p.rateCostMicroUsd = 1'000'000;
  auto u = keys_->update(c->record.id, p);
  ASSERT_TRUE(u) << u.status().toString();
  ApiKeyRecord r = stored(c->record.id);
  EXPECT_EQ(r.ratePpm, 2'000'000);
  EXPECT_EQ(r.totalCostMicroUsd, 50'000'000);
  EXPECT_EQ(r.rateCostMicroUsd, 1'000'000);
  EXPECT_EQ(r.updatedAtMs, clock_.nowUnixMs());
  // Untouched.
  EXPECT_EQ(r.concurrencyLimit, 3);
  EXPECT_EQ(r.rateRequests, 100);
  EXPECT_EQ(r.dailyCostMicroUsd, 5'000'000);
  EXPECT_EQ(r.permissions, std::vector<std::string>{"claude"});
  EXPECT_EQ(r.hash, c->record.hash);
  EXPECT_EQ(r.name, "team");
  auto after = keys_->authenticate(c->plainKey);
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)->ratePpm, 2'000'000);  // the cache was dropped

  // An invalid result changes nothing.
  KeyPatch noWindow;
  noWindow.rateWindowMinutes = 0;
  auto bad = keys_->update(c->record.id, noWindow);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message(), "--rate-requests needs --rate-window-min");
  EXPECT_EQ(stored(c->record.id).rateWindowMinutes, 10);
  KeyPatch day;
  day.weeklyResetDay = 9;
  EXPECT_FALSE(keys_->update(c->record.id, day, InputSpelling::kJson));
  EXPECT_EQ(stored(c->record.id).weeklyResetDay, 1);
  KeyPatch models;
  models.modelMode = ModelFilterMode::kAllow;
  models.models = std::vector<std::string>{"claude-haiku-*"};
  ASSERT_TRUE(keys_->update(c->record.id, models));
  EXPECT_EQ(stored(c->record.id).modelMode, ModelFilterMode::kAllow);
  KeyPatch bindings;
  bindings.bindings = std::map<std::string, std::string>{{"claude", "nobody"}};
  EXPECT_FALSE(keys_->update(c->record.id, bindings));
  EXPECT_TRUE(stored(c->record.id).bindings.empty());
  EXPECT_EQ(keys_->update("00000000-0000-4000-8000-000000000000", p).status().code(),
            Code::kNotFound);
}

TEST_F(KeyLimitsTest, UpdateSwitchesBetweenFixedAndActivationExpiry) {
  NewKeyOptions o;
  o.name = "switch";
  o.expiresAtMs = clock_.nowUnixMs() + 100 * kHourMs;
  auto c = keys_->create(o);
  ASSERT_TRUE(c);
  KeyPatch act;
  act.activationMs = kHourMs;
  auto clash = keys_->update(c->record.id, act);
  ASSERT_FALSE(clash);
  EXPECT_NE(clash.status().message().find("exclude each other"), std::string::npos);
  act.expiresAtMs = 0;
  ASSERT_TRUE(keys_->update(c->record.id, act));
  EXPECT_EQ(stored(c->record.id).expiresAtMs, 0);

  const int64_t first = clock_.nowUnixMs();
  ASSERT_TRUE(keys_->authenticate(c->plainKey));
  EXPECT_EQ(stored(c->record.id).expiresAtMs, first + kHourMs);
  // A new duration still counts from the first use.
  KeyPatch longer;
  longer.activationMs = 5 * kHourMs;
  ASSERT_TRUE(keys_->update(c->record.id, longer));
  EXPECT_EQ(stored(c->record.id).expiresAtMs, first + 5 * kHourMs);
  KeyPatch fixed;
  fixed.expiresAtMs = first + 7 * kHourMs;
  EXPECT_FALSE(keys_->update(c->record.id, fixed, InputSpelling::kJson));
  KeyPatch never;
  never.expiresAtMs = 0;  // would make an activated key immortal while activation stays on
  EXPECT_FALSE(keys_->update(c->record.id, never));
  EXPECT_EQ(stored(c->record.id).expiresAtMs, first + 5 * kHourMs);
  // Off: the expiry the activation set goes too.
  KeyPatch off;
  off.activationMs = 0;
  ASSERT_TRUE(keys_->update(c->record.id, off));
  ApiKeyRecord r = stored(c->record.id);
  EXPECT_EQ(r.activationMs, 0);
  EXPECT_EQ(r.activatedAtMs, 0);
  EXPECT_EQ(r.expiresAtMs, 0);
  clock_.advanceMs(10 * kHourMs);
  EXPECT_TRUE(keys_->authenticate(c->plainKey));
}

}  // namespace
}  // namespace rg
