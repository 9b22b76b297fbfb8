// The relaygate command line, run as a real process: config validation and masking, start-up
// refusal for a broken plugin, keys and accounts verbs (no secret ever printed back).
#include <signal.h>
#include <sys/stat.h>

#include <string>

#include <gtest/gtest.h>

#include "fakes/gateway_process.h"
#include "fakes/redis_harness.h"
#include "fakes/support.h"

namespace {

const std::string kBin = RG_TEST_RELAYGATE_BIN;
const std::string kPluginDir = RG_TEST_PLUGIN_DIR;
const std::string kMaster = "cli-test-master-key-0123456789abcdef";

class Cli : public ::testing::Test {
protected:
  std::string config(const std::string& extra = "", const std::string& plugins = "claude") {
    std::string path = dir_.file("relaygate.yaml");
    rgtest::writeFile(path, "server: {host: 127.0.0.1, port: 0}\n"
                            "storage:\n  backend: embedded\n  data_dir: " +
                                dir_.file("data") +
                                "\nsecurity:\n  master_key: " + kMaster +
                                "\nplugins:\n  directory: " + kPluginDir +
                                "\n  enabled:\n    - name: " + plugins + "\n" + extra);
    return path;
  }
  rgtest::CommandResult run(std::vector<std::string> args) {
    return rgtest::runCommand(kBin, args);
  }
  rgtest::TempDir dir_;
};

TEST_F(Cli, CheckConfigMasksSecretsAndReportsErrorsWithPathAndLine) {
  std::string cfg = config();
  auto ok = run({"check-config", "--config", cfg});
  EXPECT_EQ(ok.exitCode, 0) << ok.err;
  EXPECT_EQ(ok.out.find(kMaster), std::string::npos) << "master key printed";
  EXPECT_NE(ok.out.find("config OK"), std::string::npos);

  std::string bad = dir_.file("bad.yaml");
  rgtest::writeFile(bad, "server:\n  port: 8080\nstorage:\n  backend: mysql\n");
  auto r = run({"check-config", "--config", bad});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("storage.backend: expected one of embedded, redis, got \"mysql\" (line 4)"),
            std::string::npos)
      << r.err;

  rgtest::writeFile(bad, "server:\n  prot: 1\n");
  r = run({"serve", "--config", bad});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("server.prot"), std::string::npos) << r.err;
}

TEST_F(Cli, ServeRefusesToStartWithABadPriceFile) {
  std::string prices = dir_.file("prices.json");
  rgtest::writeFile(prices, "{\"claude-x\": {\"input_cost_per_token\": \"cheap\"}}");
  std::string cfg = config("pricing:\n  file: " + prices + "\n");
  auto r = run({"serve", "--config", cfg});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("cannot start"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("prices.json"), std::string::npos) << r.err;
}

