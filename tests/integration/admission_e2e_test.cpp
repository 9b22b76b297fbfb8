// End-to-end admission and accounting (issue 4): the real relaygate binary with one or two
// claude-console accounts on a fake Anthropic upstream whose usage the test controls, on both
// storage backends (two gateway processes sharing one Redis): per-key request windows and cost
// limits are never overshot by a burst, usage is booked exactly once (failover, cut streams),
// the 402 / 429 refusal bodies, the concurrency wait queue, and the client usage views.
//
// Prices come from a tiny price file of the test's own: every token of the test models costs
// exactly 1 micro-dollar, so the expected figures below are computed by hand. A request body
// from body() has max_tokens 100 and an input estimate of 8 tokens (see body()), so its worst
// case is ~108 micro-USD, while the fake upstream answers 10 input + 40 output = 50 micro-USD.
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include "fakes/fake_anthropic.h"
#include "fakes/gateway_process.h"
#include "fakes/store_backends.h"
#include "fakes/support.h"
#include "storage/store.h"

namespace {

using rgtest::FakeAnthropic;
using rgtest::GatewayProcess;
using rgtest::HttpResult;

const std::string kBin = RG_TEST_RELAYGATE_BIN;
const std::string kPluginDir = RG_TEST_PLUGIN_DIR;
const std::string kMasterKey = "admission-master-key-0123456789abcdef";
const std::string kKeyA = "sk-ant-api03-ADMIT-A-0123456789abcdefghijkl";
const std::string kKeyB = "sk-ant-api03-ADMIT-B-0123456789abcdefghijkl";
const std::string kClaudeModel = "claude-e2e-1";  // Claude family (weekly limit applies)
const std::string kOtherModel = "gpt-e2e-1";      // not Claude family
// 1e-6 USD per token of every kind: cost in micro-USD == tokens.
const char* const kPrices = R"({
  "claude-e2e-1": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6,
                   "litellm_provider": "anthropic", "mode": "chat"},
  "gpt-e2e-1": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6,
                "litellm_provider": "openai", "mode": "chat"}
})";
constexpr int64_t kUpstreamInput = 10;
constexpr int64_t kUpstreamOutput = 40;
constexpr int64_t kPerRequestMicro = kUpstreamInput + kUpstreamOutput;  // at rate 1

// A Messages body whose text is always 17 characters: the Claude plugin's input estimate counts
// the characters of the member names and string values under "messages" ("role" 4 + "user" 4 +
// "content" 7 + 17 = 32 -> 8 tokens). The arithmetic of the tests holds for any estimate
// between 101 and 150 micro-USD (max_tokens 100 + input estimate 1..50).
std::string body(const std::string& model = kClaudeModel, bool stream = false) {
  static std::atomic<int> n{0};
  char text[32];
  std::snprintf(text, sizeof text, "e2e request %05d", ++n % 100000);
  return R"({"model":")" + model + R"(","max_tokens":100)" + (stream ? R"(,"stream":true)" : "") +
         R"(,"messages":[{"role":"user","content":")" + text + R"("}]})";
}

Poco::JSON::Object::Ptr parseObject(const std::string& json) {
  try {
    Poco::JSON::Parser p;
    return p.parse(json).extract<Poco::JSON::Object::Ptr>();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a JSON object (" << e.what() << "): " << json;
    return new Poco::JSON::Object;
  }
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// An ISO 8601 UTC instant as the gateway writes it ("2026-03-10T16:00:00Z" / "...00.000Z").
bool looksIso(const std::string& s) {
  return s.size() >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
         s.back() == 'Z';
}

// A client connection the test closes itself while its request waits in the gateway.
class RawClient {
 public:
  RawClient(int port, const std::string& request) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port;
      return;
    }
    size_t off = 0;
    while (off < request.size()) {
      ssize_t n = ::send(fd_, request.data() + off, request.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        ADD_FAILURE() << "send failed";
        return;
      }
      off += static_cast<size_t>(n);
    }
  }
  ~RawClient() { close(); }
  void close() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

struct GatewayKey {
  std::string plain;
  std::string id;
};

