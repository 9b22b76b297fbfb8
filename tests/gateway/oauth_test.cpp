// Claude OAuth against a fake vendor token endpoint on loopback, with accounts in a real store:
// the authorize URL and its PKCE relation, the code exchange in every pasted form, sessions kept
// in storage, setup tokens, refresh (token rotation, kept refresh tokens), exactly one refresh
// for many concurrent callers (one process, and two gateways on one Redis), refresh failures,
// the background refresher, and that no token ever shows in a message, event or log line.
#include "oauth/claude_oauth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <Poco/URI.h>

#include "crypto/crypto.h"
#include "fakes/fake_oauth.h"
#include "fakes/redis_harness.h"
#include "fakes/support.h"
#include "fakes/test_proxy.h"

namespace rg {
namespace {

using rgtest::FakeOAuth;

std::map<std::string, std::string> queryOf(const std::string& url) {
  std::map<std::string, std::string> q;
  for (const auto& kv : Poco::URI(url).getQueryParameters()) {
    q[kv.first] = kv.second;
  }
  return q;
}

// Polls a condition (no fixed sleep decides the outcome); false when the deadline passes.
bool waitUntil(const std::function<bool()>& pred, int timeoutMs = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Captures every log line of the default logger while alive.
class LogCapture {
 public:
  LogCapture() : old_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(old_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> old_;
  std::ostringstream out_;
};

class OAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fake_.start());
    EmbeddedOptions eo;
    eo.dataDir = dir_.file("data");
    auto s = openEmbeddedStore(eo, clock_);
    ASSERT_TRUE(s) << s.status().toString();
    store_ = std::move(s.value());
    ClaudeOAuthOptions o;
    o.tokenUrl = fake_.tokenUrl();
    o.timeoutMs = 20000;
    oauth_ = std::make_unique<ClaudeOAuth>(o, http_, store_->settings(), clock_, &box_);
    accounts_ = std::make_unique<AccountService>(*store_, clock_, box_, /*cacheTtlMs=*/0);
    events_.subscribe([this](const AccountEvent& ev) {
      std::lock_guard<std::mutex> lock(evMu_);
      seen_.push_back(ev);
    });
  }

  std::unique_ptr<TokenManager> manager(TokenManagerOptions o = {}) {
    return std::make_unique<TokenManager>(*oauth_, *accounts_, store_->sched(), clock_, &events_,
                                          o);
  }

  AccountRecord addOfficial(const std::string& name, const std::string& access,
                            const std::string& refresh, int64_t expiresAtMs) {
    NewAccountOptions o;
    o.type = "claude-official";
    o.name = name;
    o.fields["access-token"] = access;
    if (!refresh.empty()) {
      o.fields["refresh-token"] = refresh;
    }
    o.fields["token-expires-at"] = std::to_string(expiresAtMs);
    auto r = accounts_->add(o);
    EXPECT_TRUE(r) << r.status().toString();
    return r ? *r : AccountRecord{};
  }

  std::string verifierOf(const std::string& sessionId) {
    auto v = store_->settings().get(ClaudeOAuth::sessionKey(sessionId));
    if (!v || !v->has_value()) {
      return "";
    }
    rapidjson::Document d;
    d.Parse((*v)->c_str());
    return d.IsObject() && d.HasMember("verifier") ? d["verifier"].GetString() : "";
  }

  std::vector<AccountEvent> eventsOf(const std::string& type) {
    std::lock_guard<std::mutex> lock(evMu_);
    std::vector<AccountEvent> out;
    for (const auto& e : seen_) {
      if (e.type == type) {
        out.push_back(e);
      }
    }
    return out;
  }

  int64_t expiresAtOf(const std::string& id) {
    auto r = accounts_->get(id);
    EXPECT_TRUE(r);
    return r ? std::stoll(AccountService::settingsOf(*r)["tokenExpiresAt"]) : 0;
  }

