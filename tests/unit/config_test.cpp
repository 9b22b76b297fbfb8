#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "fakes/support.h"

namespace rgtest {
namespace {

using rg::Config;
using Env = std::map<std::string, std::string>;

rg::StatusOr<Config> parse(const std::string& yaml, const Env& env = {}) {
  return rg::parseConfigText(yaml, "test.yaml", [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

// The error message for a config that must not parse.
std::string errorOf(const std::string& yaml, const Env& env = {}) {
  auto r = parse(yaml, env);
  EXPECT_FALSE(r.isOk()) << "parsed unexpectedly:\n" << yaml;
  return r.isOk() ? std::string() : r.status().message();
}

std::string cwdPath(const std::string& rel) {
  return (std::filesystem::current_path() / rel).lexically_normal().string();
}

TEST(ConfigTest, EmptyFileGivesDefaults) {
  auto r = parse("");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  const Config& c = *r;
  EXPECT_EQ(c.server.host, "127.0.0.1");
  EXPECT_EQ(c.server.port, 8787);
  EXPECT_EQ(c.server.workerThreads, 256);
  EXPECT_EQ(c.server.requestTimeoutMs, 600000);
  EXPECT_EQ(c.server.idleTimeoutMs, 65000);
  EXPECT_EQ(c.server.upstreamConnectTimeoutMs, 10000);
  EXPECT_EQ(c.server.upstreamTimeoutMs, 600000);
  EXPECT_EQ(c.server.maxBodyBytes, 100LL << 20);
  EXPECT_EQ(c.server.drainTimeoutMs, 30000);
  EXPECT_EQ(c.storage.backend, "embedded");
  EXPECT_EQ(c.storage.dataDir, cwdPath("data"));
  EXPECT_FALSE(c.storage.fsync);
  EXPECT_EQ(c.storage.redisUrl, "redis://127.0.0.1:6379");
  EXPECT_EQ(c.storage.redisPassword, "");
  EXPECT_EQ(c.storage.redisDb, -1);
  EXPECT_EQ(c.storage.keyPrefix, "rg:");
  EXPECT_EQ(c.storage.redisPoolSize, 8);
  EXPECT_EQ(c.security.masterKey, "");
  EXPECT_EQ(c.logging.level, "info");
  EXPECT_EQ(c.logging.format, "text");
  EXPECT_EQ(c.plugins.directory, rg::defaultPluginDirectory());
  EXPECT_TRUE(c.plugins.enabled.empty());
  EXPECT_EQ(c.sourcePath, "test.yaml");
}

TEST(ConfigTest, DefaultPluginDirPrefersTheBuildDir) {
  std::error_code ec;
  bool buildDirExists = std::filesystem::is_directory(RG_DEFAULT_PLUGIN_DIR, ec);
  EXPECT_EQ(rg::defaultPluginDirectory(),
            buildDirExists ? RG_DEFAULT_PLUGIN_DIR : RG_INSTALLED_PLUGIN_DIR);
}

TEST(ConfigTest, EmptySectionsAndNullValuesKeepDefaults) {
  auto r = parse("server:\n  port:\nstorage:\nlogging: ~\n");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->server.port, 8787);
  EXPECT_EQ(r->storage.backend, "embedded");
}

TEST(ConfigTest, FullValidFile) {
  const std::string yaml = R"(server:
  host: 0.0.0.0
  port: 9000
  worker_threads: 64
  request_timeout_ms: 1000
  idle_timeout_ms: 2000
  upstream_connect_timeout_ms: 3000
  upstream_timeout_ms: 4000
  max_body_bytes: 10000000000
  drain_timeout_ms: 5000
storage:
  backend: redis
  data_dir: /var/lib/relaygate
  fsync: true
  redis:
    url: redis://cache.internal:6380/2
    password: hunter2hunter2
    db: 3
    key_prefix: "prod:"
    pool_size: 16
security:
  master_key: 0123456789abcdef0123456789abcdef
logging:
  level: debug
  format: json
plugins:
  directory: /opt/relaygate/plugins
  enabled:
    - name: claude
      config: {models: [claude-sonnet-4-5]}
    - name: slack_notify-2
      enabled: false
)";
  auto r = parse(yaml);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  const Config& c = *r;
  EXPECT_EQ(c.server.host, "0.0.0.0");
  EXPECT_EQ(c.server.port, 9000);
  EXPECT_EQ(c.server.workerThreads, 64);
  EXPECT_EQ(c.server.requestTimeoutMs, 1000);
  EXPECT_EQ(c.server.idleTimeoutMs, 2000);
  EXPECT_EQ(c.server.upstreamConnectTimeoutMs, 3000);
  EXPECT_EQ(c.server.upstreamTimeoutMs, 4000);
  EXPECT_EQ(c.server.maxBodyBytes, 10000000000LL);
  EXPECT_EQ(c.server.drainTimeoutMs, 5000);
  EXPECT_EQ(c.storage.backend, "redis");
  EXPECT_EQ(c.storage.dataDir, "/var/lib/relaygate");
  EXPECT_TRUE(c.storage.fsync);
  EXPECT_EQ(c.storage.redisUrl, "redis://cache.internal:6380/2");
  EXPECT_EQ(c.storage.redisPassword, "hunter2hunter2");
  EXPECT_EQ(c.storage.redisDb, 3);
  EXPECT_EQ(c.storage.keyPrefix, "prod:");
  EXPECT_EQ(c.storage.redisPoolSize, 16);
  EXPECT_EQ(c.security.masterKey, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c.logging.level, "debug");
  EXPECT_EQ(c.logging.format, "json");
  EXPECT_EQ(c.plugins.directory, "/opt/relaygate/plugins");
  ASSERT_EQ(c.plugins.enabled.size(), 2u);
  EXPECT_EQ(c.plugins.enabled[0].name, "claude");
  EXPECT_TRUE(c.plugins.enabled[0].enabled);
  EXPECT_EQ(c.plugins.enabled[0].configJson, R"({"models":["claude-sonnet-4-5"]})");
  EXPECT_EQ(c.plugins.enabled[1].name, "slack_notify-2");
  EXPECT_FALSE(c.plugins.enabled[1].enabled);
  EXPECT_EQ(c.plugins.enabled[1].configJson, "{}");
}

TEST(ConfigTest, RelativePathsResolveAgainstTheWorkingDirectory) {
  auto r = parse("storage:\n  data_dir: ./state/../var\nplugins:\n  directory: plugs\n");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->storage.dataDir, cwdPath("var"));
  EXPECT_EQ(r->plugins.directory, cwdPath("plugs"));
}

// ---- error classes: exact message and line ----

TEST(ConfigErrorTest, EnumValue) {
  EXPECT_EQ(errorOf("server:\n  port: 8080\n\n\n\n\n\n\n\n\nstorage:\n  backend: mysql\n"),
            "storage.backend: expected one of embedded, redis, got \"mysql\" (line 12)");
  EXPECT_EQ(errorOf("logging:\n  level: verbose\n"),
            "logging.level: expected one of trace, debug, info, warn, error, got \"verbose\" "
            "(line 2)");
  EXPECT_EQ(errorOf("logging:\n  format: xml\n"),
            "logging.format: expected one of text, json, got \"xml\" (line 2)");
}

TEST(ConfigErrorTest, UnknownKeyWithSuggestion) {
  EXPECT_EQ(errorOf("server:\n  host: 127.0.0.1\n  prot: 80\n"),
            "server.prot: unknown key (line 3); did you mean \"port\"?");
  EXPECT_EQ(errorOf("server:\n  completely_different: 1\n"),
            "server.completely_different: unknown key (line 2)");
  EXPECT_EQ(errorOf("\nstorge:\n  backend: redis\n"),
            "storge: unknown key (line 2); did you mean \"storage\"?");
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - name: a\n      confg: {}\n"),
            "plugins.enabled[0].confg: unknown key (line 4); did you mean \"config\"?");
}

TEST(ConfigErrorTest, WrongTypes) {
  EXPECT_EQ(errorOf("server:\n  port: abc\n"),
            "server.port: expected an integer, got \"abc\" (line 2)");
  EXPECT_EQ(errorOf("server:\n  port: 80.5\n"),
            "server.port: expected an integer, got \"80.5\" (line 2)");
  EXPECT_EQ(errorOf("server:\n  port: [1]\n"),
            "server.port: expected an integer, got a sequence (line 2)");
  EXPECT_EQ(errorOf("server: 5\n"), "server: expected a mapping, got a scalar (line 1)");
  EXPECT_EQ(errorOf("- a\n- b\n"), "<root>: expected a mapping, got a sequence (line 1)");
  EXPECT_EQ(errorOf("storage:\n  fsync: maybe\n"),
            "storage.fsync: expected a boolean (true or false), got \"maybe\" (line 2)");
  EXPECT_EQ(errorOf("server:\n  host: {a: 1}\n"),
            "server.host: expected a string, got a mapping (line 2)");
  EXPECT_EQ(errorOf("plugins:\n  enabled: claude\n"),
            "plugins.enabled: expected a sequence of plugin entries, got a scalar (line 2)");
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - claude\n"),
            "plugins.enabled[0]: expected a mapping with name, enabled, config, got a scalar "
            "(line 3)");
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - name: a\n      config: [1]\n"),
            "plugins.enabled[0].config: expected a mapping, got a sequence (line 4)");
}

