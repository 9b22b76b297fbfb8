#include "relay/gateway.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <istream>
#include <ostream>
#include <random>
#include <thread>

#include <poll.h>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/StreamSocket.h>
#include <spdlog/spdlog.h>

#include "common/time_format.h"
#include "crypto/crypto.h"
#include "http/error_shapes.h"
#include "plugin/abi_views.h"
#include "plugin/host_objects.h"
#include "relay/sse_framer.h"

namespace rg {

namespace {

constexpr size_t kErrorBodyCap = 4 << 20;      // upstream error bodies we buffer and forward
constexpr size_t kBufferedBodyCap = 16 << 20;  // non-SSE bodies with a length are sent whole
constexpr size_t kClassifyCap = 64 << 10;      // what classify_error gets to see

rg_str view(const std::string& s) {
  return rg_str{s.data(), s.size()};
}

bool isHopByHop(std::string_view name) {
  return iequals(name, "connection") || iequals(name, "keep-alive") ||
         iequals(name, "transfer-encoding") || iequals(name, "te") || iequals(name, "trailer") ||
         iequals(name, "upgrade") || iequals(name, "proxy-authenticate") ||
         iequals(name, "proxy-authorization") || iequals(name, "content-length");
}

int clientFd(Poco::Net::HTTPServerRequest& req) {
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
  if (impl == nullptr) {
    return -1;
  }
  return static_cast<int>(impl->socket().impl()->sockfd());
}

// Cut the client connection so it sees an incomplete response (no final chunk).
void cutClient(Poco::Net::HTTPServerRequest& req) {
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
  if (impl == nullptr) {
    return;
  }
  try {
    impl->socket().shutdown();
  } catch (...) {
  }
}

// "req_" + 24 hex digits from a per-thread generator seeded from the CSPRNG: unique, cheap, and
// not a secret (it is shown to clients and logged).
std::string newRequestId() {
  thread_local std::mt19937_64 gen([] {
    std::string seed = crypto::randomBytes(8);
    uint64_t v = 0;
    std::memcpy(&v, seed.data(), sizeof v);
    return v;
  }());
  static const char* kHex = "0123456789abcdef";
  uint64_t a = gen();
  uint64_t b = gen();
  char out[28] = {'r', 'e', 'q', '_'};
  for (int i = 0; i < 16; ++i) {
    out[4 + i] = kHex[(a >> (i * 4)) & 15];
  }
  for (int i = 0; i < 8; ++i) {
    out[20 + i] = kHex[(b >> (i * 4)) & 15];
  }
  return std::string(out, sizeof out);
}

const TimeZone& utcZone() {
  static const TimeZone zone = TimeZone::utc();
  return zone;
}

}  // namespace

std::string clientFamily(std::string_view ua) {
  auto lowerWord = [](std::string_view w) {
    std::string out;
    for (char ch : w) {
      auto u = static_cast<unsigned char>(ch);
      if (std::isalnum(u) != 0 || ch == '-' || ch == '_' || ch == '.') {
        out += static_cast<char>(std::tolower(u));
      }
      if (out.size() >= 32) {
        break;
      }
    }
    return out;
  };
  std::string_view first = ua.substr(0, ua.find(' '));
  size_t slash = first.find('/');
  std::string name = lowerWord(first.substr(0, slash));
  // SDKs name their language after the slash: "Anthropic/Python 0.40.0", "OpenAI/JS 4.x".
  if ((name == "anthropic" || name == "openai") && slash != std::string_view::npos) {
    std::string lang = lowerWord(first.substr(slash + 1));
    if (!lang.empty() && std::isalpha(static_cast<unsigned char>(lang[0])) != 0) {
      name += "-" + lang;
    }
  }
  return name;
}

struct Gateway::Ctx {
  Ctx(Poco::Net::HTTPServerRequest& rq, Poco::Net::HTTPServerResponse& rs) : req(rq), resp(rs) {}
  Poco::Net::HTTPServerRequest& req;
  Poco::Net::HTTPServerResponse& resp;
  std::string requestId;
  std::chrono::steady_clock::time_point start;  // for the access log's latency (sub-ms)
  std::string method;
  std::string path;
  std::string query;
  HeaderList headers;
  std::string body;
  const RouteEntry* route = nullptr;
  rg_error_shape shape = RG_SHAPE_ANTHROPIC;
  KeyRecordPtr key;
  std::string model;
  bool stream = false;
  std::string accountId;
  std::string sessionKey;  // from the plugin, for sticky scheduling
  Pick pick;               // the account of the current attempt
  bool picked = false;     // ... whose lease must be released
  int status = 0;
  int64_t firstByteMs = 0;  // from the start to the upstream's response head
  uint64_t bytesOut = 0;
  bool responded = false;
  bool hasBody = false;       // the request carries a body (length > 0 or chunked)
  bool bodyConsumed = false;  // ... and it has been read completely (keep-alive stays safe)
  bool http10 = false;        // HTTP/1.0 client: no chunked responses
  bool usageBooked = false;
  rg_host_stream hs;
  bool reserved = false;  // holds an admission reservation (released by settle / release)
  bool weekly = false;    // a Claude-family request: booked into the key's weekly counter
  std::string week;       // ... of this weekly period
  int64_t lastLeaseRenewMs = 0;
  ClientWatch watch;
  std::string routeLabel = "unmatched";
  std::string note;  // extra access-log detail (error reason)
};

Gateway::Gateway(GatewayDeps deps)
    : d_(std::move(deps)),
      // A live stream renews its lease whenever bytes flow (at most every kLeaseRenewMs); the
      // longest silence it survives is the upstream timeout, so the lease must outlast that.
      leaseTtlMs_(std::max<int64_t>(
          kMinLeaseTtlMs,
          static_cast<int64_t>(d_.config->server.upstreamTimeoutMs) + 2 * kLeaseRenewMs)) {
  MetricsRegistry& m = *d_.metrics;
  activeStreams_ = m.gauge("relaygate_active_streams", "Streaming responses in progress");
  inFlightGauge_ = m.gauge("relaygate_requests_in_flight", "Requests being handled");
  leasesHeld_ = m.gauge("relaygate_leases_held",
                        "Key concurrency leases held by this process (0 when idle: none leak)");
  upstreamLatency_ = m.histogram("relaygate_upstream_latency_seconds",
                                 "Time from sending upstream to the upstream response head",
                                 {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  const char* tokHelp = "Tokens relayed, by kind";
  tokensInput_ = m.counter("relaygate_tokens_total", tokHelp, {{"kind", "input"}});
  tokensOutput_ = m.counter("relaygate_tokens_total", tokHelp, {{"kind", "output"}});
  tokensCache5m_ = m.counter("relaygate_tokens_total", tokHelp, {{"kind", "cache_creation_5m"}});
  tokensCache1h_ = m.counter("relaygate_tokens_total", tokHelp, {{"kind", "cache_creation_1h"}});
  tokensCacheRead_ = m.counter("relaygate_tokens_total", tokHelp, {{"kind", "cache_read"}});
  storageErrors_ = m.gauge("relaygate_storage_errors", "Storage errors since start");
  upstreamErrors_ =
      m.counter("relaygate_upstream_failures_total", "Upstream connect/timeout/protocol failures");
  clientAborts_ = m.counter("relaygate_client_aborts_total",
                            "Requests whose client went away before the response ended");
  failovers_ = m.counter("relaygate_failovers_total",
                         "Requests retried on another account after a retryable upstream error");
  queueWaiting_ = m.gauge("relaygate_admission_queue_waiting",
                          "Requests waiting for a key concurrency slot (limits.queue_enabled)");
  queueRejects_ = m.counter("relaygate_admission_queue_rejects_total",
                            "Queued requests answered 429 (queue full or wait timed out)");
  views_ = std::make_unique<UsageViews>(*d_.store, *d_.clock, zone());
  d_.scheduler->setLeaseTtlMs(leaseTtlMs_);
  unpricedRequests_ = m.counter("relaygate_unpriced_requests_total",
                                "Requests booked at cost 0 because their model has no price");
  auto rate = Rate::parse(d_.config->pricing.globalRate);
  if (rate) {
    globalRate_ = rate.value();
  } else {
    // The loader validates the rate; a Config built in code may still carry a bad one.
    spdlog::error("pricing.global_rate \"{}\" is invalid ({}); billing at rate 1",
                  d_.config->pricing.globalRate, rate.status().message());
  }
}

Gateway::~Gateway() = default;

void Gateway::handle(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) noexcept {
  inFlight_.fetch_add(1);
  inFlightGauge_->add(1);
  Ctx c(req, resp);
  try {
    c.start = std::chrono::steady_clock::now();
    c.requestId = newRequestId();
    c.hs.requestId = c.requestId;
    c.method = req.getMethod();
    c.http10 = req.getVersion() == Poco::Net::HTTPMessage::HTTP_1_0;
    c.hasBody = req.getChunkedTransferEncoding() ||
                (req.hasContentLength() && req.getContentLength64() > 0);
    const std::string& uri = req.getURI();
    size_t q = uri.find('?');
    c.path = uri.substr(0, q);
    if (q != std::string::npos) {
      c.query = uri.substr(q + 1);
    }
    dispatch(c);
  } catch (const std::exception& e) {
    c.note = std::string("internal error: ") + e.what();
    spdlog::error("request {} failed: {}", c.requestId, e.what());
    failRequest(c);
  } catch (...) {
    c.note = "internal error";
    failRequest(c);
  }
  try {
    finish(c);
  } catch (...) {
  }
  inFlightGauge_->add(-1);
  inFlight_.fetch_sub(1);
}

void Gateway::failRequest(Ctx& c) noexcept {
  if (c.responded) {
    // Part of a response is out: the client must see it truncated, not cleanly ended.
    c.resp.setKeepAlive(false);
    cutClient(c.req);
    return;
  }
  try {
    sendError(c, 500, "Internal error in the gateway (request " + c.requestId + ")");
  } catch (...) {
  }
}

void Gateway::dispatch(Ctx& c) {
  if (c.method == "GET" || c.method == "HEAD") {
    if (c.path == "/health") {
      c.routeLabel = "/health";
      return serveHealth(c);
    }
    if (c.path == "/ready") {
      c.routeLabel = "/ready";
      return serveReady(c);
    }
    if (c.path == "/metrics") {
      c.routeLabel = "/metrics";
      return serveMetrics(c);
    }
  }
  if (d_.admin != nullptr && (c.path == "/admin" || c.path.rfind("/admin/", 0) == 0)) {
    c.routeLabel = "/admin";
    return serveAdmin(c);
  }
  if (auto view = matchClientView(c.method, c.path)) {
    c.routeLabel = c.path.find("/organizations/") != std::string::npos
                       ? "/v1/organizations/{org}/usage"
                       : c.path.substr(c.path.rfind('/'));
    return serveUsageView(c, *view);
  }
  bool pathExists = false;
  c.route = d_.router->match(c.method, c.path, &pathExists);
  if (c.route == nullptr) {
    if (pathExists) {
      c.resp.set("Allow", "see the route list in docs/api");
      return sendError(c, 405, "Method " + c.method + " is not allowed on " + c.path);
    }
    return sendError(c, 404, "Route " + c.method + " " + c.path + " not found");
  }
  c.shape = c.route->spec.shape;
  c.routeLabel = c.route->spec.path;
  serveRoute(c);
}

void Gateway::serveHealth(Ctx& c) {
  int64_t up = (d_.clock->nowUnixMs() - startedAtMs_) / 1000;
  sendBody(c, 200, "application/json",
           "{\"status\":\"ok\",\"version\":\"" RG_VERSION "\",\"uptime_seconds\":" +
               std::to_string(up) + "}");
}

void Gateway::serveReady(Ctx& c) {
  Status s = d_.store->ping();
  std::string body = "{\"status\":" + jsonQuote(s ? "ready" : "not_ready") +
                     ",\"storage\":{\"backend\":" + jsonQuote(d_.store->backendName()) +
                     ",\"ok\":" + (s ? "true" : "false") +
                     (s ? std::string() : ",\"error\":" + jsonQuote(s.message())) +
                     "},\"plugins\":" + d_.pluginsSummary + "}";
  sendBody(c, s ? 200 : 503, "application/json", body);
}

void Gateway::serveMetrics(Ctx& c) {
  storageErrors_->set(static_cast<int64_t>(d_.store->errorCount()));
  sendBody(c, 200, "text/plain; version=0.0.4; charset=utf-8", d_.metrics->render());
}

void Gateway::serveAdmin(Ctx& c) {
  AdminRequest ar;
  ar.method = c.method;
  ar.path = c.path;
  ar.query = c.query;
  for (const auto& kv : c.req) {
    ar.headers.emplace_back(kv.first, kv.second);  // the admin token travels in them: never logged
  }
  // Read at most one byte past the limit: the API answers 413 itself, and a body declared larger
  // is not read at all (the connection then closes, see sendBody).
  const size_t cap = AdminApi::kMaxBodyBytes + 1;
  bool declaredTooBig =
      c.req.hasContentLength() && c.req.getContentLength64() > static_cast<Poco::Int64>(cap);
  if (c.hasBody && !declaredTooBig) {
    char buf[16384];
    std::istream& in = c.req.stream();
    while (ar.body.size() < cap && (in.read(buf, static_cast<std::streamsize>(
                                                     std::min(sizeof buf, cap - ar.body.size()))) ||
                                    in.gcount() > 0)) {
      ar.body.append(buf, static_cast<size_t>(in.gcount()));
    }
    c.bodyConsumed = !in.bad() && ar.body.size() < cap &&
                     (!c.req.hasContentLength() ||
                      static_cast<Poco::Int64>(ar.body.size()) == c.req.getContentLength64());
  } else if (declaredTooBig) {
    ar.body.assign(cap, ' ');
  }
  AdminResponse r = d_.admin->handle(ar);
  std::fill(ar.body.begin(), ar.body.end(), '\0');  // may hold secrets (account credentials)
  for (const auto& h : r.headers) {
    c.resp.set(h.first, h.second);
  }
  sendBody(c, r.status, r.contentType, r.body);
}

bool Gateway::authenticate(Ctx& c, const HeaderList& headers, const std::string& permission) {
  std::string key = extractKey(headers, c.query);
  if (key.empty()) {
    sendError(c, 401,
              "Missing API key: send it in the x-api-key, Authorization (Bearer), "
              "x-goog-api-key or api-key header");
    return false;
  }
  if (key.size() < 10 || key.size() > 512) {
    sendError(c, 401, "Invalid API key format");
    return false;
  }
  auto rec = d_.keys->authenticate(key);
  if (!rec) {
    if (rec.status().code() == Code::kUnavailable) {
      c.note = rec.status().message();
      sendError(c, 503, "The gateway cannot reach its key storage; try again shortly");
    } else {
      sendError(c, 401, rec.status().message());
    }
    return false;
  }
  c.key = std::move(rec.value());
  if (!hasPermission(*c.key, permission)) {
    sendError(c, 403, "This API key has no permission for the " + permission + " service");
    return false;
  }
  return true;
}

void Gateway::serveUsageView(Ctx& c, ClientView view) {
  HeaderList headers;
  for (const auto& kv : c.req) {
    headers.emplace_back(kv.first, kv.second);
  }
  if (!authenticate(c, headers, "claude")) {
    return;
  }
  auto body = views_->clientView(view, *c.key);
  if (!body) {
    c.note = body.status().message();
    return sendError(c, 503, "The gateway cannot read its usage storage; try again shortly");
  }
  sendBody(c, 200, "application/json", body.value());
}

void Gateway::serveRoute(Ctx& c) {
  const RouteSpec& spec = c.route->spec;
  ProviderPlugin& plugin = *c.route->plugin;

  // Headers (the gateway's credentials never reach a plugin).
  HeaderList allHeaders;
  for (const auto& kv : c.req) {
    allHeaders.emplace_back(kv.first, kv.second);
  }

  // The body limit is checked on the declared length before anything else (no reading).
  int64_t maxBody = d_.config->server.maxBodyBytes;
  if (c.req.hasContentLength() && static_cast<int64_t>(c.req.getContentLength64()) > maxBody) {
    return sendError(c, 413,
                     "Request body of " + std::to_string(c.req.getContentLength64()) +
                         " bytes exceeds the limit of " + std::to_string(maxBody));
  }

  // Authentication, from headers and query only: an unauthenticated client never makes the
  // gateway read (or allocate for) its body.
  if ((spec.flags & RG_ROUTE_NO_AUTH) == 0 && !authenticate(c, allHeaders, spec.permission)) {
    return;
  }
  for (auto& h : allHeaders) {
    if (!isCredentialHeader(h.first)) {
      c.headers.push_back(std::move(h));
    }
  }

  // Body, bounded; the buffer grows with what actually arrives.
  if (c.hasBody) {
    char buf[16384];
    std::istream& in = c.req.stream();
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      c.body.append(buf, static_cast<size_t>(in.gcount()));
      if (static_cast<int64_t>(c.body.size()) > maxBody) {
        return sendError(c, 413, "Request body exceeds the limit of " + std::to_string(maxBody));
      }
    }
    if (in.bad() ||
        (c.req.hasContentLength() &&
         static_cast<int64_t>(c.body.size()) != static_cast<int64_t>(c.req.getContentLength64()))) {
      c.note = "client sent an incomplete body";
      return sendError(c, 400, "The request body is incomplete or malformed");
    }
    c.bodyConsumed = true;
  }
  std::string cleanQuery = stripKeyParam(c.query);

  std::vector<rg_header> hdrs = abiHeaders(c.headers);
  std::string keyId = c.key ? c.key->id : std::string();
  std::string keyName = c.key ? c.key->name : std::string();
  rg_request rq = abiRequest(spec.routeId, c.method, c.path, cleanQuery, hdrs, c.body, c.requestId);
  rq.key_id = view(keyId);
  rq.key_name = view(keyName);

  // The plugin reads model / stream / session from the request.
  rg_request_meta meta{};
  meta.struct_size = sizeof meta;
  Status ps = plugin.parseRequest(&c.hs, rq, &meta);
  if (!ps) {
    if (ps.code() == Code::kInvalidArgument) {
      return sendError(c, 400, ps.message());
    }
    c.note = ps.message();
    return sendError(c, 500, "The provider plugin failed to read the request");
  }
  c.model.assign(meta.model.ptr != nullptr ? meta.model.ptr : "", meta.model.len);
  if (c.model.size() > 256 || std::any_of(c.model.begin(), c.model.end(), [](char ch) {
        return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
      })) {
    // The model name ends up in logs and storage keys: no control characters, bounded length.
    c.model.clear();
    return sendError(c, 400, "The model name is invalid (control characters or over 256 bytes)");
  }
  c.stream = meta.stream != 0;
  c.sessionKey.assign(meta.session_key.ptr != nullptr ? meta.session_key.ptr : "",
                      meta.session_key.len);

  if (c.key) {
    if (!c.model.empty() && !modelAllowed(*c.key, c.model)) {
      return sendError(c, 403, "This API key may not use model " + c.model);
    }
    if (!admit(c, meta)) {
      return;  // refused: the client has its 429 / 402 / 503
    }
  }

  if (spec.kind == RG_ROUTE_LOCAL) {
    rg_host_sink out;
    Status s = plugin.handleLocal(&c.hs, rq, &out);
    if (!s) {
      c.note = s.message();
      if (s.code() == Code::kInvalidArgument) {
        return sendError(c, 400, s.message());
      }
      if (s.code() == Code::kNotFound) {
        return sendError(c, 404, s.message());
      }
      return sendError(c, 500, "The provider plugin failed to answer");
    }
    c.status = out.status == 0 ? 200 : static_cast<int>(out.status);
    c.resp.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(c.status));
    c.resp.set("X-Request-ID", c.requestId);
    for (const auto& h : out.headers) {
      if (!isHopByHop(h.first)) {
        c.resp.set(h.first, h.second);
      }
    }
    c.resp.setContentLength64(static_cast<Poco::Int64>(out.body.size()));
    c.responded = true;
    c.resp.send().write(out.body.data(), static_cast<std::streamsize>(out.body.size()));
    c.bytesOut = out.body.size();
    return;
  }

  serveRelay(c, rq);
}

namespace {

// Whether admission has anything to check for the key (its concurrency limit only counts when
// the route takes a slot).
bool keyHasLimits(const ApiKeyRecord& k, bool takesSlot) {
  bool window =
      k.rateWindowMinutes > 0 && (k.rateRequests > 0 || k.rateTokens > 0 || k.rateCostMicroUsd > 0);
  return (takesSlot && k.concurrencyLimit > 0) || window || k.dailyCostMicroUsd > 0 ||
         k.totalCostMicroUsd > 0 || k.weeklyCostMicroUsd > 0;
}

// "$12.345678" from micro-dollars, without floating point.
std::string usd(int64_t micro) {
  return "$" + formatMicroUsd(micro);
}

const char* verdictName(AdmitVerdict v) {
  switch (v) {
    case AdmitVerdict::kAdmitted:
      return "admitted";
    case AdmitVerdict::kConcurrency:
      return "concurrency";
    case AdmitVerdict::kWindowRequests:
      return "window_requests";
    case AdmitVerdict::kWindowTokens:
      return "window_tokens";
    case AdmitVerdict::kWindowCost:
      return "window_cost";
    case AdmitVerdict::kDailyCost:
      return "daily_cost";
    case AdmitVerdict::kTotalCost:
      return "total_cost";
    case AdmitVerdict::kWeeklyCost:
      return "weekly_cost";
  }
  return "unknown";
}

}  // namespace

const TimeZone& Gateway::zone() const {
  return d_.timeZone != nullptr ? *d_.timeZone : utcZone();
}

void Gateway::estimate(Ctx& c, const rg_request_meta& meta, int64_t* tokens, int64_t* billed) {
  *tokens = 0;
  *billed = 0;
  if ((c.route->spec.flags & RG_ROUTE_SKIP_CONCURRENCY) != 0 ||
      c.route->spec.kind == RG_ROUTE_LOCAL) {
    return;  // count_tokens and local answers produce no billable usage
  }
  RequestBounds b = requestBounds(meta, c.body.size());
  int64_t input = static_cast<int64_t>(b.inputTokensEstimate);
  int64_t output = static_cast<int64_t>(b.maxOutputTokens);
  if (output == 0) {
    output = d_.config->limits.defaultMaxOutputTokens;
  }
  int64_t cap = d_.config->limits.reserveOutputTokensCap;
  if (cap > 0) {
    output = std::min(output, cap);
  }
  *tokens = input + output;
  std::shared_ptr<const PriceTable> table = d_.prices != nullptr ? d_.prices->load() : nullptr;
  // lookup() first: cost() of an unknown model logs and counts it as an unpriced request, which
  // only the booking may do.
  if (table && !c.model.empty() && table->lookup(c.model) != nullptr) {
    TokenUsage tu;
    tu.input = input;
    tu.output = output;
    Cost cost = table->cost(c.model, tu);
    *billed = billedMicroUsd(cost, Rate{c.key->ratePpm}, globalRate_);
  }
}

bool Gateway::admit(Ctx& c, const rg_request_meta& meta) {
  const ApiKeyRecord& k = *c.key;
  int64_t now = d_.clock->nowUnixMs();
  c.weekly = c.route->spec.kind == RG_ROUTE_RELAY && isClaudeFamilyModel(c.model);
  if (c.weekly) {
    c.week = weeklyPeriodId(zone(), now, k.weeklyResetDay, k.weeklyResetHour);
  }
  bool skipConcurrency = (c.route->spec.flags & RG_ROUTE_SKIP_CONCURRENCY) != 0;
  if (!keyHasLimits(k, !skipConcurrency)) {
    return true;  // nothing to check: usage is still booked by settle
  }
  AdmitRequest ar;
  ar.keyId = k.id;
  ar.requestId = c.requestId;
  ar.limits.concurrency = skipConcurrency ? 0 : k.concurrencyLimit;
  if (k.rateWindowMinutes > 0) {
    ar.limits.windowMs = k.rateWindowMinutes * 60000;
    ar.limits.windowRequests = k.rateRequests;
    ar.limits.windowTokens = k.rateTokens;
    ar.limits.windowCostMicroUsd = k.rateCostMicroUsd;
  }
  ar.limits.dailyCostMicroUsd = k.dailyCostMicroUsd;
  ar.limits.totalCostMicroUsd = k.totalCostMicroUsd;
  ar.limits.weeklyCostMicroUsd = c.weekly ? k.weeklyCostMicroUsd : 0;
  ar.ttlMs = leaseTtlMs_;
  estimate(c, meta, &ar.estTokens, &ar.estBilledMicroUsd);
  ar.day = zone().dayBucket(now);
  ar.weekly = c.weekly;
  ar.week = c.week;
  ar.weekTtlMs = kWeekTtlMs;

  auto r = d_.store->admission().admit(ar);
  if (r && r->verdict == AdmitVerdict::kConcurrency && d_.config->limits.queueEnabled &&
      !skipConcurrency) {
    r = waitInQueue(c, ar);
    if (c.responded || c.status == 499) {
      return false;  // answered (queue full / timeout) or the client left while queued
    }
  }
  if (!r) {
    // The script may have run before the reply was lost: drop what it may have reserved.
    (void)d_.store->admission().release(k.id, c.requestId);
    c.note = r.status().message();
    sendError(c, 503, "The gateway cannot reach its limit storage; try again shortly");
    return false;
  }
  if (r->verdict != AdmitVerdict::kAdmitted) {
    refuse(c, ar, *r);
    return false;
  }
  if (skipConcurrency) {
    // count_tokens: counted in the window, but it takes no concurrency slot and costs nothing,
    // so it holds no reservation while it runs.
    (void)d_.store->admission().release(k.id, c.requestId);
    return true;
  }
  c.reserved = true;
  leasesHeld_->add(1);
  c.lastLeaseRenewMs = d_.clock->monotonicMs();
  return true;
}

StatusOr<AdmitResult> Gateway::waitInQueue(Ctx& c, const AdmitRequest& ar) {
  const LimitsConfig& lc = d_.config->limits;
  bool full = false;
  {
    std::lock_guard<std::mutex> lock(queueMu_);
    int& n = queued_[ar.keyId];
    full = n >= lc.queueMaxPerKey;
    if (!full) {
      ++n;
    }
  }
  if (full) {  // answered outside the lock: a slow client must not stall other keys' queues
    c.note = "concurrency queue full";
    queueRejects_->add();
    sendError(c, 429,
              "Concurrency limit exceeded and the wait queue of this key is full (" +
                  std::to_string(lc.queueMaxPerKey) + " waiting); retry later",
              "rate_limit_error", std::max(1, (lc.queueWaitMs + 999) / 1000));
    return Status(Code::kResourceExhausted, "queue full");
  }
  queueWaiting_->add(1);
  struct Leave {
    Gateway* g;
    const std::string& key;
    ~Leave() {
      g->queueWaiting_->add(-1);
      std::lock_guard<std::mutex> lock(g->queueMu_);
      if (--g->queued_[key] <= 0) {
        g->queued_.erase(key);
      }
    }
  } leave{this, ar.keyId};

  ClientWatch watch(clientFd(c.req));
  int64_t deadline = d_.clock->monotonicMs() + lc.queueWaitMs;
  int64_t slice = 10;
  for (;;) {
    int64_t left = deadline - d_.clock->monotonicMs();
    if (left <= 0) {
      break;
    }
    // Sleep on the client's socket: a client that hangs up leaves the queue at once.
    int fd = watch.fd();
    struct pollfd pfd {
      fd, POLLIN, 0
    };
    int wait = static_cast<int>(std::min(left, slice));
    if (fd >= 0 && ::poll(&pfd, 1, wait) > 0 && watch.checkGone()) {
      c.note = "client left the concurrency queue";
      clientAborts_->add();
      c.status = 499;
      return Status(Code::kAborted, "client left");
    }
    if (fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    }
    auto r = d_.store->admission().admit(ar);
    if (!r || r->verdict != AdmitVerdict::kConcurrency) {
      return r;
    }
    slice = std::min<int64_t>(250, slice * 3 / 2 + 1);
  }
  c.note = "concurrency queue timeout";
  queueRejects_->add();
  int retry = std::clamp((lc.queueWaitMs / 1000 + 1) / 2, 5, 30);
  sendError(c, 429,
            "Concurrency limit exceeded: no slot became free within " +
                std::to_string(lc.queueWaitMs) + " ms in the wait queue",
            "rate_limit_error", retry);
  return Status(Code::kDeadlineExceeded, "queue timeout");
}

void Gateway::refuse(Ctx& c, const AdmitRequest& ar, const AdmitResult& r) {
  const ApiKeyRecord& k = *c.key;
  int64_t now = d_.clock->nowUnixMs();
  d_.metrics
      ->counter("relaygate_admission_refusals_total", "Requests refused by a per-key limit",
                {{"limit", verdictName(r.verdict)}})
      ->add();
  auto retryAfter = [&](int64_t untilMs) {
    return static_cast<int>(std::max<int64_t>(1, (untilMs - now + 999) / 1000));
  };
  std::string extra;
  switch (r.verdict) {
    case AdmitVerdict::kConcurrency:
      extra = ",\"current_concurrency\":" + std::to_string(r.current) +
              ",\"concurrency_limit\":" + std::to_string(r.limit);
      return sendError(c, 429,
                       "Concurrency limit exceeded: this key allows " +
                           std::to_string(k.concurrencyLimit) + " concurrent requests",
                       "rate_limit_error", 1, {}, extra);
    case AdmitVerdict::kWindowRequests:
    case AdmitVerdict::kWindowTokens:
    case AdmitVerdict::kWindowCost: {
      bool tokens = r.verdict == AdmitVerdict::kWindowTokens;
      int64_t own = tokens ? ar.estTokens : ar.estBilledMicroUsd;
      if (r.verdict != AdmitVerdict::kWindowRequests && own > r.limit) {
        // Retrying cannot help: the request alone may use more than the whole window allows.
        std::string what = tokens
                               ? std::to_string(own) + " tokens, more than this key's limit of " +
                                     std::to_string(r.limit) + " tokens"
                               : usd(own) + ", more than this key's limit of " + usd(r.limit);
        return sendError(
            c, 400,
            "This request may use up to " + what + " per " + std::to_string(k.rateWindowMinutes) +
                " minute(s); lower max_tokens or ask for a higher limit",
            "invalid_request_error", -1, "request_exceeds_rate_limit",
            ",\"limit\":" + jsonQuote(verdictName(r.verdict)) + ",\"limit_value\":" +
                std::to_string(r.limit) + ",\"request_estimate\":" + std::to_string(own));
      }
      // No open window (it ended while other requests were in flight): nothing to wait for but
      // those, so a short retry.
      bool open = r.windowEndMs > now;
      int retry = open ? retryAfter(r.windowEndMs) : 1;
      std::string what;
      if (r.verdict == AdmitVerdict::kWindowRequests) {
        what = "request limit of " + std::to_string(r.limit) + " (" + std::to_string(r.current) +
               " used)";
      } else if (r.verdict == AdmitVerdict::kWindowTokens) {
        what = "token limit of " + std::to_string(r.limit) + " (" + std::to_string(r.current) +
               " used or reserved; this request may use up to " + std::to_string(ar.estTokens) +
               ")";
      } else {
        what = "cost limit of " + usd(r.limit) + " (" + usd(r.current) +
               " used or reserved; this request may cost up to " + usd(ar.estBilledMicroUsd) + ")";
      }
      extra = ",\"limit\":" + jsonQuote(verdictName(r.verdict)) +
              ",\"current\":" + std::to_string(r.current) +
              ",\"limit_value\":" + std::to_string(r.limit) +
              (open ? ",\"reset_at\":" + jsonQuote(isoTimeUtc(r.windowEndMs)) : std::string());
      return sendError(c, 429,
                       "Rate limit exceeded: " + what + " per " +
                           std::to_string(k.rateWindowMinutes) + " minute(s); resets in " +
                           std::to_string(retry) + " s",
                       "rate_limit_error", retry, {}, extra);
    }
    case AdmitVerdict::kDailyCost:
    case AdmitVerdict::kTotalCost:
    case AdmitVerdict::kWeeklyCost: {
      const char* code = r.verdict == AdmitVerdict::kDailyCost ? "daily_cost_limit_exceeded"
                         : r.verdict == AdmitVerdict::kTotalCost
                             ? "total_cost_limit_exceeded"
                             : "weekly_opus_cost_limit_exceeded";
      const char* period = r.verdict == AdmitVerdict::kDailyCost   ? "daily"
                           : r.verdict == AdmitVerdict::kTotalCost ? "total"
                                                                   : "weekly Claude-model";
      // The request alone may cost more than the whole limit: no reset will let it through.
      bool alone = ar.estBilledMicroUsd > r.limit;
      int64_t resetAt = 0;
      if (alone) {
        // no reset_at
      } else if (r.verdict == AdmitVerdict::kDailyCost) {
        resetAt = nextLocalMidnightMs(zone(), now);
      } else if (r.verdict == AdmitVerdict::kWeeklyCost) {
        resetAt = nextWeeklyResetMs(zone(), now, k.weeklyResetDay, k.weeklyResetHour);
      }
      extra = ",\"current_cost\":" + formatMicroUsd(r.current) +
              ",\"cost_limit\":" + formatMicroUsd(r.limit) +
              (resetAt > 0 ? ",\"reset_at\":" + jsonQuote(isoTimeUtc(resetAt)) : std::string());
      if (alone) {
        extra += ",\"request_estimate\":" + formatMicroUsd(ar.estBilledMicroUsd);
      }
      std::string msg = alone ? "This request may cost up to " + usd(ar.estBilledMicroUsd) +
                                    ", more than the " + period + " cost limit of this API key (" +
                                    usd(r.limit) + "); lower max_tokens or ask for a higher limit"
                              : std::string("The ") + period + " cost limit of this API key (" +
                                    usd(r.limit) + ") is reached: " + usd(r.current) +
                                    " used or reserved, and this request may cost up to " +
                                    usd(ar.estBilledMicroUsd);
      if (resetAt > 0) {
        msg += "; it resets at " + isoTimeUtc(resetAt);
      }
      return sendError(c, 402, msg, "insufficient_quota", -1, code, extra);
    }
    case AdmitVerdict::kAdmitted:
      break;
  }
}

namespace {

ErrorKind kindOf(rg_error_class cls) {
  switch (cls) {
    case RG_EC_CLIENT:
      return ErrorKind::kClient;
    case RG_EC_CONTEXT_TOO_LONG:
      return ErrorKind::kContextTooLong;
    case RG_EC_RATE_LIMITED:
      return ErrorKind::kRateLimited;
    case RG_EC_OVERLOADED:
      return ErrorKind::kOverloaded;
    case RG_EC_TRANSIENT:
      return ErrorKind::kTransient;
    case RG_EC_AUTH:
      return ErrorKind::kAuth;
    case RG_EC_QUOTA_EXHAUSTED:
      return ErrorKind::kQuotaExhausted;
    case RG_EC_BLOCKED:
      return ErrorKind::kBlocked;
    default:
      return ErrorKind::kNone;
  }
}

}  // namespace

// One attempt's failure, kept so that the client gets the last one when every attempt failed.
struct Gateway::Failure {
  bool valid = false;
  bool hasResponse = false;  // an upstream error response (sent as it came)
  UpstreamResponseHead head;
  std::string body;
  int status = 0;  // else: a gateway error with this status and message
  std::string message;
  std::string type;
};

void Gateway::serveRelay(Ctx& c, const rg_request& rq) {
  const RouteSpec& spec = c.route->spec;
  PickRequest pr;
  pr.types = spec.accountTypes;
  pr.provider = spec.permission.empty() && !spec.accountTypes.empty()
                    ? AccountService::providerOf(spec.accountTypes.front())
                    : spec.permission;
  pr.model = c.model;
  pr.sessionKey = c.sessionKey;
  pr.key = c.key.get();
  pr.holder = c.requestId;
  const int maxAttempts = std::max(1, d_.config->scheduler.maxAttempts);
  Failure last;
  for (int attempt = 1;; ++attempt) {
    if (c.reserved && d_.clock->monotonicMs() - c.lastLeaseRenewMs > kLeaseRenewMs) {
      // Slow attempts add up: the reservation must outlive all of them.
      (void)d_.store->admission().renew(c.key->id, c.requestId, leaseTtlMs_);
      c.lastLeaseRenewMs = d_.clock->monotonicMs();
    }
    auto p = d_.scheduler->pick(pr);
    if (!p) {
      if (last.valid) {
        // Every account this request could use failed: the client gets the last answer.
        c.note = "no account left after " + std::to_string(attempt - 1) +
                 " attempt(s): " + p.status().message();
        return sendFailure(c, last);
      }
      c.note = p.status().message();
      return sendError(c, 503, p.status().message(),
                       c.shape == RG_SHAPE_ANTHROPIC ? "overloaded_error" : "");
    }
    c.pick = std::move(p.value());
    c.picked = true;
    c.accountId = c.pick.record.id;
    pr.exclude.insert(c.accountId);
    Failure f;
    UpstreamError err;
    AttemptOutcome o = attemptUpstream(c, rq, &f, &err);
    if (o == AttemptOutcome::kDone) {
      return;
    }
    // kFailed: the account answered with (or caused) an error and nothing reached the client.
    bool retry = d_.scheduler->reportError(c.pick, err) && attempt < maxAttempts;
    if (!retry) {
      return sendFailure(c, f);
    }
    failovers_->add();
    spdlog::info("request {} attempt {} on account {} failed ({}: {}); trying another account",
                 c.requestId, attempt, c.accountId, errorKindName(err.kind), err.reason);
    c.note = "failover after " + std::string(errorKindName(err.kind));
    d_.scheduler->release(c.pick);
    c.picked = false;
    last = std::move(f);
  }
}

Gateway::AttemptOutcome Gateway::attemptUpstream(Ctx& c, const rg_request& rq, Failure* f,
                                                 UpstreamError* err) {
  ProviderPlugin& plugin = *c.route->plugin;
  const AccountRecord& rec = c.pick.record;
  auto fail = [&](ErrorKind kind, int status, const std::string& message, const char* type) {
    err->kind = kind;
    err->status = 0;
    err->reason = message;
    f->valid = true;
    f->status = status;
    f->message = message;
    f->type = type;
    return AttemptOutcome::kFailed;
  };

  // The credential: an OAuth access token (refreshed when due) or the stored key.
  std::string secret;
  if (rec.type == "claude-official" && d_.tokens != nullptr) {
    auto t = d_.tokens->accessToken(rec);
    if (!t) {
      return fail(
          ErrorKind::kAuth, 503,
          "The upstream account's OAuth token could not be refreshed: " + t.status().message(),
          "overloaded_error");
    }
    secret = std::move(t.value());
  } else {
    auto opened = d_.accounts->openPrimaryCached(rec);
    if (!opened) {
      c.note = opened.status().message();
      sendError(c, 500, "The gateway could not use the upstream account");
      return AttemptOutcome::kDone;
    }
    secret = std::move(opened.value());
  }
  rg_account ra = abiAccount(rec, secret, c.pick.upstreamModel);
  rg_host_sink up;
  Status ts = plugin.transformRequest(&c.hs, rq, ra, &up);
  std::fill(secret.begin(), secret.end(), '\0');
  if (!ts) {
    c.note = ts.message();
    if (ts.code() == Code::kInvalidArgument) {
      sendError(c, 400, ts.message());
    } else {
      sendError(c, 500, "The provider plugin failed to build the upstream request");
    }
    return AttemptOutcome::kDone;
  }
  if (!up.started || up.url.empty()) {
    c.note = "plugin wrote no upstream request";
    sendError(c, 500, "The provider plugin built no upstream request");
    return AttemptOutcome::kDone;
  }
  UpstreamRequest ureq;
  ureq.method = up.method.empty() ? "POST" : up.method;
  ureq.url = std::move(up.url);
  ureq.headers = std::move(up.headers);
  ureq.body = std::move(up.body);
  up.reset();

  c.watch = ClientWatch(clientFd(c.req));
  CallOptions opts;
  opts.connectTimeoutMs = d_.config->server.upstreamConnectTimeoutMs;
  opts.ioTimeoutMs = d_.config->server.upstreamTimeoutMs;
  opts.watch = &c.watch;
  if (!rec.proxyUrl.empty()) {
    opts.proxyUrl = rec.proxyUrl;
    if (rec.secretsSealed.count("proxy_password") != 0) {
      auto pw = d_.accounts->openSecret(rec, "proxy_password");
      if (!pw) {
        c.note = pw.status().message();
        sendError(c, 500, "The gateway could not open the upstream account's proxy password");
        return AttemptOutcome::kDone;
      }
      opts.proxyPassword = std::move(pw.value());
    }
  }
  int64_t sentMs = d_.clock->monotonicMs();
  auto call = d_.upstream->start(ureq, opts);
  std::fill(ureq.headers.begin(), ureq.headers.end(), std::make_pair(std::string(), std::string()));
  std::fill(opts.proxyPassword.begin(), opts.proxyPassword.end(), '\0');
  if (!call) {
    upstreamErrors_->add();
    if (call.status().code() == Code::kDeadlineExceeded) {
      return fail(ErrorKind::kTransient, 504, "Upstream timed out: " + call.status().message(),
                  "timeout_error");
    }
    return fail(ErrorKind::kTransient, 502, "Upstream unreachable: " + call.status().message(),
                "api_error");
  }
  UpstreamResponseHead head;
  Status hs = (*call)->readHead(&head);
  if (!hs) {
    if (hs.code() == Code::kAborted) {
      c.note = hs.message();
      clientAborts_->add();
      c.status = 499;
      return AttemptOutcome::kDone;
    }
    upstreamErrors_->add();
    if (hs.code() == Code::kDeadlineExceeded) {
      return fail(ErrorKind::kTransient, 504, "Upstream timed out before responding",
                  "timeout_error");
    }
    return fail(ErrorKind::kTransient, 502, "Upstream failed before responding: " + hs.message(),
                "api_error");
  }
  upstreamLatency_->observe(static_cast<double>(d_.clock->monotonicMs() - sentMs) / 1000.0);
  c.firstByteMs = static_cast<int64_t>(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.start)
          .count());
  if (head.status < 400) {
    d_.scheduler->reportSuccess(c.pick);
    relayResponse(c, **call, head);
    return AttemptOutcome::kDone;
  }

