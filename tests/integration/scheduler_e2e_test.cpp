// End-to-end scheduling: the real relaygate binary with three claude-console accounts on one fake
// Anthropic upstream (told apart by their credentials), on both storage backends: failover before
// the first byte, cooldowns and recovery, model-family limits, sticky conversations, per-account
// concurrency caps under 200 parallel requests with client disconnects (no lease left behind),
// client errors returned at once, and two gateway processes sharing one Redis.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fakes/fake_anthropic.h"
#include "fakes/gateway_process.h"
#include "fakes/store_backends.h"
#include "fakes/support.h"

namespace {

using rgtest::FakeAnthropic;
using rgtest::GatewayProcess;
using rgtest::HttpResult;

const std::string kBin = RG_TEST_RELAYGATE_BIN;
const std::string kPluginDir = RG_TEST_PLUGIN_DIR;
const std::string kMasterKey = "scheduler-master-key-0123456789abcdef";
const std::string kKeyA = "sk-ant-api03-ACCOUNT-A-0123456789abcdefghij";
const std::string kKeyB = "sk-ant-api03-ACCOUNT-B-0123456789abcdefghij";
const std::string kKeyC = "sk-ant-api03-ACCOUNT-C-0123456789abcdefghij";

// Every body has its own first message: the Claude plugin derives a conversation key from it
// when there is no session id, and equal keys would (rightly) stick to one account.
std::string body(const std::string& model, bool stream = false, const std::string& session = "") {
  static std::atomic<int> n{0};
  std::string text = "Hello " + std::to_string(++n);
  std::string meta = session.empty() ? ""
                                     : R"(,"metadata":{"user_id":"user_)" + std::string(64, 'a') +
                                           "_account__session_" + session + R"("})";
  return R"({"model":")" + model + R"(","max_tokens":16)" + (stream ? R"(,"stream":true)" : "") +
         meta + R"(,"messages":[{"role":"user","content":")" + text + R"("}]})";
}

class SchedulerE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_TRUE(upstream_.start()); }

  void TearDown() override {
    for (auto& gw : gws_) {
      if (gw && gw->running()) {
        rgtest::expectLeasesReleasedAndNoSecrets(
            *gw, {kKeyA, kKeyB, kKeyC, kMasterKey, gatewayKey_}, nullptr, 10000, 15000);
      }
    }
  }

  bool redis() const { return GetParam() == "redis"; }

  void writeConfig(const std::string& schedulerYaml) {
    rgtest::GatewayYaml y = rgtest::gatewayStorageYaml(GetParam(), dir_, "sch");
    prefix_ = y.keyPrefix;
    y.masterKey = kMasterKey;
    y.pluginDir = kPluginDir;
    y.workerThreads = 256;
    y.redisPoolSize = 32;
    y.extra = schedulerYaml;
    config_ = rgtest::writeGatewayConfig(dir_.path(), y);
  }

  rgtest::CommandResult cli(std::vector<std::string> args) {
    return rgtest::runCli(kBin, config_, std::move(args));
  }

  std::string addAccount(const std::string& name, const std::string& key, int priority,
                         const std::vector<std::string>& extra = {}) {
    return rgtest::addConsoleAccount(kBin, config_, name, upstream_.baseUrl(), key, priority,
                                     extra);
  }

  // Three accounts (A preferred), a key with a concurrency limit, one gateway.
  void startThree(const std::string& schedulerYaml = "", std::vector<std::string> extraA = {},
                  std::vector<std::string> extraB = {}, std::vector<std::string> extraC = {},
                  int prioA = 10, int prioB = 20, int prioC = 30) {
    writeConfig(schedulerYaml);
    idA_ = addAccount("a", kKeyA, prioA, extraA);
    idB_ = addAccount("b", kKeyB, prioB, extraB);
    idC_ = addAccount("c", kKeyC, prioC, extraC);
    auto k = cli({"keys", "create", "--name", "t", "--concurrency", "400"});
    ASSERT_EQ(k.exitCode, 0) << k.err;
    gatewayKey_ = k.lastLine();
    launch();
  }

  GatewayProcess& launch() {
    std::string err;
    gws_.push_back(GatewayProcess::start(kBin, config_, dir_.path(), {}, &err));
    EXPECT_NE(gws_.back(), nullptr) << err;
    return *gws_.back();
  }

  HttpResult post(const std::string& b, int port = 0, int timeoutMs = 30000) {
    return rgtest::httpRequest(port == 0 ? gws_.front()->port() : port, "POST", "/api/v1/messages",
                               {{"x-api-key", gatewayKey_},
                                {"content-type", "application/json"},
                                {"anthropic-version", "2023-06-01"}},
                               b, timeoutMs);
  }

  std::string metrics(int port = 0) {
    return rgtest::httpRequest(port == 0 ? gws_.front()->port() : port, "GET", "/metrics", {}, "")
        .body;
  }

  rgtest::TempDir dir_;
  FakeAnthropic upstream_;
  std::vector<std::unique_ptr<GatewayProcess>> gws_;
  std::string config_, prefix_, gatewayKey_, idA_, idB_, idC_;
};

