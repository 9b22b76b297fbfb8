#include "cli/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "accounting/pricing.h"
#include "accounts/account_input.h"
#include "accounts/account_tester.h"
#include "app/app.h"
#include "app/master_key_rotation.h"
#include "auth/key_input.h"
#include "cli/usage_command.h"
#include "common/time_format.h"
#include "config/config.h"
#include "oauth/claude_oauth.h"
#include "observability/logging.h"
#include "upstream/http_client.h"

namespace rg {

namespace {

constexpr const char* kUsage = R"(usage: relaygate <command> [--config FILE] [options]

commands:
  serve                         run the gateway
  check-config                  validate the config and print it with secrets masked
  keys create --name NAME [--permissions claude,gemini,openai] [--expires-at ISO8601]
              [--concurrency N] [--rate-window-min M --rate-requests R --rate-tokens T
              --rate-cost USD] [--daily-cost USD] [--total-cost USD] [--weekly-cost USD
              --weekly-reset-day 1..7 --weekly-reset-hour 0..23] [--rate X]
              [--activation-hours N | --activation-days N]
              [--deny-models a,b | --allow-models a,b]
              [--bind PROVIDER=ACCOUNT_ID|group:NAME ...]
                                create a gateway key; the key is printed once, alone on the
                                last line of stdout. USD amounts are decimals ("0.25", at most
                                6 places, 0 = no limit); --rate multiplies the key's prices;
                                activation: the key expires N hours/days after its first use
  keys update ID [the create flags but --name and --bind; --expires-at never]
                                change only the given limits of a key
  keys list | keys show ID | keys disable ID | keys enable ID | keys delete ID
  keys bind ID --bind claude=group:team-a [--bind openai=ACCOUNT_ID ...]
  keys unbind ID --provider claude
                                a bound provider is served only by that account or group
  accounts add --type TYPE --name NAME [type flags] [--priority 1..100] [--concurrency N]
               [--models a,b | --model-map a=b,c=d] [--proxy URL [--proxy-password P]]
               [--groups g1,g2] [--sharing shared|dedicated] [--expires-at ISO8601]
               [--schedulable yes|no]
      types and their flags (required first):
        claude-official   --access-token [--refresh-token --token-expires-at MS
                          --oauth-scopes S --base-url]
        claude-console    --base-url --api-key
        bedrock           --region and --aws-access-key-id --aws-secret-access-key
                          [--aws-session-token], or --bearer-token
        gemini            --access-token [--refresh-token --project-id --base-url]
        gemini-api        --api-key [--base-url]
        openai            --access-token --chatgpt-account-id [--refresh-token --base-url]
        openai-responses  --base-url --api-key
        azure-openai      --endpoint --deployment --api-version --api-key
  accounts update ID [same flags but --type] | accounts disable ID [--reason TEXT]
  accounts list | accounts show ID | accounts enable ID | accounts remove ID
                                secrets are sealed at rest and only ever shown masked
  accounts reset ID             clear cooldowns and sticky sessions, status active
  accounts cooldowns            live cooldowns (account, scope, until, class, reason)
  accounts test ID [--model M]  send one tiny request through the account
  accounts oauth-url --type claude-official [--setup-token] [--proxy URL --proxy-password P]
                                start a Claude OAuth authorization: prints URL and session
  accounts oauth-exchange --session S --code CODE --name NAME [common account flags]
                                finish it: adds the claude-official account
  rotate-master-key [--new-key-file PATH]
                                re-seal every secret under a new master key (stop the server
                                first); gateway keys keep working
  usage (--key ID | --account ID | --model M) [--from ISO8601 --to ISO8601]
        [--by hour|day|month] [--by-model] [--json]
                                usage per bucket in accounting.time_zone (default: the last
                                7 days by day); --by-model splits a key's usage per model
  usage top [--from ISO8601 --to ISO8601] [--by hour|day|month] [--limit N] [--json]
                                keys by billed cost
  usage recent --key ID [--limit N] [--json]
                                the key's most recent requests
  plugins list                  loaded plugins with name, version, ABI version and routes
  version

--config defaults to $RELAYGATE_CONFIG, else config/relaygate.example.yaml.
)";

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;             // the last value of each flag
  std::map<std::string, std::vector<std::string>> all;  // every value, for repeatable flags
};

StatusOr<Args> parseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string name = s.substr(2);
      std::string value;
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (name == "help" || name == "setup-token" || name == "json" || name == "by-model") {
        value = "1";  // switches without a value
      } else {
        if (i + 1 >= argc) {
          return invalidArgument("--" + name + " needs a value");
        }
        value = argv[++i];
      }
      a.flags[name] = value;
      a.all[name].push_back(value);
    } else if (s == "-h") {
      a.flags["help"] = "1";
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, ',')) {
    size_t b = cur.find_first_not_of(" \t");
    size_t e = cur.find_last_not_of(" \t");
    if (b != std::string::npos) {
      out.push_back(cur.substr(b, e - b + 1));
    }
  }
  return out;
}

StatusOr<int64_t> parseInt(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || n < 0) {
    return invalidArgument("--" + flag + ": expected a non-negative integer, got \"" + v + "\"");
  }
  return static_cast<int64_t>(n);
}

std::string isoTime(int64_t ms) {
  return ms <= 0 ? "-" : isoTimeUtc(ms);
}

std::string joinList(const std::vector<std::string>& v, const char* empty) {
  if (v.empty()) {
    return empty;
  }
  std::string s;
  for (const auto& x : v) {
    s += (s.empty() ? "" : ",") + x;
  }
  return s;
}

std::string bindingsText(const std::map<std::string, std::string>& b) {
  if (b.empty()) {
    return "none (shared pool)";
  }
  std::string s;
  for (const auto& [provider, target] : b) {
    s += (s.empty() ? "" : ",") + provider + "=" + target;
  }
  return s;
}