TEST_F(Cli, ServeRefusesToStartWhenAnEnabledPluginCannotLoad) {
  std::string cfg = config("", "nosuchplugin");
  auto r = run({"serve", "--config", cfg});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("nosuchplugin"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot start"), std::string::npos) << r.err;
}

TEST_F(Cli, KeysAndAccountsVerbs) {
  std::string cfg = config();
  auto created = run({"keys", "create", "--config", cfg, "--name", "alice", "--permissions",
                      "claude", "--concurrency", "3", "--rate-window-min", "10",
                      "--rate-requests", "100", "--deny-models", "claude-opus-*",
                      "--expires-at", "2099-01-01T00:00:00Z"});
  ASSERT_EQ(created.exitCode, 0) << created.err;
  std::string key = created.lastLine();
  ASSERT_EQ(key.size(), 67u);
  ASSERT_EQ(key.rfind("cr_", 0), 0u);
  std::string id;
  {
    size_t p = created.out.find("id:");
    ASSERT_NE(p, std::string::npos);
    id = created.out.substr(created.out.find_first_not_of(' ', p + 3), 36);
  }
  auto list = run({"keys", "list", "--config", cfg});
  EXPECT_EQ(list.exitCode, 0);
  EXPECT_NE(list.out.find(id), std::string::npos);
  EXPECT_NE(list.out.find("alice"), std::string::npos);
  EXPECT_EQ(list.out.find(key), std::string::npos) << "keys list printed the key";
  auto show = run({"keys", "show", "--config", cfg, id});
  EXPECT_EQ(show.exitCode, 0);
  EXPECT_NE(show.out.find("2099-01-01T00:00:00Z"), std::string::npos);
  EXPECT_NE(show.out.find("deny claude-opus-*"), std::string::npos);
  EXPECT_EQ(show.out.find(key.substr(3)), std::string::npos);
  EXPECT_EQ(run({"keys", "disable", "--config", cfg, id}).exitCode, 0);
  EXPECT_NE(run({"keys", "show", "--config", cfg, id}).out.find("enabled:      no"),
            std::string::npos);
  EXPECT_EQ(run({"keys", "enable", "--config", cfg, id}).exitCode, 0);
  EXPECT_EQ(run({"keys", "delete", "--config", cfg, id}).exitCode, 0);
  auto gone = run({"keys", "show", "--config", cfg, id});
  EXPECT_EQ(gone.exitCode, 1);
  EXPECT_NE(gone.err.find("no key with id"), std::string::npos);

  // Bad input: clear messages, non-zero exit.
  auto noName = run({"keys", "create", "--config", cfg});
  EXPECT_EQ(noName.exitCode, 1);
  EXPECT_NE(noName.err.find("--name"), std::string::npos);
  auto badPerm = run({"keys", "create", "--config", cfg, "--name", "x", "--permissions", "foo"});
  EXPECT_EQ(badPerm.exitCode, 1);
  EXPECT_NE(badPerm.err.find("unknown permission"), std::string::npos);
  auto past = run({"keys", "create", "--config", cfg, "--name", "x", "--expires-at", "2001-01-01"});
  EXPECT_EQ(past.exitCode, 1);

  const std::string secret = "sk-ant-api03-VERYSECRET-abcdefghijklmnop";
  auto acct = run({"accounts", "add", "--config", cfg, "--type", "claude-console", "--name",
                   "console-1", "--base-url", "https://api.anthropic.com/", "--api-key", secret,
                   "--priority", "10"});
  ASSERT_EQ(acct.exitCode, 0) << acct.err;
  std::string acctId = acct.lastLine();
  auto accts = run({"accounts", "list", "--config", cfg});
  EXPECT_EQ(accts.exitCode, 0);
  EXPECT_NE(accts.out.find("console-1"), std::string::npos);
  EXPECT_NE(accts.out.find("https://api.anthropic.com"), std::string::npos);
  EXPECT_EQ(accts.out.find(secret), std::string::npos) << "accounts list printed the secret";
  EXPECT_NE(accts.out.find("sk-a****mnop"), std::string::npos) << accts.out;
  // Sealed at rest: the secret is nowhere in the data dir in clear.
  std::string journal = rgtest::readFile(dir_.file("data") + "/journal.jsonl");
  EXPECT_FALSE(journal.empty());
  EXPECT_EQ(journal.find(secret), std::string::npos) << "secret stored in clear";
  EXPECT_EQ(journal.find(key), std::string::npos) << "gateway key stored in clear";
  auto badType = run({"accounts", "add", "--config", cfg, "--type", "nope", "--name", "n",
                      "--base-url", "https://x", "--api-key", "k"});
  EXPECT_EQ(badType.exitCode, 1);
  EXPECT_NE(badType.err.find("unknown account type"), std::string::npos);
  EXPECT_EQ(run({"accounts", "remove", "--config", cfg, acctId}).exitCode, 0);
  EXPECT_EQ(run({"accounts", "list", "--config", cfg}).out.find("console-1"), std::string::npos);

  auto usage = run({"frobnicate", "--config", cfg});
  EXPECT_EQ(usage.exitCode, 2);
  EXPECT_NE(usage.err.find("usage:"), std::string::npos);
}

} // namespace

