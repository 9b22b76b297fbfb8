// YAML -> Config. Every problem is collected with its key path and line, then all are reported
// at once, sorted by line, one per line of the Status message (see docs/configuration.md).

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include "accounting/pricing.h"
#include "common/number_format.h"
#include "common/time_zone.h"
#include "config/config.h"
#include "observability/logging.h"

namespace rg {

namespace {

using GetEnvFn = std::function<const char*(const char*)>;
using Handler = std::function<void(const YAML::Node& value, const std::string& path)>;
using KeyTable = std::vector<std::pair<const char*, Handler>>;

constexpr const char* kRootPath = "<root>";

int lineOf(const YAML::Node& n) {
  return n.Mark().line + 1;
}

std::string quoteValue(const std::string& s) {
  return "\"" + jsonEscape(s) + "\"";
}

std::string kindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Null:
      return "null";
    default:
      return "a scalar";
  }
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() || path == kRootPath ? key : path + "." + key;
}

size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1);
  std::vector<size_t> cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool isPlain(const YAML::Node& n) {
  return n.Tag() == "?";
}

bool matchesInteger(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (i == s.size()) {
    return false;
  }
  return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool matchesFloat(const std::string& s) {
  size_t i = 0;
  auto digits = [&]() {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ++i;
    }
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    ++i;
  }
  size_t intDigits = digits();
  size_t fracDigits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    fracDigits = digits();
  }
  if (intDigits == 0 && fracDigits == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    if (digits() == 0) {
      return false;
    }
  }
  return i == s.size();
}

struct IntRange {
  int64_t min;
  int64_t max;
};

std::string rangeText(const IntRange& r) {
  if (r.max == INT_MAX || r.max == std::numeric_limits<int64_t>::max()) {
    return r.min == 1 ? "must be greater than 0" : "must be at least " + std::to_string(r.min);
  }
  return "must be between " + std::to_string(r.min) + " and " + std::to_string(r.max);
}

class Loader {
 public:
  explicit Loader(GetEnvFn env) : env_(std::move(env)) {}

  // "<path>: <msg> (line N)<hint>", e.g. `server.prot: unknown key (line 3); did you mean "port"?`
  void error(const std::string& path, int line, const std::string& msg,
             const std::string& hint = {}) {
    errors_.push_back({line, path + ": " + msg + " (line " + std::to_string(line) + ")" + hint});
  }
  void error(const std::string& path, const YAML::Node& at, const std::string& msg,
             const std::string& hint = {}) {
    error(path, lineOf(at), msg, hint);
  }

  bool ok() const { return errors_.empty(); }

  std::string joinedErrors() {
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out;
    for (const auto& e : errors_) {
      if (!out.empty()) {
        out += '\n';
      }
      out += e.second;
    }
    return out;
  }

