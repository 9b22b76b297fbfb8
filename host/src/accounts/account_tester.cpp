#include "accounts/account_tester.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>

#include "crypto/crypto.h"
#include "http/error_shapes.h"
#include "oauth/claude_oauth.h"
#include "plugin/abi_views.h"
#include "plugin/host_objects.h"

namespace rg {

namespace {

constexpr const char* kDefaultClaudeModel = "claude-haiku-4-5-20251001";
constexpr size_t kMaxAnswerBytes = 1 << 20;  // a 1-token answer is tiny; stop reading past this
constexpr size_t kDetailChars = 300;

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct FoundRoute {
  ProviderPlugin* plugin = nullptr;
  const RouteSpec* route = nullptr;
};

// A RELAY POST route that accepts the account's type; for Claude a .../messages route is
// preferred (count_tokens would not exercise generation).
FoundRoute findRoute(const std::vector<ProviderPlugin*>& providers, const AccountRecord& rec,
                     const std::string& provider) {
  FoundRoute best;
  for (ProviderPlugin* p : providers) {
    if (p == nullptr) {
      continue;
    }
    for (const auto& r : p->routes()) {
      if (r.kind != RG_ROUTE_RELAY || r.method != "POST" ||
          std::find(r.accountTypes.begin(), r.accountTypes.end(), rec.type) ==
              r.accountTypes.end()) {
        continue;
      }
      bool preferred = provider != "claude" || endsWith(r.path, "/messages");
      if (best.route == nullptr ||
          (preferred && !(provider != "claude" || endsWith(best.route->path, "/messages")))) {
        best = FoundRoute{p, &r};
      }
    }
  }
  return best;
}

// The upstream's error message ({"error":{"message":...}} or {"error":"..."}), else an excerpt.
std::string describeAnswer(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    auto err = doc.FindMember("error");
    if (err != doc.MemberEnd()) {
      if (err->value.IsObject()) {
        auto msg = err->value.FindMember("message");
        if (msg != err->value.MemberEnd() && msg->value.IsString()) {
          return msg->value.GetString();
        }
      } else if (err->value.IsString()) {
        return err->value.GetString();
      }
    }
  }
  std::string out = body.substr(0, kDetailChars);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) {
      c = ' ';
    }
  }
  return body.size() > kDetailChars ? out + "..." : out;
}

// An upstream may echo the credential back; it must never reach the operator's terminal.
void scrub(std::string* text, const std::string& secret) {
  if (secret.size() < 4) {
    return;
  }
  for (size_t p = text->find(secret); p != std::string::npos; p = text->find(secret, p)) {
    text->replace(p, secret.size(), "****");
  }
}

}  // namespace

