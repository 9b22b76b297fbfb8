#pragma once
// A fake of Anthropic's OAuth token endpoint for tests: a real HTTP server (POCO HTTPServer) on
// 127.0.0.1:<ephemeral> serving POST /v1/oauth/token for the authorization_code and
// refresh_token grants the way the vendor does (JSON in, JSON out, errors as
// {"error":"invalid_grant","error_description":...} with status 400).
//
// Authorizations are made by authorize(url): it checks an authorize URL as the vendor's consent
// page would (client_id, response_type=code, code_challenge_method=S256, redirect_uri) and
// returns a single-use code bound to the URL's code_challenge, state, scope and redirect_uri;
// the token endpoint then checks the code_verifier against that challenge (S256).
//
// Refresh tokens rotate: a refresh returns a new refresh token and the old one stops working
// (unless setOmitRefreshToken), so two refreshes with one token fail like they would upstream.
// Every access and refresh token issued is fresh and distinct.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace rgtest {

class FakeOAuth {
 public:
  static constexpr const char* kClientId = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
  static constexpr const char* kRedirectUri = "https://platform.claude.com/oauth/code/callback";

  struct TokenRequest {
    std::string grantType;  // "" when the body was not JSON
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
  };

  FakeOAuth();
  ~FakeOAuth();  // stops
  FakeOAuth(const FakeOAuth&) = delete;
  FakeOAuth& operator=(const FakeOAuth&) = delete;

  // Binds 127.0.0.1:0 and serves. False when it cannot.
  bool start();
  void stop();
  int port() const { return port_; }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string tokenUrl() const { return baseUrl() + "/v1/oauth/token"; }

  // ---- configuration (any time) -----------------------------------------------------------
  void setClientId(const std::string& id);
  void setExpiresIn(int64_t seconds);  // lifetime of issued access tokens (default 28800)
  void setLatencyMs(int ms);           // every token request waits this long before answering
  // Holds every token request until releaseHeld() (or stop()); waitForHeld() sees them arrive.
  void holdRequests(bool hold);
  void releaseHeld();
  bool waitForHeld(size_t n, int timeoutMs);
  // The next `count` token requests fail with this status and OAuth error body.
  void failNext(int status, const std::string& error, const std::string& description,
                int count = 1);
  // Refresh answers carry no refresh_token (the client must keep its old one, which stays valid).
  void setOmitRefreshToken(bool omit);
  // Makes an extra description text for failures echo what the client sent (to check that
  // clients do not repeat secrets in their messages).
  void setEchoSecretsInErrors(bool echo);

  // ---- authorizations and tokens -----------------------------------------------------------
  // Checks an authorize URL and returns a code for it, or "" with *why set.
  std::string authorize(const std::string& url, std::string* why = nullptr);
  // The state carried by the last authorize() URL.
  std::string lastState() const;
  std::string lastChallenge() const;
  std::string lastScope() const;
  // A valid refresh token for a seeded account (as if issued earlier).
  std::string issueRefreshToken(const std::string& scope = "user:inference user:profile");
  bool refreshTokenValid(const std::string& token) const;
  bool accessTokenIssued(const std::string& token) const;
  std::string lastAccessToken() const;
  std::string lastRefreshToken() const;  // "" when the last answer carried none

  // ---- observations ------------------------------------------------------------------------
  size_t calls(const std::string& grantType) const;  // token requests received per grant
  size_t totalCalls() const;
  std::vector<TokenRequest> requests() const;

  struct State;  // shared with the request handlers

 private:
  std::shared_ptr<State> state_;
  struct Server;
  std::unique_ptr<Server> server_;
  int port_ = 0;
};

}  // namespace rgtest
