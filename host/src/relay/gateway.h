#pragma once
// The request pipeline: route -> auth -> plugin parse -> key checks -> leases/windows -> account ->
// plugin transform -> upstream -> relay (SSE framed, byte-faithful) -> usage -> access log.
// Every path releases what it took (leases), and calls the plugin's done hook exactly once.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "accounting/price_table_holder.h"
#include "accounts/account_service.h"
#include "admin/admin_api.h"
#include "auth/key_service.h"
#include "common/clock.h"
#include "common/time_zone.h"
#include "config/config.h"
#include "http/router.h"
#include "oauth/claude_oauth.h"
#include "observability/metrics.h"
#include "scheduler/scheduler.h"
#include "storage/store.h"
#include "upstream/http_client.h"
#include "usage/usage_views.h"

namespace Poco::Net {
class HTTPServerRequest;
class HTTPServerResponse;
}  // namespace Poco::Net

namespace rg {

// The family of a client from its User-Agent, for usage records: "claude-cli/1.0.119 (external,
// cli)" -> "claude-cli", "Anthropic/Python 0.40.0" -> "anthropic-python", "curl/8.5" -> "curl";
// lower case, [a-z0-9._-] only, at most about 40 characters; "" when there is none.
std::string clientFamily(std::string_view ua);

struct GatewayDeps {
  const Config* config = nullptr;
  const Clock* clock = nullptr;
  Store* store = nullptr;
  KeyService* keys = nullptr;
  AccountService* accounts = nullptr;
  MetricsRegistry* metrics = nullptr;
  UpstreamClient* upstream = nullptr;
  const Router* router = nullptr;
  // The price table in force (swapped by SIGHUP). nullptr or empty: requests are booked at cost 0.
  const PriceTableHolder* prices = nullptr;
  Scheduler* scheduler = nullptr;  // required
  TokenManager* tokens = nullptr;  // OAuth access tokens; nullptr = use stored tokens as they are
  AdminApi* admin = nullptr;       // /admin/...; nullptr = no admin API (404)
  const TimeZone* timeZone = nullptr;  // usage buckets; nullptr = UTC
  std::string pluginsSummary;          // for /ready
};

class Gateway {
 public:
  explicit Gateway(GatewayDeps deps);
  ~Gateway();

  // Handles one HTTP request completely. Never throws.
  void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) noexcept;

  int64_t inFlight() const { return inFlight_.load(); }
  // After this, long streams are cut at the next upstream read (used when the drain times out).
  void abortStreams() { aborting_.store(true); }
  void setStartedAtMs(int64_t ms) { startedAtMs_ = ms; }

  // Key concurrency leases live at least this long, and longer than the upstream timeout; a
  // stream renews its lease at most every kLeaseRenewMs. A crashed process's leases expire.
  static constexpr int64_t kMinLeaseTtlMs = 300000;
  static constexpr int64_t kLeaseRenewMs = 30000;
  // Weekly cost counters outlive their week by a day.
  static constexpr int64_t kWeekTtlMs = 8 * 86400000LL;
  // From now on every response asks the client to close its connection (graceful drain).
  void startDraining() { draining_.store(true); }