StatusOr<AccountTestResult> testAccount(const AccountTesterDeps& deps, const AccountRecord& rec,
                                        const std::string& model) {
  if (deps.accounts == nullptr || deps.upstream == nullptr) {
    return internalError("account tester: accounts and upstream are required");
  }
  std::string provider = rec.provider.empty() ? AccountService::providerOf(rec.type) : rec.provider;
  FoundRoute found = findRoute(deps.providers, rec, provider);
  if (found.route == nullptr) {
    return failedPrecondition("no loaded plugin serves account type " + rec.type);
  }
  if (provider != "claude") {
    return failedPrecondition("no test request is defined for provider " + provider + " yet");
  }

  // The model: the one asked for (it must be mapped when the account maps models), else the
  // default, else the first model the account maps.
  std::string requested = model.empty() ? kDefaultClaudeModel : model;
  std::string upstreamModel = requested;
  if (!rec.modelMapping.empty()) {
    auto it = rec.modelMapping.find(requested);
    if (it != rec.modelMapping.end()) {
      upstreamModel = it->second;
    } else if (model.empty()) {
      requested = rec.modelMapping.begin()->first;
      upstreamModel = rec.modelMapping.begin()->second;
    } else {
      return invalidArgument("account " + rec.name + " does not serve model " + model +
                             " (its models: " +
                             [&] {
                               std::string s;
                               for (const auto& kv : rec.modelMapping) {
                                 s += (s.empty() ? "" : ", ") + kv.first;
                               }
                               return s;
                             }() +
                             ")");
    }
  }
  AccountTestResult res;
  res.model = upstreamModel;
  std::string body = "{\"model\":" + jsonQuote(requested) +
                     ",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}";

  std::string secret;
  if (rec.type == "claude-official" && deps.tokens != nullptr) {
    auto tok = deps.tokens->accessToken(rec);
    if (!tok) {
      return tok.status();
    }
    secret = std::move(*tok);
  } else {
    auto opened = deps.accounts->openPrimaryCached(rec);
    if (!opened) {
      return opened.status();
    }
    secret = std::move(*opened);
  }
  CallOptions opts;
  opts.connectTimeoutMs = std::min(deps.timeoutMs, 10000);
  opts.ioTimeoutMs = deps.timeoutMs;
  opts.proxyUrl = rec.proxyUrl;
  if (!rec.proxyUrl.empty() && rec.secretsSealed.count("proxy_password") != 0) {
    auto pw = deps.accounts->openSecret(rec, "proxy_password");
    if (!pw) {
      return pw.status();
    }
    opts.proxyPassword = std::move(*pw);
  }

  // The request as the gateway would hand it to the plugin.
  std::string requestId = "account-test-" + crypto::uuidV4();
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers = {{"content-type", "application/json"},
                                                              {"anthropic-version", "2023-06-01"}};
  std::vector<rg_header> hdrs = abiHeaders(headers);
  rg_request rq = abiRequest(found.route->routeId, found.route->method, found.route->path, query,
                             hdrs, body, requestId);
  rg_host_stream hs;
  hs.requestId = requestId;
  ProviderPlugin& plugin = *found.plugin;
  rg_request_meta meta{};
  meta.struct_size = sizeof meta;
  Status ps = plugin.parseRequest(&hs, rq, &meta);
  if (!ps) {
    plugin.streamDone(&hs);
    return ps;
  }
  std::string mapped = upstreamModel == requested ? std::string() : upstreamModel;
  rg_account ra = abiAccount(rec, secret, mapped);
  rg_host_sink up;
  Status ts = plugin.transformRequest(&hs, rq, ra, &up);
  plugin.streamDone(&hs);
  if (!ts) {
    return ts;
  }
  if (!up.started || up.url.empty()) {
    return internalError("plugin " + plugin.manifest().name + " built no upstream request");
  }
  UpstreamRequest ureq;
  ureq.method = up.method.empty() ? "POST" : up.method;
  ureq.url = std::move(up.url);
  ureq.headers = std::move(up.headers);
  ureq.body = std::move(up.body);

  auto started = std::chrono::steady_clock::now();
  auto elapsedMs = [&] {
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count());
  };
  auto call = deps.upstream->start(ureq, opts);
  std::fill(ureq.headers.begin(), ureq.headers.end(), std::make_pair(std::string(), std::string()));
  if (!call) {
    res.latencyMs = elapsedMs();
    res.detail = "upstream unreachable: " + call.status().message();
    scrub(&res.detail, secret);
    return res;
  }
  UpstreamResponseHead head;
  Status hst = (*call)->readHead(&head);
  std::string answer;
  Status rst = hst;
  while (rst && answer.size() < kMaxAnswerBytes) {
    auto n = (*call)->readSome(&answer, kMaxAnswerBytes - answer.size());
    if (!n) {
      rst = n.status();
    } else if (*n == 0) {
      break;
    }
  }
  res.latencyMs = elapsedMs();
  if (!hst) {
    res.detail = "upstream failed before responding: " + hst.message();
  } else {
    res.status = head.status;
    res.ok = head.status >= 200 && head.status < 300 && rst;
    res.detail = describeAnswer(answer);
    if (!rst) {
      res.detail = "answer cut short: " + rst.message();
    }
  }
  if (!(*call)->bodyComplete()) {
    (*call)->abort();
  }
  scrub(&res.detail, secret);
  std::fill(secret.begin(), secret.end(), '\0');
  return res;
}

}  // namespace rg