  // Walks a mapping in document order. Null counts as an empty mapping (all defaults).
  void forEachKey(const YAML::Node& node, const std::string& path, const KeyTable& table) {
    if (!requireMapping(node, path)) {
      return;
    }
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const YAML::Node& keyNode = kv.first;
      if (!keyNode.IsScalar()) {
        error(path, keyNode, "keys must be scalars, got " + kindOf(keyNode));
        continue;
      }
      const std::string key = keyNode.Scalar();
      const std::string keyPath = join(path, key);
      if (!seen.insert(key).second) {
        error(keyPath, keyNode, "duplicate key");
        continue;
      }
      auto it =
          std::find_if(table.begin(), table.end(), [&](const auto& e) { return key == e.first; });
      if (it == table.end()) {
        error(keyPath, keyNode, "unknown key", suggestion(key, table));
        continue;
      }
      it->second(kv.second, keyPath);
    }
  }

  bool requireMapping(const YAML::Node& node, const std::string& path) {
    if (node.IsNull()) {
      return false;
    }
    if (!node.IsMap()) {
      error(path, node, "expected a mapping, got " + kindOf(node));
      return false;
    }
    return true;
  }

  // ${VAR}, ${VAR:-default} (default when unset or empty), $$ -> $. A lone '$' is literal.
  bool interpolate(const std::string& in, const std::string& path, int line, std::string* out) {
    out->clear();
    for (size_t i = 0; i < in.size(); ++i) {
      char c = in[i];
      if (c != '$' || i + 1 >= in.size() || (in[i + 1] != '$' && in[i + 1] != '{')) {
        out->push_back(c);
        continue;
      }
      if (in[i + 1] == '$') {
        out->push_back('$');
        ++i;
        continue;
      }
      size_t close = in.find('}', i + 2);
      if (close == std::string::npos) {
        error(path, line, "unterminated \"${\" in value");
        return false;
      }
      std::string body = in.substr(i + 2, close - i - 2);
      std::string name = body;
      std::string fallback;
      bool hasDefault = false;
      if (size_t sep = body.find(":-"); sep != std::string::npos) {
        name = body.substr(0, sep);
        fallback = body.substr(sep + 2);
        hasDefault = true;
      }
      if (!validEnvName(name)) {
        // In a secret value the text between the braces may itself be the secret.
        error(path, line,
              secretContext_ ? std::string("invalid environment variable name in value")
                             : "invalid environment variable name " + quoteValue(name) +
                                   " in \"${" + jsonEscape(body) + "}\"");
        return false;
      }
      const char* value = env_ ? env_(name.c_str()) : std::getenv(name.c_str());
      if (hasDefault) {
        out->append(value != nullptr && *value != '\0' ? value : fallback);
      } else if (value == nullptr) {
        error(path, line, "environment variable " + name + " is not set and has no default");
        return false;
      } else {
        out->append(value);
      }
      i = close;
    }
    return true;
  }

  // The interpolated text of a scalar; false (with an error recorded unless null) otherwise.
  bool scalarText(const YAML::Node& n, const std::string& path, const char* expected,
                  std::string* out) {
    if (n.IsNull()) {
      return false;  // explicit null keeps the default
    }
    if (!n.IsScalar()) {
      error(path, n, std::string("expected ") + expected + ", got " + kindOf(n));
      return false;
    }
    return interpolate(n.Scalar(), path, lineOf(n), out);
  }

  void readString(const YAML::Node& n, const std::string& path, std::string* out) {
    std::string s;
    if (scalarText(n, path, "a string", &s)) {
      *out = std::move(s);
    }
  }

  // Like readString, but no error message ever contains any part of the value.
  void readSecret(const YAML::Node& n, const std::string& path, std::string* out) {
    secretContext_ = true;
    readString(n, path, out);
    secretContext_ = false;
  }

  void readEnum(const YAML::Node& n, const std::string& path,
                const std::vector<std::string>& allowed, std::string* out) {
    std::string s;
    if (!scalarText(n, path, "a string", &s)) {
      return;
    }
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) {
        list += (list.empty() ? "" : ", ") + a;
      }
      error(path, n, "expected one of " + list + ", got " + quoteValue(s));
      return;
    }
    *out = std::move(s);
  }

  void readBool(const YAML::Node& n, const std::string& path, bool* out) {
    std::string s;
    if (!scalarText(n, path, "a boolean", &s)) {
      return;
    }
    std::string lower = s;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "true" || lower == "yes" || lower == "on") {
      *out = true;
    } else if (lower == "false" || lower == "no" || lower == "off") {
      *out = false;
    } else {
      error(path, n, "expected a boolean (true or false), got " + quoteValue(s));
    }
  }

  bool readInt64(const YAML::Node& n, const std::string& path, IntRange range, int64_t* out) {
    std::string s;
    if (!scalarText(n, path, "an integer", &s)) {
      return false;
    }
    if (!matchesInteger(s)) {
      error(path, n, "expected an integer, got " + quoteValue(s));
      return false;
    }
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE || v < range.min || v > range.max) {
      error(path, n, rangeText(range) + ", got " + s);
      return false;
    }
    *out = v;
    return true;
  }

  void readInt(const YAML::Node& n, const std::string& path, IntRange range, int* out) {
    int64_t v = 0;
    if (readInt64(n, path, range, &v)) {
      *out = static_cast<int>(v);
    }
  }

  // The plugin `config` subtree as JSON text.
  bool toJson(const YAML::Node& n, const std::string& path, std::string* out) {
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        *out += "null";
        return true;
      case YAML::NodeType::Sequence: {
        *out += '[';
        size_t i = 0;
        for (const auto& item : n) {
          if (i > 0) {
            *out += ',';
          }
          if (!toJson(item, path + "[" + std::to_string(i) + "]", out)) {
            return false;
          }
          ++i;
        }
        *out += ']';
        return true;
      }
      case YAML::NodeType::Map: {
        *out += '{';
        std::set<std::string> seen;
        bool first = true;
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) {
            error(path, kv.first, "keys must be scalars, got " + kindOf(kv.first));
            return false;
          }
          const std::string key = kv.first.Scalar();
          if (!seen.insert(key).second) {
            error(join(path, key), kv.first, "duplicate key");
            return false;
          }
          *out += (first ? "\"" : ",\"") + jsonEscape(key) + "\":";
          first = false;
          if (!toJson(kv.second, join(path, key), out)) {
            return false;
          }
        }
        *out += '}';
        return true;
      }
      case YAML::NodeType::Scalar:
        break;
    }
    std::string s;
    if (!interpolate(n.Scalar(), path, lineOf(n), &s)) {
      return false;
    }
    *out += isPlain(n) ? plainScalarJson(s) : quoteValue(s);
    return true;
  }

 private:
  static bool validEnvName(const std::string& name) {
    if (name.empty() || (name[0] >= '0' && name[0] <= '9')) {
      return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
  }

  static std::string suggestion(const std::string& key, const KeyTable& table) {
    const char* best = nullptr;
    size_t bestDistance = 3;  // only near misses: typos, not different words
    for (const auto& e : table) {
      size_t d = editDistance(key, e.first);
      if (d < bestDistance && d < std::string(e.first).size()) {
        best = e.first;
        bestDistance = d;
      }
    }
    return best == nullptr ? "" : std::string("; did you mean \"") + best + "\"?";
  }

  // An untagged plain scalar: YAML 1.2 core schema types (null, bool, int, float), else string.
  static std::string plainScalarJson(const std::string& s) {
    if (s == "null" || s == "Null" || s == "NULL" || s == "~") {
      return "null";
    }
    if (s == "true" || s == "True" || s == "TRUE") {
      return "true";
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      return "false";
    }
    if (matchesInteger(s)) {
      errno = 0;
      long long v = std::strtoll(s.c_str(), nullptr, 10);
      if (errno != ERANGE) {
        return std::to_string(v);
      }
    }
    if (matchesFloat(s)) {
      double d = std::strtod(s.c_str(), nullptr);
      if (std::isfinite(d)) {
        return shortestDouble(d);
      }
    }
    return quoteValue(s);
  }

  GetEnvFn env_;
  bool secretContext_ = false;
  std::vector<std::pair<int, std::string>> errors_;
};

