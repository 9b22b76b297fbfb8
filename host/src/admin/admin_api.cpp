#include "admin/admin_api.h"

#include <algorithm>
#include <cctype>
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

#include "crypto/crypto.h"
#include "oauth/claude_oauth.h"

namespace rg {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using Json = rapidjson::Value;

// ---- Responses ---------------------------------------------------------------------------------

int httpStatusOf(Code c) {
  switch (c) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
      return 409;
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kResourceExhausted:
      return 503;
    default:
      return 500;
  }
}

const char* errorTypeOf(int status) {
  if (status == 401) {
    return "authentication_error";
  }
  if (status == 404) {
    return "not_found_error";
  }
  if (status >= 500) {
    return "api_error";
  }
  return "invalid_request_error";
}

AdminResponse errorResponse(int status, const std::string& message) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("type");
  w.String(errorTypeOf(status));
  w.Key("message");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.EndObject();
  w.EndObject();
  AdminResponse r;
  r.status = status;
  r.body.assign(sb.GetString(), sb.GetSize());
  return r;
}

AdminResponse errorResponse(const Status& s) {
  int status = httpStatusOf(s.code());
  if (status == 500) {
    // Internal failures are logged for the operator (status messages never carry secrets).
    spdlog::error("admin api: {}", s.toString());
  }
  return errorResponse(status, s.message());
}

// Builds a JSON body with a writer; the callback writes exactly one value.
template <typename Fn>
AdminResponse jsonResponse(int status, Fn&& fn) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  fn(w);
  AdminResponse r;
  r.status = status;
  r.body.assign(sb.GetString(), sb.GetSize());
  return r;
}

void str(Writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void key(Writer& w, const char* k) {
  w.Key(k);
}

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
  key(w, "account_id");
  str(w, c.accountId);
  if (accountName != nullptr) {
    key(w, "account_name");
    str(w, *accountName);
  }
  key(w, "scope");
  str(w, c.scope);
  key(w, "until");
  w.Int64(c.untilMs);
  key(w, "marked_at");
  w.Int64(c.markedAtMs);
  key(w, "error_class");
  str(w, c.errorClass);
  key(w, "reason");
  str(w, c.reason);
  key(w, "upstream_status");
  w.Int64(c.upstreamStatus);
  w.EndObject();
}

void writeAccount(Writer& w, AccountService& svc, const AccountRecord& r,
                  const std::vector<CooldownRecord>& cooldowns) {
  w.StartObject();
  key(w, "id");
  str(w, r.id);
  key(w, "name");
  str(w, r.name);
  key(w, "type");
  str(w, r.type);
  key(w, "provider");
  str(w, r.provider.empty() ? AccountService::providerOf(r.type) : r.provider);
  key(w, "status");
  str(w, r.status);
  key(w, "status_reason");
  str(w, r.statusReason);
  key(w, "schedulable");
  w.Bool(r.schedulable);
  key(w, "priority");
  w.Int64(r.priority);
  key(w, "sharing");
  str(w, r.sharing);
  key(w, "groups");
  strList(w, r.groups);
  key(w, "concurrency_limit");
  w.Int64(r.concurrencyLimit);
  key(w, "model_mapping");
  strMap(w, r.modelMapping);
  key(w, "base_url");
  str(w, r.baseUrl);
  key(w, "settings");
  std::map<std::string, std::string> settings;
  for (const auto& [k, v] : AccountService::settingsOf(r)) {
    settings.emplace(snakeCase(k), v);
  }
  strMap(w, settings);
  key(w, "proxy_url");
  str(w, r.proxyUrl);
  key(w, "subscription_expires_at");
  w.Int64(r.subscriptionExpiresAtMs);
  key(w, "created_at");
  w.Int64(r.createdAtMs);
  key(w, "updated_at");
  w.Int64(r.updatedAtMs);
  key(w, "last_used_at");
  w.Int64(r.lastUsedAtMs);
  key(w, "secrets");
  auto masked = svc.maskedSecrets(r);
  w.StartArray();
  if (masked) {
    for (const auto& m : *masked) {
      w.StartObject();
      key(w, "name");
      str(w, m.name);
      key(w, "masked");
      str(w, m.masked);
      w.EndObject();
    }
  }
  w.EndArray();
  if (!masked) {
    // A record sealed under another master key: say so instead of failing the whole list.
    key(w, "secrets_error");
    str(w, masked.status().message());
  }
  key(w, "cooldowns");
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
  key(w, "id");
  str(w, k.id);
  key(w, "name");
  str(w, k.name);
  key(w, "enabled");
  w.Bool(k.enabled);
  key(w, "created_at");
  w.Int64(k.createdAtMs);
  key(w, "updated_at");
  w.Int64(k.updatedAtMs);
  key(w, "expires_at");
  w.Int64(k.expiresAtMs);
  key(w, "permissions");
  strList(w, k.permissions);
  key(w, "concurrency_limit");
  w.Int64(k.concurrencyLimit);
  key(w, "rate_window_minutes");
  w.Int64(k.rateWindowMinutes);
  key(w, "rate_requests");
  w.Int64(k.rateRequests);
  key(w, "rate_tokens");
  w.Int64(k.rateTokens);
  key(w, "model_mode");
  w.String(modelModeName(k.modelMode));
  key(w, "models");
  strList(w, k.models);
  key(w, "bindings");
  strMap(w, k.bindings);
  w.EndObject();
}

