#include "app/app.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "admin/admin_token.h"
#include "app/master_key_rotation.h"
#include "http/error_shapes.h"
#include "http/router.h"
#include "http/server.h"
#include "relay/gateway.h"
#include "upstream/http_client.h"

namespace rg {

StatusOr<std::string> loadOrCreateMasterKey(const Config& cfg, bool* generated) {
  *generated = false;
  if (!cfg.security.masterKey.empty()) {
    if (cfg.security.masterKey.size() < 16) {
      return invalidArgument("security.master_key must be at least 16 characters");
    }
    return cfg.security.masterKey;
  }
  std::error_code ec;
  std::filesystem::create_directories(cfg.storage.dataDir, ec);
  if (ec) {
    return unavailable("cannot create data dir " + cfg.storage.dataDir + ": " + ec.message());
  }
  // A rotation interrupted between its two renames is completed before the key is read.
  Status fin = finishInterruptedKeyRename(cfg.storage.dataDir);
  if (!fin) {
    return fin;
  }
  std::string path = cfg.storage.dataDir + "/master.key";
  if (!std::filesystem::exists(path) && std::filesystem::exists(path + ".next")) {
    return failedPrecondition(
        path + " is missing but " + path +
        ".next exists: a master key rotation was interrupted; run "
        "`relaygate rotate-master-key` again instead of generating a new key");
  }
  std::ifstream in(path);
  if (in) {
    std::string key;
    std::getline(in, key);
    if (key.size() < 32) {
      return invalidArgument(path + " is corrupt (expected 64 hex characters)");
    }
    return key;
  }
  std::string key = crypto::toHex(crypto::randomBytes(32));
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return unavailable("cannot write " + tmp);
  }
  std::string line = key + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return unavailable("cannot write " + path);
  }
  *generated = true;
  return key;
}

StatusOr<StorePtr> openStoreFromConfig(const Config& cfg, const Clock& clock, bool durableWrites,
                                       int redisPoolSize) {
  if (cfg.storage.backend == "redis") {
    RedisOptions ro;
    ro.url = cfg.storage.redisUrl;
    ro.password = cfg.storage.redisPassword;
    ro.db = cfg.storage.redisDb;
    ro.keyPrefix = cfg.storage.keyPrefix;
    ro.poolSize = redisPoolSize > 0 ? redisPoolSize : cfg.storage.redisPoolSize;
    return openRedisStore(ro, clock);
  }
  EmbeddedOptions eo;
  eo.dataDir = cfg.storage.dataDir;
  eo.fsyncEachWrite = cfg.storage.fsync || durableWrites;
  return openEmbeddedStore(eo, clock);
}

StatusOr<ServicesPtr> openServices(const Config& cfg) {
  auto svc = std::make_unique<Services>();
  svc->config = cfg;
  bool generated = false;
  auto master = loadOrCreateMasterKey(cfg, &generated);
  if (!master) {
    return master.status();
  }
  if (generated) {
    spdlog::warn(
        "no security.master_key configured: generated one into {}/master.key (mode "
        "0600). Back it up: without it stored secrets cannot be decrypted and keys "
        "stop working.",
        cfg.storage.dataDir);
  }
  auto store = openStoreFromConfig(cfg, *svc->clock);
  if (!store) {
    return store.status();
  }
  svc->store = std::move(store.value());
  if (cfg.storage.backend == "redis" && (generated || cfg.security.masterKey.empty())) {
    spdlog::warn(
        "storage is redis but the master key comes from the local data dir: every "
        "instance sharing this Redis must use the same security.master_key");
  }
  svc->secretBox = secretBoxForMaster(*master);
  // Values sealed under the previous key stay readable while a rotation is unfinished.
  addRotationDecryptionKeys(cfg, *svc->secretBox);
  // Gateway key hashes cannot be recomputed (no plain keys are kept), so after a rotation the
  // hash secret lives in storage, sealed by the current master key.
  auto hashSecret = resolveKeyHashSecret(*svc->store, *svc->secretBox, *master);
  if (!hashSecret) {
    return hashSecret.status();
  }
  svc->keys = std::make_unique<KeyService>(*svc->store, *svc->clock, *hashSecret);
  svc->accounts = std::make_unique<AccountService>(*svc->store, *svc->clock, *svc->secretBox);
  return svc;
}

