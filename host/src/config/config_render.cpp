// Config -> YAML for `relaygate check-config`. Every secret goes through redactSecret; the
// output parses back with parseConfigText (strings are double-quoted, '$' is written as "$$").

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/number_format.h"
#include "config/config.h"
#include "observability/logging.h"

namespace rg {

namespace {

std::string escapeDollars(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    out += c;
    if (c == '$') {
      out += '$';
    }
  }
  return out;
}

std::string str(const std::string& s) {
  return "\"" + jsonEscape(escapeDollars(s)) + "\"";
}

std::string masked(const std::string& secret) {
  return secret.empty() ? "\"\"" : str(redactSecret(secret));
}

// Plugin configs hold upstream credentials too; any key that names a secret is masked.
bool isSecretKey(std::string key) {
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const char* const kSuffixes[] = {"key",         "secret",        "token",
                                          "password",    "passwd",        "credential",
                                          "credentials", "authorization", "cookie"};
  for (const char* suffix : kSuffixes) {
    std::string s(suffix);
    if (key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) {
      return true;
    }
  }
  return false;
}

void renderJson(const rapidjson::Value& v, bool mask, std::string* out) {
  if (v.IsObject()) {
    *out += '{';
    bool first = true;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      std::string key(it->name.GetString(), it->name.GetStringLength());
      *out += (first ? "" : ", ") + str(key) + ": ";
      first = false;
      renderJson(it->value, mask || isSecretKey(key), out);
    }
    *out += '}';
  } else if (v.IsArray()) {
    *out += '[';
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      *out += i == 0 ? "" : ", ";
      renderJson(v[i], mask, out);
    }
    *out += ']';
  } else if (v.IsNull()) {
    *out += "null";
  } else if (mask) {
    *out += v.IsString() ? masked(std::string(v.GetString(), v.GetStringLength())) : "\"****\"";
  } else if (v.IsString()) {
    *out += str(std::string(v.GetString(), v.GetStringLength()));
  } else if (v.IsBool()) {
    *out += v.GetBool() ? "true" : "false";
  } else if (v.IsInt64()) {
    *out += std::to_string(v.GetInt64());
  } else if (v.IsUint64()) {
    *out += std::to_string(v.GetUint64());
  } else {
    *out += shortestDouble(v.GetDouble());
  }
}

std::string pluginConfigYaml(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return "\"<not valid JSON: not shown>\"";
  }
  std::string out;
  renderJson(doc, false, &out);
  return out;
}

}  // namespace

std::string maskRedisUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    return url.empty() ? url : redactSecret(url);  // not a URL: show nothing of it
  }
  size_t start = scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  if (end == std::string::npos) {
    end = url.size();
  }
  size_t at = url.rfind('@', end - 1);
  if (at == std::string::npos || at < start) {
    return url;
  }
  std::string userinfo = url.substr(start, at - start);
  size_t colon = userinfo.find(':');
  // "redis://secret@host" is read as a password by several clients: mask it whole.
  std::string shown = colon == std::string::npos ? redactSecret(userinfo)
                                                 : userinfo.substr(0, colon + 1) +
                                                       redactSecret(userinfo.substr(colon + 1));
  return url.substr(0, start) + shown + url.substr(at);
}

