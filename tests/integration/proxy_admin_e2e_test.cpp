// End-to-end per-account outbound proxies and the admin REST API, against the real relaygate
// binary with claude-console accounts on one fake Anthropic upstream (told apart by credential),
// on both storage backends:
//  - an account with a SOCKS5 or HTTP CONNECT proxy (user + sealed password) sends all of its
//    traffic, and only its traffic, through that proxy; the direct account never touches it,
//    not even through a pooled connection;
//  - a proxy that refuses the account's credentials makes that account's request fail with a 502
//    that names the proxy problem (never the password) and cools the account down;
//  - the admin API on the running gateway: token checks, 404 when disabled, accounts created over
//    HTTP used by the gateway, cooldowns listed and reset, events, account tests, gateway keys,
//    the body limit; no secret in any response or log.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "fakes/fake_anthropic.h"
#include "fakes/gateway_process.h"
#include "fakes/store_backends.h"
#include "fakes/support.h"
#include "fakes/test_proxy.h"

namespace {

using rgtest::FakeAnthropic;
using rgtest::GatewayProcess;
using rgtest::HttpResult;
using rgtest::TestProxy;

const std::string kBin = RG_TEST_RELAYGATE_BIN;
const std::string kPluginDir = RG_TEST_PLUGIN_DIR;
const std::string kMasterKey = "proxy-admin-master-key-0123456789abcdef";
const std::string kKeyProxied = "sk-ant-api03-PROXIED-ACCOUNT-0123456789abcdef";
const std::string kKeyHttpProxied = "sk-ant-api03-HTTP-PROXIED-0123456789abcdefgh";
const std::string kKeyDirect = "sk-ant-api03-DIRECT-ACCOUNT-0123456789abcdefg";
const std::string kKeyAdminMade = "sk-ant-api03-ADMIN-MADE-0123456789abcdefghijk";
const std::string kProxyUser = "relayuser";
const std::string kProxyPassword = "Pr0xy-Passw0rd-7c1e9a44";
const std::string kWrongPassword = "Wr0ng-Passw0rd-3b8d5f21";
const std::string kAdminToken = "rga-test-admin-token-5d2c8e1f0a9b7c6d4e3f";

// Every body has its own first message so that no two requests share a sticky conversation.
std::string body(const std::string& model, bool stream = false) {
  static std::atomic<int> n{0};
  return R"({"model":")" + model + R"(","max_tokens":16)" + (stream ? R"(,"stream":true)" : "") +
         R"(,"messages":[{"role":"user","content":"Hello )" + std::to_string(++n) + R"("}]})";
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

// Sends a request whose body is far over the admin API's limit without assuming the server reads
// it: the body is written while the socket is writable and the answer is read as soon as it
// comes (the gateway may answer and close before taking the whole body). Returns the raw reply.
std::string sendHugeBody(int port, const std::string& head, const std::string& payload,
                         int timeoutMs) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  std::string out = head + payload;
  size_t sent = 0;
  bool writing = true;
  std::string reply;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  char buf[65536];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 200) < 0) {
      break;
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        break;
      }
      reply.append(buf, static_cast<size_t>(n));
      writing = false;  // the answer is here: stop pushing a body nobody will read
      continue;
    }
    if (writing && (p.revents & POLLOUT) != 0) {
      ssize_t n = ::send(fd, out.data() + sent, std::min<size_t>(out.size() - sent, 65536),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        writing = false;
      } else if (n > 0) {
        sent += static_cast<size_t>(n);
        writing = sent < out.size();
      }
    }
  }
  ::close(fd);
  return reply;
}

