#include "usage/usage_views.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace rg {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr int64_t kDayMs = 86400000;
constexpr int64_t kHourMs = 3600000;

bool startsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}

void str(Writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// A JSON number written from its exact decimal text.
void rawNumber(Writer& w, const std::string& text) {
  w.RawValue(text.data(), text.size(), rapidjson::kNumberType);
}

void usd(Writer& w, const char* k, int64_t microUsd) {
  w.Key(k);
  rawNumber(w, formatMicroUsd(microUsd));
}

void int64Field(Writer& w, const char* k, int64_t v) {
  w.Key(k);
  w.Int64(v);
}

void isoOrNull(Writer& w, const char* k, int64_t unixMs) {
  w.Key(k);
  if (unixMs > 0) {
    str(w, isoTimeMs(unixMs));
  } else {
    w.Null();
  }
}

// num / den rounded half up to two decimals, as JSON number text ("12.35"); both >= 0, den > 0.
std::string ratio2(int64_t num, int64_t den) {
  // Whole part and remainder apart, so that no product overflows whatever num holds (totals are
  // sums of upstream counts); den is a number of minutes or days.
  num = std::max<int64_t>(0, num);
  int64_t whole = num / den;
  int64_t frac = ((num % den) * 200 + den) / (2 * den);  // 0..100
  int64_t hundredths = whole > (INT64_MAX - 100) / 100 ? INT64_MAX : whole * 100 + frac;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(hundredths / 100),
                static_cast<long long>(hundredths % 100));
  return buf;
}

// The reference's period object, plus the two cache-write kinds and the money.
void periodObject(Writer& w, const TokenCounts& c) {
  w.StartObject();
  // The reference reads `tokens` back as allTokens (its "core" tokens are never shown).
  int64Field(w, "tokens", c.allTokens());
  int64Field(w, "inputTokens", c.inputTokens);
  int64Field(w, "outputTokens", c.outputTokens);
  int64Field(w, "cacheCreateTokens", c.cacheCreate5mTokens + c.cacheCreate1hTokens);
  int64Field(w, "cacheReadTokens", c.cacheReadTokens);
  int64Field(w, "allTokens", c.allTokens());
  int64Field(w, "requests", c.requests);
  int64Field(w, "ephemeral5mTokens", c.cacheCreate5mTokens);
  int64Field(w, "ephemeral1hTokens", c.cacheCreate1hTokens);
  usd(w, "cost", c.billedMicroUsd);
  usd(w, "realCost", c.costMicroUsd);
  w.EndObject();
}

void recordObject(Writer& w, const UsageEvent& e) {
  const TokenCounts& c = e.counts;
  w.StartObject();
  w.Key("timestamp");
  str(w, isoTimeMs(e.unixMs));
  w.Key("model");
  str(w, e.model);
  w.Key("accountId");
  str(w, e.accountId);
  w.Key("requestId");
  str(w, e.requestId);
  w.Key("stream");
  w.Bool(e.stream);
  int64Field(w, "statusCode", e.status);
  int64Field(w, "durationMs", e.totalMs);
  int64Field(w, "inputTokens", c.inputTokens);
  int64Field(w, "outputTokens", c.outputTokens);
  int64Field(w, "cacheCreateTokens", c.cacheCreate5mTokens + c.cacheCreate1hTokens);
  int64Field(w, "cacheReadTokens", c.cacheReadTokens);
  int64Field(w, "ephemeral5mTokens", c.cacheCreate5mTokens);
  int64Field(w, "ephemeral1hTokens", c.cacheCreate1hTokens);
  int64Field(w, "totalTokens", c.allTokens());
  usd(w, "cost", c.billedMicroUsd);
  usd(w, "realCost", c.costMicroUsd);
  w.EndObject();
}

struct ViewData {
  int64_t nowMs = 0;
  TokenCounts total;
  TokenCounts daily;
  TokenCounts monthly;
  std::vector<UsageEvent> recent;
  AdmissionState state;
  std::string week;  // "" = the key has no weekly limit
};

void usageStats(Writer& w, const ApiKeyRecord& key, const ViewData& d) {
  w.StartObject();
  w.Key("total");
  periodObject(w, d.total);
  w.Key("daily");
  periodObject(w, d.daily);
  w.Key("monthly");
  periodObject(w, d.monthly);
  // As the reference: over the whole days since the key was created (at least one).
  int64_t age = key.createdAtMs > 0 ? d.nowMs - key.createdAtMs : 0;
  int64_t days = std::max<int64_t>(1, (std::max<int64_t>(0, age) + kDayMs - 1) / kDayMs);
  int64_t minutes = days * 24 * 60;
  w.Key("averages");
  w.StartObject();
  w.Key("rpm");
  rawNumber(w, ratio2(d.total.requests, minutes));
  w.Key("tpm");
  rawNumber(w, ratio2(d.total.allTokens(), minutes));
  w.Key("dailyRequests");
  rawNumber(w, ratio2(d.total.requests, days));
  w.Key("dailyTokens");
  rawNumber(w, ratio2(d.total.allTokens(), days));
  w.EndObject();
  w.Key("recentRecords");
  w.StartArray();
  for (const auto& e : d.recent) {
    recordObject(w, e);
  }
  w.EndArray();
  w.EndObject();
}

