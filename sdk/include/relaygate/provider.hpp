#pragma once
// relaygate plugin SDK, C++ layer (header-only, C++17, depends on abi.h and the standard library).
//
// Write a provider as a class derived from rg::sdk::Provider, override the hooks you need, and
// declare it once at global scope:
//
//   class Echo : public rg::sdk::Provider {
//   public:
//     Echo(rg::sdk::Host host, std::string_view configJson) : Provider(host) {}
//     std::vector<rg::sdk::Route> routes() override { ... }
//     rg::sdk::Status handleLocal(rg::sdk::Stream&, const rg::sdk::Request&,
//                                 rg::sdk::ResponseWriter&) override { ... }
//   };
//   RG_DECLARE_PROVIDER("echo", "1.0.0", "Echoes requests", Echo)
//
// The macro defines the exported manifest `rg_plugin_manifest_v1` and a static vtable whose
// trampolines never let an exception escape: a thrown rg::sdk::Error becomes its status, any other
// exception RG_E_INTERNAL, both with the message passed to host->set_error().
//
// Optional hooks you do not override stay NULL in the vtable, so the host applies its default
// (forward headers / events / chunks unchanged, classify errors by status). Overriding is detected
// at compile time; a class may instead declare `static constexpr uint32_t kHooks = kHookSseEvent |
// ...;` to state the set explicitly.

#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "relaygate/abi.h"

namespace rg {
namespace sdk {

// ---- rg_str <-> std::string_view --------------------------------------------------------------

inline std::string_view sv(rg_str s) noexcept {
  return s.len == 0 ? std::string_view() : std::string_view(s.ptr, s.len);
}
inline rg_str str(std::string_view v) noexcept {
  return rg_str{v.data(), v.size()};
}

inline bool equalsIgnoreCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') {
      x = static_cast<char>(x - 'A' + 'a');
    }
    if (y >= 'A' && y <= 'Z') {
      y = static_cast<char>(y - 'A' + 'a');
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

// A JSON string literal (with quotes) for `s`; control characters are \u-escaped. Bytes >= 0x80
// pass through unchanged (the input is assumed to be UTF-8).
inline std::string jsonQuote(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 0xf]);
          out.push_back(kHex[static_cast<unsigned char>(c) & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

inline std::string toHex(const uint8_t* data, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xf]);
  }
  return out;
}

// ---- Status and errors ------------------------------------------------------------------------

// What a hook returns. A non-empty message on failure is passed to host->set_error().
class Status {
 public:
  Status() = default;
  Status(rg_status code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool isOk() const { return code_ == RG_OK; }
  explicit operator bool() const { return isOk(); }
  rg_status code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  rg_status code_ = RG_OK;
  std::string message_;
};

inline Status invalidArg(std::string m) {
  return Status(RG_E_INVALID_ARG, std::move(m));
}
inline Status notFound(std::string m) {
  return Status(RG_E_NOT_FOUND, std::move(m));
}
inline Status unsupported(std::string m) {
  return Status(RG_E_UNSUPPORTED, std::move(m));
}
inline Status internal(std::string m) {
  return Status(RG_E_INTERNAL, std::move(m));
}
inline Status unavailable(std::string m) {
  return Status(RG_E_UNAVAILABLE, std::move(m));
}

// Throw this (e.g. from a constructor on bad config) to fail a hook with a specific status.
class Error : public std::runtime_error {
 public:
  Error(rg_status code, const std::string& message) : std::runtime_error(message), code_(code) {}
  rg_status code() const { return code_; }

