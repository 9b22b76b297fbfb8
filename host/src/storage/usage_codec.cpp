#include "storage/usage_codec.h"

#include <ctime>

#include "storage/store_util.h"

namespace rg::storage {

namespace {

void putStr(JsonWriter& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void putInt(JsonWriter& w, const char* k, int64_t v) {
  w.Key(k);
  w.Int64(v);
}

std::string getStr(const rapidjson::Value& o, const char* k) {
  auto it = o.FindMember(k);
  if (it == o.MemberEnd() || !it->value.IsString()) {
    return {};
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

int64_t getInt(const rapidjson::Value& o, const char* k) {
  auto it = o.FindMember(k);
  return it != o.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
}

}  // namespace

void writeUsageEventFields(JsonWriter& w, const UsageEvent& ev) {
  putStr(w, "rid", ev.requestId);
  putStr(w, "key", ev.keyId);
  putStr(w, "acct", ev.accountId);
  putStr(w, "model", ev.model);
  putStr(w, "day", ev.day);
  putInt(w, "ms", ev.unixMs);
  w.Key("c");
  w.StartObject();
  for (const auto& f : kTokenFields) {
    putInt(w, f.name, ev.counts.*f.member);
  }
  w.EndObject();
  // Written only when set: most are, but it keeps lines of events without them short.
  if (!ev.hour.empty()) {
    putStr(w, "hour", ev.hour);
  }
  if (!ev.month.empty()) {
    putStr(w, "month", ev.month);
  }
  if (!ev.provider.empty()) {
    putStr(w, "prov", ev.provider);
  }
  if (!ev.upstreamModel.empty()) {
    putStr(w, "up", ev.upstreamModel);
  }
  if (ev.status != 0) {
    putInt(w, "st", ev.status);
  }
  if (ev.stream) {
    w.Key("stream");
    w.Bool(true);
  }
  if (ev.firstByteMs != 0) {
    putInt(w, "fb", ev.firstByteMs);
  }
  if (ev.totalMs != 0) {
    putInt(w, "tot", ev.totalMs);
  }
  if (!ev.client.empty()) {
    putStr(w, "cli", ev.client);
  }
}

UsageEvent readUsageEventFields(const rapidjson::Value& o) {
  UsageEvent ev;
  ev.requestId = getStr(o, "rid");
  ev.keyId = getStr(o, "key");
  ev.accountId = getStr(o, "acct");
  ev.model = getStr(o, "model");
  ev.day = getStr(o, "day");
  ev.unixMs = getInt(o, "ms");
  auto c = o.FindMember("c");
  if (c != o.MemberEnd() && c->value.IsObject()) {
    for (const auto& f : kTokenFields) {
      ev.counts.*f.member = getInt(c->value, f.name);
    }
  }
  ev.hour = getStr(o, "hour");
  ev.month = getStr(o, "month");
  ev.provider = getStr(o, "prov");
  ev.upstreamModel = getStr(o, "up");
  ev.status = getInt(o, "st");
  auto s = o.FindMember("stream");
  ev.stream = s != o.MemberEnd() && s->value.IsBool() && s->value.GetBool();
  ev.firstByteMs = getInt(o, "fb");
  ev.totalMs = getInt(o, "tot");
  ev.client = getStr(o, "cli");
  return ev;
}

std::string encodeUsageEvent(const UsageEvent& ev) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  writeUsageEventFields(w, ev);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool decodeUsageEvent(const std::string& text, UsageEvent* out) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) {
    return false;
  }
  *out = readUsageEventFields(d);
  return true;
}

UsageEvent withTimeBuckets(UsageEvent ev) {
  if (!ev.hour.empty() && !ev.day.empty() && !ev.month.empty()) {
    return ev;
  }
  // Floor division, so that a (nonsensical) negative time still gives a valid bucket.
  int64_t secs = ev.unixMs >= 0 ? ev.unixMs / 1000 : -((-ev.unixMs + 999) / 1000);
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  if (ev.hour.empty()) {
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H", &tm);
    ev.hour = buf;
  }
  if (ev.day.empty()) {
    std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
    ev.day = buf;
  }
  if (ev.month.empty()) {
    std::strftime(buf, sizeof(buf), "%Y-%m", &tm);
    ev.month = buf;
  }
  return ev;
}

}  // namespace rg::storage
