#include "fakes/fake_oauth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/URI.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <sstream>

namespace rgtest {

namespace {

std::string randomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

// base64url(SHA-256(verifier)) without padding: the S256 code challenge (RFC 7636).
std::string s256(const std::string& verifier) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, digest, SHA256_DIGEST_LENGTH);
  std::string out(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
  for (char& c : out) {
    if (c == '+') {
      c = '-';
    } else if (c == '/') {
      c = '_';
    }
  }
  while (!out.empty() && out.back() == '=') {
    out.pop_back();
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string toJson(const Poco::JSON::Object& obj) {
  std::ostringstream os;
  obj.stringify(os);
  return os.str();
}

std::string str(const Poco::JSON::Object::Ptr& obj, const std::string& name) {
  if (!obj->has(name) || obj->isNull(name)) {
    return "";
  }
  Poco::Dynamic::Var v = obj->get(name);
  return v.isString() ? v.extract<std::string>() : std::string();
}

}  // namespace

struct FakeOAuth::State {
  struct Authorization {
    std::string challenge;
    std::string state;
    std::string scope;
    std::string redirectUri;
  };
  struct Failure {
    int status;
    std::string error;
    std::string description;
  };

  mutable std::mutex mu;
  std::condition_variable cv;
  std::string clientId = kClientId;
  int64_t expiresIn = 28800;
  int latencyMs = 0;
  bool hold = false;
  size_t heldTotal = 0;
  bool stopping = false;
  bool omitRefresh = false;
  bool echoSecrets = false;
  std::deque<Failure> failures;
  std::map<std::string, Authorization> codes;        // unused codes
  std::map<std::string, std::string> refreshTokens;  // valid refresh token -> scope
  std::set<std::string> accessTokens;
  std::string lastState, lastChallenge, lastScope, lastAccess, lastRefresh;
  std::map<std::string, size_t> calls;
  std::vector<TokenRequest> requests;

  struct Answer {
    int status = 200;
    std::string body;
  };

  static Answer error(int status, const std::string& err, const std::string& description) {
    Poco::JSON::Object o;
    o.set("error", err);
    o.set("error_description", description);
    return {status, toJson(o)};
  }

  // Issues a fresh access token (and a refresh token unless `withRefresh` is false); mu held.
  Answer issue(const std::string& scope, int64_t lifetime, bool withRefresh) {
    Poco::JSON::Object o;
    std::string access = "sk-ant-oat01-" + randomHex(24);
    accessTokens.insert(access);
    lastAccess = access;
    lastRefresh.clear();
    o.set("token_type", "Bearer");
    o.set("access_token", access);
    o.set("expires_in", lifetime);
    if (withRefresh) {
      std::string refresh = "sk-ant-ort01-" + randomHex(24);
      refreshTokens[refresh] = scope;
      lastRefresh = refresh;
      o.set("refresh_token", refresh);
    }
    o.set("scope", scope);
    Poco::JSON::Object::Ptr org = new Poco::JSON::Object;
    org->set("uuid", "4b1d0e8a-0000-4000-8000-00000000f0e1");
    org->set("name", "Fake Org");
    o.set("organization", org);
    Poco::JSON::Object::Ptr account = new Poco::JSON::Object;
    account->set("uuid", "a5c0f7d2-0000-4000-8000-0000000000aa");
    account->set("email_address", "user@example.com");
    o.set("account", account);
    return {200, toJson(o)};
  }

  Answer handle(const std::string& contentType, const std::string& body,
                std::map<std::string, std::string> headers) {
    Poco::JSON::Object::Ptr req;
    try {
      Poco::JSON::Parser parser;
      req = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception&) {
    } catch (const std::exception&) {
    }
    std::unique_lock<std::mutex> lock(mu);
    TokenRequest rec;
    rec.body = body;
    rec.headers = std::move(headers);
    rec.grantType = req ? str(req, "grant_type") : "";
    requests.push_back(rec);
    ++calls[rec.grantType];
    ++heldTotal;  // counted as arrived; holds below
    cv.notify_all();
    if (latencyMs > 0) {
      cv.wait_for(lock, std::chrono::milliseconds(latencyMs), [&] { return stopping; });
    }
    cv.wait(lock, [&] { return !hold || stopping; });
    if (contentType.find("application/json") == std::string::npos || !req) {
      return error(400, "invalid_request", "Request body must be JSON");
    }
    if (!failures.empty()) {
      Failure f = failures.front();
      failures.pop_front();
      std::string description = f.description;
      if (echoSecrets) {
        description += " (code=" + str(req, "code") +
                       " refresh_token=" + str(req, "refresh_token") +
                       " verifier=" + str(req, "code_verifier") + ")";
      }
      return error(f.status, f.error, description);
    }
    if (str(req, "client_id") != clientId) {
      return error(400, "invalid_client", "Client authentication failed");
    }
    if (rec.grantType == "authorization_code") {
      auto it = codes.find(str(req, "code"));
      if (it == codes.end()) {
        return error(400, "invalid_grant", "Invalid 'code' in request.");
      }
      Authorization auth = it->second;
      codes.erase(it);  // single use, even when the rest is wrong
      if (str(req, "redirect_uri") != auth.redirectUri) {
        return error(400, "invalid_grant", "Invalid 'redirect_uri' in request.");
      }
      if (s256(str(req, "code_verifier")) != auth.challenge) {
        return error(400, "invalid_grant", "Invalid code verifier.");
      }
      if (str(req, "state") != auth.state) {
        return error(400, "invalid_request", "Invalid 'state' in request.");
      }
      int64_t lifetime = expiresIn;
      bool setup = req->has("expires_in");
      if (setup) {
        lifetime = req->getValue<int64_t>("expires_in");
      }
      return issue(auth.scope, lifetime, !setup);
    }
    if (rec.grantType == "refresh_token") {
      std::string token = str(req, "refresh_token");
      auto it = refreshTokens.find(token);
      if (it == refreshTokens.end()) {
        return error(400, "invalid_grant", "Refresh token not found or invalid");
      }
      std::string scope = it->second;
      if (!omitRefresh) {
        refreshTokens.erase(it);  // rotation
      }
      return issue(scope, expiresIn, !omitRefresh);
    }
    return error(400, "unsupported_grant_type", "Unsupported grant type");
  }
};

namespace {

class TokenHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit TokenHandler(std::shared_ptr<FakeOAuth::State> state) : state_(std::move(state)) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    std::string body;
    {
      std::ostringstream os;
      os << req.stream().rdbuf();
      body = os.str();
    }
    FakeOAuth::State::Answer answer;
    if (req.getMethod() != "POST" || Poco::URI(req.getURI()).getPath() != "/v1/oauth/token") {
      answer = {404, "{\"error\":\"not_found\",\"error_description\":\"Not Found\"}"};
    } else {
      std::map<std::string, std::string> headers;
      for (const auto& kv : req) {
        headers[lower(kv.first)] = kv.second;
      }
      answer = state_->handle(req.getContentType(), body, std::move(headers));
    }
    resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status));
    resp.setContentType("application/json");
    resp.sendBuffer(answer.body.data(), answer.body.size());
  }

 private:
  std::shared_ptr<FakeOAuth::State> state_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(std::shared_ptr<FakeOAuth::State> state) : state_(std::move(state)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new TokenHandler(state_);
  }

 private:
  std::shared_ptr<FakeOAuth::State> state_;
};

}  // namespace

