// End-to-end Claude OAuth: the real relaygate binary with claude-official accounts on a fake
// Anthropic upstream (told apart by credential) and a fake OAuth token endpoint, on both storage
// backends:
//  - 50 parallel requests with an about-to-expire token cause exactly one refresh; every request
//    goes upstream with the new token and the OAuth beta; the new expiry is stored;
//  - a refresh the server rejects marks the account as error (with the reason), publishes
//    account.error, and the request fails over to a console account;
//  - the whole onboarding over the admin API of the running gateway (start, consent, exchange
//    through a proxy whose password waits sealed in storage, account created and used);
//  - two gateways on one Redis refreshing the same account: still exactly one refresh.
// No token, key or password may show in any log line.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "fakes/fake_anthropic.h"
#include "fakes/fake_oauth.h"
#include "fakes/gateway_process.h"
#include "fakes/store_backends.h"
#include "fakes/support.h"
#include "fakes/test_proxy.h"

namespace {

using rgtest::FakeAnthropic;
using rgtest::FakeOAuth;
using rgtest::GatewayProcess;
using rgtest::HttpResult;

const std::string kBin = RG_TEST_RELAYGATE_BIN;
const std::string kPluginDir = RG_TEST_PLUGIN_DIR;
const std::string kMasterKey = "oauth-e2e-master-key-0123456789abcdef";
const std::string kOldToken = "sk-ant-oat01-OLD-ACCESS-TOKEN-0123456789abcdefgh";
const std::string kUnknownRefresh = "sk-ant-ort01-NOT-ISSUED-REFRESH-0123456789abcd";
const std::string kConsoleKey = "sk-ant-api03-CONSOLE-ACCOUNT-0123456789abcdefgh";
const std::string kProxyPassword = "0Auth-Pr0xy-Passw0rd-9d2e7b51";
const std::string kAdminToken = "rga-oauth-e2e-admin-token-0a1b2c3d4e5f6a7b";
// Generous: the machine running these tests may be busy with several builds at once.
constexpr int kDeadlineMs = 90000;

std::string body(bool stream = false) {
  static std::atomic<int> n{0};
  return R"({"model":"claude-sonnet-4-5","max_tokens":16)" +
         std::string(stream ? R"(,"stream":true)" : "") +
         R"(,"messages":[{"role":"user","content":"Hello )" + std::to_string(++n) + R"("}]})";
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  return d;
}

std::string str(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) {
    return "";
  }
  auto it = obj.FindMember(name);
  return it != obj.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

// The "tokenExpiresAt:" line of `accounts show`; 0 when absent.
int64_t shownExpiry(const std::string& out) {
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(tokenExpiresAt:\s+(\d+))"))) {
    return std::stoll(m[1].str());
  }
  return 0;
}

