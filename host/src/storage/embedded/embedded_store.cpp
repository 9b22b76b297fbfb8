// Embedded store: all state in memory behind one mutex; every durable change is appended to a
// JSON-lines journal (storage/embedded/journal.h) before it is applied, and the journal is replayed
// at open. Compaction rewrites the journal as a snapshot (the same line format) atomically.
// Several processes (or store objects) may share one data dir: a write takes the journal's flock,
// catches up with lines others appended, validates, appends; a durable read first polls the
// journal (one stat() when nothing changed) and applies what others wrote.
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "storage/embedded/journal.h"
#include "storage/store.h"
#include "storage/store_util.h"
#include "storage/usage_codec.h"

namespace rg {

namespace {

using storage::Journal;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using JsonValue = rapidjson::Value;

// 2: journal ops adm.week and the usage line's wk, snapshots without usage.key/acct/day/model.
// Version 1 journals are read (and rewritten as version 2 at open, so that an older build refuses
// them with its "not supported" message instead of skipping the lines it does not know).
constexpr int kFormatVersion = 2;
constexpr int64_t kDefaultCompactBytes = 64LL * 1024 * 1024;

// ---- JSON encoding of records ------------------------------------------------------------------

void putStr(Writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}
void putInt(Writer& w, const char* k, int64_t v) {
  w.Key(k);
  w.Int64(v);
}
void putBool(Writer& w, const char* k, bool v) {
  w.Key(k);
  w.Bool(v);
}
void putStrings(Writer& w, const char* k, const std::vector<std::string>& v) {
  w.Key(k);
  w.StartArray();
  for (const std::string& s : v) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  w.EndArray();
}
void putCounts(Writer& w, const char* k, const TokenCounts& c) {
  w.Key(k);
  w.StartObject();
  for (const auto& f : storage::kTokenFields) {
    putInt(w, f.name, c.*f.member);
  }
  w.EndObject();
}

std::string getStr(const JsonValue& o, const char* k) {
  auto it = o.FindMember(k);
  if (it == o.MemberEnd() || !it->value.IsString()) {
    return {};
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}
int64_t getInt(const JsonValue& o, const char* k) {
  auto it = o.FindMember(k);
  return it != o.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
}
bool getBool(const JsonValue& o, const char* k, bool dflt) {
  auto it = o.FindMember(k);
  return it != o.MemberEnd() && it->value.IsBool() ? it->value.GetBool() : dflt;
}
std::vector<std::string> getStrings(const JsonValue& o, const char* k) {
  std::vector<std::string> out;
  auto it = o.FindMember(k);
  if (it != o.MemberEnd() && it->value.IsArray()) {
    for (const auto& v : it->value.GetArray()) {
      if (v.IsString()) {
        out.emplace_back(v.GetString(), v.GetStringLength());
      }
    }
  }
  return out;
}
TokenCounts getCounts(const JsonValue& o, const char* k) {
  TokenCounts c;
  auto it = o.FindMember(k);
  if (it != o.MemberEnd() && it->value.IsObject()) {
    for (const auto& f : storage::kTokenFields) {
      c.*f.member = getInt(it->value, f.name);
    }
  }
  return c;
}
const JsonValue& getObj(const JsonValue& o, const char* k) {
  static const JsonValue kEmpty(rapidjson::kObjectType);
  auto it = o.FindMember(k);
  return it != o.MemberEnd() && it->value.IsObject() ? it->value : kEmpty;
}

void putMap(Writer& w, const char* k, const std::map<std::string, std::string>& m) {
  w.Key(k);
  w.StartObject();
  for (const auto& [name, value] : m) {
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  w.EndObject();
}
std::map<std::string, std::string> getMap(const JsonValue& o, const char* k) {
  std::map<std::string, std::string> out;
  auto it = o.FindMember(k);
  if (it != o.MemberEnd() && it->value.IsObject()) {
    for (const auto& m : it->value.GetObject()) {
      if (m.value.IsString()) {
        out.emplace(std::string(m.name.GetString(), m.name.GetStringLength()),
                    std::string(m.value.GetString(), m.value.GetStringLength()));
      }
    }
  }
  return out;
}

void writeKeyRec(Writer& w, const ApiKeyRecord& r) {
  w.Key("rec");
  w.StartObject();
  putStr(w, "id", r.id);
  putStr(w, "name", r.name);
  putStr(w, "hash", r.hash);
  putBool(w, "enabled", r.enabled);
  putInt(w, "createdAtMs", r.createdAtMs);
  putInt(w, "updatedAtMs", r.updatedAtMs);
  putInt(w, "expiresAtMs", r.expiresAtMs);
  putStrings(w, "permissions", r.permissions);
  putInt(w, "concurrencyLimit", r.concurrencyLimit);
  putInt(w, "rateWindowMinutes", r.rateWindowMinutes);
  putInt(w, "rateRequests", r.rateRequests);
  putInt(w, "rateTokens", r.rateTokens);
  putInt(w, "modelMode", static_cast<int64_t>(r.modelMode));
  putStrings(w, "models", r.models);
  putMap(w, "bindings", r.bindings);
  putInt(w, "rateCostMicroUsd", r.rateCostMicroUsd);
  putInt(w, "dailyCostMicroUsd", r.dailyCostMicroUsd);
  putInt(w, "totalCostMicroUsd", r.totalCostMicroUsd);
  putInt(w, "weeklyCostMicroUsd", r.weeklyCostMicroUsd);
  putInt(w, "weeklyResetDay", r.weeklyResetDay);
  putInt(w, "weeklyResetHour", r.weeklyResetHour);
  putInt(w, "ratePpm", r.ratePpm);
  putInt(w, "activationMs", r.activationMs);
  putInt(w, "activatedAtMs", r.activatedAtMs);
  w.EndObject();
}

ApiKeyRecord readKeyRec(const JsonValue& o) {
  ApiKeyRecord r;
  r.id = getStr(o, "id");
  r.name = getStr(o, "name");
  r.hash = getStr(o, "hash");
  r.enabled = getBool(o, "enabled", true);
  r.createdAtMs = getInt(o, "createdAtMs");
  r.updatedAtMs = getInt(o, "updatedAtMs");
  r.expiresAtMs = getInt(o, "expiresAtMs");
  r.permissions = getStrings(o, "permissions");
  r.concurrencyLimit = getInt(o, "concurrencyLimit");
  r.rateWindowMinutes = getInt(o, "rateWindowMinutes");
  r.rateRequests = getInt(o, "rateRequests");
  r.rateTokens = getInt(o, "rateTokens");
  int64_t mode = getInt(o, "modelMode");
  r.modelMode =
      mode >= 0 && mode <= 2 ? static_cast<ModelFilterMode>(mode) : ModelFilterMode::kNone;
  r.models = getStrings(o, "models");
  r.bindings = getMap(o, "bindings");  // absent in lines written before bindings existed
  // Absent in lines written before cost limits existed: the record's defaults.
  r.rateCostMicroUsd = getInt(o, "rateCostMicroUsd");
  r.dailyCostMicroUsd = getInt(o, "dailyCostMicroUsd");
  r.totalCostMicroUsd = getInt(o, "totalCostMicroUsd");
  r.weeklyCostMicroUsd = getInt(o, "weeklyCostMicroUsd");
  if (o.HasMember("weeklyResetDay")) {
    r.weeklyResetDay = getInt(o, "weeklyResetDay");
  }
  r.weeklyResetHour = getInt(o, "weeklyResetHour");
  if (o.HasMember("ratePpm")) {
    r.ratePpm = getInt(o, "ratePpm");
  }
  r.activationMs = getInt(o, "activationMs");
  r.activatedAtMs = getInt(o, "activatedAtMs");
  return r;
}

void writeAcctRec(Writer& w, const AccountRecord& r) {
  w.Key("rec");
  w.StartObject();
  putStr(w, "id", r.id);
  putStr(w, "name", r.name);
  putStr(w, "type", r.type);
  putStr(w, "baseUrl", r.baseUrl);
  putStr(w, "secretSealed", r.secretSealed);
  putInt(w, "priority", r.priority);
  putBool(w, "schedulable", r.schedulable);
  putStr(w, "status", r.status);
  putStr(w, "statusReason", r.statusReason);
  putInt(w, "createdAtMs", r.createdAtMs);
  putInt(w, "updatedAtMs", r.updatedAtMs);
  putInt(w, "lastUsedAtMs", r.lastUsedAtMs);
  putStr(w, "provider", r.provider);
  putStr(w, "sharing", r.sharing);
  putStrings(w, "groups", r.groups);
  putInt(w, "concurrencyLimit", r.concurrencyLimit);
  putMap(w, "modelMapping", r.modelMapping);
  putStr(w, "proxyUrl", r.proxyUrl);
  putInt(w, "subscriptionExpiresAtMs", r.subscriptionExpiresAtMs);
  putStr(w, "settingsJson", r.settingsJson);
  putMap(w, "secretsSealed", r.secretsSealed);
  w.EndObject();
}

AccountRecord readAcctRec(const JsonValue& o) {
  AccountRecord r;
  r.id = getStr(o, "id");
  r.name = getStr(o, "name");
  r.type = getStr(o, "type");
  r.baseUrl = getStr(o, "baseUrl");
  r.secretSealed = getStr(o, "secretSealed");
  r.priority = getInt(o, "priority");
  r.schedulable = getBool(o, "schedulable", true);
  r.status = getStr(o, "status");
  r.statusReason = getStr(o, "statusReason");
  r.createdAtMs = getInt(o, "createdAtMs");
  r.updatedAtMs = getInt(o, "updatedAtMs");
  r.lastUsedAtMs = getInt(o, "lastUsedAtMs");
  // Lines written before these fields existed keep the record's defaults.
  r.provider = getStr(o, "provider");
  if (o.HasMember("sharing")) {
    r.sharing = getStr(o, "sharing");
  }
  r.groups = getStrings(o, "groups");
  r.concurrencyLimit = getInt(o, "concurrencyLimit");
  r.modelMapping = getMap(o, "modelMapping");
  r.proxyUrl = getStr(o, "proxyUrl");
  r.subscriptionExpiresAtMs = getInt(o, "subscriptionExpiresAtMs");
  if (o.HasMember("settingsJson")) {
    r.settingsJson = getStr(o, "settingsJson");
  }
  r.secretsSealed = getMap(o, "secretsSealed");
  return r;
}

void writeCooldownRec(Writer& w, const CooldownRecord& r) {
  w.Key("rec");
  w.StartObject();
  putStr(w, "accountId", r.accountId);
  putStr(w, "scope", r.scope);
  putInt(w, "untilMs", r.untilMs);
  putInt(w, "markedAtMs", r.markedAtMs);
  putStr(w, "errorClass", r.errorClass);
  putStr(w, "reason", r.reason);
  putInt(w, "upstreamStatus", r.upstreamStatus);
  w.EndObject();
}

CooldownRecord readCooldownRec(const JsonValue& o) {
  CooldownRecord r;
  r.accountId = getStr(o, "accountId");
  r.scope = getStr(o, "scope");
  r.untilMs = getInt(o, "untilMs");
  r.markedAtMs = getInt(o, "markedAtMs");
  r.errorClass = getStr(o, "errorClass");
  r.reason = getStr(o, "reason");
  r.upstreamStatus = getInt(o, "upstreamStatus");
  return r;
}

// One journal line: {"op":<op>, ...fields written by fill}.
template <typename Fill>
std::string makeLine(const char* op, Fill&& fill) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("op");
  w.String(op);
  fill(w);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

struct KvEntry {
  std::string value;
  int64_t expUnixMs = 0;  // 0 = never
};

// Admission state of one key (memory only, like leases: one process serves a data dir).
struct AdmWindow {
  int64_t endMs = 0;
  int64_t requests = 0;
  int64_t tokens = 0;
  int64_t cost = 0;
};
struct Reservation {
  int64_t expMs = 0;
  int64_t tokens = 0;
  int64_t cost = 0;
};
// The live reservations of one key with running sums of their estimates and an expiry index, so
// that admit / settle / renew / release cost O(log n + expired), not O(n).
struct KeyReservations {
  std::map<std::string, Reservation> byId;
  std::set<std::pair<int64_t, std::string>> byExpiry;  // (expMs, requestId)
  int64_t tokens = 0;
  int64_t cost = 0;

  void add(const std::string& rid, const Reservation& r) {
    byId[rid] = r;
    byExpiry.emplace(r.expMs, rid);
    tokens += r.tokens;
    cost += r.cost;
  }
  void erase(std::map<std::string, Reservation>::iterator it) {
    byExpiry.erase({it->second.expMs, it->first});
    tokens -= it->second.tokens;
    cost -= it->second.cost;
    byId.erase(it);
  }
  void refresh(std::map<std::string, Reservation>::iterator it, int64_t expMs) {
    byExpiry.erase({it->second.expMs, it->first});
    it->second.expMs = expMs;
    byExpiry.emplace(expMs, it->first);
  }
  void dropExpired(int64_t now) {
    while (!byExpiry.empty() && byExpiry.begin()->first <= now) {
      erase(byId.find(byExpiry.begin()->second));
    }
  }
};
// The weekly billed cost of one key and week (durable: booked by the usage line of a settle).
struct WeekCounter {
  int64_t cost = 0;
  int64_t expMs = 0;  // 0 = never
};
using WeekKey = std::pair<std::string, std::string>;  // keyId, week
// What a settle adds to the weekly counter with its booking (also in the usage journal line).
struct WeekAdd {
  std::string keyId;
  std::string week;
  int64_t expMs = 0;
};

using DayKey = std::pair<std::string, std::string>;       // keyId, day
using CooldownKey = std::pair<std::string, std::string>;  // accountId, scope

struct LockEntry {
  std::string token;
  int64_t expiresAtMs = 0;
};

// Issue-4 aggregates: one entry per (dim, bucket kind, bucket, id); kind kLifetimeKind is the
// lifetime total (bucket ""). kKeyModel entries keep per-model counts, the others one total.
constexpr int kLifetimeKind = 3;
using AggKey = std::tuple<int, int, std::string, std::string>;  // dim, kind, bucket, id
struct UsageAgg {
  int64_t expMs = 0;  // 0 = never (lifetime); gone from (expMs) on, like a Redis PEXPIRE
  TokenCounts counts;
  std::map<std::string, TokenCounts> models;  // kKeyModel only
};
// What one booking of an event stores beside its counts (also in its journal line, so a replay
// books exactly what the original did whatever the retention is at replay).
struct UsageBooking {
  int64_t atMs = 0;
  int64_t expMs[3] = {0, 0, 0};  // hour, day, month bucket expiry (0 = never)
  int64_t recentCap = 0;         // 0 = the record is not kept in the recent list
};
// Expired buckets are also swept incrementally: this many entries per record().
constexpr size_t kAggSweepPerRecord = 16;

// Expired sticky mappings that are never read again are swept at most this often (on a write).
constexpr int64_t kStickySweepIntervalMs = 60'000;

class EmbeddedStore;

class EmbeddedKeys final : public KeyStore {
 public:
  explicit EmbeddedKeys(EmbeddedStore& s) : s_(s) {}
  Status create(const ApiKeyRecord& rec) override;
  StatusOr<std::optional<ApiKeyRecord>> getById(const std::string& id) override;
  StatusOr<std::optional<ApiKeyRecord>> getByHash(const std::string& hash) override;
  StatusOr<std::vector<ApiKeyRecord>> list() override;
  Status update(const ApiKeyRecord& rec) override;
  Status remove(const std::string& id) override;

 private:
  EmbeddedStore& s_;
};

class EmbeddedAccounts final : public AccountStore {
 public:
  explicit EmbeddedAccounts(EmbeddedStore& s) : s_(s) {}
  Status create(const AccountRecord& rec) override;
  StatusOr<std::optional<AccountRecord>> get(const std::string& id) override;
  StatusOr<std::vector<AccountRecord>> list() override;
  Status update(const AccountRecord& rec) override;
  Status remove(const std::string& id) override;
  Status touchLastUsed(const std::string& id, int64_t unixMs) override;

 private:
  EmbeddedStore& s_;
};

class EmbeddedUsage final : public UsageStore {
 public:
  explicit EmbeddedUsage(EmbeddedStore& s) : s_(s) {}
  StatusOr<bool> record(const UsageEvent& ev) override;
  void setRetention(const UsageRetention& r) override;
  StatusOr<std::vector<UsageEvent>> recent(const std::string& keyId, size_t limit) override;
  StatusOr<std::vector<UsagePoint>> series(UsageDim dim, const std::string& id,
                                           UsageBucket bucket,
                                           const std::vector<std::string>& buckets) override;
  StatusOr<TokenCounts> lifetime(UsageDim dim, const std::string& id) override;
  StatusOr<std::vector<KeyCost>> topKeys(UsageBucket bucket, const std::vector<std::string>& buckets,
                                         size_t limit) override;

 private:
  EmbeddedStore& s_;
};

class EmbeddedLimits final : public LimitStore {
 public:
  explicit EmbeddedLimits(EmbeddedStore& s) : s_(s) {}
  StatusOr<LeaseResult> acquireLease(const std::string& scope, const std::string& holder,
                                     int64_t limit, int64_t ttlMs) override;
  StatusOr<bool> renewLease(const std::string& scope, const std::string& holder,
                            int64_t ttlMs) override;
  Status releaseLease(const std::string& scope, const std::string& holder) override;
  StatusOr<int64_t> leaseCount(const std::string& scope) override;

 private:
  EmbeddedStore& s_;
};

// Reservations and rate windows live in this process's memory (one process serves a data dir);
// the weekly counters are durable; committed daily / lifetime cost come from the usage buckets.
class EmbeddedAdmission final : public AdmissionStore {
 public:
  explicit EmbeddedAdmission(EmbeddedStore& s) : s_(s) {}
  StatusOr<AdmitResult> admit(const AdmitRequest& req) override;
  StatusOr<bool> renew(const std::string& keyId, const std::string& requestId,
                       int64_t ttlMs) override;
  StatusOr<bool> settle(const SettleRequest& req) override;
  Status release(const std::string& keyId, const std::string& requestId) override;
  StatusOr<AdmissionState> state(const std::string& keyId, const std::string& week) override;

 private:
  EmbeddedStore& s_;
};

// Cooldowns are durable (journal ops "cd.put"/"cd.del": a CLI process or a restart sees them);
// sticky mappings and locks live in this process's memory like leases, since only one process
// serves a data dir.
class EmbeddedSched final : public SchedStore {
 public:
  explicit EmbeddedSched(EmbeddedStore& s) : s_(s) {}
  Status setCooldown(const CooldownRecord& rec) override;
  Status clearCooldown(const std::string& accountId,
                       const std::optional<std::string>& scope) override;
  StatusOr<std::vector<CooldownRecord>> listCooldowns() override;
  StatusOr<std::optional<StickyRecord>> getSticky(const std::string& sessionHash) override;
  Status setSticky(const std::string& sessionHash, const std::string& accountId,
                   int64_t ttlMs) override;
  Status deleteSticky(const std::string& sessionHash) override;
  StatusOr<int64_t> deleteStickyForAccount(const std::string& accountId) override;
  StatusOr<bool> tryLock(const std::string& name, const std::string& token, int64_t ttlMs) override;
  StatusOr<bool> unlock(const std::string& name, const std::string& token) override;

 private:
  EmbeddedStore& s_;
};

// Settings and plugin KV share the code; `ns` picks the journal ops ("set" or "kv").
class EmbeddedKv final : public KvStore {
 public:
  EmbeddedKv(EmbeddedStore& s, std::string ns) : s_(s), ns_(std::move(ns)) {}
  StatusOr<std::optional<std::string>> get(const std::string& key) override;
  Status set(const std::string& key, const std::string& value, int64_t ttlMs) override;
  Status del(const std::string& key) override;
  const std::string& ns() const { return ns_; }

 private:
  EmbeddedStore& s_;
  std::string ns_;
};

class EmbeddedStore final : public Store {
 public:
  EmbeddedStore(std::unique_ptr<Journal> journal, const Clock& clock, int64_t compactBytes)
      : journal_(std::move(journal)),
        clock_(clock),
        compactBytes_(compactBytes),
        keys_(*this),
        accounts_(*this),
        usage_(*this),
        limits_(*this),
        sched_(*this),
        admission_(*this),
        settings_(*this, "set"),
        pluginKv_(*this, "kv") {}

  const char* backendName() const override { return "embedded"; }
  Status ping() override { return Status::ok(); }
  KeyStore& keys() override { return keys_; }
  AccountStore& accounts() override { return accounts_; }
  UsageStore& usage() override { return usage_; }
  LimitStore& limits() override { return limits_; }
  SchedStore& sched() override { return sched_; }
  AdmissionStore& admission() override { return admission_; }
  KvStore& settings() override { return settings_; }
  KvStore& pluginKv() override { return pluginKv_; }
  uint64_t errorCount() const override { return errors_.load(); }
  Status claimExclusiveServe() override {
    std::lock_guard<std::mutex> lock(mu_);
    return journal_->claimServe();
  }

  // Replays the journal (and compacts it when it is past the threshold).
  Status load();

  // ---- used by the facets; every member below requires mu_ ----
  std::mutex mu_;
  // Before a durable read: applies what other processes appended (or reloads after their
  // compaction). Costs one stat() when the journal did not change.
  Status syncForRead();
  // Before a durable write: takes the journal's writer lock and catches up under it, so the
  // validation that follows sees every other process's records. endOp() releases the lock.
  Status beginWrite();
  // Appends a durable change (apply it to memory only when this succeeds). Needs beginWrite().
  Status commit(const std::string& line);
  // Ends an operation: compacts if due (after the change is applied in memory, so the snapshot
  // includes it), then releases the writer lock if held.
  void endOp();
  int64_t now() const { return clock_.nowUnixMs(); }
  void fail() { errors_++; }

  void applyUsage(const UsageEvent& ev, const UsageBooking& b);
  void applyWeek(const WeekAdd& wk, int64_t atMs, int64_t billed);
  // Books (journal, then memory) unless the request id is booked; `wk` is the weekly counter to
  // add to (nullptr = none). Needs beginWrite(). Returns whether it booked.
  StatusOr<bool> bookLocked(const UsageEvent& raw, const WeekAdd* wk);
  // Drops the key's expired reservations (and the request's own when `requestId` is given).
  void dropReservations(const std::string& keyId, const std::string* requestId);
  // Erases what has expired from the admission state in memory (windows, reservations of idle
  // keys, weekly counters): at most once a minute unless `force` (snapshots force it).
  void sweepAdmission(bool force);
  int64_t nextAdmissionSweepMs_ = 0;
  // The live weekly cost of a key and week.
  int64_t weekCost(const std::string& keyId, const std::string& week) const;
  UsageBooking bookingFor(const UsageEvent& ev, int64_t atMs) const;
  // Erases expired aggregates: up to `budget` entries from where the last sweep stopped.
  void sweepUsageAggs(size_t budget);
  // The live aggregate (nullptr when absent or expired).
  const UsageAgg* findAgg(const AggKey& k) const;
  bool isBooked(const std::string& requestId);
  void pruneBooked();
  std::map<std::string, KvEntry>& kvMap(const std::string& ns) {
    return ns == "set" ? settingsMap_ : pluginKvMap_;
  }
  void dropExpiredLeases(std::map<std::string, int64_t>* holders);
  void eraseCooldowns(const std::string& accountId);  // every scope
  void eraseSticky(std::map<std::string, StickyRecord>::iterator it);
  void sweepSticky();

  std::map<std::string, ApiKeyRecord> keysById_;
  std::unordered_map<std::string, std::string> keyIdByHash_;
  std::map<std::string, AccountRecord> accountsById_;
  std::map<AggKey, UsageAgg> usageAggs_;
  std::optional<AggKey> aggSweepCursor_;  // where the incremental sweep goes on
  std::unordered_map<std::string, std::deque<UsageEvent>> recent_;  // keyId -> newest first
  UsageRetention retention_;
  std::unordered_map<std::string, int64_t> bookedIds_;       // requestId -> booked at
  // Oldest first; points at the key in bookedIds_ (node keys never move), so an id is stored once.
  std::deque<std::pair<int64_t, const std::string*>> bookedOrder_;
  std::map<std::string, KvEntry> settingsMap_;
  std::map<std::string, KvEntry> pluginKvMap_;
  std::map<std::string, std::map<std::string, int64_t>> leases_;  // scope -> holder -> expiry
  std::map<std::string, AdmWindow> admWindows_;                         // keyId -> window
  std::map<std::string, KeyReservations> reservations_;                    // keyId -> ...
  std::map<WeekKey, WeekCounter> weekly_;                                  // durable
  std::map<CooldownKey, CooldownRecord> cooldowns_;  // durable; expired ones dropped on read
  std::map<std::string, StickyRecord> sticky_;       // session hash -> mapping
  std::map<std::string, std::set<std::string>> stickyByAccount_;  // accountId -> hashes
  int64_t nextStickySweepMs_ = 0;
  std::map<std::string, LockEntry> locks_;

 private:
  Status applyLine(const std::string& line);
  // Usage totals of journals written before the time buckets (snapshot ops usage.key,
  // usage.acct, usage.day, usage.model): gathered while their snapshot is replayed, then turned
  // into lifetime and day buckets (finishLegacyUsage) before the next line of another kind.
  struct LegacyUsage {
    std::map<std::string, TokenCounts> keys;
    std::map<std::string, TokenCounts> accounts;
    std::map<DayKey, TokenCounts> days;
    std::map<DayKey, std::map<std::string, TokenCounts>> models;
    bool empty() const {
      return keys.empty() && accounts.empty() && days.empty() && models.empty();
    }
  };
  void finishLegacyUsage();
  LegacyUsage legacy_;
  int64_t journalVersion_ = 0;  // of the header last read (0 = none yet)
  // Polls the journal and applies the delta; a reload first forgets every durable record.
  Status catchUp();
  void resetDurable();
  std::string snapshot();
  Status compact();
  void maybeCompact();

  std::unique_ptr<Journal> journal_;
  const Clock& clock_;
  int64_t compactBytes_;
  int64_t lastSnapshotBytes_ = 0;
  std::atomic<uint64_t> errors_{0};
  EmbeddedKeys keys_;
  EmbeddedAccounts accounts_;
  EmbeddedUsage usage_;
  EmbeddedLimits limits_;
  EmbeddedSched sched_;
  EmbeddedAdmission admission_;
  EmbeddedKv settings_;
  EmbeddedKv pluginKv_;
};

// What an operation touches: ephemeral state only (leases, windows: this process's memory),
// durable state for reading, or durable state for writing.
enum class Access { kEphemeral, kRead, kWrite };

// Holds the store mutex for one operation and brings the durable state up to date for it (see
// EmbeddedStore::syncForRead / beginWrite). When the operation is done (its change applied in
// memory) it compacts if due and releases the writer lock, still under the mutex.
class OpGuard {
 public:
  OpGuard(EmbeddedStore& s, Access a) : s_(s), lock_(s.mu_) {
    if (a == Access::kRead) {
      status_ = s_.syncForRead();
    } else if (a == Access::kWrite) {
      status_ = s_.beginWrite();
    }
  }
  ~OpGuard() { s_.endOp(); }
  OpGuard(const OpGuard&) = delete;
  OpGuard& operator=(const OpGuard&) = delete;
  bool ok() const { return status_.isOk(); }
  const Status& status() const { return status_; }

 private:
  EmbeddedStore& s_;
  std::unique_lock<std::mutex> lock_;
  Status status_;
};

// ---- EmbeddedStore ------------------------------------------------------------------------------

Status EmbeddedStore::commit(const std::string& line) {
  Status s = journal_->append(line);
  if (!s) {
    fail();
    spdlog::error("{}", s.message());
    return s;
  }
  return Status::ok();
}

Status EmbeddedStore::syncForRead() {
  Status s = catchUp();
  if (!s) {
    fail();
    spdlog::error("{}", s.message());
  }
  return s;
}

Status EmbeddedStore::beginWrite() {
  Status s = journal_->lock();
  if (s) {
    s = catchUp();
  }
  if (!s) {
    journal_->unlock();
    fail();
    spdlog::error("{}", s.message());
  }
  return s;
}

void EmbeddedStore::endOp() {
  maybeCompact();
  journal_->unlock();
}

void EmbeddedStore::resetDurable() {
  keysById_.clear();
  keyIdByHash_.clear();
  accountsById_.clear();
  legacy_ = LegacyUsage();
  usageAggs_.clear();
  weekly_.clear();
  aggSweepCursor_.reset();
  recent_.clear();
  bookedIds_.clear();
  bookedOrder_.clear();
  settingsMap_.clear();
  pluginKvMap_.clear();
  cooldowns_.clear();
}

Status EmbeddedStore::catchUp() {
  Journal::Delta delta;
  Status s = journal_->poll(&delta);
  if (!s) {
    return s;
  }
  if (delta.tornBytes > 0) {
    spdlog::warn(
        "embedded store: ignored a torn last journal line ({} bytes) in {} (a crash "
        "mid-write); every complete record before it was kept",
        delta.tornBytes, journal_->path());
  }
  if (delta.reloaded) {
    // Another process compacted (or this is the first read): the file is the whole truth.
    // Ephemeral state (leases, windows) is not in it and stays as it is.
    resetDurable();
  }
  size_t bad = 0;
  for (const std::string& line : delta.lines) {
    Status a = applyLine(line);
    if (a.code() == Code::kFailedPrecondition) {
      return Status(a.code(), "embedded store: " + journal_->path() + ": " + a.message());
    }
    if (!a) {
      // A complete but unreadable line can only come from outside interference or a disk
      // error; keep everything else rather than refusing to work.
      ++bad;
      spdlog::error("embedded store: skipped a journal line of {}: {}", journal_->path(),
                    a.message());
    }
  }
  if (!legacy_.empty()) {
    finishLegacyUsage();  // a snapshot of an older version that ends the file
  }
  if (bad > 0) {
    errors_ += bad;
  }
  if (delta.reloaded) {
    // A freshly compacted file is about the size of a snapshot.
    lastSnapshotBytes_ = journal_->sizeBytes();
  }
  return Status::ok();
}

void EmbeddedStore::maybeCompact() {
  if (journal_->sizeBytes() <= std::max(compactBytes_, 2 * lastSnapshotBytes_)) {
    return;
  }
  bool tookLock = !journal_->locked();
  Status c = tookLock ? journal_->lock() : Status::ok();
  if (c) {
    // The snapshot must include what others appended; another process may also have compacted
    // already, in which case the reload leaves nothing to do.
    c = catchUp();
  }
  if (c && journal_->sizeBytes() > std::max(compactBytes_, 2 * lastSnapshotBytes_)) {
    c = compact();
  }
  if (tookLock) {
    journal_->unlock();
  }
  if (!c) {
    // Every change is durable in the journal; only the rewrite failed. Retry after the next op.
    fail();
    spdlog::warn("embedded store: compaction failed (will retry): {}", c.message());
  }
}

void EmbeddedStore::pruneBooked() {
  int64_t cutoff = now() - storage::kUsageIdRetentionMs;
  while (!bookedOrder_.empty() && (bookedOrder_.front().first <= cutoff ||
                                   bookedOrder_.size() > storage::kUsageIdMaxCount)) {
    auto it = bookedIds_.find(*bookedOrder_.front().second);
    bookedOrder_.pop_front();
    if (it != bookedIds_.end()) {
      bookedIds_.erase(it);
    }
  }
}

bool EmbeddedStore::isBooked(const std::string& requestId) {
  pruneBooked();
  return bookedIds_.count(requestId) > 0;
}

UsageBooking EmbeddedStore::bookingFor(const UsageEvent& ev, int64_t atMs) const {
  UsageBooking b;
  b.atMs = atMs;
  // A retention <= 0 keeps the buckets forever (like the Redis backend).
  const int64_t ret[3] = {retention_.hourlyMs, retention_.dailyMs, retention_.monthlyMs};
  for (int i = 0; i < 3; ++i) {
    b.expMs[i] = ret[i] > 0 ? atMs + ret[i] : 0;
  }
  b.recentCap = ev.keyId.empty() ? 0 : std::max<int64_t>(0, retention_.recentPerKey);
  return b;
}

void EmbeddedStore::applyUsage(const UsageEvent& ev, const UsageBooking& b) {
  if (!ev.requestId.empty()) {
    auto [it, fresh] = bookedIds_.emplace(ev.requestId, b.atMs);
    if (fresh) {
      bookedOrder_.emplace_back(b.atMs, &it->first);
    }
  }
  // `ev` has its time buckets (storage::withTimeBuckets). The key's kKey buckets double as the
  // top-keys index (topKeys scans one bucket's entries), so it needs no booking of its own.
  const std::string* buckets[3] = {&ev.hour, &ev.day, &ev.month};
  auto book = [&](UsageDim d, const std::string& id) {
    for (int kind = 0; kind <= kLifetimeKind; ++kind) {
      bool life = kind == kLifetimeKind;
      UsageAgg& a = usageAggs_[AggKey{static_cast<int>(d), kind, life ? "" : *buckets[kind], id}];
      if (!life) {
        if (a.expMs != 0 && a.expMs <= b.atMs) {
          a = UsageAgg();  // expired, not yet swept: starts afresh like a Redis key would
        }
        a.expMs = b.expMs[kind];
      }
      if (d == UsageDim::kKeyModel) {
        a.models[ev.model].add(ev.counts);
      } else {
        a.counts.add(ev.counts);
      }
    }
  };
  if (!ev.keyId.empty()) {
    book(UsageDim::kKey, ev.keyId);
    book(UsageDim::kKeyModel, ev.keyId);
    if (b.recentCap > 0) {
      std::deque<UsageEvent>& list = recent_[ev.keyId];
      list.push_front(ev);
      while (static_cast<int64_t>(list.size()) > b.recentCap) {
        list.pop_back();
      }
    }
  }
  if (!ev.accountId.empty()) {
    book(UsageDim::kAccount, ev.accountId);
  }
  book(UsageDim::kModel, ev.model);
}

void EmbeddedStore::sweepUsageAggs(size_t budget) {
  int64_t t = now();
  auto it = aggSweepCursor_ ? usageAggs_.lower_bound(*aggSweepCursor_) : usageAggs_.begin();
  for (size_t n = 0; n < budget && it != usageAggs_.end(); ++n) {
    it = it->second.expMs != 0 && it->second.expMs <= t ? usageAggs_.erase(it) : std::next(it);
  }
  if (it == usageAggs_.end()) {
    aggSweepCursor_.reset();  // the next sweep starts over
  } else {
    aggSweepCursor_ = it->first;
  }
}

void EmbeddedStore::applyWeek(const WeekAdd& wk, int64_t atMs, int64_t billed) {
  WeekCounter& c = weekly_[{wk.keyId, wk.week}];
  if (c.expMs != 0 && c.expMs <= atMs) {
    c = WeekCounter();  // expired, not yet dropped: starts afresh like a Redis key would
  }
  c.cost += billed;
  c.expMs = wk.expMs;
}

int64_t EmbeddedStore::weekCost(const std::string& keyId, const std::string& week) const {
  auto it = weekly_.find({keyId, week});
  if (it == weekly_.end() || (it->second.expMs != 0 && it->second.expMs <= now())) {
    return 0;
  }
  return it->second.cost;
}

StatusOr<bool> EmbeddedStore::bookLocked(const UsageEvent& raw, const WeekAdd* wk) {
  UsageEvent ev = storage::withTimeBuckets(raw);
  if (!ev.requestId.empty() && isBooked(ev.requestId)) {
    return false;
  }
  UsageBooking b = bookingFor(ev, now());
  Status st = commit(makeLine("usage", [&](Writer& w) {
    storage::writeUsageEventFields(w, ev);
    putInt(w, "at", b.atMs);
    w.Key("exp");
    w.StartArray();
    for (int64_t e : b.expMs) {
      w.Int64(e);
    }
    w.EndArray();
    putInt(w, "cap", b.recentCap);
    if (wk != nullptr) {
      w.Key("wk");
      w.StartObject();
      putStr(w, "id", wk->keyId);
      putStr(w, "week", wk->week);
      putInt(w, "exp", wk->expMs);
      w.EndObject();
    }
  }));
  if (!st) {
    return st;
  }
  applyUsage(ev, b);
  if (wk != nullptr) {
    applyWeek(*wk, b.atMs, ev.counts.billedMicroUsd);
  }
  sweepUsageAggs(kAggSweepPerRecord);
  return true;
}

void EmbeddedStore::dropReservations(const std::string& keyId, const std::string* requestId) {
  auto k = reservations_.find(keyId);
  if (k == reservations_.end()) {
    return;
  }
  if (requestId != nullptr) {
    auto it = k->second.byId.find(*requestId);
    if (it != k->second.byId.end()) {
      k->second.erase(it);
    }
  }
  k->second.dropExpired(now());
  if (k->second.byId.empty()) {
    reservations_.erase(k);
  }
}

void EmbeddedStore::sweepAdmission(bool force) {
  int64_t t = now();
  if (!force && t < nextAdmissionSweepMs_) {
    return;
  }
  nextAdmissionSweepMs_ = t + kStickySweepIntervalMs;
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    it->second.dropExpired(t);
    it = it->second.byId.empty() ? reservations_.erase(it) : std::next(it);
  }
  for (auto it = admWindows_.begin(); it != admWindows_.end();) {
    it = it->second.endMs <= t ? admWindows_.erase(it) : std::next(it);
  }
  // Expired weekly counters read as 0 and restart on their next booking (applyWeek), so erasing
  // them changes nothing observable; they are durable, but the snapshot skips them anyway.
  for (auto it = weekly_.begin(); it != weekly_.end();) {
    it = it->second.expMs != 0 && it->second.expMs <= t ? weekly_.erase(it) : std::next(it);
  }
}

void EmbeddedStore::finishLegacyUsage() {
  // The older version booked these totals for every event, so at its snapshot they hold
  // everything the lifetime / day buckets hold and the events from before the buckets existed:
  // they replace them. The global per-model lifetime gets what the key+model totals add.
  int64_t t = now();
  int64_t dayExp = retention_.dailyMs > 0 ? t + retention_.dailyMs : 0;
  auto bucket = [&](UsageDim d, int kind, const std::string& b, const std::string& id,
                    int64_t exp) -> UsageAgg& {
    UsageAgg& a = usageAggs_[AggKey{static_cast<int>(d), kind, b, id}];
    if (kind != kLifetimeKind && (a.expMs == 0 || a.expMs <= t)) {
      a = UsageAgg();  // absent (or expired): lives for a day retention from now
      a.expMs = exp;
    }
    return a;
  };
  auto minus = [](TokenCounts a, const TokenCounts& b) {
    for (const auto& f : storage::kTokenFields) {
      a.*f.member -= b.*f.member;
    }
    return a;
  };
  for (const auto& [id, c] : legacy_.keys) {
    bucket(UsageDim::kKey, kLifetimeKind, "", id, 0).counts = c;
  }
  for (const auto& [id, c] : legacy_.accounts) {
    bucket(UsageDim::kAccount, kLifetimeKind, "", id, 0).counts = c;
  }
  for (const auto& [dk, c] : legacy_.days) {
    bucket(UsageDim::kKey, static_cast<int>(UsageBucket::kDay), dk.second, dk.first, dayExp)
        .counts = c;
  }
  std::map<std::pair<std::string, std::string>, TokenCounts> keyModel;  // (key, model) lifetime
  for (const auto& [dk, models] : legacy_.models) {
    UsageAgg& day =
        bucket(UsageDim::kKeyModel, static_cast<int>(UsageBucket::kDay), dk.second, dk.first,
               dayExp);
    for (const auto& [model, c] : models) {
      day.models[model] = c;
      keyModel[{dk.first, model}].add(c);
    }
  }
  for (const auto& [km, c] : keyModel) {
    UsageAgg& life = bucket(UsageDim::kKeyModel, kLifetimeKind, "", km.first, 0);
    TokenCounts& old = life.models[km.second];
    bucket(UsageDim::kModel, kLifetimeKind, "", km.second, 0).counts.add(minus(c, old));
    old = c;
  }
  legacy_ = LegacyUsage();
}

const UsageAgg* EmbeddedStore::findAgg(const AggKey& k) const {
  auto it = usageAggs_.find(k);
  if (it == usageAggs_.end() || (it->second.expMs != 0 && it->second.expMs <= now())) {
    return nullptr;
  }
  return &it->second;
}

void EmbeddedStore::dropExpiredLeases(std::map<std::string, int64_t>* holders) {
  int64_t t = now();
  for (auto it = holders->begin(); it != holders->end();) {
    it = it->second <= t ? holders->erase(it) : std::next(it);
  }
}

void EmbeddedStore::eraseCooldowns(const std::string& accountId) {
  auto it = cooldowns_.lower_bound({accountId, std::string()});
  while (it != cooldowns_.end() && it->first.first == accountId) {
    it = cooldowns_.erase(it);
  }
}

void EmbeddedStore::eraseSticky(std::map<std::string, StickyRecord>::iterator it) {
  auto acct = stickyByAccount_.find(it->second.accountId);
  if (acct != stickyByAccount_.end()) {
    acct->second.erase(it->first);
    if (acct->second.empty()) {
      stickyByAccount_.erase(acct);
    }
  }
  sticky_.erase(it);
}

void EmbeddedStore::sweepSticky() {
  int64_t t = now();
  if (t < nextStickySweepMs_) {
    return;
  }
  nextStickySweepMs_ = t + kStickySweepIntervalMs;
  for (auto it = sticky_.begin(); it != sticky_.end();) {
    auto next = std::next(it);
    if (it->second.expiresAtMs <= t) {
      eraseSticky(it);
    }
    it = next;
  }
}

Status EmbeddedStore::applyLine(const std::string& line) {
  rapidjson::Document d;
  d.Parse(line.data(), line.size());
  if (d.HasParseError() || !d.IsObject()) {
    return internalError("unparseable journal line");
  }
  std::string op = getStr(d, "op");
  if (!legacy_.empty() && op != "usage.key" && op != "usage.acct" && op != "usage.day" &&
      op != "usage.model" && op != "usage.agg") {
    finishLegacyUsage();  // the older snapshot's usage lines are over
  }
  if (op == "header") {
    int64_t v = getInt(d, "v");
    if (v < 1 || v > kFormatVersion) {
      return failedPrecondition("journal format version " + std::to_string(v) +
                                " is not supported (this build reads 1 to " +
                                std::to_string(kFormatVersion) +
                                "; a newer relaygate wrote it: run that version or newer)");
    }
    journalVersion_ = v;
  } else if (op == "key.put") {
    ApiKeyRecord r = readKeyRec(getObj(d, "rec"));
    auto old = keysById_.find(r.id);
    if (old != keysById_.end()) {
      keyIdByHash_.erase(old->second.hash);
    }
    keyIdByHash_[r.hash] = r.id;
    keysById_[r.id] = std::move(r);
  } else if (op == "key.del") {
    auto it = keysById_.find(getStr(d, "id"));
    if (it != keysById_.end()) {
      keyIdByHash_.erase(it->second.hash);
      keysById_.erase(it);
    }
  } else if (op == "acct.put") {
    AccountRecord r = readAcctRec(getObj(d, "rec"));
    accountsById_[r.id] = std::move(r);
  } else if (op == "acct.del") {
    accountsById_.erase(getStr(d, "id"));
  } else if (op == "acct.touch") {
    auto it = accountsById_.find(getStr(d, "id"));
    if (it != accountsById_.end()) {
      it->second.lastUsedAtMs = getInt(d, "ms");
    }
  } else if (op == "set.put" || op == "kv.put") {
    auto& m = kvMap(op.substr(0, op.find('.')));
    m[getStr(d, "k")] = KvEntry{getStr(d, "v"), getInt(d, "exp")};
  } else if (op == "set.del" || op == "kv.del") {
    kvMap(op.substr(0, op.find('.'))).erase(getStr(d, "k"));
  } else if (op == "cd.put") {
    CooldownRecord r = readCooldownRec(getObj(d, "rec"));
    CooldownKey k{r.accountId, r.scope};
    cooldowns_[std::move(k)] = std::move(r);
  } else if (op == "cd.del") {
    std::string acct = getStr(d, "acct");
    if (getBool(d, "all", false)) {
      eraseCooldowns(acct);
    } else {
      cooldowns_.erase({acct, getStr(d, "scope")});
    }
  } else if (op == "usage") {
    // Lines from before the time buckets have no hour/month (nor exp/cap): they are booked like
    // a new event without them (buckets from their time in UTC, expiring by today's retention
    // from their booking time, no recent record), so their totals are kept.
    UsageEvent ev = storage::withTimeBuckets(storage::readUsageEventFields(d));
    if (ev.requestId.empty() || !isBooked(ev.requestId)) {
      UsageBooking b = bookingFor(ev, getInt(d, "at"));
      b.recentCap = 0;
      auto exp = d.FindMember("exp");
      if (exp != d.MemberEnd() && exp->value.IsArray() && exp->value.Size() == 3) {
        for (rapidjson::SizeType i = 0; i < 3; ++i) {
          b.expMs[i] = exp->value[i].IsInt64() ? exp->value[i].GetInt64() : 0;
        }
      }
      if (d.HasMember("cap")) {
        b.recentCap = getInt(d, "cap");
      }
      applyUsage(ev, b);
      const JsonValue& wk = getObj(d, "wk");
      if (wk.HasMember("id")) {
        applyWeek(WeekAdd{getStr(wk, "id"), getStr(wk, "week"), getInt(wk, "exp")}, b.atMs,
                  ev.counts.billedMicroUsd);
      }
    }
  } else if (op == "usage.agg") {
    AggKey k{static_cast<int>(getInt(d, "dim")), static_cast<int>(getInt(d, "b")),
             getStr(d, "bk"), getStr(d, "id")};
    UsageAgg& a = usageAggs_[std::move(k)];
    a.expMs = getInt(d, "exp");
    if (d.HasMember("model")) {
      a.models[getStr(d, "model")] = getCounts(d, "c");
    } else {
      a.counts = getCounts(d, "c");
    }
  } else if (op == "usage.recent") {
    // Snapshot lines come oldest first.
    UsageEvent ev = storage::readUsageEventFields(getObj(d, "rec"));
    std::string key = ev.keyId;
    recent_[key].push_front(std::move(ev));
  } else if (op == "usage.key") {
    legacy_.keys[getStr(d, "id")] = getCounts(d, "c");
  } else if (op == "usage.acct") {
    legacy_.accounts[getStr(d, "id")] = getCounts(d, "c");
  } else if (op == "usage.day") {
    legacy_.days[{getStr(d, "id"), getStr(d, "day")}] = getCounts(d, "c");
  } else if (op == "usage.model") {
    legacy_.models[{getStr(d, "id"), getStr(d, "day")}][getStr(d, "model")] = getCounts(d, "c");
  } else if (op == "adm.week") {
    weekly_[{getStr(d, "id"), getStr(d, "week")}] = WeekCounter{getInt(d, "c"), getInt(d, "exp")};
  } else if (op == "usage.rid") {
    std::string rid = getStr(d, "id");
    int64_t at = getInt(d, "at");
    auto [it, fresh] = bookedIds_.emplace(rid, at);
    if (fresh) {
      bookedOrder_.emplace_back(at, &it->first);
    }
  } else {
    return internalError("unknown journal op '" + op + "'");
  }
  return Status::ok();
}

std::string EmbeddedStore::snapshot() {
  pruneBooked();
  std::string out;
  auto add = [&out](std::string line) {
    out += line;
    out.push_back('\n');
  };
  add(makeLine("header", [](Writer& w) { putInt(w, "v", kFormatVersion); }));
  for (const auto& [id, r] : keysById_) {
    add(makeLine("key.put", [&r = r](Writer& w) { writeKeyRec(w, r); }));
  }
  for (const auto& [id, r] : accountsById_) {
    add(makeLine("acct.put", [&r = r](Writer& w) { writeAcctRec(w, r); }));
  }
  int64_t t = now();
  for (const char* ns : {"set", "kv"}) {
    std::string op = std::string(ns) + ".put";
    for (const auto& [k, e] : kvMap(ns)) {
      if (e.expUnixMs != 0 && e.expUnixMs <= t) {
        continue;
      }
      add(makeLine(op.c_str(), [&k = k, &e = e](Writer& w) {
        putStr(w, "k", k);
        putStr(w, "v", e.value);
        putInt(w, "exp", e.expUnixMs);
      }));
    }
  }
  sweepAdmission(true);  // expired weekly counters end here (and in memory)
  for (const auto& [wk, c] : weekly_) {
    add(makeLine("adm.week", [&wk = wk, &c = c](Writer& w) {
      putStr(w, "id", wk.first);
      putStr(w, "week", wk.second);
      putInt(w, "c", c.cost);
      putInt(w, "exp", c.expMs);
    }));
  }
  aggSweepCursor_.reset();
  sweepUsageAggs(usageAggs_.size());  // the whole map: expired buckets end here
  for (const auto& [k, a] : usageAggs_) {
    auto fill = [&k = k, &a = a](Writer& w) {
      putInt(w, "dim", std::get<0>(k));
      putInt(w, "b", std::get<1>(k));
      putStr(w, "bk", std::get<2>(k));
      putStr(w, "id", std::get<3>(k));
      putInt(w, "exp", a.expMs);
    };
    if (std::get<0>(k) == static_cast<int>(UsageDim::kKeyModel)) {
      for (const auto& [model, c] : a.models) {
        add(makeLine("usage.agg", [&fill, &model = model, &c = c](Writer& w) {
          fill(w);
          putStr(w, "model", model);
          putCounts(w, "c", c);
        }));
      }
    } else {
      add(makeLine("usage.agg", [&fill, &a = a](Writer& w) {
        fill(w);
        putCounts(w, "c", a.counts);
      }));
    }
  }
  for (const auto& [key, list] : recent_) {
    for (auto it = list.rbegin(); it != list.rend(); ++it) {
      add(makeLine("usage.recent", [&ev = *it](Writer& w) {
        w.Key("rec");
        w.StartObject();
        storage::writeUsageEventFields(w, ev);
        w.EndObject();
      }));
    }
  }
  for (const auto& [k, r] : cooldowns_) {
    if (r.untilMs > t) {  // expired cooldowns end here
      add(makeLine("cd.put", [&r = r](Writer& w) { writeCooldownRec(w, r); }));
    }
  }
  for (const auto& [at, rid] : bookedOrder_) {
    add(makeLine("usage.rid", [rid = rid, at = at](Writer& w) {
      putStr(w, "id", *rid);
      putInt(w, "at", at);
    }));
  }
  return out;
}

Status EmbeddedStore::compact() {
  std::string snap = snapshot();
  Status s = journal_->rewrite(snap);
  if (s) {
    lastSnapshotBytes_ = static_cast<int64_t>(snap.size());
    journalVersion_ = kFormatVersion;
  }
  return s;
}

Status EmbeddedStore::load() {
  std::lock_guard<std::mutex> lock(mu_);
  // Under the writer lock, so that a torn tail is known to be a crash remnant (and cut) and an
  // empty journal gets exactly one header.
  Status s = journal_->lock();
  if (s) {
    s = catchUp();
  }
  if (s && journal_->sizeBytes() == 0) {
    s = commit(makeLine("header", [](Writer& w) { putInt(w, "v", kFormatVersion); }));
    journalVersion_ = kFormatVersion;
  }
  if (s) {
    pruneBooked();
    // Opening must stay cheap (the CLI opens the dir while a server runs): compact only a
    // journal past the threshold, which also drops expired entries.
    lastSnapshotBytes_ = journal_->sizeBytes();
    if (journal_->sizeBytes() > compactBytes_ || journalVersion_ < kFormatVersion) {
      s = compact();  // an older version's journal is rewritten with this version's header
    }
  }
  journal_->unlock();
  return s;
}

// ---- Keys ---------------------------------------------------------------------------------------

Status EmbeddedKeys::create(const ApiKeyRecord& rec) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  if (s_.keysById_.count(rec.id) > 0) {
    return alreadyExists("key id " + rec.id + " already exists");
  }
  if (s_.keyIdByHash_.count(rec.hash) > 0) {
    return alreadyExists("a key with the same hash already exists");
  }
  Status st = s_.commit(makeLine("key.put", [&](Writer& w) { writeKeyRec(w, rec); }));
  if (!st) {
    return st;
  }
  s_.keysById_[rec.id] = rec;
  s_.keyIdByHash_[rec.hash] = rec.id;
  return Status::ok();
}

StatusOr<std::optional<ApiKeyRecord>> EmbeddedKeys::getById(const std::string& id) {
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  auto it = s_.keysById_.find(id);
  if (it == s_.keysById_.end()) {
    return std::optional<ApiKeyRecord>();
  }
  return std::optional<ApiKeyRecord>(it->second);
}

StatusOr<std::optional<ApiKeyRecord>> EmbeddedKeys::getByHash(const std::string& hash) {
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  auto h = s_.keyIdByHash_.find(hash);
  if (h == s_.keyIdByHash_.end()) {
    return std::optional<ApiKeyRecord>();
  }
  return std::optional<ApiKeyRecord>(s_.keysById_.at(h->second));
}

StatusOr<std::vector<ApiKeyRecord>> EmbeddedKeys::list() {
  std::vector<ApiKeyRecord> out;
  {
    OpGuard lock(s_, Access::kRead);
    if (!lock.ok()) {
      return lock.status();
    }
    out.reserve(s_.keysById_.size());
    for (const auto& [id, r] : s_.keysById_) {
      out.push_back(r);
    }
  }
  storage::sortByCreated(&out);
  return out;
}

Status EmbeddedKeys::update(const ApiKeyRecord& rec) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  auto it = s_.keysById_.find(rec.id);
  if (it == s_.keysById_.end()) {
    return notFound("key " + rec.id + " not found");
  }
  if (it->second.hash != rec.hash) {
    return invalidArgument("the hash of key " + rec.id + " may not change");
  }
  Status st = s_.commit(makeLine("key.put", [&](Writer& w) { writeKeyRec(w, rec); }));
  if (!st) {
    return st;
  }
  it->second = rec;
  return Status::ok();
}

Status EmbeddedKeys::remove(const std::string& id) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  auto it = s_.keysById_.find(id);
  if (it == s_.keysById_.end()) {
    return notFound("key " + id + " not found");
  }
  Status st = s_.commit(makeLine("key.del", [&](Writer& w) { putStr(w, "id", id); }));
  if (!st) {
    return st;
  }
  s_.keyIdByHash_.erase(it->second.hash);
  s_.keysById_.erase(it);
  return Status::ok();
}

