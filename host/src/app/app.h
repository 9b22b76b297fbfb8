#pragma once
// Wiring shared by `serve` and the CLI verbs: open the store, the master key and the domain
// services; load plugins; run the server until SIGTERM/SIGINT and drain.

#include <memory>
#include <string>
#include <vector>

#include "accounts/account_service.h"
#include "auth/key_service.h"
#include "common/clock.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "oauth/claude_oauth.h"
#include "observability/metrics.h"
#include "plugin/plugin_runtime.h"
#include "storage/store.h"

namespace rg {

// The master key: from the config, else <dataDir>/master.key (generated on first start with mode
// 0600; a warning says so; it is never printed).
StatusOr<std::string> loadOrCreateMasterKey(const Config& cfg, bool* generated);

struct Services {
  Config config;
  const Clock* clock = &SystemClock::instance();
  StorePtr store;
  std::unique_ptr<crypto::SecretBox> secretBox;
  std::unique_ptr<KeyService> keys;
  std::unique_ptr<AccountService> accounts;
};
using ServicesPtr = std::unique_ptr<Services>;

StatusOr<ServicesPtr> openServices(const Config& cfg);
// The configured store. durableWrites forces fsync on the embedded journal (rare, vital writes);
// redisPoolSize > 0 overrides storage.redis.pool_size.
StatusOr<StorePtr> openStoreFromConfig(const Config& cfg, const Clock& clock,
                                       bool durableWrites = false, int redisPoolSize = 0);

struct LoadedPlugins {
  std::unique_ptr<PluginLoader> loader;
  std::vector<ProviderPluginPtr> providers;
  std::vector<NotifierPluginPtr> notifiers;
};
// Loads every enabled plugin; any failure is fatal (the message names the plugin and the reason).
StatusOr<LoadedPlugins> loadPlugins(const Config& cfg, const HostServices& services);

// The Claude OAuth endpoints and scopes from oauth.claude.
ClaudeOAuthOptions claudeOAuthOptions(const Config& cfg);

// `relaygate serve`: returns the process exit code.
int runServe(const Config& cfg);

}  // namespace rg