TEST(ConfigErrorTest, Ranges) {
  EXPECT_EQ(errorOf("server:\n  port: 70000\n"),
            "server.port: must be between 0 and 65535, got 70000 (line 2)");
  EXPECT_EQ(errorOf("server:\n  port: -1\n"),
            "server.port: must be between 0 and 65535, got -1 (line 2)");
  EXPECT_EQ(errorOf("server:\n  worker_threads: 0\n"),
            "server.worker_threads: must be between 1 and 10000, got 0 (line 2)");
  EXPECT_EQ(errorOf("server:\n  worker_threads: 10001\n"),
            "server.worker_threads: must be between 1 and 10000, got 10001 (line 2)");
  for (const char* key : {"request_timeout_ms", "idle_timeout_ms", "upstream_connect_timeout_ms",
                          "upstream_timeout_ms", "drain_timeout_ms", "max_body_bytes"}) {
    EXPECT_EQ(errorOf(std::string("server:\n  ") + key + ": 0\n"),
              std::string("server.") + key + ": must be greater than 0, got 0 (line 2)");
  }
  EXPECT_EQ(errorOf("server:\n  request_timeout_ms: 99999999999\n"),
            "server.request_timeout_ms: must be greater than 0, got 99999999999 (line 2)");
  EXPECT_EQ(errorOf("storage:\n  redis:\n    pool_size: 0\n"),
            "storage.redis.pool_size: must be between 1 and 1024, got 0 (line 3)");
  EXPECT_TRUE(parse("server:\n  port: 0\n").isOk());
  EXPECT_TRUE(parse("server:\n  port: 65535\n").isOk());
}