 private:
  struct Ctx;
  void dispatch(Ctx& c);
  void serveHealth(Ctx& c);
  void serveReady(Ctx& c);
  void serveMetrics(Ctx& c);
  void serveAdmin(Ctx& c);
  void serveRoute(Ctx& c);
  // The gateway key from headers or query, authenticated and allowed `permission`; false when
  // the client already has its 401 / 403 / 503.
  bool authenticate(Ctx& c, const HeaderList& headers, const std::string& permission);
  // GET key-info / usage / organization usage: the caller's own numbers (no admission).
  void serveUsageView(Ctx& c, ClientView view);
  // Checks the key's limits and reserves the request's worst case in one storage step. False
  // when refused: the client has its answer (429 / 402 / 503) or left the queue.
  bool admit(Ctx& c, const rg_request_meta& meta);
  // The request's worst case: input estimate + output bound, and its billed cost.
  void estimate(Ctx& c, const rg_request_meta& meta, int64_t* tokens, int64_t* billed);
  // limits.queue_*: retries admission until a concurrency slot frees, the wait ends or the client
  // leaves (then c.status is 499); a queue-full / timeout answer is sent here.
  StatusOr<AdmitResult> waitInQueue(Ctx& c, const AdmitRequest& ar);
  void refuse(Ctx& c, const AdmitRequest& ar, const AdmitResult& r);
  // Books `ev` (nullptr: nothing) and drops the reservation, in one storage step.
  void settle(Ctx& c, const UsageEvent* ev);
  const TimeZone& zone() const;
  struct Failure;
  enum class AttemptOutcome { kDone, kFailed };
  // Picks accounts and tries them in turn (bounded by scheduler.max_attempts) until one answers
  // or a failure must reach the client; nothing is retried once a byte was sent.
  void serveRelay(Ctx& c, const rg_request& rq);
  // One attempt on c.pick. kDone: the client has its answer (or left). kFailed: nothing was
  // sent; *f holds what to tell the client and *err the plugin's verdict for the scheduler.
  AttemptOutcome attemptUpstream(Ctx& c, const rg_request& rq, Failure* f, UpstreamError* err);
  void sendFailure(Ctx& c, const Failure& f);
  void relayResponse(Ctx& c, class UpstreamCall& call, const struct UpstreamResponseHead& head);
  void bookUsage(Ctx& c);
  // Fills ev.counts' cost and billed amount from the price table in force; updates the metrics.
  void priceUsage(UsageEvent& ev, Rate keyRate);
  // Reading an upstream body before anything was sent failed: 499 if the client left, else
  // 502/504 naming `what` was being read.
  void failUpstreamRead(Ctx& c, const Status& s, const std::string& what);
  // Status line and end-to-end headers for the client (hop-by-hop headers dropped).
  void applyHead(Ctx& c, int status, const std::string& reason, const HeaderList& headers);
  // `code` and `extraMembers` (",\"name\":value..." appended to the top-level object) carry
  // machine-readable details such as the 402 quota codes.
  void sendError(Ctx& c, int status, const std::string& message, const std::string& type = {},
                 int retryAfterSeconds = -1, const std::string& code = {},
                 const std::string& extraMembers = {});
  void sendBody(Ctx& c, int status, const std::string& contentType, const std::string& body);
  void finish(Ctx& c);
  void failRequest(Ctx& c) noexcept;

  GatewayDeps d_;
  std::atomic<int64_t> inFlight_{0};
  std::atomic<bool> aborting_{false};
  std::atomic<bool> draining_{false};
  int64_t leaseTtlMs_;
  int64_t startedAtMs_ = 0;
  Rate globalRate_;  // pricing.global_rate (validated by the config loader)
  std::unique_ptr<UsageViews> views_;
  // relaygate_model_tokens_total / _cost_ / _billed_ series by "provider\nmodel", each
  // registered on its first use.
  static constexpr size_t kTokenKinds = 5;
  struct ModelCounters {
    Counter* tokens[kTokenKinds] = {};
    Counter* cost = nullptr;
    Counter* billed = nullptr;
  };
  std::mutex modelCountersMu_;
  std::map<std::string, ModelCounters> modelCounters_;
  std::mutex queueMu_;
  std::map<std::string, int> queued_;  // key id -> requests waiting in this process's queue

  // Metrics (cached series pointers).
  Gauge* activeStreams_;
  Gauge* inFlightGauge_;
  Gauge* leasesHeld_;
  Histogram* upstreamLatency_;
  Counter* tokensInput_;
  Counter* tokensOutput_;
  Counter* tokensCache5m_;
  Counter* tokensCache1h_;
  Counter* tokensCacheRead_;
  Gauge* storageErrors_;
  Counter* upstreamErrors_;
  Counter* clientAborts_;
  Counter* unpricedRequests_;
  Counter* failovers_;
  Gauge* queueWaiting_;
  Counter* queueRejects_;
};

}  // namespace rg
