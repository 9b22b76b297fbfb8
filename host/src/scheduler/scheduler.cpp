#include "scheduler/scheduler.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <spdlog/spdlog.h>

#include "common/time_format.h"
#include "crypto/crypto.h"

namespace rg {

namespace {

constexpr int64_t kMaxUntilMs = 7LL * 86400000;  // a reset time further out is not believed
constexpr int64_t kPersistLastUsedMs = 60000;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string cooldownKey(const std::string& accountId, const std::string& scope) {
  return accountId + "|" + scope;
}

std::string joinTypes(const std::vector<std::string>& types) {
  std::string out;
  for (const auto& t : types) {
    out += (out.empty() ? "" : ", ") + t;
  }
  return out;
}

}  // namespace

const char* errorKindName(ErrorKind k) {
  switch (k) {
    case ErrorKind::kNone:
      return "none";
    case ErrorKind::kClient:
      return "client";
    case ErrorKind::kContextTooLong:
      return "context_too_long";
    case ErrorKind::kRateLimited:
      return "rate_limited";
    case ErrorKind::kOverloaded:
      return "overloaded";
    case ErrorKind::kTransient:
      return "transient";
    case ErrorKind::kAuth:
      return "auth";
    case ErrorKind::kQuotaExhausted:
      return "quota_exhausted";
    case ErrorKind::kBlocked:
      return "blocked";
  }
  return "unknown";
}

Scheduler::Scheduler(AccountService& accounts, Store& store, const Clock& clock,
                     SchedulerConfig cfg, EventBus* events, MetricsRegistry* metrics)
    : accounts_(accounts),
      store_(store),
      clock_(clock),
      cfg_(cfg),
      events_(events),
      metrics_(metrics) {
  if (metrics_ != nullptr) {
    leasesHeld_ = metrics_->gauge("relaygate_account_leases_held",
                                  "Per-account concurrency leases held by this process");
    const char* help = "Account choices, by how the account was found";
    picksSticky_ = metrics_->counter("relaygate_scheduler_picks_total", help, {{"via", "sticky"}});
    picksPool_ = metrics_->counter("relaygate_scheduler_picks_total", help, {{"via", "pool"}});
    picksNone_ = metrics_->counter("relaygate_scheduler_picks_total", help, {{"via", "none"}});
  }
}

Scheduler::~Scheduler() {
  stop();
}

void Scheduler::startBackground() {
  std::lock_guard<std::mutex> lock(bgMu_);
  if (bg_.joinable()) {
    return;
  }
  bgStop_ = false;
  bg_ = std::thread([this] {
    std::unique_lock<std::mutex> wait(bgMu_);
    while (!bgStop_) {
      bgCv_.wait_for(wait, std::chrono::milliseconds(cfg_.stateRefreshMs),
                     [this] { return bgStop_; });
      if (bgStop_) {
        break;
      }
      wait.unlock();
      auto s = cooldowns(false);  // a pick may just have read it
      if (!s) {
        spdlog::debug("scheduler state refresh failed: {}", s.status().message());
      }
      wait.lock();
    }
  });
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(bgMu_);
    bgStop_ = true;
  }
  bgCv_.notify_all();
  if (bg_.joinable()) {
    bg_.join();
  }
}

bool Scheduler::retryable(ErrorKind k) {
  switch (k) {
    case ErrorKind::kRateLimited:
    case ErrorKind::kOverloaded:
    case ErrorKind::kTransient:
    case ErrorKind::kAuth:
    case ErrorKind::kQuotaExhausted:
    case ErrorKind::kBlocked:
      return true;
    default:
      return false;
  }
}

std::string Scheduler::stickyHash(const std::string& provider, const std::string& sessionKey) {
  return crypto::toHex(crypto::sha256(provider + "\n" + sessionKey)).substr(0, 32);
}

std::string Scheduler::modelFamily(const std::string& model) {
  std::string m = lower(model);
  for (const char* f : {"opus", "sonnet", "haiku"}) {
    if (m.find(f) != std::string::npos) {
      return f;
    }
  }
  return {};
}

std::optional<std::string> Scheduler::mapModel(const AccountRecord& rec, const std::string& model) {
  if (rec.modelMapping.empty() || model.empty()) {
    return model;
  }
  auto it = rec.modelMapping.find(model);
  if (it != rec.modelMapping.end()) {
    return it->second;
  }
  // Model names are matched without regard to case (as the reference service does).
  std::string m = lower(model);
  for (const auto& [from, to] : rec.modelMapping) {
    if (lower(from) == m) {
      return to;
    }
  }
  return std::nullopt;
}

