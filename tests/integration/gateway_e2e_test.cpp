// End-to-end: the real relaygate binary, the real Claude plugin, a fake Anthropic upstream and,
// for the redis backend, a real redis-server — all over loopback, on both storage backends.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "fakes/fake_anthropic.h"
#include "fakes/gateway_process.h"
#include "fakes/store_backends.h"
#include "fakes/support.h"
#include "storage/store.h"

namespace {

using rgtest::GatewayProcess;
using rgtest::HttpResult;

const std::string kBin = RG_TEST_RELAYGATE_BIN;
const std::string kPluginDir = RG_TEST_PLUGIN_DIR;
const std::string kMasterKey = "integration-master-key-0123456789abcdef";
const std::string kUpstreamKey = "sk-ant-api03-UPSTREAMSECRET-0123456789abcdefghij";

const std::string kRequest = R"({"model":"claude-sonnet-4-5-20250929","max_tokens":64,)"
                             R"("messages":[{"role":"user","content":"Hello"}]})";
const std::string kStreamRequest =
    R"({"model":"claude-sonnet-4-5-20250929","max_tokens":64,"stream":true,)"
    R"("messages":[{"role":"user","content":"Hello"}]})";

struct Options {
  int upstreamTimeoutMs = 10000;
  int drainTimeoutMs = 10000;
  std::string baseUrlOverride;
  // Appended to the generated YAML (GatewayYaml::extra): scheduler keys first, then sections.
  std::string extraConfig;
};

// One gateway with one claude-console account pointing at a fake upstream, and one key.
class E2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { upstream_.start(); }

  void TearDown() override {
    if (!gw_) {
      return;
    }
    // Every lease taken during the test is released, on every path, and no secret shows in any
    // log line or metrics output: also of a gateway the test stopped itself, and in the /metrics
    // texts the test read.
    const std::vector<std::string> secrets = {gatewayKey_, kUpstreamKey, kMasterKey};
    if (gw_->running()) {
      rgtest::expectLeasesReleasedAndNoSecrets(*gw_, secrets, nullptr, 10000, 15000);
    }
    std::string logs = gw_->stdoutText() + gw_->stderrText() + metricsText_;
    for (const std::string& secret : secrets) {
      if (!secret.empty()) {
        EXPECT_EQ(logs.find(secret), std::string::npos) << "secret leaked into logs/metrics";
      }
    }
  }

  std::string writeConfig(const Options& o) {
    yaml_ = rgtest::gatewayStorageYaml(GetParam(), dir_, "it");
    yaml_.masterKey = kMasterKey;
    yaml_.pluginDir = kPluginDir;
    yaml_.workerThreads = 64;
    yaml_.upstreamTimeoutMs = o.upstreamTimeoutMs;
    yaml_.drainTimeoutMs = o.drainTimeoutMs;
    yaml_.extra = o.extraConfig;
    std::string path = dir_.file("relaygate.yaml");
    rgtest::writeFile(path, rgtest::gatewayConfigYaml(yaml_));
    return path;
  }

  rgtest::CommandResult cli(const std::vector<std::string>& args) {
    std::vector<std::string> full = args;
    full.insert(full.begin() + (full.size() >= 2 ? 2 : full.size()), {"--config", config_});
    return rgtest::runCommand(kBin, full);
  }

  // Creates a key with extra flags; returns {id, key}.
  std::pair<std::string, std::string> createKey(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"keys", "create", "--name", "tester"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = cli(args);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    std::smatch m;
    std::regex idRe("id: +([0-9a-f-]{36})");
    std::string id = std::regex_search(r.out, m, idRe) ? m[1].str() : "";
    return {id, r.lastLine()};
  }

  void startGateway(const Options& o = {}) {
    config_ = writeConfig(o);
    auto acct = cli({"accounts", "add", "--type", "claude-console", "--name", "fake", "--base-url",
                     o.baseUrlOverride.empty() ? upstream_.baseUrl() : o.baseUrlOverride,
                     "--api-key", kUpstreamKey});
    ASSERT_EQ(acct.exitCode, 0) << acct.err;
    // The default key has a concurrency limit so every test takes and must release a lease on
    // whatever path it exercises (success, upstream error, timeout, drop, drain); TearDown checks.
    auto k = createKey({"--concurrency", "8"});
    keyId_ = k.first;
    gatewayKey_ = k.second;
    ASSERT_EQ(gatewayKey_.size(), 67u) << gatewayKey_;
    launch();
  }

  void launch() {
    std::string err;
    gw_ = GatewayProcess::start(kBin, config_, dir_.path(), {}, &err);
    ASSERT_NE(gw_, nullptr) << err;
  }