class AdmissionE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(upstream_.start());
    okScript_.body =
        FakeAnthropic::jsonMessage(kClaudeModel, "ok", kUpstreamInput, kUpstreamOutput);
    upstream_.setDefault(okScript_);
  }

  void TearDown() override {
    std::vector<std::string> secrets = {kKeyA, kKeyB, kMasterKey};
    for (const auto& k : keys_) {
      secrets.push_back(k.plain);
    }
    for (auto& gw : gws_) {
      if (gw && gw->running()) {
        rgtest::expectLeasesReleasedAndNoSecrets(*gw, secrets, nullptr, 10000, 15000);
      }
    }
  }

  bool redis() const { return GetParam() == "redis"; }

  void writeConfig(const std::string& extra = "") {
    std::string prices = dir_.file("prices.json");
    rgtest::writeFile(prices, kPrices);
    yaml_ = rgtest::gatewayStorageYaml(GetParam(), dir_, "adm");
    yaml_.masterKey = kMasterKey;
    yaml_.pluginDir = kPluginDir;
    yaml_.workerThreads = 256;
    yaml_.redisPoolSize = 32;
    yaml_.extra = "pricing:\n  file: " + prices + "\n" + extra;
    config_ = dir_.file("relaygate.yaml");
    rgtest::writeFile(config_, rgtest::gatewayConfigYaml(yaml_));
  }

  rgtest::CommandResult cli(std::vector<std::string> args) {
    args.insert(args.begin() + 2, {"--config", config_});
    return rgtest::runCommand(kBin, args);
  }

  std::string addAccount(const std::string& name, const std::string& key, int priority) {
    auto r = cli({"accounts", "add", "--type", "claude-console", "--name", name, "--base-url",
                  upstream_.baseUrl(), "--api-key", key, "--priority", std::to_string(priority)});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    std::string id = r.lastLine();
    EXPECT_EQ(id.size(), 36u) << r.out;
    return id;
  }

  // `keys create` prints the record ("id:   <uuid>" first) and the plain key on its last line.
  GatewayKey createKey(const std::string& name, std::vector<std::string> flags) {
    std::vector<std::string> args = {"keys", "create", "--name", name};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = cli(args);
    EXPECT_EQ(r.exitCode, 0) << r.err << r.out;
    GatewayKey k;
    k.plain = r.lastLine();
    size_t p = r.out.find("id:");
    if (p != std::string::npos) {
      size_t b = r.out.find_first_not_of(' ', p + 3);
      k.id = r.out.substr(b, r.out.find('\n', b) - b);
    }
    EXPECT_EQ(k.id.size(), 36u) << r.out;
    keys_.push_back(k);
    return k;
  }

  GatewayProcess& launch() {
    std::string err;
    gws_.push_back(GatewayProcess::start(kBin, config_, dir_.path(), {}, &err));
    EXPECT_NE(gws_.back(), nullptr) << err;
    return *gws_.back();
  }

  int port(size_t i = 0) const { return gws_.at(i)->port(); }

  HttpResult post(const GatewayKey& k, const std::string& b, int gwPort = 0,
                  int timeoutMs = 30000) {
    return rgtest::httpRequest(gwPort == 0 ? port() : gwPort, "POST", "/api/v1/messages",
                               {{"x-api-key", k.plain},
                                {"content-type", "application/json"},
                                {"anthropic-version", "2023-06-01"}},
                               b, timeoutMs);
  }

  HttpResult get(const std::string& path, const std::string& plainKey) {
    std::vector<std::pair<std::string, std::string>> h;
    if (!plainKey.empty()) {
      h.emplace_back("x-api-key", plainKey);
    }
    return rgtest::httpRequest(port(), "GET", path, h, "");
  }

  std::string metrics(size_t i = 0) {
    return rgtest::httpRequest(port(i), "GET", "/metrics", {}, "").body;
  }

  // Every reservation of every instance is settled or released: the usage is booked (settle
  // books together with dropping the reservation, after the client already has its answer).
  void waitSettled() {
    for (size_t i = 0; i < gws_.size(); ++i) {
      std::string m;
      EXPECT_TRUE(rgtest::waitFor(
          [&] {
            m = metrics(i);
            return rgtest::metricValue(m, "relaygate_leases_held") == 0;
          },
          10000))
          << m;
    }
  }

  // A fresh handle on the gateway's storage (the embedded journal is re-read on open).
  rg::StorePtr openStore() { return rgtest::openGatewayStore(yaml_); }

  // The usage records of key `keyId`, newest first (at most 10).
  std::vector<rg::UsageEvent> recentRecords(const std::string& keyId) {
    auto store = openStore();
    if (!store) {
      return {};
    }
    auto r = store->usage().recent(keyId, 10);
    EXPECT_TRUE(r.isOk()) << r.status().message();
    return r.isOk() ? r.value() : std::vector<rg::UsageEvent>{};
  }

  rg::TokenCounts keyTotal(const std::string& keyId) {
    auto store = openStore();
    if (!store) {
      return {};
    }
    auto t = store->usage().keyTotal(keyId);
    EXPECT_TRUE(t.isOk()) << t.status().message();
    return t.isOk() ? t.value() : rg::TokenCounts{};
  }

  struct Tally {
    std::atomic<int> ok{0};
    std::atomic<int> refused{0};
    std::atomic<int> other{0};
    std::atomic<int> noRetryAfter{0};
    std::atomic<int> wrongCode{0};
    std::atomic<int> okAt[2] = {{0}, {0}};  // 200s per instance
    std::string lastOther;
  };

  // 200 requests of key `k` from 40 client threads at once, round robin over the instances.
  // `refusal` is the expected refusal status, `code` a text every refusal body must contain.
  void burst(const GatewayKey& k, int refusal, const std::string& code, Tally& t) {
    std::vector<std::thread> ts;
    std::atomic<bool> go{false};
    std::mutex mu;
    for (int th = 0; th < 40; ++th) {
      ts.emplace_back([&, th] {
        while (!go.load()) {
          std::this_thread::yield();
        }
        for (int i = 0; i < 5; ++i) {
          int gwPort = port(static_cast<size_t>(th * 5 + i) % gws_.size());
          HttpResult r = post(k, body(), gwPort);
          if (r.status == 200) {
            ++t.ok;
            ++t.okAt[static_cast<size_t>(th * 5 + i) % gws_.size()];
          } else if (r.status == refusal) {
            ++t.refused;
            if (r.header("Retry-After").empty() && refusal == 429) {
              ++t.noRetryAfter;
            }
            if (!contains(r.body, code)) {
              ++t.wrongCode;
              std::lock_guard<std::mutex> lock(mu);
              t.lastOther = r.body;
            }
          } else {
            ++t.other;
            std::lock_guard<std::mutex> lock(mu);
            t.lastOther = std::to_string(r.status) + " " + r.body + " " + r.error;
          }
        }
      });
    }
    go = true;
    for (auto& th : ts) {
      th.join();
    }
  }

  void startGateways() {
    addAccount("a", kKeyA, 10);
    launch();
    if (redis()) {
      launch();  // a second instance on the same Redis: limits are shared, not per process
    }
  }

  rgtest::TempDir dir_;
  FakeAnthropic upstream_;
  FakeAnthropic::Script okScript_;
  std::vector<std::unique_ptr<GatewayProcess>> gws_;
  std::vector<GatewayKey> keys_;
  rgtest::GatewayYaml yaml_;
  std::string config_;
};