class OAuthE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(upstream_.start());
    ASSERT_TRUE(oauth_.start());
  }

  void TearDown() override {
    // Whatever the test did, the fake must not keep a refresh waiting (a gateway would hang).
    oauth_.holdRequests(false);
    oauth_.releaseHeld();
    std::vector<std::string> secrets = {kOldToken,  kUnknownRefresh, kConsoleKey, kProxyPassword,
                                        kMasterKey, gatewayKey_,     adminToken_};
    secrets.insert(secrets.end(), extraSecrets_.begin(), extraSecrets_.end());
    // The last tokens the OAuth server handed out (each test has at most one answer).
    secrets.push_back(oauth_.lastAccessToken());
    secrets.push_back(oauth_.lastRefreshToken());
    for (auto& gw : gws_) {
      if (gw && gw->running()) {
        rgtest::expectLeasesReleasedAndNoSecrets(*gw, secrets, nullptr, 30000, 30000);
      }
    }
    // The CLI shows a new gateway key once, by design; no other secret may appear.
    for (const std::string& out : cliOutputs_) {
      for (const std::string& secret : secrets) {
        if (secret == gatewayKey_) {
          continue;
        }
        if (secret.size() >= 8) {
          EXPECT_EQ(out.find(secret), std::string::npos) << "the CLI printed a secret";
        }
      }
    }
  }

  bool redis() const { return GetParam() == "redis"; }

  // Without generatedAdminToken the admin API uses kAdminToken; with it, the gateway makes one.
  void writeConfig(bool generatedAdminToken = false) {
    if (!generatedAdminToken) {
      adminToken_ = kAdminToken;
    }
    // The background refresher is off: the request path alone must refresh, so each test knows
    // who made the one refresh it counts.
    rgtest::GatewayYaml y = rgtest::gatewayStorageYaml(GetParam(), dir_, "oae");
    y.masterKey = kMasterKey;
    y.pluginDir = kPluginDir;
    y.workerThreads = 128;
    y.upstreamTimeoutMs = 60000;
    y.redisPoolSize = 32;
    y.extra = "oauth:\n  claude:\n    token_url: " + oauth_.tokenUrl() +
              "\n    authorize_url: " + oauth_.baseUrl() +
              "/oauth/authorize\n    refresh_interval_ms: 0\n" +
              (generatedAdminToken ? std::string() : "admin:\n  token: " + kAdminToken + "\n");
    config_ = rgtest::writeGatewayConfig(dir_.path(), y);
  }

  rgtest::CommandResult cli(std::vector<std::string> args) {
    auto r = rgtest::runCli(kBin, config_, std::move(args));
    cliOutputs_.push_back(r.out + r.err);
    return r;
  }

  std::string addedId(const rgtest::CommandResult& r) {
    EXPECT_EQ(r.exitCode, 0) << r.err;
    std::string id = r.lastLine();  // `accounts add` prints the new id alone on its last line
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f-]{36}"))) << r.out << r.err;
    return id;
  }

  // A claude-official account over the admin API of `gw`. (`accounts add` does not take
  // --token-expires-at; the admin API does.)
  std::string addOfficial(const GatewayProcess& gw, const std::string& name,
                          const std::string& access, const std::string& refresh,
                          int64_t expiresAtMs, int priority) {
    HttpResult r =
        admin(gw, "POST", "/admin/accounts",
              R"({"type":"claude-official","name":")" + name + R"(","access_token":")" + access +
                  R"(","refresh_token":")" + refresh + R"(","token_expires_at":)" +
                  std::to_string(expiresAtMs) + R"(,"base_url":")" + upstream_.baseUrl() +
                  R"(","priority":)" + std::to_string(priority) +
                  // A limit makes the scheduler take a lease per request: the
                  // relaygate_account_leases_held gauge then counts the requests that have
                  // picked the account (and so wait for its token).
                  R"(,"concurrency":500})");
    EXPECT_EQ(r.status, 201) << r.body;
    for (const std::string& secret : {access, refresh}) {
      EXPECT_EQ(r.body.find(secret), std::string::npos) << "secret in the admin answer";
    }
    auto d = parse(r.body);
    std::string id = str(d, "id");
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f-]{36}"))) << r.body;
    return id;
  }

  void createKey() {
    auto k = cli({"keys", "create", "--name", "t", "--concurrency", "500"});
    ASSERT_EQ(k.exitCode, 0) << k.err;
    gatewayKey_ = k.lastLine();
  }

  GatewayProcess* launch() {
    std::string err;
    gws_.push_back(GatewayProcess::start(kBin, config_, dir_.path(), {}, &err, kDeadlineMs));
    EXPECT_NE(gws_.back(), nullptr) << err;
    return gws_.back().get();
  }

  HttpResult post(const GatewayProcess& gw, const std::string& b) {
    return rgtest::httpRequest(gw.port(), "POST", "/api/v1/messages",
                               {{"x-api-key", gatewayKey_},
                                {"content-type", "application/json"},
                                {"anthropic-version", "2023-06-01"}},
                               b, kDeadlineMs);
  }

  long gauge(const GatewayProcess& gw, const std::string& series) {
    return rgtest::metricValue(rgtest::httpRequest(gw.port(), "GET", "/metrics", {}, "").body,
                               series);
  }

  HttpResult admin(const GatewayProcess& gw, const std::string& method, const std::string& path,
                   const std::string& json = "") {
    std::vector<std::pair<std::string, std::string>> h = {
        {"Authorization", "Bearer " + adminToken_}};
    if (!json.empty()) {
      h.emplace_back("Content-Type", "application/json");
    }
    return rgtest::httpRequest(gw.port(), method, path, h, json, kDeadlineMs);
  }

  // Sends `perGateway` requests to each gateway at once while the OAuth server holds the refresh;
  // lets it answer only when every request has picked the account, so they all want the token
  // at the same time. Returns the statuses.
  std::vector<int> burstDuringRefresh(int perGateway) {
    oauth_.holdRequests(true);
    std::vector<int> statuses(static_cast<size_t>(perGateway) * gws_.size(), 0);
    std::vector<std::thread> ts;
    for (size_t g = 0; g < gws_.size(); ++g) {
      for (int i = 0; i < perGateway; ++i) {
        size_t slot = g * static_cast<size_t>(perGateway) + static_cast<size_t>(i);
        ts.emplace_back(
            [&, g, slot] { statuses[slot] = post(*gws_[g], body(slot % 2 == 0)).status; });
      }
    }
    bool held = oauth_.waitForHeld(1, kDeadlineMs);
    EXPECT_TRUE(held) << "no refresh reached the OAuth server";
    for (auto& gw : gws_) {
      if (!held) {
        break;  // the test has failed already: do not wait for more
      }
      EXPECT_TRUE(rgtest::waitFor(
          [&] { return gauge(*gw, "relaygate_account_leases_held") == perGateway; }, kDeadlineMs))
          << "not every request picked the account";
    }
    oauth_.holdRequests(false);
    oauth_.releaseHeld();
    for (auto& t : ts) {
      t.join();
    }
    return statuses;
  }

  // The requests since the refresh all used the new token with the OAuth beta.
  void expectAllUsed(const std::string& token, size_t n) {
    auto reqs = upstream_.requestsFor(token);
    EXPECT_EQ(reqs.size(), n);
    for (const auto& r : reqs) {
      EXPECT_NE(r.beta.find("oauth-2025-04-20"), std::string::npos) << r.beta;
      EXPECT_EQ(r.header("authorization"), "Bearer " + token);
      EXPECT_FALSE(r.hasHeader("x-api-key"));
    }
  }

  rgtest::TempDir dir_;
  FakeAnthropic upstream_;
  FakeOAuth oauth_;
  std::vector<std::unique_ptr<GatewayProcess>> gws_;
  std::string config_, gatewayKey_, adminToken_;
  std::vector<std::string> extraSecrets_, cliOutputs_;
};