  // An error answer: buffered whole (bounded), classified by the plugin, then either sent to the
  // client as it came (already in the provider's shape) or replaced by another account's answer.
  std::string body;
  while (body.size() < kErrorBodyCap + 1) {
    auto n = (*call)->readSome(&body, kErrorBodyCap + 1 - body.size());
    if (!n) {
      if (n.status().code() == Code::kAborted) {
        c.note = n.status().message();
        clientAborts_->add();
        c.status = 499;
        return AttemptOutcome::kDone;
      }
      // A partial error body must not look complete: say what happened instead.
      upstreamErrors_->add();
      return fail(ErrorKind::kTransient, n.status().code() == Code::kDeadlineExceeded ? 504 : 502,
                  "Upstream failed while sending its " + std::to_string(head.status) +
                      " response: " + n.status().message(),
                  "api_error");
    }
    if (*n == 0) {
      break;
    }
  }
  if (body.size() > kErrorBodyCap) {
    (*call)->abort();
    upstreamErrors_->add();
    return fail(ErrorKind::kTransient, 502,
                "Upstream sent an error response larger than 4 MiB (status " +
                    std::to_string(head.status) + ")",
                "api_error");
  }
  std::vector<rg_header> hv;
  for (const auto& h : head.headers) {
    hv.push_back(rg_header{view(h.first), view(h.second)});
  }
  rg_error_info info =
      plugin.classifyError(&c.hs, static_cast<uint32_t>(head.status), hv.data(), hv.size(),
                           rg_str{body.data(), std::min(body.size(), kClassifyCap)});
  err->kind = kindOf(info.cls);
  err->status = head.status;
  err->retryAfterMs = static_cast<int64_t>(info.retry_after_ms);
  err->untilUnixMs = static_cast<int64_t>(info.until_unix_ms);
  err->scope.assign(info.scope.ptr != nullptr ? info.scope.ptr : "", info.scope.len);
  err->reason.assign(info.reason.ptr != nullptr ? info.reason.ptr : "", info.reason.len);
  if (err->reason.empty()) {
    err->reason = "upstream " + std::to_string(head.status);
  }
  c.note = "upstream " + std::to_string(head.status) + " (" + errorKindName(err->kind) +
           "): " + err->reason;
  f->valid = true;
  f->hasResponse = true;
  f->head = head;
  f->body = std::move(body);
  return AttemptOutcome::kFailed;
}

