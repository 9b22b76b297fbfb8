#include "cli/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "app/app.h"
#include "config/config.h"
#include "observability/logging.h"

namespace rg {

namespace {

constexpr const char* kUsage = R"(usage: relaygate <command> [--config FILE] [options]

commands:
  serve                         run the gateway
  check-config                  validate the config and print it with secrets masked
  keys create --name NAME [--permissions claude,gemini,openai] [--expires-at ISO8601]
              [--concurrency N] [--rate-window-min M --rate-requests R --rate-tokens T]
              [--deny-models a,b | --allow-models a,b]
                                create a gateway key; the key is printed once, alone on the
                                last line of stdout
  keys list | keys show ID | keys disable ID | keys enable ID | keys delete ID
  accounts add --type TYPE --name NAME [type flags] [--priority 1..100] [--concurrency N]
               [--models a,b | --model-map a=b,c=d] [--proxy URL [--proxy-password P]]
               [--groups g1,g2] [--sharing shared|dedicated] [--expires-at ISO8601]
               [--schedulable yes|no]
      types and their flags (required first):
        claude-official   --access-token [--refresh-token --base-url]
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
  plugins list                  loaded plugins with name, version, ABI version and routes
  version

--config defaults to $RELAYGATE_CONFIG, else config/relaygate.example.yaml.
)";

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
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
      } else if (name == "help") {
        value = "1";
      } else {
        if (i + 1 >= argc) {
          return invalidArgument("--" + name + " needs a value");
        }
        value = argv[++i];
      }
      a.flags[name] = value;
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
  if (ms <= 0) {
    return "-";
  }
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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
    std::printf("rate window:  %lld min, %lld requests, %lld tokens (0 = no cap)\n",
                static_cast<long long>(k.rateWindowMinutes),
                static_cast<long long>(k.rateRequests), static_cast<long long>(k.rateTokens));
  } else {
    std::printf("rate window:  none\n");
  }
  const char* mode = k.modelMode == ModelFilterMode::kAllow  ? "allow "
                     : k.modelMode == ModelFilterMode::kDeny ? "deny "
                                                             : "";
  std::printf("models:       %s%s\n", mode, joinList(k.models, "all").c_str());
}

int fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.message().c_str());
  return 1;
}

int cmdKeys(Services& s, const Args& a) {
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "";
  auto flag = [&](const char* n) -> std::string {
    auto it = a.flags.find(n);
    return it == a.flags.end() ? std::string() : it->second;
  };
  if (verb == "create") {
    NewKeyOptions o;
    o.name = flag("name");
    if (o.name.empty()) {
      return fail(invalidArgument("keys create needs --name NAME"));
    }
    o.permissions = splitList(flag("permissions"));
    if (!flag("expires-at").empty()) {
      auto t = parseIso8601(flag("expires-at"));
      if (!t) {
        return fail(invalidArgument("--expires-at: " + t.status().message()));
      }
      if (*t <= s.clock->nowUnixMs()) {
        return fail(invalidArgument("--expires-at is in the past"));
      }
      o.expiresAtMs = *t;
    }
    struct {
      const char* name;
      int64_t* dest;
    } ints[] = {{"concurrency", &o.concurrencyLimit},
                {"rate-window-min", &o.rateWindowMinutes},
                {"rate-requests", &o.rateRequests},
                {"rate-tokens", &o.rateTokens}};
    for (auto& f : ints) {
      if (!flag(f.name).empty()) {
        auto v = parseInt(f.name, flag(f.name));
        if (!v) {
          return fail(v.status());
        }
        *f.dest = *v;
      }
    }
    if (!flag("deny-models").empty() && !flag("allow-models").empty()) {
      return fail(invalidArgument("use either --deny-models or --allow-models, not both"));
    }
    if (!flag("deny-models").empty()) {
      o.modelMode = ModelFilterMode::kDeny;
      o.models = splitList(flag("deny-models"));
    } else if (!flag("allow-models").empty()) {
      o.modelMode = ModelFilterMode::kAllow;
      o.models = splitList(flag("allow-models"));
    }
    auto created = s.keys->create(o);
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
    std::printf("%-36s  %-24s  %-8s  %-20s  %s\n", "ID", "NAME", "ENABLED", "EXPIRES",
                "PERMISSIONS");
    for (const auto& k : *keys) {
      std::printf("%-36s  %-24s  %-8s  %-20s  %s\n", k.id.c_str(), k.name.c_str(),
                  k.enabled ? "yes" : "no",
                  k.expiresAtMs > 0 ? isoTime(k.expiresAtMs).c_str() : "never",
                  joinList(k.permissions, "all").c_str());
    }
    return 0;
  }
  const std::string id = a.positional.size() > 2 ? a.positional[2] : "";
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
                verb == "delete" ? "deleted" : verb == "enable" ? "enabled" : "disabled");
    return 0;
  }
  return fail(invalidArgument("unknown keys command \"" + verb +
                              "\" (create, list, show, disable, enable, delete)"));
}