std::string absolutePath(const std::string& p) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(p, ec);
  if (ec) {
    return p;
  }
  return abs.lexically_normal().string();
}

bool validPluginName(const std::string& n) {
  return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Shorthand for the handler tables below: the key's value node and its full path.
#define RG_ON(body) [&](const YAML::Node& v, const std::string& p) { body; }

void loadPluginConfig(Loader& ld, const YAML::Node& v, const std::string& p, PluginEntry* entry) {
  if (v.IsNull()) {
    return;
  }
  if (!v.IsMap()) {
    ld.error(p, v, "expected a mapping, got " + kindOf(v));
    return;
  }
  std::string json;
  if (ld.toJson(v, p, &json)) {
    entry->configJson = std::move(json);
  }
}

void loadPluginList(Loader& ld, const YAML::Node& list, const std::string& path,
                    std::vector<PluginEntry>* out) {
  if (list.IsNull()) {
    return;
  }
  if (!list.IsSequence()) {
    ld.error(path, list, "expected a sequence of plugin entries, got " + kindOf(list));
    return;
  }
  std::vector<std::pair<std::string, std::string>> seen;  // name, where it was first listed
  size_t i = 0;
  for (const auto& item : list) {
    const std::string ip = path + "[" + std::to_string(i++) + "]";
    if (!item.IsMap()) {
      ld.error(ip, item, "expected a mapping with name, enabled, config, got " + kindOf(item));
      continue;
    }
    PluginEntry entry;
    int nameLine = lineOf(item);  // a missing name is reported at the entry
    ld.forEachKey(item, ip,
                  {
                      {"name", RG_ON(ld.readString(v, p, &entry.name); nameLine = lineOf(v))},
                      {"enabled", RG_ON(ld.readBool(v, p, &entry.enabled))},
                      {"config", RG_ON(loadPluginConfig(ld, v, p, &entry))},
                  });
    const std::string np = ip + ".name";
    if (entry.name.empty()) {
      ld.error(np, nameLine, "required");
      continue;
    }
    if (!validPluginName(entry.name)) {
      ld.error(np, nameLine,
               "must contain only a-z, 0-9, '_' and '-', got " + quoteValue(entry.name));
      continue;
    }
    auto dup = std::find_if(seen.begin(), seen.end(),
                            [&](const auto& e) { return e.first == entry.name; });
    if (dup != seen.end()) {
      ld.error(np, nameLine,
               "duplicate plugin " + quoteValue(entry.name) + ", already listed at " + dup->second);
      continue;
    }
    seen.emplace_back(entry.name, ip);
    out->push_back(std::move(entry));
  }
}

void loadServer(Loader& ld, const YAML::Node& node, const std::string& path, ServerConfig* s) {
  constexpr IntRange kPositive{1, INT_MAX};
  ld.forEachKey(
      node, path,
      {
          {"host", RG_ON(ld.readString(v, p, &s->host))},
          {"port", RG_ON(ld.readInt(v, p, {0, 65535}, &s->port))},
          {"worker_threads", RG_ON(ld.readInt(v, p, {1, 10000}, &s->workerThreads))},
          {"request_timeout_ms", RG_ON(ld.readInt(v, p, kPositive, &s->requestTimeoutMs))},
          {"idle_timeout_ms", RG_ON(ld.readInt(v, p, kPositive, &s->idleTimeoutMs))},
          {"upstream_connect_timeout_ms",
           RG_ON(ld.readInt(v, p, kPositive, &s->upstreamConnectTimeoutMs))},
          {"upstream_timeout_ms", RG_ON(ld.readInt(v, p, kPositive, &s->upstreamTimeoutMs))},
          {"max_body_bytes",
           RG_ON(ld.readInt64(v, p, {1, std::numeric_limits<int64_t>::max()}, &s->maxBodyBytes))},
          {"drain_timeout_ms", RG_ON(ld.readInt(v, p, kPositive, &s->drainTimeoutMs))},
      });
}

void loadRedisUrl(Loader& ld, const YAML::Node& v, const std::string& p, std::string* out) {
  std::string url;
  ld.readSecret(v, p, &url);
  if (url.empty()) {
    return;  // null: keep the default
  }
  if (url.rfind("redis://", 0) != 0) {
    // The value is never echoed: it may hold a password.
    ld.error(p, v, "expected a redis:// URL (rediss:// needs TLS, which hiredis 0.14 lacks)");
    return;
  }
  *out = std::move(url);
}

void loadRedis(Loader& ld, const YAML::Node& node, const std::string& path, StorageConfig* st) {
  ld.forEachKey(node, path,
                {
                    {"url", RG_ON(loadRedisUrl(ld, v, p, &st->redisUrl))},
                    {"password", RG_ON(ld.readSecret(v, p, &st->redisPassword))},
                    {"db", RG_ON(ld.readInt(v, p, {-1, INT_MAX}, &st->redisDb))},
                    {"key_prefix", RG_ON(ld.readString(v, p, &st->keyPrefix))},
                    {"pool_size", RG_ON(ld.readInt(v, p, {1, 1024}, &st->redisPoolSize))},
                });
}

void loadDataDir(Loader& ld, const YAML::Node& v, const std::string& p, std::string* out) {
  ld.readString(v, p, out);
  if (out->empty()) {
    ld.error(p, v, "must not be empty");
  }
}

void loadStorage(Loader& ld, const YAML::Node& node, const std::string& path, StorageConfig* st) {
  ld.forEachKey(node, path,
                {
                    {"backend", RG_ON(ld.readEnum(v, p, {"embedded", "redis"}, &st->backend))},
                    {"data_dir", RG_ON(loadDataDir(ld, v, p, &st->dataDir))},
                    {"fsync", RG_ON(ld.readBool(v, p, &st->fsync))},
                    {"redis", RG_ON(loadRedis(ld, v, p, st))},
                });
}

void loadMasterKey(Loader& ld, const YAML::Node& v, const std::string& p, std::string* out) {
  ld.readSecret(v, p, out);
  if (!out->empty() && out->size() < 16) {
    ld.error(p, v, "must be at least 16 characters (or empty to generate one)");
  }
}

void loadSecurity(Loader& ld, const YAML::Node& node, const std::string& path, SecurityConfig* sc) {
  ld.forEachKey(node, path, {{"master_key", RG_ON(loadMasterKey(ld, v, p, &sc->masterKey))}});
}

void loadLogging(Loader& ld, const YAML::Node& node, const std::string& path, LoggingConfig* lc) {
  ld.forEachKey(node, path,
                {
                    {"level", RG_ON(ld.readEnum(v, p, {"trace", "debug", "info", "warn", "error"},
                                                &lc->level))},
                    {"format", RG_ON(ld.readEnum(v, p, {"text", "json"}, &lc->format))},
                });
}

void loadPlugins(Loader& ld, const YAML::Node& node, const std::string& path, PluginsConfig* pc) {
  ld.forEachKey(node, path,
                {
                    {"directory", RG_ON(ld.readString(v, p, &pc->directory))},
                    {"enabled", RG_ON(loadPluginList(ld, v, p, &pc->enabled))},
                });
}

void loadNonEmptyPath(Loader& ld, const YAML::Node& v, const std::string& p, std::string* out) {
  std::string s;
  if (!ld.scalarText(v, p, "a string", &s)) {
    return;
  }
  if (s.empty()) {
    ld.error(p, v, "must not be empty (leave the key out for the default)");
    return;
  }
  *out = std::move(s);
}

void loadGlobalRate(Loader& ld, const YAML::Node& v, const std::string& p, std::string* out) {
  std::string s;
  if (!ld.scalarText(v, p, "a decimal string", &s)) {
    return;
  }
  auto rate = Rate::parse(s);
  if (!rate) {
    ld.error(p, v,
             "expected a decimal between 0 and 1000 with at most 6 fractional digits, got " +
                 quoteValue(s));
    return;
  }
  *out = std::move(s);
}

void loadPricing(Loader& ld, const YAML::Node& node, const std::string& path, PricingConfig* pc) {
  ld.forEachKey(node, path,
                {
                    {"file", RG_ON(loadNonEmptyPath(ld, v, p, &pc->file))},
                    {"override_file", RG_ON(ld.readString(v, p, &pc->overrideFile))},
                    {"global_rate", RG_ON(loadGlobalRate(ld, v, p, &pc->globalRate))},
                });
}

void loadScheduler(Loader& ld, const YAML::Node& node, const std::string& path,
                   SchedulerConfig* sc) {
  constexpr int64_t kDay = 86400000;
  const IntRange kCooldown{0, 7 * kDay};
  ld.forEachKey(
      node, path,
      {
          {"sticky_ttl_ms", RG_ON(ld.readInt64(v, p, {1000, 30 * kDay}, &sc->stickyTtlMs))},
          {"sticky_renew_threshold_ms",
           RG_ON(ld.readInt64(v, p, {0, 30 * kDay}, &sc->stickyRenewThresholdMs))},
          {"max_attempts", RG_ON(ld.readInt(v, p, {1, 10}, &sc->maxAttempts))},
          {"auth_cooldown_ms", RG_ON(ld.readInt64(v, p, kCooldown, &sc->authCooldownMs))},
          {"overloaded_cooldown_ms",
           RG_ON(ld.readInt64(v, p, kCooldown, &sc->overloadedCooldownMs))},
          {"unavailable_cooldown_ms",
           RG_ON(ld.readInt64(v, p, kCooldown, &sc->unavailableCooldownMs))},
          {"transient_cooldown_ms", RG_ON(ld.readInt64(v, p, kCooldown, &sc->transientCooldownMs))},
          {"rate_limited_cooldown_ms",
           RG_ON(ld.readInt64(v, p, kCooldown, &sc->rateLimitedCooldownMs))},
          {"quota_cooldown_ms", RG_ON(ld.readInt64(v, p, kCooldown, &sc->quotaCooldownMs))},
          {"retry_after_cap_ms", RG_ON(ld.readInt64(v, p, kCooldown, &sc->retryAfterCapMs))},
          {"state_refresh_ms", RG_ON(ld.readInt64(v, p, {100, 60000}, &sc->stateRefreshMs))},
          {"sticky_cache_ms", RG_ON(ld.readInt64(v, p, {0, 600000}, &sc->stickyCacheMs))},
      });
}

void loadHttpUrl(Loader& ld, const YAML::Node& v, const std::string& p, std::string* out) {
  std::string s;
  if (!ld.scalarText(v, p, "a URL", &s)) {
    return;
  }
  if (s.rfind("https://", 0) != 0 && s.rfind("http://", 0) != 0) {
    ld.error(p, v, "expected an http:// or https:// URL, got " + quoteValue(s));
    return;
  }
  *out = std::move(s);
}

void loadClaudeOAuth(Loader& ld, const YAML::Node& node, const std::string& path,
                     ClaudeOAuthConfig* c) {
  ld.forEachKey(
      node, path,
      {
          {"authorize_url", RG_ON(loadHttpUrl(ld, v, p, &c->authorizeUrl))},
          {"token_url", RG_ON(loadHttpUrl(ld, v, p, &c->tokenUrl))},
          {"client_id", RG_ON(loadNonEmptyPath(ld, v, p, &c->clientId))},
          {"redirect_uri", RG_ON(loadHttpUrl(ld, v, p, &c->redirectUri))},
          {"scopes", RG_ON(loadNonEmptyPath(ld, v, p, &c->scopes))},
          {"setup_scopes", RG_ON(loadNonEmptyPath(ld, v, p, &c->setupScopes))},
          {"refresh_lead_ms", RG_ON(ld.readInt64(v, p, {0, 86400000}, &c->refreshLeadMs))},
          {"refresh_interval_ms", RG_ON(ld.readInt64(v, p, {0, 86400000}, &c->refreshIntervalMs))},
      });
}

void loadOAuth(Loader& ld, const YAML::Node& node, const std::string& path, OAuthConfig* oc) {
  ld.forEachKey(node, path, {{"claude", RG_ON(loadClaudeOAuth(ld, v, p, &oc->claude))}});
}

void loadAdminToken(Loader& ld, const YAML::Node& v, const std::string& p, std::string* out) {
  ld.readSecret(v, p, out);
  if (!out->empty() && out->size() < 32) {
    ld.error(p, v, "must be at least 32 characters (or empty to generate one)");
  }
}

void loadAdmin(Loader& ld, const YAML::Node& node, const std::string& path, AdminConfig* ac) {
  ld.forEachKey(node, path,
                {
                    {"enabled", RG_ON(ld.readBool(v, p, &ac->enabled))},
                    {"token", RG_ON(loadAdminToken(ld, v, p, &ac->token))},
                });
}

void loadTimeZone(Loader& ld, const YAML::Node& v, const std::string& p, std::string* out) {
  std::string s;
  if (!ld.scalarText(v, p, "a time zone name", &s)) {
    return;
  }
  auto tz = TimeZone::load(s);
  if (!tz) {
    ld.error(p, v, tz.status().message());
    return;
  }
  *out = std::move(s);
}

void loadAccounting(Loader& ld, const YAML::Node& node, const std::string& path,
                    AccountingConfig* ac) {
  ld.forEachKey(
      node, path,
      {
          {"time_zone", RG_ON(loadTimeZone(ld, v, p, &ac->timeZone))},
          {"hourly_retention_days", RG_ON(ld.readInt(v, p, {1, 3650}, &ac->hourlyRetentionDays))},
          {"daily_retention_days", RG_ON(ld.readInt(v, p, {1, 3650}, &ac->dailyRetentionDays))},
          {"monthly_retention_months",
           RG_ON(ld.readInt(v, p, {1, 1200}, &ac->monthlyRetentionMonths))},
          {"recent_records_per_key",
           RG_ON(ld.readInt(v, p, {0, 100000}, &ac->recentRecordsPerKey))},
      });
}

void loadLimits(Loader& ld, const YAML::Node& node, const std::string& path, LimitsConfig* lc) {
  ld.forEachKey(
      node, path,
      {
          {"default_max_output_tokens",
           RG_ON(ld.readInt(v, p, {1, 10000000}, &lc->defaultMaxOutputTokens))},
          {"reserve_output_tokens_cap",
           RG_ON(ld.readInt(v, p, {0, 10000000}, &lc->reserveOutputTokensCap))},
          {"queue_enabled", RG_ON(ld.readBool(v, p, &lc->queueEnabled))},
          {"queue_wait_ms", RG_ON(ld.readInt(v, p, {1, 600000}, &lc->queueWaitMs))},
          {"queue_max_per_key", RG_ON(ld.readInt(v, p, {1, 100000}, &lc->queueMaxPerKey))},
      });
}

void loadRoot(Loader& ld, const YAML::Node& root, Config* cfg) {
  ld.forEachKey(root, kRootPath,
                {
                    {"server", RG_ON(loadServer(ld, v, p, &cfg->server))},
                    {"storage", RG_ON(loadStorage(ld, v, p, &cfg->storage))},
                    {"security", RG_ON(loadSecurity(ld, v, p, &cfg->security))},
                    {"logging", RG_ON(loadLogging(ld, v, p, &cfg->logging))},
                    {"plugins", RG_ON(loadPlugins(ld, v, p, &cfg->plugins))},
                    {"pricing", RG_ON(loadPricing(ld, v, p, &cfg->pricing))},
                    {"scheduler", RG_ON(loadScheduler(ld, v, p, &cfg->scheduler))},
                    {"oauth", RG_ON(loadOAuth(ld, v, p, &cfg->oauth))},
                    {"admin", RG_ON(loadAdmin(ld, v, p, &cfg->admin))},
                    {"accounting", RG_ON(loadAccounting(ld, v, p, &cfg->accounting))},
                    {"limits", RG_ON(loadLimits(ld, v, p, &cfg->limits))},
                });
}

#undef RG_ON

}  // namespace