// Every --bind PROVIDER=TARGET into `out` (a later one for the same provider wins).
Status readBindFlags(const Args& a, std::map<std::string, std::string>* out) {
  auto it = a.all.find("bind");
  if (it == a.all.end()) {
    return Status::ok();
  }
  for (const auto& v : it->second) {
    size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
      return invalidArgument("--bind: expected PROVIDER=ACCOUNT_ID or PROVIDER=group:NAME, got \"" +
                             v + "\"");
    }
    (*out)[v.substr(0, eq)] = v.substr(eq + 1);
  }
  return Status::ok();
}

std::string usdText(int64_t microUsd) {
  return microUsd > 0 ? "$" + formatUsdMicros(microUsd) : "none";
}

std::string durationText(int64_t ms) {
  return ms % 86'400'000 == 0 ? std::to_string(ms / 86'400'000) + " days"
                              : std::to_string(ms / 3'600'000) + " hours";
}

// The cost limits and rate in one short line for `keys list` ("-" when none).
std::string limitsSummary(const ApiKeyRecord& k) {
  std::string s;
  auto add = [&s](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (k.rateCostMicroUsd > 0) {
    add("window " + usdText(k.rateCostMicroUsd));
  }
  if (k.dailyCostMicroUsd > 0) {
    add("daily " + usdText(k.dailyCostMicroUsd));
  }
  if (k.weeklyCostMicroUsd > 0) {
    add("weekly " + usdText(k.weeklyCostMicroUsd));
  }
  if (k.totalCostMicroUsd > 0) {
    add("total " + usdText(k.totalCostMicroUsd));
  }
  if (k.ratePpm != kRatePpmOne) {
    add("rate x" + formatRatePpm(k.ratePpm));
  }
  if (k.activationMs > 0 && k.activatedAtMs == 0) {
    add("activation " + durationText(k.activationMs));
  }
  return s.empty() ? "-" : s;
}

void printKey(const ApiKeyRecord& k) {
  std::printf("id:           %s\n", k.id.c_str());
  std::printf("name:         %s\n", k.name.c_str());
  std::printf("enabled:      %s\n", k.enabled ? "yes" : "no");
  std::printf("created:      %s\n", isoTime(k.createdAtMs).c_str());
  std::printf("expires:      %s\n", k.expiresAtMs > 0 ? isoTime(k.expiresAtMs).c_str() : "never");
  std::printf("permissions:  %s\n", joinList(k.permissions, "all").c_str());
  std::printf("concurrency:  %s\n",
              k.concurrencyLimit > 0 ? std::to_string(k.concurrencyLimit).c_str() : "unlimited");
  if (k.rateWindowMinutes > 0) {
    std::printf("rate window:  %lld min, %lld requests, %lld tokens, $%s cost (0 = no cap)\n",
                static_cast<long long>(k.rateWindowMinutes), static_cast<long long>(k.rateRequests),
                static_cast<long long>(k.rateTokens), formatUsdMicros(k.rateCostMicroUsd).c_str());
  } else {
    std::printf("rate window:  none\n");
  }
  const char* mode = k.modelMode == ModelFilterMode::kAllow  ? "allow "
                     : k.modelMode == ModelFilterMode::kDeny ? "deny "
                                                             : "";
  std::printf("models:       %s%s\n", mode, joinList(k.models, "all").c_str());
  std::printf("bindings:     %s\n", bindingsText(k.bindings).c_str());
  static const char* const kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  std::printf("daily cost:   %s\n", usdText(k.dailyCostMicroUsd).c_str());
  std::printf("total cost:   %s\n", usdText(k.totalCostMicroUsd).c_str());
  std::printf("weekly cost:  %s (week starts %s %02lld:00)\n",
              usdText(k.weeklyCostMicroUsd).c_str(),
              k.weeklyResetDay >= 1 && k.weeklyResetDay <= 7 ? kDays[k.weeklyResetDay - 1] : "?",
              static_cast<long long>(k.weeklyResetHour));
  std::printf("rate:         x%s\n", formatRatePpm(k.ratePpm).c_str());
  if (k.activationMs <= 0) {
    std::printf("activation:   none\n");
  } else if (k.activatedAtMs == 0) {
    std::printf("activation:   %s after first use, not used yet\n",
                durationText(k.activationMs).c_str());
  } else {
    std::printf("activation:   %s after first use, activated %s\n",
                durationText(k.activationMs).c_str(), isoTime(k.activatedAtMs).c_str());
  }
}

// The flags of `keys create` (creating) and `keys update` into `in`. Unknown flags are refused
// so that a typo is not silently ignored. Creating, an empty flag counts as not given; updating,
// a given flag is a change (an empty model list drops the filter).
Status readKeyFlags(const Args& a, bool creating, KeyInput* in) {
  static const std::vector<std::string> known = {"config",
                                                 "help",
                                                 "name",
                                                 "permissions",
                                                 "expires-at",
                                                 "concurrency",
                                                 "rate-window-min",
                                                 "rate-requests",
                                                 "rate-tokens",
                                                 "rate-cost",
                                                 "daily-cost",
                                                 "total-cost",
                                                 "weekly-cost",
                                                 "weekly-reset-day",
                                                 "weekly-reset-hour",
                                                 "rate",
                                                 "activation-hours",
                                                 "activation-days",
                                                 "allow-models",
                                                 "deny-models",
                                                 "bind"};
  for (const auto& kv : a.flags) {
    bool ok = std::find(known.begin(), known.end(), kv.first) != known.end() &&
              (creating || (kv.first != "name" && kv.first != "bind"));
    if (!ok) {
      return invalidArgument("unknown flag --" + kv.first + " for keys " +
                             (creating ? "create" : "update") +
                             (kv.first == "bind" ? " (use keys bind / keys unbind)" : "") +
                             (kv.first == "name" ? " (a key's name cannot change)" : ""));
    }
  }
  auto given = [&](const char* n) -> const std::string* {
    auto it = a.flags.find(n);
    if (it == a.flags.end() || (creating && it->second.empty())) {
      return nullptr;
    }
    return &it->second;
  };
  if (const std::string* v = given("name")) {
    in->name = *v;
  }
  if (creating) {
    in->permissions = splitList(a.flags.count("permissions") ? a.flags.at("permissions") : "");
  } else if (const std::string* v = given("permissions")) {
    in->permissions = splitList(*v);
  }
  if (const std::string* v = given("expires-at")) {
    if (!creating && (*v == "never" || *v == "0")) {
      in->expiresAtMs = 0;
    } else {
      auto t = parseIso8601(*v);
      if (!t) {
        return invalidArgument("--expires-at: " + t.status().message());
      }
      in->expiresAtMs = *t;
    }
  }
  struct {
    const char* name;
    std::optional<int64_t>* dest;
  } ints[] = {
      {"concurrency", &in->concurrencyLimit},     {"rate-window-min", &in->rateWindowMinutes},
      {"rate-requests", &in->rateRequests},       {"rate-tokens", &in->rateTokens},
      {"weekly-reset-day", &in->weeklyResetDay},  {"weekly-reset-hour", &in->weeklyResetHour},
      {"activation-hours", &in->activationHours}, {"activation-days", &in->activationDays}};
  for (auto& f : ints) {
    if (const std::string* v = given(f.name)) {
      auto n = parseInt(f.name, *v);
      if (!n) {
        return n.status();
      }
      *f.dest = *n;
    }
  }
  struct {
    const char* name;
    std::optional<std::string>* dest;
  } decimals[] = {{"rate-cost", &in->rateCostUsd},
                  {"daily-cost", &in->dailyCostUsd},
                  {"total-cost", &in->totalCostUsd},
                  {"weekly-cost", &in->weeklyCostUsd},
                  {"rate", &in->rate}};
  for (auto& f : decimals) {
    if (const std::string* v = given(f.name)) {
      *f.dest = *v;  // parsed (without floating point) by keyPatch, which names the flag
    }
  }
  if (const std::string* v = given("allow-models")) {
    in->allowModels = splitList(*v);
  }
  if (const std::string* v = given("deny-models")) {
    in->denyModels = splitList(*v);
  }
  if (creating) {
    std::map<std::string, std::string> bindings;
    Status bs = readBindFlags(a, &bindings);
    if (!bs) {
      return bs;
    }
    in->bindings = std::move(bindings);
  }
  return Status::ok();
}

int fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.message().c_str());
  return 1;
}