int64_t Scheduler::leasesHeld() const {
  return leasesHeld_ == nullptr ? 0 : leasesHeld_->value();
}

StatusOr<std::shared_ptr<const std::vector<CooldownRecord>>> Scheduler::cooldowns(bool force) {
  int64_t mono = clock_.monotonicMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!force && cooldownsValid_ && mono - cooldownsReadMono_ < cfg_.stateRefreshMs) {
      return cooldowns_;
    }
  }
  auto list = store_.sched().listCooldowns();
  if (!list) {
    return list.status();
  }
  auto shared = std::make_shared<const std::vector<CooldownRecord>>(std::move(list.value()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    cooldowns_ = shared;
    cooldownsReadMono_ = mono;
    cooldownsValid_ = true;
  }
  tick();
  return shared;
}

void Scheduler::tick() {
  std::shared_ptr<const std::vector<CooldownRecord>> current;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current = cooldowns_;
  }
  if (current == nullptr) {
    return;
  }
  int64_t now = clock_.nowUnixMs();
  std::vector<std::pair<std::string, std::string>> ended;  // account, scope
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, std::pair<int64_t, std::string>> live;
    for (const auto& c : *current) {
      if (c.untilMs > now) {
        live[cooldownKey(c.accountId, c.scope)] = {c.untilMs, c.reason};
      }
    }
    for (const auto& [k, v] : seenCooldowns_) {
      if (live.count(k) == 0) {
        size_t bar = k.find('|');
        ended.emplace_back(k.substr(0, bar), k.substr(bar + 1));
      }
    }
    seenCooldowns_ = std::move(live);
  }
  if (ended.empty()) {
    return;
  }
  auto snap = accounts_.snapshot();
  for (const auto& [id, scope] : ended) {
    AccountRecord rec;
    rec.id = id;
    if (snap) {
      for (const auto& a : **snap) {
        if (a.id == id) {
          rec = a;
          break;
        }
      }
    }
    publish("account.recovered", rec, "cooling_down", "active", scope, "cooldown ended", 0);
  }
}

StatusOr<std::optional<StickyRecord>> Scheduler::lookupSticky(const std::string& hash,
                                                              int64_t now) {
  int64_t mono = clock_.monotonicMs();
  if (cfg_.stickyCacheMs > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stickyCache_.find(hash);
    if (it != stickyCache_.end()) {
      if (mono < it->second.cachedUntilMono && now < it->second.rec.expiresAtMs) {
        return std::optional<StickyRecord>(it->second.rec);
      }
      stickyCache_.erase(it);
    }
  }
  auto m = store_.sched().getSticky(hash);
  if (m && m->has_value() && cfg_.stickyCacheMs > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stickyCache_.size() >= kStickyCacheMax) {
      stickyCache_.clear();  // bounded; refilled from storage on demand
    }
    stickyCache_[hash] = {**m, mono + cfg_.stickyCacheMs};
  }
  return m;
}

void Scheduler::rememberSticky(const std::string& hash, const std::string& accountId, int64_t now) {
  Status s = store_.sched().setSticky(hash, accountId, cfg_.stickyTtlMs);
  if (!s || cfg_.stickyCacheMs <= 0) {
    forgetSticky(hash, std::string());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stickyCache_.size() >= kStickyCacheMax) {
    stickyCache_.clear();
  }
  stickyCache_[hash] = {StickyRecord{accountId, now + cfg_.stickyTtlMs},
                        clock_.monotonicMs() + cfg_.stickyCacheMs};
}

void Scheduler::forgetSticky(const std::string& hash, const std::string& accountId) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!hash.empty()) {
    stickyCache_.erase(hash);
    return;
  }
  for (auto it = stickyCache_.begin(); it != stickyCache_.end();) {
    it = it->second.rec.accountId == accountId ? stickyCache_.erase(it) : std::next(it);
  }
}

int64_t Scheduler::lruStamp(const AccountRecord& rec) {
  auto it = lastPickedMs_.find(rec.id);
  return std::max(rec.lastUsedAtMs, it == lastPickedMs_.end() ? 0 : it->second);
}