// ---- Accounts -----------------------------------------------------------------------------------

Status EmbeddedAccounts::create(const AccountRecord& rec) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  if (s_.accountsById_.count(rec.id) > 0) {
    return alreadyExists("account " + rec.id + " already exists");
  }
  Status st = s_.commit(makeLine("acct.put", [&](Writer& w) { writeAcctRec(w, rec); }));
  if (!st) {
    return st;
  }
  s_.accountsById_[rec.id] = rec;
  return Status::ok();
}

StatusOr<std::optional<AccountRecord>> EmbeddedAccounts::get(const std::string& id) {
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  auto it = s_.accountsById_.find(id);
  if (it == s_.accountsById_.end()) {
    return std::optional<AccountRecord>();
  }
  return std::optional<AccountRecord>(it->second);
}

StatusOr<std::vector<AccountRecord>> EmbeddedAccounts::list() {
  std::vector<AccountRecord> out;
  {
    OpGuard lock(s_, Access::kRead);
    if (!lock.ok()) {
      return lock.status();
    }
    for (const auto& [id, r] : s_.accountsById_) {
      out.push_back(r);
    }
  }
  storage::sortByCreated(&out);
  return out;
}

Status EmbeddedAccounts::update(const AccountRecord& rec) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  auto it = s_.accountsById_.find(rec.id);
  if (it == s_.accountsById_.end()) {
    return notFound("account " + rec.id + " not found");
  }
  Status st = s_.commit(makeLine("acct.put", [&](Writer& w) { writeAcctRec(w, rec); }));
  if (!st) {
    return st;
  }
  it->second = rec;
  return Status::ok();
}