ClaudeOAuthOptions claudeOAuthOptions(const Config& cfg) {
  const ClaudeOAuthConfig& c = cfg.oauth.claude;
  ClaudeOAuthOptions o;
  o.authorizeUrl = c.authorizeUrl;
  o.tokenUrl = c.tokenUrl;
  o.clientId = c.clientId;
  o.redirectUri = c.redirectUri;
  o.scopes = c.scopes;
  o.setupScopes = c.setupScopes;
  o.timeoutMs = cfg.server.upstreamConnectTimeoutMs * 3;
  return o;
}

StatusOr<LoadedPlugins> loadPlugins(const Config& cfg, const HostServices& services) {
  LoadedPlugins out;
  out.loader = std::make_unique<PluginLoader>(services);
  for (const auto& entry : cfg.plugins.enabled) {
    if (!entry.enabled) {
      continue;
    }
    std::string path = cfg.plugins.directory + "/" + pluginFileName(entry.name);
    auto manifest = PluginLoader::readManifest(path);
    if (!manifest) {
      return Status(manifest.status().code(),
                    "plugin " + entry.name + ": " + manifest.status().message());
    }
    if (manifest->name != entry.name) {
      return invalidArgument("plugin " + entry.name + ": " + path + " declares the name \"" +
                             manifest->name + "\"");
    }
    if (manifest->kind == RG_KIND_PROVIDER) {
      auto p = out.loader->loadProvider(path, entry.configJson);
      if (!p) {
        return Status(p.status().code(), "plugin " + entry.name + ": " + p.status().message());
      }
      out.providers.push_back(std::move(p.value()));
    } else {
      auto n = out.loader->loadNotifier(path, entry.configJson);
      if (!n) {
        return Status(n.status().code(), "plugin " + entry.name + ": " + n.status().message());
      }
      out.notifiers.push_back(std::move(n.value()));
    }
  }
  return out;
}

namespace {

std::string pluginsJson(const LoadedPlugins& lp) {
  std::string s = "[";
  auto add = [&](const ManifestInfo& m) {
    if (s.size() > 1) {
      s += ",";
    }
    s += "{\"name\":" + jsonQuote(m.name) + ",\"version\":" + jsonQuote(m.version) +
         ",\"kind\":" + jsonQuote(m.kind == RG_KIND_PROVIDER ? "provider" : "notifier") + "}";
  };
  for (const auto& p : lp.providers) {
    add(p->manifest());
  }
  for (const auto& n : lp.notifiers) {
    add(n->manifest());
  }
  return s + "]";
}

}  // namespace