StatusOr<Pick> Scheduler::pick(const PickRequest& req) {
  auto snap = accounts_.snapshot();
  if (!snap) {
    return Status(Code::kUnavailable, "account storage unavailable: " + snap.status().message());
  }
  auto cds = cooldowns(false);
  if (!cds) {
    return Status(Code::kUnavailable, "scheduler state unavailable: " + cds.status().message());
  }
  const int64_t now = clock_.nowUnixMs();
  const std::string family = modelFamily(req.model);

  std::string dedicated;
  std::string group;
  if (req.key != nullptr) {
    auto b = req.key->bindings.find(req.provider);
    if (b != req.key->bindings.end()) {
      if (b->second.rfind("group:", 0) == 0) {
        group = b->second.substr(6);
      } else {
        dedicated = b->second;
      }
    }
  }

  struct Candidate {
    const AccountRecord* rec;
    std::string upstreamModel;
    int64_t lru;
  };
  std::vector<Candidate> cands;
  int considered = 0, inactive = 0, expired = 0, unsupported = 0, cooling = 0, tried = 0;
  int64_t earliestUntil = 0;
  std::string earliestReason;
  std::string dedicatedWhy = "it does not exist or is not of a type this route uses";
  std::string dedicatedName;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& a : **snap) {
      if (std::find(req.types.begin(), req.types.end(), a.type) == req.types.end()) {
        continue;
      }
      if (!dedicated.empty()) {
        if (a.id != dedicated) {
          continue;
        }
        dedicatedName = a.name;
      } else if (!group.empty()) {
        if (std::find(a.groups.begin(), a.groups.end(), group) == a.groups.end()) {
          continue;
        }
      } else if (a.sharing == "dedicated") {
        continue;  // reserved for the keys bound to it
      }
      ++considered;
      if (a.status != "active" || !a.schedulable) {
        ++inactive;
        dedicatedWhy =
            a.status != "active"
                ? "it is " + a.status + (a.statusReason.empty() ? "" : " (" + a.statusReason + ")")
                : "it is not schedulable";
        continue;
      }
      if (a.subscriptionExpiresAtMs > 0 && a.subscriptionExpiresAtMs <= now) {
        ++expired;
        dedicatedWhy = "its subscription expired at " + isoTimeUtc(a.subscriptionExpiresAtMs);
        continue;
      }
      auto mapped = mapModel(a, req.model);
      if (!mapped) {
        ++unsupported;
        dedicatedWhy = "it does not serve model " + req.model;
        continue;
      }
      const CooldownRecord* cd = nullptr;
      for (const auto& c : **cds) {
        if (c.accountId == a.id && c.untilMs > now &&
            (c.scope.empty() || (!family.empty() && c.scope == family))) {
          if (cd == nullptr || c.untilMs > cd->untilMs) {
            cd = &c;
          }
        }
      }
      if (cd != nullptr) {
        ++cooling;
        if (earliestUntil == 0 || cd->untilMs < earliestUntil) {
          earliestUntil = cd->untilMs;
          earliestReason = cd->reason;
        }
        dedicatedWhy =
            "it is cooling down until " + isoTimeUtc(cd->untilMs) + " (" + cd->reason + ")";
        continue;
      }
      if (req.exclude.count(a.id) != 0) {
        ++tried;
        dedicatedWhy = "it already failed for this request";
        continue;
      }
      cands.push_back({&a, *mapped == req.model ? std::string() : *mapped, lruStamp(a)});
    }
  }

  // The session's mapping first, when its account is still a candidate.
  std::string hash;
  bool stickyHit = false;
  int64_t stickyExpiresAt = 0;
  if (!req.sessionKey.empty()) {
    hash = stickyHash(req.provider, req.sessionKey);
    auto m = lookupSticky(hash, now);
    if (m && m->has_value()) {
      stickyExpiresAt = (*m)->expiresAtMs;
      auto it = std::find_if(cands.begin(), cands.end(),
                             [&](const Candidate& c) { return c.rec->id == (*m)->accountId; });
      if (it != cands.end()) {
        std::rotate(cands.begin(), it, it + 1);
        stickyHit = true;
      } else if (req.exclude.count((*m)->accountId) == 0) {
        // Its account can no longer serve this conversation: the next choice is remembered.
        forgetSticky(hash, std::string());
        (void)store_.sched().deleteSticky(hash);
      }
    }
  }
  std::stable_sort(cands.begin() + (stickyHit ? 1 : 0), cands.end(),
                   [](const Candidate& x, const Candidate& y) {
                     if (x.rec->priority != y.rec->priority) {
                       return x.rec->priority < y.rec->priority;
                     }
                     if (x.lru != y.lru) {
                       return x.lru < y.lru;
                     }
                     if (x.rec->createdAtMs != y.rec->createdAtMs) {
                       return x.rec->createdAtMs < y.rec->createdAtMs;
                     }
                     return x.rec->id < y.rec->id;
                   });

  int atCap = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    const Candidate& c = cands[i];
    Pick p;
    if (c.rec->concurrencyLimit > 0) {
      std::string scope = "acct:" + c.rec->id;
      auto lease =
          store_.limits().acquireLease(scope, req.holder, c.rec->concurrencyLimit, leaseTtlMs_);
      if (!lease) {
        return Status(Code::kUnavailable,
                      "the gateway cannot reach its limit storage: " + lease.status().message());
      }
      if (!lease->acquired) {
        ++atCap;
        dedicatedWhy =
            "it is at its concurrency limit of " + std::to_string(c.rec->concurrencyLimit);
        continue;
      }
      p.leaseScope = std::move(scope);
      p.holder = req.holder;
      if (leasesHeld_ != nullptr) {
        leasesHeld_->add(1);
      }
    }
    p.record = *c.rec;
    p.upstreamModel = c.upstreamModel;
    p.sticky = stickyHit && i == 0;
    p.stickyHash = hash;
    p.family = family;
    bool persist = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A strictly increasing stamp: two picks in the same millisecond still rotate.
      int64_t stamp = std::max(now, c.lru + 1);
      lastPickedMs_[c.rec->id] = stamp;
      int64_t& persisted = lastPersistedMs_[c.rec->id];
      if (now - persisted >= kPersistLastUsedMs) {
        persisted = now;
        persist = true;
      }
    }
    if (persist) {
      (void)store_.accounts().touchLastUsed(c.rec->id, now);  // display only: best effort
    }
    if (!hash.empty()) {
      if (p.sticky) {
        if (cfg_.stickyRenewThresholdMs > 0 &&
            stickyExpiresAt - now < cfg_.stickyRenewThresholdMs) {
          rememberSticky(hash, c.rec->id, now);
        }
      } else {
        rememberSticky(hash, c.rec->id, now);
      }
    }
    if (p.sticky ? picksSticky_ != nullptr : picksPool_ != nullptr) {
      (p.sticky ? picksSticky_ : picksPool_)->add();
    }
    return p;
  }

  if (picksNone_ != nullptr) {
    picksNone_->add();
  }
  std::string why;
  if (!dedicated.empty()) {
    why = "This key's dedicated account" + (dedicatedName.empty() ? "" : " " + dedicatedName) +
          " is unavailable: " + dedicatedWhy;
  } else if (considered == 0) {
    why = "No upstream account is available for this route (no active account of type " +
          joinTypes(req.types) + (group.empty() ? "" : " in group " + group) + ")";
  } else if (atCap > 0) {
    why = "All " + std::to_string(atCap) +
          " eligible accounts are at their concurrency limit; retry shortly";
  } else if (tried > 0 && cooling == 0) {
    why = "Every eligible account failed for this request";
  } else if (cooling > 0) {
    why = "All eligible accounts are cooling down; the first recovers at " +
          isoTimeUtc(earliestUntil) + " (" + earliestReason + ")";
  } else if (unsupported > 0) {
    why = "No upstream account supports model " + req.model;
  } else if (expired > 0 && inactive == 0) {
    why = "Every upstream account's subscription has expired";
  } else {
    why = "No upstream account is available for this route (no active account of type " +
          joinTypes(req.types) + (group.empty() ? "" : " in group " + group) + ")";
  }
  return Status(Code::kUnavailable, why);
}