int cmdKeys(Services& s, const Args& a) {
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "";
  if (verb == "create") {
    KeyInput in;
    Status fs = readKeyFlags(a, /*creating=*/true, &in);
    if (!fs) {
      return fail(fs);
    }
    auto o = newKeyOptions(in, s.clock->nowUnixMs(), InputSpelling::kCliFlags);
    if (!o) {
      return fail(o.status());
    }
    auto created = s.keys->create(*o);
    if (!created) {
      return fail(created.status());
    }
    printKey(created->record);
    std::printf("\nThe key is shown only this once; store it now:\n%s\n",
                created->plainKey.c_str());
    return 0;
  }
  if (verb == "list") {
    auto keys = s.keys->list();
    if (!keys) {
      return fail(keys.status());
    }
    std::printf("%-36s  %-24s  %-8s  %-20s  %-16s  %-24s  %s\n", "ID", "NAME", "ENABLED", "EXPIRES",
                "PERMISSIONS", "BINDINGS", "LIMITS");
    for (const auto& k : *keys) {
      std::printf(
          "%-36s  %-24s  %-8s  %-20s  %-16s  %-24s  %s\n", k.id.c_str(), k.name.c_str(),
          k.enabled ? "yes" : "no", k.expiresAtMs > 0 ? isoTime(k.expiresAtMs).c_str() : "never",
          joinList(k.permissions, "all").c_str(),
          k.bindings.empty() ? "-" : bindingsText(k.bindings).c_str(), limitsSummary(k).c_str());
    }
    return 0;
  }
  const std::string id = a.positional.size() > 2 ? a.positional[2] : "";
  if (verb == "update") {
    if (id.empty()) {
      return fail(invalidArgument("keys update needs a key ID"));
    }
    KeyInput in;
    Status fs = readKeyFlags(a, /*creating=*/false, &in);
    if (!fs) {
      return fail(fs);
    }
    auto patch = keyPatch(in, s.clock->nowUnixMs(), InputSpelling::kCliFlags);
    if (!patch) {
      return fail(patch.status());
    }
    if (patch->empty()) {
      return fail(invalidArgument("keys update needs at least one flag to change (see --help)"));
    }
    auto updated = s.keys->update(id, *patch, InputSpelling::kCliFlags);
    if (!updated) {
      return fail(updated.status());
    }
    printKey(*updated);
    return 0;
  }
  if (verb == "bind" || verb == "unbind") {
    if (id.empty()) {
      return fail(invalidArgument("keys " + verb + " needs a key ID"));
    }
    auto k = s.keys->get(id);
    if (!k) {
      return fail(k.status());
    }
    std::map<std::string, std::string> b = k->bindings;
    if (verb == "bind") {
      if (a.all.count("bind") == 0) {
        return fail(invalidArgument("keys bind needs --bind PROVIDER=ACCOUNT_ID|group:NAME"));
      }
      Status bs = readBindFlags(a, &b);
      if (!bs) {
        return fail(bs);
      }
    } else {
      auto it = a.all.find("provider");
      if (it == a.all.end()) {
        return fail(invalidArgument("keys unbind needs --provider PROVIDER"));
      }
      for (const auto& p : it->second) {
        if (b.erase(p) == 0) {
          return fail(notFound("key " + id + " has no binding for " + p));
        }
      }
    }
    auto updated = s.keys->setBindings(id, b);
    if (!updated) {
      return fail(updated.status());
    }
    std::printf("key %s bindings: %s\n", id.c_str(), bindingsText(updated->bindings).c_str());
    return 0;
  }
  if (verb == "show" || verb == "disable" || verb == "enable" || verb == "delete") {
    if (id.empty()) {
      return fail(invalidArgument("keys " + verb + " needs a key ID"));
    }
    if (verb == "show") {
      auto k = s.keys->get(id);
      if (!k) {
        return fail(k.status());
      }
      printKey(*k);
      return 0;
    }
    Status st = verb == "delete" ? s.keys->remove(id) : s.keys->setEnabled(id, verb == "enable");
    if (!st) {
      return fail(st);
    }
    std::printf("key %s %s\n", id.c_str(),
                verb == "delete"   ? "deleted"
                : verb == "enable" ? "enabled"
                                   : "disabled");
    return 0;
  }
  return fail(invalidArgument("unknown keys command \"" + verb +
                              "\" (create, update, list, show, disable, enable, delete, bind, "
                              "unbind)"));
}