Status EmbeddedAccounts::remove(const std::string& id) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  auto it = s_.accountsById_.find(id);
  if (it == s_.accountsById_.end()) {
    return notFound("account " + id + " not found");
  }
  Status st = s_.commit(makeLine("acct.del", [&](Writer& w) { putStr(w, "id", id); }));
  if (!st) {
    return st;
  }
  s_.accountsById_.erase(it);
  return Status::ok();
}

Status EmbeddedAccounts::touchLastUsed(const std::string& id, int64_t unixMs) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  auto it = s_.accountsById_.find(id);
  if (it == s_.accountsById_.end()) {
    return notFound("account " + id + " not found");
  }
  Status st = s_.commit(makeLine("acct.touch", [&](Writer& w) {
    putStr(w, "id", id);
    putInt(w, "ms", unixMs);
  }));
  if (!st) {
    return st;
  }
  it->second.lastUsedAtMs = unixMs;
  return Status::ok();
}

// ---- Usage --------------------------------------------------------------------------------------

StatusOr<bool> EmbeddedUsage::record(const UsageEvent& ev) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  return s_.bookLocked(ev, nullptr);
}

void EmbeddedUsage::setRetention(const UsageRetention& r) {
  std::lock_guard<std::mutex> lock(s_.mu_);
  s_.retention_ = r;
}