TEST_P(OAuthE2E, FiftyParallelRequestsRefreshAnExpiringTokenExactlyOnce) {
  writeConfig();
  const std::string refresh = oauth_.issueRefreshToken();
  extraSecrets_.push_back(refresh);
  const int64_t oldExpiry = nowMs() + 10000;  // within the default 60 s refresh lead
  createKey();
  GatewayProcess* gw = launch();
  ASSERT_NE(gw, nullptr);
  std::string id = addOfficial(*gw, "o", kOldToken, refresh, oldExpiry, 10);
  ASSERT_FALSE(id.empty());

  const int64_t before = nowMs();
  std::vector<int> statuses = burstDuringRefresh(50);
  const int64_t after = nowMs();
  for (int s : statuses) {
    EXPECT_EQ(s, 200);
  }
  EXPECT_EQ(oauth_.calls("refresh_token"), 1u);
  EXPECT_EQ(oauth_.totalCalls(), 1u);
  const std::string fresh = oauth_.lastAccessToken();
  ASSERT_FALSE(fresh.empty());
  ASSERT_NE(fresh, kOldToken);
  // Every request waited for the refresh it needed: none went out with the old token.
  EXPECT_EQ(upstream_.statsFor(kOldToken).requests, 0u);
  expectAllUsed(fresh, 50);
  // The rotated refresh token is stored: the old one is spent, the new one is valid.
  EXPECT_FALSE(oauth_.refreshTokenValid(refresh));
  EXPECT_TRUE(oauth_.refreshTokenValid(oauth_.lastRefreshToken()));

  // The new expiry (the fake's default lifetime of 28800 s) is what the account shows.
  auto show = cli({"accounts", "show", id});
  ASSERT_EQ(show.exitCode, 0) << show.err;
  int64_t shown = shownExpiry(show.out);
  EXPECT_GE(shown, before + 28800 * 1000LL - 1000) << show.out;
  EXPECT_LE(shown, after + 28800 * 1000LL) << show.out;
  EXPECT_NE(show.out.find("status:       active"), std::string::npos) << show.out;

  // Later requests use the stored token without another refresh.
  EXPECT_EQ(post(*gw, body()).status, 200);
  EXPECT_EQ(oauth_.totalCalls(), 1u);
  expectAllUsed(fresh, 51);
  std::string logs;
  EXPECT_TRUE(rgtest::waitFor(
      [&] {
        logs = gw->stdoutText() + gw->stderrText();
        return logs.find("event account.oauth_refreshed account=" + id) != std::string::npos;
      },
      kDeadlineMs))
      << logs;
}