// Reads the common and type-specific account flags into `c`; rejects flags no verb knows so a
// typo is not silently ignored.
Status readAccountFlags(const Args& a, const Clock& clock, bool adding, AccountChanges& c) {
  static const std::vector<std::string> common = {
      "config",    "type",  "name",   "priority", "concurrency", "models",
      "model-map", "proxy", "groups", "sharing",  "expires-at",  "schedulable"};
  // Type-specific fields and the OAuth token fields (token-expires-at, oauth-scopes).
  std::vector<std::string> fieldFlags = accountFieldFlags();
  const auto& oauthFlags = oauthFieldFlags();
  fieldFlags.insert(fieldFlags.end(), oauthFlags.begin(), oauthFlags.end());
  for (const auto& [name, value] : a.flags) {
    bool known = std::find(common.begin(), common.end(), name) != common.end() ||
                 std::find(fieldFlags.begin(), fieldFlags.end(), name) != fieldFlags.end();
    if (!known || (name == "type" && !adding)) {
      return invalidArgument("unknown flag --" + name + " for accounts " +
                             (adding ? "add" : "update"));
    }
    if (std::find(fieldFlags.begin(), fieldFlags.end(), name) != fieldFlags.end()) {
      c.fields[name] = value;
    }
  }
  auto flag = [&](const char* n) -> const std::string* {
    auto it = a.flags.find(n);
    return it == a.flags.end() ? nullptr : &it->second;
  };
  if (const std::string* v = flag("name")) {
    c.name = *v;
  }
  struct {
    const char* name;
    std::optional<int64_t>* dest;
  } ints[] = {{"priority", &c.priority}, {"concurrency", &c.concurrencyLimit}};
  for (auto& f : ints) {
    if (const std::string* v = flag(f.name)) {
      auto n = parseInt(f.name, *v);
      if (!n) {
        return n.status();
      }
      *f.dest = *n;
    }
  }
  if (flag("models") != nullptr && flag("model-map") != nullptr) {
    return invalidArgument("use either --models or --model-map, not both");
  }
  for (const char* n : {"models", "model-map"}) {
    if (const std::string* v = flag(n)) {
      if (std::string(n) == "models" && v->find('=') != std::string::npos) {
        return invalidArgument("--models takes a list of model names; use --model-map a=b");
      }
      auto m = parseModelMapping(*v);
      if (!m) {
        return invalidArgument("--" + std::string(n) + ": " + m.status().message());
      }
      c.modelMapping = *m;
    }
  }
  if (const std::string* v = flag("proxy")) {
    c.proxyUrl = *v == "none" ? std::string() : *v;
  }
  if (const std::string* v = flag("groups")) {
    c.groups = splitList(*v);
  }
  if (const std::string* v = flag("sharing")) {
    Status st = readSharing("--sharing", *v, &c.dedicated);
    if (!st) {
      return st;
    }
  }
  if (const std::string* v = flag("schedulable")) {
    if (*v != "yes" && *v != "no") {
      return invalidArgument("--schedulable: expected yes or no, got \"" + *v + "\"");
    }
    c.schedulable = *v == "yes";
  }
  if (const std::string* v = flag("expires-at")) {
    if (*v == "never") {
      c.subscriptionExpiresAtMs = 0;
    } else {
      auto t = parseIso8601(*v);
      if (!t) {
        return invalidArgument("--expires-at: " + t.status().message());
      }
      if (*t <= clock.nowUnixMs()) {
        return invalidArgument("--expires-at is in the past");
      }
      c.subscriptionExpiresAtMs = *t;
    }
  }
  return Status::ok();
}