  FakeOAuth fake_;
  rgtest::TempDir dir_;
  ManualClock clock_;
  crypto::SecretBox box_{std::string(32, 'k'), "test"};
  UpstreamClient http_;
  StorePtr store_;
  std::unique_ptr<ClaudeOAuth> oauth_;
  std::unique_ptr<AccountService> accounts_;
  EventBus events_;
  std::mutex evMu_;
  std::vector<AccountEvent> seen_;
};

TEST_F(OAuthTest, AuthorizeUrlCarriesEveryParameterAndAPkceChallenge) {
  auto a = oauth_->start(false);
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->url.rfind("https://claude.ai/oauth/authorize?", 0), 0u) << a->url;
  EXPECT_EQ(a->url.find(' '), std::string::npos);
  EXPECT_NE(a->url.find("redirect_uri=https%3A%2F%2Fplatform.claude.com%2Foauth%2Fcode%2Fcallback"),
            std::string::npos);
  auto q = queryOf(a->url);
  EXPECT_EQ(q["code"], "true");
  EXPECT_EQ(q["client_id"], "9d1c250a-e61b-44d9-88ed-5944d1962f5e");
  EXPECT_EQ(q["response_type"], "code");
  EXPECT_EQ(q["redirect_uri"], "https://platform.claude.com/oauth/code/callback");
  EXPECT_EQ(q["scope"],
            "org:create_api_key user:profile user:inference user:sessions:claude_code "
            "user:mcp_servers user:file_upload");
  EXPECT_EQ(q["code_challenge_method"], "S256");
  EXPECT_EQ(q["state"].size(), 43u);  // base64url of 32 bytes
  EXPECT_EQ(q["code_challenge"].size(), 43u);
  EXPECT_FALSE(a->setupToken);
  EXPECT_EQ(a->expiresAtMs, clock_.nowUnixMs() + 600000);

  // The pending session lives in storage (the CLI exchanges in another process).
  std::string verifier = verifierOf(a->sessionId);
  ASSERT_EQ(verifier.size(), 43u);
  EXPECT_EQ(crypto::base64UrlEncode(crypto::sha256(verifier)), q["code_challenge"]);
  EXPECT_NE(verifier, q["state"]);

  auto b = oauth_->start(false);
  ASSERT_TRUE(b);
  EXPECT_NE(b->sessionId, a->sessionId);
  EXPECT_NE(queryOf(b->url)["state"], q["state"]);
  EXPECT_NE(queryOf(b->url)["code_challenge"], q["code_challenge"]);
}

TEST_F(OAuthTest, ExchangesABareCodeAndConsumesTheSession) {
  auto a = oauth_->start(false);
  ASSERT_TRUE(a);
  std::string why;
  std::string code = fake_.authorize(a->url, &why);
  ASSERT_FALSE(code.empty()) << why;
  auto t = oauth_->exchange(a->sessionId, "  " + code + "\n");
  ASSERT_TRUE(t) << t.status().toString();
  EXPECT_EQ(t->accessToken, fake_.lastAccessToken());
  EXPECT_EQ(t->refreshToken, fake_.lastRefreshToken());
  EXPECT_FALSE(t->refreshToken.empty());
  EXPECT_EQ(t->expiresAtMs, clock_.nowUnixMs() + 28800 * 1000);
  EXPECT_EQ(t->scopes, fake_.lastScope());
  EXPECT_EQ(t->accountEmail, "user@example.com");
  EXPECT_EQ(t->organization, "Fake Org");

  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].grantType, "authorization_code");
  EXPECT_EQ(reqs[0].headers["user-agent"], "claude-cli/1.0.56 (external, cli)");
  EXPECT_EQ(reqs[0].headers["content-type"], "application/json");
  EXPECT_EQ(reqs[0].headers["accept"], "application/json");
  rapidjson::Document d;
  d.Parse(reqs[0].body.c_str());
  ASSERT_TRUE(d.IsObject());
  EXPECT_STREQ(d["client_id"].GetString(), FakeOAuth::kClientId);
  EXPECT_STREQ(d["redirect_uri"].GetString(), FakeOAuth::kRedirectUri);
  EXPECT_EQ(d["state"].GetString(), fake_.lastState());
  EXPECT_FALSE(d.HasMember("expires_in"));

  // Consumed: the session is gone from storage and cannot be used twice.
  EXPECT_EQ(verifierOf(a->sessionId), "");
  EXPECT_EQ(oauth_->exchange(a->sessionId, code).status().code(), Code::kNotFound);
}

