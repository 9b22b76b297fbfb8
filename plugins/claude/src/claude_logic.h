#pragma once
// The Claude plugin's pure logic: everything that can be decided without the host (header
// allow-list, URLs, auth header, request parsing, session-key source, usage extraction from SSE
// events and JSON bodies, error classification, LOCAL route bodies). The ABI glue in
// claude_plugin.cpp only moves data between these functions and the host.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rg::claude {

// ---- upstream request ---------------------------------------------------------------------------

// True for client headers that may be forwarded upstream (case-insensitive allow-list, §6.1).
// Credentials, hop-by-hop and encoding headers are never on it.
bool isForwardedHeader(std::string_view name);

// base_url + "/v1/messages" (or ".../count_tokens") + "?" + query when the query is non-empty.
// A trailing '/' on base_url is tolerated.
std::string buildUpstreamUrl(std::string_view baseUrl, bool countTokens, std::string_view query);

// The upstream auth header for an account secret: x-api-key for "sk-ant-" API keys, else
// "authorization: Bearer <secret>" (access tokens and other Anthropic-compatible upstreams).
std::pair<std::string, std::string> authHeader(std::string_view secret);

// Account types the relay routes accept.
inline constexpr std::string_view kOfficialType = "claude-official";  // OAuth access token
inline constexpr std::string_view kConsoleType = "claude-console";    // API key (or relay key)
// The beta flag the Messages API requires for OAuth access tokens.
inline constexpr std::string_view kOAuthBeta = "oauth-2025-04-20";

// The upstream auth header for an account: claude-official always sends
// "authorization: Bearer <access token>" (never x-api-key); other types follow authHeader().
std::pair<std::string, std::string> authHeaderFor(std::string_view accountType,
                                                  std::string_view secret);

// The anthropic-beta value for an OAuth request: every comma-separated flag of the client's
// anthropic-beta header values in order, trimmed, empty ones and repeats dropped, then `required`
// appended when it is not among them.
std::string mergeBetas(const std::vector<std::string_view>& clientValues,
                       std::string_view required);

// Model mapping without re-serialising the body: replaces the value of every top-level "model"
// member whose value is a string different from `newModel` with the JSON string of `newModel`,
// so every other byte stays as the client sent it. Returns false (and leaves *out alone) when there
// is nothing to replace or the body is not a JSON object.
bool rewriteTopLevelModel(std::string_view body, std::string_view newModel, std::string* out);

// ---- request parsing ----------------------------------------------------------------------------

// Where the sticky-session key comes from (§4.2). `raw` = use `value` as is (a session id the
// client sent); otherwise `value` is text to hash (sha256 hex, first 32 chars). Empty = none.
struct SessionSource {
  bool raw = false;
  std::string value;
};

// The input-token estimate the host reserves against limits before the upstream call (ABI minor 2,
// rg_request_meta.input_tokens_estimate). Deterministic and cheap: one walk over the already
// parsed body, never a second parse. Under `system`, `messages` and `tools` it counts the UTF-8
// characters of every string value and member name; a media block (type "image", or any block
// whose `source.type` is "base64", "url" or "file", e.g. a PDF document) counts a fixed
// kMediaBlockTokens instead of its bytes. Estimate = ceil(characters / kCharsPerToken) +
// media blocks * kMediaBlockTokens. The same convention as rg::sdk::tokensForChars /
// rg::sdk::kMediaBlockTokens (checked in claude_plugin.cpp).
inline constexpr uint64_t kCharsPerToken = 4;
inline constexpr uint64_t kMediaBlockTokens = 1600;

struct PromptSize {
  uint64_t chars = 0;
  uint64_t mediaBlocks = 0;
  uint64_t tokens() const {
    return (chars + kCharsPerToken - 1) / kCharsPerToken + mediaBlocks * kMediaBlockTokens;
  }
};

struct ParsedRequest {
  bool validJson = false;
  std::string model;
  bool stream = false;
  SessionSource session;
  // "max_tokens" as a positive integer; 0 = absent or not a positive number.
  uint64_t maxTokens = 0;
  PromptSize prompt;  // see kMediaBlockTokens
};