void writeEvent(Writer& w, const AccountEvent& e) {
  w.StartObject();
  key(w, "type");
  str(w, e.type);
  key(w, "account_id");
  str(w, e.accountId);
  key(w, "account_name");
  str(w, e.accountName);
  key(w, "old_state");
  str(w, e.oldState);
  key(w, "new_state");
  str(w, e.newState);
  key(w, "scope");
  str(w, e.scope);
  key(w, "reason");
  str(w, e.reason);
  key(w, "until");
  w.Int64(e.untilMs);
  key(w, "at");
  w.Int64(e.atMs);
  w.EndObject();
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

// Typed access to the members of a request object; JSON null reads as absent. Every accessor
// records the name so that unknownField() can reject typos instead of silently ignoring them.
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
  // The first of `names` present (aliases); kInvalidArgument when two are given.
  StatusOr<const Json*> findAny(std::initializer_list<const char*> names, const char** which) {
    const Json* found = nullptr;
    for (const char* n : names) {
      if (const Json* v = find(n)) {
        if (found != nullptr) {
          return invalidArgument(std::string("give only one of ") + *which + " and " + n);
        }
        found = v;
        *which = n;
      }
    }
    return found;
  }
  Status string(const char* name, std::optional<std::string>* out) {
    return stringOf(name, find(name), out);
  }
  static Status stringOf(const char* name, const Json* v, std::optional<std::string>* out) {
    if (v == nullptr) {
      return Status::ok();
    }
    if (!v->IsString()) {
      return invalidArgument(std::string(name) + ": expected a string");
    }
    *out = std::string(v->GetString(), v->GetStringLength());
    return Status::ok();
  }
  static Status intOf(const char* name, const Json* v, std::optional<int64_t>* out) {
    if (v == nullptr) {
      return Status::ok();
    }
    if (!v->IsInt64()) {
      return invalidArgument(std::string(name) + ": expected an integer");
    }
    *out = v->GetInt64();
    return Status::ok();
  }
  Status integer(const char* name, std::optional<int64_t>* out) {
    return intOf(name, find(name), out);
  }
  Status boolean(const char* name, std::optional<bool>* out) {
    const Json* v = find(name);
    if (v == nullptr) {
      return Status::ok();
    }
    if (!v->IsBool()) {
      return invalidArgument(std::string(name) + ": expected true or false");
    }
    *out = v->GetBool();
    return Status::ok();
  }
  static Status listOf(const char* name, const Json* v,
                       std::optional<std::vector<std::string>>* out) {
    if (v == nullptr) {
      return Status::ok();
    }
    if (!v->IsArray()) {
      return invalidArgument(std::string(name) + ": expected an array of strings");
    }
    std::vector<std::string> items;
    for (const auto& e : v->GetArray()) {
      if (!e.IsString()) {
        return invalidArgument(std::string(name) + ": expected an array of strings");
      }
      items.emplace_back(e.GetString(), e.GetStringLength());
    }
    *out = std::move(items);
    return Status::ok();
  }
  Status list(const char* name, std::optional<std::vector<std::string>>* out) {
    return listOf(name, find(name), out);
  }
  static Status mapOf(const char* name, const Json* v,
                      std::optional<std::map<std::string, std::string>>* out) {
    if (v == nullptr) {
      return Status::ok();
    }
    if (!v->IsObject()) {
      return invalidArgument(std::string(name) + ": expected an object of strings");
    }
    std::map<std::string, std::string> m;
    for (const auto& e : v->GetObject()) {
      if (!e.value.IsString()) {
        return invalidArgument(std::string(name) + ": expected an object of strings");
      }
      std::string k(e.name.GetString(), e.name.GetStringLength());
      if (!m.emplace(k, std::string(e.value.GetString(), e.value.GetStringLength())).second) {
        return invalidArgument(std::string(name) + ": \"" + k + "\" is given twice");
      }
    }
    *out = std::move(m);
    return Status::ok();
  }
  Status map(const char* name, std::optional<std::map<std::string, std::string>>* out) {
    return mapOf(name, find(name), out);
  }
  // kInvalidArgument naming the first member no accessor asked for.
  Status unknownField() const {
    for (const auto& m : obj_.GetObject()) {
      std::string n(m.name.GetString(), m.name.GetStringLength());
      if (seen_.count(n) == 0) {
        return invalidArgument("unknown field \"" + n + "\"");
      }
    }
    return Status::ok();
  }

 private:
  const Json& obj_;
  std::set<std::string> seen_;
};