TEST_P(OAuthE2E, RejectedRefreshMarksTheAccountAndFailsOver) {
  writeConfig();
  std::string console =
      addedId(cli({"accounts", "add", "--type", "claude-console", "--name", "c", "--base-url",
                   upstream_.baseUrl(), "--api-key", kConsoleKey, "--priority", "50"}));
  createKey();
  GatewayProcess* gw = launch();
  ASSERT_NE(gw, nullptr);
  // Expired a minute ago, with a refresh token the server does not know (invalid_grant).
  std::string official = addOfficial(*gw, "o", kOldToken, kUnknownRefresh, nowMs() - 60000, 10);
  ASSERT_FALSE(official.empty());

  HttpResult r = post(*gw, body());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_.statsFor(kConsoleKey).requests, 1u);
  EXPECT_EQ(upstream_.statsFor(kOldToken).requests, 0u);  // an expired token is never sent
  EXPECT_EQ(oauth_.calls("refresh_token"), 1u);
  auto reqs = oauth_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_NE(reqs[0].body.find(kUnknownRefresh), std::string::npos);

  // The account says why it is out, over the admin API and in the CLI.
  HttpResult got = admin(*gw, "GET", "/admin/accounts/" + official);
  ASSERT_EQ(got.status, 200) << got.body;
  auto d = parse(got.body);
  const rapidjson::Value& acc = d.IsObject() && d.HasMember("account") ? d["account"] : d;
  EXPECT_EQ(str(acc, "status"), "error") << got.body;
  std::string reason = str(acc, "status_reason");
  EXPECT_NE(reason.find("OAuth token refresh failed"), std::string::npos) << got.body;
  EXPECT_NE(reason.find("invalid_grant"), std::string::npos) << got.body;
  EXPECT_EQ(got.body.find(kOldToken), std::string::npos);
  auto show = cli({"accounts", "show", official});
  ASSERT_EQ(show.exitCode, 0) << show.err;
  EXPECT_NE(show.out.find("status:       error (OAuth token refresh failed"), std::string::npos)
      << show.out;

  std::string logs;
  EXPECT_TRUE(rgtest::waitFor(
      [&] {
        logs = gw->stdoutText() + gw->stderrText();
        return logs.find("event account.error account=" + official) != std::string::npos;
      },
      kDeadlineMs))
      << logs;

  // The account in error is left alone: the next requests go to the console account directly.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(post(*gw, body()).status, 200);
  }
  EXPECT_EQ(upstream_.statsFor(kConsoleKey).requests, 4u);
  EXPECT_EQ(upstream_.statsFor(kOldToken).requests, 0u);
  (void)console;
}