void Gateway::sendFailure(Ctx& c, const Failure& f) {
  if (!f.hasResponse) {
    return sendError(c, f.status, f.message, f.type);
  }
  applyHead(c, f.head.status, f.head.reason, f.head.headers);
  c.resp.setContentLength64(static_cast<Poco::Int64>(f.body.size()));
  c.responded = true;
  c.resp.send().write(f.body.data(), static_cast<std::streamsize>(f.body.size()));
  c.bytesOut = f.body.size();
}

void Gateway::relayResponse(Ctx& c, UpstreamCall& call, const UpstreamResponseHead& head) {
  ProviderPlugin& plugin = *c.route->plugin;
  auto& out = c.resp;
  // Only successes arrive here: error answers were buffered and classified in attemptUpstream.

  auto readAll = [&](std::string* body, size_t cap) -> Status {
    while (body->size() < cap) {
      auto n = call.readSome(body, cap - body->size());
      if (!n) {
        return n.status();
      }
      if (*n == 0) {
        return Status::ok();
      }
    }
    return Status::ok();
  };

  // Status and headers for the client.
  int status = head.status;
  HeaderList respHeaders;
  if (plugin.hasResponseHeaders()) {
    std::vector<rg_header> hv;
    for (const auto& h : head.headers) {
      hv.push_back(rg_header{view(h.first), view(h.second)});
    }
    rg_host_sink hsink;
    Status s = plugin.onResponseHeaders(&c.hs, static_cast<uint32_t>(head.status), hv.data(),
                                        hv.size(), &hsink);
    if (!s) {
      call.abort();
      c.note = s.message();
      return sendError(c, 502, "The provider plugin rejected the upstream response");
    }
    if (hsink.status != 0) {
      status = static_cast<int>(hsink.status);
    }
    respHeaders = std::move(hsink.headers);
  } else {
    respHeaders = head.headers;
  }
  const std::string* ct = findHeader(head.headers, "content-type");
  bool sse = ct != nullptr && ct->compare(0, 17, "text/event-stream") == 0;
  std::string reason = status == head.status ? head.reason : std::string();

  if (call.bodyComplete()) {
    // No body at all (204, 304, or an empty response): never chunk-encode one.
    applyHead(c, status, reason, respHeaders);
    if (status != 204 && status != 304) {
      out.setContentLength64(0);
    }
    c.responded = true;
    out.send();
    return;
  }
  if (!sse) {
    const std::string* cl = findHeader(head.headers, "content-length");
    bool small = cl != nullptr && std::strtoull(cl->c_str(), nullptr, 10) <= kBufferedBodyCap;
    if (small) {
      std::string body;
      Status s = readAll(&body, kBufferedBodyCap + 1);
      if (!s) {
        return failUpstreamRead(c, s, "the response");
      }
      if (plugin.hasBodyChunk()) {
        rg_host_sink repl;
        Status ps = plugin.onBodyChunk(&c.hs, view(body), true, &repl);
        if (!ps) {
          c.note = ps.message();
        } else if (repl.discarded) {
          body.clear();
        } else if (repl.touched) {
          body = std::move(repl.body);
        }
      }
      // Book before the client can see a complete response: a gateway killed right after a
      // client got its answer has still recorded the usage. (Streams are booked before their
      // final chunk, which POCO writes after the handler returns.)
      c.status = status;
      bookUsage(c);
      applyHead(c, status, reason, respHeaders);
      out.setContentLength64(static_cast<Poco::Int64>(body.size()));
      c.responded = true;
      out.send().write(body.data(), static_cast<std::streamsize>(body.size()));
      c.bytesOut = body.size();
      return;
    }
  }
  applyHead(c, status, reason, respHeaders);

  // Streamed: SSE events framed and handed to the plugin, or body chunks as they come.
  // HTTP/1.0 clients cannot take chunks: their body ends when the connection closes.
  if (c.http10) {
    out.setKeepAlive(false);
  } else {
    out.setChunkedTransferEncoding(true);
  }
  if (sse) {
    out.set("X-Accel-Buffering", "no");
    if (!out.has("Cache-Control")) {
      out.set("Cache-Control", "no-cache");
    }
    activeStreams_->add(1);
  }
  c.responded = true;
  std::ostream& os = out.send();
  os.flush();
  SseFramer framer;
  std::vector<SseEvent> events;
  std::string chunk;
  bool sseHook = sse && plugin.hasSseEvent();
  bool chunkHook = !sse && plugin.hasBodyChunk();
  bool upstreamFailed = false;
  bool clientGone = false;

  auto emit = [&](const std::string& bytes) {
    os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    c.bytesOut += bytes.size();
  };
  auto handleEvents = [&]() {
    for (auto& ev : events) {
      rg_sse_event e{};
      e.struct_size = sizeof e;
      e.raw = view(ev.raw);
      e.event = view(ev.event);
      e.data = view(ev.data);
      rg_host_sink repl;
      Status s = plugin.onSseEvent(&c.hs, e, &repl);
      if (!s || (!repl.touched && !repl.discarded)) {
        emit(ev.raw);
      } else if (!repl.discarded) {
        emit(repl.body);
      }
    }
    events.clear();
  };

  for (;;) {
    chunk.clear();
    auto n = call.readSome(&chunk, 64 << 10);
    if (!n) {
      if (n.status().code() == Code::kAborted) {
        clientGone = true;
      } else {
        upstreamFailed = true;
        c.note = "upstream failed mid-response: " + n.status().message();
      }
      break;
    }
    if (*n == 0) {
      break;
    }
    if (sseHook) {
      framer.feed(chunk, &events);
      handleEvents();
    } else if (chunkHook) {
      rg_host_sink repl;
      Status s = plugin.onBodyChunk(&c.hs, view(chunk), false, &repl);
      if (!s || (!repl.touched && !repl.discarded)) {
        emit(chunk);
      } else if (!repl.discarded) {
        emit(repl.body);
      }
    } else {
      emit(chunk);
    }
    os.flush();
    if (!os.good()) {
      clientGone = true;
      break;
    }
    int64_t renewNow = d_.clock->monotonicMs();
    if (renewNow - c.lastLeaseRenewMs > kLeaseRenewMs) {
      if (c.reserved) {
        (void)d_.store->admission().renew(c.key->id, c.requestId, leaseTtlMs_);
      }
      d_.scheduler->renew(c.pick);
      c.lastLeaseRenewMs = renewNow;
    }
    if (aborting_.load()) {
      upstreamFailed = true;
      c.note = "gateway shutting down: stream cut after the drain timeout";
      break;
    }
  }
  if (!clientGone && !upstreamFailed) {
    if (sse && framer.buffered() > 0) {
      emit(framer.takeRemainder());
    }
    if (chunkHook) {
      rg_host_sink repl;
      Status s = plugin.onBodyChunk(&c.hs, rg_str{"", 0}, true, &repl);
      if (s && repl.touched && !repl.discarded) {
        emit(repl.body);
      }
    }
    os.flush();
  }
  if (sse) {
    activeStreams_->add(-1);
  }
  if (clientGone) {
    call.abort();
    clientAborts_->add();
    c.note = "client went away mid-stream";
    c.status = 499;
  } else if (upstreamFailed) {
    call.abort();
    upstreamErrors_->add();
    cutClient(c.req);  // the client must see a truncated response, not a clean end
  }
}