// Flags that carry type-specific fields and credentials, passed to the account service as is.
const std::vector<std::string>& accountFieldFlags() {
  static const std::vector<std::string> flags = {
      "base-url",      "endpoint",          "api-key",           "access-token",
      "refresh-token", "region",            "aws-access-key-id", "aws-secret-access-key",
      "aws-session-token", "bearer-token",  "project-id",        "chatgpt-account-id",
      "deployment",    "api-version",       "proxy-password"};
  return flags;
}

// Reads the common and type-specific account flags into `c`; rejects flags no verb knows so a
// typo is not silently ignored.
Status readAccountFlags(const Args& a, const Clock& clock, bool adding, AccountChanges& c) {
  static const std::vector<std::string> common = {
      "config", "type", "name", "priority", "concurrency", "models", "model-map", "proxy",
      "groups", "sharing", "expires-at", "schedulable"};
  const auto& fieldFlags = accountFieldFlags();
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
    if (*v != "shared" && *v != "dedicated") {
      return invalidArgument("--sharing: expected shared or dedicated, got \"" + *v + "\"");
    }
    c.dedicated = *v == "dedicated";
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
              r.subscriptionExpiresAtMs > 0 ? isoTime(r.subscriptionExpiresAtMs).c_str()
                                            : "never");
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
    NewAccountOptions o;
    o.type = flag("type");
    o.name = *c.name;
    o.priority = c.priority.value_or(o.priority);
    o.fields = c.fields;
    o.concurrencyLimit = c.concurrencyLimit.value_or(0);
    o.modelMapping = c.modelMapping.value_or(std::map<std::string, std::string>());
    o.proxyUrl = c.proxyUrl.value_or("");
    o.groups = c.groups.value_or(std::vector<std::string>());
    o.dedicated = c.dedicated.value_or(false);
    o.subscriptionExpiresAtMs = c.subscriptionExpiresAtMs.value_or(0);
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
    std::printf("account %s added (%s, %s, priority %lld)\n%s\n", r->name.c_str(),
                r->type.c_str(), r->baseUrl.c_str(), static_cast<long long>(r->priority),
                r->id.c_str());
    return 0;
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
  static const std::vector<std::string> idVerbs = {"show", "update", "enable", "disable",
                                                   "remove"};
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
                verb == "remove" ? "removed" : verb == "enable" ? "enabled" : "disabled");
    return 0;
  }
  return fail(invalidArgument("unknown accounts command \"" + verb +
                              "\" (add, list, show, update, enable, disable, remove)"));
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

} // namespace

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
  if (pos != text.size() || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
      se > 60) {
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
    std::fputs(kUsage, args->positional.empty() && args->flags.count("help") == 0 ? stderr
                                                                                   : stdout);
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
    lc.level = "warn"; // CLI verbs print results, not logs
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

} // namespace rg
