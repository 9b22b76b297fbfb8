#include "admin/admin_api.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "accounts/account_input.h"
#include "admin/admin_json.h"
#include "admin/usage_routes.h"
#include "auth/key_input.h"
#include "crypto/crypto.h"
#include "oauth/claude_oauth.h"

namespace rg {

namespace {

using adminjson::Writer;
using Json = rapidjson::Value;

// ---- Responses ---------------------------------------------------------------------------------

using adminjson::errorResponse;
using adminjson::httpStatusOf;
using adminjson::jsonResponse;
using adminjson::str;

void strList(Writer& w, const std::vector<std::string>& v) {
  w.StartArray();
  for (const auto& s : v) {
    str(w, s);
  }
  w.EndArray();
}

void strMap(Writer& w, const std::map<std::string, std::string>& m) {
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    str(w, v);
  }
  w.EndObject();
}

// One member of an object per call: field(w, "name", value) for each type the API answers with.
// (const char* and int have their own overloads: they would otherwise convert to bool.)
void field(Writer& w, const char* k, const std::string& v) {
  w.Key(k);
  str(w, v);
}
void field(Writer& w, const char* k, const char* v) {
  w.Key(k);
  w.String(v);
}
void field(Writer& w, const char* k, int64_t v) {
  w.Key(k);
  w.Int64(v);
}
void field(Writer& w, const char* k, int v) {
  w.Key(k);
  w.Int(v);
}
void field(Writer& w, const char* k, bool v) {
  w.Key(k);
  w.Bool(v);
}
void field(Writer& w, const char* k, const std::vector<std::string>& v) {
  w.Key(k);
  strList(w, v);
}
void field(Writer& w, const char* k, const std::map<std::string, std::string>& v) {
  w.Key(k);
  strMap(w, v);
}

// "projectId" -> "project_id": settings are stored camelCase, the API speaks snake_case.
std::string snakeCase(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isupper(static_cast<unsigned char>(c)) != 0) {
      out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

void writeCooldown(Writer& w, const CooldownRecord& c, const std::string* accountName) {
  w.StartObject();
  field(w, "account_id", c.accountId);
  if (accountName != nullptr) {
    field(w, "account_name", *accountName);
  }
  field(w, "scope", c.scope);
  field(w, "until", c.untilMs);
  field(w, "marked_at", c.markedAtMs);
  field(w, "error_class", c.errorClass);
  field(w, "reason", c.reason);
  field(w, "upstream_status", c.upstreamStatus);
  w.EndObject();
}

void writeAccount(Writer& w, AccountService& svc, const AccountRecord& r,
                  const std::vector<CooldownRecord>& cooldowns) {
  w.StartObject();
  field(w, "id", r.id);
  field(w, "name", r.name);
  field(w, "type", r.type);
  field(w, "provider", r.provider.empty() ? AccountService::providerOf(r.type) : r.provider);
  field(w, "status", r.status);
  field(w, "status_reason", r.statusReason);
  field(w, "schedulable", r.schedulable);
  field(w, "priority", r.priority);
  field(w, "sharing", r.sharing);
  field(w, "groups", r.groups);
  field(w, "concurrency_limit", r.concurrencyLimit);
  field(w, "model_mapping", r.modelMapping);
  field(w, "base_url", r.baseUrl);
  std::map<std::string, std::string> settings;
  for (const auto& [k, v] : AccountService::settingsOf(r)) {
    settings.emplace(snakeCase(k), v);
  }
  field(w, "settings", settings);
  field(w, "proxy_url", r.proxyUrl);
  field(w, "subscription_expires_at", r.subscriptionExpiresAtMs);
  field(w, "created_at", r.createdAtMs);
  field(w, "updated_at", r.updatedAtMs);
  field(w, "last_used_at", r.lastUsedAtMs);
  w.Key("secrets");
  auto masked = svc.maskedSecrets(r);
  w.StartArray();
  if (masked) {
    for (const auto& m : *masked) {
      w.StartObject();
      field(w, "name", m.name);
      field(w, "masked", m.masked);
      w.EndObject();
    }
  }
  w.EndArray();
  if (!masked) {
    // A record sealed under another master key: say so instead of failing the whole list.
    field(w, "secrets_error", masked.status().message());
  }
  w.Key("cooldowns");
  w.StartArray();
  for (const auto& c : cooldowns) {
    if (c.accountId == r.id) {
      writeCooldown(w, c, nullptr);
    }
  }
  w.EndArray();
  w.EndObject();
}

const char* modelModeName(ModelFilterMode m) {
  switch (m) {
    case ModelFilterMode::kAllow:
      return "allow";
    case ModelFilterMode::kDeny:
      return "deny";
    default:
      return "none";
  }
}

// The key record without its hash (not a secret, but of no use to an operator).
void writeKey(Writer& w, const ApiKeyRecord& k) {
  w.StartObject();
  field(w, "id", k.id);
  field(w, "name", k.name);
  field(w, "enabled", k.enabled);
  field(w, "created_at", k.createdAtMs);
  field(w, "updated_at", k.updatedAtMs);
  field(w, "expires_at", k.expiresAtMs);
  field(w, "permissions", k.permissions);
  field(w, "concurrency_limit", k.concurrencyLimit);
  field(w, "rate_window_minutes", k.rateWindowMinutes);
  field(w, "rate_requests", k.rateRequests);
  field(w, "rate_tokens", k.rateTokens);
  field(w, "model_mode", modelModeName(k.modelMode));
  field(w, "models", k.models);
  field(w, "bindings", k.bindings);
  // Money twice: exact integer micro-dollars and the same amount as decimal USD text.
  struct {
    const char* micro;
    const char* usd;
    int64_t v;
  } money[] = {
      {"rate_cost_micro_usd", "rate_cost_usd", k.rateCostMicroUsd},
      {"daily_cost_micro_usd", "daily_cost_usd", k.dailyCostMicroUsd},
      {"total_cost_micro_usd", "total_cost_usd", k.totalCostMicroUsd},
      {"weekly_cost_micro_usd", "weekly_cost_usd", k.weeklyCostMicroUsd},
  };
  for (const auto& m : money) {
    field(w, m.micro, m.v);
    field(w, m.usd, formatUsdMicros(m.v));
  }
  field(w, "weekly_reset_day", k.weeklyResetDay);
  field(w, "weekly_reset_hour", k.weeklyResetHour);
  field(w, "rate", formatRatePpm(k.ratePpm));
  field(w, "rate_ppm", k.ratePpm);
  field(w, "activation_ms", k.activationMs);
  field(w, "activated_at", k.activatedAtMs);
  w.EndObject();
}

void writeEvent(Writer& w, const AccountEvent& e) {
  w.StartObject();
  field(w, "type", e.type);
  field(w, "account_id", e.accountId);
  field(w, "account_name", e.accountName);
  field(w, "old_state", e.oldState);
  field(w, "new_state", e.newState);
  field(w, "scope", e.scope);
  field(w, "reason", e.reason);
  field(w, "until", e.untilMs);
  field(w, "at", e.atMs);
  w.EndObject();
}

// {"<name>": [item, ...]}: the answer of every list endpoint.
template <typename Items, typename WriteItem>
AdminResponse listResponse(const char* name, const Items& items, WriteItem&& writeItem) {
  return jsonResponse(200, [&](Writer& w) {
    w.StartObject();
    w.Key(name);
    w.StartArray();
    for (const auto& item : items) {
      writeItem(w, item);
    }
    w.EndArray();
    w.EndObject();
  });
}

AdminResponse deletedResponse(const std::string& id) {
  return jsonResponse(200, [&](Writer& w) {
    w.StartObject();
    field(w, "deleted", true);
    field(w, "id", id);
    w.EndObject();
  });
}

// ---- Requests ----------------------------------------------------------------------------------

// A parsed JSON object body. Empty bodies read as {} (action endpoints take optional fields).
struct Body {
  rapidjson::Document doc;
};

Status parseBody(const std::string& text, Body* out) {
  bool blank = std::all_of(text.begin(), text.end(),
                           [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
  if (blank) {
    out->doc.SetObject();
    return Status::ok();
  }
  // Iterative: a body of nested brackets cannot exhaust the stack.
  out->doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (out->doc.HasParseError()) {
    return invalidArgument(std::string("malformed JSON body: ") +
                           rapidjson::GetParseError_En(out->doc.GetParseError()) + " at offset " +
                           std::to_string(out->doc.GetErrorOffset()));
  }
  if (!out->doc.IsObject()) {
    return invalidArgument("the JSON body must be an object");
  }
  return Status::ok();
}

// Typed access to the members of a request object; JSON null reads as absent. Every read records
// the name so that finish() can reject typos instead of silently ignoring them, and the first
// error, so that a handler reads all its fields and checks once (later reads change nothing).
class Fields {
 public:
  explicit Fields(const Json& obj) : obj_(obj) {}

  const Json* find(const char* name) {
    seen_.insert(name);
    auto it = obj_.FindMember(name);
    if (it == obj_.MemberEnd() || it->value.IsNull()) {
      return nullptr;
    }
    return &it->value;
  }

  // `name` into *out when present (string, integer, true/false, array or object of strings).
  template <typename T>
  void get(const char* name, std::optional<T>* out) {
    read(name, find(name), out);
  }

  // The first of `names` present (aliases), into *out; giving two of them is an error.
  template <typename T>
  void getAny(std::initializer_list<const char*> names, std::optional<T>* out) {
    const char* which = nullptr;
    const Json* found = nullptr;
    for (const char* n : names) {
      if (const Json* v = find(n)) {
        if (found != nullptr) {
          fail(invalidArgument(std::string("give only one of ") + which + " and " + n));
          return;
        }
        found = v;
        which = n;
      }
    }
    read(which, found, out);
  }

  // Records `s` unless an error came first.
  void fail(Status s) {
    if (status_) {
      status_ = std::move(s);
    }
  }
  bool ok() const { return static_cast<bool>(status_); }

  // The first error; else kInvalidArgument naming the first member nothing asked for.
  Status finish() const {
    if (!status_) {
      return status_;
    }
    for (const auto& m : obj_.GetObject()) {
      std::string n(m.name.GetString(), m.name.GetStringLength());
      if (seen_.count(n) == 0) {
        return invalidArgument("unknown field \"" + n + "\"");
      }
    }
    return Status::ok();
  }

 private:
  template <typename T>
  void read(const char* name, const Json* v, std::optional<T>* out) {
    if (v != nullptr && status_) {
      fail(convert(name, *v, out));
    }
  }

  static Status convert(const char* name, const Json& v, std::optional<std::string>* out) {
    if (!v.IsString()) {
      return invalidArgument(std::string(name) + ": expected a string");
    }
    *out = std::string(v.GetString(), v.GetStringLength());
    return Status::ok();
  }
  static Status convert(const char* name, const Json& v, std::optional<int64_t>* out) {
    if (!v.IsInt64()) {
      return invalidArgument(std::string(name) + ": expected an integer");
    }
    *out = v.GetInt64();
    return Status::ok();
  }
  static Status convert(const char* name, const Json& v, std::optional<bool>* out) {
    if (!v.IsBool()) {
      return invalidArgument(std::string(name) + ": expected true or false");
    }
    *out = v.GetBool();
    return Status::ok();
  }
  static Status convert(const char* name, const Json& v,
                        std::optional<std::vector<std::string>>* out) {
    const std::string err = std::string(name) + ": expected an array of strings";
    if (!v.IsArray()) {
      return invalidArgument(err);
    }
    std::vector<std::string> items;
    for (const auto& e : v.GetArray()) {
      if (!e.IsString()) {
        return invalidArgument(err);
      }
      items.emplace_back(e.GetString(), e.GetStringLength());
    }
    *out = std::move(items);
    return Status::ok();
  }
  static Status convert(const char* name, const Json& v,
                        std::optional<std::map<std::string, std::string>>* out) {
    const std::string err = std::string(name) + ": expected an object of strings";
    if (!v.IsObject()) {
      return invalidArgument(err);
    }
    std::map<std::string, std::string> m;
    for (const auto& e : v.GetObject()) {
      if (!e.value.IsString()) {
        return invalidArgument(err);
      }
      std::string k(e.name.GetString(), e.name.GetStringLength());
      if (!m.emplace(k, std::string(e.value.GetString(), e.value.GetStringLength())).second) {
        return invalidArgument(std::string(name) + ": \"" + k + "\" is given twice");
      }
    }
    *out = std::move(m);
    return Status::ok();
  }

  const Json& obj_;
  std::set<std::string> seen_;
  Status status_;
};

struct AccountInput {
  std::optional<std::string> type;
  AccountChanges changes;
};

// The CLI's `accounts add/update` flags as JSON: the same names in snake_case, with the names the
// API answers with accepted as aliases (concurrency_limit, model_mapping, proxy_url,
// subscription_expires_at) so that a GET result can be edited and sent back. Errors go to `f`.
void readAccountInput(Fields& f, bool adding, AccountInput* in) {
  AccountChanges& c = in->changes;
  if (adding) {
    f.get("type", &in->type);
  } else if (f.find("type") != nullptr) {
    f.fail(invalidArgument("type: the type of an account cannot change"));
  }
  f.get("name", &c.name);
  f.get("priority", &c.priority);
  f.getAny({"concurrency", "concurrency_limit"}, &c.concurrencyLimit);
  // models: a list of names (identity mappings); model_map: requested -> upstream.
  std::optional<std::vector<std::string>> models;
  f.get("models", &models);
  std::optional<std::map<std::string, std::string>> mapping;
  f.getAny({"model_map", "model_mapping"}, &mapping);
  if (models && mapping) {
    f.fail(invalidArgument("give either models or model_map, not both"));
  } else if (models) {
    std::map<std::string, std::string> m;
    for (const auto& name : *models) {
      if (!m.emplace(name, name).second) {
        f.fail(invalidArgument("models: \"" + name + "\" is listed twice"));
      }
    }
    c.modelMapping = std::move(m);
  } else if (mapping) {
    c.modelMapping = std::move(mapping);
  }
  f.getAny({"proxy", "proxy_url"}, &c.proxyUrl);
  f.get("groups", &c.groups);
  std::optional<std::string> sharing;
  f.get("sharing", &sharing);
  if (sharing && f.ok()) {
    f.fail(readSharing("sharing", *sharing, &c.dedicated));
  }
  f.get("schedulable", &c.schedulable);
  f.getAny({"expires_at", "subscription_expires_at"}, &c.subscriptionExpiresAtMs);
  // The type-specific fields and credentials, by the account service's flag names (kebab-case).
  for (const auto* flags : {&accountFieldFlags(), &oauthFieldFlags()}) {
    for (const auto& flag : *flags) {
      std::string name = flag;
      std::replace(name.begin(), name.end(), '-', '_');
      const Json* fv = f.find(name.c_str());
      if (fv == nullptr || !f.ok()) {
        continue;
      }
      if (name == "token_expires_at" && fv->IsInt64()) {
        c.fields[flag] = std::to_string(fv->GetInt64());
      } else if (fv->IsString()) {
        c.fields[flag] = std::string(fv->GetString(), fv->GetStringLength());
      } else {
        f.fail(invalidArgument(name + ": expected a string"));
      }
    }
  }
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) {
      slash = path.size();
    }
    out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

std::optional<std::string> queryParam(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string item = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = item.find('=');
    if (item.substr(0, eq) == name) {
      return eq == std::string::npos ? std::string() : item.substr(eq + 1);
    }
    if (amp == std::string::npos) {
      break;
    }
    pos = amp + 1;
  }
  return std::nullopt;
}

std::string bearerOf(const std::string& value) {
  static const std::string kBearer = "bearer ";
  if (value.size() > kBearer.size() && iequals(value.substr(0, kBearer.size()), kBearer)) {
    std::string t = value.substr(kBearer.size());
    size_t b = t.find_first_not_of(' ');
    return b == std::string::npos ? std::string() : t.substr(b);
  }
  return {};
}

// ---- The handlers ------------------------------------------------------------------------------

// "3" for 3e-6 USD/token (3000000000 femto): USD per million tokens, trailing zeros trimmed.
std::string femtoPerTokenAsUsdPerMTok(int64_t femto) {
  // femto/token x 1e6 tokens = femto x 1e6 per MTok = femto / 1e9 USD per MTok.
  int64_t whole = femto / 1000000000;
  int64_t frac = femto % 1000000000;
  std::string out = std::to_string(whole);
  if (frac != 0) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%09lld", static_cast<long long>(frac));
    std::string f(buf);
    while (!f.empty() && f.back() == '0') {
      f.pop_back();
    }
    out += "." + f;
  }
  return out;
}

void writePriceTableSummary(Writer& w, const PriceTable& t) {
  w.Key("models");
  w.Uint64(t.size());
  w.Key("source");
  str(w, t.source());
  w.Key("unpriced_requests");
  w.Uint64(t.unknownModelCount());
}

class Handlers {
 public:
  explicit Handlers(AdminDeps& d) : d_(d) {}

  AdminResponse listAccounts() {
    auto all = d_.accounts->list();
    if (!all) {
      return errorResponse(all.status());
    }
    auto cds = d_.store->sched().listCooldowns();
    if (!cds) {
      return errorResponse(cds.status());
    }
    return listResponse("accounts", *all, [&](Writer& w, const AccountRecord& r) {
      writeAccount(w, *d_.accounts, r, *cds);
    });
  }

  AdminResponse accountResponse(int status, const std::string& id) {
    auto r = d_.accounts->get(id);
    if (!r) {
      return errorResponse(r.status());
    }
    auto cds = d_.store->sched().listCooldowns();
    if (!cds) {
      return errorResponse(cds.status());
    }
    return jsonResponse(status, [&](Writer& w) { writeAccount(w, *d_.accounts, *r, *cds); });
  }

  AdminResponse addAccount(const Json& body) {
    Fields f(body);
    AccountInput in;
    readAccountInput(f, /*adding=*/true, &in);
    if (Status s = f.finish(); !s) {
      return errorResponse(s);
    }
    if (!in.type || in.type->empty() || !in.changes.name || in.changes.name->empty()) {
      std::string types;
      for (const auto& t : AccountService::knownTypes()) {
        types += (types.empty() ? "" : ", ") + t;
      }
      return errorResponse(400, "an account needs type and name (types: " + types + ")");
    }
    return createAccount(newAccountOptions(*in.type, in.changes), in.changes.schedulable);
  }

  AdminResponse createAccount(const NewAccountOptions& o, std::optional<bool> schedulable) {
    auto r = d_.accounts->add(o);
    if (!r) {
      return errorResponse(r.status());
    }
    if (schedulable && !*schedulable) {
      Status s = d_.accounts->setSchedulable(r->id, false);
      if (!s) {
        return errorResponse(s);
      }
    }
    spdlog::info("admin api: account {} ({}, {}) added", r->id, r->name, r->type);
    return accountResponse(201, r->id);
  }

  AdminResponse updateAccount(const std::string& id, const Json& body) {
    Fields f(body);
    AccountInput in;
    readAccountInput(f, /*adding=*/false, &in);
    if (Status s = f.finish(); !s) {
      return errorResponse(s);
    }
    auto r = d_.accounts->update(id, in.changes);
    if (!r) {
      return errorResponse(r.status());
    }
    return accountResponse(200, id);
  }

  AdminResponse deleteAccount(const std::string& id) {
    Status s = d_.accounts->remove(id);
    if (!s) {
      return errorResponse(s);
    }
    // Best effort: both expire by themselves, so a failure here leaves nothing wrong for long.
    Status c = d_.store->sched().clearCooldown(id, std::nullopt);
    auto sticky = d_.store->sched().deleteStickyForAccount(id);
    if (!c || !sticky) {
      spdlog::warn("admin api: account {} removed, but its scheduler state was not cleared: {}", id,
                   !c ? c.toString() : sticky.status().toString());
    }
    spdlog::info("admin api: account {} removed", id);
    return deletedResponse(id);
  }

  void publishStatus(const AccountRecord& before, const std::string& type,
                     const std::string& newState, const std::string& reason) {
    if (d_.events == nullptr) {
      return;
    }
    AccountEvent e;
    e.type = type;
    e.accountId = before.id;
    e.accountName = before.name;
    e.oldState = before.status;
    e.newState = newState;
    e.reason = reason;
    e.atMs = d_.clock->nowUnixMs();
    d_.events->publish(e);
  }

  AdminResponse enableAccount(const std::string& id, const Json& body) {
    if (Status s = Fields(body).finish(); !s) {
      return errorResponse(s);
    }
    auto before = d_.accounts->get(id);
    if (!before) {
      return errorResponse(before.status());
    }
    Status s = d_.accounts->enable(id);
    if (!s) {
      return errorResponse(s);
    }
    if (before->status != "active") {
      publishStatus(*before, "account.status", "active", "enabled by an operator");
    }
    return accountResponse(200, id);
  }

  AdminResponse disableAccount(const std::string& id, const Json& body) {
    Fields f(body);
    std::optional<std::string> reason;
    f.get("reason", &reason);
    Status s = f.finish();
    if (!s) {
      return errorResponse(s);
    }
    auto before = d_.accounts->get(id);
    if (!before) {
      return errorResponse(before.status());
    }
    s = d_.accounts->disable(id, reason.value_or(""));
    if (!s) {
      return errorResponse(s);
    }
    if (before->status != "disabled") {
      publishStatus(*before, "account.status", "disabled",
                    reason && !reason->empty() ? *reason : "disabled by an operator");
    }
    return accountResponse(200, id);
  }

  AdminResponse setSchedulable(const std::string& id, const Json& body) {
    Fields f(body);
    std::optional<bool> schedulable;
    f.get("schedulable", &schedulable);
    Status s = f.finish();
    if (s && !schedulable) {
      s = invalidArgument("schedulable: required (true or false)");
    }
    if (!s) {
      return errorResponse(s);
    }
    s = d_.accounts->setSchedulable(id, *schedulable);
    if (!s) {
      return errorResponse(s);
    }
    return accountResponse(200, id);
  }

  AdminResponse resetAccount(const std::string& id, const Json& body) {
    if (Status s = Fields(body).finish(); !s) {
      return errorResponse(s);
    }
    auto before = d_.accounts->get(id);
    if (!before) {
      return errorResponse(before.status());
    }
    auto cds = d_.store->sched().listCooldowns();
    if (!cds) {
      return errorResponse(cds.status());
    }
    int64_t cleared = std::count_if(cds->begin(), cds->end(),
                                    [&](const CooldownRecord& c) { return c.accountId == id; });
    Status s = d_.store->sched().clearCooldown(id, std::nullopt);
    if (!s) {
      return errorResponse(s);
    }
    auto dropped = d_.store->sched().deleteStickyForAccount(id);
    if (!dropped) {
      return errorResponse(dropped.status());
    }
    s = d_.accounts->setStatus(id, "active", "");
    if (!s) {
      return errorResponse(s);
    }
    AccountRecord old = *before;
    if (old.status == "active" && cleared > 0) {
      old.status = "cooling_down";
    }
    publishStatus(old, "account.recovered", "active", "reset by an operator");
    spdlog::info("admin api: account {} reset ({} cooldowns cleared)", id, cleared);
    auto r = d_.accounts->get(id);
    if (!r) {
      return errorResponse(r.status());
    }
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      field(w, "cleared_cooldowns", cleared);
      field(w, "dropped_sticky_sessions", *dropped);
      w.Key("account");
      writeAccount(w, *d_.accounts, *r, {});
      w.EndObject();
    });
  }