TEST_P(SchedulerE2E, OverloadedAccountFailsOverCoolsDownAndRecovers) {
  startThree("  overloaded_cooldown_ms: 1500\n");
  upstream_.setDefaultFor(kKeyA, FakeAnthropic::error(529, "Overloaded"));
  // The client's one request succeeds on B although A (preferred) answered 529.
  HttpResult r = post(body("claude-sonnet-4-5"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_.statsFor(kKeyA).requests, 1u);
  EXPECT_EQ(upstream_.statsFor(kKeyB).requests, 1u);
  EXPECT_EQ(rgtest::metricValue(metrics(), "relaygate_failovers_total"), 1);
  // A cools down: the next requests go to B without touching A.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(post(body("claude-sonnet-4-5")).status, 200);
  }
  EXPECT_EQ(upstream_.statsFor(kKeyA).requests, 1u);
  // A is healthy again; once its cooldown ends it is preferred again, with nobody resetting it.
  upstream_.clearFor(kKeyA);
  EXPECT_TRUE(rgtest::waitFor(
      [&] {
        EXPECT_EQ(post(body("claude-sonnet-4-5")).status, 200);
        return upstream_.statsFor(kKeyA).requests >= 2;
      },
      10000));
  std::string m = metrics();
  EXPECT_NE(m.find("relaygate_account_cooldowns_total{class=\"overloaded\"} 1"), std::string::npos)
      << m;
  std::string logs;
  // The recovery is announced by the gateway's state refresh (every 100 ms here).
  EXPECT_TRUE(rgtest::waitFor(
      [&] {
        logs = gws_.front()->stdoutText() + gws_.front()->stderrText();
        return logs.find("event account.recovered account=" + idA_) != std::string::npos;
      },
      5000))
      << logs;
  EXPECT_NE(logs.find("event account.cooldown account=" + idA_), std::string::npos) << logs;
}

TEST_P(SchedulerE2E, StreamFailsOverBeforeItsFirstByte) {
  startThree();
  upstream_.enqueueFor(kKeyA, FakeAnthropic::error(500, "boom"));
  HttpResult r = post(body("claude-sonnet-4-5", /*stream=*/true));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("event: message_stop"), std::string::npos) << r.body;
  EXPECT_EQ(upstream_.statsFor(kKeyB).requests, 1u);
}

TEST_P(SchedulerE2E, RateLimitWithResetCoolsOnlyThatFamily) {
  startThree();
  int64_t reset = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count() +
                  3600;
  upstream_.enqueueFor(kKeyA, FakeAnthropic::rateLimited(reset, 3600));
  EXPECT_EQ(post(body("claude-opus-4-5")).status, 200);
  EXPECT_EQ(upstream_.statsFor(kKeyB).requests, 1u);
  // Opus stays away from A; sonnet and haiku still go to A (its preferred rank).
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(post(body("claude-opus-4-5")).status, 200);
  }
  EXPECT_EQ(upstream_.statsFor(kKeyA).requests, 1u);
  EXPECT_EQ(post(body("claude-sonnet-4-5")).status, 200);
  EXPECT_EQ(post(body("claude-haiku-4-5")).status, 200);
  auto reqs = upstream_.requestsFor(kKeyA);
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].model, "claude-sonnet-4-5");
  EXPECT_EQ(reqs[2].model, "claude-haiku-4-5");
  auto cds = cli({"accounts", "cooldowns"});
  EXPECT_EQ(cds.exitCode, 0) << cds.err;
  EXPECT_NE(cds.out.find("opus"), std::string::npos) << cds.out;
}

TEST_P(SchedulerE2E, RateLimitWithoutResetIsPassedThrough) {
  startThree();
  upstream_.enqueueFor(kKeyA, FakeAnthropic::error(429, "slow down"));
  HttpResult r = post(body("claude-sonnet-4-5"));
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.body.find("slow down"), std::string::npos);
  EXPECT_EQ(upstream_.statsFor(kKeyB).requests, 0u);
  // Not an account limit: A is still first.
  EXPECT_EQ(post(body("claude-sonnet-4-5")).status, 200);
  EXPECT_EQ(upstream_.statsFor(kKeyA).requests, 2u);
}