StatusOr<std::vector<UsageEvent>> EmbeddedUsage::recent(const std::string& keyId, size_t limit) {
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  std::vector<UsageEvent> out;
  auto it = s_.recent_.find(keyId);
  if (it != s_.recent_.end()) {
    size_t n = std::min(limit, it->second.size());
    out.assign(it->second.begin(), it->second.begin() + static_cast<std::ptrdiff_t>(n));
  }
  return out;
}

StatusOr<std::vector<UsagePoint>> EmbeddedUsage::series(UsageDim dim, const std::string& id,
                                                        UsageBucket bucket,
                                                        const std::vector<std::string>& buckets) {
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  std::vector<UsagePoint> out;
  out.reserve(buckets.size());
  for (const std::string& b : buckets) {
    const UsageAgg* a =
        s_.findAgg(AggKey{static_cast<int>(dim), static_cast<int>(bucket), b, id});
    if (dim != UsageDim::kKeyModel) {
      out.push_back(UsagePoint{b, std::string(), a != nullptr ? a->counts : TokenCounts()});
    } else if (a != nullptr) {
      for (const auto& [model, c] : a->models) {
        out.push_back(UsagePoint{b, model, c});
      }
    }
  }
  return out;
}

StatusOr<TokenCounts> EmbeddedUsage::lifetime(UsageDim dim, const std::string& id) {
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  TokenCounts sum;
  const UsageAgg* a = s_.findAgg(AggKey{static_cast<int>(dim), kLifetimeKind, "", id});
  if (a != nullptr) {
    sum = a->counts;
    for (const auto& [model, c] : a->models) {
      sum.add(c);
    }
  }
  return sum;
}