class ProxyAdminE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_TRUE(upstream_.start()); }

  void TearDown() override {
    if (gw_ && gw_->running()) {
      std::vector<std::string> secrets = {kKeyProxied,   kKeyHttpProxied, kKeyDirect,
                                          kKeyAdminMade, kProxyPassword,  kWrongPassword,
                                          kMasterKey,    kAdminToken};
      secrets.insert(secrets.end(), extraSecrets_.begin(), extraSecrets_.end());
      rgtest::expectLeasesReleasedAndNoSecrets(*gw_, secrets, nullptr, 15000, 15000);
    }
    // No admin answer ever carried an account credential or a proxy password.
    for (const std::string& b : adminBodies_) {
      for (const std::string& secret :
           {kKeyProxied, kKeyDirect, kKeyAdminMade, kProxyPassword, kWrongPassword, kMasterKey}) {
        EXPECT_EQ(b.find(secret), std::string::npos) << "secret in an admin answer: " << b;
      }
    }
  }

  bool redis() const { return GetParam() == "redis"; }

  // adminYaml: the whole admin: section ("" = the defaults: enabled, generated token).
  void writeConfig(const std::string& adminYaml, const std::string& schedulerYaml = "") {
    rgtest::GatewayYaml y = rgtest::gatewayStorageYaml(GetParam(), dir_, "pae");
    y.masterKey = kMasterKey;
    y.pluginDir = kPluginDir;
    y.extra = schedulerYaml + adminYaml;
    config_ = rgtest::writeGatewayConfig(dir_.path(), y);
  }

  rgtest::CommandResult cli(std::vector<std::string> args) {
    return rgtest::runCli(kBin, config_, std::move(args));
  }

  std::string addAccount(const std::string& name, const std::string& key, int priority,
                         const std::vector<std::string>& extra = {}) {
    rgtest::CommandResult r;
    std::string id = rgtest::addConsoleAccount(kBin, config_, name, upstream_.baseUrl(), key,
                                               priority, extra, &r);
    for (const std::string& secret : {key, kProxyPassword, kWrongPassword}) {
      EXPECT_EQ((r.out + r.err).find(secret), std::string::npos) << "CLI printed a secret";
    }
    return id;
  }

  std::string createKey(const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"keys", "create", "--name", name};
    args.insert(args.end(), extra.begin(), extra.end());
    auto k = cli(args);
    EXPECT_EQ(k.exitCode, 0) << k.err;
    extraSecrets_.push_back(k.lastLine());
    return k.lastLine();
  }

  void launch() {
    std::string err;
    gw_ = GatewayProcess::start(kBin, config_, dir_.path(), {}, &err);
    ASSERT_NE(gw_, nullptr) << err;
  }

  HttpResult post(const std::string& key, const std::string& b) {
    return rgtest::httpRequest(gw_->port(), "POST", "/api/v1/messages",
                               {{"x-api-key", key},
                                {"content-type", "application/json"},
                                {"anthropic-version", "2023-06-01"}},
                               b);
  }

  HttpResult admin(const std::string& method, const std::string& target, const std::string& b = "",
                   const std::string& token = kAdminToken) {
    std::vector<std::pair<std::string, std::string>> h = {{"content-type", "application/json"}};
    if (!token.empty()) {
      h.emplace_back("Authorization", "Bearer " + token);
    }
    HttpResult r = rgtest::httpRequest(gw_->port(), method, target, h, b);
    adminBodies_.push_back(r.body);
    return r;
  }

  // Proxied account P and direct account D on the same upstream, each pinned by a key binding.
  // Checks that P's requests, and only P's, go through `proxy`, including across pooled
  // connections: a direct request after proxied ones must open its own upstream connection.
  void checkOnlyTheProxiedAccountUsesTheProxy(TestProxy& proxy) {
    writeConfig("");
    std::string idP = addAccount("proxied", kKeyProxied, 10,
                                 {"--proxy", proxy.url(true), "--proxy-password", kProxyPassword});
    std::string idD = addAccount("direct", kKeyDirect, 20);
    ASSERT_FALSE(idP.empty());
    ASSERT_FALSE(idD.empty());
    std::string keyP = createKey("to-proxied", {"--bind", "claude=" + idP});
    std::string keyD = createKey("to-direct", {"--bind", "claude=" + idD});
    launch();
    const std::string upstreamTarget = "127.0.0.1:" + std::to_string(upstream_.port());

    // P first (one plain, one streamed): through the proxy.
    for (int i = 0; i < 2; ++i) {
      HttpResult r = post(keyP, body("claude-sonnet-4-5", i == 1));
      EXPECT_EQ(r.status, 200) << r.body;
    }
    EXPECT_EQ(upstream_.statsFor(kKeyProxied).requests, 2u);
    EXPECT_EQ(upstream_.statsFor(kKeyDirect).requests, 0u);
    int tunnels = proxy.tunnelCount();
    EXPECT_GE(tunnels, 1);
    EXPECT_EQ(proxy.authFailures(), 0);
    int proxyConns = proxy.connectionCount();
    int upstreamConns = upstream_.connectionCount();

    // D next: never through the proxy, and not over a pooled tunnel of P's either (that would
    // show as a request that opened no upstream connection of its own).
    HttpResult d1 = post(keyD, body("claude-sonnet-4-5"));
    EXPECT_EQ(d1.status, 200) << d1.body;
    EXPECT_EQ(proxy.connectionCount(), proxyConns);
    EXPECT_GE(upstream_.connectionCount(), upstreamConns + 1)
        << "the direct account's request reused a connection opened through the proxy";
    for (int i = 0; i < 2; ++i) {
      HttpResult r = post(keyD, body("claude-haiku-4-5", i == 0));
      EXPECT_EQ(r.status, 200) << r.body;
    }
    EXPECT_EQ(proxy.connectionCount(), proxyConns);
    EXPECT_EQ(upstream_.statsFor(kKeyDirect).requests, 3u);

    // P again after D: still (and only) through the proxy.
    HttpResult p3 = post(keyP, body("claude-opus-4-5"));
    EXPECT_EQ(p3.status, 200) << p3.body;
    EXPECT_EQ(upstream_.statsFor(kKeyProxied).requests, 3u);
    EXPECT_LE(proxy.tunnelCount(), 3);  // at most one tunnel per proxied request
    EXPECT_EQ(proxy.authFailures(), 0);
    auto targets = proxy.targets();
    EXPECT_EQ(static_cast<int>(targets.size()), proxy.tunnelCount());
    for (const auto& t : targets) {
      EXPECT_EQ(t.hostPort(), upstreamTarget);
    }
    // The upstream got both accounts' requests, with their own credentials, and nothing else.
    EXPECT_EQ(upstream_.requestCount(), 6u);
  }

  rgtest::TempDir dir_;
  FakeAnthropic upstream_;
  std::unique_ptr<GatewayProcess> gw_;
  std::string config_;
  std::vector<std::string> extraSecrets_;
  std::vector<std::string> adminBodies_;
};

