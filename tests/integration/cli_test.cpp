// The relaygate command line, run as a real process: config validation and masking, start-up
// refusal for a broken plugin, keys and accounts verbs (no secret ever printed back).
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "accounts/account_service.h"
#include "app/app.h"
#include "app/master_key_rotation.h"
#include "auth/key_service.h"
#include "config/config.h"
#include "fakes/fake_anthropic.h"
#include "fakes/fake_oauth.h"
#include "fakes/gateway_process.h"
#include "fakes/redis_harness.h"
#include "fakes/support.h"
#include "storage/store.h"

namespace {

const std::string kBin = RG_TEST_RELAYGATE_BIN;
const std::string kPluginDir = RG_TEST_PLUGIN_DIR;
const std::string kMaster = "cli-test-master-key-0123456789abcdef";

class Cli : public ::testing::Test {
 protected:
  std::string config(const std::string& extra = "", const std::string& plugins = "claude") {
    std::string path = dir_.file("relaygate.yaml");
    rgtest::writeFile(path,
                      "server: {host: 127.0.0.1, port: 0}\n"
                      "storage:\n  backend: embedded\n  data_dir: " +
                          dir_.file("data") + "\nsecurity:\n  master_key: " + kMaster +
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
  auto created =
      run({"keys", "create", "--config", cfg, "--name", "alice", "--permissions", "claude",
           "--concurrency", "3", "--rate-window-min", "10", "--rate-requests", "100",
           "--deny-models", "claude-opus-*", "--expires-at", "2099-01-01T00:00:00Z"});
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
  auto acct =
      run({"accounts", "add", "--config", cfg, "--type", "claude-console", "--name", "console-1",
           "--base-url", "https://api.anthropic.com/", "--api-key", secret, "--priority", "10"});
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

}  // namespace

namespace {

// add / show / update / disable / enable for several account types through the real binary: every
// secret is sealed in the journal and never printed, only masked.
TEST_F(Cli, AccountTypesAddShowUpdateDisableEnable) {
  std::string cfg = config();
  struct Case {
    std::vector<std::string> add;      // type-specific flags
    std::vector<std::string> secrets;  // plaintexts that must never show
    std::vector<std::string> update;   // flags for accounts update
    std::string shownAfterUpdate;      // a line `accounts show` prints after the update
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
    EXPECT_NE(show.out.find("status:       disabled (maintenance)"), std::string::npos) << show.out;
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
  auto missing =
      run({"accounts", "add", "--config", cfg, "--type", "azure-openai", "--name", "x",
           "--endpoint", "https://e.example.com", "--api-key", "k", "--deployment", "d"});
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
  rgtest::writeFile(path,
                    "server: {host: 127.0.0.1, port: 0}\n"
                    "storage:\n  backend: redis\n  data_dir: " +
                        dir_.file("data") + "\n  redis: {url: \"" + redis.url() +
                        "\"}\n"
                        "security: {master_key: " +
                        kMaster +
                        "}\n"
                        "plugins: {directory: " +
                        kPluginDir + ", enabled: [{name: claude}]}\n");
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
  auto r = rgtest::httpRequest(
      gw->port(), "POST", "/v1/messages",
      {{"x-api-key", "cr_" + std::string(64, 'b')}, {"content-type", "application/json"}}, "{}");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("\"type\":\"error\""), std::string::npos);
  redis.restart();
  EXPECT_TRUE(rgtest::waitFor(
      [&] { return rgtest::httpRequest(gw->port(), "GET", "/ready", {}, "").status == 200; },
      10000));
  EXPECT_EQ(gw->stop(SIGTERM), 0);
}

}  // namespace

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

}  // namespace

// ---- Master-key rotation, in process (the functions the CLI verb is made of) ------------------

namespace {

const rg::Clock& sysClock() {
  return rg::SystemClock::instance();
}

std::string firstLine(const std::string& path) {
  std::string text = rgtest::readFile(path);
  return text.substr(0, text.find('\n'));
}

// An embedded data dir with a claude-console account (API key + proxy password), a bedrock
// account (two AWS secrets) and a gateway key, all made under the data dir's master key.
struct Seeded {
  std::string plainKey;
  std::string consoleId;
  std::string bedrockId;
  std::set<std::string> plains;  // every secret's plaintext
};

rg::Config embeddedConfig(const std::string& dataDir) {
  rg::Config cfg;
  cfg.storage.backend = "embedded";
  cfg.storage.dataDir = dataDir;
  return cfg;
}

Seeded seed(const rg::Config& cfg) {
  Seeded out;
  auto svc = rg::openServices(cfg);
  EXPECT_TRUE(svc.isOk()) << svc.status().message();
  if (!svc.isOk()) {
    return out;
  }
  rg::NewAccountOptions console;
  console.type = "claude-console";
  console.name = "console";
  console.fields = {{"base-url", "https://console.example.com"},
                    {"api-key", "sk-ant-api03-ROTATE-CONSOLE-0001"},
                    {"proxy-password", "PROXY-PASS-ROTATE-0001"}};
  console.proxyUrl = "socks5://relay@127.0.0.1:1080";
  auto a = (*svc)->accounts->add(console);
  EXPECT_TRUE(a.isOk()) << a.status().message();
  rg::NewAccountOptions bedrock;
  bedrock.type = "bedrock";
  bedrock.name = "bedrock";
  bedrock.fields = {{"region", "us-east-1"},
                    {"aws-access-key-id", "AKIAROTATEKEYID00001"},
                    {"aws-secret-access-key", "ROTATE-BEDROCK-SECRET-ACCESS-0001"}};
  auto b = (*svc)->accounts->add(bedrock);
  EXPECT_TRUE(b.isOk()) << b.status().message();
  rg::NewKeyOptions ko;
  ko.name = "survivor";
  auto k = (*svc)->keys->create(ko);
  EXPECT_TRUE(k.isOk()) << k.status().message();
  if (a.isOk() && b.isOk() && k.isOk()) {
    out.consoleId = a->id;
    out.bedrockId = b->id;
    out.plainKey = k->plainKey;
    out.plains = {"sk-ant-api03-ROTATE-CONSOLE-0001", "PROXY-PASS-ROTATE-0001",
                  "AKIAROTATEKEYID00001", "ROTATE-BEDROCK-SECRET-ACCESS-0001"};
  }
  return out;
}

std::vector<std::string> sealedValues(const rg::AccountRecord& r) {
  std::vector<std::string> v;
  if (!r.secretSealed.empty()) {
    v.push_back(r.secretSealed);
  }
  for (const auto& kv : r.secretsSealed) {
    v.push_back(kv.second);
  }
  return v;
}

// Every account secret opens with `good` (giving exactly `plains`) and with `bad` not at all;
// the gateway key authenticates through the resolved hash secret.
void expectRotatedTo(const rg::Config& cfg, const std::string& newMaster,
                     const std::string& oldMaster, const Seeded& seeded) {
  auto store = rg::openEmbeddedStore(rg::EmbeddedOptions{cfg.storage.dataDir}, sysClock());
  ASSERT_TRUE(store.isOk()) << store.status().message();
  auto good = rg::secretBoxForMaster(newMaster);
  auto bad = rg::secretBoxForMaster(oldMaster);
  auto all = (*store)->accounts().list();
  ASSERT_TRUE(all.isOk());
  ASSERT_EQ(all->size(), 2u);
  std::set<std::string> opened;
  for (const auto& r : *all) {
    for (const auto& sealed : sealedValues(r)) {
      auto o = good->open(sealed);
      ASSERT_TRUE(o.isOk()) << r.name << ": " << o.status().message();
      opened.insert(*o);
      EXPECT_FALSE(bad->open(sealed).isOk()) << r.name << " still opens with the old key";
    }
  }
  EXPECT_EQ(opened, seeded.plains);

  auto hashSecret = rg::resolveKeyHashSecret(**store, *good, newMaster);
  ASSERT_TRUE(hashSecret.isOk()) << hashSecret.status().message();
  rg::KeyService keys(**store, sysClock(), *hashSecret);
  auto authed = keys.authenticate(seeded.plainKey);
  ASSERT_TRUE(authed.isOk()) << authed.status().message();
  EXPECT_EQ((*authed)->name, "survivor");
  // Deriving from the new key instead would have broken every key: the stored secret matters.
  rg::KeyService naive(**store, sysClock(), rg::derivedKeyHashSecret(newMaster));
  EXPECT_FALSE(naive.authenticate(seeded.plainKey).isOk());
  // The old master cannot open the kept hash secret any more.
  auto stale = rg::resolveKeyHashSecret(**store, *bad, oldMaster);
  ASSERT_FALSE(stale.isOk());
  EXPECT_EQ(stale.status().code(), rg::Code::kFailedPrecondition);
}

// Each rotation test starts from a fresh embedded data dir.
class Rotation : public ::testing::Test {
 protected:
  // Accounts and a gateway key sealed under a master key generated into the data dir.
  void seedUnderAGeneratedKey() {
    seeded_ = seed(cfg_);
    ASSERT_FALSE(seeded_.plainKey.empty());
    oldMaster_ = firstLine(keyPath_);
  }

