#include "oauth/claude_oauth.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "crypto/crypto.h"

namespace rg {

namespace {

constexpr size_t kMaxResponseBytes = 1 << 20;
constexpr size_t kMaxServerText = 300;
// What claude-cli sends to the token endpoint (reference §5.1).
constexpr const char* kUserAgent = "claude-cli/1.0.56 (external, cli)";

std::string urlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) {
    return "";
  }
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool hasSpaceOrControl(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

// Server text for an error message: secrets we sent are cut out (a server may echo them),
// control characters dropped, length capped.
std::string serverText(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.size() < 4) {
      continue;
    }
    size_t pos = 0;
    while ((pos = text.find(secret, pos)) != std::string::npos) {
      text.replace(pos, secret.size(), "[redacted]");
      pos += 10;
    }
  }
  std::string out;
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
      out += c;
    }
    if (out.size() >= kMaxServerText) {
      out += "...";
      break;
    }
  }
  return out;
}

std::string stringMember(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) {
    return "";
  }
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) {
    return "";
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

class JsonWriter {
 public:
  JsonWriter() : w_(sb_) { w_.StartObject(); }
  JsonWriter& str(const char* key, const std::string& v) {
    w_.Key(key);
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    return *this;
  }
  JsonWriter& num(const char* key, int64_t v) {
    w_.Key(key);
    w_.Int64(v);
    return *this;
  }
  JsonWriter& boolean(const char* key, bool v) {
    w_.Key(key);
    w_.Bool(v);
    return *this;
  }
  std::string done() {
    w_.EndObject();
    return std::string(sb_.GetString(), sb_.GetSize());
  }

 private:
  rapidjson::StringBuffer sb_;
  rapidjson::Writer<rapidjson::StringBuffer> w_;
};

struct PendingSession {
  std::string verifier;
  std::string state;
  bool setupToken = false;
  std::string proxyUrl;
  std::string proxyPasswordSealed;  // SecretBox-sealed; "" when there is none
  int64_t expiresAtMs = 0;
};

StatusOr<PendingSession> parseSession(const std::string& json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    return internalError("stored OAuth session is not valid JSON");
  }
  PendingSession s;
  s.verifier = stringMember(d, "verifier");
  s.state = stringMember(d, "state");
  s.proxyUrl = stringMember(d, "proxyUrl");
  s.proxyPasswordSealed = stringMember(d, "proxyPasswordSealed");
  auto setup = d.FindMember("setupToken");
  s.setupToken = setup != d.MemberEnd() && setup->value.IsBool() && setup->value.GetBool();
  auto exp = d.FindMember("expiresAtMs");
  if (exp != d.MemberEnd() && exp->value.IsInt64()) {
    s.expiresAtMs = exp->value.GetInt64();
  }
  if (s.verifier.empty() || s.state.empty()) {
    return internalError("stored OAuth session is incomplete");
  }
  return s;
}

// The code (and the state, when the input carries one) from what the user pasted: the bare
// code, "code#state", or the whole callback URL (its `code` and `state` query parameters).
struct PastedCode {
  std::string code;
  std::optional<std::string> state;
};