void Gateway::failUpstreamRead(Ctx& c, const Status& s, const std::string& what) {
  c.note = s.message();
  if (s.code() == Code::kAborted) {  // the client went away: nobody to answer
    clientAborts_->add();
    c.status = 499;
    return;
  }
  upstreamErrors_->add();
  sendError(c, s.code() == Code::kDeadlineExceeded ? 504 : 502,
            "Upstream failed while sending " + what + ": " + s.message());
}

void Gateway::applyHead(Ctx& c, int status, const std::string& reason, const HeaderList& headers) {
  auto& out = c.resp;
  c.status = status;
  if (reason.empty()) {
    out.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  } else {
    out.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status), reason);
  }
  for (const auto& h : headers) {
    if (!isHopByHop(h.first)) {
      out.set(h.first, h.second);
    }
  }
  out.set("X-Request-ID", c.requestId);
  if (draining_.load()) {
    out.setKeepAlive(false);
  }
}

void Gateway::priceUsage(UsageEvent& ev, Rate keyRate) {
  // One snapshot per request: a concurrent SIGHUP reload swaps the table, never mutates it.
  std::shared_ptr<const PriceTable> table = d_.prices != nullptr ? d_.prices->load() : nullptr;
  Cost cost;
  if (table) {
    TokenUsage tu;
    tu.input = ev.counts.inputTokens;
    tu.output = ev.counts.outputTokens;
    tu.cacheCreate5m = ev.counts.cacheCreate5mTokens;
    tu.cacheCreate1h = ev.counts.cacheCreate1hTokens;
    tu.cacheRead = ev.counts.cacheReadTokens;
    tu.longContextRequested = ev.model.find("[1m]") != std::string::npos;
    cost = table->cost(ev.model, tu);
  }
  ev.counts.costMicroUsd = cost.microUsd();
  ev.counts.billedMicroUsd = billedMicroUsd(cost, keyRate, globalRate_);
  // Labels: the route's provider and the price table key (bounded by the table), never the
  // client's text, and never the key (cardinality).
  std::string provider = ev.provider.empty() ? "unknown" : ev.provider;
  std::string model = cost.priced ? cost.matchedModel : "unknown";
  static const std::pair<const char*, int64_t TokenCounts::*> kKinds[kTokenKinds] = {
      {"input", &TokenCounts::inputTokens},
      {"output", &TokenCounts::outputTokens},
      {"cache_creation_5m", &TokenCounts::cacheCreate5mTokens},
      {"cache_creation_1h", &TokenCounts::cacheCreate1hTokens},
      {"cache_read", &TokenCounts::cacheReadTokens}};
  // The series of this (provider, model), registered on first use: one lookup here instead of
  // up to seven in the registry per request.
  Counter* tokens[kTokenKinds] = {};
  Counter* spent = nullptr;
  Counter* billed = nullptr;
  {
    std::lock_guard<std::mutex> lock(modelCountersMu_);
    ModelCounters& mc = modelCounters_[provider + '\n' + model];
    MetricsRegistry& m = *d_.metrics;
    Labels labels = {{"provider", provider}, {"model", model}};
    for (size_t k = 0; k < kTokenKinds; ++k) {
      if (ev.counts.*kKinds[k].second > 0 && mc.tokens[k] == nullptr) {
        Labels l = labels;
        l.emplace_back("kind", kKinds[k].first);
        mc.tokens[k] = m.counter("relaygate_model_tokens_total",
                                 "Tokens relayed, by provider, model and kind", l);
      }
      tokens[k] = mc.tokens[k];
    }
    if (cost.priced && mc.cost == nullptr) {
      mc.cost = m.counter("relaygate_cost_micro_usd_total",
                          "Real (unrated) cost of relayed requests, micro-USD", labels);
      mc.billed = m.counter(
          "relaygate_billed_micro_usd_total",
          "Billed cost (after key and global rates) of relayed requests, micro-USD", labels);
    }
    spent = mc.cost;
    billed = mc.billed;
  }
  for (size_t k = 0; k < kTokenKinds; ++k) {
    int64_t n = ev.counts.*kKinds[k].second;
    if (n > 0) {
      tokens[k]->add(static_cast<uint64_t>(n));
    }
  }
  if (!cost.priced) {
    unpricedRequests_->add(1);
    return;
  }
  spent->add(static_cast<uint64_t>(std::max<int64_t>(0, ev.counts.costMicroUsd)));
  billed->add(static_cast<uint64_t>(std::max<int64_t>(0, ev.counts.billedMicroUsd)));
}