StatusOr<std::vector<UsageStore::KeyCost>> EmbeddedUsage::topKeys(
    UsageBucket bucket, const std::vector<std::string>& buckets, size_t limit) {
  std::map<std::string, int64_t> sums;
  {
    OpGuard lock(s_, Access::kRead);
    if (!lock.ok()) {
      return lock.status();
    }
    const int dim = static_cast<int>(UsageDim::kKey);
    const int kind = static_cast<int>(bucket);
    int64_t t = s_.now();
    for (const std::string& b : buckets) {
      // The bucket's kKey entries are contiguous in the map: (dim, kind, bucket, keyId).
      for (auto it = s_.usageAggs_.lower_bound(AggKey{dim, kind, b, std::string()});
           it != s_.usageAggs_.end() && std::get<0>(it->first) == dim &&
           std::get<1>(it->first) == kind && std::get<2>(it->first) == b;
           ++it) {
        if (it->second.expMs == 0 || it->second.expMs > t) {
          sums[std::get<3>(it->first)] += it->second.counts.billedMicroUsd;
        }
      }
    }
  }
  std::vector<KeyCost> out;
  out.reserve(sums.size());
  for (const auto& [id, billed] : sums) {
    out.push_back(KeyCost{id, billed});
  }
  storage::sortTopKeys(&out, limit);
  return out;
}