TEST(ConfigErrorTest, PluginNameRequiredCharsetAndDuplicates) {
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - enabled: true\n"),
            "plugins.enabled[0].name: required (line 3)");
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - name: \"\"\n"),
            "plugins.enabled[0].name: required (line 3)");
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - name: Claude\n"),
            "plugins.enabled[0].name: must contain only a-z, 0-9, '_' and '-', got \"Claude\" "
            "(line 3)");
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - name: ../evil\n"),
            "plugins.enabled[0].name: must contain only a-z, 0-9, '_' and '-', got \"../evil\" "
            "(line 3)");
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - name: claude\n    - name: other\n"
                    "    - enabled: false\n      name: claude\n"),
            "plugins.enabled[2].name: duplicate plugin \"claude\", already listed at "
            "plugins.enabled[0] (line 6)");
}

TEST(ConfigErrorTest, DuplicateKeys) {
  EXPECT_EQ(errorOf("server:\n  port: 1\n  port: 2\n"), "server.port: duplicate key (line 3)");
}

TEST(ConfigErrorTest, YamlSyntaxError) {
  std::string msg = errorOf("server:\n  port: [1, 2\n");
  EXPECT_EQ(msg.rfind("YAML syntax error: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("(line "), std::string::npos) << msg;
}

TEST(ConfigErrorTest, SecretsAreNeverEchoedInErrors) {
  std::string msg = errorOf("security:\n  master_key: tooshort\n");
  EXPECT_EQ(msg,
            "security.master_key: must be at least 16 characters (or empty to generate one) "
            "(line 2)");
  msg = errorOf("storage:\n  redis:\n    url: http://user:pa55word@host\n");
  EXPECT_EQ(msg,
            "storage.redis.url: expected a redis:// URL (rediss:// needs TLS, which hiredis "
            "0.14 lacks) (line 3)");
  msg = errorOf("security:\n  master_key: \"${sk-ant-pasted-secret}\"\n");
  EXPECT_EQ(msg, "security.master_key: invalid environment variable name in value (line 2)");
  msg = errorOf("storage:\n  redis:\n    password: \"${pa55-word}\"\n");
  EXPECT_EQ(msg, "storage.redis.password: invalid environment variable name in value (line 3)");
}

TEST(ConfigErrorTest, AllErrorsReportedSortedByLine) {
  EXPECT_EQ(errorOf("logging:\n  level: loud\nserver:\n  port: x\n  prot: 1\n"),
            "logging.level: expected one of trace, debug, info, warn, error, got \"loud\" "
            "(line 2)\n"
            "server.port: expected an integer, got \"x\" (line 4)\n"
            "server.prot: unknown key (line 5); did you mean \"port\"?");
}

// ---- interpolation ----

TEST(ConfigInterpolationTest, SetUnsetDefaultEscape) {
  const std::string yaml =
      "server:\n  host: ${HOST}\n  port: ${PORT:-8080}\n"
      "storage:\n  redis:\n    key_prefix: \"$$a$$${P:-x}-${Q:-}$5 $\"\n";
  auto r = parse(yaml, {{"HOST", "10.1.2.3"}});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->server.host, "10.1.2.3");
  EXPECT_EQ(r->server.port, 8080);
  EXPECT_EQ(r->storage.keyPrefix, "$a$x-$5 $");

  r = parse(yaml, {{"HOST", "h"}, {"PORT", "9090"}, {"P", "p"}, {"Q", "q"}});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->server.port, 9090);
  EXPECT_EQ(r->storage.keyPrefix, "$a$p-q$5 $");

  // Set but empty: ${VAR} gives "", ${VAR:-d} gives the default (as in the shell).
  r = parse(yaml, {{"HOST", ""}, {"PORT", ""}});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->server.host, "");
  EXPECT_EQ(r->server.port, 8080);
}