void Scheduler::release(Pick& p) {
  if (p.leaseScope.empty()) {
    return;
  }
  Status s = store_.limits().releaseLease(p.leaseScope, p.holder);
  if (!s) {
    // The lease expires by itself; say so rather than pretend.
    spdlog::warn("could not release account lease {} (it expires by itself): {}", p.leaseScope,
                 s.message());
  }
  p.leaseScope.clear();
  if (leasesHeld_ != nullptr) {
    leasesHeld_->add(-1);
  }
}

void Scheduler::renew(const Pick& p) {
  if (!p.leaseScope.empty()) {
    (void)store_.limits().renewLease(p.leaseScope, p.holder, leaseTtlMs_);
  }
}

void Scheduler::reportSuccess(const Pick& p) {
  auto cds = cooldowns(false);
  if (!cds) {
    return;
  }
  int64_t now = clock_.nowUnixMs();
  bool cleared = false;
  for (const auto& c : **cds) {
    if (c.accountId != p.record.id || c.untilMs <= now) {
      continue;
    }
    if (!c.scope.empty() && c.scope != p.family) {
      continue;  // a success with sonnet says nothing about the opus limit
    }
    // A success while marked (another instance's view, a sticky race, a bound key): the
    // reason is gone, so the account is schedulable again at once.
    if (store_.sched().clearCooldown(c.accountId, c.scope)) {
      cleared = true;
      publish("account.recovered", p.record, "cooling_down", "active", c.scope,
              "the account answered successfully", 0);
      std::lock_guard<std::mutex> lock(mu_);
      seenCooldowns_.erase(cooldownKey(c.accountId, c.scope));
    }
  }
  if (cleared) {
    std::lock_guard<std::mutex> lock(mu_);
    cooldownsValid_ = false;
  }
}