void printAccount(AccountService& svc, const AccountRecord& r) {
  std::printf("id:           %s\n", r.id.c_str());
  std::printf("name:         %s\n", r.name.c_str());
  std::printf("type:         %s (%s)\n", r.type.c_str(), r.provider.c_str());
  std::printf("status:       %s%s\n", r.status.c_str(),
              r.statusReason.empty() ? "" : (" (" + r.statusReason + ")").c_str());
  std::printf("schedulable:  %s\n", r.schedulable ? "yes" : "no");
  std::printf("priority:     %lld\n", static_cast<long long>(r.priority));
  std::printf("sharing:      %s\n", r.sharing.c_str());
  std::printf("groups:       %s\n", joinList(r.groups, "none").c_str());
  std::printf("concurrency:  %s\n",
              r.concurrencyLimit > 0 ? std::to_string(r.concurrencyLimit).c_str() : "unlimited");
  std::string models;
  for (const auto& [from, to] : r.modelMapping) {
    models += (models.empty() ? "" : ",") + (from == to ? from : from + "=" + to);
  }
  std::printf("models:       %s\n", models.empty() ? "all" : models.c_str());
  std::printf("base url:     %s\n", r.baseUrl.empty() ? "-" : r.baseUrl.c_str());
  for (const auto& [k, v] : AccountService::settingsOf(r)) {
    std::printf("%-13s %s\n", (k + ":").c_str(), v.c_str());
  }
  std::printf("proxy:        %s\n", r.proxyUrl.empty() ? "none" : r.proxyUrl.c_str());
  std::printf("expires:      %s\n",
              r.subscriptionExpiresAtMs > 0 ? isoTime(r.subscriptionExpiresAtMs).c_str() : "never");
  std::printf("created:      %s\n", isoTime(r.createdAtMs).c_str());
  std::printf("updated:      %s\n", isoTime(r.updatedAtMs).c_str());
  std::printf("last used:    %s\n", isoTime(r.lastUsedAtMs).c_str());
  auto secrets = svc.maskedSecrets(r);
  if (!secrets) {
    std::printf("secrets:      (unreadable: %s)\n", secrets.status().message().c_str());
    return;
  }
  for (const auto& m : *secrets) {
    std::printf("secret %-20s %s\n", (m.name + ":").c_str(), m.masked.c_str());
  }
}

// Adds the account and applies --schedulable no; prints the result (the id alone last).
int addAccount(Services& s, const NewAccountOptions& o, const AccountChanges& c) {
  auto r = s.accounts->add(o);
  if (!r) {
    return fail(r.status());
  }
  if (c.schedulable && !*c.schedulable) {
    Status sc = s.accounts->setSchedulable(r->id, false);
    if (!sc) {
      return fail(sc);
    }
  }
  std::printf("account %s added (%s, %s, priority %lld)\n%s\n", r->name.c_str(), r->type.c_str(),
              r->baseUrl.c_str(), static_cast<long long>(r->priority), r->id.c_str());
  return 0;
}

// The one place the CLI builds its Claude OAuth client: oauth.claude from the config, with the
// endpoints overridable by environment (RG_CLAUDE_OAUTH_TOKEN_URL / _AUTHORIZE_URL).
std::unique_ptr<ClaudeOAuth> makeClaudeOAuth(Services& s, UpstreamClient& http) {
  const ClaudeOAuthConfig& c = s.config.oauth.claude;
  ClaudeOAuthOptions o;
  o.authorizeUrl = c.authorizeUrl;
  o.tokenUrl = c.tokenUrl;
  o.clientId = c.clientId;
  o.redirectUri = c.redirectUri;
  o.scopes = c.scopes;
  o.setupScopes = c.setupScopes;
  if (const char* v = std::getenv("RG_CLAUDE_OAUTH_TOKEN_URL"); v != nullptr && *v != '\0') {
    o.tokenUrl = v;
  }
  if (const char* v = std::getenv("RG_CLAUDE_OAUTH_AUTHORIZE_URL"); v != nullptr && *v != '\0') {
    o.authorizeUrl = v;
  }
  return std::make_unique<ClaudeOAuth>(o, http, s.store->settings(), *s.clock, s.secretBox.get());
}

int cmdOAuthUrl(Services& s, const Args& a) {
  static const std::vector<std::string> known = {"config", "type", "setup-token", "proxy",
                                                 "proxy-password"};
  for (const auto& kv : a.flags) {
    if (std::find(known.begin(), known.end(), kv.first) == known.end()) {
      return fail(invalidArgument("unknown flag --" + kv.first + " for accounts oauth-url"));
    }
  }
  auto type = a.flags.find("type");
  if (type == a.flags.end() || type->second != "claude-official") {
    return fail(
        invalidArgument("accounts oauth-url needs --type claude-official (the only "
                        "type with an OAuth flow here)"));
  }
  auto flag = [&](const char* n) {
    auto it = a.flags.find(n);
    return it == a.flags.end() ? std::string() : it->second;
  };
  bool setup = a.flags.count("setup-token") != 0 && flag("setup-token") != "no" &&
               flag("setup-token") != "false";
  if (!flag("proxy-password").empty() && flag("proxy").empty()) {
    return fail(invalidArgument("--proxy-password needs --proxy"));
  }
  UpstreamClient http;
  auto oauth = makeClaudeOAuth(s, http);
  auto st = oauth->start(setup, flag("proxy"), flag("proxy-password"));
  if (!st) {
    return fail(st.status());
  }
  std::printf("session:  %s\n", st->sessionId.c_str());
  std::printf("kind:     %s\n",
              st->setupToken ? "setup token (inference only, 1 year)" : "full OAuth (refreshable)");
  std::printf("expires:  %s\n", isoTime(st->expiresAtMs).c_str());
  std::printf("url:      %s\n", st->url.c_str());
  std::printf(
      "\nOpen the URL, authorize, copy the code shown, then run:\n"
      "  relaygate accounts oauth-exchange --session %s --code CODE --name NAME\n",
      st->sessionId.c_str());
  return 0;
}