std::string defaultPluginDirectory() {
  std::error_code ec;
  if (std::filesystem::is_directory(RG_DEFAULT_PLUGIN_DIR, ec)) {
    return RG_DEFAULT_PLUGIN_DIR;
  }
  return RG_INSTALLED_PLUGIN_DIR;
}

std::string defaultPricingFile() {
  std::error_code ec;
  if (std::filesystem::is_regular_file(RG_DEFAULT_PRICING_FILE, ec)) {
    return RG_DEFAULT_PRICING_FILE;
  }
  return RG_INSTALLED_PRICING_FILE;
}

StatusOr<Config> parseConfigText(const std::string& yaml, const std::string& sourceName,
                                 const std::function<const char*(const char*)>& getenvFn) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return invalidArgument("YAML syntax error: " + e.msg + " (line " +
                           std::to_string(e.mark.line + 1) + ")");
  }
  Config cfg;
  cfg.sourcePath = sourceName;
  Loader ld(getenvFn);
  try {
    loadRoot(ld, root, &cfg);
  } catch (const YAML::Exception& e) {
    // Not expected (only checked accessors are used), but a config bug must not crash.
    return invalidArgument("YAML error: " + e.msg + " (line " + std::to_string(e.mark.line + 1) +
                           ")");
  }
  if (!ld.ok()) {
    return invalidArgument(ld.joinedErrors());
  }
  cfg.storage.dataDir = absolutePath(cfg.storage.dataDir);
  if (cfg.plugins.directory.empty()) {
    cfg.plugins.directory = defaultPluginDirectory();
  }
  cfg.plugins.directory = absolutePath(cfg.plugins.directory);
  if (cfg.pricing.file.empty()) {
    cfg.pricing.file = defaultPricingFile();
  }
  cfg.pricing.file = absolutePath(cfg.pricing.file);
  if (!cfg.pricing.overrideFile.empty()) {
    cfg.pricing.overrideFile = absolutePath(cfg.pricing.overrideFile);
  }
  return cfg;
}

StatusOr<Config> loadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return notFound("cannot read config file \"" + path + "\": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return unavailable("cannot read config file \"" + path + "\"");
  }
  return parseConfigText(text.str(), absolutePath(path));
}

}  // namespace rg