TEST_P(SchedulerE2E, ClientErrorsAreReturnedAtOnce) {
  startThree();
  upstream_.enqueueFor(kKeyA, FakeAnthropic::error(400, "messages: field required"));
  HttpResult r = post(body("claude-sonnet-4-5"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("messages: field required"), std::string::npos);
  EXPECT_EQ(upstream_.statsFor(kKeyB).requests, 0u);
  EXPECT_EQ(upstream_.statsFor(kKeyC).requests, 0u);
}

TEST_P(SchedulerE2E, AttemptsAreBoundedAndTheLastErrorIsReturned) {
  startThree("  max_attempts: 2\n");
  upstream_.setDefaultFor(kKeyA, FakeAnthropic::error(529, "A overloaded"));
  upstream_.setDefaultFor(kKeyB, FakeAnthropic::error(500, "B broken"));
  HttpResult r = post(body("claude-sonnet-4-5"));
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("B broken"), std::string::npos);
  EXPECT_EQ(upstream_.statsFor(kKeyC).requests, 0u);  // two attempts only
  // Both are cooling: C serves now.
  EXPECT_EQ(post(body("claude-sonnet-4-5")).status, 200);
  EXPECT_EQ(upstream_.statsFor(kKeyC).requests, 1u);
  // With C failing as well nothing is left: 503 naming why, never a 500 of the gateway.
  upstream_.setDefaultFor(kKeyC, FakeAnthropic::error(529, "C overloaded"));
  r = post(body("claude-sonnet-4-5"));
  EXPECT_EQ(r.status, 529);
  r = post(body("claude-sonnet-4-5"));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("cooling down"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("overloaded_error"), std::string::npos) << r.body;
}

TEST_P(SchedulerE2E, ConversationStaysOnOneAccount) {
  startThree("", {}, {}, {}, 50, 50, 50);
  std::string sess = "6f1c1a52-4f3e-4b53-9a5e-1f1d9b2f0a11";
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(post(body("claude-sonnet-4-5", false, sess)).status, 200);
  }
  int withRequests = 0;
  for (const auto& k : {kKeyA, kKeyB, kKeyC}) {
    size_t n = upstream_.statsFor(k).requests;
    EXPECT_TRUE(n == 0 || n == 5) << n;
    withRequests += n > 0 ? 1 : 0;
  }
  EXPECT_EQ(withRequests, 1);
  // Requests without a session rotate over all three (LRU within one priority tier).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(post(body("claude-sonnet-4-5")).status, 200);
  }
  for (const auto& k : {kKeyA, kKeyB, kKeyC}) {
    EXPECT_GE(upstream_.statsFor(k).requests, 1u);
  }
}

TEST_P(SchedulerE2E, UnsupportedModelIs503NamingIt) {
  startThree("", {"--models", "claude-opus-4-5"}, {"--models", "claude-opus-4-5"},
             {"--model-map", "claude-opus-4-5=claude-opus-4-5-20251101"});
  HttpResult r = post(body("claude-haiku-4-5"));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("supports model claude-haiku-4-5"), std::string::npos) << r.body;
  EXPECT_EQ(upstream_.requestCount(), 0u);
}

TEST_P(SchedulerE2E, ModelMappingRewritesTheUpstreamModel) {
  startThree("", {"--model-map", "claude-opus-4-5=claude-opus-4-5-20251101"});
  EXPECT_EQ(post(body("claude-opus-4-5")).status, 200);
  auto reqs = upstream_.requestsFor(kKeyA);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].model, "claude-opus-4-5-20251101");
}

TEST_P(SchedulerE2E, ParallelRequestsNeverExceedAccountCapsAndLeakNoLease) {
  startThree("", {"--concurrency", "2"}, {"--concurrency", "3"}, {"--concurrency", "5"});
  for (const auto& k : {kKeyA, kKeyB, kKeyC}) {
    upstream_.setLatencyFor(k, 30);
  }
  // 200 requests from 20 clients at once (10 over the accounts' total cap of 10), half of them
  // streamed; in the second half some clients hang up long before the upstream answers.
  auto wave = [&](bool disconnects, std::atomic<int>& ok, std::atomic<int>& busy,
                  std::atomic<int>& other, std::atomic<int>& cut) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 20; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < 5; ++i) {
          bool hangUp = disconnects && (t * 5 + i) % 3 == 1;
          HttpResult r = post(body("claude-sonnet-4-5", (i % 2) == 0), 0, hangUp ? 5 : 30000);
          if (hangUp) {
            ++cut;
          } else if (r.status == 200) {
            ++ok;
          } else if (r.status == 503) {
            ++busy;
          } else {
            ++other;
          }
        }
      });
    }
    for (auto& th : ts) {
      th.join();
    }
  };
  std::atomic<int> ok{0}, busy{0}, other{0}, cut{0};
  wave(false, ok, busy, other, cut);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GE(ok.load(), 10);
  EXPECT_EQ(ok + busy, 100);
  // No account ever had more requests waiting for their answer than its cap allows.
  EXPECT_LE(upstream_.statsFor(kKeyA).maxAwaiting, 2);
  EXPECT_LE(upstream_.statsFor(kKeyB).maxAwaiting, 3);
  EXPECT_LE(upstream_.statsFor(kKeyC).maxAwaiting, 5);
  EXPECT_GE(upstream_.statsFor(kKeyA).maxAwaiting, 1);
  // With clients hanging up, every lease still comes back (TearDown checks both lease gauges
  // reach 0), and the gateway answers the others.
  ok = 0;
  busy = 0;
  wave(true, ok, busy, other, cut);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(cut.load(), 0);
  EXPECT_EQ(ok + busy + cut, 100);
  EXPECT_TRUE(upstream_.waitForIdle(10000));
  auto after = post(body("claude-sonnet-4-5"));
  EXPECT_EQ(after.status, 200) << after.body;
}