// ---- 1 / 2: no overshoot, across instances ------------------------------------------------------

TEST_P(AdmissionE2E, RequestWindowAdmitsExactlyItsLimitAcrossInstances) {
  writeConfig();
  GatewayKey k = createKey("window", {"--rate-window-min", "60", "--rate-requests", "50"});
  startGateways();
  Tally t;
  burst(k, 429, "rate_limit_error", t);
  EXPECT_EQ(t.other.load(), 0) << t.lastOther;
  EXPECT_EQ(t.ok.load(), 50);
  EXPECT_EQ(t.refused.load(), 150);
  EXPECT_EQ(t.noRetryAfter.load(), 0);
  EXPECT_EQ(t.wrongCode.load(), 0) << t.lastOther;
  EXPECT_EQ(upstream_.requestCount(), 50u);
  if (gws_.size() == 2) {
    EXPECT_GT(t.okAt[0].load(), 0);  // both instances admitted some: the window is shared
    EXPECT_GT(t.okAt[1].load(), 0);
  }
  waitSettled();
  rg::TokenCounts total = keyTotal(k.id);
  EXPECT_EQ(total.requests, 50);
  EXPECT_EQ(total.inputTokens, 50 * kUpstreamInput);
  EXPECT_EQ(total.outputTokens, 50 * kUpstreamOutput);
  EXPECT_EQ(total.billedMicroUsd, 50 * kPerRequestMicro);
}

// Worst case ~108 micro-USD, real cost 50: at most 9 run at once under a $0.001 limit (their
// reservations count), and once the burst is over the key fills up to exactly 18 requests
// (900 booked + 108 > 1000).
TEST_P(AdmissionE2E, CostLimitsAreNeverOvershotByABurst) {
  writeConfig();
  GatewayKey total = createKey("total", {"--total-cost", "0.001"});
  GatewayKey daily = createKey("daily", {"--daily-cost", "0.001"});
  startGateways();
  // Each request stays in flight upstream for a while, so the burst's admissions race against
  // live reservations rather than against booked usage only.
  upstream_.setLatencyFor(kKeyA, 100);
  for (const auto& [k, code] :
       {std::pair<GatewayKey, std::string>{total, "total_cost_limit_exceeded"},
        {daily, "daily_cost_limit_exceeded"}}) {
    SCOPED_TRACE(code);
    Tally t;
    burst(k, 402, "\"code\":\"" + code + "\"", t);
    EXPECT_EQ(t.other.load(), 0) << t.lastOther;
    EXPECT_EQ(t.wrongCode.load(), 0) << t.lastOther;
    EXPECT_EQ(t.ok + t.refused, 200);
    // With nothing booked yet, floor(1000 / 108) = 9 reservations always fit.
    EXPECT_GE(t.ok.load(), 9);
    EXPECT_LE(t.ok.load(), 18);
    // Never more worst cases in flight than fit: floor(1000 / 108) = 9.
    EXPECT_LE(upstream_.statsFor(kKeyA).maxAwaiting, 9);
    EXPECT_GE(upstream_.statsFor(kKeyA).maxAwaiting, 2);
    waitSettled();
    rg::TokenCounts booked = keyTotal(k.id);
    EXPECT_EQ(booked.requests, t.ok.load());
    EXPECT_LE(booked.billedMicroUsd, 1000);
    // Fill up one request at a time on alternating instances until refused.
    int ok = t.ok.load();
    HttpResult last;
    for (int i = 0; i < 30; ++i) {
      last = post(k, body(), port(static_cast<size_t>(i) % gws_.size()));
      if (last.status != 200) {
        break;
      }
      ++ok;
      waitSettled();
    }
    EXPECT_EQ(last.status, 402) << last.body;
    EXPECT_TRUE(contains(last.body, "\"code\":\"" + code + "\"")) << last.body;
    EXPECT_TRUE(contains(last.body, "\"current_cost\":0.000900")) << last.body;
    EXPECT_TRUE(contains(last.body, "\"cost_limit\":0.001000")) << last.body;
    EXPECT_EQ(ok, 18);
    waitSettled();
    booked = keyTotal(k.id);
    EXPECT_EQ(booked.requests, 18);
    EXPECT_EQ(booked.billedMicroUsd, 18 * kPerRequestMicro);
    EXPECT_LE(booked.billedMicroUsd, 1000);
  }
}