TEST_F(OAuthTest, ExchangesCodeHashStateAndTheWholeCallbackUrl) {
  auto a = oauth_->start(false);
  ASSERT_TRUE(a);
  std::string code = fake_.authorize(a->url);
  auto t = oauth_->exchange(a->sessionId, code + "#" + fake_.lastState());
  ASSERT_TRUE(t) << t.status().toString();
  EXPECT_EQ(t->accessToken, fake_.lastAccessToken());

  auto b = oauth_->start(false);
  ASSERT_TRUE(b);
  code = fake_.authorize(b->url);
  std::string url = std::string(FakeOAuth::kRedirectUri) + "?code=" + code +
                    "&state=" + fake_.lastState() + "#fragment";
  t = oauth_->exchange(b->sessionId, url);
  ASSERT_TRUE(t) << t.status().toString();
  EXPECT_EQ(t->accessToken, fake_.lastAccessToken());
  EXPECT_EQ(fake_.calls("authorization_code"), 2u);
}

TEST_F(OAuthTest, RejectsAWrongStateWithoutCallingTheServer) {
  auto a = oauth_->start(false);
  ASSERT_TRUE(a);
  std::string code = fake_.authorize(a->url);
  auto t = oauth_->exchange(a->sessionId, code + "#not-the-state");
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
  EXPECT_NE(t.status().message().find("state"), std::string::npos);
  EXPECT_EQ(t.status().message().find(code), std::string::npos);
  t = oauth_->exchange(a->sessionId,
                       std::string(FakeOAuth::kRedirectUri) + "?code=" + code + "&state=other");
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(fake_.totalCalls(), 0u);
  // The session survives a bad paste.
  t = oauth_->exchange(a->sessionId, code);
  EXPECT_TRUE(t) << t.status().toString();
}

TEST_F(OAuthTest, UnknownOrExpiredSessionsAreNotFound) {
  EXPECT_EQ(oauth_->exchange("no-such-session", "abc").status().code(), Code::kNotFound);
  auto a = oauth_->start(false);
  ASSERT_TRUE(a);
  std::string code = fake_.authorize(a->url);
  clock_.advanceMs(600000 - 1);
  ASSERT_FALSE(verifierOf(a->sessionId).empty());
  clock_.advanceMs(1);
  auto t = oauth_->exchange(a->sessionId, code);
  EXPECT_EQ(t.status().code(), Code::kNotFound);
  EXPECT_NE(t.status().message().find("expired"), std::string::npos);
  EXPECT_EQ(fake_.totalCalls(), 0u);
}

TEST_F(OAuthTest, SetupTokenAsksForOneYearOfInferenceOnly) {
  auto a = oauth_->start(true);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->setupToken);
  EXPECT_EQ(queryOf(a->url)["scope"], "user:inference");
  std::string code = fake_.authorize(a->url);
  auto t = oauth_->exchange(a->sessionId, code);
  ASSERT_TRUE(t) << t.status().toString();
  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  rapidjson::Document d;
  d.Parse(reqs[0].body.c_str());
  ASSERT_TRUE(d.HasMember("expires_in"));
  EXPECT_EQ(d["expires_in"].GetInt64(), 31536000);
  EXPECT_EQ(t->refreshToken, "");
  EXPECT_EQ(t->scopes, "user:inference");
  EXPECT_EQ(t->expiresAtMs, clock_.nowUnixMs() + 31536000LL * 1000);

  // Stored as an account the way the CLI does: no refresh token, so it is never refreshed.
  AccountRecord rec = addOfficial("setup", t->accessToken, t->refreshToken, t->expiresAtMs);
  EXPECT_EQ(rec.secretsSealed.count("refresh_token"), 0u);
  auto tm = manager();
  clock_.setUnixMs(t->expiresAtMs - 1000);  // due, but nothing to refresh with
  auto tok = tm->accessToken(rec);
  ASSERT_TRUE(tok) << tok.status().toString();
  EXPECT_EQ(*tok, t->accessToken);
  clock_.setUnixMs(t->expiresAtMs);
  tok = tm->accessToken(rec);
  EXPECT_EQ(tok.status().code(), Code::kUnavailable);
  EXPECT_EQ(tok.status().message().find(t->accessToken), std::string::npos);
  EXPECT_EQ(fake_.calls("refresh_token"), 0u);
}