int cmdOAuthExchange(Services& s, const Args& a) {
  auto flag = [&](const char* n) {
    auto it = a.flags.find(n);
    return it == a.flags.end() ? std::string() : it->second;
  };
  if (flag("session").empty() || flag("code").empty() || flag("name").empty()) {
    return fail(
        invalidArgument("accounts oauth-exchange needs --session S --code CODE "
                        "--name NAME"));
  }
  if (!flag("type").empty() && flag("type") != "claude-official") {
    return fail(invalidArgument("accounts oauth-exchange creates claude-official accounts only"));
  }
  // The remaining flags are the common account flags of `accounts add`.
  Args rest = a;
  for (const char* n : {"session", "code", "type"}) {
    rest.flags.erase(n);
  }
  for (const char* n : {"access-token", "refresh-token", "token-expires-at", "oauth-scopes"}) {
    if (rest.flags.count(n) != 0) {
      return fail(invalidArgument("--" + std::string(n) + " comes from the OAuth exchange"));
    }
  }
  AccountChanges c;
  Status st = readAccountFlags(rest, *s.clock, /*adding=*/true, c);
  if (!st) {
    return fail(st);
  }
  // The exchange goes through the proxy given to oauth-url (kept in the session); --proxy and
  // --proxy-password here configure the new account.
  UpstreamClient http;
  auto oauth = makeClaudeOAuth(s, http);
  auto tokens = oauth->exchange(flag("session"), flag("code"));
  if (!tokens) {
    return fail(tokens.status());
  }
  setOAuthTokenFields(*tokens, &c.fields);
  NewAccountOptions o = newAccountOptions("claude-official", c);
  std::fill(tokens->accessToken.begin(), tokens->accessToken.end(), '\0');
  std::fill(tokens->refreshToken.begin(), tokens->refreshToken.end(), '\0');
  if (!tokens->accountEmail.empty()) {
    std::printf("authorized: %s%s\n", tokens->accountEmail.c_str(),
                tokens->organization.empty() ? "" : (" (" + tokens->organization + ")").c_str());
  }
  std::printf("scopes:     %s\n", tokens->scopes.empty() ? "-" : tokens->scopes.c_str());
  std::printf("expires:    %s\n",
              tokens->expiresAtMs > 0 ? isoTime(tokens->expiresAtMs).c_str() : "unknown");
  return addAccount(s, o, c);
}

int cmdAccountTest(Services& s, const std::string& id, const Args& a) {
  auto rec = s.accounts->get(id);
  if (!rec) {
    return fail(rec.status());
  }
  MetricsRegistry metrics;
  HostServices hs;
  hs.clock = s.clock;
  hs.store = s.store.get();
  hs.metrics = &metrics;
  auto plugins = loadPlugins(s.config, hs);
  if (!plugins) {
    return fail(plugins.status());
  }
  UpstreamClient http;
  AccountTesterDeps deps;
  deps.accounts = s.accounts.get();
  deps.upstream = &http;
  for (auto& p : plugins->providers) {
    deps.providers.push_back(p.get());
  }
  deps.timeoutMs = s.config.server.upstreamTimeoutMs > 0
                       ? std::min(s.config.server.upstreamTimeoutMs, 120000)
                       : 60000;
  std::unique_ptr<ClaudeOAuth> oauth;
  std::unique_ptr<TokenManager> tokens;
  if (rec->type == "claude-official") {
    oauth = makeClaudeOAuth(s, http);
    TokenManagerOptions to;
    to.refreshLeadMs = s.config.oauth.claude.refreshLeadMs;
    to.backgroundIntervalMs = 0;
    tokens = std::make_unique<TokenManager>(*oauth, *s.accounts, s.store->sched(), *s.clock,
                                            nullptr, to);
    deps.tokens = tokens.get();
  }
  auto it = a.flags.find("model");
  auto r = testAccount(deps, *rec, it == a.flags.end() ? std::string() : it->second);
  if (!r) {
    return fail(r.status());
  }
  if (r->ok) {
    std::printf("ok %d in %lld ms (model %s)\n", r->status, static_cast<long long>(r->latencyMs),
                r->model.c_str());
    return 0;
  }
  if (r->status == 0) {
    std::printf("failed in %lld ms (model %s): %s\n", static_cast<long long>(r->latencyMs),
                r->model.c_str(), r->detail.c_str());
  } else {
    std::printf("failed %d in %lld ms (model %s): %s\n", r->status,
                static_cast<long long>(r->latencyMs), r->model.c_str(), r->detail.c_str());
  }
  return 1;
}

int cmdCooldowns(Services& s) {
  auto cds = s.store->sched().listCooldowns();
  if (!cds) {
    return fail(cds.status());
  }
  std::map<std::string, std::string> names;
  if (auto all = s.accounts->list()) {
    for (const auto& r : *all) {
      names[r.id] = r.name;
    }
  }
  if (cds->empty()) {
    std::printf("no account is cooling down\n");
    return 0;
  }
  std::printf("%-36s  %-20s  %-8s  %-20s  %-14s  %s\n", "ACCOUNT", "NAME", "SCOPE", "UNTIL",
              "CLASS", "REASON");
  for (const auto& c : *cds) {
    auto n = names.find(c.accountId);
    std::string reason = c.reason;
    if (c.upstreamStatus > 0) {
      reason = "[" + std::to_string(c.upstreamStatus) + "] " + reason;
    }
    std::printf("%-36s  %-20s  %-8s  %-20s  %-14s  %s\n", c.accountId.c_str(),
                n == names.end() ? "(removed)" : n->second.c_str(),
                c.scope.empty() ? "all" : c.scope.c_str(), isoTime(c.untilMs).c_str(),
                c.errorClass.empty() ? "-" : c.errorClass.c_str(), reason.c_str());
  }
  return 0;
}