TEST_P(ProxyAdminE2E, Socks5ProxyCarriesOnlyTheProxiedAccount) {
  TestProxy proxy(TestProxy::Mode::kSocks5, kProxyUser, kProxyPassword);
  ASSERT_TRUE(proxy.start());
  checkOnlyTheProxiedAccountUsesTheProxy(proxy);
}

TEST_P(ProxyAdminE2E, HttpConnectProxyCarriesOnlyTheProxiedAccount) {
  TestProxy proxy(TestProxy::Mode::kHttpConnect, kProxyUser, kProxyPassword);
  ASSERT_TRUE(proxy.start());
  checkOnlyTheProxiedAccountUsesTheProxy(proxy);
  // The CONNECTs carried the account's proxy credentials (Basic user:password).
  for (const auto& auth : proxy.proxyAuthorizations()) {
    EXPECT_EQ(auth.rfind("Basic ", 0), 0u) << auth;
  }
  EXPECT_FALSE(proxy.proxyAuthorizations().empty());
}

TEST_P(ProxyAdminE2E, RefusingProxyIs502NamingItAndCoolsTheAccountDown) {
  TestProxy socks(TestProxy::Mode::kSocks5, kProxyUser, kProxyPassword);
  TestProxy http(TestProxy::Mode::kHttpConnect, kProxyUser, kProxyPassword);
  ASSERT_TRUE(socks.start());
  ASSERT_TRUE(http.start());
  writeConfig("admin:\n  token: " + kAdminToken + "\n");
  // Both proxied accounts hold the wrong password; they are preferred over the direct one.
  std::string idS = addAccount("via-socks", kKeyProxied, 10,
                               {"--proxy", socks.url(true), "--proxy-password", kWrongPassword});
  std::string idH = addAccount("via-http", kKeyHttpProxied, 20,
                               {"--proxy", http.url(true), "--proxy-password", kWrongPassword});
  std::string idD = addAccount("direct", kKeyDirect, 30);
  ASSERT_FALSE(idS.empty());
  ASSERT_FALSE(idH.empty());
  ASSERT_FALSE(idD.empty());
  std::string keyS = createKey("to-socks", {"--bind", "claude=" + idS});
  std::string keyH = createKey("to-http", {"--bind", "claude=" + idH});
  std::string keyAny = createKey("shared");
  launch();

  HttpResult s = post(keyS, body("claude-sonnet-4-5"));
  EXPECT_EQ(s.status, 502) << s.body;
  EXPECT_NE(s.body.find("proxy"), std::string::npos) << s.body;
  EXPECT_NE(s.body.find("rejected the user name or password"), std::string::npos) << s.body;
  EXPECT_EQ(socks.authFailures(), 1);
  EXPECT_EQ(socks.tunnelCount(), 0);

  HttpResult h = post(keyH, body("claude-sonnet-4-5"));
  EXPECT_EQ(h.status, 502) << h.body;
  EXPECT_NE(h.body.find("proxy"), std::string::npos) << h.body;
  EXPECT_NE(h.body.find("407"), std::string::npos) << h.body;
  EXPECT_EQ(http.authFailures(), 1);
  EXPECT_EQ(http.tunnelCount(), 0);
  for (const std::string& b : {s.body, h.body}) {
    EXPECT_EQ(b.find(kWrongPassword), std::string::npos) << b;
    EXPECT_EQ(b.find(kProxyPassword), std::string::npos) << b;
  }
  EXPECT_EQ(upstream_.requestCount(), 0u);

  // Both cool down: a request any account may serve goes to the direct one without trying a
  // proxy again.
  int socksConns = socks.connectionCount();
  int httpConns = http.connectionCount();
  for (int i = 0; i < 2; ++i) {
    HttpResult r = post(keyAny, body("claude-sonnet-4-5", i == 1));
    EXPECT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(upstream_.statsFor(kKeyDirect).requests, 2u);
  EXPECT_EQ(socks.connectionCount(), socksConns);
  EXPECT_EQ(http.connectionCount(), httpConns);
  auto cds = cli({"accounts", "cooldowns"});
  EXPECT_EQ(cds.exitCode, 0) << cds.err;
  EXPECT_NE(cds.out.find(idS), std::string::npos) << cds.out;
  EXPECT_NE(cds.out.find(idH), std::string::npos) << cds.out;
  EXPECT_EQ(cds.out.find(idD), std::string::npos) << cds.out;
  // The bound key's account is cooling: it says so instead of hammering the proxy.
  HttpResult again = post(keyS, body("claude-sonnet-4-5"));
  EXPECT_EQ(again.status, 503) << again.body;
  EXPECT_NE(again.body.find("cooling down"), std::string::npos) << again.body;
  EXPECT_EQ(socks.connectionCount(), socksConns);
  EXPECT_EQ(upstream_.statsFor(kKeyProxied).requests, 0u);

  // Once reset, the SOCKS account is preferred again; a request any account may serve tries it,
  // fails on the proxy, and fails over to the direct account before the client sees anything.
  HttpResult reset = admin("POST", "/admin/accounts/" + idS + "/reset");
  EXPECT_EQ(reset.status, 200) << reset.body;
  EXPECT_TRUE(rgtest::waitFor(
      [&] {
        HttpResult r = post(keyAny, body("claude-sonnet-4-5"));
        EXPECT_EQ(r.status, 200) << r.body;
        return socks.authFailures() >= 2 || r.status != 200;
      },
      15000));
  EXPECT_EQ(socks.authFailures(), 2);
  EXPECT_EQ(http.authFailures(), 1);  // still cooling: not tried
  EXPECT_EQ(upstream_.statsFor(kKeyProxied).requests, 0u);
  EXPECT_EQ(upstream_.statsFor(kKeyHttpProxied).requests, 0u);
}

TEST_P(ProxyAdminE2E, HttpsProxyIsRejectedAtConfigurationTime) {
  writeConfig("");
  auto r = cli({"accounts", "add", "--type", "claude-console", "--name", "tls-proxy", "--base-url",
                upstream_.baseUrl(), "--api-key", kKeyProxied, "--proxy",
                "https://" + kProxyUser + "@127.0.0.1:3128", "--proxy-password", kProxyPassword});
  EXPECT_NE(r.exitCode, 0) << r.out;
  EXPECT_NE(r.err.find("TLS to the proxy"), std::string::npos) << r.err;
  EXPECT_EQ((r.out + r.err).find(kProxyPassword), std::string::npos);
  auto list = cli({"accounts", "list"});
  EXPECT_EQ(list.exitCode, 0) << list.err;
  EXPECT_EQ(list.out.find("tls-proxy"), std::string::npos) << list.out;
}

TEST_P(ProxyAdminE2E, AdminApiDrivesAccountsCooldownsAndKeys) {
  writeConfig("admin:\n  enabled: true\n  token: " + kAdminToken + "\n");
  launch();

  // No token and a wrong token: the same 401.
  HttpResult none = admin("GET", "/admin/accounts", "", "");
  HttpResult wrong = admin("GET", "/admin/accounts", "", kAdminToken + "x");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_EQ(wrong.status, 401) << wrong.body;
  EXPECT_EQ(none.body, wrong.body);
  HttpResult viaHeader = rgtest::httpRequest(gw_->port(), "GET", "/admin/accounts",
                                             {{"x-admin-token", kAdminToken}}, "");
  EXPECT_EQ(viaHeader.status, 200) << viaHeader.body;

  // An https:// proxy is refused with the reason.
  HttpResult tls =
      admin("POST", "/admin/accounts",
            R"({"type":"claude-console","name":"tls","base_url":")" + upstream_.baseUrl() +
                R"(","api_key":")" + kKeyAdminMade + R"(","proxy":"https://127.0.0.1:3128"})");
  EXPECT_EQ(tls.status, 400) << tls.body;
  EXPECT_NE(tls.body.find("not supported"), std::string::npos) << tls.body;

  // Create an account over HTTP.
  HttpResult created =
      admin("POST", "/admin/accounts",
            R"({"type":"claude-console","name":"adm","base_url":")" + upstream_.baseUrl() +
                R"(","api_key":")" + kKeyAdminMade + R"(","priority":10})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto acc = parse(created.body);
  ASSERT_TRUE(acc.IsObject()) << created.body;
  std::string id = str(acc, "id");
  ASSERT_FALSE(id.empty()) << created.body;
  EXPECT_EQ(str(acc, "name"), "adm");

  HttpResult list = admin("GET", "/admin/accounts");
  ASSERT_EQ(list.status, 200) << list.body;
  auto ld = parse(list.body);
  ASSERT_TRUE(ld.IsObject() && ld.HasMember("accounts") && ld["accounts"].IsArray()) << list.body;
  ASSERT_EQ(ld["accounts"].Size(), 1u) << list.body;
  const auto& listed = ld["accounts"][0];
  EXPECT_EQ(str(listed, "id"), id);
  ASSERT_TRUE(listed.HasMember("secrets") && listed["secrets"].IsArray()) << list.body;
  ASSERT_GE(listed["secrets"].Size(), 1u) << list.body;
  std::string masked = str(listed["secrets"][0], "masked");
  EXPECT_FALSE(masked.empty()) << list.body;
  EXPECT_NE(masked, kKeyAdminMade);

  // A gateway key from the admin API; it authenticates, and the request uses the new account.
  HttpResult key = admin("POST", "/admin/keys", R"({"name":"from-admin"})");
  ASSERT_EQ(key.status, 201) << key.body;
  auto kd = parse(key.body);
  ASSERT_TRUE(kd.IsObject()) << key.body;
  std::string plainKey = str(kd, "key");
  ASSERT_EQ(plainKey.rfind("cr_", 0), 0u) << key.body;
  extraSecrets_.push_back(plainKey);
  ASSERT_TRUE(kd.HasMember("api_key"));
  std::string keyId = str(kd["api_key"], "id");
  ASSERT_FALSE(keyId.empty()) << key.body;
  HttpResult first = post(plainKey, body("claude-sonnet-4-5"));
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(upstream_.statsFor(kKeyAdminMade).requests, 1u);
  // The key shows in the list; its plain text does not.
  HttpResult keys = admin("GET", "/admin/keys");
  EXPECT_EQ(keys.status, 200) << keys.body;
  EXPECT_NE(keys.body.find(keyId), std::string::npos) << keys.body;
  EXPECT_EQ(keys.body.find(plainKey), std::string::npos) << keys.body;

  // 529 from the upstream: the account cools down and the cooldown is listed.
  upstream_.setDefaultFor(kKeyAdminMade, FakeAnthropic::error(529, "Overloaded"));
  HttpResult over = post(plainKey, body("claude-sonnet-4-5"));
  EXPECT_EQ(over.status, 529) << over.body;
  HttpResult cds = admin("GET", "/admin/cooldowns");
  ASSERT_EQ(cds.status, 200) << cds.body;
  auto cd = parse(cds.body);
  ASSERT_TRUE(cd.IsObject() && cd.HasMember("cooldowns") && cd["cooldowns"].IsArray()) << cds.body;
  ASSERT_EQ(cd["cooldowns"].Size(), 1u) << cds.body;
  EXPECT_EQ(str(cd["cooldowns"][0], "account_id"), id);
  EXPECT_EQ(str(cd["cooldowns"][0], "account_name"), "adm");
  EXPECT_EQ(str(cd["cooldowns"][0], "error_class"), "overloaded") << cds.body;
  // While it cools nothing reaches the upstream.
  HttpResult cooling = post(plainKey, body("claude-sonnet-4-5"));
  EXPECT_EQ(cooling.status, 503) << cooling.body;
  EXPECT_EQ(upstream_.statsFor(kKeyAdminMade).requests, 2u);

  // Reset: the cooldown is gone, the account serves again, and the events tell the story.
  upstream_.clearFor(kKeyAdminMade);
  HttpResult reset = admin("POST", "/admin/accounts/" + id + "/reset");
  ASSERT_EQ(reset.status, 200) << reset.body;
  auto rd = parse(reset.body);
  ASSERT_TRUE(rd.IsObject() && rd.HasMember("cleared_cooldowns")) << reset.body;
  EXPECT_EQ(rd["cleared_cooldowns"].GetInt64(), 1) << reset.body;
  HttpResult after = admin("GET", "/admin/cooldowns");
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(after.body.find(id), std::string::npos) << after.body;
  // The gateway may hold the cooldown in its refreshed state for a moment: poll.
  EXPECT_TRUE(rgtest::waitFor(
      [&] { return post(plainKey, body("claude-sonnet-4-5")).status == 200; }, 15000));
  size_t served = upstream_.statsFor(kKeyAdminMade).requests;
  EXPECT_GE(served, 3u);
  HttpResult events = admin("GET", "/admin/events");
  ASSERT_EQ(events.status, 200) << events.body;
  auto ed = parse(events.body);
  ASSERT_TRUE(ed.IsObject() && ed.HasMember("events") && ed["events"].IsArray()) << events.body;
  bool cooldownSeen = false;
  bool recoveredSeen = false;
  for (const auto& e : ed["events"].GetArray()) {
    if (str(e, "account_id") != id) {
      continue;
    }
    if (str(e, "type") == "account.cooldown") {
      cooldownSeen = true;
      EXPECT_FALSE(recoveredSeen) << "events out of order: " << events.body;
    }
    if (str(e, "type") == "account.recovered") {
      recoveredSeen = true;
    }
  }
  EXPECT_TRUE(cooldownSeen) << events.body;
  EXPECT_TRUE(recoveredSeen) << events.body;

  // The account test sends one request through the account and reports the fake's answer.
  rgtest::Script pong;
  pong.body = R"({"id":"msg_t","type":"message","role":"assistant","model":"claude-haiku-4-5",)"
              R"("content":[{"type":"text","text":"pong-7f3a"}],"stop_reason":"end_turn",)"
              R"("usage":{"input_tokens":1,"output_tokens":1}})";
  pong.headers = {{"content-type", "application/json"}};
  upstream_.enqueueFor(kKeyAdminMade, pong);
  HttpResult test = admin("POST", "/admin/accounts/" + id + "/test");
  ASSERT_EQ(test.status, 200) << test.body;
  auto td = parse(test.body);
  ASSERT_TRUE(td.IsObject()) << test.body;
  EXPECT_TRUE(td["ok"].IsBool() && td["ok"].GetBool()) << test.body;
  EXPECT_EQ(td["status"].GetInt(), 200) << test.body;
  EXPECT_NE(str(td, "detail").find("pong-7f3a"), std::string::npos) << test.body;
  EXPECT_EQ(upstream_.statsFor(kKeyAdminMade).requests, served + 1);
  upstream_.enqueueFor(kKeyAdminMade, FakeAnthropic::error(401, "invalid x-api-key marker-91"));
  HttpResult bad = admin("POST", "/admin/accounts/" + id + "/test");
  ASSERT_EQ(bad.status, 200) << bad.body;
  auto bd = parse(bad.body);
  ASSERT_TRUE(bd.IsObject()) << bad.body;
  EXPECT_TRUE(bd["ok"].IsBool() && !bd["ok"].GetBool()) << bad.body;
  EXPECT_EQ(bd["status"].GetInt(), 401) << bad.body;
  EXPECT_NE(str(bd, "detail").find("marker-91"), std::string::npos) << bad.body;

  // Deleting the gateway key: it stops authenticating at once.
  HttpResult del = admin("DELETE", "/admin/keys/" + keyId);
  EXPECT_EQ(del.status, 200) << del.body;
  HttpResult gone = post(plainKey, body("claude-sonnet-4-5"));
  EXPECT_EQ(gone.status, 401) << gone.body;
  HttpResult keysAfter = admin("GET", "/admin/keys");
  EXPECT_EQ(keysAfter.body.find(keyId), std::string::npos) << keysAfter.body;

  // A 2 MiB body is refused with 413 (authorized, so it is the size that counts).
  std::string huge(2 << 20, 'x');
  std::string head =
      "POST /admin/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kAdminToken +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(huge.size()) +
      "\r\nConnection: close\r\n\r\n";
  std::string reply = sendHugeBody(gw_->port(), head, huge, 20000);
  EXPECT_EQ(reply.rfind("HTTP/1.1 413 ", 0), 0u) << reply.substr(0, 300);
  // Still one account: nothing was created from it, and the gateway still answers.
  HttpResult finalList = admin("GET", "/admin/accounts");
  EXPECT_EQ(finalList.status, 200);
  auto fl = parse(finalList.body);
  ASSERT_TRUE(fl.IsObject() && fl["accounts"].IsArray()) << finalList.body;
  EXPECT_EQ(fl["accounts"].Size(), 1u);

  // Every answer was marked uncacheable, and no answer carried the account's API key (TearDown).
  EXPECT_EQ(finalList.header("cache-control"), "no-store");
}