namespace {

// add / show / update / disable / enable for several account types through the real binary: every
// secret is sealed in the journal and never printed, only masked.
TEST_F(Cli, AccountTypesAddShowUpdateDisableEnable) {
  std::string cfg = config();
  struct Case {
    std::vector<std::string> add;     // type-specific flags
    std::vector<std::string> secrets; // plaintexts that must never show
    std::vector<std::string> update;  // flags for accounts update
    std::string shownAfterUpdate;     // a line `accounts show` prints after the update
  };
  std::vector<Case> cases = {
      {{"--type", "claude-console", "--base-url", "https://console.example.com/", "--api-key",
        "sk-ant-api03-CONSOLESECRET-0001", "--models", "claude-sonnet-4,claude-opus-4"},
       {"sk-ant-api03-CONSOLESECRET-0001", "CONSOLE-NEW-SECRET-0002"},
       {"--api-key", "CONSOLE-NEW-SECRET-0002", "--model-map", "sonnet=claude-sonnet-4"},
       "models:       sonnet=claude-sonnet-4"},
      {{"--type", "bedrock", "--region", "us-east-1", "--aws-access-key-id", "AKIABEDROCKKEYID0001",
        "--aws-secret-access-key", "BEDROCK-SECRET-ACCESS-KEY-0001", "--proxy",
        "socks5://relay@proxy.example.com:1080", "--proxy-password", "PROXY-SECRET-PASS-1"},
       {"AKIABEDROCKKEYID0001", "BEDROCK-SECRET-ACCESS-KEY-0001", "PROXY-SECRET-PASS-1"},
       {"--region", "eu-west-3", "--groups", "team-b,team-a", "--sharing", "dedicated"},
       "base url:     https://bedrock-runtime.eu-west-3.amazonaws.com"},
      {{"--type", "azure-openai", "--endpoint", "https://res.openai.azure.com", "--deployment",
        "gpt-4o", "--api-version", "2024-10-21", "--api-key", "AZURE-SECRET-KEY-000000001",
        "--concurrency", "3", "--expires-at", "2099-06-01T00:00:00Z"},
       {"AZURE-SECRET-KEY-000000001"},
       {"--api-version", "2025-04-01-preview", "--priority", "5"},
       "apiVersion:   2025-04-01-preview"},
  };
  auto expectNoSecret = [](const rgtest::CommandResult& r, const std::vector<std::string>& sec) {
    for (const auto& x : sec) {
      EXPECT_EQ(r.out.find(x), std::string::npos) << "secret printed: " << x;
      EXPECT_EQ(r.err.find(x), std::string::npos) << "secret printed: " << x;
    }
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.add[1]);
    std::vector<std::string> args = {"accounts", "add", "--config", cfg, "--name", c.add[1] + "-1"};
    args.insert(args.end(), c.add.begin(), c.add.end());
    auto added = run(args);
    ASSERT_EQ(added.exitCode, 0) << added.err;
    expectNoSecret(added, c.secrets);
    std::string id = added.lastLine();
    ASSERT_EQ(id.size(), 36u) << added.out;

    auto show = run({"accounts", "show", "--config", cfg, id});
    ASSERT_EQ(show.exitCode, 0) << show.err;
    expectNoSecret(show, c.secrets);
    EXPECT_NE(show.out.find("type:         " + c.add[1]), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("****"), std::string::npos) << show.out;

    args = {"accounts", "update", "--config", cfg, id};
    args.insert(args.end(), c.update.begin(), c.update.end());
    auto updated = run(args);
    ASSERT_EQ(updated.exitCode, 0) << updated.err;
    expectNoSecret(updated, c.secrets);
    show = run({"accounts", "show", "--config", cfg, id});
    EXPECT_NE(show.out.find(c.shownAfterUpdate), std::string::npos) << show.out;
    expectNoSecret(show, c.secrets);

    auto disabled = run({"accounts", "disable", "--config", cfg, id, "--reason", "maintenance"});
    ASSERT_EQ(disabled.exitCode, 0) << disabled.err;
    show = run({"accounts", "show", "--config", cfg, id});
    EXPECT_NE(show.out.find("status:       disabled (maintenance)"), std::string::npos)
        << show.out;
    auto list = run({"accounts", "list", "--config", cfg});
    EXPECT_NE(list.out.find("disabled"), std::string::npos);
    expectNoSecret(list, c.secrets);
    ASSERT_EQ(run({"accounts", "enable", "--config", cfg, id}).exitCode, 0);
    show = run({"accounts", "show", "--config", cfg, id});
    EXPECT_NE(show.out.find("status:       active\n"), std::string::npos) << show.out;

    std::string journal = rgtest::readFile(dir_.file("data") + "/journal.jsonl");
    for (const auto& x : c.secrets) {
      EXPECT_EQ(journal.find(x), std::string::npos) << "stored in clear: " << x;
    }
  }
  auto show = run({"accounts", "list", "--config", cfg});
  EXPECT_NE(show.out.find("bedrock"), std::string::npos);

  // Errors name the flag the type is missing or does not take.
  auto missing = run({"accounts", "add", "--config", cfg, "--type", "azure-openai", "--name", "x",
                      "--endpoint", "https://e.example.com", "--api-key", "k", "--deployment",
                      "d"});
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_NE(missing.err.find("needs --api-version"), std::string::npos) << missing.err;
  auto foreign = run({"accounts", "add", "--config", cfg, "--type", "bedrock", "--name", "x",
                      "--region", "us-east-1", "--bearer-token", "t", "--base-url", "https://e"});
  EXPECT_EQ(foreign.exitCode, 1);
  EXPECT_NE(foreign.err.find("--base-url does not apply to account type bedrock"),
            std::string::npos)
      << foreign.err;
  auto typo = run({"accounts", "add", "--config", cfg, "--type", "claude-console", "--name", "x",
                   "--base-url", "https://e", "--api-key", "k", "--priorty", "3"});
  EXPECT_EQ(typo.exitCode, 1);
  EXPECT_NE(typo.err.find("unknown flag --priorty"), std::string::npos) << typo.err;
  auto badRegion = run({"accounts", "add", "--config", cfg, "--type", "bedrock", "--name", "x",
                        "--region", "moon", "--bearer-token", "t"});
  EXPECT_EQ(badRegion.exitCode, 1);
  EXPECT_NE(badRegion.err.find("--region"), std::string::npos) << badRegion.err;
  auto nobody = run({"accounts", "show", "--config", cfg, "00000000-0000-0000-0000-000000000000"});
  EXPECT_EQ(nobody.exitCode, 1);
  EXPECT_NE(nobody.err.find("no account with id"), std::string::npos);
}