int cmdAccounts(Services& s, const Args& a) {
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "";
  auto flag = [&](const char* n) -> std::string {
    auto it = a.flags.find(n);
    return it == a.flags.end() ? std::string() : it->second;
  };
  if (verb == "add") {
    if (flag("type").empty() || flag("name").empty()) {
      return fail(invalidArgument("accounts add needs --type TYPE and --name NAME (types: " +
                                  joinList(AccountService::knownTypes(), "") + ")"));
    }
    AccountChanges c;
    Status st = readAccountFlags(a, *s.clock, /*adding=*/true, c);
    if (!st) {
      return fail(st);
    }
    return addAccount(s, newAccountOptions(flag("type"), c), c);
  }
  if (verb == "cooldowns") {
    return cmdCooldowns(s);
  }
  if (verb == "oauth-url") {
    return cmdOAuthUrl(s, a);
  }
  if (verb == "oauth-exchange") {
    return cmdOAuthExchange(s, a);
  }
  if (verb == "list") {
    auto all = s.accounts->list();
    if (!all) {
      return fail(all.status());
    }
    std::printf("%-36s  %-20s  %-16s  %-8s  %-8s  %-16s  %s\n", "ID", "NAME", "TYPE", "PRIORITY",
                "STATUS", "SECRET", "BASE URL");
    for (const auto& r : *all) {
      auto masked = s.accounts->maskedSecret(r);
      std::printf("%-36s  %-20s  %-16s  %-8lld  %-8s  %-16s  %s\n", r.id.c_str(), r.name.c_str(),
                  r.type.c_str(), static_cast<long long>(r.priority), r.status.c_str(),
                  masked ? masked->c_str() : "(unreadable)", r.baseUrl.c_str());
    }
    return 0;
  }
  static const std::vector<std::string> idVerbs = {"show",   "update", "enable", "disable",
                                                   "remove", "reset",  "test"};
  if (std::find(idVerbs.begin(), idVerbs.end(), verb) != idVerbs.end()) {
    if (a.positional.size() < 3) {
      return fail(invalidArgument("accounts " + verb + " needs an account ID"));
    }
    const std::string& id = a.positional[2];
    if (verb == "show") {
      auto r = s.accounts->get(id);
      if (!r) {
        return fail(r.status());
      }
      printAccount(*s.accounts, *r);
      return 0;
    }
    if (verb == "test") {
      return cmdAccountTest(s, id, a);
    }
    if (verb == "reset") {
      auto r = s.accounts->get(id);
      if (!r) {
        return fail(r.status());
      }
      Status st = s.store->sched().clearCooldown(id, std::nullopt);
      if (!st) {
        return fail(st);
      }
      auto dropped = s.store->sched().deleteStickyForAccount(id);
      if (!dropped) {
        return fail(dropped.status());
      }
      st = s.accounts->setStatus(id, "active", "");
      if (!st) {
        return fail(st);
      }
      std::printf(
          "account %s reset: cooldowns cleared, %lld sticky session(s) dropped, status "
          "active (was %s)\n",
          id.c_str(), static_cast<long long>(*dropped), r->status.c_str());
      return 0;
    }
    if (verb == "update") {
      AccountChanges c;
      Status st = readAccountFlags(a, *s.clock, /*adding=*/false, c);
      if (!st) {
        return fail(st);
      }
      auto r = s.accounts->update(id, c);
      if (!r) {
        return fail(r.status());
      }
      printAccount(*s.accounts, *r);
      return 0;
    }
    Status st = verb == "remove"   ? s.accounts->remove(id)
                : verb == "enable" ? s.accounts->enable(id)
                                   : s.accounts->disable(id, flag("reason"));
    if (!st) {
      return fail(st);
    }
    std::printf("account %s %s\n", id.c_str(),
                verb == "remove"   ? "removed"
                : verb == "enable" ? "enabled"
                                   : "disabled");
    return 0;
  }
  return fail(invalidArgument("unknown accounts command \"" + verb +
                              "\" (add, list, show, update, enable, disable, remove, reset, "
                              "cooldowns, test, oauth-url, oauth-exchange)"));
}

int cmdPlugins(const Config& cfg) {
  MetricsRegistry metrics;
  HostServices hs;
  hs.clock = &SystemClock::instance();
  hs.metrics = &metrics;
  auto lp = loadPlugins(cfg, hs);
  if (!lp) {
    return fail(lp.status());
  }
  std::printf("plugin directory: %s\n", cfg.plugins.directory.c_str());
  for (const auto& p : lp->providers) {
    const auto& m = p->manifest();
    std::printf("%s %s (provider, ABI %u.%u, needs host minor >= %u) %s\n", m.name.c_str(),
                m.version.c_str(), m.abiMajor, m.abiMinor, m.minHostMinor, m.path.c_str());
    for (const auto& r : p->routes()) {
      std::printf("  %-6s %-40s %s%s\n", r.method.c_str(), r.path.c_str(),
                  r.kind == RG_ROUTE_LOCAL ? "local" : "relay",
                  r.permission.empty() ? "" : (" [" + r.permission + "]").c_str());
    }
  }
  for (const auto& n : lp->notifiers) {
    const auto& m = n->manifest();
    std::printf("%s %s (notifier, ABI %u.%u) %s\n", m.name.c_str(), m.version.c_str(), m.abiMajor,
                m.abiMinor, m.path.c_str());
  }
  return 0;
}