  HttpResult post(const std::string& path, const std::string& body,
                  std::vector<std::pair<std::string, std::string>> headers = {},
                  const std::string& key = "") {
    headers.emplace_back("x-api-key", key.empty() ? gatewayKey_ : key);
    headers.emplace_back("content-type", "application/json");
    headers.emplace_back("anthropic-version", "2023-06-01");
    return rgtest::httpRequest(gw_->port(), "POST", path, headers, body);
  }

  rg::StorePtr openStoreForCheck() { return rgtest::openGatewayStore(yaml_); }

  rgtest::TempDir dir_;
  rgtest::FakeAnthropic upstream_;
  std::unique_ptr<GatewayProcess> gw_;
  std::string config_;
  std::string keyId_;
  std::string gatewayKey_;
  std::string metricsText_;  // /metrics texts the test read, checked for secrets at the end
  rgtest::GatewayYaml yaml_;
};

// ---- relay
// ---------------------------------------------------------------------------------------

TEST_P(E2E, NonStreamRelayIsByteIdenticalAndBooksUsage) {
  std::string upstreamBody = rgtest::FakeAnthropic::jsonMessage(
      "claude-sonnet-4-5-20250929", "Hi there \xe2\x9c\x93", 11, 7, 3, 5);
  rgtest::FakeAnthropic::Script s;
  s.headers = {{"content-type", "application/json"}, {"request-id", "req_upstream_1"}};
  s.body = upstreamBody;
  upstream_.enqueue(s);
  startGateway();
  if (HasFailure()) {
    return;
  }
  HttpResult r = post("/api/v1/messages?beta=true", kRequest,
                      {{"anthropic-beta", "claude-code-20250219,oauth-2025-04-20"},
                       {"x-app", "cli"},
                       {"user-agent", "claude-cli/2.0.1 (external, cli)"},
                       {"x-unlisted-header", "must-not-pass"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, upstreamBody);
  EXPECT_EQ(r.header("request-id"), "req_upstream_1");
  EXPECT_FALSE(r.header("x-request-id").empty());

  auto reqs = upstream_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& up = reqs[0];
  EXPECT_EQ(up.body, kRequest);
  EXPECT_EQ(up.uri, "/v1/messages?beta=true");
  EXPECT_EQ(up.header("x-api-key"), kUpstreamKey);
  EXPECT_EQ(up.header("authorization"), "");
  EXPECT_EQ(up.header("accept-encoding"), "identity");
  EXPECT_EQ(up.header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(up.header("anthropic-beta"), "claude-code-20250219,oauth-2025-04-20");
  EXPECT_EQ(up.header("x-unlisted-header"), "");
  for (const auto& h : up.headers) {
    EXPECT_EQ(h.second.find(gatewayKey_), std::string::npos) << "gateway key sent upstream";
  }

  auto metrics = rgtest::httpRequest(gw_->port(), "GET", "/metrics", {}, "");
  metricsText_ = metrics.body;
  EXPECT_NE(metrics.body.find("relaygate_tokens_total{kind=\"input\"} 11"), std::string::npos)
      << metrics.body;
  ASSERT_EQ(gw_->stop(SIGTERM), 0);
  auto store = openStoreForCheck();
  ASSERT_NE(store, nullptr);
  auto total = store->usage().keyTotal(keyId_);
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 1);
  EXPECT_EQ(total->inputTokens, 11);
  EXPECT_EQ(total->outputTokens, 7);
  EXPECT_EQ(total->cacheReadTokens, 5);
}

TEST_P(E2E, NonStreamRelayBooksTheRealAndBilledCost) {
  // claude-sonnet-4-5-20250929 in the shipped table (USD per token): input 3e-6, output 1.5e-5,
  // 5-minute cache write 3.75e-6, cache read 3e-7. With input 1000, output 2000, cache write 400,
  // cache read 10005:
  //   1000 x 3e-6     = 0.003      USD =  3000   micro-USD
  //   2000 x 1.5e-5   = 0.03       USD = 30000
  //    400 x 3.75e-6  = 0.0015     USD =  1500
  //  10005 x 3e-7     = 0.0030015  USD =  3001.5
  //   total                                37501.5 -> rounded half up once: 37502 (real)
  //   billed at global_rate 1.5: 37501.5 x 1.5 = 56252.25 -> 56252
  rgtest::FakeAnthropic::Script s;
  s.headers = {{"content-type", "application/json"}};
  s.body = rgtest::FakeAnthropic::jsonMessage("claude-sonnet-4-5-20250929", "Hi", 1000, 2000, 400,
                                              10005);
  upstream_.enqueue(s);
  Options o;
  o.extraConfig = "pricing:\n  global_rate: \"1.5\"\n";
  startGateway(o);
  if (HasFailure()) {
    return;
  }
  HttpResult r = post("/api/v1/messages", kRequest);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.status, 200) << r.body;

  auto metrics = rgtest::httpRequest(gw_->port(), "GET", "/metrics", {}, "");
  metricsText_ = metrics.body;
  EXPECT_TRUE(std::regex_search(
      metrics.body, std::regex("relaygate_cost_micro_usd_total\\{[^}]*model=\"claude-sonnet-4-5-"
                               "20250929\"[^}]*\\} 37502\n")))
      << metrics.body;
  EXPECT_NE(metrics.body.find("relaygate_unpriced_requests_total 0\n"), std::string::npos)
      << metrics.body;
  // By provider and model (the price table's key), never by gateway key.
  const std::string labels = "provider=\"claude\",model=\"claude-sonnet-4-5-20250929\"";
  EXPECT_NE(metrics.body.find("relaygate_billed_micro_usd_total{" + labels + "} 56252\n"),
            std::string::npos)
      << metrics.body;
  for (const auto& [kind, n] : std::vector<std::pair<std::string, int>>{
           {"input", 1000}, {"output", 2000}, {"cache_creation_5m", 400}, {"cache_read", 10005}}) {
    EXPECT_NE(metrics.body.find("relaygate_model_tokens_total{" + labels + ",kind=\"" + kind +
                                "\"} " + std::to_string(n) + "\n"),
              std::string::npos)
        << kind << "\n"
        << metrics.body;
  }
  EXPECT_EQ(metrics.body.find(keyId_), std::string::npos) << "a key id in the metrics";
  ASSERT_EQ(gw_->stop(SIGTERM), 0);
  auto store = openStoreForCheck();
  ASSERT_NE(store, nullptr);
  auto total = store->usage().keyTotal(keyId_);
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 1);
  EXPECT_EQ(total->costMicroUsd, 37502);
  EXPECT_EQ(total->billedMicroUsd, 56252);
}