TEST(ConfigInterpolationTest, UnsetWithoutDefaultNamesVariableAndPath) {
  EXPECT_EQ(errorOf("server:\n  host: ${HOST}\n"),
            "server.host: environment variable HOST is not set and has no default (line 2)");
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - name: a\n      config:\n        k:\n"
                    "          - x\n          - ${K}\n"),
            "plugins.enabled[0].config.k[1]: environment variable K is not set and has no "
            "default (line 7)");
}

TEST(ConfigInterpolationTest, HappensBeforeTypeConversion) {
  EXPECT_EQ(errorOf("server:\n  port: ${PORT}\n", {{"PORT", "eighty"}}),
            "server.port: expected an integer, got \"eighty\" (line 2)");
  EXPECT_EQ(errorOf("server:\n  port: ${PORT:-99999}\n"),
            "server.port: must be between 0 and 65535, got 99999 (line 2)");
  auto r = parse("storage:\n  fsync: ${F}\n  backend: ${B:-redis}\n", {{"F", "true"}});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_TRUE(r->storage.fsync);
  EXPECT_EQ(r->storage.backend, "redis");
}

TEST(ConfigInterpolationTest, DefaultMayContainColonsAndSlashes) {
  auto r = parse("storage:\n  redis:\n    url: ${U:-redis://h:1/0}\n");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->storage.redisUrl, "redis://h:1/0");
}

TEST(ConfigInterpolationTest, MalformedReferences) {
  EXPECT_EQ(errorOf("server:\n  host: \"${HOST\"\n"),
            "server.host: unterminated \"${\" in value (line 2)");
  EXPECT_EQ(errorOf("server:\n  host: \"${}\"\n"),
            "server.host: invalid environment variable name \"\" in \"${}\" (line 2)");
  EXPECT_EQ(errorOf("server:\n  host: \"${1A:-x}\"\n"),
            "server.host: invalid environment variable name \"1A\" in \"${1A:-x}\" (line 2)");
}

TEST(ConfigInterpolationTest, UsesProcessEnvironmentByDefault) {
  ::setenv("RG_CONFIG_TEST_HOST_VAR", "192.0.2.7", 1);
  auto r = rg::parseConfigText("server:\n  host: ${RG_CONFIG_TEST_HOST_VAR}\n", "x");
  ::unsetenv("RG_CONFIG_TEST_HOST_VAR");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->server.host, "192.0.2.7");
}

// ---- plugin config -> JSON ----