struct FakeOAuth::Server {
  std::unique_ptr<Poco::Net::HTTPServer> http;
};

FakeOAuth::FakeOAuth() : state_(std::make_shared<State>()), server_(std::make_unique<Server>()) {}

FakeOAuth::~FakeOAuth() {
  stop();
}

bool FakeOAuth::start() {
  try {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0), 64);
    port_ = socket.address().port();
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(16);
    params->setMaxQueued(256);
    params->setKeepAlive(true);
    server_->http = std::make_unique<Poco::Net::HTTPServer>(new Factory(state_), socket, params);
    server_->http->start();
    return true;
  } catch (const Poco::Exception&) {
    return false;
  }
}

void FakeOAuth::stop() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  if (server_->http) {
    server_->http->stopAll(true);
    server_->http.reset();
  }
}

void FakeOAuth::setClientId(const std::string& id) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->clientId = id;
}

void FakeOAuth::setExpiresIn(int64_t seconds) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->expiresIn = seconds;
}

void FakeOAuth::setLatencyMs(int ms) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->latencyMs = ms;
}

void FakeOAuth::holdRequests(bool hold) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->hold = hold;
  }
  state_->cv.notify_all();
}

void FakeOAuth::releaseHeld() {
  holdRequests(false);
}

bool FakeOAuth::waitForHeld(size_t n, int timeoutMs) {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->cv.wait_for(lock, std::chrono::milliseconds(timeoutMs),
                             [&] { return state_->heldTotal >= n; });
}