TEST_F(OAuthTest, ServerErrorsAreNamedWithoutAnySecret) {
  LogCapture logs;
  fake_.setEchoSecretsInErrors(true);
  auto a = oauth_->start(false);
  ASSERT_TRUE(a);
  std::string code = fake_.authorize(a->url);
  std::string verifier = verifierOf(a->sessionId);
  fake_.failNext(400, "invalid_grant", "Invalid 'code' in request.");
  auto t = oauth_->exchange(a->sessionId, code);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.status().code(), Code::kPermissionDenied);
  const std::string& m = t.status().message();
  EXPECT_NE(m.find("HTTP 400"), std::string::npos) << m;
  EXPECT_NE(m.find("invalid_grant"), std::string::npos) << m;
  EXPECT_NE(m.find("Invalid 'code' in request."), std::string::npos) << m;
  EXPECT_EQ(m.find(code), std::string::npos) << m;
  EXPECT_EQ(m.find(verifier), std::string::npos) << m;

  fake_.failNext(503, "temporarily_unavailable", "try later");
  t = oauth_->exchange(a->sessionId, code);
  EXPECT_EQ(t.status().code(), Code::kUnavailable);
  EXPECT_NE(t.status().message().find("HTTP 503"), std::string::npos);

  std::string rt = fake_.issueRefreshToken();
  fake_.failNext(400, "invalid_grant", "Refresh token not found or invalid");
  auto r = oauth_->refresh(rt);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("Refresh token not found"), std::string::npos);
  EXPECT_EQ(r.status().message().find(rt), std::string::npos) << r.status().message();

  // Nothing reachable there at all.
  ClaudeOAuthOptions o;
  o.tokenUrl = "http://127.0.0.1:1/v1/oauth/token";
  o.timeoutMs = 2000;
  ClaudeOAuth dead(o, http_, store_->settings(), clock_);
  r = dead.refresh(rt);
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message().find(rt), std::string::npos);

  std::string text = logs.text();
  for (const auto& secret : {code, verifier, rt}) {
    EXPECT_EQ(text.find(secret), std::string::npos);
  }
}

TEST_F(OAuthTest, ExchangeAndRefreshGoThroughTheProxy) {
  rgtest::TestProxy proxy(rgtest::TestProxy::Mode::kSocks5, "relay", "proxy-pass-123");
  ASSERT_TRUE(proxy.start());
  auto a = oauth_->start(false, proxy.url(), "proxy-pass-123");
  ASSERT_TRUE(a) << a.status().toString();
  auto t = oauth_->exchange(a->sessionId, fake_.authorize(a->url));
  ASSERT_TRUE(t) << t.status().toString();
  EXPECT_EQ(proxy.tunnelCount(), 1);
  ASSERT_EQ(proxy.targets().size(), 1u);
  EXPECT_EQ(proxy.targets()[0].port, fake_.port());
  EXPECT_EQ(proxy.authFailures(), 0);

  // A refresh uses the account's proxy and its sealed password.
  rgtest::TestProxy connect(rgtest::TestProxy::Mode::kHttpConnect, "acct", "acct-pass-456");
  ASSERT_TRUE(connect.start());
  NewAccountOptions o;
  o.type = "claude-official";
  o.name = "proxied";
  o.proxyUrl = connect.url();
  o.fields["proxy-password"] = "acct-pass-456";
  o.fields["access-token"] = t->accessToken;
  o.fields["refresh-token"] = t->refreshToken;
  o.fields["token-expires-at"] = std::to_string(clock_.nowUnixMs() + 1000);
  auto rec = accounts_->add(o);
  ASSERT_TRUE(rec) << rec.status().toString();
  auto tm = manager();
  auto tok = tm->accessToken(*rec);
  ASSERT_TRUE(tok) << tok.status().toString();
  EXPECT_EQ(*tok, fake_.lastAccessToken());
  EXPECT_NE(*tok, t->accessToken);
  EXPECT_EQ(proxy.tunnelCount(), 1);
  EXPECT_EQ(connect.tunnelCount(), 1);
  ASSERT_EQ(connect.targets().size(), 1u);
  EXPECT_EQ(connect.targets()[0].port, fake_.port());
  EXPECT_EQ(connect.authFailures(), 0);
  EXPECT_EQ(fake_.calls("refresh_token"), 1u);
}