ParsedRequest parseRequestBody(std::string_view body);

// Lower-case hex of the first `bytes` bytes of a digest.
std::string hexPrefix(const uint8_t* digest, size_t bytes);

// "opus" / "sonnet" / "haiku" / "fable" when the model id names one, else "". Static strings.
const char* modelFamily(std::string_view model);

// ---- usage --------------------------------------------------------------------------------------

struct Usage {
  uint64_t input = 0;
  uint64_t output = 0;
  uint64_t cache5m = 0;
  uint64_t cache1h = 0;
  uint64_t cacheRead = 0;
  std::string model;
  bool operator==(const Usage& o) const {
    return input == o.input && output == o.output && cache5m == o.cache5m && cache1h == o.cache1h &&
           cacheRead == o.cacheRead && model == o.model;
  }
};

// Usage of a streamed response, fed one SSE event at a time (§6.3). Several message_start /
// message_delta pairs in one stream are summed. Until a message's message_delta arrives its output
// is estimated as ceil(characters of text/thinking/partial_json deltas / 4) (at least what
// message_start said), so a stream cut early still books a plausible output count; a real
// message_delta replaces the estimate.
class SseUsageTracker {
 public:
  // Returns true when the totals changed in a way worth reporting.
  bool onEvent(std::string_view event, std::string_view data);
  Usage totals() const;
  bool seenAny() const { return seenStart_ || seenDelta_; }

 private:
  struct Message {
    Usage usage;
    uint64_t startOutput = 0;
    uint64_t deltaChars = 0;
    bool realOutput = false;
  };
  Usage done_;  // completed messages
  Message cur_;
  bool inMessage_ = false;
  bool seenStart_ = false;
  bool seenDelta_ = false;
};

// Usage from a non-streamed Messages response body; false when it has no "usage" object.
bool parseJsonUsage(std::string_view body, Usage* out);

// ---- errors -------------------------------------------------------------------------------------

enum class ErrorClass {
  kNone,
  kClient,
  kContextTooLong,
  kRateLimited,
  kOverloaded,
  kTransient,
  kAuth,
  kQuotaExhausted,
  kBlocked
};

struct ErrorVerdict {
  ErrorClass cls = ErrorClass::kNone;
  uint64_t retryAfterMs = 0;
  uint64_t untilUnixMs = 0;
  const char* scope = "";   // static
  const char* reason = "";  // static
};

using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;

// §4.4 for claude-official and claude-console accounts. `requestModel` is the model the client
// asked for (before any account mapping); may be empty (scope is then "", the whole account).
ErrorVerdict classifyError(uint32_t status, const HeaderList& headers, std::string_view body,
                           std::string_view requestModel, uint64_t nowUnixMs);

// Retry-After as seconds or an HTTP date, in ms from now; 0 when absent or unparsable.
uint64_t parseRetryAfterMs(std::string_view value, uint64_t nowUnixMs);

// ---- LOCAL routes -------------------------------------------------------------------------------

struct ModelEntry {
  std::string id;
  std::string displayName;
};

std::vector<ModelEntry> defaultModels();
// Plugin config: {"models": ["id", {"id":..,"display_name":..}, ...], "anthropic_version": "..."}.
// Returns false with *error for malformed config.
struct Config {
  std::vector<ModelEntry> models;
  std::string anthropicVersion = "2023-06-01";
};
bool parseConfig(std::string_view json, Config* out, std::string* error);

// GET /v1/models body: OpenAI-style list fields plus the Anthropic ones (type, display_name,
// created_at, has_more, first_id, last_id).
std::string modelsJson(const std::vector<ModelEntry>& models, uint64_t nowUnixMs);
// GET /v1/me body.
std::string meJson(std::string_view keyId, std::string_view keyName, uint64_t nowUnixMs);

std::string isoTime(uint64_t unixMs);

}  // namespace rg::claude