void Gateway::bookUsage(Ctx& c) {
  if (c.usageBooked || !c.hs.usageReported || !c.key) {
    return;
  }
  c.usageBooked = true;
  const rg_usage& u = c.hs.usage;
  UsageEvent ev;
  ev.requestId = c.requestId;
  ev.keyId = c.key->id;
  ev.accountId = c.accountId;
  ev.model = !c.model.empty() ? c.model : c.hs.usageModel;
  ev.unixMs = d_.clock->nowUnixMs();
  const TimeZone& tz = d_.timeZone != nullptr ? *d_.timeZone : utcZone();
  ev.hour = tz.hourBucket(ev.unixMs);
  ev.day = tz.dayBucket(ev.unixMs);
  ev.month = tz.monthBucket(ev.unixMs);
  ev.provider = c.route != nullptr ? c.route->spec.permission : std::string();
  ev.upstreamModel = c.picked ? c.pick.upstreamModel : std::string();
  ev.status = c.status != 0 ? c.status : 200;
  ev.stream = c.stream;
  ev.firstByteMs = c.firstByteMs;
  ev.totalMs = static_cast<int64_t>(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.start)
          .count());
  const std::string* ua = findHeader(c.headers, "user-agent");
  ev.client = ua != nullptr ? clientFamily(*ua) : std::string();
  ev.counts.requests = 1;
  // Counts come from the upstream's JSON: bounded before they become money or sums.
  auto tokens = [](uint64_t n) { return static_cast<int64_t>(std::min(n, kMaxRequestTokens)); };
  ev.counts.inputTokens = tokens(u.input_tokens);
  ev.counts.outputTokens = tokens(u.output_tokens);
  ev.counts.cacheCreate5mTokens = tokens(u.cache_creation_5m_tokens);
  ev.counts.cacheCreate1hTokens = tokens(u.cache_creation_1h_tokens);
  ev.counts.cacheReadTokens = tokens(u.cache_read_tokens);
  tokensInput_->add(static_cast<uint64_t>(ev.counts.inputTokens));
  tokensOutput_->add(static_cast<uint64_t>(ev.counts.outputTokens));
  tokensCache5m_->add(static_cast<uint64_t>(ev.counts.cacheCreate5mTokens));
  tokensCache1h_->add(static_cast<uint64_t>(ev.counts.cacheCreate1hTokens));
  tokensCacheRead_->add(static_cast<uint64_t>(ev.counts.cacheReadTokens));
  priceUsage(ev, Rate{c.key->ratePpm});
  settle(c, &ev);
}

