#include "cli/usage_command.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

#include <rapidjson/document.h>

#include "admin/usage_routes.h"
#include "app/app.h"
#include "common/time_zone.h"

namespace rg {

namespace {

constexpr const char* kHelp =
    R"(  usage (--key ID | --account ID | --model M) [--from ISO8601 --to ISO8601]
        [--by hour|day|month] [--by-model] [--json]
                                usage per bucket (default: the last 7 days by day, the last
                                24 hours by hour) in accounting.time_zone; --by-model splits a
                                key's usage per model
  usage top [--from ISO8601 --to ISO8601] [--by hour|day|month] [--limit N] [--json]
                                keys by billed cost
  usage recent --key ID [--limit N] [--json]
                                the key's most recent requests
)";

int usageError(const std::string& message) {
  std::fprintf(stderr, "error: %s\nusage:\n%s", message.c_str(), kHelp);
  return 2;
}

std::string percentEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// ---- Tables ------------------------------------------------------------------------------------

// Prints rows (the first is the header) in aligned columns: the first `textColumns` columns
// left-aligned, the rest (numbers) right-aligned.
void printTable(const std::vector<std::vector<std::string>>& rows, size_t textColumns) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()), 0);
    for (size_t i = 0; i < r.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      std::string pad(width[i] - r[i].size(), ' ');
      if (i > 0) {
        line += "  ";
      }
      line += i < textColumns ? r[i] + (i + 1 < r.size() ? pad : "") : pad + r[i];
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string s(const rapidjson::Value& o, const char* k) {
  if (!o.IsObject() || !o.HasMember(k)) {
    return "";
  }
  const auto& v = o[k];
  if (v.IsString()) {
    return v.GetString();
  }
  if (v.IsInt64()) {
    return std::to_string(v.GetInt64());
  }
  if (v.IsBool()) {
    return v.GetBool() ? "yes" : "no";
  }
  return "";
}

std::vector<std::string> counterColumns() {
  return {"REQUESTS",   "INPUT",      "OUTPUT",   "CACHE_W_5M", "CACHE_W_1H",
          "CACHE_READ", "ALL_TOKENS", "COST_USD", "BILLED_USD"};
}

void appendCounters(std::vector<std::string>& row, const rapidjson::Value& o) {
  for (const char* k :
       {"requests", "input_tokens", "output_tokens", "cache_create_5m_tokens",
        "cache_create_1h_tokens", "cache_read_tokens", "all_tokens", "cost_usd", "billed_usd"}) {
    row.push_back(s(o, k));
  }
}

void printSeries(const rapidjson::Document& d) {
  bool perModel = d["by_model"].GetBool();
  std::printf("%s %s by %s, %s .. %s (time zone %s)\n", s(d, "dim").c_str(), s(d, "id").c_str(),
              s(d, "by").c_str(), s(d, "from_iso").c_str(), s(d, "to_iso").c_str(),
              s(d, "time_zone").c_str());
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"BUCKET"};
  if (perModel) {
    head.push_back("MODEL");
  }
  for (auto& c : counterColumns()) {
    head.push_back(c);
  }
  rows.push_back(head);
  for (const auto& p : d["points"].GetArray()) {
    std::vector<std::string> row = {s(p, "bucket")};
    if (perModel) {
      row.push_back(s(p, "model"));
    }
    appendCounters(row, p);
    rows.push_back(row);
  }
  std::vector<std::string> total = {"TOTAL"};
  if (perModel) {
    total.push_back("");
  }
  appendCounters(total, d["total"]);
  rows.push_back(total);
  printTable(rows, perModel ? 2 : 1);
}

void printTop(const rapidjson::Document& d) {
  std::printf("keys by billed cost, %s .. %s by %s (time zone %s)\n", s(d, "from_iso").c_str(),
              s(d, "to_iso").c_str(), s(d, "by").c_str(), s(d, "time_zone").c_str());
  std::vector<std::vector<std::string>> rows = {{"RANK", "KEY_ID", "NAME", "BILLED_USD"}};
  int rank = 0;
  for (const auto& k : d["keys"].GetArray()) {
    std::string name = s(k, "name");
    if (k["deleted"].GetBool()) {
      name = "(deleted)";
    }
    rows.push_back({std::to_string(++rank), s(k, "key_id"), name, s(k, "billed_usd")});
  }
  printTable(rows, 3);
}