// ---- 3: booked exactly once
// -----------------------------------------------------------------------

TEST_P(AdmissionE2E, FailoverBooksOneRecord) {
  writeConfig();
  GatewayKey k = createKey("failover", {"--concurrency", "5", "--total-cost", "10"});
  std::string idA = addAccount("a", kKeyA, 10);
  std::string idB = addAccount("b", kKeyB, 20);
  launch();
  upstream_.setDefaultFor(kKeyA, FakeAnthropic::error(529, "Overloaded"));
  HttpResult r = post(k, body());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_.statsFor(kKeyA).requests, 1u);
  EXPECT_EQ(upstream_.statsFor(kKeyB).requests, 1u);
  waitSettled();
  std::vector<rg::UsageEvent> recent = recentRecords(k.id);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent.front().accountId, idB);
  EXPECT_EQ(recent.front().counts.inputTokens, kUpstreamInput);
  EXPECT_EQ(recent.front().counts.outputTokens, kUpstreamOutput);
  rg::TokenCounts total = keyTotal(k.id);
  EXPECT_EQ(total.requests, 1);
  EXPECT_EQ(total.billedMicroUsd, kPerRequestMicro);
  auto store = openStore();
  ASSERT_NE(store, nullptr);
  auto a = store->usage().accountTotal(idA);
  auto b = store->usage().accountTotal(idB);
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_EQ(a->requests, 0);
  EXPECT_EQ(b->requests, 1);
}

TEST_P(AdmissionE2E, CutStreamBooksWhatWasProduced) {
  writeConfig();
  GatewayKey k = createKey("cut", {"--concurrency", "5", "--total-cost", "10"});
  addAccount("a", kKeyA, 10);
  launch();
  // message_start (input 100, output 1), content_block_start, ping, then one delta per
  // 8-character word; the connection drops after the 4th delta, before any message_delta.
  FakeAnthropic::Script s;
  s.sseChunks = FakeAnthropic::sseMessage(
      kClaudeModel, "abcdefg hijklmn opqrstu vwxyzab cdefghi jklmnop", 100, 60);
  s.dropAfterChunks = 7;
  upstream_.enqueue(s);
  HttpResult r = post(k, body(kClaudeModel, /*stream=*/true));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(contains(r.body, "message_start")) << r.body;
  EXPECT_FALSE(contains(r.body, "message_stop")) << r.body;
  waitSettled();
  std::vector<rg::UsageEvent> recent = recentRecords(k.id);
  ASSERT_EQ(recent.size(), 1u);
  const rg::TokenCounts& c = recent.front().counts;
  EXPECT_EQ(c.requests, 1);
  EXPECT_EQ(c.inputTokens, 100);
  // Counted from the 4 deltas seen (32 characters ~ 8 tokens): more than message_start's 1,
  // fewer than the 60 the full message would have reported.
  EXPECT_GT(c.outputTokens, 1);
  EXPECT_LT(c.outputTokens, 60);
  EXPECT_EQ(c.billedMicroUsd, c.inputTokens + c.outputTokens);
  EXPECT_TRUE(recent.front().stream);
  EXPECT_EQ(keyTotal(k.id).requests, 1);
}

// ---- 4: refusal bodies
// ----------------------------------------------------------------------------