void Gateway::settle(Ctx& c, const UsageEvent* ev) {
  if (!c.key || (ev == nullptr && !c.reserved)) {
    return;
  }
  SettleRequest sr;
  sr.keyId = c.key->id;
  sr.requestId = c.requestId;
  sr.usage = ev;
  sr.weekly = c.weekly;
  sr.week = c.week;
  sr.weekTtlMs = kWeekTtlMs;
  auto r = d_.store->admission().settle(sr);
  if (!r) {
    // The reservation expires by itself; the usage is lost only if the store stays down, and
    // the log line says so with everything needed to book it by hand.
    spdlog::error(
        "usage for request {} (key {}, model {}, {} input / {} output tokens, {} micro-USD) "
        "could not be stored: {}",
        c.requestId, c.key->id, ev != nullptr ? ev->model : "-",
        ev != nullptr ? ev->counts.inputTokens : 0, ev != nullptr ? ev->counts.outputTokens : 0,
        ev != nullptr ? ev->counts.billedMicroUsd : 0, r.status().message());
    if (c.reserved) {
      (void)d_.store->admission().release(c.key->id, c.requestId);  // best effort
    }
  }
  if (c.reserved) {
    c.reserved = false;
    leasesHeld_->add(-1);
  }
}

void Gateway::sendBody(Ctx& c, int status, const std::string& contentType,
                       const std::string& body) {
  c.status = status;
  c.resp.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  c.resp.set("X-Request-ID", c.requestId);
  // An unread request body would be parsed as the next request on this connection.
  if ((c.hasBody && !c.bodyConsumed) || draining_.load()) {
    c.resp.setKeepAlive(false);
  }
  c.resp.setContentType(contentType);
  c.resp.setContentLength64(static_cast<Poco::Int64>(body.size()));
  c.responded = true;
  if (c.method == "HEAD") {
    c.resp.send();
    return;
  }
  c.resp.send().write(body.data(), static_cast<std::streamsize>(body.size()));
  c.bytesOut = body.size();
}

