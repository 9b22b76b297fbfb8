// The Claude provider plugin: Anthropic Messages relay for claude-official (OAuth) and
// claude-console accounts, plus the
// LOCAL /v1/models and /v1/me routes Claude Code asks for. Decisions live in claude_logic.cpp;
// this file only moves data between the SDK and those functions.
#include <string>
#include <string_view>
#include <vector>

#include "claude_logic.h"
#include "relaygate/provider.hpp"

namespace rg::claude {
namespace {

namespace sdk = ::rg::sdk;

enum class RouteKind { kMessages, kCountTokens, kModels, kMe };

constexpr size_t kMaxBufferedBody = 8u << 20;  // usage of bigger JSON bodies is not parsed
// input_tokens_estimate follows the SDK's convention, so all plugins' estimates mean the same.
static_assert(kCharsPerToken == sdk::kCharsPerToken && kMediaBlockTokens == sdk::kMediaBlockTokens,
              "the Claude estimate must follow the SDK convention");
// The account types the relay routes accept (rg_route.account_types).
constexpr std::string_view kAccountTypes = "claude-official,claude-console";

struct StreamState {
  std::string requestModel;
  SseUsageTracker sse;
  std::string body;
  bool bodyTooLarge = false;
  bool bodyEnded = false;  // on_body_chunk saw end_of_stream (the usage was parsed then)
};

sdk::Usage toSdk(const Usage& u, const std::string& fallbackModel) {
  sdk::Usage out;
  out.inputTokens = u.input;
  out.outputTokens = u.output;
  out.cacheCreation5mTokens = u.cache5m;
  out.cacheCreation1hTokens = u.cache1h;
  out.cacheReadTokens = u.cacheRead;
  out.model = u.model.empty() ? fallbackModel : u.model;
  return out;
}

rg_error_class toAbi(ErrorClass c) {
  switch (c) {
    case ErrorClass::kNone:
      return RG_EC_NONE;
    case ErrorClass::kClient:
      return RG_EC_CLIENT;
    case ErrorClass::kContextTooLong:
      return RG_EC_CONTEXT_TOO_LONG;
    case ErrorClass::kRateLimited:
      return RG_EC_RATE_LIMITED;
    case ErrorClass::kOverloaded:
      return RG_EC_OVERLOADED;
    case ErrorClass::kTransient:
      return RG_EC_TRANSIENT;
    case ErrorClass::kAuth:
      return RG_EC_AUTH;
    case ErrorClass::kQuotaExhausted:
      return RG_EC_QUOTA_EXHAUSTED;
    case ErrorClass::kBlocked:
      return RG_EC_BLOCKED;
  }
  return RG_EC_TRANSIENT;
}

class ClaudeProvider : public sdk::Provider {
 public:
  ClaudeProvider(sdk::Host host, std::string_view configJson) : Provider(host) {
    std::string error;
    if (!parseConfig(configJson, &config_, &error)) {
      throw sdk::Error(RG_E_INVALID_ARG, "claude: " + error);
    }
  }

  std::vector<sdk::Route> routes() override {
    std::vector<sdk::Route> out;
    auto add = [&](const char* method, const char* path, RouteKind kind) {
      sdk::Route r;
      r.method = method;
      r.path = path;
      r.id = static_cast<uint32_t>(kinds_.size());
      kinds_.push_back(kind);
      bool local = kind == RouteKind::kModels || kind == RouteKind::kMe;
      r.kind = local ? RG_ROUTE_LOCAL : RG_ROUTE_RELAY;
      r.shape = RG_SHAPE_ANTHROPIC;
      r.permission = "claude";
      r.accountTypes = local ? "" : std::string(kAccountTypes);
      r.flags = kind == RouteKind::kCountTokens ? RG_ROUTE_SKIP_CONCURRENCY : 0u;
      out.push_back(std::move(r));
    };
    kinds_.clear();
    for (const char* p :
         {"/api/v1/messages", "/claude/v1/messages", "/v1/messages", "/api/claude/v1/messages"}) {
      add("POST", p, RouteKind::kMessages);
    }
    for (const char* p : {"/api/v1/messages/count_tokens", "/claude/v1/messages/count_tokens",
                          "/v1/messages/count_tokens"}) {
      add("POST", p, RouteKind::kCountTokens);
    }
    for (const char* p : {"/api/v1/models", "/claude/v1/models", "/v1/models"}) {
      add("GET", p, RouteKind::kModels);
    }
    for (const char* p : {"/api/v1/me", "/v1/me", "/claude/v1/me"}) {
      add("GET", p, RouteKind::kMe);
    }
    return out;
  }