// Two requests book 100 micro-USD; the third may cost up to ~108 and 100 + 108 > 200.
TEST_P(AdmissionE2E, CostRefusalsAre402WithCodeAndFigures) {
  writeConfig();
  GatewayKey daily = createKey("daily", {"--daily-cost", "0.0002"});
  GatewayKey total = createKey("total", {"--total-cost", "0.0002"});
  GatewayKey weekly = createKey(
      "weekly", {"--weekly-cost", "0.0002", "--weekly-reset-day", "1", "--weekly-reset-hour", "0"});
  GatewayKey noMax = createKey("nomax", {"--total-cost", "0.004"});
  addAccount("a", kKeyA, 10);
  launch();
  // Without max_tokens the worst case assumes limits.default_max_output_tokens (4096): 8 + 4096
  // micro-USD does not fit $0.004, while the same prompt with max_tokens 100 does.
  std::string unbounded = body();
  unbounded.replace(unbounded.find(R"("max_tokens":100,)"), 17, "");
  HttpResult refused = post(noMax, unbounded);
  EXPECT_EQ(refused.status, 402) << refused.body;
  EXPECT_TRUE(contains(refused.body, "\"current_cost\":0.000000")) << refused.body;
  EXPECT_TRUE(contains(refused.body, "total_cost_limit_exceeded")) << refused.body;
  EXPECT_EQ(upstream_.requestCount(), 0u);
  EXPECT_EQ(post(noMax, body()).status, 200);
  waitSettled();
  EXPECT_EQ(upstream_.requestCount(), 1u);
  struct Case {
    GatewayKey key;
    std::string code;
    bool resetAt;
  };
  for (const Case& c : {Case{daily, "daily_cost_limit_exceeded", true},
                        Case{total, "total_cost_limit_exceeded", false},
                        Case{weekly, "weekly_opus_cost_limit_exceeded", true}}) {
    SCOPED_TRACE(c.code);
    for (int i = 0; i < 2; ++i) {
      HttpResult r = post(c.key, body());
      EXPECT_EQ(r.status, 200) << r.body;
      waitSettled();
    }
    size_t upstreamBefore = upstream_.requestCount();
    HttpResult r = post(c.key, body());
    EXPECT_EQ(r.status, 402) << r.body;
    EXPECT_EQ(upstream_.requestCount(), upstreamBefore);  // refused before any upstream call
    auto o = parseObject(r.body);
    EXPECT_EQ(o->optValue<std::string>("type", ""), "error") << r.body;
    auto err = o->getObject("error");
    ASSERT_FALSE(err.isNull()) << r.body;
    EXPECT_EQ(err->optValue<std::string>("type", ""), "insufficient_quota");
    EXPECT_EQ(err->optValue<std::string>("code", ""), c.code);
    EXPECT_FALSE(err->optValue<std::string>("message", "").empty());
    // Money as JSON numbers with six decimals.
    EXPECT_TRUE(contains(r.body, "\"current_cost\":0.000100")) << r.body;
    EXPECT_TRUE(contains(r.body, "\"cost_limit\":0.000200")) << r.body;
    if (c.resetAt) {
      std::string at = o->optValue<std::string>("reset_at", "");
      EXPECT_TRUE(looksIso(at)) << r.body;
    } else {
      EXPECT_FALSE(o->has("reset_at")) << r.body;
    }
  }
  // Weekly counts Claude-family models only: another model on the weekly-limited key passes,
  // and does not feed the weekly counter.
  for (int i = 0; i < 3; ++i) {
    HttpResult r = post(weekly, body(kOtherModel));
    EXPECT_EQ(r.status, 200) << r.body;
    waitSettled();
  }
  HttpResult r = post(weekly, body());
  EXPECT_EQ(r.status, 402) << r.body;
  EXPECT_TRUE(contains(r.body, "\"current_cost\":0.000100")) << r.body;
  rg::TokenCounts t = keyTotal(weekly.id);
  EXPECT_EQ(t.requests, 5);
  EXPECT_EQ(t.billedMicroUsd, 5 * kPerRequestMicro);
}

TEST_P(AdmissionE2E, WindowAndConcurrencyRefusalsAre429WithRetryAfter) {
  writeConfig();
  GatewayKey window = createKey(
      "window", {"--rate-window-min", "60", "--rate-requests", "2", "--deny-models", kOtherModel});
  GatewayKey conc = createKey("conc", {"--concurrency", "1"});
  GatewayKey tokens = createKey("tokens", {"--rate-window-min", "60", "--rate-tokens", "300"});
  GatewayKey cost = createKey("cost", {"--rate-window-min", "60", "--rate-cost", "0.0003"});
  addAccount("a", kKeyA, 10);
  launch();
  // Admission comes after authentication and the model check: neither a bad key nor a denied
  // model uses up the window.
  GatewayKey wrong{"cr_" + std::string(40, 'q'), ""};
  EXPECT_EQ(post(wrong, body()).status, 401);
  for (int i = 0; i < 3; ++i) {
    HttpResult denied = post(window, body(kOtherModel));
    EXPECT_EQ(denied.status, 403) << denied.body;
  }
  EXPECT_EQ(post(window, body()).status, 200);
  EXPECT_EQ(post(window, body()).status, 200);
  HttpResult r = post(window, body());
  EXPECT_EQ(r.status, 429) << r.body;
  int retry = std::atoi(r.header("Retry-After").c_str());
  EXPECT_GE(retry, 1) << r.header("Retry-After");
  EXPECT_LE(retry, 3600);
  auto o = parseObject(r.body);
  EXPECT_EQ(o->optValue<std::string>("type", ""), "error");
  auto err = o->getObject("error");
  ASSERT_FALSE(err.isNull()) << r.body;
  EXPECT_EQ(err->optValue<std::string>("type", ""), "rate_limit_error");
  EXPECT_FALSE(err->optValue<std::string>("message", "").empty());
  EXPECT_EQ(o->optValue<std::string>("limit", ""), "window_requests") << r.body;
  EXPECT_EQ(o->optValue<int>("current", -1), 2) << r.body;
  EXPECT_EQ(o->optValue<int>("limit_value", -1), 2) << r.body;
  EXPECT_TRUE(looksIso(o->optValue<std::string>("reset_at", ""))) << r.body;
  EXPECT_EQ(upstream_.requestCount(), 2u);
  EXPECT_TRUE(
      contains(metrics(), "relaygate_admission_refusals_total{limit=\"window_requests\"} 1"))
      << metrics();

  // Token and cost windows: each request reserves ~108 and books 50 (tokens, micro-USD), so
  // four fit under 300 (150 + 108 <= 300) and the fifth does not (200 + 108 > 300).
  struct WindowCase {
    GatewayKey key;
    std::string limit;
  };
  for (const WindowCase& c :
       {WindowCase{tokens, "window_tokens"}, WindowCase{cost, "window_cost"}}) {
    SCOPED_TRACE(c.limit);
    for (int i = 0; i < 4; ++i) {
      HttpResult ok = post(c.key, body());
      EXPECT_EQ(ok.status, 200) << ok.body;
      waitSettled();
    }
    r = post(c.key, body());
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_FALSE(r.header("Retry-After").empty());
    o = parseObject(r.body);
    EXPECT_EQ(o->optValue<std::string>("limit", ""), c.limit) << r.body;
    EXPECT_EQ(o->optValue<int>("current", -1), 200) << r.body;
    EXPECT_EQ(o->optValue<int>("limit_value", -1), 300) << r.body;
    EXPECT_TRUE(looksIso(o->optValue<std::string>("reset_at", ""))) << r.body;
  }

  // Concurrency 1: a second request while the first is held upstream is refused at once.
  FakeAnthropic::Script held = okScript_;
  held.gate = "hold";
  upstream_.enqueue(held);
  HttpResult first;
  std::thread t([&] { first = post(conc, body()); });
  EXPECT_TRUE(upstream_.waitForGateWaiters("hold", 1, 10000));
  r = post(conc, body());
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_FALSE(r.header("Retry-After").empty());
  o = parseObject(r.body);
  err = o->getObject("error");
  ASSERT_FALSE(err.isNull()) << r.body;
  EXPECT_EQ(err->optValue<std::string>("type", ""), "rate_limit_error");
  EXPECT_EQ(o->optValue<int>("current_concurrency", -1), 1) << r.body;
  EXPECT_EQ(o->optValue<int>("concurrency_limit", -1), 1) << r.body;
  upstream_.passGate("hold", 1);
  t.join();
  EXPECT_EQ(first.status, 200) << first.body;
  waitSettled();
  EXPECT_EQ(post(conc, body()).status, 200);  // the slot is free again
}