std::string renderConfigMasked(const Config& cfg) {
  const ServerConfig& s = cfg.server;
  const StorageConfig& st = cfg.storage;
  std::string o;
  auto line = [&o](const std::string& text) { o += text + "\n"; };
  line("# effective configuration" +
       (cfg.sourcePath.empty() ? std::string() : " of " + cfg.sourcePath) + " (secrets masked)");
  line("server:");
  line("  host: " + str(s.host));
  line("  port: " + std::to_string(s.port));
  line("  worker_threads: " + std::to_string(s.workerThreads));
  line("  request_timeout_ms: " + std::to_string(s.requestTimeoutMs));
  line("  idle_timeout_ms: " + std::to_string(s.idleTimeoutMs));
  line("  upstream_connect_timeout_ms: " + std::to_string(s.upstreamConnectTimeoutMs));
  line("  upstream_timeout_ms: " + std::to_string(s.upstreamTimeoutMs));
  line("  max_body_bytes: " + std::to_string(s.maxBodyBytes));
  line("  drain_timeout_ms: " + std::to_string(s.drainTimeoutMs));
  line("storage:");
  line("  backend: " + str(st.backend));
  line("  data_dir: " + str(st.dataDir));
  line(std::string("  fsync: ") + (st.fsync ? "true" : "false"));
  line("  redis:");
  line("    url: " + str(maskRedisUrl(st.redisUrl)));
  line("    password: " + masked(st.redisPassword));
  line("    db: " + std::to_string(st.redisDb));
  line("    key_prefix: " + str(st.keyPrefix));
  line("    pool_size: " + std::to_string(st.redisPoolSize));
  line("security:");
  line("  master_key: " + masked(cfg.security.masterKey) +
       (cfg.security.masterKey.empty() ? "  # empty: generated into <data_dir>/master.key" : ""));
  line("logging:");
  line("  level: " + str(cfg.logging.level));
  line("  format: " + str(cfg.logging.format));
  line("plugins:");
  line("  directory: " + str(cfg.plugins.directory));
  if (cfg.plugins.enabled.empty()) {
    line("  enabled: []");
  } else {
    line("  enabled:");
    for (const auto& p : cfg.plugins.enabled) {
      line("    - name: " + str(p.name));
      line(std::string("      enabled: ") + (p.enabled ? "true" : "false"));
      line("      config: " + pluginConfigYaml(p.configJson));
    }
  }
  line("pricing:");
  line("  file: " + str(cfg.pricing.file));
  line("  override_file: " + str(cfg.pricing.overrideFile) +
       (cfg.pricing.overrideFile.empty() ? "  # empty: no overrides" : ""));
  line("  global_rate: " + str(cfg.pricing.globalRate));
  const SchedulerConfig& sc = cfg.scheduler;
  line("scheduler:");
  line("  sticky_ttl_ms: " + std::to_string(sc.stickyTtlMs));
  line("  sticky_renew_threshold_ms: " + std::to_string(sc.stickyRenewThresholdMs));
  line("  max_attempts: " + std::to_string(sc.maxAttempts));
  line("  auth_cooldown_ms: " + std::to_string(sc.authCooldownMs));
  line("  overloaded_cooldown_ms: " + std::to_string(sc.overloadedCooldownMs));
  line("  unavailable_cooldown_ms: " + std::to_string(sc.unavailableCooldownMs));
  line("  transient_cooldown_ms: " + std::to_string(sc.transientCooldownMs));
  line("  rate_limited_cooldown_ms: " + std::to_string(sc.rateLimitedCooldownMs));
  line("  quota_cooldown_ms: " + std::to_string(sc.quotaCooldownMs));
  line("  retry_after_cap_ms: " + std::to_string(sc.retryAfterCapMs));
  line("  state_refresh_ms: " + std::to_string(sc.stateRefreshMs));
  line("  sticky_cache_ms: " + std::to_string(sc.stickyCacheMs));
  const ClaudeOAuthConfig& co = cfg.oauth.claude;
  line("oauth:");
  line("  claude:");
  line("    authorize_url: " + str(co.authorizeUrl));
  line("    token_url: " + str(co.tokenUrl));
  line("    client_id: " + str(co.clientId));
  line("    redirect_uri: " + str(co.redirectUri));
  line("    scopes: " + str(co.scopes));
  line("    setup_scopes: " + str(co.setupScopes));
  line("    refresh_lead_ms: " + std::to_string(co.refreshLeadMs));
  line("    refresh_interval_ms: " + std::to_string(co.refreshIntervalMs));
  const AccountingConfig& ac = cfg.accounting;
  line("accounting:");
  line("  time_zone: " + str(ac.timeZone));
  line("  hourly_retention_days: " + std::to_string(ac.hourlyRetentionDays));
  line("  daily_retention_days: " + std::to_string(ac.dailyRetentionDays));
  line("  monthly_retention_months: " + std::to_string(ac.monthlyRetentionMonths));
  line("  recent_records_per_key: " + std::to_string(ac.recentRecordsPerKey));
  const LimitsConfig& lc = cfg.limits;
  line("limits:");
  line("  default_max_output_tokens: " + std::to_string(lc.defaultMaxOutputTokens));
  line("  reserve_output_tokens_cap: " + std::to_string(lc.reserveOutputTokensCap));
  line(std::string("  queue_enabled: ") + (lc.queueEnabled ? "true" : "false"));
  line("  queue_wait_ms: " + std::to_string(lc.queueWaitMs));
  line("  queue_max_per_key: " + std::to_string(lc.queueMaxPerKey));
  line("admin:");
  line(std::string("  enabled: ") + (cfg.admin.enabled ? "true" : "false"));
  line("  token: " + masked(cfg.admin.token) +
       (cfg.admin.token.empty() ? "  # empty: generated into <data_dir>/admin.token" : ""));
  return o;
}

}  // namespace rg