TEST(ConfigPluginJsonTest, ScalarTypesFollowYamlCoreSchema) {
  const std::string yaml = R"(plugins:
  enabled:
    - name: claude
      config:
        models: [a, "b"]
        max_tokens: 4096
        temperature: 0.5
        exp: 2.5e3
        negative: -3
        stream: true
        off: False
        quoted_num: "42"
        quoted_bool: 'true'
        nothing: ~
        also_nothing:
        nested: {k: v, list: [1, {deep: null}]}
        text: hello world
        from_env: ${LIMIT:-100}
        quoted_env: "${LIMIT:-100}"
        yes_word: yes
        version: 1.2.3
        weird: "quote \" back\\slash\nnewline"
        leading_zero: 007
        huge: 123456789012345678901234567890
)";
  auto r = parse(yaml);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->plugins.enabled.size(), 1u);
  EXPECT_EQ(r->plugins.enabled[0].configJson,
            R"({"models":["a","b"],"max_tokens":4096,"temperature":0.5,"exp":2500,)"
            R"("negative":-3,"stream":true,"off":false,"quoted_num":"42","quoted_bool":"true",)"
            R"("nothing":null,"also_nothing":null,"nested":{"k":"v","list":[1,{"deep":null}]},)"
            R"("text":"hello world","from_env":100,"quoted_env":"100","yes_word":"yes",)"
            R"("version":"1.2.3","weird":"quote \" back\\slash\nnewline","leading_zero":7,)"
            R"("huge":1.2345678901234568e+29})");
}

TEST(ConfigPluginJsonTest, DuplicateKeyInPluginConfig) {
  EXPECT_EQ(errorOf("plugins:\n  enabled:\n    - name: a\n      config:\n        k: 1\n"
                    "        k: 2\n"),
            "plugins.enabled[0].config.k: duplicate key (line 6)");
}

// ---- masking ----

TEST(ConfigMaskTest, SecretsAreMaskedEverywhere) {
  const std::string yaml = R"(storage:
  redis:
    url: redis://admin:url-password-5678@cache:6379/1
    password: redis-password-1234
security:
  master_key: master-key-material-abcd
plugins:
  enabled:
    - name: claude
      config:
        api_key: sk-ant-api03-plugin-secret-wxyz
        nested: {access_token: tok-short, max_tokens: 100}
        models: [a]
)";
  auto r = parse(yaml);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  std::string out = rg::renderConfigMasked(*r);
  for (const char* secret :
       {"url-password", "redis-password", "master-key-material", "plugin-secret", "tok-short"}) {
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " leaked:\n" << out;
  }
  EXPECT_NE(out.find("url: \"redis://admin:****5678@cache:6379/1\""), std::string::npos) << out;
  EXPECT_NE(out.find("password: \"****1234\""), std::string::npos) << out;
  EXPECT_NE(out.find("master_key: \"****abcd\""), std::string::npos) << out;
  EXPECT_NE(out.find(R"(config: {"api_key": "****wxyz", "nested": {"access_token": "****", )"
                     R"("max_tokens": 100}, "models": ["a"]})"),
            std::string::npos)
      << out;
}

TEST(ConfigMaskTest, RedisUrlForms) {
  EXPECT_EQ(rg::maskRedisUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
  EXPECT_EQ(rg::maskRedisUrl("redis://:a-long-password@h:1/0"), "redis://:****word@h:1/0");
  EXPECT_EQ(rg::maskRedisUrl("redis://user:short@h"), "redis://user:****@h");
  EXPECT_EQ(rg::maskRedisUrl("redis://bare-password-only@h"), "redis://****only@h");
  EXPECT_EQ(rg::maskRedisUrl("rediss://u:p@ss@h:1"), "rediss://u:****@h:1");
}

TEST(ConfigMaskTest, RenderedConfigParsesBackToTheSameValues) {
  const std::string yaml = R"(server:
  host: "0.0.0.0"
  port: 1234
storage:
  data_dir: /tmp/with $$dollar
  redis:
    key_prefix: "a\"b"
plugins:
  directory: /opt/p
  enabled:
    - name: claude
      enabled: false
      config: {models: [x, "2"], n: 3, f: 0.25, s: "$${NOT_A_VAR}", q: "\"", e: [], m: {}}
)";
  auto r = parse(yaml);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  std::string out = rg::renderConfigMasked(*r);
  auto again = parse(out);
  ASSERT_TRUE(again.isOk()) << again.status().message() << "\n" << out;
  EXPECT_EQ(again->server.host, "0.0.0.0");
  EXPECT_EQ(again->server.port, 1234);
  EXPECT_EQ(again->storage.dataDir, "/tmp/with $dollar");
  EXPECT_EQ(again->storage.keyPrefix, "a\"b");
  EXPECT_EQ(again->plugins.directory, "/opt/p");
  ASSERT_EQ(again->plugins.enabled.size(), 1u);
  EXPECT_FALSE(again->plugins.enabled[0].enabled);
  EXPECT_EQ(again->plugins.enabled[0].configJson, r->plugins.enabled[0].configJson);
  EXPECT_EQ(r->plugins.enabled[0].configJson,
            R"({"models":["x","2"],"n":3,"f":0.25,"s":"${NOT_A_VAR}","q":"\"","e":[],"m":{}})");
}