TEST_P(E2E, SighupReloadsThePriceOverrideFile) {
  const std::string overridePath = dir_.file("price_override.json");
  rgtest::writeFile(overridePath, "{}");
  rgtest::FakeAnthropic::Script s;
  s.headers = {{"content-type", "application/json"}};
  s.body = rgtest::FakeAnthropic::jsonMessage("claude-sonnet-4-5-20250929", "Hi", 100, 100);
  for (int i = 0; i < 3; ++i) {
    upstream_.enqueue(s);
  }
  Options o;
  o.extraConfig = "pricing:\n  override_file: " + overridePath + "\n";
  startGateway(o);
  if (HasFailure()) {
    return;
  }
  auto store = openStoreForCheck();
  ASSERT_NE(store, nullptr);
  auto costNow = [&]() -> int64_t {
    auto t = store->usage().keyTotal(keyId_);
    return t ? t->costMicroUsd : -1;
  };
  auto logs = [&] { return gw_->stdoutText() + gw_->stderrText(); };

  // Shipped price: 100 x 3e-6 + 100 x 1.5e-5 = 300 + 1500 = 1800 micro-USD.
  HttpResult r = post("/api/v1/messages", kRequest);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(rgtest::waitFor([&] { return costNow() == 1800; }, 10000)) << costNow();

  // A broken override is refused and the table in force stays.
  rgtest::writeFile(overridePath, "{ not json");
  ASSERT_EQ(::kill(gw_->pid(), SIGHUP), 0);
  EXPECT_TRUE(rgtest::waitFor(
      [&] { return logs().find("price table not reloaded") != std::string::npos; }, 10000))
      << logs();
  r = post("/api/v1/messages", kRequest);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(rgtest::waitFor([&] { return costNow() == 3600; }, 10000)) << costNow();

  // New price: 100 x 1e-5 + 100 x 2e-5 = 1000 + 2000 = 3000 micro-USD.
  rgtest::writeFile(overridePath,
                    R"({"claude-sonnet-4-5-20250929": )"
                    R"({"input_cost_per_token": 1e-5, "output_cost_per_token": 2e-5}})");
  ASSERT_EQ(::kill(gw_->pid(), SIGHUP), 0);
  EXPECT_TRUE(rgtest::waitFor(
      [&] { return logs().find("price table reloaded") != std::string::npos; }, 10000))
      << logs();
  r = post("/api/v1/messages", kRequest);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(rgtest::waitFor([&] { return costNow() == 6600; }, 10000)) << costNow();
}