  sdk::Status parseRequest(sdk::Stream& st, const sdk::Request& req,
                           sdk::RequestMeta& out) override {
    RouteKind kind = kindOf(req.routeId());
    if (kind != RouteKind::kMessages && kind != RouteKind::kCountTokens) {
      return sdk::Status::ok();
    }
    ParsedRequest p = parseRequestBody(req.body());
    if (!p.validJson) {
      return sdk::invalidArg("request body is not valid JSON");
    }
    out.model = p.model;
    out.stream = kind == RouteKind::kMessages && p.stream;
    // The worst case the host reserves before the call: count_tokens produces no output.
    out.maxOutputTokens = kind == RouteKind::kMessages ? p.maxTokens : 0;
    out.inputTokensEstimate = p.prompt.tokens();
    if (p.session.raw) {
      out.sessionKey = p.session.value;
    } else if (!p.session.value.empty()) {
      auto digest = host().sha256(p.session.value);
      out.sessionKey = hexPrefix(digest.data(), 16);
    }
    st.state<StreamState>().requestModel = p.model;
    return sdk::Status::ok();
  }

  sdk::Status transformRequest(sdk::Stream& /*st*/, const sdk::Request& req,
                               const sdk::Account& acct, sdk::UpstreamWriter& out) override {
    bool official = acct.type() == kOfficialType;
    if (!official && acct.type() != kConsoleType) {
      return sdk::unsupported("claude: account type '" + std::string(acct.type()) +
                              "' is not supported");
    }
    bool countTokens = kindOf(req.routeId()) == RouteKind::kCountTokens;
    out.start("POST", buildUpstreamUrl(acct.baseUrl(), countTokens, req.query()));
    bool hasVersion = false;
    bool hasContentType = false;
    std::vector<std::string_view> clientBetas;
    for (const rg_header& h : req.headers()) {
      std::string_view name = sdk::sv(h.name);
      if (!isForwardedHeader(name)) {
        continue;
      }
      if (official && sdk::equalsIgnoreCase(name, "anthropic-beta")) {
        clientBetas.push_back(sdk::sv(h.value));  // merged below
        continue;
      }
      hasVersion = hasVersion || sdk::equalsIgnoreCase(name, "anthropic-version");
      hasContentType = hasContentType || sdk::equalsIgnoreCase(name, "content-type");
      out.header(name, sdk::sv(h.value));
    }
    if (official) {
      // OAuth access tokens are only accepted with the oauth beta flag.
      out.header("anthropic-beta", mergeBetas(clientBetas, kOAuthBeta));
    }
    if (!hasVersion) {
      out.header("anthropic-version", config_.anthropicVersion);
    }
    if (!hasContentType) {
      out.header("content-type", "application/json");
    }
    // Compressed upstream bodies broke streams in the reference (issue #1030); ask for none.
    out.header("accept-encoding", "identity");
    auto auth = authHeaderFor(acct.type(), acct.secret());
    out.header(auth.first, auth.second);
    // Byte-for-byte, never re-serialised; an account model mapping replaces only the top-level
    // "model" value. Usage and limits stay booked under the requested name (parse_request).
    std::string mapped;
    std::string_view model = acct.upstreamModel();
    if (!model.empty() && rewriteTopLevelModel(req.body(), model, &mapped)) {
      out.body(mapped);
    } else {
      out.body(req.body());
    }
    return sdk::Status::ok();
  }