// ---- files ----

TEST(ConfigFileTest, LoadsFromDiskAndReportsMissingFiles) {
  TempDir dir;
  writeFile(dir.file("c.yaml"), "server:\n  port: 4321\n");
  auto r = rg::loadConfigFile(dir.file("c.yaml"));
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->server.port, 4321);
  EXPECT_EQ(r->sourcePath, dir.file("c.yaml"));
  auto missing = rg::loadConfigFile(dir.file("nope.yaml"));
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("nope.yaml"), std::string::npos);
}

TEST(ConfigFileTest, ExampleConfigParsesWithACleanEnvironment) {
  std::string text = readFile(std::string(RG_TEST_SOURCE_DIR) + "/config/relaygate.example.yaml");
  ASSERT_FALSE(text.empty());
  auto r = parse(text);  // no variables set at all
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->server.host, "127.0.0.1");
  EXPECT_EQ(r->server.port, 8787);
  EXPECT_EQ(r->storage.backend, "embedded");
  EXPECT_EQ(r->storage.dataDir, cwdPath("data"));
  EXPECT_EQ(r->storage.redisUrl, "redis://127.0.0.1:6379");
  EXPECT_EQ(r->security.masterKey, "");
  EXPECT_EQ(r->logging.level, "info");
  EXPECT_EQ(r->logging.format, "text");
  EXPECT_EQ(r->plugins.directory, rg::defaultPluginDirectory());
  ASSERT_EQ(r->plugins.enabled.size(), 1u);
  EXPECT_EQ(r->plugins.enabled[0].name, "claude");
  EXPECT_TRUE(r->plugins.enabled[0].enabled);
  EXPECT_EQ(r->plugins.enabled[0].configJson.rfind(R"({"models":["claude-)", 0), 0u)
      << r->plugins.enabled[0].configJson;

  // The variables the README documents override it.
  auto o = parse(text, {{"RELAYGATE_PORT", "9999"},
                        {"RELAYGATE_DATA_DIR", "/srv/rg"},
                        {"RELAYGATE_PLUGIN_DIR", "/opt/plugins"},
                        {"RELAYGATE_REDIS_URL", "redis://r:6380"}});
  ASSERT_TRUE(o.isOk()) << o.status().message();
  EXPECT_EQ(o->server.port, 9999);
  EXPECT_EQ(o->storage.dataDir, "/srv/rg");
  EXPECT_EQ(o->plugins.directory, "/opt/plugins");
  EXPECT_EQ(o->storage.redisUrl, "redis://r:6380");
}

// ---- pricing ----

TEST(ConfigPricingTest, DefaultsToTheShippedTableAndRateOne) {
  auto r = parse("");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->pricing.file, rg::defaultPricingFile());
  EXPECT_EQ(r->pricing.overrideFile, "");
  EXPECT_EQ(r->pricing.globalRate, "1");
  std::error_code ec;
  bool sourceTableExists = std::filesystem::is_regular_file(RG_DEFAULT_PRICING_FILE, ec);
  EXPECT_EQ(rg::defaultPricingFile(),
            sourceTableExists ? RG_DEFAULT_PRICING_FILE : RG_INSTALLED_PRICING_FILE);
  // This test runs from a build of the source tree, which ships the table.
  EXPECT_TRUE(sourceTableExists);
}