// The account fields that AccountService takes by flag name (snake_case here, kebab there).
const std::vector<std::string>& accountFieldNames() {
  static const std::vector<std::string> names = {
      "base_url",          "endpoint",     "api_key",           "access_token",
      "refresh_token",     "region",       "aws_access_key_id", "aws_secret_access_key",
      "aws_session_token", "bearer_token", "project_id",        "chatgpt_account_id",
      "deployment",        "api_version",  "proxy_password",    "token_expires_at",
      "oauth_scopes"};
  return names;
}

std::string kebab(std::string s) {
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

struct AccountInput {
  std::optional<std::string> type;
  AccountChanges changes;
};

// The CLI's `accounts add/update` flags as JSON: the same names in snake_case, with the names the
// API answers with accepted as aliases (concurrency_limit, model_mapping, proxy_url,
// subscription_expires_at) so that a GET result can be edited and sent back.
Status readAccountInput(Fields& f, bool adding, AccountInput* in) {
  AccountChanges& c = in->changes;
  Status s;
  if (adding) {
    s = f.string("type", &in->type);
  } else if (f.find("type") != nullptr) {
    return invalidArgument("type: the type of an account cannot change");
  }
  if (!s) {
    return s;
  }
  if (!(s = f.string("name", &c.name))) {
    return s;
  }
  if (!(s = f.integer("priority", &c.priority))) {
    return s;
  }
  const char* which = "concurrency";
  auto v = f.findAny({"concurrency", "concurrency_limit"}, &which);
  if (!v) {
    return v.status();
  }
  if (!(s = Fields::intOf(which, *v, &c.concurrencyLimit))) {
    return s;
  }
  // models: a list of names (identity mappings); model_map: requested -> upstream.
  std::optional<std::vector<std::string>> models;
  if (!(s = f.list("models", &models))) {
    return s;
  }
  which = "model_map";
  v = f.findAny({"model_map", "model_mapping"}, &which);
  if (!v) {
    return v.status();
  }
  std::optional<std::map<std::string, std::string>> mapping;
  if (!(s = Fields::mapOf(which, *v, &mapping))) {
    return s;
  }
  if (models && mapping) {
    return invalidArgument("give either models or model_map, not both");
  }
  if (models) {
    std::map<std::string, std::string> m;
    for (const auto& name : *models) {
      if (!m.emplace(name, name).second) {
        return invalidArgument("models: \"" + name + "\" is listed twice");
      }
    }
    c.modelMapping = std::move(m);
  } else if (mapping) {
    c.modelMapping = std::move(mapping);
  }
  which = "proxy";
  v = f.findAny({"proxy", "proxy_url"}, &which);
  if (!v) {
    return v.status();
  }
  if (!(s = Fields::stringOf(which, *v, &c.proxyUrl))) {
    return s;
  }
  if (!(s = f.list("groups", &c.groups))) {
    return s;
  }
  std::optional<std::string> sharing;
  if (!(s = f.string("sharing", &sharing))) {
    return s;
  }
  if (sharing) {
    if (*sharing != "shared" && *sharing != "dedicated") {
      return invalidArgument("sharing: expected shared or dedicated, got \"" + *sharing + "\"");
    }
    c.dedicated = *sharing == "dedicated";
  }
  if (!(s = f.boolean("schedulable", &c.schedulable))) {
    return s;
  }
  which = "expires_at";
  v = f.findAny({"expires_at", "subscription_expires_at"}, &which);
  if (!v) {
    return v.status();
  }
  if (!(s = Fields::intOf(which, *v, &c.subscriptionExpiresAtMs))) {
    return s;
  }
  for (const auto& name : accountFieldNames()) {
    const Json* fv = f.find(name.c_str());
    if (fv == nullptr) {
      continue;
    }
    if (name == "token_expires_at" && fv->IsInt64()) {
      c.fields[kebab(name)] = std::to_string(fv->GetInt64());
      continue;
    }
    if (!fv->IsString()) {
      return invalidArgument(name + ": expected a string");
    }
    c.fields[kebab(name)] = std::string(fv->GetString(), fv->GetStringLength());
  }
  return Status::ok();
}

NewAccountOptions toNewAccount(const AccountInput& in) {
  const AccountChanges& c = in.changes;
  NewAccountOptions o;
  o.type = in.type.value_or("");
  o.name = c.name.value_or("");
  o.priority = c.priority.value_or(o.priority);
  o.fields = c.fields;
  o.concurrencyLimit = c.concurrencyLimit.value_or(0);
  o.modelMapping = c.modelMapping.value_or(std::map<std::string, std::string>());
  o.proxyUrl = c.proxyUrl.value_or("");
  o.groups = c.groups.value_or(std::vector<std::string>());
  o.dedicated = c.dedicated.value_or(false);
  o.subscriptionExpiresAtMs = c.subscriptionExpiresAtMs.value_or(0);
  return o;
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
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      key(w, "accounts");
      w.StartArray();
      for (const auto& r : *all) {
        writeAccount(w, *d_.accounts, r, *cds);
      }
      w.EndArray();
      w.EndObject();
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
    Status s = readAccountInput(f, /*adding=*/true, &in);
    if (s) {
      s = f.unknownField();
    }
    if (!s) {
      return errorResponse(s);
    }
    if (!in.type || in.type->empty() || !in.changes.name || in.changes.name->empty()) {
      std::string types;
      for (const auto& t : AccountService::knownTypes()) {
        types += (types.empty() ? "" : ", ") + t;
      }
      return errorResponse(400, "an account needs type and name (types: " + types + ")");
    }
    return createAccount(toNewAccount(in), in.changes.schedulable);
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
    Status s = readAccountInput(f, /*adding=*/false, &in);
    if (s) {
      s = f.unknownField();
    }
    if (!s) {
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
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      key(w, "deleted");
      w.Bool(true);
      key(w, "id");
      str(w, id);
      w.EndObject();
    });
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
    Fields f(body);
    if (Status s = f.unknownField(); !s) {
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
    Status s = f.string("reason", &reason);
    if (s) {
      s = f.unknownField();
    }
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
    Status s = f.boolean("schedulable", &schedulable);
    if (s) {
      s = f.unknownField();
    }
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
    Fields f(body);
    if (Status s = f.unknownField(); !s) {
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
      key(w, "cleared_cooldowns");
      w.Int64(cleared);
      key(w, "dropped_sticky_sessions");
      w.Int64(*dropped);
      key(w, "account");
      writeAccount(w, *d_.accounts, *r, {});
      w.EndObject();
    });
  }

  AdminResponse testAccount(const std::string& id, const Json& body) {
    Fields f(body);
    std::optional<std::string> model;
    Status s = f.string("model", &model);
    if (s) {
      s = f.unknownField();
    }
    if (!s) {
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
      key(w, "ok");
      w.Bool(result->ok);
      key(w, "status");
      w.Int(result->status);
      key(w, "latency_ms");
      w.Int64(result->latencyMs);
      key(w, "model");
      str(w, result->model);
      key(w, "detail");
      str(w, result->detail);
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
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      key(w, "cooldowns");
      w.StartArray();
      for (const auto& c : *cds) {
        auto it = names.find(c.accountId);
        static const std::string kUnknown;
        writeCooldown(w, c, it == names.end() ? &kUnknown : &it->second);
      }
      w.EndArray();
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
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      key(w, "events");
      w.StartArray();
      for (const auto& e : events) {
        writeEvent(w, e);
      }
      w.EndArray();
      w.EndObject();
    });
  }

  AdminResponse listKeys() {
    auto keys = d_.keys->list();
    if (!keys) {
      return errorResponse(keys.status());
    }
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      key(w, "api_keys");
      w.StartArray();
      for (const auto& k : *keys) {
        writeKey(w, k);
      }
      w.EndArray();
      w.EndObject();
    });
  }

  AdminResponse keyResponse(const std::string& id) {
    auto k = d_.keys->get(id);
    if (!k) {
      return errorResponse(k.status());
    }
    return jsonResponse(200, [&](Writer& w) { writeKey(w, *k); });
  }

  // The CLI's `keys create` flags as JSON (snake_case).
  AdminResponse createKey(const Json& body) {
    Fields f(body);
    NewKeyOptions o;
    std::optional<std::string> name;
    std::optional<std::vector<std::string>> permissions, allow, deny;
    std::optional<int64_t> expires, concurrency, window, requests, tokens;
    std::optional<std::map<std::string, std::string>> bindings;
    const char* which = "concurrency";
    Status s = f.string("name", &name);
    if (s) {
      s = f.list("permissions", &permissions);
    }
    if (s) {
      s = f.integer("expires_at", &expires);
    }
    if (s) {
      auto v = f.findAny({"concurrency", "concurrency_limit"}, &which);
      s = v ? Fields::intOf(which, *v, &concurrency) : v.status();
    }
    if (s) {
      const char* w = "rate_window_min";
      auto v = f.findAny({"rate_window_min", "rate_window_minutes"}, &w);
      s = v ? Fields::intOf(w, *v, &window) : v.status();
    }
    if (s) {
      s = f.integer("rate_requests", &requests);
    }
    if (s) {
      s = f.integer("rate_tokens", &tokens);
    }
    if (s) {
      s = f.list("allow_models", &allow);
    }
    if (s) {
      s = f.list("deny_models", &deny);
    }
    if (s) {
      s = f.map("bindings", &bindings);
    }
    if (s) {
      s = f.unknownField();
    }
    if (s && allow && deny) {
      s = invalidArgument("give either allow_models or deny_models, not both");
    }
    if (s && !name) {
      s = invalidArgument("name: required");
    }
    if (s && expires && *expires != 0 && *expires <= d_.clock->nowUnixMs()) {
      s = invalidArgument("expires_at is in the past");
    }
    if (!s) {
      return errorResponse(s);
    }
    o.name = *name;
    o.permissions = permissions.value_or(std::vector<std::string>());
    o.expiresAtMs = expires.value_or(0);
    o.concurrencyLimit = concurrency.value_or(0);
    o.rateWindowMinutes = window.value_or(0);
    o.rateRequests = requests.value_or(0);
    o.rateTokens = tokens.value_or(0);
    if (allow) {
      o.modelMode = ModelFilterMode::kAllow;
      o.models = *allow;
    } else if (deny) {
      o.modelMode = ModelFilterMode::kDeny;
      o.models = *deny;
    }
    o.bindings = bindings.value_or(std::map<std::string, std::string>());
    auto created = d_.keys->create(o);
    if (!created) {
      return errorResponse(created.status());
    }
    spdlog::info("admin api: key {} ({}) created", created->record.id, created->record.name);
    return jsonResponse(201, [&](Writer& w) {
      w.StartObject();
      key(w, "key");  // shown once: only its keyed hash is stored
      str(w, created->plainKey);
      key(w, "api_key");
      writeKey(w, created->record);
      w.EndObject();
    });
  }

  // PATCH: only the bindings can change after creation (the rest is fixed by the key's owner).
  AdminResponse updateKey(const std::string& id, const Json& body) {
    Fields f(body);
    std::optional<std::map<std::string, std::string>> bindings;
    Status s = f.map("bindings", &bindings);
    if (s) {
      s = f.unknownField();
    }
    if (s && !bindings) {
      s = invalidArgument("bindings: required (an object, {} for the shared pool)");
    }
    if (!s) {
      return errorResponse(s);
    }
    auto r = d_.keys->setBindings(id, *bindings);
    if (!r) {
      return errorResponse(r.status());
    }
    return jsonResponse(200, [&](Writer& w) { writeKey(w, *r); });
  }

  AdminResponse setKeyEnabled(const std::string& id, bool enabled, const Json& body) {
    Fields f(body);
    if (Status s = f.unknownField(); !s) {
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
    return jsonResponse(200, [&](Writer& w) {
      w.StartObject();
      key(w, "deleted");
      w.Bool(true);
      key(w, "id");
      str(w, id);
      w.EndObject();
    });
  }

  AdminResponse oauthStart(const Json& body) {
    Fields f(body);
    std::optional<bool> setup;
    std::optional<std::string> proxy, proxyPassword;
    Status s = f.boolean("setup_token", &setup);
    if (s) {
      s = f.string("proxy", &proxy);
    }
    if (s) {
      s = f.string("proxy_password", &proxyPassword);
    }
    if (s) {
      s = f.unknownField();
    }
    if (!s) {
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
      key(w, "session_id");
      str(w, st->sessionId);
      key(w, "url");
      str(w, st->url);
      key(w, "setup_token");
      w.Bool(st->setupToken);
      key(w, "expires_at");
      w.Int64(st->expiresAtMs);
      w.EndObject();
    });
  }

  // Exchanges the code and creates a claude-official account from the tokens. Everything about
  // the account is checked before the exchange, which consumes the one-time code.
  AdminResponse oauthExchange(const Json& body) {
    Fields f(body);
    std::optional<std::string> sessionId, code;
    Status s = f.string("session_id", &sessionId);
    if (s) {
      s = f.string("code", &code);
    }
    AccountInput in;
    if (s) {
      s = readAccountInput(f, /*adding=*/true, &in);
    }
    if (s) {
      s = f.unknownField();
    }
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
    in.type = "claude-official";
    NewAccountOptions o = toNewAccount(in);
    o.fields["access-token"] = tokens->accessToken;
    if (!tokens->refreshToken.empty()) {
      o.fields["refresh-token"] = tokens->refreshToken;
    }
    if (tokens->expiresAtMs > 0) {
      o.fields["token-expires-at"] = std::to_string(tokens->expiresAtMs);
    }
    if (!tokens->scopes.empty()) {
      o.fields["oauth-scopes"] = tokens->scopes;
    }
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
    } else if ((seg[0] == "cooldowns" || seg[0] == "events") && n == 1) {
      allowed = {"GET"};
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
      return m == "GET" ? h.listKeys() : h.createKey(b);
    }
    const std::string& id = seg[1];
    if (n == 2) {
      return m == "GET"     ? h.keyResponse(seg[1])
             : m == "PATCH" ? h.updateKey(id, b)
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
  return action == "start" ? h.oauthStart(b) : h.oauthExchange(b);
}

}  // namespace rg