TEST_F(Cli, FirstStartGeneratesAPrivateMasterKey) {
  std::string path = dir_.file("nokey.yaml");
  rgtest::writeFile(path, "storage: {backend: embedded, data_dir: " + dir_.file("data") +
                              "}\nplugins: {directory: " + kPluginDir +
                              ", enabled: [{name: claude}]}\n");
  auto r = run({"keys", "create", "--config", path, "--name", "first"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::string keyFile = dir_.file("data") + "/master.key";
  struct stat st {};
  ASSERT_EQ(::stat(keyFile.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string master = rgtest::readFile(keyFile);
  ASSERT_GE(master.size(), 64u);
  master = master.substr(0, 64);
  EXPECT_NE(r.err.find("generated one into"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find(master), std::string::npos);
  EXPECT_EQ(r.err.find(master), std::string::npos);
  // The same key is reused afterwards: the key created first still lists.
  auto list = run({"keys", "list", "--config", path});
  EXPECT_NE(list.out.find("first"), std::string::npos);
  EXPECT_EQ(rgtest::readFile(keyFile).substr(0, 64), master);
}

// The gateway on a Redis that goes away: /ready says so, requests get a clear 503, and both
// recover when Redis is back.
TEST_F(Cli, RedisOutageIsReportedAndRecovered) {
  rgtest::RedisServer redis;
  std::string path = dir_.file("redis.yaml");
  rgtest::writeFile(path, "server: {host: 127.0.0.1, port: 0}\n"
                          "storage:\n  backend: redis\n  data_dir: " + dir_.file("data") +
                              "\n  redis: {url: \"" + redis.url() + "\"}\n"
                              "security: {master_key: " + kMaster + "}\n"
                              "plugins: {directory: " + kPluginDir +
                              ", enabled: [{name: claude}]}\n");
  auto k = run({"keys", "create", "--config", path, "--name", "r"});
  ASSERT_EQ(k.exitCode, 0) << k.err;
  std::string err;
  auto gw = rgtest::GatewayProcess::start(kBin, path, dir_.path(), {}, &err);
  ASSERT_NE(gw, nullptr) << err;
  EXPECT_EQ(rgtest::httpRequest(gw->port(), "GET", "/ready", {}, "").status, 200);
  redis.stop();
  auto ready = rgtest::httpRequest(gw->port(), "GET", "/ready", {}, "");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("not_ready"), std::string::npos);
  // A key not in the cache needs storage: a clear 503 in the provider's shape, not a 500.
  auto r = rgtest::httpRequest(gw->port(), "POST", "/v1/messages",
                               {{"x-api-key", "cr_" + std::string(64, 'b')},
                                {"content-type", "application/json"}},
                               "{}");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("\"type\":\"error\""), std::string::npos);
  redis.restart();
  EXPECT_TRUE(rgtest::waitFor(
      [&] { return rgtest::httpRequest(gw->port(), "GET", "/ready", {}, "").status == 200; },
      10000));
  EXPECT_EQ(gw->stop(SIGTERM), 0);
}

} // namespace

namespace {

TEST_F(Cli, OneServePerEmbeddedDataDirButTheCliWorksAlongside) {
  std::string cfg = config();
  std::string err;
  auto first = rgtest::GatewayProcess::start(kBin, cfg, dir_.path(), {}, &err);
  ASSERT_NE(first, nullptr) << err;
  auto second = run({"serve", "--config", cfg});
  EXPECT_EQ(second.exitCode, 1);
  EXPECT_NE(second.err.find("already served by another relaygate process"), std::string::npos)
      << second.err;
  auto k = run({"keys", "create", "--config", cfg, "--name", "alongside"});
  EXPECT_EQ(k.exitCode, 0) << k.err;
  // The running gateway sees the new key at once (it was never cached).
  auto r = rgtest::httpRequest(first->port(), "GET", "/v1/me", {{"x-api-key", k.lastLine()}}, "");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(first->stop(SIGTERM), 0);
}

} // namespace
