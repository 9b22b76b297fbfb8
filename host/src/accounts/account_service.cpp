#include "accounts/account_service.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "upstream/http_client.h"

namespace rg {

namespace {

// What each type takes beyond the common fields. Flags in `required` must be present once the
// account is complete (after an add, or after an update merged into the stored record).
struct TypeSpec {
  const char* type;
  const char* provider;
  const char* defaultBaseUrl;  // "" = the type has no default (bedrock derives it from the region)
  const char* primarySecret;   // the credential kept in secretSealed
  std::vector<std::string> required;
  std::vector<std::string> optional;
};

const std::vector<TypeSpec>& typeSpecs() {
  static const std::vector<TypeSpec> specs = {
      {"claude-official",
       "claude",
       "https://api.anthropic.com",
       "access_token",
       {"access-token"},
       {"refresh-token", "base-url", "token-expires-at", "oauth-scopes"}},
      {"claude-console", "claude", "", "api_key", {"base-url", "api-key"}, {}},
      // Bedrock takes AWS keys or a bearer token; checked apart (see checkComplete).
      {"bedrock",
       "bedrock",
       "",
       "aws_secret_access_key",
       {"region"},
       {"aws-access-key-id", "aws-secret-access-key", "aws-session-token", "bearer-token"}},
      {"gemini",
       "gemini",
       "https://cloudcode-pa.googleapis.com",
       "access_token",
       {"access-token"},
       {"refresh-token", "project-id", "base-url", "token-expires-at", "oauth-scopes"}},
      {"gemini-api",
       "gemini",
       "https://generativelanguage.googleapis.com",
       "api_key",
       {"api-key"},
       {"base-url"}},
      {"openai",
       "openai",
       "https://chatgpt.com/backend-api/codex",
       "access_token",
       {"access-token", "chatgpt-account-id"},
       {"refresh-token", "base-url", "token-expires-at", "oauth-scopes"}},
      {"openai-responses", "openai", "", "api_key", {"base-url", "api-key"}, {}},
      {"azure-openai",
       "openai",
       "",
       "api_key",
       {"endpoint", "deployment", "api-version", "api-key"},
       {}},
  };
  return specs;
}

const TypeSpec* specOf(const std::string& type) {
  for (const auto& s : typeSpecs()) {
    if (type == s.type) {
      return &s;
    }
  }
  return nullptr;
}

// Flag -> secret name, for the flags that carry secrets.
const std::map<std::string, std::string>& secretFlags() {
  static const std::map<std::string, std::string> m = {
      {"api-key", "api_key"},
      {"access-token", "access_token"},
      {"refresh-token", "refresh_token"},
      {"aws-access-key-id", "aws_access_key_id"},
      {"aws-secret-access-key", "aws_secret_access_key"},
      {"aws-session-token", "aws_session_token"},
      {"bearer-token", "bearer_token"},
      {"proxy-password", "proxy_password"},
  };
  return m;
}

// Flag -> settingsJson key, for the type-specific non-secret fields.
const std::map<std::string, std::string>& settingFlags() {
  static const std::map<std::string, std::string> m = {
      {"region", "region"},
      {"project-id", "projectId"},
      {"chatgpt-account-id", "chatgptAccountId"},
      {"deployment", "deployment"},
      {"api-version", "apiVersion"},
      {"token-expires-at", "tokenExpiresAt"},
      {"oauth-scopes", "scopes"},
  };
  return m;
}

bool hasControl(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool allOf(const std::string& s, const char* extra) {
  return std::all_of(s.begin(), s.end(), [extra](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string(extra).find(c) != std::string::npos;
  });
}

bool isDigits(const std::string& s, size_t from, size_t n) {
  if (from + n > s.size()) {
    return false;
  }
  return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(from),
                     s.begin() + static_cast<std::ptrdiff_t>(from + n),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// An http(s) URL without trailing slashes.
StatusOr<std::string> checkUrl(const std::string& flag, std::string url) {
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  auto parsed = parseUrl(url);
  if (!parsed) {
    return invalidArgument("--" + flag + ": " + parsed.status().message());
  }
  return url;
}

// scheme://[user@]host:port with scheme socks5, socks5h or http. The password is a sealed secret
// of its own (--proxy-password) so the URL can be shown.
Status checkProxy(const std::string& url) {
  size_t sep = url.find("://");
  std::string scheme = sep == std::string::npos ? "" : url.substr(0, sep);
  std::string lower = scheme;
  for (char& ch : lower) {
    ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
  }
  // The upstream client speaks plain TCP to the proxy (CONNECT or SOCKS5); refusing https:// here
  // keeps an account from being stored that could never send a request.
  if (lower == "https") {
    return invalidArgument(
        "--proxy: https:// proxies (TLS to the proxy) are not supported; "
        "use an http:// CONNECT proxy or socks5://");
  }
  if (scheme != "socks5" && scheme != "socks5h" && scheme != "http") {
    return invalidArgument("--proxy: expected a socks5://, socks5h:// or http:// URL, got \"" +
                           url + "\"");
  }
  std::string rest = url.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  size_t at = rest.rfind('@');
  if (at != std::string::npos) {
    std::string user = rest.substr(0, at);
    if (user.find(':') != std::string::npos) {
      return invalidArgument("--proxy: put the password in --proxy-password, not in the URL");
    }
    if (user.empty() || hasControl(user)) {
      return invalidArgument("--proxy: bad user name");
    }
    rest = rest.substr(at + 1);
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || !allOf(rest.substr(0, colon), ".-[]:") ||
      !isDigits(rest, colon + 1, rest.size() - colon - 1) || rest.size() - colon - 1 > 5 ||
      rest.size() == colon + 1) {
    return invalidArgument("--proxy: expected scheme://[user@]host:port, got \"" + url + "\"");
  }
  long port = std::stol(rest.substr(colon + 1));
  if (port < 1 || port > 65535) {
    return invalidArgument("--proxy: port must be 1..65535");
  }
  return Status::ok();
}

Status checkSetting(const std::string& flag, const std::string& v) {
  if (flag == "region") {
    // us-east-1, eu-central-2, us-gov-west-1, ap-southeast-3 ...
    bool ok = v.size() >= 9 && v.size() <= 25 && allOf(v, "-") &&
              std::isdigit(static_cast<unsigned char>(v.back())) != 0 &&
              std::count(v.begin(), v.end(), '-') >= 2 &&
              std::none_of(v.begin(), v.end(),
                           [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
    if (!ok) {
      return invalidArgument("--region: expected an AWS region such as us-east-1, got \"" + v +
                             "\"");
    }
  } else if (flag == "api-version") {
    // 2024-10-21 or 2025-04-01-preview
    bool ok = v.size() >= 10 && isDigits(v, 0, 4) && v[4] == '-' && isDigits(v, 5, 2) &&
              v[7] == '-' && isDigits(v, 8, 2) && (v.size() == 10 || v.substr(10) == "-preview");
    if (!ok) {
      return invalidArgument("--api-version: expected YYYY-MM-DD or YYYY-MM-DD-preview, got \"" +
                             v + "\"");
    }
  } else if (flag == "deployment") {
    if (v.empty() || v.size() > 64 || !allOf(v, "-_.")) {
      return invalidArgument("--deployment: expected 1..64 letters, digits, '-', '_' or '.'");
    }
  } else if (flag == "project-id") {
    if (v.size() < 4 || v.size() > 64 || !allOf(v, "-:.")) {
      return invalidArgument("--project-id: not a valid Google Cloud project id: \"" + v + "\"");
    }
  } else if (flag == "token-expires-at") {
    // Unix milliseconds, as written by the OAuth exchange and refresh.
    if (v.empty() || v.size() > 15 || !isDigits(v, 0, v.size())) {
      return invalidArgument("--token-expires-at: expected unix milliseconds, got \"" + v + "\"");
    }
  } else if (flag == "oauth-scopes") {
    if (v.size() > 1000 || hasControl(v)) {
      return invalidArgument("--oauth-scopes: at most 1000 printable characters");
    }
  } else if (v.empty() || v.size() > 200 || hasControl(v)) {
    return invalidArgument("--" + flag + ": must be 1..200 printable characters");
  }
  return Status::ok();
}

std::string maskValue(const std::string& s) {
  if (s.size() < 12) {
    return "****";
  }
  return s.substr(0, 4) + "****" + s.substr(s.size() - 4);
}

std::string settingsToJson(const std::map<std::string, std::string>& m) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool hasSecret(const AccountRecord& r, const std::string& name) {
  return name == AccountService::primarySecretName(r) ? !r.secretSealed.empty()
                                                      : r.secretsSealed.count(name) != 0;
}

// The required fields of the type, on the merged record.
Status checkComplete(const AccountRecord& r, const TypeSpec& spec) {
  auto settings = AccountService::settingsOf(r);
  for (const auto& flag : spec.required) {
    bool present = false;
    if (flag == "base-url" || flag == "endpoint") {
      present = !r.baseUrl.empty();
    } else if (secretFlags().count(flag) != 0) {
      present = hasSecret(r, secretFlags().at(flag));
    } else {
      present = settings.count(settingFlags().at(flag)) != 0;
    }
    if (!present) {
      return invalidArgument("account type " + r.type + " needs --" + flag);
    }
  }
  if (r.type == "bedrock") {
    bool bearer = hasSecret(r, "bearer_token");
    bool keys = hasSecret(r, "aws_access_key_id") || hasSecret(r, "aws_secret_access_key");
    if (bearer && keys) {
      return invalidArgument(
          "account type bedrock takes either --bearer-token or AWS keys, not both");
    }
    if (!bearer && !(hasSecret(r, "aws_access_key_id") && hasSecret(r, "aws_secret_access_key"))) {
      return invalidArgument(
          "account type bedrock needs --aws-access-key-id and "
          "--aws-secret-access-key, or --bearer-token");
    }
  }
  if (r.proxyUrl.empty() && r.secretsSealed.count("proxy_password") != 0) {
    return invalidArgument("--proxy-password needs --proxy");
  }
  return Status::ok();
}

}  // namespace

StatusOr<std::map<std::string, std::string>> parseModelMapping(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() + 1 : comma + 1;
    auto trim = [](std::string s) {
      size_t b = s.find_first_not_of(" \t");
      size_t e = s.find_last_not_of(" \t");
      return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    item = trim(item);
    if (item.empty()) {
      continue;
    }
    size_t eq = item.find('=');
    std::string from = trim(item.substr(0, eq));
    std::string to = eq == std::string::npos ? from : trim(item.substr(eq + 1));
    if (from.empty() || to.empty() || hasControl(from) || hasControl(to) ||
        to.find('=') != std::string::npos) {
      return invalidArgument(
          "model mapping: expected requested=upstream pairs separated by "
          "commas, got \"" +
          item + "\"");
    }
    if (!out.emplace(from, to).second) {
      return invalidArgument("model mapping: \"" + from + "\" is mapped twice");
    }
  }
  return out;
}

AccountService::AccountService(Store& store, const Clock& clock, const crypto::SecretBox& box,
                               int64_t cacheTtlMs)
    : store_(store), clock_(clock), box_(box), cacheTtlMs_(cacheTtlMs), secrets_(clock) {}

const std::vector<std::string>& AccountService::knownTypes() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> t;
    for (const auto& s : typeSpecs()) {
      t.emplace_back(s.type);
    }
    return t;
  }();
  return types;
}

std::string AccountService::providerOf(const std::string& type) {
  const TypeSpec* spec = specOf(type);
  return spec == nullptr ? std::string() : spec->provider;
}

std::vector<std::string> AccountService::typeFlags(const std::string& type) {
  std::vector<std::string> out;
  if (const TypeSpec* spec = specOf(type)) {
    out = spec->required;
    out.insert(out.end(), spec->optional.begin(), spec->optional.end());
  }
  return out;
}

std::map<std::string, std::string> AccountService::settingsOf(const AccountRecord& rec) {
  std::map<std::string, std::string> out;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(rec.settingsJson.data(), rec.settingsJson.size());
  if (!d.HasParseError() && d.IsObject()) {
    for (const auto& m : d.GetObject()) {
      if (m.value.IsString()) {
        out.emplace(std::string(m.name.GetString(), m.name.GetStringLength()),
                    std::string(m.value.GetString(), m.value.GetStringLength()));
      }
    }
  }
  return out;
}

std::string AccountService::primarySecretName(const AccountRecord& rec) {
  if (rec.type == "bedrock") {
    auto settings = settingsOf(rec);
    auto it = settings.find("credentialType");
    if (it != settings.end() && it->second == "bearer") {
      return "bearer_token";
    }
  }
  const TypeSpec* spec = specOf(rec.type);
  return spec == nullptr ? "api_key" : spec->primarySecret;
}

Status AccountService::apply(AccountRecord& r, const AccountChanges& c, bool creating) const {
  const TypeSpec* spec = specOf(r.type);
  if (spec == nullptr) {
    std::string list;
    for (const auto& t : knownTypes()) {
      list += (list.empty() ? "" : ", ") + t;
    }
    return invalidArgument("unknown account type \"" + r.type + "\" (supported: " + list + ")");
  }
  if (c.name) {
    if (c.name->empty() || c.name->size() > 100 || hasControl(*c.name)) {
      return invalidArgument("--name: account name must be 1..100 printable characters");
    }
    r.name = *c.name;
  }
  if (c.priority) {
    if (*c.priority < 1 || *c.priority > 100) {
      return invalidArgument("--priority must be 1..100");
    }
    r.priority = *c.priority;
  }
  if (c.concurrencyLimit) {
    if (*c.concurrencyLimit < 0) {
      return invalidArgument("--concurrency must be >= 0 (0 = no cap)");
    }
    r.concurrencyLimit = *c.concurrencyLimit;
  }
  if (c.modelMapping) {
    for (const auto& [from, to] : *c.modelMapping) {
      if (from.empty() || to.empty() || hasControl(from) || hasControl(to)) {
        return invalidArgument("--model-map: empty or unprintable model name");
      }
    }
    r.modelMapping = *c.modelMapping;
  }
  if (c.groups) {
    std::set<std::string> seen;
    for (const auto& g : *c.groups) {
      if (g.empty() || g.size() > 64 || !allOf(g, "-_.")) {
        return invalidArgument(
            "--groups: group names are 1..64 letters, digits, '-', '_' or '.'"
            ", got \"" +
            g + "\"");
      }
      seen.insert(g);
    }
    r.groups.assign(seen.begin(), seen.end());
  }
  if (c.dedicated) {
    r.sharing = *c.dedicated ? "dedicated" : "shared";
  }
  if (c.subscriptionExpiresAtMs) {
    if (*c.subscriptionExpiresAtMs < 0 ||
        (*c.subscriptionExpiresAtMs > 0 && *c.subscriptionExpiresAtMs <= clock_.nowUnixMs())) {
      return invalidArgument("--expires-at is in the past");
    }
    r.subscriptionExpiresAtMs = *c.subscriptionExpiresAtMs;
  }
  if (c.schedulable) {
    r.schedulable = *c.schedulable;
  }
  if (c.proxyUrl) {
    if (!c.proxyUrl->empty()) {
      Status s = checkProxy(*c.proxyUrl);
      if (!s) {
        return s;
      }
    } else {
      r.secretsSealed.erase("proxy_password");
    }
    r.proxyUrl = *c.proxyUrl;
  }

  auto settings = settingsOf(r);
  const bool bedrockBearer = r.type == "bedrock" && c.fields.count("bearer-token") != 0;
  for (const auto& [flag, value] : c.fields) {
    bool common = flag == "proxy-password";
    bool allowed =
        common ||
        std::find(spec->required.begin(), spec->required.end(), flag) != spec->required.end() ||
        std::find(spec->optional.begin(), spec->optional.end(), flag) != spec->optional.end();
    if (!allowed) {
      auto flags = typeFlags(r.type);
      std::string list;
      for (const auto& f : flags) {
        list += (list.empty() ? "--" : ", --") + f;
      }
      return invalidArgument("--" + flag + " does not apply to account type " + r.type +
                             " (it takes " + list + ")");
    }
    if (value.empty()) {
      return invalidArgument("--" + flag + " must not be empty");
    }
    if (flag == "base-url" || flag == "endpoint") {
      auto url = checkUrl(flag, value);
      if (!url) {
        return url.status();
      }
      r.baseUrl = *url;
    } else if (auto sf = secretFlags().find(flag); sf != secretFlags().end()) {
      if (hasControl(value)) {
        return invalidArgument("--" + flag + " contains control characters");
      }
      if (r.type == "bedrock" && !creating) {
        // Switching between AWS keys and a bearer token means re-adding the account.
        bool wasBearer =
            settings.count("credentialType") != 0 && settings.at("credentialType") == "bearer";
        bool isBearerFlag = flag == "bearer-token";
        if (flag != "proxy-password" && wasBearer != isBearerFlag) {
          return invalidArgument("--" + flag + ": this bedrock account uses " +
                                 (wasBearer ? "a bearer token" : "AWS keys") +
                                 "; remove and re-add it to switch");
        }
      }
      if (flag == "proxy-password" && !c.proxyUrl && r.proxyUrl.empty()) {
        return invalidArgument("--proxy-password needs --proxy");
      }
      std::string name = sf->second;
      AccountRecord probe = r;
      if (r.type == "bedrock" && creating) {
        settings["credentialType"] = bedrockBearer ? "bearer" : "aws_keys";
        probe.settingsJson = settingsToJson(settings);
      }
      if (name == primarySecretName(probe)) {
        r.secretSealed = box_.seal(value);
      } else {
        r.secretsSealed[name] = box_.seal(value);
      }
    } else {
      Status s = checkSetting(flag, value);
      if (!s) {
        return s;
      }
      settings[settingFlags().at(flag)] = value;
    }
  }
  if (r.type == "bedrock") {
    if (creating) {
      settings["credentialType"] = bedrockBearer ? "bearer" : "aws_keys";
    }
    if (settings.count("region") != 0) {
      r.baseUrl = "https://bedrock-runtime." + settings["region"] + ".amazonaws.com";
    }
  }
  r.settingsJson = settingsToJson(settings);
  if (r.baseUrl.empty() && spec->defaultBaseUrl[0] != '\0') {
    r.baseUrl = spec->defaultBaseUrl;
  }
  r.provider = spec->provider;
  return checkComplete(r, *spec);
}

Status AccountService::store(const AccountRecord& rec, bool creating) {
  Status s = creating ? store_.accounts().create(rec) : store_.accounts().update(rec);
  std::lock_guard<std::mutex> lock(mu_);
  cachedUntilMs_ = 0;
  return s;
}

StatusOr<AccountRecord> AccountService::add(const NewAccountOptions& o) {
  AccountRecord r;
  r.type = o.type;
  AccountChanges c;
  c.name = o.name;
  c.priority = o.priority;
  c.concurrencyLimit = o.concurrencyLimit;
  c.modelMapping = o.modelMapping;
  if (!o.proxyUrl.empty()) {
    c.proxyUrl = o.proxyUrl;
  }
  c.groups = o.groups;
  c.dedicated = o.dedicated;
  c.subscriptionExpiresAtMs = o.subscriptionExpiresAtMs;
  c.fields = o.fields;
  if (!o.baseUrl.empty()) {
    c.fields["base-url"] = o.baseUrl;
  }
  if (!o.apiKey.empty()) {
    c.fields["api-key"] = o.apiKey;
  }
  Status s = apply(r, c, /*creating=*/true);
  if (!s) {
    return s;
  }
  r.id = crypto::uuidV4();
  r.createdAtMs = clock_.nowUnixMs();
  r.updatedAtMs = r.createdAtMs;
  s = store(r, /*creating=*/true);
  if (!s) {
    return s;
  }
  return r;
}

StatusOr<AccountRecord> AccountService::get(const std::string& id) {
  auto got = store_.accounts().get(id);
  if (!got) {
    return got.status();
  }
  if (!got->has_value()) {
    return notFound("no account with id " + id);
  }
  AccountRecord r = std::move(**got);
  if (r.provider.empty()) {
    r.provider = providerOf(r.type);  // written before the field existed
  }
  return r;
}

StatusOr<AccountRecord> AccountService::update(const std::string& id, const AccountChanges& c) {
  auto got = get(id);
  if (!got) {
    return got.status();
  }
  AccountRecord r = std::move(got.value());
  Status s = apply(r, c, /*creating=*/false);
  if (!s) {
    return s;
  }
  r.updatedAtMs = clock_.nowUnixMs();
  s = store(r, /*creating=*/false);
  if (!s) {
    return s;
  }
  return r;
}

Status AccountService::enable(const std::string& id) {
  auto got = get(id);
  if (!got) {
    return got.status();
  }
  got->status = "active";
  got->statusReason.clear();
  got->updatedAtMs = clock_.nowUnixMs();
  return store(*got, /*creating=*/false);
}

Status AccountService::disable(const std::string& id, const std::string& reason) {
  if (hasControl(reason) || reason.size() > 500) {
    return invalidArgument("--reason: at most 500 printable characters");
  }
  auto got = get(id);
  if (!got) {
    return got.status();
  }
  got->status = "disabled";
  got->statusReason = reason.empty() ? "disabled by an operator" : reason;
  got->updatedAtMs = clock_.nowUnixMs();
  return store(*got, /*creating=*/false);
}

Status AccountService::setStatus(const std::string& id, const std::string& status,
                                 const std::string& reason) {
  if (status != "active" && status != "error" && status != "blocked" && status != "disabled") {
    return invalidArgument("account status must be active, error, blocked or disabled, got \"" +
                           status + "\"");
  }
  if (hasControl(reason) || reason.size() > 500) {
    return invalidArgument("status reason: at most 500 printable characters");
  }
  auto got = get(id);
  if (!got) {
    return got.status();
  }
  if (got->status == status && got->statusReason == reason) {
    return Status::ok();
  }
  got->status = status;
  got->statusReason = status == "active" ? std::string() : reason;
  got->updatedAtMs = clock_.nowUnixMs();
  return store(*got, /*creating=*/false);
}

void AccountService::invalidateCache() {
  std::lock_guard<std::mutex> lock(mu_);
  cachedUntilMs_ = 0;
}

StatusOr<std::string> AccountService::openPrimaryCached(const AccountRecord& rec) {
  if (auto hit = secrets_.get(rec.secretSealed)) {
    return std::move(*hit);
  }
  auto secret = box_.open(rec.secretSealed);
  if (!secret) {
    return Status(Code::kInternal, "account " + rec.id + ": cannot open its secret (" +
                                       secret.status().message() + ")");
  }
  secrets_.put(rec.secretSealed, *secret);
  return secret;
}

Status AccountService::setSchedulable(const std::string& id, bool schedulable) {
  auto got = get(id);
  if (!got) {
    return got.status();
  }
  got->schedulable = schedulable;
  got->updatedAtMs = clock_.nowUnixMs();
  return store(*got, /*creating=*/false);
}

StatusOr<std::vector<AccountRecord>> AccountService::list() {
  auto all = store_.accounts().list();
  if (all) {
    for (auto& r : *all) {
      if (r.provider.empty()) {
        r.provider = providerOf(r.type);
      }
    }
  }
  return all;
}

Status AccountService::remove(const std::string& id) {
  Status s = store_.accounts().remove(id);
  std::lock_guard<std::mutex> lock(mu_);
  cachedUntilMs_ = 0;
  return s;
}

StatusOr<std::shared_ptr<const std::vector<AccountRecord>>> AccountService::snapshot() {
  int64_t now = clock_.monotonicMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ && now < cachedUntilMs_) {
      return cached_;
    }
  }
  auto all = store_.accounts().list();
  if (!all) {
    return all.status();
  }
  auto snap = std::make_shared<const std::vector<AccountRecord>>(std::move(all.value()));
  std::lock_guard<std::mutex> lock(mu_);
  cached_ = snap;
  cachedUntilMs_ = now + cacheTtlMs_;
  return snap;
}

StatusOr<std::string> AccountService::maskedSecret(const AccountRecord& rec) const {
  auto secret = box_.open(rec.secretSealed);
  if (!secret) {
    return secret.status();
  }
  return maskValue(*secret);
}

StatusOr<std::vector<MaskedSecret>> AccountService::maskedSecrets(const AccountRecord& rec) const {
  std::vector<MaskedSecret> out;
  if (!rec.secretSealed.empty()) {
    auto m = maskedSecret(rec);
    if (!m) {
      return m.status();
    }
    out.push_back({primarySecretName(rec), *m});
  }
  for (const auto& [name, sealed] : rec.secretsSealed) {
    auto secret = box_.open(sealed);
    if (!secret) {
      return secret.status();
    }
    out.push_back({name, maskValue(*secret)});
  }
  return out;
}

StatusOr<std::string> AccountService::openSecret(const AccountRecord& rec,
                                                 const std::string& name) const {
  if (name == primarySecretName(rec)) {
    return box_.open(rec.secretSealed);
  }
  auto it = rec.secretsSealed.find(name);
  if (it == rec.secretsSealed.end()) {
    return notFound("account " + rec.id + " has no secret " + name);
  }
  return box_.open(it->second);
}

}  // namespace rg