int cmdRotate(const Config& cfg, const Args& a) {
  for (const auto& kv : a.flags) {
    if (kv.first != "config" && kv.first != "new-key-file") {
      return fail(invalidArgument("unknown flag --" + kv.first + " for rotate-master-key"));
    }
  }
  RotationOptions opts;
  if (auto it = a.flags.find("new-key-file"); it != a.flags.end()) {
    opts.newKeyFile = it->second;
  }
  auto r = rotateMasterKey(cfg, opts);
  if (!r) {
    return fail(r.status());
  }
  std::printf(
      "master key rotated%s: key id %s -> %s; %d secret(s) of %d account(s) re-sealed; "
      "gateway keys keep working\n",
      r->resumed ? " (an interrupted rotation was completed)" : "", r->oldKeyId.c_str(),
      r->newKeyId.c_str(), r->counts.secrets, r->counts.accounts);
  if (r->fromConfig) {
    std::string where = cfg.sourcePath.empty() ? "your config" : cfg.sourcePath;
    std::printf(
        "\nThe master key comes from security.master_key: replace it in %s with the new "
        "key below NOW,\nbefore relaygate runs again (it is shown only this once and "
        "stored nowhere else):\n%s\n",
        where.c_str(), r->newMaster.c_str());
  } else {
    std::printf(
        "new key in %s/master.key; the previous one is kept in %s/master.key.old "
        "(mode 0600): delete it once your backups hold the new key\n",
        cfg.storage.dataDir.c_str(), cfg.storage.dataDir.c_str());
  }
  if (r->backend == "redis") {
    std::fprintf(stderr,
                 "warning: storage is redis: every relaygate instance sharing it must be "
                 "restarted with the new master key now (old-key instances can no longer "
                 "open the re-sealed secrets)\n");
  }
  return 0;
}

}  // namespace

StatusOr<int64_t> parseIso8601(const std::string& text) {
  // YYYY-MM-DD[THH:MM[:SS][.fff]][Z|+HH:MM|-HH:MM]
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  size_t pos = 0;
  auto num = [&](int digits, int* out) -> bool {
    if (pos + static_cast<size_t>(digits) > text.size()) {
      return false;
    }
    int v = 0;
    for (int i = 0; i < digits; ++i) {
      char c = text[pos + static_cast<size_t>(i)];
      if (c < '0' || c > '9') {
        return false;
      }
      v = v * 10 + (c - '0');
    }
    pos += static_cast<size_t>(digits);
    *out = v;
    return true;
  };
  auto lit = [&](char c) -> bool {
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  };
  if (!num(4, &y) || !lit('-') || !num(2, &mo) || !lit('-') || !num(2, &d)) {
    return invalidArgument("expected YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM], got \"" + text + "\"");
  }
  int64_t offsetSec = 0;
  if (lit('T') || lit(' ')) {
    if (!num(2, &h) || !lit(':') || !num(2, &mi)) {
      return invalidArgument("bad time in \"" + text + "\"");
    }
    if (lit(':') && !num(2, &se)) {
      return invalidArgument("bad seconds in \"" + text + "\"");
    }
    if (lit('.')) {
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        ++pos;
      }
    }
    if (!lit('Z')) {
      bool plus = pos < text.size() && text[pos] == '+';
      if (lit('+') || lit('-')) {
        int oh = 0, om = 0;
        if (!num(2, &oh) || !lit(':') || !num(2, &om)) {
          return invalidArgument("bad zone offset in \"" + text + "\"");
        }
        offsetSec = (plus ? 1 : -1) * (oh * 3600 + om * 60);
      }
    }
  }
  if (pos != text.size() || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
    return invalidArgument("not a valid ISO-8601 time: \"" + text + "\"");
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offsetSec;
  return secs * 1000;
}

int runCli(int argc, char** argv) {
  auto args = parseArgs(argc, argv);
  if (!args) {
    std::fprintf(stderr, "error: %s\n%s", args.status().message().c_str(), kUsage);
    return 2;
  }
  if (args->positional.empty() || args->flags.count("help") != 0) {
    std::fputs(kUsage,
               args->positional.empty() && args->flags.count("help") == 0 ? stderr : stdout);
    return args->positional.empty() && args->flags.count("help") == 0 ? 2 : 0;
  }
  const std::string cmd = args->positional[0];
  if (cmd == "version") {
    std::printf("relaygate %s (plugin ABI %d.%d)\n", RG_VERSION, RG_ABI_MAJOR, RG_ABI_MINOR);
    return 0;
  }
  std::string cfgPath;
  if (args->flags.count("config") != 0) {
    cfgPath = args->flags["config"];
  } else if (const char* env = std::getenv("RELAYGATE_CONFIG"); env != nullptr && *env) {
    cfgPath = env;
  } else {
    cfgPath = "config/relaygate.example.yaml";
  }
  auto cfg = loadConfigFile(cfgPath);
  if (!cfg) {
    std::fprintf(stderr, "error: %s: %s\n", cfgPath.c_str(), cfg.status().message().c_str());
    return 1;
  }
  LoggingConfig lc = cfg->logging;
  if (cmd != "serve") {
    lc.level = "warn";  // CLI verbs print results, not logs
  }
  Status ls = setupLogging(lc);
  if (!ls) {
    std::fprintf(stderr, "error: %s\n", ls.message().c_str());
    return 1;
  }
  if (cmd == "serve") {
    return runServe(*cfg);
  }
  if (cmd == "check-config") {
    std::fputs(renderConfigMasked(*cfg).c_str(), stdout);
    std::printf("# config OK: %s\n", cfgPath.c_str());
    return 0;
  }
  if (cmd == "plugins") {
    if (args->positional.size() < 2 || args->positional[1] != "list") {
      return fail(invalidArgument("usage: relaygate plugins list"));
    }
    return cmdPlugins(*cfg);
  }
  if (cmd == "rotate-master-key") {
    return cmdRotate(*cfg, *args);
  }
  if (cmd == "usage") {
    return runUsageCommand(*cfg, args->positional, args->flags);
  }
  if (cmd == "keys" || cmd == "accounts") {
    auto svc = openServices(*cfg);
    if (!svc) {
      return fail(svc.status());
    }
    return cmd == "keys" ? cmdKeys(**svc, *args) : cmdAccounts(**svc, *args);
  }
  std::fprintf(stderr, "error: unknown command \"%s\"\n%s", cmd.c_str(), kUsage);
  return 2;
}

}  // namespace rg