void limitsObject(Writer& w, const ApiKeyRecord& key, const ViewData& d, const TimeZone& tz) {
  w.StartObject();
  // The reference's two fields (0 = no limit).
  int64Field(w, "tokens", key.rateTokens);
  int64Field(w, "requests", key.rateRequests);
  if (key.concurrencyLimit > 0) {
    w.Key("concurrency");
    w.StartObject();
    int64Field(w, "limit", key.concurrencyLimit);
    int64Field(w, "inFlight", d.state.inFlight);
    w.EndObject();
  }
  if (key.rateWindowMinutes > 0) {
    bool open = d.state.windowEndMs > d.nowMs;
    w.Key("rateWindow");
    w.StartObject();
    int64Field(w, "windowMinutes", key.rateWindowMinutes);
    w.Key("requests");
    w.StartObject();
    int64Field(w, "limit", key.rateRequests);
    int64Field(w, "current", open ? d.state.windowRequests : 0);
    w.EndObject();
    w.Key("tokens");
    w.StartObject();
    int64Field(w, "limit", key.rateTokens);
    int64Field(w, "current", open ? d.state.windowTokens : 0);
    w.EndObject();
    w.Key("cost");
    w.StartObject();
    usd(w, "limit", key.rateCostMicroUsd);
    usd(w, "current", open ? d.state.windowCostMicroUsd : 0);
    w.EndObject();
    isoOrNull(w, "resetAt", open ? d.state.windowEndMs : 0);
    w.EndObject();
  }
  if (key.dailyCostMicroUsd > 0) {
    w.Key("dailyCost");
    w.StartObject();
    usd(w, "limit", key.dailyCostMicroUsd);
    usd(w, "current", d.daily.billedMicroUsd);
    isoOrNull(w, "resetAt", nextLocalMidnightMs(tz, d.nowMs));
    w.EndObject();
  }
  if (key.totalCostMicroUsd > 0) {
    w.Key("totalCost");
    w.StartObject();
    usd(w, "limit", key.totalCostMicroUsd);
    usd(w, "current", d.total.billedMicroUsd);
    w.EndObject();
  }
  if (key.weeklyCostMicroUsd > 0) {
    w.Key("weeklyCost");
    w.StartObject();
    usd(w, "limit", key.weeklyCostMicroUsd);
    usd(w, "current", d.state.weeklyCostMicroUsd);
    w.Key("period");
    str(w, d.week);
    int64Field(w, "resetDay", key.weeklyResetDay);
    int64Field(w, "resetHour", key.weeklyResetHour);
    isoOrNull(w, "resetAt",
              nextWeeklyResetMs(tz, d.nowMs, key.weeklyResetDay, key.weeklyResetHour));
    w.EndObject();
  }
  isoOrNull(w, "expiresAt", key.expiresAtMs);
  if (key.activationMs > 0) {
    w.Key("activation");
    w.StartObject();
    int64Field(w, "durationMs", key.activationMs);
    w.Key("activated");
    w.Bool(key.activatedAtMs > 0);
    isoOrNull(w, "activatedAt", key.activatedAtMs);
    w.EndObject();
  }
  w.EndObject();
}

StatusOr<TokenCounts> onePoint(UsageStore& us, const std::string& keyId, UsageBucket bucket,
                               const std::string& label) {
  auto s = us.series(UsageDim::kKey, keyId, bucket, {label});
  if (!s) {
    return s.status();
  }
  return s->empty() ? TokenCounts{} : s->front().counts;
}

}  // namespace

std::optional<ClientView> matchClientView(std::string_view method, std::string_view path) {
  if (method != "GET") {
    return std::nullopt;
  }
  std::string_view rest;
  bool mounted = false;
  for (std::string_view mount : {"/api/v1/", "/claude/v1/", "/v1/"}) {
    if (startsWith(path, mount)) {
      rest = path.substr(mount.size());
      mounted = true;
      break;
    }
  }
  if (!mounted) {
    return std::nullopt;
  }
  if (rest == "key-info") {
    return ClientView::kKeyInfo;
  }
  if (rest == "usage") {
    return ClientView::kUsage;
  }
  constexpr std::string_view kOrgs = "organizations/";
  constexpr std::string_view kTail = "/usage";
  if (startsWith(rest, kOrgs) && rest.size() > kOrgs.size() + kTail.size() &&
      rest.compare(rest.size() - kTail.size(), kTail.size(), kTail) == 0) {
    std::string_view org = rest.substr(kOrgs.size(), rest.size() - kOrgs.size() - kTail.size());
    if (!org.empty() && org.find('/') == std::string_view::npos) {
      return ClientView::kOrgUsage;
    }
  }
  return std::nullopt;
}