void FakeOAuth::failNext(int status, const std::string& error, const std::string& description,
                         int count) {
  std::lock_guard<std::mutex> lock(state_->mu);
  for (int i = 0; i < count; ++i) {
    state_->failures.push_back({status, error, description});
  }
}

void FakeOAuth::setOmitRefreshToken(bool omit) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->omitRefresh = omit;
}

void FakeOAuth::setEchoSecretsInErrors(bool echo) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->echoSecrets = echo;
}

std::string FakeOAuth::authorize(const std::string& url, std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why != nullptr) {
      *why = reason;
    }
    return std::string();
  };
  std::map<std::string, std::string> q;
  try {
    for (const auto& kv : Poco::URI(url).getQueryParameters()) {
      q[kv.first] = kv.second;
    }
  } catch (const Poco::Exception& e) {
    return fail("bad URL: " + e.displayText());
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  if (q["client_id"] != state_->clientId) {
    return fail("unknown client_id");
  }
  if (q["response_type"] != "code") {
    return fail("response_type must be code");
  }
  if (q["code_challenge_method"] != "S256" || q["code_challenge"].size() != 43) {
    return fail("PKCE S256 challenge required");
  }
  if (q["state"].empty() || q["redirect_uri"].empty() || q["scope"].empty()) {
    return fail("state, redirect_uri and scope are required");
  }
  std::string code = randomHex(20);
  state_->codes[code] = {q["code_challenge"], q["state"], q["scope"], q["redirect_uri"]};
  state_->lastState = q["state"];
  state_->lastChallenge = q["code_challenge"];
  state_->lastScope = q["scope"];
  return code;
}

std::string FakeOAuth::lastState() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->lastState;
}

std::string FakeOAuth::lastChallenge() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->lastChallenge;
}

std::string FakeOAuth::lastScope() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->lastScope;
}

std::string FakeOAuth::issueRefreshToken(const std::string& scope) {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::string token = "sk-ant-ort01-" + randomHex(24);
  state_->refreshTokens[token] = scope;
  return token;
}

bool FakeOAuth::refreshTokenValid(const std::string& token) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->refreshTokens.count(token) != 0;
}

bool FakeOAuth::accessTokenIssued(const std::string& token) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->accessTokens.count(token) != 0;
}

std::string FakeOAuth::lastAccessToken() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->lastAccess;
}

std::string FakeOAuth::lastRefreshToken() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->lastRefresh;
}

size_t FakeOAuth::calls(const std::string& grantType) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->calls.find(grantType);
  return it == state_->calls.end() ? 0 : it->second;
}

size_t FakeOAuth::totalCalls() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->requests.size();
}

std::vector<FakeOAuth::TokenRequest> FakeOAuth::requests() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->requests;
}

}  // namespace rgtest