// ---- Limits (memory only: they are ephemeral by contract) ---------------------------------------

StatusOr<LeaseResult> EmbeddedLimits::acquireLease(const std::string& scope,
                                                   const std::string& holder, int64_t limit,
                                                   int64_t ttlMs) {
  OpGuard lock(s_, Access::kEphemeral);
  auto& holders = s_.leases_[scope];
  s_.dropExpiredLeases(&holders);
  LeaseResult r;
  auto it = holders.find(holder);
  if (it == holders.end() && limit > 0 && static_cast<int64_t>(holders.size()) >= limit) {
    r.count = static_cast<int64_t>(holders.size());
    if (holders.empty()) {
      s_.leases_.erase(scope);
    }
    return r;
  }
  // A holder that asks again (a retry) keeps its one slot, with a fresh expiry.
  holders[holder] = s_.now() + ttlMs;
  r.acquired = true;
  r.count = static_cast<int64_t>(holders.size());
  return r;
}

StatusOr<bool> EmbeddedLimits::renewLease(const std::string& scope, const std::string& holder,
                                          int64_t ttlMs) {
  OpGuard lock(s_, Access::kEphemeral);
  auto sc = s_.leases_.find(scope);
  if (sc == s_.leases_.end()) {
    return false;
  }
  s_.dropExpiredLeases(&sc->second);
  auto it = sc->second.find(holder);
  if (it == sc->second.end()) {
    if (sc->second.empty()) {
      s_.leases_.erase(sc);
    }
    return false;
  }
  it->second = s_.now() + ttlMs;
  return true;
}