  AdminResponse testAccount(const std::string& id, const Json& body) {
    Fields f(body);
    std::optional<std::string> model;
    f.get("model", &model);
    if (Status s = f.finish(); !s) {
      return errorResponse(s);
    }
    if (!d_.testAccount) {
      return errorResponse(501, "account tests are not available in this build");
    }
    auto rec = d_.accounts->get(id);
    if (!rec) {
      return errorResponse(rec.status());
    }
    auto result = d_.testAccount(*rec, model.value_or(""));
    if (!result) {
      return errorResponse(result.status());
    }
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      field(w, "ok", result->ok);
      field(w, "status", result->status);
      field(w, "latency_ms", result->latencyMs);
      field(w, "model", result->model);
      field(w, "detail", result->detail);
      w.EndObject();
    });
  }

  AdminResponse listCooldowns() {
    auto cds = d_.store->sched().listCooldowns();
    if (!cds) {
      return errorResponse(cds.status());
    }
    std::map<std::string, std::string> names;
    if (auto all = d_.accounts->list()) {
      for (const auto& r : *all) {
        names.emplace(r.id, r.name);
      }
    }
    return listResponse("cooldowns", *cds, [&](Writer& w, const CooldownRecord& c) {
      auto it = names.find(c.accountId);
      static const std::string kUnknown;
      writeCooldown(w, c, it == names.end() ? &kUnknown : &it->second);
    });
  }

  // GET /admin/pricing[?model=M]: the table in force, and how one model name is priced.
  AdminResponse pricing(const std::string& query) {
    std::shared_ptr<const PriceTable> table = d_.prices != nullptr ? d_.prices->load() : nullptr;
    if (!table) {
      return errorResponse(501, "no price table in this process");
    }
    std::optional<std::string> model = queryParam(query, "model");
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      writePriceTableSummary(w, *table);
      if (model) {
        std::string matched;
        const ModelPrice* p = table->lookup(*model, &matched);
        w.Key("model");
        str(w, *model);
        w.Key("priced");
        w.Bool(p != nullptr);
        if (p != nullptr) {
          w.Key("matched");
          str(w, matched);
          // USD per million tokens as exact decimal text (the table keeps femto-dollars).
          auto perMTok = [&](const char* k, std::optional<int64_t> femto) {
            if (femto) {
              w.Key(k);
              str(w, femtoPerTokenAsUsdPerMTok(*femto));
            }
          };
          perMTok("input_usd_per_mtok", p->input);
          perMTok("output_usd_per_mtok", p->output);
          perMTok("cache_write_5m_usd_per_mtok", p->cacheCreate5m);
          perMTok("cache_write_1h_usd_per_mtok", p->cacheCreate1h);
          perMTok("cache_read_usd_per_mtok", p->cacheRead);
        }
      }
      w.EndObject();
    });
  }

  // POST /admin/pricing/reload: what SIGHUP does; a file that does not load keeps the old table.
  AdminResponse reloadPricing() {
    if (!d_.reloadPrices) {
      return errorResponse(501, "price reloading is not available in this process");
    }
    auto fresh = d_.reloadPrices();
    if (!fresh) {
      return errorResponse(
          400, "price table not reloaded, keeping the previous one: " + fresh.status().message());
    }
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      w.Key("reloaded");
      w.Bool(true);
      writePriceTableSummary(w, *fresh.value());
      w.EndObject();
    });
  }

  AdminResponse listEvents(const std::string& query) {
    if (d_.events == nullptr) {
      return errorResponse(501, "no event bus in this process");
    }
    auto events = d_.events->recent();
    if (auto limit = queryParam(query, "limit")) {
      bool digits =
          !limit->empty() && limit->size() <= 9 &&
          std::all_of(limit->begin(), limit->end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits) {
        return errorResponse(400, "limit: expected a non-negative integer");
      }
      size_t n = std::stoul(*limit);
      if (events.size() > n) {
        events.erase(events.begin(), events.end() - static_cast<std::ptrdiff_t>(n));
      }
    }
    return listResponse("events", events, writeEvent);
  }

  AdminResponse listKeys() {
    auto keys = d_.keys->list();
    if (!keys) {
      return errorResponse(keys.status());
    }
    return listResponse("api_keys", *keys, writeKey);
  }

  AdminResponse keyResponse(const std::string& id) {
    auto k = d_.keys->get(id);
    if (!k) {
      return errorResponse(k.status());
    }
    return jsonResponse(200, [&](Writer& w) { writeKey(w, *k); });
  }

  // A decimal member (USD amount, rate): a JSON string, or a number read from its text. `raw` is
  // the body parsed again with numbers kept as text, so no amount ever passes through a double.
  static void getDecimal(Fields& f, const Json& raw, const char* name,
                         std::optional<std::string>* out) {
    const Json* v = f.find(name);
    if (v == nullptr || !f.ok()) {
      return;
    }
    auto it = raw.FindMember(name);
    if ((!v->IsString() && !v->IsNumber()) || it == raw.MemberEnd() || !it->value.IsString()) {
      f.fail(invalidArgument(std::string(name) + ": expected a decimal as a string or number"));
      return;
    }
    *out = std::string(it->value.GetString(), it->value.GetStringLength());
  }

  // The key members of POST and PATCH /admin/keys: the CLI's flags in snake_case.
  static void readKeyInput(Fields& f, const std::string& rawBody, KeyInput* in) {
    rapidjson::Document raw;
    raw.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(
        rawBody.data(), rawBody.size());
    if (raw.HasParseError() || !raw.IsObject()) {
      raw.SetObject();  // a blank body; anything else was refused by parseBody already
    }
    f.get("permissions", &in->permissions);
    f.get("expires_at", &in->expiresAtMs);
    f.getAny({"concurrency", "concurrency_limit"}, &in->concurrencyLimit);
    f.getAny({"rate_window_min", "rate_window_minutes"}, &in->rateWindowMinutes);
    f.get("rate_requests", &in->rateRequests);
    f.get("rate_tokens", &in->rateTokens);
    f.get("allow_models", &in->allowModels);
    f.get("deny_models", &in->denyModels);
    f.get("bindings", &in->bindings);
    getDecimal(f, raw, "rate_cost_usd", &in->rateCostUsd);
    getDecimal(f, raw, "daily_cost_usd", &in->dailyCostUsd);
    getDecimal(f, raw, "total_cost_usd", &in->totalCostUsd);
    getDecimal(f, raw, "weekly_cost_usd", &in->weeklyCostUsd);
    f.get("weekly_reset_day", &in->weeklyResetDay);
    f.get("weekly_reset_hour", &in->weeklyResetHour);
    getDecimal(f, raw, "rate", &in->rate);
    f.get("activation_hours", &in->activationHours);
    f.get("activation_days", &in->activationDays);
  }

  // The CLI's `keys create` flags as JSON (snake_case).
  AdminResponse createKey(const Json& body, const std::string& rawBody) {
    Fields f(body);
    KeyInput in;
    f.get("name", &in.name);
    readKeyInput(f, rawBody, &in);
    if (Status s = f.finish(); !s) {
      return errorResponse(s);
    }
    auto o = newKeyOptions(in, d_.clock->nowUnixMs(), InputSpelling::kJson);
    if (!o) {
      return errorResponse(o.status());
    }
    auto created = d_.keys->create(*o, InputSpelling::kJson);
    if (!created) {
      return errorResponse(created.status());
    }
    spdlog::info("admin api: key {} ({}) created", created->record.id, created->record.name);
    return jsonResponse(201, [&](Writer& w) {
      w.StartObject();
      field(w, "key", created->plainKey);  // shown once: only its keyed hash is stored
      w.Key("api_key");
      writeKey(w, created->record);
      w.EndObject();
    });
  }

  // PATCH: a partial update with the create members but the name; absent members are kept.
  AdminResponse updateKey(const std::string& id, const Json& body, const std::string& rawBody) {
    Fields f(body);
    KeyInput in;
    readKeyInput(f, rawBody, &in);
    if (Status s = f.finish(); !s) {
      return errorResponse(s);
    }
    auto patch = keyPatch(in, d_.clock->nowUnixMs(), InputSpelling::kJson);
    if (!patch) {
      return errorResponse(patch.status());
    }
    if (patch->empty()) {
      return errorResponse(invalidArgument("nothing to change: give at least one key field"));
    }
    auto r = d_.keys->update(id, *patch, InputSpelling::kJson);
    if (!r) {
      return errorResponse(r.status());
    }
    return jsonResponse(200, [&](Writer& w) { writeKey(w, *r); });
  }

  AdminResponse setKeyEnabled(const std::string& id, bool enabled, const Json& body) {
    if (Status s = Fields(body).finish(); !s) {
      return errorResponse(s);
    }
    Status s = d_.keys->setEnabled(id, enabled);
    if (!s) {
      return errorResponse(s);
    }
    return keyResponse(id);
  }

  AdminResponse deleteKey(const std::string& id) {
    Status s = d_.keys->remove(id);
    if (!s) {
      return errorResponse(s);
    }
    spdlog::info("admin api: key {} deleted", id);
    return deletedResponse(id);
  }

  AdminResponse oauthStart(const Json& body) {
    Fields f(body);
    std::optional<bool> setup;
    std::optional<std::string> proxy, proxyPassword;
    f.get("setup_token", &setup);
    f.get("proxy", &proxy);
    f.get("proxy_password", &proxyPassword);
    if (Status s = f.finish(); !s) {
      return errorResponse(s);
    }
    if (d_.claudeOAuth == nullptr) {
      return errorResponse(501, "Claude OAuth is not available in this process");
    }
    auto st = d_.claudeOAuth->start(setup.value_or(false), proxy.value_or(""),
                                    proxyPassword.value_or(""));
    if (!st) {
      return errorResponse(st.status());
    }
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      field(w, "session_id", st->sessionId);
      field(w, "url", st->url);
      field(w, "setup_token", st->setupToken);
      field(w, "expires_at", st->expiresAtMs);
      w.EndObject();
    });
  }

  // Exchanges the code and creates a claude-official account from the tokens. Everything about
  // the account is checked before the exchange, which consumes the one-time code.
  AdminResponse oauthExchange(const Json& body) {
    Fields f(body);
    std::optional<std::string> sessionId, code;
    f.get("session_id", &sessionId);
    f.get("code", &code);
    AccountInput in;
    readAccountInput(f, /*adding=*/true, &in);
    Status s = f.finish();
    if (s && in.type) {
      s = invalidArgument("type: the OAuth exchange always creates a claude-official account");
    }
    if (s) {
      for (const auto& [flag, value] : in.changes.fields) {
        if (flag != "base-url" && flag != "proxy-password") {
          std::string name = flag;
          std::replace(name.begin(), name.end(), '-', '_');
          s = invalidArgument(name + ": comes from the OAuth exchange and cannot be given");
          break;
        }
      }
    }
    if (s && (!sessionId || sessionId->empty())) {
      s = invalidArgument("session_id: required (from /admin/oauth/claude/start)");
    }
    if (s && (!code || code->empty())) {
      s = invalidArgument("code: required (the code or the callback URL)");
    }
    if (s && (!in.changes.name || in.changes.name->empty())) {
      s = invalidArgument("name: required");
    }
    if (!s) {
      return errorResponse(s);
    }
    if (d_.claudeOAuth == nullptr) {
      return errorResponse(501, "Claude OAuth is not available in this process");
    }
    auto tokens = d_.claudeOAuth->exchange(*sessionId, *code);
    if (!tokens) {
      const Status& e = tokens.status();
      if (e.code() == Code::kPermissionDenied) {
        // The authorization server refused the code: the operator's input, not our failure.
        return errorResponse(400, "the authorization server refused the code: " + e.message());
      }
      return errorResponse(e);
    }
    NewAccountOptions o = newAccountOptions("claude-official", in.changes);
    setOAuthTokenFields(*tokens, &o.fields);
    return createAccount(o, in.changes.schedulable);
  }

 private:
  AdminDeps& d_;
};

}  // namespace