TEST_P(ProxyAdminE2E, AdminProxyAccountIsMaskedAndUsesTheProxy) {
  TestProxy proxy(TestProxy::Mode::kSocks5, kProxyUser, kProxyPassword);
  ASSERT_TRUE(proxy.start());
  writeConfig("admin:\n  token: " + kAdminToken + "\n");
  launch();
  HttpResult created =
      admin("POST", "/admin/accounts",
            R"({"type":"claude-console","name":"adm-proxied","base_url":")" + upstream_.baseUrl() +
                R"(","api_key":")" + kKeyAdminMade + R"(","proxy":")" + proxy.url(true) +
                R"(","proxy_password":")" + kProxyPassword + R"("})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto acc = parse(created.body);
  ASSERT_TRUE(acc.IsObject()) << created.body;
  EXPECT_EQ(str(acc, "proxy_url"), proxy.url(true));
  // Two secrets, both masked (TearDown checks neither plaintext was ever answered).
  ASSERT_TRUE(acc["secrets"].IsArray());
  EXPECT_EQ(acc["secrets"].Size(), 2u) << created.body;
  HttpResult key = admin("POST", "/admin/keys", R"({"name":"k"})");
  ASSERT_EQ(key.status, 201) << key.body;
  std::string plainKey = str(parse(key.body), "key");
  extraSecrets_.push_back(plainKey);
  HttpResult r = post(plainKey, body("claude-sonnet-4-5", true));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_.statsFor(kKeyAdminMade).requests, 1u);
  EXPECT_GE(proxy.tunnelCount(), 1);
  EXPECT_EQ(proxy.authFailures(), 0);
  // The account test goes through the account's proxy too: it works while the proxy does and
  // reports the proxy problem once the proxy is gone.
  HttpResult test = admin("POST", "/admin/accounts/" + str(acc, "id") + "/test");
  ASSERT_EQ(test.status, 200) << test.body;
  EXPECT_NE(test.body.find("\"ok\":true"), std::string::npos) << test.body;
  EXPECT_EQ(upstream_.statsFor(kKeyAdminMade).requests, 2u);
  proxy.stop();
  HttpResult down = admin("POST", "/admin/accounts/" + str(acc, "id") + "/test");
  ASSERT_EQ(down.status, 200) << down.body;
  EXPECT_NE(down.body.find("\"ok\":false"), std::string::npos) << down.body;
  EXPECT_NE(down.body.find("proxy"), std::string::npos) << down.body;
  EXPECT_EQ(upstream_.statsFor(kKeyAdminMade).requests, 2u)
      << "the account test bypassed the proxy";
}