TEST_P(E2E, StreamRelayIsByteIdenticalAcrossSplitFrames) {
  auto chunks = rgtest::FakeAnthropic::sseMessage("claude-sonnet-4-5-20250929",
                                                  "Hello \xf0\x9f\x8c\x8d world", 20, 9, 4, 2);
  // Re-split the stream at awkward places: inside an event, inside a UTF-8 sequence.
  std::string all;
  for (const auto& c : chunks) {
    all += c;
  }
  std::vector<std::string> split;
  for (size_t p = 0; p < all.size(); p += 7) {
    split.push_back(all.substr(p, 7));
  }
  rgtest::FakeAnthropic::Script s;
  s.sseChunks = split;
  upstream_.enqueue(s);
  startGateway();
  if (HasFailure()) {
    return;
  }
  HttpResult r = post("/v1/messages", kStreamRequest);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type").rfind("text/event-stream", 0), 0u);
  EXPECT_EQ(r.body, all);
  ASSERT_EQ(gw_->stop(SIGTERM), 0);
  auto store = openStoreForCheck();
  ASSERT_NE(store, nullptr);
  auto total = store->usage().keyTotal(keyId_);
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 1);
  EXPECT_EQ(total->inputTokens, 20);
  EXPECT_EQ(total->outputTokens, 9);
}

TEST_P(E2E, ClaudeCodeShapedBodyPassesUntouched) {
  std::string big(50000, 'x');
  std::string body =
      R"({"model":"claude-opus-4-1-20250805","max_tokens":32000,"stream":true,)"
      R"("metadata":{"user_id":"{\"device_id\":\"d1\",\"account_uuid\":\"a1\",\"session_id\":\"5b1f0c1e-1111-4222-8333-944445555666\"}"},)"
      R"("system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.0.1"},)"
      R"({"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral","ttl":"1h"}},)"
      R"({"type":"text","text":")" +
      big +
      R"("}],)"
      R"("messages":[{"role":"system","content":"inline system"},{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}],)"
      R"("thinking":{"type":"enabled","budget_tokens":31999},)"
      R"("context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]},)"
      R"("output_config":{"effort":"high"}})";
  rgtest::FakeAnthropic::Script s;
  s.sseChunks = rgtest::FakeAnthropic::sseMessage("claude-opus-4-1-20250805", "ok", 5, 1, 0, 0);
  upstream_.enqueue(s);
  startGateway();
  if (HasFailure()) {
    return;
  }
  std::string betas =
      "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"
      "fine-grained-tool-streaming-2025-05-14,context-management-2025-06-27";
  HttpResult r = post("/api/v1/messages?beta=true", body,
                      {{"anthropic-beta", betas}, {"x-stainless-lang", "js"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  auto reqs = upstream_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].body, body);
  EXPECT_EQ(reqs[0].header("anthropic-beta"), betas);
  EXPECT_EQ(reqs[0].header("x-stainless-lang"), "js");
}

TEST_P(E2E, CountTokensIsRelayedToItsUpstreamPath) {
  rgtest::FakeAnthropic::Script s;
  s.headers = {{"content-type", "application/json"}};
  s.body = R"({"input_tokens":42})";
  upstream_.enqueue(s);
  startGateway();
  if (HasFailure()) {
    return;
  }
  auto r = post("/api/v1/messages/count_tokens?beta=true", kRequest);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"input_tokens":42})");
  auto reqs = upstream_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].uri, "/v1/messages/count_tokens?beta=true");
  EXPECT_EQ(reqs[0].body, kRequest);
}