StatusOr<PastedCode> parsePasted(const std::string& raw) {
  std::string input = trim(raw);
  PastedCode out;
  size_t q = input.find('?');
  bool isUrl = input.find("://") != std::string::npos || q != std::string::npos ||
               input.rfind("code=", 0) == 0;
  if (isUrl) {
    std::string query = q == std::string::npos ? input : input.substr(q + 1);
    query = query.substr(0, query.find('#'));
    bool found = false;
    size_t pos = 0;
    while (pos <= query.size()) {
      size_t amp = query.find('&', pos);
      std::string item =
          query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
      pos = amp == std::string::npos ? query.size() + 1 : amp + 1;
      size_t eq = item.find('=');
      std::string name = item.substr(0, eq);
      std::string value = eq == std::string::npos
                              ? ""
                              : crypto::percentDecode(item.substr(eq + 1), /*plusIsSpace=*/true);
      if (name == "code" && !found) {
        found = true;
        out.code = value;
      } else if (name == "state" && !out.state) {
        out.state = value;
      }
    }
    if (!found) {
      return invalidArgument(
          "the pasted URL has no \"code\" parameter; paste the code shown "
          "after authorizing, or the whole callback URL");
    }
    // A code parameter that itself carries "#state" (the form the vendor's page shows).
    size_t hash = out.code.find('#');
    if (hash != std::string::npos) {
      if (!out.state) {
        out.state = out.code.substr(hash + 1);
      }
      out.code.resize(hash);
    }
  } else {
    size_t hash = input.find('#');
    if (hash != std::string::npos) {
      std::string state = input.substr(hash + 1);
      out.state = state.substr(0, state.find('&'));
      input.resize(hash);
    }
    out.code = input.substr(0, input.find('&'));
  }
  out.code = trim(out.code);
  if (out.state) {
    *out.state = trim(*out.state);
    if (out.state->empty()) {
      out.state.reset();
    }
  }
  if (out.code.empty()) {
    return invalidArgument("no authorization code was given");
  }
  if (hasSpaceOrControl(out.code) || out.code.size() > 4096) {
    return invalidArgument(
        "the authorization code contains spaces or control characters; "
        "paste it exactly as shown");
  }
  return out;
}

}  // namespace

ClaudeOAuth::ClaudeOAuth(ClaudeOAuthOptions opts, UpstreamClient& http, KvStore& pending,
                         const Clock& clock, const crypto::SecretBox* box)
    : opts_(std::move(opts)), http_(http), pending_(pending), clock_(clock), box_(box) {}

StatusOr<OAuthStart> ClaudeOAuth::start(bool setupToken, const std::string& proxyUrl,
                                        const std::string& proxyPassword) {
  // The pending session sits in the settings KV for sessionTtlMs: a password there is sealed
  // like every other secret at rest, never kept in plain text.
  std::string sealedPassword;
  if (!proxyPassword.empty()) {
    if (box_ == nullptr) {
      return Status(Code::kFailedPrecondition,
                    "cannot keep a proxy password for the OAuth session: no secret box");
    }
    sealedPassword = box_->seal(proxyPassword);
  }
  std::string verifier = crypto::base64UrlEncode(crypto::randomBytes(32));
  std::string challenge = crypto::base64UrlEncode(crypto::sha256(verifier));
  std::string state = crypto::base64UrlEncode(crypto::randomBytes(32));
  OAuthStart out;
  out.sessionId = crypto::uuidV4();
  out.setupToken = setupToken;
  out.expiresAtMs = clock_.nowUnixMs() + opts_.sessionTtlMs;
  std::string json = JsonWriter()
                         .str("verifier", verifier)
                         .str("state", state)
                         .boolean("setupToken", setupToken)
                         .str("proxyUrl", proxyUrl)
                         .str("proxyPasswordSealed", sealedPassword)
                         .num("expiresAtMs", out.expiresAtMs)
                         .done();
  Status s = pending_.set(sessionKey(out.sessionId), json, opts_.sessionTtlMs);
  if (!s) {
    return Status(Code::kUnavailable, "cannot store the OAuth session: " + s.message());
  }
  out.url = opts_.authorizeUrl + (opts_.authorizeUrl.find('?') == std::string::npos ? "?" : "&") +
            "code=true&client_id=" + urlEncode(opts_.clientId) +
            "&response_type=code&redirect_uri=" + urlEncode(opts_.redirectUri) +
            "&scope=" + urlEncode(setupToken ? opts_.setupScopes : opts_.scopes) +
            "&code_challenge=" + urlEncode(challenge) +
            "&code_challenge_method=S256&state=" + urlEncode(state);
  return out;
}