TEST_F(OAuthTest, PendingSessionKeepsTheProxyPasswordSealed) {
  const std::string password = "pending-proxy-pass-7781";
  rgtest::TestProxy proxy(rgtest::TestProxy::Mode::kSocks5, "relay", password);
  ASSERT_TRUE(proxy.start());
  auto a = oauth_->start(false, proxy.url(), password);
  ASSERT_TRUE(a) << a.status().toString();
  auto raw = store_->settings().get(ClaudeOAuth::sessionKey(a->sessionId));
  ASSERT_TRUE(raw && raw->has_value());
  const std::string& stored = **raw;
  EXPECT_EQ(stored.find(password), std::string::npos) << "plaintext proxy password at rest";
  rapidjson::Document d;
  d.Parse(stored.c_str());
  ASSERT_TRUE(d.IsObject()) << stored;
  EXPECT_FALSE(d.HasMember("proxyPassword")) << stored;
  ASSERT_TRUE(d.HasMember("proxyPasswordSealed") && d["proxyPasswordSealed"].IsString());
  auto opened = box_.open(d["proxyPasswordSealed"].GetString());
  ASSERT_TRUE(opened) << opened.status().toString();
  EXPECT_EQ(*opened, password);
  // exchange() opens it again: the proxy accepts the password (and only it).
  auto t = oauth_->exchange(a->sessionId, fake_.authorize(a->url));
  ASSERT_TRUE(t) << t.status().toString();
  EXPECT_EQ(proxy.tunnelCount(), 1);
  EXPECT_EQ(proxy.authFailures(), 0);
  // Without a password nothing sealed is stored.
  auto plain = oauth_->start(false);
  ASSERT_TRUE(plain);
  auto rawPlain = store_->settings().get(ClaudeOAuth::sessionKey(plain->sessionId));
  ASSERT_TRUE(rawPlain && rawPlain->has_value());
  EXPECT_NE((**rawPlain).find("\"proxyPasswordSealed\":\"\""), std::string::npos) << **rawPlain;
}

TEST_F(OAuthTest, ProxyPasswordNeedsASecretBoxAndTheRightKey) {
  ClaudeOAuthOptions o = oauth_->options();
  ClaudeOAuth boxless(o, http_, store_->settings(), clock_);
  auto refused = boxless.start(false, "socks5://relay@127.0.0.1:1", "some-pass-1234");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(refused.status().message().find("some-pass-1234"), std::string::npos);
  ASSERT_TRUE(boxless.start(false));  // no password: nothing to seal
  // A session sealed under another key (say, the master key changed) is not exchanged.
  crypto::SecretBox other(std::string(32, 'z'), "other");
  ClaudeOAuth otherKey(o, http_, store_->settings(), clock_, &other);
  auto a = otherKey.start(false, "socks5://relay@127.0.0.1:1", "other-pass-5678");
  ASSERT_TRUE(a) << a.status().toString();
  auto t = oauth_->exchange(a->sessionId, fake_.authorize(a->url));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.status().code(), Code::kFailedPrecondition) << t.status().toString();
  EXPECT_EQ(fake_.totalCalls(), 0u);
}