TEST_P(OAuthE2E, OnboardingThroughTheAdminApiOfTheRunningGateway) {
  writeConfig(/*generatedAdminToken=*/true);
  createKey();
  GatewayProcess* gw = launch();
  ASSERT_NE(gw, nullptr);
  ASSERT_TRUE(rgtest::waitFor(
      [&] {
        adminToken_ = rgtest::readFile(dir_.file("data") + "/admin.token");
        while (!adminToken_.empty() && (adminToken_.back() == '\n' || adminToken_.back() == '\r')) {
          adminToken_.pop_back();
        }
        return adminToken_.size() >= 32;
      },
      kDeadlineMs));

  // The exchange goes through a SOCKS5 proxy with a password: the gateway keeps it sealed while
  // the authorization is pending and opens it for the exchange.
  rgtest::TestProxy proxy(rgtest::TestProxy::Mode::kSocks5, "relay", kProxyPassword);
  ASSERT_TRUE(proxy.start());
  HttpResult start =
      admin(*gw, "POST", "/admin/oauth/claude/start",
            R"({"proxy":")" + proxy.url() + R"(","proxy_password":")" + kProxyPassword + R"("})");
  ASSERT_EQ(start.status, 200) << start.body;
  EXPECT_EQ(start.body.find(kProxyPassword), std::string::npos);
  auto sd = parse(start.body);
  std::string sessionId = str(sd, "session_id");
  std::string url = str(sd, "url");
  ASSERT_FALSE(sessionId.empty()) << start.body;
  EXPECT_EQ(url.rfind(oauth_.baseUrl() + "/oauth/authorize?", 0), 0u) << url;
  EXPECT_NE(url.find("client_id=" + std::string(FakeOAuth::kClientId)), std::string::npos) << url;
  EXPECT_NE(url.find("code_challenge="), std::string::npos) << url;
  EXPECT_NE(url.find("code_challenge_method=S256"), std::string::npos) << url;

  // The operator consents on the vendor's page, which shows "code#state".
  std::string why;
  std::string code = oauth_.authorize(url, &why);
  ASSERT_FALSE(code.empty()) << why;
  extraSecrets_.push_back(code);
  HttpResult ex = admin(*gw, "POST", "/admin/oauth/claude/exchange",
                        R"({"session_id":")" + sessionId + R"(","code":")" + code + "#" +
                            oauth_.lastState() + R"(","name":"onboarded","priority":10,)" +
                            R"("base_url":")" + upstream_.baseUrl() + R"("})");
  ASSERT_EQ(ex.status, 201) << ex.body;
  EXPECT_EQ(oauth_.calls("authorization_code"), 1u);
  EXPECT_EQ(proxy.tunnelCount(), 1);
  EXPECT_EQ(proxy.authFailures(), 0);
  ASSERT_EQ(proxy.targets().size(), 1u);
  EXPECT_EQ(proxy.targets()[0].port, oauth_.port());
  const std::string access = oauth_.lastAccessToken();
  const std::string refresh = oauth_.lastRefreshToken();
  ASSERT_FALSE(access.empty());
  for (const std::string& secret : {access, refresh, kProxyPassword}) {
    EXPECT_EQ(ex.body.find(secret), std::string::npos) << "secret in the exchange answer";
  }
  auto ed = parse(ex.body);
  const rapidjson::Value& acc = ed.IsObject() && ed.HasMember("account") ? ed["account"] : ed;
  std::string id = str(acc, "id");
  ASSERT_EQ(id.size(), 36u) << ex.body;
  EXPECT_EQ(str(acc, "type"), "claude-official");
  // The session is consumed: the same code cannot create a second account.
  HttpResult again =
      admin(*gw, "POST", "/admin/oauth/claude/exchange",
            R"({"session_id":")" + sessionId + R"(","code":")" + code + R"(","name":"twice"})");
  EXPECT_EQ(again.status, 404) << again.body;

  // The gateway now serves with the account's access token.
  HttpResult r = post(*gw, body());
  EXPECT_EQ(r.status, 200) << r.body;
  expectAllUsed(access, 1);
  EXPECT_EQ(oauth_.calls("refresh_token"), 0u);
  EXPECT_EQ(proxy.tunnelCount(), 1);  // the session's proxy was for the exchange only
  auto show = cli({"accounts", "show", id});
  ASSERT_EQ(show.exitCode, 0) << show.err;
  EXPECT_GT(shownExpiry(show.out), nowMs()) << show.out;
}

// Two gateways on one Redis, 25 requests each, one expiring account: one refresh in all.
class OAuthTwoGatewaysE2E : public OAuthE2E {};

TEST_P(OAuthTwoGatewaysE2E, RefreshOnceAcrossInstances) {
  writeConfig();
  const std::string refresh = oauth_.issueRefreshToken();
  extraSecrets_.push_back(refresh);
  createKey();
  GatewayProcess* one = launch();
  ASSERT_NE(one, nullptr);
  ASSERT_FALSE(addOfficial(*one, "o", kOldToken, refresh, nowMs() + 10000, 10).empty());
  ASSERT_NE(launch(), nullptr);  // the second instance finds the account in Redis

  std::vector<int> statuses = burstDuringRefresh(25);
  for (int s : statuses) {
    EXPECT_EQ(s, 200);
  }
  EXPECT_EQ(oauth_.calls("refresh_token"), 1u);
  EXPECT_EQ(oauth_.totalCalls(), 1u);
  const std::string fresh = oauth_.lastAccessToken();
  ASSERT_NE(fresh, kOldToken);
  EXPECT_EQ(upstream_.statsFor(kOldToken).requests, 0u);
  expectAllUsed(fresh, 50);
  EXPECT_TRUE(oauth_.refreshTokenValid(oauth_.lastRefreshToken()));
}

INSTANTIATE_TEST_SUITE_P(Backends, OAuthE2E, ::testing::Values("embedded", "redis"),
                         [](const auto& param) { return param.param; });
INSTANTIATE_TEST_SUITE_P(Redis, OAuthTwoGatewaysE2E, ::testing::Values("redis"),
                         [](const auto& param) { return param.param; });

}  // namespace