AdminApi::AdminApi(AdminDeps deps) : deps_(std::move(deps)) {
  if (!deps_.adminToken.empty()) {
    tokenDigest_ = crypto::sha256(deps_.adminToken);
  }
}

bool AdminApi::authorized(const HeaderList& headers) const {
  std::string presented;
  if (const std::string* v = findHeader(headers, "authorization")) {
    presented = bearerOf(*v);
  }
  if (presented.empty()) {
    if (const std::string* v = findHeader(headers, "x-admin-token")) {
      presented = *v;
    }
  }
  if (presented.empty()) {
    return false;
  }
  // Digests have a fixed length, so neither the length nor the content of the token leaks.
  return crypto::constantTimeEquals(crypto::sha256(presented), tokenDigest_);
}

AdminResponse AdminApi::handle(const AdminRequest& req) {
  AdminResponse r;
  try {
    if (deps_.adminToken.empty()) {
      r = errorResponse(404, "not found");
    } else if (!authorized(req.headers)) {
      // One message for a missing and a wrong token: no hint for a guesser.
      r = errorResponse(401,
                        "admin token required (Authorization: Bearer <token> or "
                        "x-admin-token)");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
    } else if (req.body.size() > kMaxBodyBytes) {
      r = errorResponse(413, "request body larger than 1 MiB");
    } else {
      r = route(req);
    }
  } catch (const std::exception& e) {
    spdlog::error("admin api: {} {} failed: {}", req.method, req.path, e.what());
    r = errorResponse(500, "internal error");
  }
  // Answers may carry a key shown once and account details: nothing is to be cached.
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

AdminResponse AdminApi::route(const AdminRequest& req) {
  static const std::string kPrefix = "/admin/";
  if (req.path.compare(0, kPrefix.size(), kPrefix) != 0) {
    return errorResponse(404, "no such admin endpoint: " + req.path);
  }
  if (auto usage = handleUsageRoute(req, {deps_.store, deps_.clock, deps_.timeZone})) {
    return std::move(*usage);
  }
  std::string rest = req.path.substr(kPrefix.size());
  if (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  std::vector<std::string> seg = splitPath(rest);
  bool emptySegment =
      seg.empty() || std::any_of(seg.begin(), seg.end(), [](const auto& s) { return s.empty(); });

  // What the path serves (its methods); empty = unknown path.
  std::vector<std::string> allowed;
  const size_t n = seg.size();
  std::string action = n == 3 ? seg[2] : "";
  if (!emptySegment) {
    if (seg[0] == "accounts") {
      static const std::set<std::string> kActions = {"enable", "disable", "schedulable", "reset",
                                                     "test"};
      if (n == 1) {
        allowed = {"GET", "POST"};
      } else if (n == 2) {
        allowed = {"GET", "PATCH", "DELETE"};
      } else if (n == 3 && kActions.count(action) != 0) {
        allowed = {"POST"};
      }
    } else if (seg[0] == "keys") {
      if (n == 1) {
        allowed = {"GET", "POST"};
      } else if (n == 2) {
        allowed = {"GET", "PATCH", "DELETE"};
      } else if (n == 3 && (action == "enable" || action == "disable")) {
        allowed = {"POST"};
      }
    } else if ((seg[0] == "cooldowns" || seg[0] == "events" || seg[0] == "pricing") && n == 1) {
      allowed = {"GET"};
    } else if (seg[0] == "pricing" && n == 2 && seg[1] == "reload") {
      allowed = {"POST"};
    } else if (seg[0] == "oauth" && n == 3 && seg[1] == "claude" &&
               (action == "start" || action == "exchange")) {
      allowed = {"POST"};
    }
  }
  if (allowed.empty()) {
    return errorResponse(404, "no such admin endpoint: " + req.path);
  }
  if (std::find(allowed.begin(), allowed.end(), req.method) == allowed.end()) {
    AdminResponse r = errorResponse(405, "method " + req.method + " not allowed on " + req.path);
    std::string allow;
    for (const auto& m : allowed) {
      allow += (allow.empty() ? "" : ", ") + m;
    }
    r.headers.emplace_back("Allow", allow);
    return r;
  }

  Body body;
  if (req.method == "POST" || req.method == "PATCH") {
    Status s = parseBody(req.body, &body);
    if (!s) {
      return errorResponse(s);
    }
  } else {
    body.doc.SetObject();
  }
  const Json& b = body.doc;
  Handlers h(deps_);
  const std::string& m = req.method;
  if (seg[0] == "accounts") {
    if (n == 1) {
      return m == "GET" ? h.listAccounts() : h.addAccount(b);
    }
    const std::string& id = seg[1];
    if (n == 2) {
      return m == "GET"     ? h.accountResponse(200, id)
             : m == "PATCH" ? h.updateAccount(id, b)
                            : h.deleteAccount(id);
    }
    if (action == "enable") {
      return h.enableAccount(id, b);
    }
    if (action == "disable") {
      return h.disableAccount(id, b);
    }
    if (action == "schedulable") {
      return h.setSchedulable(id, b);
    }
    if (action == "reset") {
      return h.resetAccount(id, b);
    }
    return h.testAccount(id, b);
  }
  if (seg[0] == "keys") {
    if (n == 1) {
      return m == "GET" ? h.listKeys() : h.createKey(b, req.body);
    }
    const std::string& id = seg[1];
    if (n == 2) {
      return m == "GET"     ? h.keyResponse(seg[1])
             : m == "PATCH" ? h.updateKey(id, b, req.body)
                            : h.deleteKey(id);
    }
    return h.setKeyEnabled(id, action == "enable", b);
  }
  if (seg[0] == "cooldowns") {
    return h.listCooldowns();
  }
  if (seg[0] == "events") {
    return h.listEvents(req.query);
  }
  if (seg[0] == "pricing") {
    return n == 1 ? h.pricing(req.query) : h.reloadPricing();
  }
  return action == "start" ? h.oauthStart(b) : h.oauthExchange(b);
}

}  // namespace rg
