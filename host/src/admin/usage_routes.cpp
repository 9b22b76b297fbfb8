#include "admin/usage_routes.h"

#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "admin/admin_json.h"
#include "cli/cli.h"
#include "crypto/crypto.h"
#include "usage/usage_views.h"

namespace rg {

namespace {

using adminjson::Writer;

constexpr int64_t kHourMs = 3600000;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr size_t kDefaultRecent = 20;
constexpr size_t kDefaultTop = 10;

// ---- Answers (the shape of every admin error) --------------------------------------------------

using adminjson::jsonResponse;
using adminjson::str;

void field(Writer& w, const char* k, const std::string& v) {
  w.Key(k);
  str(w, v);
}

void field(Writer& w, const char* k, int64_t v) {
  w.Key(k);
  w.Int64(v);
}

using adminjson::errorResponse;

// ---- Query -------------------------------------------------------------------------------------

// Percent-decoding only (crypto::percentDecode without plusIsSpace): a '+' stays a '+', so ISO
// offsets like +08:00 pass through unencoded.
std::map<std::string, std::string> parseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    std::string item = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (!item.empty()) {
      size_t eq = item.find('=');
      std::string name = crypto::percentDecode(item.substr(0, eq));
      out[name] =
          eq == std::string::npos ? std::string() : crypto::percentDecode(item.substr(eq + 1));
    }
    if (amp == std::string::npos) {
      break;
    }
    pos = amp + 1;
  }
  return out;
}

std::string param(const std::map<std::string, std::string>& q, const std::string& name) {
  auto it = q.find(name);
  return it == q.end() ? std::string() : it->second;
}

bool allDigits(const std::string& s) {
  return !s.empty() && s.size() <= 15 && s.find_first_not_of("0123456789") == std::string::npos;
}

StatusOr<int64_t> parseTime(const std::string& name, const std::string& v) {
  if (allDigits(v)) {
    return static_cast<int64_t>(std::strtoll(v.c_str(), nullptr, 10));
  }
  auto t = parseIso8601(v);
  if (!t) {
    return invalidArgument(name + ": " + t.status().message() + " (or unix milliseconds)");
  }
  return *t;
}

StatusOr<size_t> parseLimit(const std::map<std::string, std::string>& q, size_t dflt) {
  std::string v = param(q, "limit");
  if (v.empty()) {
    return dflt;
  }
  if (!allDigits(v) || std::strtoll(v.c_str(), nullptr, 10) < 1 ||
      std::strtoll(v.c_str(), nullptr, 10) > static_cast<long long>(kMaxUsageLimit)) {
    return invalidArgument("limit: expected an integer from 1 to " +
                           std::to_string(kMaxUsageLimit) + ", got \"" + v + "\"");
  }
  return static_cast<size_t>(std::strtoll(v.c_str(), nullptr, 10));
}

struct Range {
  int64_t fromMs = 0;
  int64_t toMs = 0;
  std::string by;
  UsageBucket bucket = UsageBucket::kDay;
  std::vector<std::string> labels;
};

StatusOr<Range> readRange(const std::map<std::string, std::string>& q, int64_t nowMs,
                          const TimeZone& tz) {
  Range r;
  r.by = param(q, "by");
  if (r.by.empty()) {
    r.by = "day";
  }
  char kind = 0;
  if (r.by == "hour") {
    kind = 'h';
    r.bucket = UsageBucket::kHour;
  } else if (r.by == "day") {
    kind = 'd';
    r.bucket = UsageBucket::kDay;
  } else if (r.by == "month") {
    kind = 'm';
    r.bucket = UsageBucket::kMonth;
  } else {
    return invalidArgument("by: expected hour, day or month, got \"" + r.by + "\"");
  }
  r.toMs = nowMs;
  if (std::string v = param(q, "to"); !v.empty()) {
    auto t = parseTime("to", v);
    if (!t) {
      return t.status();
    }
    r.toMs = *t;
  }
  r.fromMs = r.toMs - (kind == 'h' ? kDayMs : 7 * kDayMs);
  if (std::string v = param(q, "from"); !v.empty()) {
    auto t = parseTime("from", v);
    if (!t) {
      return t.status();
    }
    r.fromMs = *t;
  }
  if (r.fromMs > r.toMs) {
    return invalidArgument("from (" + isoTimeMs(r.fromMs) + ") is after to (" + isoTimeMs(r.toMs) +
                           ")");
  }
  auto labels = tz.buckets(kind, r.fromMs, r.toMs, kMaxUsageBuckets);
  if (!labels) {
    return invalidArgument("the range " + isoTimeMs(r.fromMs) + " .. " + isoTimeMs(r.toMs) +
                           " has more than " + std::to_string(kMaxUsageBuckets) + " " + r.by +
                           " buckets: narrow from/to or use a coarser by (" +
                           labels.status().message() + ")");
  }
  r.labels = std::move(labels.value());
  return r;
}