TEST_P(E2E, NoUsableAccountIsA503InAnthropicShape) {
  startGateway();
  if (HasFailure()) {
    return;
  }
  auto list = cli({"accounts", "list"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(list.out, m, std::regex("\n([0-9a-f-]{36}) ")));
  ASSERT_EQ(cli({"accounts", "remove", m[1].str()}).exitCode, 0);
  // The gateway's account snapshot lives one second.
  HttpResult r;
  ASSERT_TRUE(rgtest::waitFor(
      [&] {
        r = post("/v1/messages", kRequest);
        return r.status == 503;
      },
      5000))
      << r.status << " " << r.body;
  EXPECT_NE(r.body.find("\"type\":\"overloaded_error\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("claude-console"), std::string::npos) << r.body;
  EXPECT_EQ(upstream_.requestCount(), 0u);
}

// ---- keys
// ----------------------------------------------------------------------------------------

TEST_P(E2E, KeyChecksAnswerInAnthropicShape) {
  startGateway();
  if (HasFailure()) {
    return;
  }
  auto missing = rgtest::httpRequest(gw_->port(), "POST", "/v1/messages",
                                     {{"content-type", "application/json"}}, kRequest);
  EXPECT_EQ(missing.status, 401);
  EXPECT_NE(missing.body.find("\"type\":\"authentication_error\""), std::string::npos);
  EXPECT_NE(missing.body.find("Missing API key"), std::string::npos);

  EXPECT_EQ(post("/v1/messages", kRequest, {}, "not-a-key-at-all").status, 401);
  auto unknown = post("/v1/messages", kRequest, {}, "cr_" + std::string(64, '0'));
  EXPECT_EQ(unknown.status, 401);
  EXPECT_NE(unknown.body.find("API key not found"), std::string::npos);

  // Bearer form works too.
  upstream_.setDefault(rgtest::FakeAnthropic::Script{});
  auto bearer = rgtest::httpRequest(
      gw_->port(), "POST", "/v1/messages",
      {{"authorization", "Bearer " + gatewayKey_}, {"content-type", "application/json"}}, kRequest);
  EXPECT_EQ(bearer.status, 200) << bearer.body;

  auto disabled = createKey();
  ASSERT_EQ(cli({"keys", "disable", disabled.first}).exitCode, 0);
  auto d = post("/v1/messages", kRequest, {}, disabled.second);
  EXPECT_EQ(d.status, 401);
  EXPECT_NE(d.body.find("disabled"), std::string::npos);

  auto geminiOnly = createKey({"--permissions", "gemini"});
  auto p = post("/v1/messages", kRequest, {}, geminiOnly.second);
  EXPECT_EQ(p.status, 403);
  EXPECT_NE(p.body.find("permission_error"), std::string::npos);

  auto noSonnet = createKey({"--deny-models", "claude-sonnet-*"});
  EXPECT_EQ(post("/v1/messages", kRequest, {}, noSonnet.second).status, 403);
  auto onlyHaiku = createKey({"--allow-models", "claude-haiku-4-5"});
  EXPECT_EQ(post("/v1/messages", kRequest, {}, onlyHaiku.second).status, 403);

  auto limited = createKey({"--rate-window-min", "5", "--rate-requests", "2"});
  EXPECT_EQ(post("/v1/messages", kRequest, {}, limited.second).status, 200);
  EXPECT_EQ(post("/v1/messages", kRequest, {}, limited.second).status, 200);
  auto third = post("/v1/messages", kRequest, {}, limited.second);
  EXPECT_EQ(third.status, 429);
  EXPECT_NE(third.body.find("rate_limit_error"), std::string::npos);
  EXPECT_GE(std::atoi(third.header("retry-after").c_str()), 1);

  auto bad = post("/v1/messages", "{not json", {});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("invalid_request_error"), std::string::npos);
  // A model name that would forge log lines is refused.
  auto forged = post("/v1/messages", R"({"model":"x\nstatus=200 forged","max_tokens":1})", {});
  EXPECT_EQ(forged.status, 400);
  EXPECT_EQ(gw_->stderrText().find("\nstatus=200 forged"), std::string::npos);
}

TEST_P(E2E, ExpiredKeyIsRejected) {
  startGateway();
  if (HasFailure()) {
    return;
  }
  // Expires two seconds from now; the check must start failing once that time has passed.
  std::time_t t = std::time(nullptr) + 2;
  char iso[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
  auto k = createKey({"--expires-at", iso});
  upstream_.setDefault(rgtest::FakeAnthropic::Script{});
  EXPECT_EQ(post("/v1/messages", kRequest, {}, k.second).status, 200);
  ASSERT_TRUE(rgtest::waitFor([&] { return std::time(nullptr) > t; }, 5000));
  auto r = post("/v1/messages", kRequest, {}, k.second);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("expired"), std::string::npos);
}

TEST_P(E2E, ConcurrencyLimitAndLeaseReleaseOnClientDisconnect) {
  rgtest::FakeAnthropic::Script held;
  held.sseChunks = {
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{"
      "\"model\":\"claude-sonnet-4-5-20250929\",\"usage\":{\"input_tokens\":3,"
      "\"output_tokens\":1}}}\n\n"};
  held.holdOpenAfterChunks = true;
  upstream_.enqueue(held);
  upstream_.setDefault(rgtest::FakeAnthropic::Script{});
  startGateway();
  if (HasFailure()) {
    return;
  }
  auto k = createKey({"--concurrency", "1"});

  // Client 1: open a stream and read its first event, then keep the connection.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(gw_->port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string req = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + k.second +
                    "\r\ncontent-type: application/json\r\nContent-Length: " +
                    std::to_string(kStreamRequest.size()) + "\r\n\r\n" + kStreamRequest;
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::string got;
  ASSERT_TRUE(rgtest::waitFor(
      [&] {
        char buf[4096];
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) > 0) {
          ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n > 0) {
            got.append(buf, static_cast<size_t>(n));
          }
        }
        return got.find("message_start") != std::string::npos;
      },
      10000));

  // Client 2 with the same key: over the limit.
  auto second = post("/v1/messages", kRequest, {}, k.second);
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(second.header("retry-after"), "1");
  EXPECT_NE(second.body.find("Concurrency limit"), std::string::npos);

  // Client 1 goes away: the upstream sees the close, the lease is released.
  ::close(fd);
  EXPECT_TRUE(upstream_.waitForPeerClose(10000));
  bool freed = rgtest::waitFor(
      [&] { return post("/v1/messages", kRequest, {}, k.second).status == 200; }, 10000);
  EXPECT_TRUE(freed) << "the lease of the disconnected client was not released";
  // The cut stream still booked the input tokens it had seen.
  ASSERT_EQ(gw_->stop(SIGTERM), 0);
  auto store = openStoreForCheck();
  ASSERT_NE(store, nullptr);
  auto total = store->usage().keyTotal(k.first);
  ASSERT_TRUE(total);
  EXPECT_GE(total->inputTokens, 3);
}