StatusOr<OAuthTokens> ClaudeOAuth::exchange(const std::string& sessionId,
                                            const std::string& codeOrUrl) {
  if (sessionId.empty() || sessionId.size() > 100 || hasSpaceOrControl(sessionId)) {
    return notFound("unknown OAuth session id");
  }
  auto stored = pending_.get(sessionKey(sessionId));
  if (!stored) {
    return Status(Code::kUnavailable,
                  "cannot read the OAuth session: " + stored.status().message());
  }
  if (!stored->has_value()) {
    return notFound("OAuth session " + sessionId +
                    " is unknown or has expired; start the authorization again");
  }
  auto session = parseSession(**stored);
  if (!session) {
    return session.status();
  }
  if (session->expiresAtMs > 0 && clock_.nowUnixMs() >= session->expiresAtMs) {
    (void)pending_.del(sessionKey(sessionId));
    return notFound("OAuth session " + sessionId + " has expired; start the authorization again");
  }
  auto pasted = parsePasted(codeOrUrl);
  if (!pasted) {
    return pasted.status();
  }
  std::string proxyPassword;
  if (!session->proxyPasswordSealed.empty()) {
    if (box_ == nullptr) {
      return Status(Code::kFailedPrecondition, "cannot open the proxy password of OAuth session " +
                                                   sessionId + ": no secret box");
    }
    auto opened = box_->open(session->proxyPasswordSealed);
    if (!opened) {
      // The message of open() names no secret; a changed master key is the likely cause.
      return Status(Code::kFailedPrecondition, "cannot open the proxy password of OAuth session " +
                                                   sessionId + ": " + opened.status().message() +
                                                   "; start the authorization again");
    }
    proxyPassword = std::move(*opened);
  }
  if (pasted->state && !crypto::constantTimeEquals(*pasted->state, session->state)) {
    return invalidArgument("the state in the pasted code does not match OAuth session " +
                           sessionId + " (was the code made for another authorization?)");
  }
  JsonWriter body;
  body.str("grant_type", "authorization_code")
      .str("client_id", opts_.clientId)
      .str("code", pasted->code)
      .str("redirect_uri", opts_.redirectUri)
      .str("code_verifier", session->verifier)
      .str("state", session->state);
  if (session->setupToken) {
    body.num("expires_in", opts_.setupTokenSeconds);
  }
  auto tokens = postToken(body.done(), "code exchange", session->proxyUrl, proxyPassword,
                          {pasted->code, session->verifier, session->state, proxyPassword});
  if (!tokens) {
    return tokens.status();
  }
  if (session->setupToken) {
    tokens->refreshToken.clear();  // a setup token is not refreshed (it lives a year)
    if (tokens->scopes.empty()) {
      tokens->scopes = opts_.setupScopes;
    }
  }
  (void)pending_.del(sessionKey(sessionId));  // consumed; it would expire anyway
  return tokens;
}

StatusOr<OAuthTokens> ClaudeOAuth::refresh(const std::string& refreshToken,
                                           const std::string& proxyUrl,
                                           const std::string& proxyPassword) {
  if (refreshToken.empty()) {
    return invalidArgument("no refresh token");
  }
  std::string body = JsonWriter()
                         .str("grant_type", "refresh_token")
                         .str("refresh_token", refreshToken)
                         .str("client_id", opts_.clientId)
                         .done();
  auto tokens = postToken(body, "token refresh", proxyUrl, proxyPassword, {refreshToken});
  if (tokens && tokens->refreshToken.empty()) {
    tokens->refreshToken = refreshToken;  // the server may keep the refresh token as it is
  }
  return tokens;
}