void rangeFields(Writer& w, const Range& r, const TimeZone& tz) {
  field(w, "by", r.by);
  field(w, "from", r.fromMs);
  field(w, "to", r.toMs);
  field(w, "from_iso", isoTimeMs(r.fromMs));
  field(w, "to_iso", isoTimeMs(r.toMs));
  field(w, "time_zone", tz.name());
}

// The counters of one point as members of the current object.
void counterFields(Writer& w, const TokenCounts& c) {
  field(w, "requests", c.requests);
  field(w, "input_tokens", c.inputTokens);
  field(w, "output_tokens", c.outputTokens);
  field(w, "cache_create_5m_tokens", c.cacheCreate5mTokens);
  field(w, "cache_create_1h_tokens", c.cacheCreate1hTokens);
  field(w, "cache_read_tokens", c.cacheReadTokens);
  field(w, "all_tokens", c.allTokens());
  field(w, "cost_micro_usd", c.costMicroUsd);
  field(w, "billed_micro_usd", c.billedMicroUsd);
  field(w, "cost_usd", formatMicroUsd(c.costMicroUsd));
  field(w, "billed_usd", formatMicroUsd(c.billedMicroUsd));
}

// ---- Endpoints ---------------------------------------------------------------------------------

AdminResponse seriesAnswer(const std::map<std::string, std::string>& q, const UsageRouteDeps& d,
                           const TimeZone& tz) {
  std::string dimName = param(q, "dim");
  if (dimName.empty()) {
    dimName = "key";
  }
  UsageDim dim = UsageDim::kKey;
  if (dimName == "account") {
    dim = UsageDim::kAccount;
  } else if (dimName == "model") {
    dim = UsageDim::kModel;
  } else if (dimName != "key") {
    return errorResponse(400, "dim: expected key, account or model, got \"" + dimName + "\"");
  }
  std::string byModel = param(q, "by_model");
  bool perModel = byModel == "1" || byModel == "true";
  if (!byModel.empty() && !perModel && byModel != "0" && byModel != "false") {
    return errorResponse(400, "by_model: expected 1 or 0, got \"" + byModel + "\"");
  }
  if (perModel && dim != UsageDim::kKey) {
    return errorResponse(400, "by_model=1 needs dim=key");
  }
  std::string id = param(q, "id");
  if (id.empty()) {
    return errorResponse(400, "id is required (the " + dimName + " to show)");
  }
  auto range = readRange(q, d.clock->nowUnixMs(), tz);
  if (!range) {
    return errorResponse(400, range.status().message());
  }
  auto points = d.store->usage().series(perModel ? UsageDim::kKeyModel : dim, id, range->bucket,
                                        range->labels);
  if (!points) {
    return errorResponse(points.status());
  }
  TokenCounts total;
  for (const auto& p : *points) {
    total.add(p.counts);
  }
  return jsonResponse(200, [&](Writer& w) {
    w.StartObject();
    field(w, "dim", dimName);
    field(w, "id", id);
    w.Key("by_model");
    w.Bool(perModel);
    rangeFields(w, *range, tz);
    w.Key("points");
    w.StartArray();
    for (const auto& p : *points) {
      w.StartObject();
      field(w, "bucket", p.bucket);
      if (perModel) {
        field(w, "model", p.model);
      }
      counterFields(w, p.counts);
      w.EndObject();
    }
    w.EndArray();
    w.Key("total");
    w.StartObject();
    counterFields(w, total);
    w.EndObject();
    w.EndObject();
  });
}