// A request whose own worst case exceeds a whole limit can never pass: it must not be told to
// retry (no Retry-After, no reset_at), and limits.reserve_output_tokens_cap lets it in.
TEST_P(AdmissionE2E, RequestsThatCanNeverFitAreNotToldToRetryAndTheOutputCapAdmitsThem) {
  writeConfig();
  // Worst case of body(): ~8 input + 100 output = ~108 tokens / micro-USD.
  GatewayKey tokens = createKey("tokens", {"--rate-window-min", "60", "--rate-tokens", "60"});
  GatewayKey daily = createKey("daily", {"--daily-cost", "0.00006"});
  addAccount("a", kKeyA, 10);
  launch();
  HttpResult r = post(tokens, body());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_TRUE(r.header("Retry-After").empty()) << r.header("Retry-After");
  auto o = parseObject(r.body);
  auto err = o->getObject("error");
  ASSERT_FALSE(err.isNull()) << r.body;
  EXPECT_EQ(err->optValue<std::string>("type", ""), "invalid_request_error");
  EXPECT_EQ(err->optValue<std::string>("code", ""), "request_exceeds_rate_limit");
  EXPECT_TRUE(contains(err->optValue<std::string>("message", ""), "lower max_tokens")) << r.body;
  EXPECT_GT(o->optValue<int>("request_estimate", 0), 60) << r.body;
  EXPECT_FALSE(o->has("reset_at")) << r.body;

  r = post(daily, body());
  EXPECT_EQ(r.status, 402) << r.body;
  o = parseObject(r.body);
  err = o->getObject("error");
  ASSERT_FALSE(err.isNull()) << r.body;
  EXPECT_EQ(err->optValue<std::string>("code", ""), "daily_cost_limit_exceeded");
  EXPECT_TRUE(contains(err->optValue<std::string>("message", ""), "lower max_tokens")) << r.body;
  EXPECT_FALSE(o->has("reset_at")) << r.body;  // tomorrow would not let it through either
  EXPECT_TRUE(contains(r.body, "\"request_estimate\":0.0001")) << r.body;
  EXPECT_EQ(upstream_.requestCount(), 0u);

  // Reserving at most 20 output tokens: ~28 fits both limits; the answer books 50.
  rgtest::expectLeasesReleasedAndNoSecrets(*gws_.back(), {kKeyA, kMasterKey});
  gws_.clear();
  writeConfig("limits:\n  reserve_output_tokens_cap: 20\n");
  launch();
  EXPECT_EQ(post(tokens, body()).status, 200);
  EXPECT_EQ(post(daily, body()).status, 200);
  waitSettled();
  EXPECT_EQ(keyTotal(daily.id).billedMicroUsd, kPerRequestMicro);
  // Now 50 of 60 are booked: the next worst case (~28) no longer fits, and this time waiting
  // (for tomorrow) would help, so reset_at is there.
  r = post(daily, body());
  EXPECT_EQ(r.status, 402) << r.body;
  EXPECT_TRUE(looksIso(parseObject(r.body)->optValue<std::string>("reset_at", ""))) << r.body;
}