int runServe(const Config& cfg) {
  // Signals are taken by sigwait() in this thread only; every thread started later inherits
  // the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto svc = openServices(cfg);
  if (!svc) {
    spdlog::critical("cannot start: {}", svc.status().message());
    return 1;
  }
  Services& s = **svc;
  // One serving process per embedded data dir (CLI verbs may still use it alongside).
  Status claim = s.store->claimExclusiveServe();
  if (!claim) {
    spdlog::critical("cannot start: {}", claim.message());
    return 1;
  }
  // A table that does not load refuses the start: serving with wrong or no prices would book
  // wrong money silently.
  auto table = loadPriceTables(cfg.pricing.file, cfg.pricing.overrideFile);
  if (!table) {
    spdlog::critical("cannot start: pricing: {}", table.status().message());
    return 1;
  }
  PriceTableHolder prices(table.value());
  // Re-reads the price files (SIGHUP, POST /admin/pricing/reload); a bad file keeps the table in
  // force, so requests never go unpriced because of an operator's typo.
  auto reloadPrices = [&cfg, &prices](const char* by) {
    auto fresh = loadPriceTables(cfg.pricing.file, cfg.pricing.overrideFile);
    if (!fresh) {
      spdlog::error("{}: price table not reloaded, keeping the previous one: {}", by,
                    fresh.status().message());
      return fresh;
    }
    spdlog::info("{}: price table reloaded: {} models from {}", by, fresh.value()->size(),
                 fresh.value()->source());
    prices.store(fresh.value());
    return fresh;
  };
  spdlog::info("pricing: {} models from {} (global rate {})", table.value()->size(),
               table.value()->source(), cfg.pricing.globalRate);
  MetricsRegistry metrics;
  HostServices hostServices;
  hostServices.clock = s.clock;
  hostServices.store = s.store.get();
  hostServices.metrics = &metrics;
  auto plugins = loadPlugins(cfg, hostServices);
  if (!plugins) {
    spdlog::critical("cannot start: {}", plugins.status().message());
    return 1;
  }
  Router router;
  for (auto& p : plugins->providers) {
    for (const auto& r : p->routes()) {
      Status st = router.add(p.get(), r);
      if (!st) {
        spdlog::critical("cannot start: {}", st.message());
        return 1;
      }
    }
  }
  UpstreamClient upstream;
  EventBus events;
  // Account state changes are operator news: log them (webhooks subscribe here as well).
  events.subscribe([](const AccountEvent& ev) {
    spdlog::info("event {} account={} ({}) {} -> {}{}{}", ev.type, ev.accountId, ev.accountName,
                 ev.oldState, ev.newState, ev.scope.empty() ? "" : " scope=" + ev.scope,
                 ev.reason.empty() ? "" : " reason=" + ev.reason);
  });
  Scheduler scheduler(*s.accounts, *s.store, *s.clock, cfg.scheduler, &events, &metrics);
  scheduler.startBackground();
  ClaudeOAuth claudeOAuth(claudeOAuthOptions(cfg), upstream, s.store->settings(), *s.clock,
                          s.secretBox.get());
  TokenManagerOptions tmo;
  tmo.refreshLeadMs = cfg.oauth.claude.refreshLeadMs;
  tmo.backgroundIntervalMs = cfg.oauth.claude.refreshIntervalMs;
  TokenManager tokens(claudeOAuth, *s.accounts, s.store->sched(), *s.clock, &events, tmo);
  if (tmo.backgroundIntervalMs > 0) {
    tokens.startBackground();
  }
  AccountTesterDeps testerDeps;
  testerDeps.accounts = s.accounts.get();
  testerDeps.upstream = &upstream;
  testerDeps.tokens = &tokens;
  for (auto& p : plugins->providers) {
    testerDeps.providers.push_back(p.get());
  }
  auto zone = TimeZone::load(cfg.accounting.timeZone);
  if (!zone) {
    spdlog::critical("cannot start: accounting.time_zone: {}", zone.status().message());
    return 1;
  }
  std::unique_ptr<AdminApi> admin;
  if (cfg.admin.enabled) {
    bool generated = false;
    auto token = loadOrCreateAdminToken(cfg.admin.token, cfg.storage.dataDir, &generated);
    if (!token) {
      spdlog::critical("cannot start: admin token: {}", token.status().message());
      return 1;
    }
    if (generated) {
      spdlog::warn(
          "no admin.token configured: generated one into {}/admin.token (mode 0600); "
          "send it as 'Authorization: Bearer <token>' to /admin/...",
          cfg.storage.dataDir);
    }
    AdminDeps ad;
    ad.keys = s.keys.get();
    ad.accounts = s.accounts.get();
    ad.store = s.store.get();
    ad.events = &events;
    ad.claudeOAuth = &claudeOAuth;
    ad.testAccount = [&testerDeps](const AccountRecord& r, const std::string& m) {
      return testAccount(testerDeps, r, m);
    };
    ad.clock = s.clock;
    ad.timeZone = &zone.value();
    ad.prices = &prices;
    ad.reloadPrices = [&reloadPrices] { return reloadPrices("admin API"); };
    ad.adminToken = std::move(token.value());
    admin = std::make_unique<AdminApi>(std::move(ad));
  }
  UsageRetention retention;
  retention.hourlyMs = int64_t{cfg.accounting.hourlyRetentionDays} * 86400000;
  retention.dailyMs = int64_t{cfg.accounting.dailyRetentionDays} * 86400000;
  // A month bucket is kept for N months after its last booking (31 days each), so the current
  // month and the N-1 before it are always there.
  retention.monthlyMs = int64_t{cfg.accounting.monthlyRetentionMonths} * 31 * 86400000;
  retention.recentPerKey = cfg.accounting.recentRecordsPerKey;
  s.store->usage().setRetention(retention);
  GatewayDeps deps;
  deps.timeZone = &zone.value();
  deps.admin = admin.get();
  deps.scheduler = &scheduler;
  deps.tokens = &tokens;
  deps.config = &cfg;
  deps.clock = s.clock;
  deps.store = s.store.get();
  deps.keys = s.keys.get();
  deps.accounts = s.accounts.get();
  deps.metrics = &metrics;
  deps.upstream = &upstream;
  deps.router = &router;
  deps.prices = &prices;
  deps.pluginsSummary = pluginsJson(*plugins);
  Gateway gateway(deps);
  gateway.setStartedAtMs(s.clock->nowUnixMs());

  ServerOptions so;
  so.host = cfg.server.host;
  so.port = cfg.server.port;
  so.maxThreads = cfg.server.workerThreads;
  so.idleTimeoutMs = cfg.server.idleTimeoutMs;
  so.requestTimeoutMs = cfg.server.requestTimeoutMs;
  HttpServer server(so, [&gateway](Poco::Net::HTTPServerRequest& rq,
                                   Poco::Net::HTTPServerResponse& rs) { gateway.handle(rq, rs); });
  Status st = server.start();
  if (!st) {
    spdlog::critical("cannot start: {}", st.message());
    return 1;
  }
  std::string where =
      cfg.storage.backend == "redis" ? "redis" : "embedded at " + cfg.storage.dataDir;
  std::string cfgArg = cfg.sourcePath.empty() ? "" : " --config " + cfg.sourcePath;
  std::printf("relaygate %s listening on http://%s:%d (storage: %s, plugins: %zu)\n", RG_VERSION,
              cfg.server.host.c_str(), server.port(), where.c_str(),
              plugins->providers.size() + plugins->notifiers.size());
  std::printf(
      "  add an upstream account: relaygate accounts add%s --type claude-console "
      "--name NAME --base-url https://api.anthropic.com --api-key sk-ant-...\n"
      "  create a gateway key:    relaygate keys create%s --name NAME\n"
      "  then point a client at it: ANTHROPIC_BASE_URL=http://%s:%d/api "
      "ANTHROPIC_API_KEY=cr_... claude\n",
      cfgArg.c_str(), cfgArg.c_str(), cfg.server.host.c_str(), server.port());
  std::fflush(stdout);
  spdlog::info("listening on {}:{}", cfg.server.host, server.port());

  int sig = 0;
  for (;;) {
    sigwait(&sigs, &sig);
    if (sig == SIGHUP) {
      (void)reloadPrices("SIGHUP");
      continue;
    }
    break;
  }
  spdlog::info("signal {}: draining (up to {} ms)", sig, cfg.server.drainTimeoutMs);
  gateway.startDraining();
  server.stopAccepting();
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.server.drainTimeoutMs);
  while (gateway.inFlight() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (gateway.inFlight() > 0) {
    spdlog::warn("drain timeout: cutting {} request(s) still in flight", gateway.inFlight());
    gateway.abortStreams();
    // Shutting the client sockets wakes relays blocked on a silent upstream (they watch the
    // client's socket) so they end at once.
    server.stopNow();
    auto hard = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (gateway.inFlight() > 0 && std::chrono::steady_clock::now() < hard) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  server.stopNow();
  tokens.stop();
  scheduler.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace rg