TEST(ConfigPricingTest, ValuesAndRelativePaths) {
  auto r = parse(
      "pricing:\n  file: prices/base.json\n  override_file: /etc/rg/over.json\n"
      "  global_rate: 1.25\n");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->pricing.file, cwdPath("prices/base.json"));
  EXPECT_EQ(r->pricing.overrideFile, "/etc/rg/over.json");
  EXPECT_EQ(r->pricing.globalRate, "1.25");
  auto quoted =
      parse("pricing:\n  global_rate: \"0.000001\"\n  override_file: ${OV}\n", {{"OV", "o.json"}});
  ASSERT_TRUE(quoted.isOk()) << quoted.status().message();
  EXPECT_EQ(quoted->pricing.globalRate, "0.000001");
  EXPECT_EQ(quoted->pricing.overrideFile, cwdPath("o.json"));
  auto nulls = parse("pricing:\n  file:\n  global_rate:\n");
  ASSERT_TRUE(nulls.isOk()) << nulls.status().message();
  EXPECT_EQ(nulls->pricing.file, rg::defaultPricingFile());
  EXPECT_EQ(nulls->pricing.globalRate, "1");
}

TEST(ConfigPricingTest, ErrorsNamePathAndLine) {
  EXPECT_EQ(errorOf("pricing:\n  global_rate: -1\n"),
            "pricing.global_rate: expected a decimal between 0 and 1000 with at most 6 "
            "fractional digits, got \"-1\" (line 2)");
  EXPECT_EQ(errorOf("pricing:\n\n  global_rate: 1.0000001\n"),
            "pricing.global_rate: expected a decimal between 0 and 1000 with at most 6 "
            "fractional digits, got \"1.0000001\" (line 3)");
  EXPECT_EQ(errorOf("pricing:\n  global_rate: 1001\n"),
            "pricing.global_rate: expected a decimal between 0 and 1000 with at most 6 "
            "fractional digits, got \"1001\" (line 2)");
  EXPECT_EQ(errorOf("pricing:\n  global_rate: [1]\n"),
            "pricing.global_rate: expected a decimal string, got a sequence (line 2)");
  EXPECT_EQ(errorOf("pricing:\n  file: \"\"\n"),
            "pricing.file: must not be empty (leave the key out for the default) (line 2)");
  EXPECT_EQ(errorOf("pricing:\n  overide_file: x\n"),
            "pricing.overide_file: unknown key (line 2); did you mean \"override_file\"?");
  EXPECT_EQ(errorOf("pricing: 3\n"), "pricing: expected a mapping, got a scalar (line 1)");
}

TEST(ConfigPricingTest, RenderedPricingParsesBack) {
  auto r = parse("pricing:\n  file: /opt/p.json\n  global_rate: 0.5\n");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  std::string out = rg::renderConfigMasked(*r);
  EXPECT_NE(out.find("pricing:\n  file: "), std::string::npos) << out;
  auto again = parse(out);
  ASSERT_TRUE(again.isOk()) << again.status().message() << "\n" << out;
  EXPECT_EQ(again->pricing.file, "/opt/p.json");
  EXPECT_EQ(again->pricing.overrideFile, "");
  EXPECT_EQ(again->pricing.globalRate, "0.5");
}

TEST(ConfigSchedulerTest, DefaultsValuesAndRenderedForm) {
  auto d = parse("");
  ASSERT_TRUE(d.isOk());
  EXPECT_EQ(d->scheduler.maxAttempts, 3);
  EXPECT_EQ(d->scheduler.stickyTtlMs, 3600000);
  EXPECT_EQ(d->scheduler.authCooldownMs, 1800000);
  EXPECT_EQ(d->scheduler.overloadedCooldownMs, 600000);
  EXPECT_EQ(d->scheduler.unavailableCooldownMs, 60000);
  EXPECT_EQ(d->scheduler.transientCooldownMs, 300000);
  EXPECT_EQ(d->scheduler.retryAfterCapMs, 1800000);
  EXPECT_EQ(d->oauth.claude.tokenUrl, "https://platform.claude.com/v1/oauth/token");
  EXPECT_TRUE(d->admin.enabled);
  EXPECT_EQ(d->admin.token, "");
  auto r = parse(
      "scheduler:\n  max_attempts: 1\n  sticky_ttl_ms: 60000\n  sticky_renew_threshold_ms: 0\n"
      "  overloaded_cooldown_ms: 0\n  state_refresh_ms: 250\n"
      "oauth:\n  claude:\n    token_url: http://127.0.0.1:9/token\n    refresh_lead_ms: 5000\n"
      "admin:\n  enabled: false\n");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->scheduler.maxAttempts, 1);
  EXPECT_EQ(r->scheduler.stickyTtlMs, 60000);
  EXPECT_EQ(r->scheduler.stickyRenewThresholdMs, 0);
  EXPECT_EQ(r->scheduler.overloadedCooldownMs, 0);
  EXPECT_EQ(r->scheduler.stateRefreshMs, 250);
  EXPECT_EQ(r->oauth.claude.tokenUrl, "http://127.0.0.1:9/token");
  EXPECT_EQ(r->oauth.claude.refreshLeadMs, 5000);
  EXPECT_FALSE(r->admin.enabled);
  auto again = parse(rg::renderConfigMasked(*r));
  ASSERT_TRUE(again.isOk()) << again.status().message();
  EXPECT_EQ(again->scheduler.stateRefreshMs, 250);
  EXPECT_EQ(again->oauth.claude.tokenUrl, "http://127.0.0.1:9/token");
  EXPECT_FALSE(again->admin.enabled);
}

