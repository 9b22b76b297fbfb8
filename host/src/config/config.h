#pragma once
// The typed configuration. Loaded from YAML by config/config_loader.cpp, which interpolates
// ${VAR} and ${VAR:-default}, rejects unknown keys, wrong types and missing values with an error
// naming the key path and line, e.g.
//   storage.backend: expected one of embedded, redis, got "mysql" (line 12)

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace rg {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8787;                // 0 = pick a free port (printed at start)
  int workerThreads = 256;        // max concurrent requests/streams (one thread each)
  int requestTimeoutMs = 600000;  // client socket timeout (each read / write)
  int idleTimeoutMs = 65000;      // keep-alive idle connection
  int upstreamConnectTimeoutMs = 10000;
  int upstreamTimeoutMs = 600000;      // first byte and between bytes from upstream
  int64_t maxBodyBytes = 100LL << 20;  // 413 above this
  int drainTimeoutMs = 30000;          // on SIGTERM: wait this long for in-flight requests
};

struct StorageConfig {
  std::string backend = "embedded";  // embedded | redis
  std::string dataDir = "./data";    // embedded journal, generated secrets
  bool fsync = false;                // embedded: fsync every durable write
  std::string redisUrl = "redis://127.0.0.1:6379";
  std::string redisPassword;  // secret
  int redisDb = -1;           // -1 = from the url (default 0)
  std::string keyPrefix = "rg:";
  int redisPoolSize = 8;
};

struct SecurityConfig {
  std::string masterKey;  // secret; empty = generated into <dataDir>/master.key
};

struct LoggingConfig {
  std::string level = "info";   // trace | debug | info | warn | error
  std::string format = "text";  // text | json
};

struct PluginEntry {
  std::string name;  // loads <plugins.directory>/librg_<name>.so
  bool enabled = true;
  std::string configJson = "{}";  // the entry's `config` subtree as JSON
};

struct PluginsConfig {
  std::string directory;  // default: the build's plugin dir, else the install dir
  std::vector<PluginEntry> enabled;
};

struct PricingConfig {
  std::string file;              // LiteLLM-format price table; default: the shipped one
  std::string overrideFile;      // optional, same format, entries replace whole models
  std::string globalRate = "1";  // decimal multiplier for billed amounts (0..1000)
};

// Account scheduling, cooldowns by error class, failover (docs/operations.md "Scheduler").
struct SchedulerConfig {
  int64_t stickyTtlMs = 3600000;            // session -> account mapping lifetime
  int64_t stickyRenewThresholdMs = 900000;  // renew when less than this remains; 0 = never
  int maxAttempts = 3;                      // accounts tried per request (1 = no failover)
  int64_t authCooldownMs = 1800000;         // 401/403: credential rejected
  int64_t overloadedCooldownMs = 600000;    // 529
  int64_t unavailableCooldownMs = 60000;    // 503
  int64_t transientCooldownMs = 300000;     // other 5xx, timeouts, connection failures
  int64_t rateLimitedCooldownMs = 3600000;  // account limit with neither reset time nor retry-after
  int64_t quotaCooldownMs = 3600000;        // quota exhausted without a reset time
  int64_t retryAfterCapMs = 1800000;        // cap on cooldowns derived from retry-after
  int64_t stateRefreshMs = 1000;            // how stale another instance's cooldowns may be
  int64_t stickyCacheMs = 5000;  // in-process cache of session mappings; 0 = read storage each time
};

struct ClaudeOAuthConfig {
  std::string authorizeUrl = "https://claude.ai/oauth/authorize";
  std::string tokenUrl = "https://platform.claude.com/v1/oauth/token";
  std::string clientId = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
  std::string redirectUri = "https://platform.claude.com/oauth/code/callback";
  std::string scopes =
      "org:create_api_key user:profile user:inference user:sessions:claude_code "
      "user:mcp_servers user:file_upload";
  std::string setupScopes = "user:inference";
  int64_t refreshLeadMs = 60000;      // refresh this long before expiry
  int64_t refreshIntervalMs = 60000;  // background refresher period; 0 = off
};

struct OAuthConfig {
  ClaudeOAuthConfig claude;
};

struct AdminConfig {
  bool enabled = true;
  std::string token;  // secret; empty = generated into <dataDir>/admin.token
};

// Usage records and aggregates (docs/operations.md "Usage").
struct AccountingConfig {
  std::string timeZone = "UTC";  // day/week/month boundaries: UTC, +08:00, Asia/Shanghai, ...
  int hourlyRetentionDays = 7;   // hourly buckets kept this long
  int dailyRetentionDays = 32;
  int monthlyRetentionMonths = 13;
  int recentRecordsPerKey = 200;  // per-request records kept per key (0 = none)
};

// Admission of requests against per-key limits (docs/operations.md "Limits").
struct LimitsConfig {
  // Output bound assumed when a request names none (reserved against token and cost limits).
  int defaultMaxOutputTokens = 4096;
  // At most this many output tokens are reserved per request (0 = the request's whole bound).
  // Lower = small-budget keys stay usable with a large max_tokens (Claude Code sends 32000), at
  // the price of a possible overshoot of one request's output beyond the cap.
  int reserveOutputTokensCap = 0;
  // Instead of an immediate 429 at a key's concurrency limit, wait up to queueWaitMs for a slot;
  // at most queueMaxPerKey requests of one key wait in one process (the rest get the 429).
  bool queueEnabled = false;
  int queueWaitMs = 10000;
  int queueMaxPerKey = 32;
};

struct Config {
  ServerConfig server;
  StorageConfig storage;
  SecurityConfig security;
  LoggingConfig logging;
  PluginsConfig plugins;
  PricingConfig pricing;
  SchedulerConfig scheduler;
  OAuthConfig oauth;
  AdminConfig admin;
  AccountingConfig accounting;
  LimitsConfig limits;
  std::string sourcePath;  // the file it came from
};

// Parses and validates. `env` lookups go through getenv unless a test passes its own.
StatusOr<Config> loadConfigFile(const std::string& path);
StatusOr<Config> parseConfigText(const std::string& yaml, const std::string& sourceName,
                                 const std::function<const char*(const char*)>& getenvFn = nullptr);
// The effective config as YAML with every secret masked ("****" + last 4 chars at most).
std::string renderConfigMasked(const Config& cfg);

// plugins.directory when the file leaves it empty: the build's plugin dir (RG_DEFAULT_PLUGIN_DIR)
// if it exists, else the install dir (RG_INSTALLED_PLUGIN_DIR).
std::string defaultPluginDirectory();
// pricing.file when the file leaves it empty: the source tree's table (RG_DEFAULT_PRICING_FILE)
// if it exists, else the installed one (RG_INSTALLED_PRICING_FILE).
std::string defaultPricingFile();
// A redis URL with the password part of its userinfo masked (redis://user:****word@host:6379).
std::string maskRedisUrl(const std::string& url);

}  // namespace rg