// count_tokens is counted in the window but holds no concurrency slot while it runs.
TEST_P(AdmissionE2E, CountTokensTakesNoConcurrencySlot) {
  writeConfig();
  GatewayKey conc = createKey("conc", {"--concurrency", "1"});
  addAccount("a", kKeyA, 10);
  launch();
  FakeAnthropic::Script counted;
  counted.headers = {{"content-type", "application/json"}};
  counted.body = R"({"input_tokens":8})";
  counted.gate = "count";
  upstream_.enqueue(counted);
  HttpResult first;
  std::thread t([&] {
    first = rgtest::httpRequest(port(), "POST", "/api/v1/messages/count_tokens",
                                {{"x-api-key", conc.plain},
                                 {"content-type", "application/json"},
                                 {"anthropic-version", "2023-06-01"}},
                                body());
  });
  EXPECT_TRUE(upstream_.waitForGateWaiters("count", 1, 10000));
  HttpResult r = post(conc, body());  // the only slot is free: count_tokens does not hold it
  EXPECT_EQ(r.status, 200) << r.body;
  upstream_.passGate("count", 1);
  t.join();
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_TRUE(contains(first.body, "input_tokens")) << first.body;
  waitSettled();
}

// ---- 5: the concurrency wait queue ------------------------------------------------------------

TEST_P(AdmissionE2E, QueueWaitsForASlotRefusesWhenFullAndForgetsClientsThatLeave) {
  writeConfig("limits:\n  queue_enabled: true\n  queue_wait_ms: 3000\n  queue_max_per_key: 1\n");
  GatewayKey k = createKey("queued", {"--concurrency", "1"});
  addAccount("a", kKeyA, 10);
  launch();
  FakeAnthropic::Script held = okScript_;
  held.gate = "hold";
  auto waiting = [&] {
    return rgtest::metricValue(metrics(), "relaygate_admission_queue_waiting");
  };
  using Ms = std::chrono::milliseconds;
  auto since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0).count();
  };

  upstream_.enqueue(held);
  HttpResult first;
  std::thread t1([&] { first = post(k, body()); });
  ASSERT_TRUE(upstream_.waitForGateWaiters("hold", 1, 10000));

  // No slot within queue_wait_ms: 429 after waiting.
  auto t0 = std::chrono::steady_clock::now();
  HttpResult timedOut = post(k, body());
  EXPECT_EQ(timedOut.status, 429) << timedOut.body;
  EXPECT_GE(since(t0), 2900);
  EXPECT_FALSE(timedOut.header("Retry-After").empty());
  EXPECT_TRUE(contains(timedOut.body, "rate_limit_error")) << timedOut.body;

  // A second request waits; a third finds the queue (1 per key) full and is refused at once.
  HttpResult second;
  std::thread t2([&] { second = post(k, body()); });
  EXPECT_TRUE(rgtest::waitFor([&] { return waiting() == 1; }, 10000));
  t0 = std::chrono::steady_clock::now();
  HttpResult full = post(k, body());
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_LT(since(t0), 2000);
  EXPECT_FALSE(full.header("Retry-After").empty());
  // The first finishes; the waiting one takes its slot and succeeds.
  upstream_.passGate("hold", 1);
  t1.join();
  t2.join();
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(upstream_.requestCount(), 2u);

  // A queued client that hangs up frees its place: the next one can queue, and gets the slot.
  upstream_.enqueue(held);
  HttpResult third;
  std::thread t3([&] { third = post(k, body()); });
  ASSERT_TRUE(upstream_.waitForGateWaiters("hold", 1, 10000));
  std::string b = body();
  RawClient leaver(port(),
                   "POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: " + k.plain +
                       "\r\ncontent-type: application/json\r\nanthropic-version: "
                       "2023-06-01\r\nContent-Length: " +
                       std::to_string(b.size()) + "\r\n\r\n" + b);
  EXPECT_TRUE(rgtest::waitFor([&] { return waiting() == 1; }, 10000));
  leaver.close();
  EXPECT_TRUE(rgtest::waitFor([&] { return waiting() == 0; }, 2500));  // well before the 3 s
  HttpResult fourth;
  std::thread t4([&] { fourth = post(k, body()); });
  EXPECT_TRUE(rgtest::waitFor([&] { return waiting() == 1; }, 10000));
  upstream_.passGate("hold", 1);
  t3.join();
  t4.join();
  EXPECT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(fourth.status, 200) << fourth.body;
  EXPECT_EQ(upstream_.requestCount(), 4u);  // the leaver never reached the upstream
  waitSettled();
  std::string m = metrics();
  EXPECT_EQ(rgtest::metricValue(m, "relaygate_admission_queue_waiting"), 0) << m;
  EXPECT_EQ(rgtest::metricValue(m, "relaygate_admission_queue_rejects_total"), 2) << m;
  EXPECT_EQ(keyTotal(k.id).requests, 4);
}