// Two gateway processes on one Redis: a cooldown set by one is honoured by the other, the sticky
// mapping is shared, and stopping one leaves the other's state alone.
TEST(SchedulerTwoInstances, ShareCooldownsAndStickyMappings) {
  rgtest::TempDir dir;
  FakeAnthropic upstream;
  ASSERT_TRUE(upstream.start());
  std::string prefix = "two" + std::to_string(::getpid()) + ":";
  rgtest::GatewayYaml y = rgtest::gatewayStorageYaml("redis", dir, "two");
  y.keyPrefix = prefix;
  y.masterKey = kMasterKey;
  y.pluginDir = kPluginDir;
  std::string config = rgtest::writeGatewayConfig(dir.path(), y);
  auto run = [&](std::vector<std::string> args) {
    return rgtest::runCli(kBin, config, std::move(args));
  };
  for (auto [name, key] :
       {std::pair<std::string, std::string>{"a", kKeyA}, {"b", kKeyB}, {"c", kKeyC}}) {
    auto r = run({"accounts", "add", "--type", "claude-console", "--name", name, "--base-url",
                  upstream.baseUrl(), "--api-key", key, "--priority", "50"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }
  auto k = run({"keys", "create", "--name", "t"});
  ASSERT_EQ(k.exitCode, 0) << k.err;
  std::string key = k.lastLine();
  std::string err;
  auto one = GatewayProcess::start(kBin, config, dir.path(), {}, &err);
  ASSERT_NE(one, nullptr) << err;
  auto two = GatewayProcess::start(kBin, config, dir.path(), {}, &err);
  ASSERT_NE(two, nullptr) << err;
  auto send = [&](GatewayProcess& gw, const std::string& b) {
    return rgtest::httpRequest(gw.port(), "POST", "/api/v1/messages",
                               {{"x-api-key", key}, {"content-type", "application/json"}}, b);
  };
  // Instance one sees A overloaded (A is tried first: all equal, A created first).
  upstream.enqueueFor(kKeyA, FakeAnthropic::error(529, "Overloaded"));
  EXPECT_EQ(send(*one, body("claude-sonnet-4-5")).status, 200);
  ASSERT_EQ(upstream.statsFor(kKeyA).requests, 1u);
  // Instance two never sends to A while it cools.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(send(*two, body("claude-sonnet-4-5")).status, 200);
  }
  EXPECT_EQ(upstream.statsFor(kKeyA).requests, 1u);
  // A conversation started on one continues on the same account through two.
  std::string sess = "0d6b7c1e-2a55-4a6f-8f0e-7a2c1b9d3e44";
  EXPECT_EQ(send(*one, body("claude-sonnet-4-5", false, sess)).status, 200);
  auto before = upstream.stats();
  // Stopping instance one must not clear what two relies on.
  EXPECT_EQ(one->stop(SIGTERM, 15000), 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(send(*two, body("claude-sonnet-4-5", false, sess)).status, 200);
  }
  auto after = upstream.stats();
  int moved = 0;
  for (const auto& [cred, st] : after) {
    size_t was = before.count(cred) ? before[cred].requests : 0;
    if (st.requests != was) {
      ++moved;
      EXPECT_EQ(st.requests - was, 3u);
    }
  }
  EXPECT_EQ(moved, 1);
  EXPECT_EQ(upstream.statsFor(kKeyA).requests, 1u);
  two->stop(SIGTERM, 15000);
}

INSTANTIATE_TEST_SUITE_P(Backends, SchedulerE2E, ::testing::Values("embedded", "redis"),
                         [](const auto& param) { return param.param; });

}  // namespace