bool Scheduler::reportError(const Pick& p, const UpstreamError& e) {
  int64_t now = clock_.nowUnixMs();
  auto capped = [&](int64_t ms) { return std::min(ms, cfg_.retryAfterCapMs); };
  int64_t until = 0;
  std::string scope;
  switch (e.kind) {
    case ErrorKind::kRateLimited:
      scope = e.scope;  // the plugin decides: a model family, or "" for the whole account
      if (e.untilUnixMs > now) {
        until = std::min(e.untilUnixMs, now + kMaxUntilMs);
      } else if (e.retryAfterMs > 0) {
        until = now + capped(e.retryAfterMs);
      } else {
        until = now + cfg_.rateLimitedCooldownMs;
      }
      break;
    case ErrorKind::kOverloaded:
      until = now + cfg_.overloadedCooldownMs;
      break;
    case ErrorKind::kTransient:
      until = now + (e.status == 503 ? cfg_.unavailableCooldownMs : cfg_.transientCooldownMs);
      break;
    case ErrorKind::kAuth:
      until = now + cfg_.authCooldownMs;
      break;
    case ErrorKind::kQuotaExhausted:
      until = e.untilUnixMs > now ? std::min(e.untilUnixMs, now + kMaxUntilMs)
                                  : now + cfg_.quotaCooldownMs;
      break;
    case ErrorKind::kBlocked: {
      Status s = accounts_.setStatus(p.record.id, "blocked",
                                     e.reason.empty() ? "blocked by the vendor" : e.reason);
      if (!s) {
        spdlog::warn("could not mark account {} blocked: {}", p.record.id, s.message());
      }
      forgetSticky(std::string(), p.record.id);
      forgetSticky(std::string(), p.record.id);
      (void)store_.sched().deleteStickyForAccount(p.record.id);
      publish("account.blocked", p.record, p.record.status, "blocked", "", e.reason, 0);
      return true;
    }
    default:
      return false;
  }
  if (until > now) {
    markCooldown(p, scope, until, e);
  }
  return retryable(e.kind);
}

void Scheduler::markCooldown(const Pick& p, const std::string& scope, int64_t untilMs,
                             const UpstreamError& e) {
  CooldownRecord rec;
  rec.accountId = p.record.id;
  rec.scope = scope;
  rec.untilMs = untilMs;
  rec.markedAtMs = clock_.nowUnixMs();
  rec.errorClass = errorKindName(e.kind);
  rec.reason = e.reason.empty() ? std::string(errorKindName(e.kind)) : e.reason;
  rec.upstreamStatus = e.status;
  Status s = store_.sched().setCooldown(rec);
  if (!s) {
    spdlog::warn("could not record the cooldown of account {}: {}", p.record.id, s.message());
    return;
  }
  forgetSticky(std::string(), p.record.id);
  (void)store_.sched().deleteStickyForAccount(p.record.id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cooldownsValid_ = false;  // the next pick sees it
    seenCooldowns_[cooldownKey(rec.accountId, rec.scope)] = {untilMs, rec.reason};
  }
  if (metrics_ != nullptr) {
    metrics_
        ->counter("relaygate_account_cooldowns_total", "Accounts put into cooldown, by error class",
                  {{"class", rec.errorClass}})
        ->add();
  }
  spdlog::info("account {} ({}) cooling down{} until {}: {}", p.record.id, p.record.name,
               scope.empty() ? "" : " for " + scope, isoTimeUtc(untilMs), rec.reason);
  publish("account.cooldown", p.record, "active", "cooling_down", scope, rec.reason, untilMs);
}

void Scheduler::publish(const std::string& type, const AccountRecord& rec,
                        const std::string& oldState, const std::string& newState,
                        const std::string& scope, const std::string& reason, int64_t untilMs) {
  if (events_ == nullptr) {
    return;
  }
  AccountEvent ev;
  ev.type = type;
  ev.accountId = rec.id;
  ev.accountName = rec.name;
  ev.oldState = oldState;
  ev.newState = newState;
  ev.scope = scope;
  ev.reason = reason;
  ev.untilMs = untilMs;
  ev.atMs = clock_.nowUnixMs();
  events_->publish(ev);
}

}  // namespace rg