// ---- upstream faults
// -----------------------------------------------------------------------------

TEST_P(E2E, UpstreamErrorsPassThroughUnchanged) {
  for (int status : {429, 529, 500, 401}) {
    upstream_.enqueue(rgtest::FakeAnthropic::error(status));
  }
  // With cooldowns off, the only account stays schedulable and each error reaches the client as
  // it came (with cooldowns on, the request after a 529 would get the gateway's 503 instead;
  // scheduler_e2e_test covers that).
  Options o;
  o.extraConfig =  // keys of the scheduler section
      "  overloaded_cooldown_ms: 0\n  transient_cooldown_ms: 0\n  auth_cooldown_ms: 0\n";
  startGateway(o);
  if (HasFailure()) {
    return;
  }
  for (int status : {429, 529, 500, 401}) {
    auto expected = rgtest::FakeAnthropic::error(status);
    auto r = post("/v1/messages", kRequest);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.body, expected.body);
    for (const auto& h : expected.headers) {
      if (strcasecmp(h.first.c_str(), "content-length") != 0) {
        EXPECT_EQ(r.header(h.first), h.second) << h.first;
      }
    }
  }
}

TEST_P(E2E, ConnectFailureIs502) {
  int port;  // an address nobody listens on
  {
    rgtest::FakeAnthropic tmp;
    tmp.start();
    port = tmp.port();
    tmp.stop();
  }
  Options o;
  o.baseUrlOverride = "http://127.0.0.1:" + std::to_string(port);
  startGateway(o);
  if (HasFailure()) {
    return;
  }
  auto r = post("/v1/messages", kRequest);
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("\"type\":\"error\""), std::string::npos);
}

TEST_P(E2E, SlowUpstreamIs504) {
  rgtest::FakeAnthropic::Script slow;
  slow.firstByteDelayMs = 5000;
  upstream_.enqueue(slow);
  Options t;
  t.upstreamTimeoutMs = 300;
  startGateway(t);
  if (HasFailure()) {
    return;
  }
  auto timed = post("/v1/messages", kRequest);
  EXPECT_EQ(timed.status, 504);
  EXPECT_NE(timed.body.find("timeout_error"), std::string::npos);
}

TEST_P(E2E, UpstreamDropMidStreamCutsTheClient) {
  rgtest::FakeAnthropic::Script s;
  s.sseChunks = rgtest::FakeAnthropic::sseMessage("claude-sonnet-4-5-20250929", "abc", 4, 2, 0, 0);
  s.dropAfterChunks = 2;
  upstream_.enqueue(s);
  startGateway();
  if (HasFailure()) {
    return;
  }
  auto r = post("/v1/messages", kStreamRequest);
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.ok) << "a cut upstream stream must not look complete to the client";
  EXPECT_EQ(r.body, s.sseChunks[0] + s.sseChunks[1]);
}

// ---- host endpoints, shutdown, durability
// --------------------------------------------------------