TEST_P(ProxyAdminE2E, AdminDisabledIs404AndTheGeneratedTokenWorks) {
  // Disabled: every /admin path is unknown, whatever the token, and no token file appears.
  writeConfig("admin:\n  enabled: false\n  token: " + kAdminToken + "\n");
  launch();
  for (const char* path : {"/admin", "/admin/accounts", "/admin/keys", "/admin/cooldowns"}) {
    HttpResult r = admin("GET", path);
    EXPECT_EQ(r.status, 404) << path << " " << r.body;
  }
  EXPECT_EQ(admin("POST", "/admin/keys", R"({"name":"made-while-disabled"})").status, 404);
  auto keys = cli({"keys", "list"});
  EXPECT_EQ(keys.exitCode, 0) << keys.err;
  EXPECT_EQ(keys.out.find("made-while-disabled"), std::string::npos) << keys.out;
  EXPECT_EQ(gw_->stop(SIGTERM, 15000), 0);
  std::string logs = gw_->stdoutText() + gw_->stderrText();
  EXPECT_EQ(logs.find(kAdminToken), std::string::npos);
  gw_.reset();

  // Enabled without a configured token: one is generated into <data_dir>/admin.token.
  writeConfig("");
  launch();
  std::string token;
  ASSERT_TRUE(rgtest::waitFor(
      [&] {
        token = rgtest::readFile(dir_.file("data") + "/admin.token");
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) {
          token.pop_back();
        }
        return token.size() >= 32;
      },
      10000));
  extraSecrets_.push_back(token);
  EXPECT_EQ(admin("GET", "/admin/accounts", "", "").status, 401);
  EXPECT_EQ(admin("GET", "/admin/accounts", "", kAdminToken).status, 401);
  HttpResult ok = admin("GET", "/admin/accounts", "", token);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"accounts\""), std::string::npos) << ok.body;
}

INSTANTIATE_TEST_SUITE_P(Backends, ProxyAdminE2E, ::testing::Values("embedded", "redis"),
                         [](const auto& param) { return param.param; });

}  // namespace