  rgtest::TempDir dir_;
  rg::Config cfg_ = embeddedConfig(dir_.file("data"));
  std::string keyPath_ = dir_.file("data") + "/master.key";
  Seeded seeded_;
  std::string oldMaster_;
};

TEST_F(Rotation, ResealsEverySecretKeepsGatewayKeysAndKeepsTheOldKeyFile) {
  seedUnderAGeneratedKey();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(oldMaster_.size(), 64u);

  auto r = rg::rotateMasterKey(cfg_, {});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_FALSE(r->fromConfig);
  EXPECT_TRUE(r->newMaster.empty()) << "a data-dir key is never handed out";
  EXPECT_FALSE(r->resumed);
  EXPECT_EQ(r->counts.accounts, 2);
  EXPECT_EQ(r->counts.secrets, 4);
  EXPECT_NE(r->oldKeyId, r->newKeyId);

  std::string newMaster = firstLine(keyPath_);
  EXPECT_EQ(newMaster.size(), 64u);
  EXPECT_NE(newMaster, oldMaster_);
  EXPECT_EQ(firstLine(keyPath_ + ".old"), oldMaster_);
  struct stat st {};
  ASSERT_EQ(::stat((keyPath_ + ".old").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(keyPath_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(::stat((keyPath_ + ".next").c_str(), &st), 0) << "master.key.next left behind";
  expectRotatedTo(cfg_, newMaster, oldMaster_, seeded_);

  // The services as `serve` opens them after the rotation: accounts open, nothing re-derived.
  auto svc = rg::openServices(cfg_);
  ASSERT_TRUE(svc.isOk()) << svc.status().message();
  auto acct = (*svc)->accounts->get(seeded_.consoleId);
  ASSERT_TRUE(acct.isOk());
  auto secret = (*svc)->accounts->openSecret(*acct, "proxy_password");
  ASSERT_TRUE(secret.isOk()) << secret.status().message();
  EXPECT_EQ(*secret, "PROXY-PASS-ROTATE-0001");

  // A second rotation works on top of the first (the kept hash secret moves along).
  auto again = rg::rotateMasterKey(cfg_, {});
  ASSERT_TRUE(again.isOk()) << again.status().message();
  expectRotatedTo(cfg_, firstLine(keyPath_), newMaster, seeded_);
}

TEST_F(Rotation, AnInterruptedRotationIsCompletedByRunningItAgain) {
  seedUnderAGeneratedKey();
  ASSERT_FALSE(HasFatalFailure());
  std::string newMaster = std::string(64, 'c');
  // The first steps of a rotation, then a "crash": the next key is on disk, the hash secret is
  // kept under it, one account is re-sealed, the other is not, nothing renamed.
  rgtest::writeFile(keyPath_ + ".next", newMaster + "\n");
  {
    auto store = rg::openEmbeddedStore(rg::EmbeddedOptions{cfg_.storage.dataDir}, sysClock());
    ASSERT_TRUE(store.isOk());
    auto box = rg::secretBoxForMaster(newMaster);
    auto oldBox = rg::secretBoxForMaster(oldMaster_);
    box->addDecryptionKey(rg::crypto::deriveKey(oldMaster_, "relaygate secret box v1"),
                          oldBox->keyId());
    ASSERT_TRUE(rg::storeKeyHashSecret(**store, *box, rg::derivedKeyHashSecret(oldMaster_)).isOk());
    rg::ResealCounts counts;
    ASSERT_TRUE(rg::resealAccount(**store, *box, seeded_.consoleId, &counts).isOk());
    EXPECT_EQ(counts.accounts, 1);
    EXPECT_EQ(counts.secrets, 2);
  }
  // A server started in this state (old master.key) still opens everything and authenticates.
  {
    auto store = rg::openEmbeddedStore(rg::EmbeddedOptions{cfg_.storage.dataDir}, sysClock());
    ASSERT_TRUE(store.isOk());
    auto box = rg::secretBoxForMaster(oldMaster_);
    auto all = (*store)->accounts().list();
    ASSERT_TRUE(all.isOk());
    bool someUnopenable = false;
    for (const auto& r : *all) {
      for (const auto& v : sealedValues(r)) {
        someUnopenable = someUnopenable || !box->open(v).isOk();
      }
    }
    EXPECT_TRUE(someUnopenable) << "the simulated crash re-sealed nothing";
    rg::addRotationDecryptionKeys(cfg_, *box);
    for (const auto& r : *all) {
      for (const auto& v : sealedValues(r)) {
        EXPECT_TRUE(box->open(v).isOk()) << r.name;
      }
    }
    auto hs = rg::resolveKeyHashSecret(**store, *box, oldMaster_);
    ASSERT_TRUE(hs.isOk()) << hs.status().message();
    rg::KeyService keys(**store, sysClock(), *hs);
    EXPECT_TRUE(keys.authenticate(seeded_.plainKey).isOk());
  }
  auto r = rg::rotateMasterKey(cfg_, {});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_TRUE(r->resumed);
  EXPECT_EQ(r->counts.accounts, 1) << "only the account the crash left behind";
  EXPECT_EQ(r->counts.secrets, 2);
  EXPECT_EQ(firstLine(keyPath_), newMaster);
  EXPECT_EQ(firstLine(keyPath_ + ".old"), oldMaster_);
  expectRotatedTo(cfg_, newMaster, oldMaster_, seeded_);
}

TEST_F(Rotation, ACrashBetweenTheRenamesIsFinishedBeforeTheKeyIsLoaded) {
  seedUnderAGeneratedKey();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(rg::rotateMasterKey(cfg_, {}).isOk());
  std::string newMaster = firstLine(keyPath_);
  // Undo the last rename: master.key missing, .next and .old present.
  ASSERT_EQ(::rename(keyPath_.c_str(), (keyPath_ + ".next").c_str()), 0);
  ASSERT_TRUE(rg::finishInterruptedKeyRename(cfg_.storage.dataDir).isOk());
  EXPECT_EQ(firstLine(keyPath_), newMaster);
  expectRotatedTo(cfg_, newMaster, oldMaster_, seeded_);
}

TEST_F(Rotation, RefusedWhileAServerHoldsTheEmbeddedDataDir) {
  seedUnderAGeneratedKey();
  ASSERT_FALSE(HasFatalFailure());
  auto server = rg::openEmbeddedStore(rg::EmbeddedOptions{cfg_.storage.dataDir}, sysClock());
  ASSERT_TRUE(server.isOk());
  ASSERT_TRUE((*server)->claimExclusiveServe().isOk());
  auto r = rg::rotateMasterKey(cfg_, {});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), rg::Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("stop it first"), std::string::npos) << r.status().message();
  struct stat st {};
  EXPECT_NE(::stat((keyPath_ + ".next").c_str(), &st), 0);
  EXPECT_EQ(firstLine(keyPath_), oldMaster_);
  server->reset();
  EXPECT_TRUE(rg::rotateMasterKey(cfg_, {}).isOk());
}

TEST_F(Rotation, AConfigMasterKeyIsHandedBackAndNothingIsWrittenToTheDataDir) {
  cfg_.security.masterKey = "config-master-key-for-rotation-0001";
  seeded_ = seed(cfg_);
  ASSERT_FALSE(seeded_.plainKey.empty());
  std::string newKeyFile = dir_.file("new.key");
  std::string chosen = "operator-chosen-master-key-000000000000001";
  rgtest::writeFile(newKeyFile, chosen + "\n");
  rg::RotationOptions opts;
  opts.newKeyFile = newKeyFile;
  auto r = rg::rotateMasterKey(cfg_, opts);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_TRUE(r->fromConfig);
  EXPECT_EQ(r->newMaster, chosen);
  struct stat st {};
  for (const char* f : {"/master.key", "/master.key.next", "/master.key.old"}) {
    EXPECT_NE(::stat((dir_.file("data") + f).c_str(), &st), 0) << f << " written";
  }
  expectRotatedTo(cfg_, chosen, cfg_.security.masterKey, seeded_);
  // A too-short replacement key is refused before anything changes.
  rgtest::writeFile(newKeyFile, "short\n");
  cfg_.security.masterKey = chosen;
  auto shortKey = rg::rotateMasterKey(cfg_, opts);
  ASSERT_FALSE(shortKey.isOk());
  EXPECT_NE(shortKey.status().message().find("--new-key-file"), std::string::npos);
}

// ---- Key bindings, in process ----------------------------------------------------------------

TEST(KeyBindings, AreValidatedAgainstAccountsAndSeenAtOnceByAuthentication) {
  rgtest::TempDir dir;
  rg::Config cfg = embeddedConfig(dir.file("data"));
  Seeded seeded = seed(cfg);
  ASSERT_FALSE(seeded.plainKey.empty());
  auto svc = rg::openServices(cfg);
  ASSERT_TRUE(svc.isOk());
  rg::KeyService& keys = *(*svc)->keys;
  struct Bad {
    std::map<std::string, std::string> b;
    std::string message;
  };
  std::vector<Bad> bad = {
      {{{"mistral", "group:a"}}, "unknown binding provider"},
      {{{"claude", "group:"}}, "group name"},
      {{{"claude", "group:has space"}}, "group name"},
      {{{"claude", "group:" + std::string(65, 'g')}}, "group name"},
      {{{"claude", "not-a-uuid"}}, "expected an account id or group:<name>"},
      {{{"claude", "00000000-0000-4000-8000-000000000000"}}, "no account with id"},
      {{{"claude", seeded.bedrockId}}, "of provider bedrock"},
  };
  for (const auto& c : bad) {
    rg::NewKeyOptions o;
    o.name = "bad";
    o.bindings = c.b;
    auto created = keys.create(o);
    ASSERT_FALSE(created.isOk()) << c.message;
    EXPECT_EQ(created.status().code(), rg::Code::kInvalidArgument);
    EXPECT_NE(created.status().message().find(c.message), std::string::npos)
        << created.status().message();
  }
  rg::NewKeyOptions o;
  o.name = "bound";
  o.bindings = {{"claude", seeded.consoleId}, {"bedrock", "group:team-a.1_x"}};
  auto created = keys.create(o);
  ASSERT_TRUE(created.isOk()) << created.status().message();
  EXPECT_EQ(created->record.bindings, o.bindings);
  auto authed = keys.authenticate(created->plainKey);  // now cached
  ASSERT_TRUE(authed.isOk());
  EXPECT_EQ((*authed)->bindings.at("claude"), seeded.consoleId);

  auto updated = keys.setBindings(created->record.id, {{"claude", "group:team-b"}});
  ASSERT_TRUE(updated.isOk()) << updated.status().message();
  EXPECT_EQ(updated->bindings.size(), 1u);
  authed = keys.authenticate(created->plainKey);
  ASSERT_TRUE(authed.isOk());
  EXPECT_EQ((*authed)->bindings, updated->bindings) << "the cached record was served";
  auto stored = keys.get(created->record.id);
  ASSERT_TRUE(stored.isOk());
  EXPECT_EQ(stored->bindings, updated->bindings);
  auto rejected = keys.setBindings(created->record.id, {{"claude", seeded.bedrockId}});
  EXPECT_FALSE(rejected.isOk());
  EXPECT_EQ(keys.get(created->record.id)->bindings, updated->bindings);
  EXPECT_EQ(keys.setBindings("00000000-0000-4000-8000-000000000000", {}).status().code(),
            rg::Code::kNotFound);
}

}  // namespace

// ---- The new verbs through the real binary ----------------------------------------------------

namespace {

std::string idFromShow(const std::string& out) {
  size_t p = out.find("id:");
  if (p == std::string::npos) {
    return "";
  }
  return out.substr(out.find_first_not_of(' ', p + 3), 36);
}

TEST_F(Cli, RotateMasterKeyThenKeysAndAccountsStillWork) {
  std::string path = dir_.file("filekey.yaml");
  rgtest::writeFile(path,
                    "server: {host: 127.0.0.1, port: 0}\n"
                    "storage: {backend: embedded, data_dir: " +
                        dir_.file("data") + "}\nplugins: {directory: " + kPluginDir +
                        ", enabled: [{name: claude}]}\n");
  auto k = run({"keys", "create", "--config", path, "--name", "before-rotation"});
  ASSERT_EQ(k.exitCode, 0) << k.err;
  const std::string secret = "sk-ant-api03-E2E-ROTATION-SECRET-01";
  auto acct = run({"accounts", "add", "--config", path, "--type", "claude-console", "--name", "rot",
                   "--base-url", "https://api.example.com", "--api-key", secret, "--proxy",
                   "http://u@127.0.0.1:3128", "--proxy-password", "E2E-PROXY-PW-01"});
  ASSERT_EQ(acct.exitCode, 0) << acct.err;
  std::string acctId = acct.lastLine();
  std::string oldMaster = firstLine(dir_.file("data") + "/master.key");

  auto rot = run({"rotate-master-key", "--config", path});
  ASSERT_EQ(rot.exitCode, 0) << rot.err;
  EXPECT_NE(rot.out.find("2 secret(s) of 1 account(s) re-sealed"), std::string::npos) << rot.out;
  std::string newMaster = firstLine(dir_.file("data") + "/master.key");
  EXPECT_NE(newMaster, oldMaster);
  EXPECT_EQ(firstLine(dir_.file("data") + "/master.key.old"), oldMaster);
  for (const auto* r : {&rot}) {
    EXPECT_EQ(r->out.find(newMaster), std::string::npos) << "data-dir key printed";
    EXPECT_EQ(r->out.find(oldMaster), std::string::npos);
    EXPECT_EQ(r->err.find(newMaster), std::string::npos);
  }

  auto list = run({"keys", "list", "--config", path});
  EXPECT_EQ(list.exitCode, 0) << list.err;
  EXPECT_NE(list.out.find("before-rotation"), std::string::npos);
  auto show = run({"accounts", "show", "--config", path, acctId});
  ASSERT_EQ(show.exitCode, 0) << show.err;
  EXPECT_NE(show.out.find("sk-a****"), std::string::npos) << show.out;
  EXPECT_EQ(show.out.find("unreadable"), std::string::npos) << show.out;
  EXPECT_EQ(show.out.find(secret), std::string::npos);

  // The gateway started on the rotated data dir still accepts the key made before.
  std::string err;
  auto gw = rgtest::GatewayProcess::start(kBin, path, dir_.path(), {}, &err);
  ASSERT_NE(gw, nullptr) << err;
  auto me = rgtest::httpRequest(gw->port(), "GET", "/v1/me", {{"x-api-key", k.lastLine()}}, "");
  EXPECT_EQ(me.status, 200) << me.body;
  // ... and a rotation while it serves is refused, changing nothing.
  auto busy = run({"rotate-master-key", "--config", path});
  EXPECT_EQ(busy.exitCode, 1);
  EXPECT_NE(busy.err.find("stop it first"), std::string::npos) << busy.err;
  EXPECT_EQ(firstLine(dir_.file("data") + "/master.key"), newMaster);
  EXPECT_EQ(gw->stop(SIGTERM), 0);
}

TEST_F(Cli, RotateAConfigMasterKeyPrintsTheNewKeyOnce) {
  std::string cfg = config();
  auto k = run({"keys", "create", "--config", cfg, "--name", "cfgkey"});
  ASSERT_EQ(k.exitCode, 0) << k.err;
  auto rot = run({"rotate-master-key", "--config", cfg});
  ASSERT_EQ(rot.exitCode, 0) << rot.err;
  std::string newKey = rot.lastLine();
  EXPECT_EQ(newKey.size(), 64u) << rot.out;
  EXPECT_NE(rot.out.find("security.master_key"), std::string::npos);
  EXPECT_EQ(rot.out.find(kMaster), std::string::npos) << "old key printed";
  struct stat st {};
  EXPECT_NE(::stat((dir_.file("data") + "/master.key").c_str(), &st), 0);
  // With the new key in the config, everything works again.
  std::string text = rgtest::readFile(cfg);
  text.replace(text.find(kMaster), kMaster.size(), newKey);
  rgtest::writeFile(cfg, text);
  auto list = run({"keys", "list", "--config", cfg});
  EXPECT_EQ(list.exitCode, 0) << list.err;
  EXPECT_NE(list.out.find("cfgkey"), std::string::npos);
}

TEST_F(Cli, KeyBindingsCreateBindUnbindShowList) {
  std::string cfg = config();
  auto acct = run({"accounts", "add", "--config", cfg, "--type", "claude-console", "--name",
                   "bindme", "--base-url", "https://api.example.com", "--api-key", "sk-x-1234567"});
  ASSERT_EQ(acct.exitCode, 0) << acct.err;
  std::string acctId = acct.lastLine();
  auto created = run({"keys", "create", "--config", cfg, "--name", "bound", "--bind",
                      "claude=" + acctId, "--bind", "openai=group:team-a"});
  ASSERT_EQ(created.exitCode, 0) << created.err;
  std::string id = idFromShow(created.out);
  EXPECT_NE(created.out.find("bindings:     claude=" + acctId + ",openai=group:team-a"),
            std::string::npos)
      << created.out;
  auto list = run({"keys", "list", "--config", cfg});
  EXPECT_NE(list.out.find("claude=" + acctId), std::string::npos) << list.out;

  auto bind = run({"keys", "bind", "--config", cfg, id, "--bind", "claude=group:team-b", "--bind",
                   "bedrock=group:ops"});
  ASSERT_EQ(bind.exitCode, 0) << bind.err;
  auto show = run({"keys", "show", "--config", cfg, id});
  EXPECT_NE(show.out.find("bindings:     bedrock=group:ops,claude=group:team-b,"
                          "openai=group:team-a"),
            std::string::npos)
      << show.out;
  auto unbind = run({"keys", "unbind", "--config", cfg, id, "--provider", "claude"});
  ASSERT_EQ(unbind.exitCode, 0) << unbind.err;
  show = run({"keys", "show", "--config", cfg, id});
  EXPECT_NE(show.out.find("bindings:     bedrock=group:ops,openai=group:team-a\n"),
            std::string::npos)
      << show.out;

  // Errors: a provider mismatch, a bad group, an unknown provider, a missing binding.
  auto wrongProvider = run({"keys", "bind", "--config", cfg, id, "--bind", "openai=" + acctId});
  EXPECT_EQ(wrongProvider.exitCode, 1);
  EXPECT_NE(wrongProvider.err.find("of provider claude"), std::string::npos) << wrongProvider.err;
  auto badGroup =
      run({"keys", "create", "--config", cfg, "--name", "x", "--bind", "claude=group:no/slash"});
  EXPECT_EQ(badGroup.exitCode, 1);
  EXPECT_NE(badGroup.err.find("group name"), std::string::npos) << badGroup.err;
  auto badSyntax = run({"keys", "bind", "--config", cfg, id, "--bind", "claude"});
  EXPECT_EQ(badSyntax.exitCode, 1);
  EXPECT_NE(badSyntax.err.find("PROVIDER=ACCOUNT_ID"), std::string::npos) << badSyntax.err;
  auto notBound = run({"keys", "unbind", "--config", cfg, id, "--provider", "gemini"});
  EXPECT_EQ(notBound.exitCode, 1);
  EXPECT_NE(notBound.err.find("no binding for gemini"), std::string::npos) << notBound.err;
  show = run({"keys", "show", "--config", cfg, id});
  EXPECT_NE(show.out.find("bindings:     bedrock=group:ops,openai=group:team-a\n"),
            std::string::npos)
      << "a failed change altered the bindings: " << show.out;
}

TEST_F(Cli, KeyLimitsCreateUpdateShowList) {
  std::string cfg = config();
  auto created = run({"keys",
                      "create",
                      "--config",
                      cfg,
                      "--name",
                      "limited",
                      "--rate-window-min",
                      "60",
                      "--rate-cost",
                      "2.5",
                      "--daily-cost",
                      "10",
                      "--total-cost",
                      "100.000001",
                      "--weekly-cost",
                      "0.25",
                      "--weekly-reset-day",
                      "7",
                      "--weekly-reset-hour",
                      "23",
                      "--rate",
                      "1.5",
                      "--activation-days",
                      "3"});
  ASSERT_EQ(created.exitCode, 0) << created.err;
  std::string id = idFromShow(created.out);
  ASSERT_EQ(id.size(), 36u) << created.out;
  for (const char* line :
       {"rate window:  60 min, 0 requests, 0 tokens, $2.5 cost", "daily cost:   $10\n",
        "total cost:   $100.000001\n", "weekly cost:  $0.25 (week starts Sun 23:00)\n",
        "rate:         x1.5\n", "activation:   3 days after first use, not used yet\n",
        "expires:      never\n"}) {
    EXPECT_NE(created.out.find(line), std::string::npos) << line << " in\n" << created.out;
  }
  auto list = run({"keys", "list", "--config", cfg});
  ASSERT_EQ(list.exitCode, 0) << list.err;
  EXPECT_NE(list.out.find("LIMITS"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("window $2.5, daily $10, weekly $0.25, total $100.000001, rate x1.5, "
                          "activation 3 days"),
            std::string::npos)
      << list.out;

  auto updated = run({"keys", "update", "--config", cfg, id, "--daily-cost", "12.345678", "--rate",
                      "0.5", "--weekly-reset-day", "1"});
  ASSERT_EQ(updated.exitCode, 0) << updated.err;
  auto show = run({"keys", "show", "--config", cfg, id});
  ASSERT_EQ(show.exitCode, 0) << show.err;
  for (const char* line :
       {"daily cost:   $12.345678\n", "rate:         x0.5\n", "total cost:   $100.000001\n",
        "weekly cost:  $0.25 (week starts Mon 23:00)\n", "name:         limited\n"}) {
    EXPECT_NE(show.out.find(line), std::string::npos) << line << " in\n" << show.out;
  }

  // Refusals name the flag and change nothing.
  struct {
    std::vector<std::string> flags;
    const char* message;
  } refused[] = {
      {{"--daily-cost", "1.1234567"}, "--daily-cost: at most 6 decimal places"},
      {{"--daily-cost", "-1"}, "--daily-cost: must not be negative"},
      {{"--total-cost", "ten"}, "--total-cost: expected a USD amount"},
      {{"--rate-window-min", "0"}, "--rate-cost needs --rate-window-min"},
      {{"--rate", "0"}, "--rate: expected a decimal multiplier"},
      {{"--weekly-reset-day", "8"}, "--weekly-reset-day: expected 1 (Monday) .. 7 (Sunday)"},
      {{"--weekly-reset-hour", "24"}, "--weekly-reset-hour: expected 0..23"},
      {{"--activation-hours", "1", "--activation-days", "1"}, "either --activation-hours or"},
      {{"--expires-at", "2099-01-01"}, "--expires-at: the key has activation expiry"},
      {{"--name", "renamed"}, "unknown flag --name for keys update"},
      {{"--daily-cst", "5"}, "unknown flag --daily-cst"},
      {{}, "keys update needs at least one flag"},
  };
  for (const auto& c : refused) {
    std::vector<std::string> args = {"keys", "update", "--config", cfg, id};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto r = run(args);
    EXPECT_EQ(r.exitCode, 1) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.message << " <- " << r.err;
  }
  auto unknown = run(
      {"keys", "update", "--config", cfg, "00000000-0000-4000-8000-000000000000", "--rate", "2"});
  EXPECT_EQ(unknown.exitCode, 1);
  EXPECT_NE(unknown.err.find("no key with id"), std::string::npos) << unknown.err;
  auto same = run({"keys", "show", "--config", cfg, id});
  EXPECT_EQ(same.out, show.out) << "a refused update changed the key";

  // From activation expiry to a fixed one, and back to none.
  auto fixed = run({"keys", "update", "--config", cfg, id, "--activation-hours", "0",
                    "--expires-at", "2099-01-01T00:00:00Z"});
  ASSERT_EQ(fixed.exitCode, 0) << fixed.err;
  EXPECT_NE(fixed.out.find("activation:   none\n"), std::string::npos) << fixed.out;
  EXPECT_NE(fixed.out.find("expires:      2099-01-01T00:00:00Z"), std::string::npos) << fixed.out;
  auto never = run({"keys", "update", "--config", cfg, id, "--expires-at", "never"});
  ASSERT_EQ(never.exitCode, 0) << never.err;
  EXPECT_NE(never.out.find("expires:      never\n"), std::string::npos) << never.out;

  // Create: both kinds of expiry, and a window cost without a window.
  auto both = run({"keys", "create", "--config", cfg, "--name", "x", "--expires-at", "2099-01-01",
                   "--activation-hours", "5"});
  EXPECT_EQ(both.exitCode, 1);
  EXPECT_NE(both.err.find("--expires-at and --activation-hours / --activation-days exclude"),
            std::string::npos)
      << both.err;
  auto noWindow = run({"keys", "create", "--config", cfg, "--name", "x", "--rate-cost", "1"});
  EXPECT_EQ(noWindow.exitCode, 1);
  EXPECT_NE(noWindow.err.find("--rate-cost needs --rate-window-min"), std::string::npos)
      << noWindow.err;
  auto typo = run({"keys", "create", "--config", cfg, "--name", "x", "--daily-limit", "1"});
  EXPECT_EQ(typo.exitCode, 1);
  EXPECT_NE(typo.err.find("unknown flag --daily-limit for keys create"), std::string::npos)
      << typo.err;
  EXPECT_EQ(run({"keys", "list", "--config", cfg}).out.find(" x "), std::string::npos);
}

TEST_F(Cli, AccountsCooldownsListingAndReset) {
  std::string cfg = config();
  auto acct = run({"accounts", "add", "--config", cfg, "--type", "claude-console", "--name", "hot",
                   "--base-url", "https://api.example.com", "--api-key", "sk-x-7654321"});
  ASSERT_EQ(acct.exitCode, 0) << acct.err;
  std::string id = acct.lastLine();
  auto none = run({"accounts", "cooldowns", "--config", cfg});
  EXPECT_EQ(none.exitCode, 0) << none.err;
  EXPECT_NE(none.out.find("no account is cooling down"), std::string::npos) << none.out;

  int64_t until = sysClock().nowUnixMs() + 3600 * 1000;
  {
    auto store = rg::openEmbeddedStore(rg::EmbeddedOptions{dir_.file("data")}, sysClock());
    ASSERT_TRUE(store.isOk());
    rg::CooldownRecord whole{
        id, "", until, sysClock().nowUnixMs(), "rate_limited", "upstream rate limit", 429};
    rg::CooldownRecord opus{
        id, "opus", until, sysClock().nowUnixMs(), "overloaded", "opus overloaded", 529};
    ASSERT_TRUE((*store)->sched().setCooldown(whole).isOk());
    ASSERT_TRUE((*store)->sched().setCooldown(opus).isOk());
    auto rec = (*store)->accounts().get(id);
    ASSERT_TRUE(rec.isOk() && rec->has_value());
    rg::AccountRecord r = **rec;
    r.status = "error";
    r.statusReason = "token rejected";
    ASSERT_TRUE((*store)->accounts().update(r).isOk());
  }
  auto listed = run({"accounts", "cooldowns", "--config", cfg});
  ASSERT_EQ(listed.exitCode, 0) << listed.err;
  std::string whenIso;
  {
    std::time_t t = static_cast<std::time_t>(until / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    whenIso = buf;
  }
  EXPECT_NE(listed.out.find(id), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("hot"), std::string::npos);
  EXPECT_NE(listed.out.find(whenIso), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("rate_limited"), std::string::npos);
  EXPECT_NE(listed.out.find("opus overloaded"), std::string::npos);
  EXPECT_NE(listed.out.find("[429] upstream rate limit"), std::string::npos) << listed.out;
  EXPECT_NE(run({"accounts", "show", "--config", cfg, id}).out.find("status:       error"),
            std::string::npos);

  auto reset = run({"accounts", "reset", "--config", cfg, id});
  ASSERT_EQ(reset.exitCode, 0) << reset.err;
  EXPECT_NE(reset.out.find("was error"), std::string::npos) << reset.out;
  auto after = run({"accounts", "cooldowns", "--config", cfg});
  EXPECT_NE(after.out.find("no account is cooling down"), std::string::npos) << after.out;
  EXPECT_NE(run({"accounts", "show", "--config", cfg, id}).out.find("status:       active\n"),
            std::string::npos);
  auto unknown =
      run({"accounts", "reset", "--config", cfg, "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(unknown.exitCode, 1);
}

// The value of "label:  value" in `out`.
std::string field(const std::string& out, const std::string& label) {
  size_t p = out.find(label + ":");
  if (p == std::string::npos) {
    return "";
  }
  size_t b = out.find_first_not_of(' ', p + label.size() + 1);
  return out.substr(b, out.find('\n', b) - b);
}

TEST_F(Cli, OAuthUrlThenExchangeCreatesAClaudeOfficialAccount) {
  rgtest::FakeOAuth oauth;
  ASSERT_TRUE(oauth.start());
  std::map<std::string, std::string> env = {{"RG_CLAUDE_OAUTH_TOKEN_URL", oauth.tokenUrl()}};
  std::string cfg = config();
  auto url = rgtest::runCommand(
      kBin, {"accounts", "oauth-url", "--config", cfg, "--type", "claude-official"}, env);
  ASSERT_EQ(url.exitCode, 0) << url.err;
  std::string session = field(url.out, "session");
  std::string link = field(url.out, "url");
  ASSERT_FALSE(session.empty()) << url.out;
  EXPECT_NE(link.find("client_id=9d1c250a-e61b-44d9-88ed-5944d1962f5e"), std::string::npos) << link;
  EXPECT_NE(link.find("code_challenge="), std::string::npos) << link;
  EXPECT_NE(link.find("code_challenge_method=S256"), std::string::npos) << link;
  EXPECT_NE(url.out.find("oauth-exchange --session " + session), std::string::npos);

  auto setup =
      run({"accounts", "oauth-url", "--config", cfg, "--type", "claude-official", "--setup-token"});
  ASSERT_EQ(setup.exitCode, 0) << setup.err;
  EXPECT_NE(field(setup.out, "url").find("user%3Ainference"), std::string::npos) << setup.out;
  EXPECT_NE(field(setup.out, "session"), session);
  auto wrongType = run({"accounts", "oauth-url", "--config", cfg, "--type", "claude-console"});
  EXPECT_EQ(wrongType.exitCode, 1);

  std::string why;
  std::string code = oauth.authorize(link, &why);
  ASSERT_FALSE(code.empty()) << why;
  auto ex = rgtest::runCommand(kBin,
                               {"accounts", "oauth-exchange", "--config", cfg, "--session", session,
                                "--code", code + "#" + oauth.lastState(), "--name", "official-1",
                                "--priority", "7", "--groups", "team-a"},
                               env);
  ASSERT_EQ(ex.exitCode, 0) << ex.err;
  std::string access = oauth.lastAccessToken();
  std::string refresh = oauth.lastRefreshToken();
  ASSERT_FALSE(access.empty());
  for (const auto& t : {access, refresh}) {
    EXPECT_EQ(ex.out.find(t), std::string::npos) << "token printed";
    EXPECT_EQ(ex.err.find(t), std::string::npos) << "token printed";
  }
  std::string id = ex.lastLine();
  auto show = run({"accounts", "show", "--config", cfg, id});
  ASSERT_EQ(show.exitCode, 0) << show.err;
  EXPECT_NE(show.out.find("type:         claude-official"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("priority:     7"), std::string::npos);
  EXPECT_NE(show.out.find("groups:       team-a"), std::string::npos);
  EXPECT_NE(show.out.find("refresh_token"), std::string::npos) << show.out;
  EXPECT_EQ(show.out.find(access), std::string::npos);
  std::string journal = rgtest::readFile(dir_.file("data") + "/journal.jsonl");
  EXPECT_EQ(journal.find(access), std::string::npos) << "access token stored in clear";
  EXPECT_EQ(journal.find(refresh), std::string::npos) << "refresh token stored in clear";

  // The session is single-use.
  auto again = rgtest::runCommand(kBin,
                                  {"accounts", "oauth-exchange", "--config", cfg, "--session",
                                   session, "--code", code, "--name", "x"},
                                  env);
  EXPECT_EQ(again.exitCode, 1);
}

TEST_F(Cli, AccountsTestSendsOneTinyRequestThroughTheAccount) {
  rgtest::FakeAnthropic upstream;
  upstream.setDefault(rgtest::Script{});  // a canonical 200 unless a script is queued
  ASSERT_TRUE(upstream.start());
  std::string cfg = config();
  const std::string secret = "sk-ant-api03-ACCOUNT-TEST-SECRET-1";
  auto acct = run({"accounts", "add", "--config", cfg, "--type", "claude-console", "--name",
                   "probe", "--base-url", upstream.baseUrl(), "--api-key", secret});
  ASSERT_EQ(acct.exitCode, 0) << acct.err;
  std::string id = acct.lastLine();

  auto ok = run({"accounts", "test", "--config", cfg, id});
  EXPECT_EQ(ok.exitCode, 0) << ok.out << ok.err;
  EXPECT_EQ(ok.out.rfind("ok 200 in ", 0), 0u) << ok.out;
  EXPECT_NE(ok.out.find("(model claude-haiku-4-5-20251001)"), std::string::npos) << ok.out;
  ASSERT_EQ(upstream.requestCount(), 1u);
  auto req = upstream.requests().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.uri.rfind("/v1/messages", 0), 0u) << req.uri;
  EXPECT_NE(req.body.find("\"max_tokens\":1"), std::string::npos) << req.body;
  EXPECT_EQ(req.header("x-api-key"), secret);

  rgtest::Script denied;
  denied.status = 401;
  denied.headers = {{"content-type", "application/json"}};
  denied.body =
      "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
      "\"message\":\"invalid x-api-key " +
      secret + "\"}}";
  upstream.enqueue(denied);
  auto bad = run({"accounts", "test", "--config", cfg, id, "--model", "claude-sonnet-4-5"});
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_NE(bad.out.find("failed 401 in "), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("invalid x-api-key"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("(model claude-sonnet-4-5)"), std::string::npos) << bad.out;
  EXPECT_EQ(bad.out.find(secret), std::string::npos) << "an echoed secret was printed";

  // The account's mapping applies; a model it does not serve is refused before sending.
  ASSERT_EQ(run({"accounts", "update", "--config", cfg, id, "--model-map",
                 "small=claude-haiku-4-5-20251001"})
                .exitCode,
            0);
  size_t before = upstream.requestCount();
  auto mapped = run({"accounts", "test", "--config", cfg, id, "--model", "small"});
  EXPECT_EQ(mapped.exitCode, 0) << mapped.out << mapped.err;
  EXPECT_NE(mapped.out.find("(model claude-haiku-4-5-20251001)"), std::string::npos) << mapped.out;
  auto unmapped = run({"accounts", "test", "--config", cfg, id, "--model", "claude-opus-4"});
  EXPECT_EQ(unmapped.exitCode, 1);
  EXPECT_NE(unmapped.err.find("does not serve model claude-opus-4"), std::string::npos)
      << unmapped.err;
  EXPECT_EQ(upstream.requestCount(), before + 1);

  // Nothing listening: a clear failure, exit 1.
  upstream.stop();
  auto down = run({"accounts", "test", "--config", cfg, id});
  EXPECT_EQ(down.exitCode, 1);
  EXPECT_NE(down.out.find("failed in "), std::string::npos) << down.out;
}

}  // namespace