void Gateway::sendError(Ctx& c, int status, const std::string& message, const std::string& type,
                        int retryAfterSeconds, const std::string& code,
                        const std::string& extraMembers) {
  if (retryAfterSeconds >= 0) {
    c.resp.set("Retry-After", std::to_string(retryAfterSeconds));
  }
  if (c.note.empty()) {
    c.note = message;
  }
  sendBody(c, status, "application/json",
           errorBody(c.shape, status, message, type, code, extraMembers));
}

void Gateway::finish(Ctx& c) {
  if (c.picked) {
    d_.scheduler->release(c.pick);
    c.picked = false;
  }
  if (c.route != nullptr) {
    c.route->plugin->streamDone(&c.hs);
    try {
      bookUsage(c);
    } catch (const std::exception& e) {
      spdlog::error("usage for request {} not booked: {}", c.requestId, e.what());
    }
  }
  if (c.reserved) {
    // No usage to book (an error, a local answer, no usage reported): free the reservation.
    Status s = d_.store->admission().release(c.key->id, c.requestId);
    if (!s) {
      spdlog::warn("reservation of request {} (key {}) not released ({}); it expires by itself",
                   c.requestId, c.key->id, s.message());
    }
    c.reserved = false;
    leasesHeld_->add(-1);
  }
  int status = c.status == 0 ? 500 : c.status;
  d_.metrics
      ->counter("relaygate_requests_total", "Requests by route and status",
                {{"route", c.routeLabel}, {"status", std::to_string(status)}})
      ->add();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.start).count();
  spdlog::info(
      "access rid={} method={} path={} status={} key={} account={} model={} ms={:.3f} "
      "bytes={}{}{}",
      c.requestId, c.method, c.path, status, c.key ? c.key->id : "-",
      c.accountId.empty() ? "-" : c.accountId, c.model.empty() ? "-" : c.model, ms, c.bytesOut,
      c.note.empty() ? "" : " note=", c.note);
}

}  // namespace rg