TEST_F(OAuthTest, RefreshRotatesOrKeepsTheRefreshToken) {
  std::string rt = fake_.issueRefreshToken();
  auto r = oauth_->refresh(rt);
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_EQ(r->accessToken, fake_.lastAccessToken());
  EXPECT_NE(r->refreshToken, rt);
  EXPECT_EQ(r->refreshToken, fake_.lastRefreshToken());
  EXPECT_FALSE(fake_.refreshTokenValid(rt));
  auto reqs = fake_.requests();
  rapidjson::Document d;
  d.Parse(reqs.back().body.c_str());
  EXPECT_STREQ(d["grant_type"].GetString(), "refresh_token");
  EXPECT_EQ(d["refresh_token"].GetString(), rt);
  EXPECT_STREQ(d["client_id"].GetString(), FakeOAuth::kClientId);

  // The server answers without a refresh token: the old one is kept, also in the account.
  fake_.setOmitRefreshToken(true);
  std::string kept = fake_.issueRefreshToken();
  AccountRecord rec =
      addOfficial("keep", "sk-ant-oat01-old-access-token-keep", kept, clock_.nowUnixMs() + 1000);
  auto tm = manager();
  auto tok = tm->accessToken(rec);
  ASSERT_TRUE(tok) << tok.status().toString();
  EXPECT_EQ(*tok, fake_.lastAccessToken());
  auto fresh = accounts_->get(rec.id);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(*accounts_->openSecret(*fresh, "refresh_token"), kept);
  EXPECT_EQ(*accounts_->openSecret(*fresh, "access_token"), fake_.lastAccessToken());
  EXPECT_EQ(expiresAtOf(rec.id), clock_.nowUnixMs() + 28800 * 1000);
}

TEST_F(OAuthTest, FiftyConcurrentCallersCauseExactlyOneRefresh) {
  std::string rt = fake_.issueRefreshToken();
  const std::string oldAccess = "sk-ant-oat01-old-access-token-fifty";
  AccountRecord rec = addOfficial("busy", oldAccess, rt, clock_.nowUnixMs() + 30000);
  auto tm = manager();
  fake_.holdRequests(true);
  constexpr int kThreads = 50;
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++entered;
      }
      cv.notify_all();
      auto t = tm->accessToken(rec);
      got[i] = t ? *t : "error: " + t.status().toString();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return entered == kThreads; }));
  }
  EXPECT_TRUE(fake_.waitForHeld(1, 20000));
  fake_.releaseHeld();
  for (auto& t : threads) {
    t.join();
  }
  std::string fresh = fake_.lastAccessToken();
  EXPECT_NE(fresh, oldAccess);
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(got[i], fresh) << "thread " << i;
  }
  EXPECT_EQ(fake_.calls("refresh_token"), 1u);
  EXPECT_EQ(tm->refreshCount(), 1u);
  EXPECT_EQ(eventsOf("account.oauth_refreshed").size(), 1u);
  // A stale record (as the request path's snapshot may hold) still gets the new token, no refresh.
  auto again = tm->accessToken(rec);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, fresh);
  EXPECT_EQ(fake_.calls("refresh_token"), 1u);
}