StatusOr<OAuthTokens> ClaudeOAuth::postToken(const std::string& body, const std::string& what,
                                             const std::string& proxyUrl,
                                             const std::string& proxyPassword,
                                             const std::vector<std::string>& secrets) {
  const std::string prefix = "Claude OAuth " + what + " failed: ";
  UpstreamRequest req;
  req.method = "POST";
  req.url = opts_.tokenUrl;
  req.headers = {{"Content-Type", "application/json"},
                 {"Accept", "application/json"},
                 {"User-Agent", kUserAgent},
                 {"Referer", "https://claude.ai/"},
                 {"Origin", "https://claude.ai"}};
  req.body = body;
  CallOptions co;
  co.connectTimeoutMs = std::min(opts_.timeoutMs, 10000);
  co.ioTimeoutMs = opts_.timeoutMs;
  co.proxyUrl = proxyUrl;
  co.proxyPassword = proxyPassword;
  int64_t startedMs = clock_.nowUnixMs();
  auto call = http_.start(req, co);
  if (!call) {
    return Status(Code::kUnavailable, prefix + "cannot reach " + opts_.tokenUrl + ": " +
                                          serverText(call.status().message(), secrets));
  }
  UpstreamResponseHead head;
  Status s = (*call)->readHead(&head);
  std::string text;
  while (s) {
    auto n = (*call)->readSome(&text, kMaxResponseBytes + 1 - text.size());
    if (!n) {
      s = n.status();
    } else if (*n == 0 || text.size() > kMaxResponseBytes) {
      break;
    }
  }
  if (!s) {
    return Status(Code::kUnavailable, prefix + "no answer from " + opts_.tokenUrl + ": " +
                                          serverText(s.message(), secrets));
  }
  if (text.size() > kMaxResponseBytes) {
    return Status(Code::kUnavailable, prefix + "the response is larger than 1 MiB");
  }
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  bool json = !d.HasParseError() && d.IsObject();
  if (head.status < 200 || head.status > 299) {
    std::string error;
    std::string description;
    if (json) {
      error = stringMember(d, "error");
      description = stringMember(d, "error_description");
      auto err = d.FindMember("error");
      if (error.empty() && err != d.MemberEnd() && err->value.IsObject()) {
        // Anthropic's API error shape {"type":"error","error":{"type":..,"message":..}}.
        error = stringMember(err->value, "type");
        description = stringMember(err->value, "message");
      }
    } else if (!text.empty()) {
      description = text;
    }
    std::string msg = prefix + "HTTP " + std::to_string(head.status);
    if (!error.empty()) {
      msg += " " + serverText(error, secrets);
    }
    if (!description.empty()) {
      msg += ": " + serverText(description, secrets);
    }
    bool rejected = head.status == 400 || head.status == 401 || head.status == 403;
    return Status(rejected ? Code::kPermissionDenied : Code::kUnavailable, msg);
  }
  if (!json) {
    return Status(Code::kUnavailable, prefix + "HTTP " + std::to_string(head.status) +
                                          " with a body that is not a "
                                          "JSON object");
  }
  OAuthTokens out;
  out.accessToken = stringMember(d, "access_token");
  if (out.accessToken.empty() || hasSpaceOrControl(out.accessToken)) {
    return Status(Code::kUnavailable, prefix + "the response has no usable access_token");
  }
  out.refreshToken = stringMember(d, "refresh_token");
  if (hasSpaceOrControl(out.refreshToken)) {
    return Status(Code::kUnavailable, prefix + "the response has an unusable refresh_token");
  }
  auto exp = d.FindMember("expires_in");
  if (exp != d.MemberEnd()) {
    int64_t seconds = 0;
    if (exp->value.IsInt64()) {
      seconds = exp->value.GetInt64();
    } else if (exp->value.IsNumber()) {
      seconds = static_cast<int64_t>(exp->value.GetDouble());
    }
    if (seconds > 0 && seconds < 100LL * 365 * 86400) {
      out.expiresAtMs = startedMs + seconds * 1000;
    }
  }
  out.scopes = stringMember(d, "scope");
  auto account = d.FindMember("account");
  if (account != d.MemberEnd()) {
    out.accountEmail = stringMember(account->value, "email_address");
  }
  auto org = d.FindMember("organization");
  if (org != d.MemberEnd()) {
    out.organization = stringMember(org->value, "name");
    if (out.organization.empty()) {
      out.organization = stringMember(org->value, "uuid");
    }
  }
  return out;
}

}  // namespace rg