TEST_P(E2E, HealthReadyMetricsAndRequestIds) {
  startGateway();
  if (HasFailure()) {
    return;
  }
  auto h = rgtest::httpRequest(gw_->port(), "GET", "/health", {}, "");
  EXPECT_EQ(h.status, 200);
  EXPECT_NE(h.body.find("\"status\":\"ok\""), std::string::npos);
  EXPECT_NE(h.body.find("\"version\""), std::string::npos);
  EXPECT_NE(h.body.find("\"uptime_seconds\""), std::string::npos);
  EXPECT_FALSE(h.header("x-request-id").empty());
  auto ready = rgtest::httpRequest(gw_->port(), "GET", "/ready", {}, "");
  EXPECT_EQ(ready.status, 200);
  EXPECT_NE(ready.body.find("\"claude\""), std::string::npos);
  EXPECT_NE(ready.body.find(GetParam()), std::string::npos);
  auto nf = rgtest::httpRequest(gw_->port(), "GET", "/nope", {}, "");
  EXPECT_EQ(nf.status, 404);
  EXPECT_NE(nf.body.find("not_found_error"), std::string::npos);
  auto models =
      rgtest::httpRequest(gw_->port(), "GET", "/v1/models", {{"x-api-key", gatewayKey_}}, "");
  EXPECT_EQ(models.status, 200);
  EXPECT_NE(models.body.find("\"data\""), std::string::npos);
  auto me = rgtest::httpRequest(gw_->port(), "GET", "/api/v1/me", {{"x-api-key", gatewayKey_}}, "");
  EXPECT_EQ(me.status, 200);
  EXPECT_NE(me.body.find("user_" + keyId_), std::string::npos);
  auto m = rgtest::httpRequest(gw_->port(), "GET", "/metrics", {}, "");
  metricsText_ = m.body;
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE relaygate_requests_total counter"), std::string::npos);
  EXPECT_NE(m.body.find("relaygate_requests_total{route=\"/health\",status=\"200\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("relaygate_upstream_latency_seconds"), std::string::npos);
  EXPECT_NE(m.body.find("relaygate_active_streams"), std::string::npos);
  // One access-log line per request, with the key id and never the key.
  ASSERT_TRUE(rgtest::waitFor(
      [&] {
        return gw_->stderrText().find("path=/api/v1/me status=200 key=" + keyId_) !=
               std::string::npos;
      },
      5000))
      << gw_->stderrText();
}

TEST_P(E2E, SigtermDrainsAnOpenStream) {
  rgtest::FakeAnthropic::Script held;
  auto chunks =
      rgtest::FakeAnthropic::sseMessage("claude-sonnet-4-5-20250929", "drain", 2, 1, 0, 0);
  held.sseChunks = {chunks[0]};
  held.holdOpenAfterChunks = true;
  held.afterRelease = std::vector<std::string>(chunks.begin() + 1, chunks.end());
  upstream_.enqueue(held);
  startGateway();
  if (HasFailure()) {
    return;
  }
  HttpResult result;
  std::thread client([&] { result = post("/v1/messages", kStreamRequest); });
  ASSERT_TRUE(upstream_.waitForRequests(1, 10000));
  ::kill(gw_->pid(), SIGTERM);
  // New connections are refused while draining ...
  ASSERT_TRUE(rgtest::waitFor(
      [&] { return !rgtest::httpRequest(gw_->port(), "GET", "/health", {}, "", 500).ok; }, 5000));
  // ... and the open stream completes.
  upstream_.release();
  client.join();
  EXPECT_TRUE(result.ok) << result.error;
  std::string all;
  for (const auto& c : chunks) {
    all += c;
  }
  EXPECT_EQ(result.body, all);
  EXPECT_EQ(gw_->stop(SIGTERM, 15000), 0);
}

TEST_P(E2E, KeysAccountsAndUsageSurviveKill9) {
  upstream_.setDefault(rgtest::FakeAnthropic::Script{});
  startGateway();
  if (HasFailure()) {
    return;
  }
  ASSERT_EQ(post("/v1/messages", kRequest).status, 200);
  gw_->kill9();
  launch();
  if (HasFailure()) {
    return;
  }
  auto again = post("/v1/messages", kRequest);
  EXPECT_EQ(again.status, 200) << again.body;
  ASSERT_EQ(gw_->stop(SIGTERM), 0);
  auto store = openStoreForCheck();
  ASSERT_NE(store, nullptr);
  auto total = store->usage().keyTotal(keyId_);
  ASSERT_TRUE(total);
  EXPECT_EQ(total->requests, 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, E2E, ::testing::Values("embedded", "redis"),
                         [](const auto& paramInfo) { return paramInfo.param; });

}  // namespace

namespace {

// ---- HTTP framing and connection hygiene (one backend is enough: no storage involved) -----------

class Http : public E2E {};

bool hasConnectionClose(std::string raw) {
  for (char& ch : raw) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return raw.find("\r\nconnection: close\r\n") != std::string::npos;
}

TEST_P(Http, UnreadBodiesCloseTheConnectionInsteadOfBeingParsedAsRequests) {
  startGateway();
  if (HasFailure()) {
    return;
  }
  // A body nobody reads (unknown route) followed by a pipelined request on the same connection:
  // the body must not be taken for a request, and the pipelined request is not served.
  std::string body = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string raw = rgtest::rawExchange(
      gw_->port(),
      "POST /v1/nope HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body + "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << raw;
  EXPECT_TRUE(hasConnectionClose(raw)) << raw;
  EXPECT_EQ(raw.find("\"status\":\"ok\""), std::string::npos) << "smuggled request served";
  EXPECT_EQ(raw.find("HTTP/1.1", 10), std::string::npos) << "a second response was sent";

  // An unauthenticated client declaring a huge body gets its 401 before sending a byte of it.
  std::string r401 = rgtest::rawExchange(
      gw_->port(), "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
      5000);
  EXPECT_EQ(r401.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << r401;
  EXPECT_TRUE(hasConnectionClose(r401)) << r401;

  // Over the body limit: 413 from the declared length alone.
  std::string r413 =
      rgtest::rawExchange(gw_->port(),
                          "POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + gatewayKey_ +
                              "\r\nContent-Length: 999999999999\r\n\r\n",
                          5000);
  EXPECT_EQ(r413.rfind("HTTP/1.1 413 ", 0), 0u) << r413;

  // A body shorter than declared: 400, connection closed, nothing sent upstream.
  size_t before = upstream_.requestCount();
  std::string shortBody =
      rgtest::rawExchange(gw_->port(),
                          "POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + gatewayKey_ +
                              "\r\nContent-Length: 100\r\n\r\n{\"model\":",
                          1500);
  EXPECT_EQ(upstream_.requestCount(), before);
}

TEST_P(Http, Http10ClientsGetAnUnchunkedStream) {
  auto chunks =
      rgtest::FakeAnthropic::sseMessage("claude-sonnet-4-5-20250929", "old client", 3, 2, 0, 0);
  rgtest::FakeAnthropic::Script s;
  s.sseChunks = chunks;
  upstream_.enqueue(s);
  startGateway();
  if (HasFailure()) {
    return;
  }
  std::string raw = rgtest::rawExchange(
      gw_->port(), "POST /v1/messages HTTP/1.0\r\nx-api-key: " + gatewayKey_ +
                       "\r\ncontent-type: application/json\r\nContent-Length: " +
                       std::to_string(kStreamRequest.size()) + "\r\n\r\n" + kStreamRequest);
  size_t he = raw.find("\r\n\r\n");
  ASSERT_NE(he, std::string::npos) << raw;
  std::string head = raw.substr(0, he);
  EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
  std::string all;
  for (const auto& c : chunks) {
    all += c;
  }
  EXPECT_EQ(raw.substr(he + 4), all);
}

TEST_P(Http, DrainTimeoutCutsStreamsThatDoNotEnd) {
  rgtest::FakeAnthropic::Script held;
  held.sseChunks = {
      rgtest::FakeAnthropic::sseMessage("claude-sonnet-4-5-20250929", "x", 1, 1, 0, 0)[0]};
  held.holdOpenAfterChunks = true;
  upstream_.enqueue(held);
  Options o;
  o.drainTimeoutMs = 300;
  startGateway(o);
  if (HasFailure()) {
    return;
  }
  HttpResult result;
  std::thread client([&] { result = post("/v1/messages", kStreamRequest); });
  ASSERT_TRUE(upstream_.waitForRequests(1, 10000));
  auto t0 = std::chrono::steady_clock::now();
  int code = gw_->stop(SIGTERM, 20000);
  auto took = std::chrono::steady_clock::now() - t0;
  client.join();
  EXPECT_EQ(code, 0);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::seconds>(took).count(), 10)
      << "SIGTERM did not honour drain_timeout_ms";
  EXPECT_FALSE(result.ok) << "a cut stream must look truncated";
  EXPECT_TRUE(upstream_.waitForPeerClose(5000));
  gw_.reset();
}

INSTANTIATE_TEST_SUITE_P(Embedded, Http, ::testing::Values("embedded"),
                         [](const auto& paramInfo) { return paramInfo.param; });

}  // namespace