TEST_F(OAuthTest, TwoGatewaysOnOneRedisRefreshOnce) {
  rgtest::RedisServer redis;
  auto openRedis = [&] {
    RedisOptions ro;
    ro.url = redis.url();
    ro.keyPrefix = "oauthtest:";
    ro.poolSize = 8;
    auto s = openRedisStore(ro, clock_);
    EXPECT_TRUE(s) << s.status().toString();
    return s ? std::move(s.value()) : nullptr;
  };
  StorePtr storeA = openRedis();
  StorePtr storeB = openRedis();
  ASSERT_TRUE(storeA && storeB);
  AccountService accA(*storeA, clock_, box_, 0);
  AccountService accB(*storeB, clock_, box_, 0);
  ClaudeOAuthOptions o;
  o.tokenUrl = fake_.tokenUrl();
  UpstreamClient httpB;
  ClaudeOAuth oauthA(o, http_, storeA->settings(), clock_);
  ClaudeOAuth oauthB(o, httpB, storeB->settings(), clock_);
  EventBus busA;
  EventBus busB;
  TokenManager tmA(oauthA, accA, storeA->sched(), clock_, &busA);
  TokenManager tmB(oauthB, accB, storeB->sched(), clock_, &busB);

  NewAccountOptions n;
  n.type = "claude-official";
  n.name = "shared";
  n.fields["access-token"] = "sk-ant-oat01-old-access-token-redis";
  n.fields["refresh-token"] = fake_.issueRefreshToken();
  n.fields["token-expires-at"] = std::to_string(clock_.nowUnixMs() + 20000);
  auto added = accA.add(n);
  ASSERT_TRUE(added) << added.status().toString();
  auto recB = accB.get(added->id);
  ASSERT_TRUE(recB);

  fake_.holdRequests(true);
  constexpr int kThreads = 50;
  std::atomic<int> entered{0};
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++entered;
      auto t = i % 2 == 0 ? tmA.accessToken(*added) : tmB.accessToken(*recB);
      got[i] = t ? *t : "error: " + t.status().toString();
    });
  }
  EXPECT_TRUE(fake_.waitForHeld(1, 20000));
  EXPECT_TRUE(waitUntil([&] { return entered.load() == kThreads; }));
  fake_.releaseHeld();
  for (auto& t : threads) {
    t.join();
  }
  std::string fresh = fake_.lastAccessToken();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(got[i], fresh) << "thread " << i;
  }
  EXPECT_EQ(fake_.calls("refresh_token"), 1u);
  EXPECT_EQ(tmA.refreshCount() + tmB.refreshCount(), 1u);
  EXPECT_EQ(busA.publishedCount() + busB.publishedCount(), 1u);
  // The lock was released.
  auto lock = storeA->sched().tryLock("oauth_refresh:" + added->id, "probe", 1000);
  ASSERT_TRUE(lock);
  EXPECT_TRUE(*lock);
}

TEST_F(OAuthTest, FailedRefreshMarksTheAccountAndKeepsTheOldTokenWhileValid) {
  LogCapture logs;
  fake_.setEchoSecretsInErrors(true);
  std::string rt = fake_.issueRefreshToken();
  const std::string oldAccess = "sk-ant-oat01-old-access-token-fail";
  int64_t expiresAt = clock_.nowUnixMs() + 30000;
  AccountRecord rec = addOfficial("failing", oldAccess, rt, expiresAt);
  auto tm = manager();

  fake_.failNext(400, "invalid_grant", "Refresh token not found or invalid");
  auto tok = tm->accessToken(rec);
  ASSERT_TRUE(tok) << tok.status().toString();
  EXPECT_EQ(*tok, oldAccess);
  auto after = accounts_->get(rec.id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, "error");
  EXPECT_NE(after->statusReason.find("HTTP 400 invalid_grant"), std::string::npos)
      << after->statusReason;
  EXPECT_EQ(after->statusReason.find(rt), std::string::npos) << after->statusReason;
  auto errs = eventsOf("account.error");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].accountId, rec.id);
  EXPECT_EQ(errs[0].accountName, "failing");
  EXPECT_EQ(errs[0].oldState, "active");
  EXPECT_EQ(errs[0].newState, "error");
  EXPECT_EQ(errs[0].reason, after->statusReason);
  EXPECT_EQ(errs[0].atMs, clock_.nowUnixMs());

  // Once the old token has expired, a failure is an error naming it.
  clock_.setUnixMs(expiresAt);
  fake_.failNext(500, "server_error", "upstream broke");
  tok = tm->accessToken(*after);
  EXPECT_EQ(tok.status().code(), Code::kUnavailable);
  EXPECT_NE(tok.status().message().find("HTTP 500"), std::string::npos) << tok.status().message();
  EXPECT_EQ(tok.status().message().find(rt), std::string::npos);
  EXPECT_EQ(tok.status().message().find(oldAccess), std::string::npos);
  EXPECT_EQ(eventsOf("account.error").size(), 2u);

  // The next successful refresh makes the account active again.
  tok = tm->accessToken(*after);
  ASSERT_TRUE(tok) << tok.status().toString();
  EXPECT_EQ(*tok, fake_.lastAccessToken());
  after = accounts_->get(rec.id);
  EXPECT_EQ(after->status, "active");
  EXPECT_EQ(after->statusReason, "");
  auto ok = eventsOf("account.oauth_refreshed");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].oldState, "error");
  EXPECT_EQ(ok[0].newState, "active");

  std::string text = logs.text();
  EXPECT_NE(text.find("invalid_grant"), std::string::npos);  // it was logged ...
  for (const auto& secret : {rt, oldAccess, *tok, fake_.lastRefreshToken()}) {
    EXPECT_EQ(text.find(secret), std::string::npos);  // ... without any secret
  }
  for (const auto& e : eventsOf("account.error")) {
    EXPECT_EQ(e.reason.find(rt), std::string::npos);
  }
}