  sdk::Status onSseEvent(sdk::Stream& st, const sdk::SseEvent& ev,
                         sdk::Replacement& /*out*/) override {
    StreamState& s = st.state<StreamState>();
    if (s.sse.onEvent(ev.event(), ev.data())) {
      st.reportUsage(toSdk(s.sse.totals(), s.requestModel));
    }
    return sdk::Status::ok();  // forward the raw bytes unchanged
  }

  sdk::Status onBodyChunk(sdk::Stream& st, std::string_view chunk, bool endOfStream,
                          sdk::Replacement& /*out*/) override {
    StreamState& s = st.state<StreamState>();
    if (!s.bodyTooLarge) {
      if (s.body.size() + chunk.size() > kMaxBufferedBody) {
        s.bodyTooLarge = true;
        s.body.clear();
        s.body.shrink_to_fit();
        host().warn("response body over 8 MiB: usage not parsed");
      } else {
        s.body.append(chunk.data(), chunk.size());
      }
    }
    if (endOfStream) {
      s.bodyEnded = true;
      reportBodyUsage(st, s);
    }
    return sdk::Status::ok();
  }

  // The host may end a stream without a final call: the client left, the upstream connection
  // failed, the gateway drained. Whatever usage the upstream already sent still counts: a JSON
  // body that arrived whole (the client went away before the end marker) is parsed now, and a
  // cut SSE stream reports its totals once more (input from message_start, output estimated
  // from the content deltas seen), so the last word the host has is never 0 output.
  void onStreamDone(sdk::Stream& st) override {
    StreamState* s = st.stateIfAny<StreamState>();
    if (s == nullptr) {
      return;
    }
    if (!s->bodyEnded && !s->body.empty()) {
      reportBodyUsage(st, *s);
    }
    if (s->sse.seenAny()) {
      st.reportUsage(toSdk(s->sse.totals(), s->requestModel));
    }
  }

  sdk::ErrorInfo classifyError(sdk::Stream& st, uint32_t status, sdk::Headers headers,
                               std::string_view body) override {
    HeaderList hs;
    hs.reserve(headers.size());
    for (const rg_header& h : headers) {
      hs.emplace_back(sdk::sv(h.name), sdk::sv(h.value));
    }
    // The request's model (from parse_request) gives the family a 429 limit applies to.
    ErrorVerdict v = ::rg::claude::classifyError(
        status, hs, body, st.state<StreamState>().requestModel, host().nowUnixMs());
    sdk::ErrorInfo out;
    out.cls = toAbi(v.cls);
    out.retryAfterMs = v.retryAfterMs;
    out.untilUnixMs = v.untilUnixMs;
    out.scope = v.scope;
    out.reason = v.reason;
    return out;
  }

  sdk::Status handleLocal(sdk::Stream& /*st*/, const sdk::Request& req,
                          sdk::ResponseWriter& out) override {
    switch (kindOf(req.routeId())) {
      case RouteKind::kModels:
        out.json(200, modelsJson(config_.models, host().nowUnixMs()));
        return sdk::Status::ok();
      case RouteKind::kMe:
        out.json(200, meJson(req.keyId(), req.keyName(), host().nowUnixMs()));
        return sdk::Status::ok();
      default:
        return sdk::notFound("claude: not a local route");
    }
  }

 private:
  void reportBodyUsage(sdk::Stream& st, StreamState& s) {
    Usage u;
    if (!s.bodyTooLarge && parseJsonUsage(s.body, &u)) {
      st.reportUsage(toSdk(u, s.requestModel));
    }
    s.body.clear();
  }

  RouteKind kindOf(uint32_t routeId) const {
    return routeId < kinds_.size() ? kinds_[routeId] : RouteKind::kMessages;
  }

  Config config_;
  std::vector<RouteKind> kinds_;
};

}  // namespace
}  // namespace rg::claude

RG_DECLARE_PROVIDER("claude", "0.1.0", "Anthropic Messages API relay for Claude accounts",
                    ::rg::claude::ClaudeProvider)