 private:
  rg_status code_;
};

inline const char* statusName(rg_status s) {
  switch (s) {
    case RG_OK:
      return "OK";
    case RG_E_INVALID_ARG:
      return "INVALID_ARG";
    case RG_E_NOT_FOUND:
      return "NOT_FOUND";
    case RG_E_UNSUPPORTED:
      return "UNSUPPORTED";
    case RG_E_CAS_MISMATCH:
      return "CAS_MISMATCH";
    case RG_E_INTERNAL:
      return "INTERNAL";
    case RG_E_UNAVAILABLE:
      return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

// ---- Views of host data -----------------------------------------------------------------------

// The headers of a request or response (borrowed; valid for the hook call).
class Headers {
 public:
  Headers() = default;
  Headers(const rg_header* h, size_t n) : h_(h), n_(n) {}
  size_t size() const { return n_; }
  const rg_header* begin() const { return h_; }
  const rg_header* end() const { return h_ + n_; }
  std::string_view name(size_t i) const { return sv(h_[i].name); }
  std::string_view value(size_t i) const { return sv(h_[i].value); }
  // The first header named `name` (case-insensitive).
  std::optional<std::string_view> get(std::string_view name) const {
    for (size_t i = 0; i < n_; ++i) {
      if (equalsIgnoreCase(sv(h_[i].name), name)) {
        return sv(h_[i].value);
      }
    }
    return std::nullopt;
  }

 private:
  const rg_header* h_ = nullptr;
  size_t n_ = 0;
};

// An inbound client request (borrowed; valid for the hook call).
class Request {
 public:
  explicit Request(const rg_request* r) : r_(r) {}
  uint32_t routeId() const { return r_->route_id; }
  std::string_view method() const { return sv(r_->method); }
  std::string_view path() const { return sv(r_->path); }
  std::string_view query() const { return sv(r_->query); }
  Headers headers() const { return Headers(r_->headers, r_->header_count); }
  std::optional<std::string_view> header(std::string_view name) const {
    return headers().get(name);
  }
  std::string_view body() const { return sv(r_->body); }
  std::string_view requestId() const { return sv(r_->request_id); }
  std::string_view keyId() const { return sv(r_->key_id); }
  std::string_view keyName() const { return sv(r_->key_name); }
  const rg_request* raw() const { return r_; }

 private:
  const rg_request* r_;
};

// The upstream account chosen for a RELAY request. secret(): never log it, never keep it.
class Account {
 public:
  explicit Account(const rg_account* a) : a_(a) {}
  std::string_view id() const { return sv(a_->id); }
  std::string_view name() const { return sv(a_->name); }
  std::string_view type() const { return sv(a_->type); }
  std::string_view baseUrl() const { return sv(a_->base_url); }
  std::string_view secret() const { return sv(a_->secret); }
  // ABI minor 1 fields; a minor-0 host does not fill them (its struct is shorter), so they read as
  // "no mapping" and "no settings" there.
  // The model name to send upstream; empty = send the requested name unchanged.
  std::string_view upstreamModel() const {
    return RG_HAS_FIELD(a_, upstream_model) ? sv(a_->upstream_model) : std::string_view();
  }
  // The account's non-secret type-specific settings, a JSON object; "{}" when none.
  std::string_view settingsJson() const {
    if (RG_HAS_FIELD(a_, settings_json) && a_->settings_json.len != 0) {
      return sv(a_->settings_json);
    }
    return "{}";
  }
  const rg_account* raw() const { return a_; }

 private:
  const rg_account* a_;
};

class SseEvent {
 public:
  explicit SseEvent(const rg_sse_event* e) : e_(e) {}
  std::string_view raw() const { return sv(e_->raw); }
  std::string_view event() const { return sv(e_->event); }
  std::string_view data() const { return sv(e_->data); }

 private:
  const rg_sse_event* e_;
};

class Event {
 public:
  explicit Event(const rg_event* e) : e_(e) {}
  std::string_view type() const { return sv(e_->type); }
  std::string_view json() const { return sv(e_->json); }
  uint64_t unixMs() const { return e_->unix_ms; }
  std::string_view id() const { return sv(e_->id); }

 private:
  const rg_event* e_;
};

// ---- Values the plugin produces ---------------------------------------------------------------

struct Route {
  std::string method = "POST";
  std::string path;
  uint32_t id = 0;
  rg_route_kind kind = RG_ROUTE_RELAY;
  rg_error_shape shape = RG_SHAPE_ANTHROPIC;
  std::string permission;    // e.g. "claude"; empty = none
  std::string accountTypes;  // RELAY: comma-separated, e.g. "claude-console,claude-oauth"
  uint32_t flags = 0;        // RG_ROUTE_*
};

struct RequestMeta {
  std::string model;
  bool stream = false;
  std::string sessionKey;
  // ABI minor 2: what the host reserves against cost and token limits before the upstream call.
  // The SDK hands them over only when the host's rg_request_meta has room for them (a minor-1 host
  // never sees them), so a plugin may always set them.
  uint64_t maxOutputTokens = 0;      // the request's own output bound; 0 = the client gave none
  uint64_t inputTokensEstimate = 0;  // estimated prompt tokens; 0 = none (host: body bytes / 4)
};

// The shared convention for RequestMeta::inputTokensEstimate, so every plugin's estimate means the
// same: one token per 4 characters of prompt text (rounded up), a fixed count per image or other
// binary media block (its base64 size says nothing about its token cost).
constexpr uint64_t kCharsPerToken = 4;
constexpr uint64_t kMediaBlockTokens = 1600;
constexpr uint64_t tokensForChars(uint64_t chars) {
  return chars / kCharsPerToken + (chars % kCharsPerToken != 0 ? 1 : 0);
}

struct ErrorInfo {
  rg_error_class cls = RG_EC_NONE;
  uint64_t retryAfterMs = 0;
  uint64_t untilUnixMs = 0;
  std::string scope;   // "" = whole account, else e.g. a model family
  std::string reason;  // short, human-readable
};

struct Usage {
  uint64_t inputTokens = 0;
  uint64_t outputTokens = 0;
  uint64_t cacheCreation5mTokens = 0;
  uint64_t cacheCreation1hTokens = 0;
  uint64_t cacheReadTokens = 0;
  std::string model;
};

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  uint32_t timeoutMs = 0;  // 0 = host default
};

struct HttpResponse {
  uint32_t status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// ---- Host services ----------------------------------------------------------------------------

// Cheap to copy; valid from create() until destroy(). Callable from any hook on any thread.
class Host {
 public:
  Host() = default;
  Host(rg_host_plugin* p, const rg_host_api* api) : p_(p), api_(api) {}

  rg_host_plugin* handle() const { return p_; }
  const rg_host_api* api() const { return api_; }

  // Logging; the host adds the plugin name. Never pass secrets.
  void log(rg_log_level level, std::string_view msg) const { api_->log(p_, level, str(msg)); }
  bool logEnabled(rg_log_level level) const { return api_->log_enabled(p_, level) != 0; }
  void debug(std::string_view m) const { log(RG_LOG_DEBUG, m); }
  void info(std::string_view m) const { log(RG_LOG_INFO, m); }
  void warn(std::string_view m) const { log(RG_LOG_WARN, m); }
  void error(std::string_view m) const { log(RG_LOG_ERROR, m); }
  // Detail for the status the current hook is about to return (the SDK calls it for you when a
  // hook returns a Status with a message or throws).
  void setError(std::string_view msg) const { api_->set_error(p_, str(msg)); }

  uint64_t nowUnixMs() const { return api_->now_unix_ms(); }
  uint64_t monotonicNs() const { return api_->monotonic_ns(); }

  // Plugin KV (namespaced per plugin by the host). kvGet: nullopt when the key is absent; a
  // failing store is reported through `status` (when given) and also yields nullopt.
  std::optional<std::string> kvGet(std::string_view key, rg_status* status = nullptr) const {
    std::optional<std::string> out;
    rg_status s = api_->kv_get(p_, str(key), &out, [](void* user, rg_str value) {
      static_cast<std::optional<std::string>*>(user)->emplace(value.ptr, value.len);
    });
    if (status != nullptr) {
      *status = s;
    }
    if (s != RG_OK) {
      out.reset();
    }
    return out;
  }
  rg_status kvSet(std::string_view key, std::string_view value, uint64_t ttlMs = 0) const {
    return api_->kv_set(p_, str(key), str(value), ttlMs);
  }
  rg_status kvDel(std::string_view key) const { return api_->kv_del(p_, str(key)); }

  // Exported as relaygate_plugin_<plugin>_<name>_total.
  void counterAdd(std::string_view name, uint64_t delta = 1) const {
    api_->counter_add(p_, str(name), delta);
  }

  std::array<uint8_t, 32> sha256(std::string_view msg) const {
    std::array<uint8_t, 32> out{};
    api_->sha256(str(msg), out.data());
    return out;
  }
  std::array<uint8_t, 32> hmacSha256(std::string_view key, std::string_view msg) const {
    std::array<uint8_t, 32> out{};
    api_->hmac_sha256(str(key), str(msg), out.data());
    return out;
  }
  std::string sha256Hex(std::string_view msg) const {
    auto d = sha256(msg);
    return toHex(d.data(), d.size());
  }
  std::string base64(std::string_view in) const {
    size_t need = api_->base64_encode(str(in), nullptr, 0);
    std::string out(need, '\0');
    size_t got = api_->base64_encode(str(in), out.data(), out.size());
    out.resize(got <= need ? got : need);
    return out;
  }

  // Blocking outbound HTTP (notifiers, from their own thread). RG_E_UNAVAILABLE = no response.
  rg_status httpCall(const HttpRequest& req, HttpResponse* out) const {
    std::vector<rg_header> hs;
    hs.reserve(req.headers.size());
    for (const auto& h : req.headers) {
      hs.push_back(rg_header{str(h.first), str(h.second)});
    }
    rg_http_request r{};
    r.struct_size = sizeof(r);
    r.method = str(req.method);
    r.url = str(req.url);
    r.headers = hs.data();
    r.header_count = hs.size();
    r.body = str(req.body);
    r.timeout_ms = req.timeoutMs;
    return api_->http_call(
        p_, &r, out, [](void* user, uint32_t status, const rg_header* h, size_t n, rg_str body) {
          auto* resp = static_cast<HttpResponse*>(user);
          if (resp == nullptr) {
            return;
          }
          resp->status = status;
          resp->headers.clear();
          for (size_t i = 0; i < n; ++i) {
            resp->headers.emplace_back(std::string(sv(h[i].name)), std::string(sv(h[i].value)));
          }
          resp->body.assign(sv(body));
        });
  }

 private:
  rg_host_plugin* p_ = nullptr;
  const rg_host_api* api_ = nullptr;
};

// ---- Per-request state ------------------------------------------------------------------------

namespace detail {
// What the SDK keeps behind stream_set_data: one typed object per stream, freed in on_stream_done.
struct StreamBox {
  void* obj = nullptr;
  void (*deleter)(void*) = nullptr;
};
}  // namespace detail

// One client request. THREADING: use only from hooks of that stream.
class Stream {
 public:
  Stream(const rg_host_api* api, rg_host_stream* st) : api_(api), st_(st) {}

  // Totals so far; the host replaces, never adds.
  void reportUsage(const Usage& u) const {
    rg_usage r{};
    r.struct_size = sizeof(r);
    r.input_tokens = u.inputTokens;
    r.output_tokens = u.outputTokens;
    r.cache_creation_5m_tokens = u.cacheCreation5mTokens;
    r.cache_creation_1h_tokens = u.cacheCreation1hTokens;
    r.cache_read_tokens = u.cacheReadTokens;
    r.model = str(u.model);
    api_->report_usage(st_, &r);
  }

  // A per-stream object of type T, default-constructed on first use and destroyed after
  // onStreamDone(). All hooks of a plugin must use the same T.
  template <typename T>
  T& state() {
    auto* box = static_cast<detail::StreamBox*>(api_->stream_get_data(st_));
    if (box == nullptr) {
      box = new detail::StreamBox();
      api_->stream_set_data(st_, box);
    }
    if (box->obj == nullptr) {
      box->obj = new T();
      box->deleter = [](void* p) { delete static_cast<T*>(p); };
    }
    return *static_cast<T*>(box->obj);
  }
  template <typename T>
  T* stateIfAny() const {
    auto* box = static_cast<detail::StreamBox*>(api_->stream_get_data(st_));
    return box == nullptr ? nullptr : static_cast<T*>(box->obj);
  }

  rg_host_stream* raw() const { return st_; }

 private:
  const rg_host_api* api_;
  rg_host_stream* st_;
};

// ---- Writers over host sinks ------------------------------------------------------------------

// The upstream request of transform_request.
class UpstreamWriter {
 public:
  UpstreamWriter(const rg_host_api* api, rg_host_sink* s) : api_(api), s_(s) {}
  void start(std::string_view method, std::string_view url) {
    api_->sink_start(s_, 0, str(method), str(url));
  }
  void header(std::string_view name, std::string_view value) {
    api_->sink_header(s_, str(name), str(value));
  }
  void body(std::string_view bytes) { api_->sink_append(s_, str(bytes)); }

 private:
  const rg_host_api* api_;
  rg_host_sink* s_;
};

// The client response of on_response_headers / handle_local.
class ResponseWriter {
 public:
  ResponseWriter(const rg_host_api* api, rg_host_sink* s) : api_(api), s_(s) {}
  void status(uint32_t code) { api_->sink_start(s_, code, rg_str{nullptr, 0}, rg_str{nullptr, 0}); }
  void header(std::string_view name, std::string_view value) {
    api_->sink_header(s_, str(name), str(value));
  }
  void body(std::string_view bytes) { api_->sink_append(s_, str(bytes)); }
  // status + content-type application/json + body.
  void json(uint32_t code, std::string_view jsonBody) {
    status(code);
    header("content-type", "application/json");
    body(jsonBody);
  }

 private:
  const rg_host_api* api_;
  rg_host_sink* s_;
};

// The replacement sink of on_sse_event / on_body_chunk. Writing nothing forwards the original.
class Replacement {
 public:
  Replacement(const rg_host_api* api, rg_host_sink* s) : api_(api), s_(s) {}
  // Append bytes sent instead of the original (call several times to build it up).
  void replace(std::string_view bytes) {
    replaced_ = true;
    api_->sink_append(s_, str(bytes));
  }
  void drop() {
    dropped_ = true;
    api_->sink_discard(s_);
  }
  bool replaced() const { return replaced_; }
  bool dropped() const { return dropped_; }

 private:
  const rg_host_api* api_;
  rg_host_sink* s_;
  bool replaced_ = false;
  bool dropped_ = false;
};

// ---- Hook flags -------------------------------------------------------------------------------

constexpr uint32_t kHookParseRequest = 1u << 0;
constexpr uint32_t kHookResponseHeaders = 1u << 1;
constexpr uint32_t kHookSseEvent = 1u << 2;
constexpr uint32_t kHookBodyChunk = 1u << 3;
constexpr uint32_t kHookClassifyError = 1u << 4;
constexpr uint32_t kHookHandleLocal = 1u << 5;

// ---- The provider base class ------------------------------------------------------------------

class Provider {
 public:
  explicit Provider(Host host) : host_(host) {}
  virtual ~Provider() = default;
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;

  // REQUIRED. Called once after construction; the SDK keeps the result until destroy.
  virtual std::vector<Route> routes() = 0;

  // Optional hooks; see abi.h for when each runs. The defaults are never called when not
  // overridden (the slot stays NULL) unless the class declares kHooks including them.
  virtual Status parseRequest(Stream& /*st*/, const Request& /*req*/, RequestMeta& /*out*/) {
    return Status::ok();
  }
  // REQUIRED when a RELAY route is declared.
  virtual Status transformRequest(Stream& /*st*/, const Request& /*req*/, const Account& /*acct*/,
                                  UpstreamWriter& /*out*/) {
    return unsupported("transformRequest not implemented");
  }
  virtual Status onResponseHeaders(Stream& /*st*/, uint32_t status, Headers headers,
                                   ResponseWriter& out) {
    out.status(status);
    for (const auto& h : headers) {
      out.header(sv(h.name), sv(h.value));
    }
    return Status::ok();
  }
  virtual Status onSseEvent(Stream& /*st*/, const SseEvent& /*ev*/, Replacement& /*out*/) {
    return Status::ok();
  }
  virtual Status onBodyChunk(Stream& /*st*/, std::string_view /*chunk*/, bool /*endOfStream*/,
                             Replacement& /*out*/) {
    return Status::ok();
  }
  // Not a Status: classification cannot fail (a throw falls back to the host default).
  virtual ErrorInfo classifyError(Stream& /*st*/, uint32_t /*status*/, Headers /*headers*/,
                                  std::string_view /*body*/) {
    return ErrorInfo{};
  }
  virtual Status handleLocal(Stream& /*st*/, const Request& /*req*/, ResponseWriter& /*out*/) {
    return unsupported("handleLocal not implemented");
  }
  // Always wired (cheap); per-stream state() is freed right after it returns.
  virtual void onStreamDone(Stream& /*st*/) {}

  const Host& host() const { return host_; }

 private:
  Host host_;
};

class Notifier {
 public:
  explicit Notifier(Host host) : host_(host) {}
  virtual ~Notifier() = default;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // REQUIRED. On the host's notifier thread, one event at a time. unavailable() = retry later.
  virtual Status onEvent(const Event& ev) = 0;

  const Host& host() const { return host_; }

 private:
  Host host_;
};

// ---- Glue: trampolines and vtable -------------------------------------------------------------

namespace detail {

// Reports an in-flight exception through set_error and maps it to a status. Call only in a catch.
inline rg_status fromCurrentException(const Host& h) noexcept {
  try {
    throw;
  } catch (const Error& e) {
    h.setError(e.what());
    return e.code() == RG_OK ? RG_E_INTERNAL : e.code();
  } catch (const std::bad_alloc&) {
    h.setError("out of memory");
    return RG_E_INTERNAL;
  } catch (const std::exception& e) {
    h.setError(e.what());
    return RG_E_INTERNAL;
  } catch (...) {
    h.setError("unknown exception");
    return RG_E_INTERNAL;
  }
}

inline rg_status report(const Host& h, const Status& s) noexcept {
  if (!s.isOk() && !s.message().empty()) {
    h.setError(s.message());
  }
  return s.code();
}

// True when `Class` (or a base between it and Provider) declares member `M`: the type of
// &Class::M names the class that declared the function.
template <typename Ptr, typename Base>
struct DeclaredIn : std::false_type {};
template <typename R, typename C, typename... A, typename Base>
struct DeclaredIn<R (C::*)(A...), Base> : std::is_same<C, Base> {};

template <typename C, typename = void>
struct HasHookFlags : std::false_type {};
template <typename C>
struct HasHookFlags<C, std::void_t<decltype(C::kHooks)>> : std::true_type {};

template <typename C>
constexpr uint32_t hooksOf() {
  if constexpr (HasHookFlags<C>::value) {
    return static_cast<uint32_t>(C::kHooks);
  } else {
    uint32_t f = 0;
    f |= DeclaredIn<decltype(&C::parseRequest), Provider>::value ? 0u : kHookParseRequest;
    f |= DeclaredIn<decltype(&C::onResponseHeaders), Provider>::value ? 0u : kHookResponseHeaders;
    f |= DeclaredIn<decltype(&C::onSseEvent), Provider>::value ? 0u : kHookSseEvent;
    f |= DeclaredIn<decltype(&C::onBodyChunk), Provider>::value ? 0u : kHookBodyChunk;
    f |= DeclaredIn<decltype(&C::classifyError), Provider>::value ? 0u : kHookClassifyError;
    f |= DeclaredIn<decltype(&C::handleLocal), Provider>::value ? 0u : kHookHandleLocal;
    return f;
  }
}

// The instance handed to the host: the object plus the route storage the ABI says stays valid.
struct ProviderBox {
  Host host;
  std::unique_ptr<Provider> obj;
  std::vector<Route> routes;
  std::vector<rg_route> raw;
};

// parse_request / classify_error strings must outlive the hook return until the host copies them
// (immediately, on the same thread).
inline RequestMeta& metaScratch() {
  thread_local RequestMeta m;
  return m;
}
inline ErrorInfo& errorScratch() {
  thread_local ErrorInfo e;
  return e;
}

template <typename C>
struct ProviderGlue {
  static_assert(std::is_base_of<Provider, C>::value,
                "RG_DECLARE_PROVIDER: Class must derive "
                "from rg::sdk::Provider");
  static_assert(std::is_constructible<C, Host, std::string_view>::value,
                "RG_DECLARE_PROVIDER: Class needs a constructor (rg::sdk::Host, std::string_view)");

  static ProviderBox* box(rg_instance inst) { return static_cast<ProviderBox*>(inst); }

  static rg_status create(rg_host_plugin* p, const rg_host_api* api, rg_str config,
                          rg_instance* out) noexcept {
    Host h(p, api);
    try {
      auto b = std::make_unique<ProviderBox>();
      b->host = h;
      b->obj = std::make_unique<C>(h, sv(config));
      *out = b.release();
      return RG_OK;
    } catch (...) {
      return fromCurrentException(h);
    }
  }
  static void destroy(rg_instance inst) noexcept {
    try {
      delete box(inst);
    } catch (...) {  // a throwing destructor terminates anyway; nothing to report to
    }
  }
  static rg_status declareRoutes(rg_instance inst, const rg_route** out, size_t* count) noexcept {
    ProviderBox* b = box(inst);
    try {
      b->routes = b->obj->routes();
      b->raw.clear();
      for (const Route& r : b->routes) {
        rg_route x{};
        x.struct_size = sizeof(x);
        x.method = str(r.method);
        x.path = str(r.path);
        x.route_id = r.id;
        x.kind = r.kind;
        x.shape = r.shape;
        x.permission = str(r.permission);
        x.account_types = str(r.accountTypes);
        x.flags = r.flags;
        b->raw.push_back(x);
      }
      *out = b->raw.data();
      *count = b->raw.size();
      return RG_OK;
    } catch (...) {
      return fromCurrentException(b->host);
    }
  }
  static rg_status parseRequest(rg_instance inst, rg_host_stream* st, const rg_request* req,
                                rg_request_meta* out) noexcept {
    ProviderBox* b = box(inst);
    try {
      Stream s(b->host.api(), st);
      RequestMeta& m = metaScratch();
      m = RequestMeta{};
      Status r = b->obj->parseRequest(s, Request(req), m);
      out->model = str(m.model);
      out->stream = m.stream ? 1 : 0;
      out->session_key = str(m.sessionKey);
      // Minor-2 fields: only inside the struct the host declared (a minor-1 host's is shorter).
      if (RG_HAS_FIELD(out, max_output_tokens)) {
        out->max_output_tokens = m.maxOutputTokens;
      }
      if (RG_HAS_FIELD(out, input_tokens_estimate)) {
        out->input_tokens_estimate = m.inputTokensEstimate;
      }
      return report(b->host, r);
    } catch (...) {
      return fromCurrentException(b->host);
    }
  }
  static rg_status transformRequest(rg_instance inst, rg_host_stream* st, const rg_request* req,
                                    const rg_account* acct, rg_host_sink* sink) noexcept {
    ProviderBox* b = box(inst);
    try {
      Stream s(b->host.api(), st);
      UpstreamWriter w(b->host.api(), sink);
      return report(b->host, b->obj->transformRequest(s, Request(req), Account(acct), w));
    } catch (...) {
      return fromCurrentException(b->host);
    }
  }
  static rg_status onResponseHeaders(rg_instance inst, rg_host_stream* st, uint32_t status,
                                     const rg_header* h, size_t n, rg_host_sink* sink) noexcept {
    ProviderBox* b = box(inst);
    try {
      Stream s(b->host.api(), st);
      ResponseWriter w(b->host.api(), sink);
      return report(b->host, b->obj->onResponseHeaders(s, status, Headers(h, n), w));
    } catch (...) {
      return fromCurrentException(b->host);
    }
  }
  static rg_status onSseEvent(rg_instance inst, rg_host_stream* st, const rg_sse_event* ev,
                              rg_host_sink* sink) noexcept {
    ProviderBox* b = box(inst);
    try {
      Stream s(b->host.api(), st);
      Replacement w(b->host.api(), sink);
      return report(b->host, b->obj->onSseEvent(s, SseEvent(ev), w));
    } catch (...) {
      return fromCurrentException(b->host);
    }
  }
  static rg_status onBodyChunk(rg_instance inst, rg_host_stream* st, rg_str chunk, int32_t eos,
                               rg_host_sink* sink) noexcept {
    ProviderBox* b = box(inst);
    try {
      Stream s(b->host.api(), st);
      Replacement w(b->host.api(), sink);
      return report(b->host, b->obj->onBodyChunk(s, sv(chunk), eos != 0, w));
    } catch (...) {
      return fromCurrentException(b->host);
    }
  }
  static void classifyError(rg_instance inst, rg_host_stream* st, uint32_t status,
                            const rg_header* h, size_t n, rg_str body,
                            rg_error_info* out) noexcept {
    ProviderBox* b = box(inst);
    try {
      ErrorInfo& e = errorScratch();
      Stream s(b->host.api(), st);
      e = b->obj->classifyError(s, status, Headers(h, n), sv(body));
      out->cls = e.cls;
      out->retry_after_ms = e.retryAfterMs;
      out->until_unix_ms = e.untilUnixMs;
      out->scope = str(e.scope);
      out->reason = str(e.reason);
    } catch (...) {
      // No status to return: leave `out` as the host prepared it (its default) and say why.
      fromCurrentException(b->host);
    }
  }
  static rg_status handleLocal(rg_instance inst, rg_host_stream* st, const rg_request* req,
                               rg_host_sink* sink) noexcept {
    ProviderBox* b = box(inst);
    try {
      Stream s(b->host.api(), st);
      ResponseWriter w(b->host.api(), sink);
      return report(b->host, b->obj->handleLocal(s, Request(req), w));
    } catch (...) {
      return fromCurrentException(b->host);
    }
  }
  static void onStreamDone(rg_instance inst, rg_host_stream* st) noexcept {
    ProviderBox* b = box(inst);
    const rg_host_api* api = b->host.api();
    try {
      Stream s(api, st);
      b->obj->onStreamDone(s);
    } catch (...) {
      fromCurrentException(b->host);
    }
    auto* sb = static_cast<StreamBox*>(api->stream_get_data(st));
    if (sb != nullptr) {
      api->stream_set_data(st, nullptr);
      if (sb->obj != nullptr && sb->deleter != nullptr) {
        sb->deleter(sb->obj);
      }
      delete sb;
    }
  }

  static constexpr uint32_t kHooks = hooksOf<C>();
  static constexpr rg_provider_vtable kVtable = {
      sizeof(rg_provider_vtable),
      &create,
      &destroy,
      &declareRoutes,
      (kHooks & kHookParseRequest) ? &parseRequest : nullptr,
      &transformRequest,
      (kHooks & kHookResponseHeaders) ? &onResponseHeaders : nullptr,
      (kHooks & kHookSseEvent) ? &onSseEvent : nullptr,
      (kHooks & kHookBodyChunk) ? &onBodyChunk : nullptr,
      (kHooks & kHookClassifyError) ? &classifyError : nullptr,
      (kHooks & kHookHandleLocal) ? &handleLocal : nullptr,
      &onStreamDone,
  };
};

}  // namespace detail
}  // namespace sdk
}  // namespace rg

// Defines the plugin's manifest. Use once, at global scope, in one source file of the plugin.
#define RG_DECLARE_PROVIDER(name, version, description, Class)            \
  extern "C" RG_EXPORT const rg_plugin_manifest rg_plugin_manifest_v1 = { \
      sizeof(rg_plugin_manifest),                                         \
      RG_ABI_MAJOR,                                                       \
      RG_ABI_MINOR,                                                       \
      0,                                                                  \
      RG_KIND_PROVIDER,                                                   \
      (name),                                                             \
      (version),                                                          \
      (description),                                                      \
      &::rg::sdk::detail::ProviderGlue<Class>::kVtable};