TEST_F(OAuthTest, BackgroundRefreshesDueIdleAccountsOnly) {
  TokenManagerOptions o;
  o.refreshLeadMs = 60000;
  o.backgroundIntervalMs = 300000;
  auto tm = manager(o);
  int64_t now = clock_.nowUnixMs();
  // Due within lead + interval (6 min), though not yet within the lead alone.
  AccountRecord due =
      addOfficial("due", "sk-ant-oat01-due-access-token", fake_.issueRefreshToken(), now + 300000);
  AccountRecord idle = addOfficial("fresh", "sk-ant-oat01-fresh-access-tok",
                                   fake_.issueRefreshToken(), now + 3600000);
  AccountRecord disabled =
      addOfficial("off", "sk-ant-oat01-disabled-access", fake_.issueRefreshToken(), now + 1000);
  ASSERT_TRUE(accounts_->disable(disabled.id, "paused"));
  tm->refreshDue();
  EXPECT_EQ(fake_.calls("refresh_token"), 1u);
  EXPECT_EQ(expiresAtOf(due.id), now + 28800 * 1000);
  EXPECT_EQ(expiresAtOf(idle.id), now + 3600000);
  EXPECT_EQ(expiresAtOf(disabled.id), now + 1000);
  auto r = accounts_->get(due.id);
  EXPECT_EQ(*accounts_->openSecret(*r, "access_token"), fake_.lastAccessToken());
  // The request path then uses that token without a refresh of its own.
  auto tok = tm->accessToken(*r);
  ASSERT_TRUE(tok);
  EXPECT_EQ(*tok, fake_.lastAccessToken());
  tm->refreshDue();  // nothing left to do
  EXPECT_EQ(fake_.calls("refresh_token"), 1u);
}

TEST_F(OAuthTest, BackgroundThreadRunsAndStopsPromptly) {
  TokenManagerOptions o;
  o.backgroundIntervalMs = 20;
  auto tm = manager(o);
  AccountRecord due = addOfficial("due", "sk-ant-oat01-bg-access-token1", fake_.issueRefreshToken(),
                                  clock_.nowUnixMs() + 1000);
  tm->startBackground();
  EXPECT_TRUE(waitUntil([&] { return fake_.calls("refresh_token") >= 1; }));
  EXPECT_TRUE(waitUntil([&] { return expiresAtOf(due.id) > clock_.nowUnixMs() + 1000; }));

  TokenManagerOptions slow;
  slow.backgroundIntervalMs = 3600000;  // an hour: stop() must not wait for it
  auto tm2 = manager(slow);
  tm2->startBackground();
  auto t0 = std::chrono::steady_clock::now();
  tm2->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  tm->stop();
  EXPECT_EQ(fake_.calls("refresh_token"), 1u);
}

}  // namespace
}  // namespace rg