void printRecent(const rapidjson::Document& d) {
  std::printf("recent requests of key %s (times UTC)\n", s(d, "key_id").c_str());
  std::vector<std::vector<std::string>> rows = {{"TIME", "MODEL", "REQUEST_ID", "STATUS", "STREAM",
                                                 "TOTAL_MS", "INPUT", "OUTPUT", "CACHE_W",
                                                 "CACHE_READ", "BILLED_USD"}};
  for (const auto& r : d["records"].GetArray()) {
    int64_t cacheW =
        r["cache_create_5m_tokens"].GetInt64() + r["cache_create_1h_tokens"].GetInt64();
    rows.push_back({s(r, "time_iso"), s(r, "model"), s(r, "request_id"), s(r, "status"),
                    s(r, "stream"), s(r, "total_ms"), s(r, "input_tokens"), s(r, "output_tokens"),
                    std::to_string(cacheW), s(r, "cache_read_tokens"), s(r, "billed_usd")});
  }
  printTable(rows, 3);
}

}  // namespace

const char* usageCommandHelp() {
  return kHelp;
}

int runUsageCommand(const Config& cfg, const std::vector<std::string>& positional,
                    const std::map<std::string, std::string>& flags) {
  const std::string verb = positional.size() > 1 ? positional[1] : "";
  if (positional.size() > 2 || (!verb.empty() && verb != "top" && verb != "recent")) {
    return usageError("unexpected argument \"" + positional.back() + "\"");
  }
  std::set<std::string> known = {"config", "json"};
  if (verb.empty()) {
    known.insert({"key", "account", "model", "from", "to", "by", "by-model"});
  } else if (verb == "top") {
    known.insert({"from", "to", "by", "limit"});
  } else {
    known.insert({"key", "limit"});
  }
  for (const auto& [name, value] : flags) {
    if (known.count(name) == 0) {
      return usageError("--" + name + " is not an option of relaygate usage" +
                        (verb.empty() ? "" : " " + verb));
    }
  }
  auto flag = [&](const char* n) {
    auto it = flags.find(n);
    return it == flags.end() ? std::string() : it->second;
  };
  std::string query;
  auto add = [&](const std::string& name, const std::string& value) {
    if (!value.empty()) {
      query += (query.empty() ? "" : "&") + name + "=" + percentEncode(value);
    }
  };
  std::string path = "/admin/usage";
  if (verb.empty()) {
    int dims = 0;
    for (const char* d : {"key", "account", "model"}) {
      if (!flag(d).empty()) {
        ++dims;
        add("dim", d);
        add("id", flag(d));
      }
    }
    if (dims != 1) {
      return usageError("name exactly one of --key, --account or --model");
    }
    if (!flag("by-model").empty()) {
      add("by_model", "1");
    }
  } else if (verb == "top") {
    path += "/top";
  } else {
    path += "/recent";
    if (flag("key").empty()) {
      return usageError("relaygate usage recent needs --key ID");
    }
    add("key", flag("key"));
  }
  for (const char* n : {"from", "to", "by", "limit"}) {
    add(n, flag(n));
  }

  auto zone = TimeZone::load(cfg.accounting.timeZone);
  if (!zone) {
    std::fprintf(stderr, "error: accounting.time_zone: %s\n", zone.status().message().c_str());
    return 1;
  }
  // Only the store: reading usage needs neither the master key nor the services.
  auto store = openStoreFromConfig(cfg, SystemClock::instance());
  if (!store) {
    std::fprintf(stderr, "error: %s\n", store.status().message().c_str());
    return 1;
  }
  AdminRequest req;
  req.method = "GET";
  req.path = path;
  req.query = query;
  auto r = handleUsageRoute(req, {store->get(), &SystemClock::instance(), &zone.value()});
  if (!r) {
    std::fprintf(stderr, "error: internal: %s is not a usage route\n", path.c_str());
    return 1;
  }
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(r->body.data(), r->body.size());
  if (r->status != 200) {
    std::string msg = r->body;
    if (!d.HasParseError() && d.IsObject() && d.HasMember("error") &&
        d["error"].HasMember("message") && d["error"]["message"].IsString()) {
      msg = d["error"]["message"].GetString();
    }
    std::fprintf(stderr, "error: %s\n", msg.c_str());
    return r->status == 400 ? 2 : 1;
  }
  if (!flag("json").empty()) {
    std::printf("%s\n", r->body.c_str());
    return 0;
  }
  if (d.HasParseError() || !d.IsObject()) {
    std::fprintf(stderr, "error: internal: unreadable answer\n");
    return 1;
  }
  if (verb.empty()) {
    printSeries(d);
  } else if (verb == "top") {
    printTop(d);
  } else {
    printRecent(d);
  }
  return 0;
}

}  // namespace rg