Status EmbeddedLimits::releaseLease(const std::string& scope, const std::string& holder) {
  OpGuard lock(s_, Access::kEphemeral);
  auto sc = s_.leases_.find(scope);
  if (sc != s_.leases_.end()) {
    sc->second.erase(holder);
    if (sc->second.empty()) {
      s_.leases_.erase(sc);
    }
  }
  return Status::ok();
}

StatusOr<int64_t> EmbeddedLimits::leaseCount(const std::string& scope) {
  OpGuard lock(s_, Access::kEphemeral);
  auto sc = s_.leases_.find(scope);
  if (sc == s_.leases_.end()) {
    return int64_t{0};
  }
  s_.dropExpiredLeases(&sc->second);
  int64_t n = static_cast<int64_t>(sc->second.size());
  if (n == 0) {
    s_.leases_.erase(sc);
  }
  return n;
}

// ---- Admission ----------------------------------------------------------------------------------

StatusOr<AdmitResult> EmbeddedAdmission::admit(const AdmitRequest& req) {
  if (req.ttlMs <= 0) {
    return invalidArgument("admission ttl must be positive");
  }
  if (req.weekly && req.weekTtlMs <= 0) {
    return invalidArgument("admission weekTtlMs must be positive for a weekly request");
  }
  // A durable read: the committed day / lifetime / weekly cost may come from another process
  // (a CLI) on the dir.
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  const AdmissionLimits& l = req.limits;
  int64_t t = s_.now();
  s_.sweepAdmission(false);
  s_.dropReservations(req.keyId, nullptr);
  KeyReservations& res = s_.reservations_[req.keyId];
  int64_t n = static_cast<int64_t>(res.byId.size());
  int64_t rTokens = res.tokens;
  int64_t rCost = res.cost;
  AdmWindow* win = nullptr;
  auto wit = s_.admWindows_.find(req.keyId);
  if (wit != s_.admWindows_.end()) {
    if (wit->second.endMs > t) {
      win = l.windowMs > 0 ? &wit->second : nullptr;
    } else {
      s_.admWindows_.erase(wit);  // over: gone from memory as soon as it is touched
    }
  }
  AdmitResult out;
  out.windowEndMs = win != nullptr ? win->endMs : 0;
  out.inFlight = n;
  auto held = res.byId.find(req.requestId);
  if (held != res.byId.end()) {
    // Already admitted: a fresh expiry, the estimate it was admitted with, no second count.
    res.refresh(held, t + req.ttlMs);
    return out;
  }
  auto refuse = [&](AdmitVerdict v, int64_t current, int64_t limit) {
    if (res.byId.empty()) {
      s_.reservations_.erase(req.keyId);
    }
    out.verdict = v;
    out.current = current;
    out.limit = limit;
    return out;
  };
  int64_t estTokens = std::max<int64_t>(0, req.estTokens);
  int64_t estCost = std::max<int64_t>(0, req.estBilledMicroUsd);
  if (l.concurrency > 0 && n >= l.concurrency) {
    return refuse(AdmitVerdict::kConcurrency, n, l.concurrency);
  }
  if (l.windowMs > 0) {
    AdmWindow w = win != nullptr ? *win : AdmWindow();
    if (l.windowRequests > 0 && w.requests >= l.windowRequests) {
      return refuse(AdmitVerdict::kWindowRequests, w.requests, l.windowRequests);
    }
    if (l.windowTokens > 0 && w.tokens + rTokens + estTokens > l.windowTokens) {
      return refuse(AdmitVerdict::kWindowTokens, w.tokens + rTokens, l.windowTokens);
    }
    if (l.windowCostMicroUsd > 0 && w.cost + rCost + estCost > l.windowCostMicroUsd) {
      return refuse(AdmitVerdict::kWindowCost, w.cost + rCost, l.windowCostMicroUsd);
    }
  }
  auto billed = [&](int kind, const std::string& bucket) {
    const UsageAgg* a =
        s_.findAgg(AggKey{static_cast<int>(UsageDim::kKey), kind, bucket, req.keyId});
    return a != nullptr ? a->counts.billedMicroUsd : 0;
  };
  if (l.dailyCostMicroUsd > 0) {
    int64_t cur = billed(static_cast<int>(UsageBucket::kDay), req.day) + rCost;
    if (cur + estCost > l.dailyCostMicroUsd) {
      return refuse(AdmitVerdict::kDailyCost, cur, l.dailyCostMicroUsd);
    }
  }
  if (l.totalCostMicroUsd > 0) {
    int64_t cur = billed(kLifetimeKind, "") + rCost;
    if (cur + estCost > l.totalCostMicroUsd) {
      return refuse(AdmitVerdict::kTotalCost, cur, l.totalCostMicroUsd);
    }
  }
  if (req.weekly && l.weeklyCostMicroUsd > 0) {
    int64_t cur = s_.weekCost(req.keyId, req.week) + rCost;
    if (cur + estCost > l.weeklyCostMicroUsd) {
      return refuse(AdmitVerdict::kWeeklyCost, cur, l.weeklyCostMicroUsd);
    }
  }
  if (l.windowMs > 0) {
    if (win == nullptr) {
      win = &s_.admWindows_[req.keyId];
      *win = AdmWindow{t + l.windowMs, 0, 0, 0};
    }
    win->requests++;
    out.windowEndMs = win->endMs;
  }
  res.add(req.requestId, Reservation{t + req.ttlMs, estTokens, estCost});
  out.inFlight = n + 1;
  return out;
}

StatusOr<bool> EmbeddedAdmission::renew(const std::string& keyId, const std::string& requestId,
                                        int64_t ttlMs) {
  if (ttlMs <= 0) {
    return invalidArgument("admission ttl must be positive");
  }
  OpGuard lock(s_, Access::kEphemeral);
  s_.dropReservations(keyId, nullptr);
  auto k = s_.reservations_.find(keyId);
  if (k == s_.reservations_.end()) {
    return false;
  }
  auto it = k->second.byId.find(requestId);
  if (it == k->second.byId.end()) {
    return false;
  }
  k->second.refresh(it, s_.now() + ttlMs);
  return true;
}

StatusOr<bool> EmbeddedAdmission::settle(const SettleRequest& req) {
  if (req.weekly && req.weekTtlMs <= 0) {
    return invalidArgument("settle weekTtlMs must be positive for a weekly request");
  }
  if (req.usage == nullptr) {
    Status st = release(req.keyId, req.requestId);
    if (!st) {
      return st;
    }
    return false;
  }
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    // Nothing booked: the reservation stays until its ttl, as when the Redis script fails.
    return lock.status();
  }
  WeekAdd wk;
  if (req.weekly) {
    wk = WeekAdd{req.keyId, req.week, s_.now() + req.weekTtlMs};
  }
  auto booked = s_.bookLocked(*req.usage, req.weekly ? &wk : nullptr);
  if (!booked) {
    return booked;  // the journal write failed: the reservation stays (see above)
  }
  // Booked now or already booked (a replayed settle): the reservation goes either way.
  s_.dropReservations(req.keyId, &req.requestId);
  if (!*booked) {
    return false;
  }
  auto w = s_.admWindows_.find(req.keyId);
  if (w != s_.admWindows_.end()) {
    if (w->second.endMs > s_.now()) {
      w->second.tokens += req.usage->counts.allTokens();
      w->second.cost += req.usage->counts.billedMicroUsd;
    } else {
      s_.admWindows_.erase(w);
    }
  }
  return true;
}