TEST(ConfigSchedulerTest, ErrorsNamePathAndLine) {
  EXPECT_EQ(errorOf("scheduler:\n  max_attempts: 0\n"),
            "scheduler.max_attempts: must be between 1 and 10, got 0 (line 2)");
  EXPECT_EQ(errorOf("scheduler:\n  state_refresh_ms: 10\n"),
            "scheduler.state_refresh_ms: must be between 100 and 60000, got 10 (line 2)");
  EXPECT_EQ(errorOf("oauth:\n  claude:\n    token_url: ftp://x\n"),
            "oauth.claude.token_url: expected an http:// or https:// URL, got \"ftp://x\" "
            "(line 3)");
  EXPECT_EQ(errorOf("scheduler:\n  sticky_tll_ms: 5\n"),
            "scheduler.sticky_tll_ms: unknown key (line 2); did you mean \"sticky_ttl_ms\"?");
  // A short admin token is refused without echoing it.
  std::string e = errorOf("admin:\n  token: short-secret\n");
  EXPECT_EQ(e, "admin.token: must be at least 32 characters (or empty to generate one) (line 2)");
  EXPECT_EQ(e.find("short-secret"), std::string::npos);
}

TEST(ConfigSchedulerTest, AdminTokenIsMasked) {
  auto r = parse("admin:\n  token: abcdefghijklmnopqrstuvwxyz0123456789\n");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  std::string out = rg::renderConfigMasked(*r);
  EXPECT_EQ(out.find("abcdefghijklmnopqrstuvwxyz0123456789"), std::string::npos) << out;
  EXPECT_NE(out.find("admin:\n  enabled: true\n  token: "), std::string::npos) << out;
}

TEST(ConfigLimitsTest, DefaultsValuesErrorsAndRenderedForm) {
  auto d = parse("");
  ASSERT_TRUE(d.isOk());
  EXPECT_EQ(d->limits.defaultMaxOutputTokens, 4096);
  EXPECT_EQ(d->limits.reserveOutputTokensCap, 0);
  EXPECT_FALSE(d->limits.queueEnabled);
  EXPECT_EQ(d->limits.queueWaitMs, 10000);
  EXPECT_EQ(d->limits.queueMaxPerKey, 32);
  auto r = parse(
      "limits:\n  default_max_output_tokens: 1000\n  reserve_output_tokens_cap: 8192\n"
      "  queue_enabled: true\n"
      "  queue_wait_ms: 2500\n  queue_max_per_key: 3\n");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->limits.defaultMaxOutputTokens, 1000);
  EXPECT_TRUE(r->limits.queueEnabled);
  EXPECT_EQ(r->limits.queueWaitMs, 2500);
  EXPECT_EQ(r->limits.queueMaxPerKey, 3);
  auto again = parse(rg::renderConfigMasked(*r));
  ASSERT_TRUE(again.isOk()) << again.status().message();
  EXPECT_EQ(again->limits.defaultMaxOutputTokens, 1000);
  EXPECT_EQ(again->limits.reserveOutputTokensCap, 8192);
  EXPECT_TRUE(again->limits.queueEnabled);
  EXPECT_EQ(again->limits.queueWaitMs, 2500);
  EXPECT_EQ(again->limits.queueMaxPerKey, 3);
  EXPECT_EQ(errorOf("limits:\n  queue_wait_ms: 0\n"),
            "limits.queue_wait_ms: must be between 1 and 600000, got 0 (line 2)");
  EXPECT_EQ(errorOf("limits:\n  queue_max: 3\n").rfind("limits.queue_max: unknown key (line 2)", 0),
            0u);
}

}  // namespace
}  // namespace rgtest