namespace {

int weekdayOf(int64_t resetDay) {
  return static_cast<int>(((resetDay % 7) + 7) % 7);
}

int hourOf(int64_t resetHour) {
  return static_cast<int>(std::clamp<int64_t>(resetHour, 0, 23));
}

}  // namespace

std::string weeklyPeriodId(const TimeZone& tz, int64_t nowMs, int64_t resetDay, int64_t resetHour) {
  int hour = hourOf(resetHour);
  char hh[8];
  std::snprintf(hh, sizeof hh, "T%02d", hour);
  return tz.weekBucket(nowMs, weekdayOf(resetDay), hour) + hh;
}

int64_t nextWeeklyResetMs(const TimeZone& tz, int64_t nowMs, int64_t resetDay, int64_t resetHour) {
  int wd = weekdayOf(resetDay);
  int hour = hourOf(resetHour);
  int64_t start = tz.weekStartMs(nowMs, wd, hour);
  // A week is 7 days +- one DST hour: two hours past seven days is always in the next one.
  return tz.weekStartMs(start + 7 * kDayMs + 2 * kHourMs, wd, hour);
}

int64_t nextLocalMidnightMs(const TimeZone& tz, int64_t nowMs) {
  // A local day lasts 23 to 25 hours: 26 hours past its start is always in the next one.
  return tz.dayStartMs(tz.dayStartMs(nowMs) + 26 * kHourMs);
}

bool isClaudeFamilyModel(std::string_view model) {
  std::string m(model);
  std::transform(m.begin(), m.end(), m.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return startsWith(m, "claude-") || startsWith(m, "anthropic.claude-") ||
         m.find(".anthropic.claude-") != std::string::npos || m.find("opus") != std::string::npos ||
         m.find("sonnet") != std::string::npos || m.find("haiku") != std::string::npos;
}

std::string formatMicroUsd(int64_t microUsd) {
  // Unsigned magnitude: -INT64_MIN does not fit an int64.
  uint64_t mag =
      microUsd < 0 ? 0 - static_cast<uint64_t>(microUsd) : static_cast<uint64_t>(microUsd);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%llu.%06llu", microUsd < 0 ? "-" : "",
                static_cast<unsigned long long>(mag / 1000000),
                static_cast<unsigned long long>(mag % 1000000));
  return buf;
}

std::string isoTimeMs(int64_t unixMs) {
  int64_t secs = unixMs / 1000;
  int64_t ms = unixMs % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03lldZ", static_cast<long long>(ms));
  return buf;
}

StatusOr<std::string> UsageViews::clientView(ClientView view, const ApiKeyRecord& key) {
  UsageStore& us = store_.usage();
  ViewData d;
  d.nowMs = clock_.nowUnixMs();
  auto total = us.lifetime(UsageDim::kKey, key.id);
  if (!total) {
    return total.status();
  }
  d.total = *total;

  rapidjson::StringBuffer sb;
  Writer w(sb);
  if (view == ClientView::kOrgUsage) {
    w.StartObject();
    w.Key("object");
    w.String("usage");
    w.Key("data");
    w.StartArray();
    w.StartObject();
    w.Key("type");
    w.String("credit_balance");
    w.Key("credit_balance");
    if (key.totalCostMicroUsd > 0) {
      rawNumber(w, formatMicroUsd(key.totalCostMicroUsd - d.total.billedMicroUsd));
    } else if (key.rateTokens > 0) {
      w.Int64(key.rateTokens - d.total.allTokens());
    } else {
      w.Null();
    }
    w.EndObject();
    w.EndArray();
    w.EndObject();
    return std::string(sb.GetString(), sb.GetSize());
  }

  auto daily = onePoint(us, key.id, UsageBucket::kDay, tz_.dayBucket(d.nowMs));
  if (!daily) {
    return daily.status();
  }
  d.daily = *daily;
  auto monthly = onePoint(us, key.id, UsageBucket::kMonth, tz_.monthBucket(d.nowMs));
  if (!monthly) {
    return monthly.status();
  }
  d.monthly = *monthly;
  auto recent = us.recent(key.id, kRecentRecords);
  if (!recent) {
    return recent.status();
  }
  d.recent = std::move(recent.value());
  if (key.weeklyCostMicroUsd > 0) {
    d.week = weeklyPeriodId(tz_, d.nowMs, key.weeklyResetDay, key.weeklyResetHour);
  }
  auto state = store_.admission().state(key.id, d.week);
  if (!state) {
    return state.status();
  }
  d.state = *state;

  w.StartObject();
  if (view == ClientView::kKeyInfo) {
    w.Key("keyInfo");
    w.StartObject();
    w.Key("id");
    str(w, key.id);
    w.Key("name");
    str(w, key.name);
    int64Field(w, "tokenLimit", key.rateTokens);
    w.Key("usage");
    usageStats(w, key, d);
    w.Key("limits");
    limitsObject(w, key, d, tz_);
    w.EndObject();
  } else {
    w.Key("usage");
    usageStats(w, key, d);
    w.Key("limits");
    limitsObject(w, key, d, tz_);
  }
  w.Key("timestamp");
  str(w, isoTimeMs(d.nowMs));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace rg