Status EmbeddedAdmission::release(const std::string& keyId, const std::string& requestId) {
  OpGuard lock(s_, Access::kEphemeral);
  s_.dropReservations(keyId, &requestId);
  return Status::ok();
}

StatusOr<AdmissionState> EmbeddedAdmission::state(const std::string& keyId,
                                                  const std::string& week) {
  OpGuard lock(s_, week.empty() ? Access::kEphemeral : Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  AdmissionState st;
  int64_t t = s_.now();
  s_.dropReservations(keyId, nullptr);
  auto k = s_.reservations_.find(keyId);
  if (k != s_.reservations_.end()) {
    st.inFlight = static_cast<int64_t>(k->second.byId.size());
    st.reservedTokens = k->second.tokens;
    st.reservedMicroUsd = k->second.cost;
  }
  auto w = s_.admWindows_.find(keyId);
  if (w != s_.admWindows_.end() && w->second.endMs <= t) {
    s_.admWindows_.erase(w);  // over: gone from memory as soon as it is touched
    w = s_.admWindows_.end();
  }
  if (w != s_.admWindows_.end()) {
    st.windowEndMs = w->second.endMs;
    st.windowRequests = w->second.requests;
    st.windowTokens = w->second.tokens;
    st.windowCostMicroUsd = w->second.cost;
  }
  if (!week.empty()) {
    st.weeklyCostMicroUsd = s_.weekCost(keyId, week);
  }
  return st;
}

// ---- KV -----------------------------------------------------------------------------------------

StatusOr<std::optional<std::string>> EmbeddedKv::get(const std::string& key) {
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  auto& m = s_.kvMap(ns_);
  auto it = m.find(key);
  if (it == m.end()) {
    return std::optional<std::string>();
  }
  if (it->second.expUnixMs != 0 && it->second.expUnixMs <= s_.now()) {
    // Expired entries vanish from memory here and from the file at the next compaction.
    m.erase(it);
    return std::optional<std::string>();
  }
  return std::optional<std::string>(it->second.value);
}

Status EmbeddedKv::set(const std::string& key, const std::string& value, int64_t ttlMs) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  int64_t exp = ttlMs > 0 ? s_.now() + ttlMs : 0;
  std::string op = ns_ + ".put";
  Status st = s_.commit(makeLine(op.c_str(), [&](Writer& w) {
    putStr(w, "k", key);
    putStr(w, "v", value);
    putInt(w, "exp", exp);
  }));
  if (!st) {
    return st;
  }
  s_.kvMap(ns_)[key] = KvEntry{value, exp};
  return Status::ok();
}

Status EmbeddedKv::del(const std::string& key) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  auto& m = s_.kvMap(ns_);
  auto it = m.find(key);
  if (it == m.end()) {
    return Status::ok();
  }
  std::string op = ns_ + ".del";
  Status st = s_.commit(makeLine(op.c_str(), [&](Writer& w) { putStr(w, "k", key); }));
  if (!st) {
    return st;
  }
  m.erase(it);
  return Status::ok();
}

// ---- Scheduler state ----------------------------------------------------------------------------

Status EmbeddedSched::setCooldown(const CooldownRecord& rec) {
  if (rec.accountId.find('|') != std::string::npos) {
    // Both backends refuse it: the Redis one keys cooldowns by "<accountId>|<scope>".
    return invalidArgument("an account id may not contain '|'");
  }
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  CooldownKey key{rec.accountId, rec.scope};
  if (rec.untilMs <= s_.now()) {
    // Already over: the same as clearing that scope.
    auto it = s_.cooldowns_.find(key);
    if (it == s_.cooldowns_.end()) {
      return Status::ok();
    }
    Status st = s_.commit(makeLine("cd.del", [&](Writer& w) {
      putStr(w, "acct", rec.accountId);
      putStr(w, "scope", rec.scope);
    }));
    if (!st) {
      return st;
    }
    s_.cooldowns_.erase(it);
    return Status::ok();
  }
  Status st = s_.commit(makeLine("cd.put", [&](Writer& w) { writeCooldownRec(w, rec); }));
  if (!st) {
    return st;
  }
  s_.cooldowns_[key] = rec;
  return Status::ok();
}

Status EmbeddedSched::clearCooldown(const std::string& accountId,
                                    const std::optional<std::string>& scope) {
  OpGuard lock(s_, Access::kWrite);
  if (!lock.ok()) {
    return lock.status();
  }
  bool present = false;
  if (scope) {
    present = s_.cooldowns_.count({accountId, *scope}) > 0;
  } else {
    auto it = s_.cooldowns_.lower_bound({accountId, std::string()});
    present = it != s_.cooldowns_.end() && it->first.first == accountId;
  }
  if (!present) {
    return Status::ok();  // nothing to journal
  }
  Status st = s_.commit(makeLine("cd.del", [&](Writer& w) {
    putStr(w, "acct", accountId);
    if (scope) {
      putStr(w, "scope", *scope);
    } else {
      putBool(w, "all", true);
    }
  }));
  if (!st) {
    return st;
  }
  if (scope) {
    s_.cooldowns_.erase({accountId, *scope});
  } else {
    s_.eraseCooldowns(accountId);
  }
  return Status::ok();
}

StatusOr<std::vector<CooldownRecord>> EmbeddedSched::listCooldowns() {
  OpGuard lock(s_, Access::kRead);
  if (!lock.ok()) {
    return lock.status();
  }
  int64_t t = s_.now();
  std::vector<CooldownRecord> out;
  for (auto it = s_.cooldowns_.begin(); it != s_.cooldowns_.end();) {
    if (it->second.untilMs <= t) {
      // Gone from memory here and from the file at the next compaction.
      it = s_.cooldowns_.erase(it);
      continue;
    }
    out.push_back(it->second);  // map order is the contract's: accountId, then scope
    ++it;
  }
  return out;
}

StatusOr<std::optional<StickyRecord>> EmbeddedSched::getSticky(const std::string& sessionHash) {
  OpGuard lock(s_, Access::kEphemeral);
  auto it = s_.sticky_.find(sessionHash);
  if (it == s_.sticky_.end()) {
    return std::optional<StickyRecord>();
  }
  if (it->second.expiresAtMs <= s_.now()) {
    s_.eraseSticky(it);
    return std::optional<StickyRecord>();
  }
  return std::optional<StickyRecord>(it->second);
}

Status EmbeddedSched::setSticky(const std::string& sessionHash, const std::string& accountId,
                                int64_t ttlMs) {
  if (ttlMs <= 0) {
    return invalidArgument("sticky ttl must be positive");
  }
  OpGuard lock(s_, Access::kEphemeral);
  s_.sweepSticky();
  auto it = s_.sticky_.find(sessionHash);
  if (it != s_.sticky_.end() && it->second.accountId != accountId) {
    s_.eraseSticky(it);
  }
  s_.sticky_[sessionHash] = StickyRecord{accountId, s_.now() + ttlMs};
  s_.stickyByAccount_[accountId].insert(sessionHash);
  return Status::ok();
}

Status EmbeddedSched::deleteSticky(const std::string& sessionHash) {
  OpGuard lock(s_, Access::kEphemeral);
  auto it = s_.sticky_.find(sessionHash);
  if (it != s_.sticky_.end()) {
    s_.eraseSticky(it);
  }
  return Status::ok();
}

StatusOr<int64_t> EmbeddedSched::deleteStickyForAccount(const std::string& accountId) {
  OpGuard lock(s_, Access::kEphemeral);
  auto acct = s_.stickyByAccount_.find(accountId);
  if (acct == s_.stickyByAccount_.end()) {
    return int64_t{0};
  }
  int64_t t = s_.now();
  int64_t n = 0;
  for (const std::string& hash : acct->second) {
    auto it = s_.sticky_.find(hash);
    if (it != s_.sticky_.end()) {
      n += it->second.expiresAtMs > t ? 1 : 0;  // count only live mappings
      s_.sticky_.erase(it);
    }
  }
  s_.stickyByAccount_.erase(acct);
  return n;
}

StatusOr<bool> EmbeddedSched::tryLock(const std::string& name, const std::string& token,
                                      int64_t ttlMs) {
  if (ttlMs <= 0) {
    return invalidArgument("lock ttl must be positive");
  }
  OpGuard lock(s_, Access::kEphemeral);
  int64_t t = s_.now();
  auto it = s_.locks_.find(name);
  if (it != s_.locks_.end() && it->second.expiresAtMs > t) {
    return false;  // held, also by `token` itself: like SET NX
  }
  s_.locks_[name] = LockEntry{token, t + ttlMs};
  return true;
}

StatusOr<bool> EmbeddedSched::unlock(const std::string& name, const std::string& token) {
  OpGuard lock(s_, Access::kEphemeral);
  auto it = s_.locks_.find(name);
  if (it == s_.locks_.end() || it->second.token != token) {
    return false;
  }
  // An expired lock is no longer held: drop it, but report that nothing was released.
  bool live = it->second.expiresAtMs > s_.now();
  s_.locks_.erase(it);
  return live;
}

}  // namespace

StatusOr<StorePtr> openEmbeddedStore(const EmbeddedOptions& opts, const Clock& clock) {
  auto journal = storage::Journal::open(opts.dataDir, opts.fsyncEachWrite);
  if (!journal) {
    return journal.status();
  }
  int64_t threshold =
      opts.compactThresholdBytes > 0 ? opts.compactThresholdBytes : kDefaultCompactBytes;
  auto store = std::make_unique<EmbeddedStore>(std::move(journal.value()), clock, threshold);
  Status s = store->load();
  if (!s) {
    return s;
  }
  return StorePtr(std::move(store));
}

}  // namespace rg