AdminResponse topAnswer(const std::map<std::string, std::string>& q, const UsageRouteDeps& d,
                        const TimeZone& tz) {
  auto limit = parseLimit(q, kDefaultTop);
  if (!limit) {
    return errorResponse(400, limit.status().message());
  }
  auto range = readRange(q, d.clock->nowUnixMs(), tz);
  if (!range) {
    return errorResponse(400, range.status().message());
  }
  auto top = d.store->usage().topKeys(range->bucket, range->labels, *limit);
  if (!top) {
    return errorResponse(top.status());
  }
  auto keys = d.store->keys().list();
  if (!keys) {
    return errorResponse(keys.status());
  }
  std::map<std::string, std::string> names;
  for (const auto& k : *keys) {
    names[k.id] = k.name;
  }
  return jsonResponse(200, [&](Writer& w) {
    w.StartObject();
    rangeFields(w, *range, tz);
    w.Key("keys");
    w.StartArray();
    for (const auto& k : *top) {
      w.StartObject();
      field(w, "key_id", k.keyId);
      auto it = names.find(k.keyId);
      field(w, "name", it == names.end() ? std::string() : it->second);
      w.Key("deleted");
      w.Bool(it == names.end());
      field(w, "billed_micro_usd", k.billedMicroUsd);
      field(w, "billed_usd", formatMicroUsd(k.billedMicroUsd));
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  });
}

AdminResponse recentAnswer(const std::map<std::string, std::string>& q, const UsageRouteDeps& d,
                           const TimeZone& tz) {
  std::string key = param(q, "key");
  if (key.empty()) {
    return errorResponse(400, "key is required (a gateway key id)");
  }
  auto limit = parseLimit(q, kDefaultRecent);
  if (!limit) {
    return errorResponse(400, limit.status().message());
  }
  auto records = d.store->usage().recent(key, *limit);
  if (!records) {
    return errorResponse(records.status());
  }
  return jsonResponse(200, [&](Writer& w) {
    w.StartObject();
    field(w, "key_id", key);
    field(w, "time_zone", tz.name());
    w.Key("records");
    w.StartArray();
    for (const auto& e : *records) {
      w.StartObject();
      field(w, "request_id", e.requestId);
      field(w, "time", e.unixMs);
      field(w, "time_iso", isoTimeMs(e.unixMs));
      field(w, "hour", e.hour);
      field(w, "model", e.model);
      field(w, "upstream_model", e.upstreamModel);
      field(w, "provider", e.provider);
      field(w, "account_id", e.accountId);
      field(w, "status", e.status);
      w.Key("stream");
      w.Bool(e.stream);
      field(w, "first_byte_ms", e.firstByteMs);
      field(w, "total_ms", e.totalMs);
      field(w, "client", e.client);
      counterFields(w, e.counts);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  });
}

}  // namespace

std::optional<AdminResponse> handleUsageRoute(const AdminRequest& req, const UsageRouteDeps& deps) {
  std::string path = req.path;
  if (path.size() > 1 && path.back() == '/') {
    path.pop_back();
  }
  enum class Which { kSeries, kTop, kRecent } which;
  if (path == "/admin/usage") {
    which = Which::kSeries;
  } else if (path == "/admin/usage/top") {
    which = Which::kTop;
  } else if (path == "/admin/usage/recent") {
    which = Which::kRecent;
  } else {
    return std::nullopt;
  }
  if (req.method != "GET") {
    AdminResponse r = errorResponse(405, "method " + req.method + " not allowed on " + req.path);
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (deps.store == nullptr || deps.clock == nullptr) {
    return errorResponse(501, "usage views are not configured on this server");
  }
  static const TimeZone kUtc = TimeZone::utc();
  const TimeZone& tz = deps.timeZone != nullptr ? *deps.timeZone : kUtc;
  try {
    auto q = parseQuery(req.query);
    switch (which) {
      case Which::kSeries:
        return seriesAnswer(q, deps, tz);
      case Which::kTop:
        return topAnswer(q, deps, tz);
      case Which::kRecent:
        return recentAnswer(q, deps, tz);
    }
  } catch (const std::exception& e) {
    spdlog::error("admin usage api: {} {} failed: {}", req.method, req.path, e.what());
  }
  return errorResponse(500, "internal error");
}

}  // namespace rg