// ---- 6: client usage views --------------------------------------------------------------------

TEST_P(AdmissionE2E, UsageViewsShowTheBookedFigures) {
  writeConfig();
  GatewayKey k = createKey(
      "views", {"--total-cost", "1", "--daily-cost", "0.5", "--rate", "2", "--concurrency", "3"});
  addAccount("a", kKeyA, 10);
  launch();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(post(k, body()).status, 200);
  }
  waitSettled();
  // 3 requests x (10 + 40) tokens; real cost 150 micro-USD, billed at key rate 2: 300.
  HttpResult info = get("/api/v1/key-info", k.plain);
  EXPECT_EQ(info.status, 200) << info.body;
  EXPECT_TRUE(contains(info.header("Content-Type"), "application/json"));
  auto o = parseObject(info.body);
  auto ki = o->getObject("keyInfo");
  ASSERT_FALSE(ki.isNull()) << info.body;
  EXPECT_EQ(ki->optValue<std::string>("id", ""), k.id);
  EXPECT_EQ(ki->optValue<std::string>("name", ""), "views");
  EXPECT_TRUE(ki->has("tokenLimit"));
  auto usage = ki->getObject("usage");
  ASSERT_FALSE(usage.isNull()) << info.body;
  for (const char* period : {"total", "daily", "monthly"}) {
    SCOPED_TRACE(period);
    auto p = usage->getObject(period);
    ASSERT_FALSE(p.isNull()) << info.body;
    EXPECT_EQ(p->optValue<int>("requests", -1), 3);
    EXPECT_EQ(p->optValue<int>("inputTokens", -1), 30);
    EXPECT_EQ(p->optValue<int>("outputTokens", -1), 120);
    EXPECT_EQ(p->optValue<int>("allTokens", -1), 150);
  }
  EXPECT_FALSE(usage->getObject("averages").isNull()) << info.body;
  auto recent = usage->getArray("recentRecords");
  ASSERT_FALSE(recent.isNull()) << info.body;
  EXPECT_EQ(recent->size(), 3u);
  EXPECT_TRUE(contains(info.body, "\"cost\":0.000300")) << info.body;
  EXPECT_TRUE(contains(info.body, "\"realCost\":0.000150")) << info.body;
  auto limits = ki->getObject("limits");
  ASSERT_FALSE(limits.isNull()) << info.body;
  auto totalCost = limits->getObject("totalCost");
  ASSERT_FALSE(totalCost.isNull()) << info.body;
  EXPECT_NEAR(totalCost->optValue<double>("current", -1), 0.0003, 1e-9);
  EXPECT_NEAR(totalCost->optValue<double>("limit", -1), 1.0, 1e-9);
  auto dailyCost = limits->getObject("dailyCost");
  ASSERT_FALSE(dailyCost.isNull()) << info.body;
  EXPECT_NEAR(dailyCost->optValue<double>("current", -1), 0.0003, 1e-9);
  EXPECT_TRUE(looksIso(o->optValue<std::string>("timestamp", ""))) << info.body;

  HttpResult u = get("/api/v1/usage", k.plain);
  EXPECT_EQ(u.status, 200) << u.body;
  o = parseObject(u.body);
  auto uu = o->getObject("usage");
  ASSERT_FALSE(uu.isNull()) << u.body;
  ASSERT_FALSE(uu->getObject("total").isNull()) << u.body;
  EXPECT_EQ(uu->getObject("total")->optValue<int>("requests", -1), 3);
  EXPECT_EQ(uu->getObject("total")->optValue<int>("allTokens", -1), 150);
  EXPECT_FALSE(o->getObject("limits").isNull()) << u.body;
  EXPECT_TRUE(looksIso(o->optValue<std::string>("timestamp", ""))) << u.body;

  HttpResult org = get("/v1/organizations/x/usage", k.plain);
  EXPECT_EQ(org.status, 200) << org.body;
  o = parseObject(org.body);
  EXPECT_EQ(o->optValue<std::string>("object", ""), "usage") << org.body;
  auto data = o->getArray("data");
  ASSERT_FALSE(data.isNull()) << org.body;
  ASSERT_EQ(data->size(), 1u) << org.body;
  auto entry = data->getObject(0);
  EXPECT_EQ(entry->optValue<std::string>("type", ""), "credit_balance");
  EXPECT_TRUE(contains(org.body, "\"credit_balance\":0.999700")) << org.body;

  for (const char* path : {"/api/v1/key-info", "/api/v1/usage", "/v1/organizations/x/usage"}) {
    SCOPED_TRACE(path);
    HttpResult none = get(path, "");
    EXPECT_EQ(none.status, 401) << none.body;
    HttpResult bad = get(path, "cr_" + std::string(40, 'z'));
    EXPECT_EQ(bad.status, 401) << bad.body;
    EXPECT_FALSE(contains(none.body, "\"usage\"")) << none.body;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, AdmissionE2E, ::testing::Values("embedded", "redis"),
                         [](const auto& paramInfo) { return paramInfo.param; });

}  // namespace
