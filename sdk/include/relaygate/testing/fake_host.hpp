#pragma once
// relaygate plugin SDK: an in-memory host for unit tests of plugins (header-only, C++17).
//
//   rg::sdk::testing::FakeHost host;
//   auto h = host.createProvider<MyProvider>("{\"x\":1}");     // or host.loadProvider(manifest)
//   ASSERT_TRUE(h.ok()) << h.createError();
//   auto up = h.transform(req, account);                        // the captured upstream request
//   EXPECT_EQ(up.url, "https://upstream.test/v1/messages");
//   auto ev = h.sseEvent(FakeHost::sse("message_delta", "{...}"));
//   EXPECT_EQ(ev.action, SseAction::kForwarded);
//   h.done();
//   EXPECT_EQ(h.usage().outputTokens, 12u);
//
// Everything a plugin can reach is in memory and inspectable: logs, KV (with TTL against the fake
// clock), counters, reported usage, outbound http calls (answered by a handler you set).
//
// IMPORTANT: this header defines the ABI's opaque host structs (rg_host_sink, rg_host_stream,
// rg_host_plugin) for the fake. Never link it into a binary that also contains the real host
// (rg_plugin): the two definitions would clash. Plugins themselves never see either definition.
//
// The clock is process-wide (now_unix_ms takes no context in the ABI): setNowMs()/advanceMs()
// affect every FakeHost. Harnesses must be destroyed before the FakeHost that made them.

#include <dlfcn.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>

#include "relaygate/notifier.hpp"
#include "relaygate/provider.hpp"

namespace rg {
namespace sdk {
namespace testing {
class FakeHost;
}  // namespace testing
}  // namespace sdk
}  // namespace rg

// ---- The fake's definitions of the opaque host objects ----------------------------------------

struct rg_host_sink {
  bool started = false;
  uint32_t status = 0;
  std::string method;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool discarded = false;
  bool touched = false;
};

struct rg_host_stream {
  void* data = nullptr;
  bool usageReported = false;
  int usageReports = 0;
  rg::sdk::Usage usage;
  bool hookRan = false;
  bool doneCalled = false;
};

struct rg_host_plugin {
  rg::sdk::testing::FakeHost* host = nullptr;
  std::string name;
};

namespace rg {
namespace sdk {
namespace testing {

// ---- Small self-contained crypto (the fake must not need OpenSSL) ------------------------------

namespace detail {

class Sha256 {
 public:
  Sha256() { reset(); }
  void reset() {
    static const uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::memcpy(h_, kInit, sizeof(h_));
    len_ = 0;
    used_ = 0;
  }
  void update(const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      buf_[used_++] = p[i];
      if (used_ == 64) {
        block(buf_);
        used_ = 0;
      }
    }
    len_ += n;
  }
  void update(std::string_view s) { update(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
  void finish(uint8_t out[32]) {
    uint64_t bits = len_ * 8;
    uint8_t pad = 0x80;
    update(&pad, 1);
    uint8_t zero = 0;
    while (used_ != 56) {
      update(&zero, 1);
    }
    uint8_t lenBytes[8];
    for (int i = 0; i < 8; ++i) {
      lenBytes[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    }
    update(lenBytes, 8);
    for (int i = 0; i < 8; ++i) {
      out[4 * i] = static_cast<uint8_t>(h_[i] >> 24);
      out[4 * i + 1] = static_cast<uint8_t>(h_[i] >> 16);
      out[4 * i + 2] = static_cast<uint8_t>(h_[i] >> 8);
      out[4 * i + 3] = static_cast<uint8_t>(h_[i]);
    }
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void block(const uint8_t* p) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) |
             (uint32_t(p[4 * i + 2]) << 8) | uint32_t(p[4 * i + 3]);
    }
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = h + s1 + ch + k[i] + w[i];
      uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = s0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  uint32_t h_[8];
  uint8_t buf_[64];
  uint64_t len_;
  size_t used_;
};

inline void sha256(std::string_view msg, uint8_t out[32]) {
  Sha256 s;
  s.update(msg);
  s.finish(out);
}

inline void hmacSha256(std::string_view key, std::string_view msg, uint8_t out[32]) {
  uint8_t k[64] = {0};
  if (key.size() > 64) {
    sha256(key, k);
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  uint8_t ipad[64];
  uint8_t opad[64];
  for (int i = 0; i < 64; ++i) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  uint8_t inner[32];
  Sha256 s;
  s.update(ipad, 64);
  s.update(msg);
  s.finish(inner);
  s.reset();
  s.update(opad, 64);
  s.update(inner, 32);
  s.finish(out);
}

inline std::string base64(std::string_view in) {
  static const char kAlpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    out.push_back(kAlpha[(v >> 18) & 63]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out.push_back(kAlpha[(v >> 6) & 63]);
    out.push_back(kAlpha[v & 63]);
  }
  if (in.size() - i == 1) {
    uint32_t v = uint32_t(p[i]) << 16;
    out.push_back(kAlpha[(v >> 18) & 63]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out += "==";
  } else if (in.size() - i == 2) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
    out.push_back(kAlpha[(v >> 18) & 63]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out.push_back(kAlpha[(v >> 6) & 63]);
    out += "=";
  }
  return out;
}

inline std::atomic<uint64_t>& fakeNowMs() {
  static std::atomic<uint64_t> now{1'700'000'000'000ull};
  return now;
}
inline std::atomic<uint64_t>& fakeMonotonicNs() {
  static std::atomic<uint64_t> now{1'000'000'000ull};
  return now;
}
// set_error text of the hook running on this thread.
inline std::string& lastError() {
  thread_local std::string e;
  return e;
}

}  // namespace detail

// ---- Inputs and results ------------------------------------------------------------------------

using HeaderList = std::vector<std::pair<std::string, std::string>>;

inline std::optional<std::string> findHeader(const HeaderList& hs, std::string_view name) {
  for (const auto& h : hs) {
    if (equalsIgnoreCase(h.first, name)) {
      return h.second;
    }
  }
  return std::nullopt;
}

struct TestRequest {
  uint32_t routeId = 0;
  std::string method = "POST";
  std::string path = "/";
  std::string query;
  HeaderList headers;
  std::string body;
  std::string requestId = "req-test-1";
  std::string keyId = "key-test-1";
  std::string keyName = "test key";

  TestRequest& withHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

struct TestAccount {
  std::string id = "acct-test-1";
  std::string name = "test account";
  std::string type;
  std::string baseUrl = "https://upstream.test";
  std::string secret = "sk-test-secret";
  std::string upstreamModel;        // rg_account.upstream_model (minor 1)
  std::string settingsJson = "{}";  // rg_account.settings_json (minor 1)
  // struct_size the fake host reports; 0 = sizeof(rg_account). Set it to
  // offsetof(rg_account, upstream_model) to act as a minor-0 host that knows no minor-1 field.
  uint32_t structSize = 0;
};

struct HookResult {
  rg_status status = RG_OK;
  std::string error;  // set_error() text
  bool ok() const { return status == RG_OK; }
};

struct ParseResult : HookResult {
  bool hookPresent = false;
  std::string model;
  bool stream = false;
  std::string sessionKey;
  // ABI minor 2; 0 when the meta struct the fake handed over had no room for them.
  uint64_t maxOutputTokens = 0;
  uint64_t inputTokensEstimate = 0;
  // The plugin wrote past the struct_size it was given, or changed struct_size (both are bugs:
  // a shorter host struct has nothing there to write to).
  bool wroteBeyondStructSize = false;
  bool structSizeChanged = false;
};

// What a hook wrote to a sink (upstream request or client response).
struct SinkResult : HookResult {
  bool hookPresent = false;
  bool started = false;
  uint32_t httpStatus = 0;  // response sinks
  std::string method;       // upstream sinks
  std::string url;          // upstream sinks
  HeaderList headers;
  std::string body;
  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
};

enum class SseAction { kForwarded, kReplaced, kDropped };

struct ReplacementResult : HookResult {
  bool hookPresent = false;
  SseAction action = SseAction::kForwarded;
  std::string bytes;  // what the client receives for this event / chunk
};

struct ClassifyResult {
  bool hookPresent = false;
  rg_error_class cls = RG_EC_NONE;
  uint64_t retryAfterMs = 0;
  uint64_t untilUnixMs = 0;
  std::string scope;
  std::string reason;
  std::string error;
};

struct LogEntry {
  rg_log_level level;
  std::string message;
};

struct HttpCallRecord {
  std::string method;
  std::string url;
  HeaderList headers;
  std::string body;
  uint32_t timeoutMs = 0;
};

struct CannedHttpResponse {
  rg_status result = RG_OK;  // != RG_OK: no response (on_response not called)
  uint32_t status = 200;
  HeaderList headers;
  std::string body;
};

// The host's default classification by HTTP status (mirrors the real host).
inline rg_error_class defaultErrorClass(uint32_t status) {
  switch (status) {
    case 401:
    case 403:
      return RG_EC_AUTH;
    case 429:
      return RG_EC_RATE_LIMITED;
    case 529:
      return RG_EC_OVERLOADED;
    default:
      break;
  }
  if (status >= 500) {
    return RG_EC_TRANSIENT;
  }
  if (status >= 400) {
    return RG_EC_CLIENT;
  }
  return RG_EC_NONE;
}

// Splits one framed SSE event into its `event` and `data` fields (as the host does).
inline void parseSse(std::string_view raw, std::string* event, std::string* data) {
  event->clear();
  data->clear();
  bool firstData = true;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find('\n', pos);
    std::string_view line = raw.substr(pos, eol == std::string_view::npos ? raw.npos : eol - pos);
    pos = eol == std::string_view::npos ? raw.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value =
        colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
    if (field == "event") {
      event->assign(value);
    } else if (field == "data") {
      if (!firstData) {
        data->push_back('\n');
      }
      data->append(value);
      firstData = false;
    }
  }
}

// ---- Harnesses ---------------------------------------------------------------------------------

// Owns one provider instance created through its vtable (exactly as the host does) and one
// current stream. Hooks that the plugin leaves NULL get the host's default behaviour.
class ProviderHarness {
 public:
  ProviderHarness(FakeHost& host, const rg_provider_vtable* vt, std::string_view configJson);
  ~ProviderHarness() { close(); }
  ProviderHarness(ProviderHarness&& o) noexcept { *this = std::move(o); }
  ProviderHarness& operator=(ProviderHarness&& o) noexcept {
    if (this != &o) {
      close();
      host_ = o.host_;
      vt_ = o.vt_;
      inst_ = o.inst_;
      create_ = std::move(o.create_);
      routes_ = std::move(o.routes_);
      stream_ = std::move(o.stream_);
      o.inst_ = nullptr;
    }
    return *this;
  }

  bool ok() const { return create_.ok(); }
  const HookResult& createResult() const { return create_; }
  const std::string& createError() const { return create_.error; }
  const std::vector<Route>& routes() const { return routes_; }
  const rg_provider_vtable* vtable() const { return vt_; }
  rg_instance instance() const { return inst_; }

  // `metaStructSize` is the struct_size the fake host declares for rg_request_meta; 0 = sizeof
  // (this SDK's minor). Pass offsetof(rg_request_meta, max_output_tokens) to act as a minor-1 host:
  // the bytes past it are then poisoned and checked after the call (wroteBeyondStructSize).
  ParseResult parse(const TestRequest& req, uint32_t metaStructSize = 0) {
    ParseResult r;
    r.hookPresent = vt_->parse_request != nullptr;
    if (!r.hookPresent) {
      return r;
    }
    Built b(req);
    const uint32_t size = metaStructSize != 0 ? metaStructSize : uint32_t{sizeof(rg_request_meta)};
    static constexpr unsigned char kPoison = 0xA5;
    rg_request_meta m{};
    if (size < sizeof(m)) {
      std::memset(reinterpret_cast<unsigned char*>(&m) + size, kPoison, sizeof(m) - size);
    }
    m.struct_size = size;
    begin();
    r.status = vt_->parse_request(inst_, stream_.get(), &b.req, &m);
    r.error = detail::lastError();
    r.structSizeChanged = m.struct_size != size;
    for (size_t i = size; i < sizeof(m); ++i) {
      if (reinterpret_cast<const unsigned char*>(&m)[i] != kPoison) {
        r.wroteBeyondStructSize = true;
      }
    }
    m.struct_size = size;
    r.model.assign(sv(m.model));
    r.stream = m.stream != 0;
    r.sessionKey.assign(sv(m.session_key));
    r.maxOutputTokens = RG_HAS_FIELD(&m, max_output_tokens) ? m.max_output_tokens : 0;
    r.inputTokensEstimate = RG_HAS_FIELD(&m, input_tokens_estimate) ? m.input_tokens_estimate : 0;
    return r;
  }

  SinkResult transform(const TestRequest& req, const TestAccount& acct) {
    SinkResult r;
    r.hookPresent = vt_->transform_request != nullptr;
    if (!r.hookPresent) {
      r.status = RG_E_UNSUPPORTED;
      return r;
    }
    Built b(req);
    rg_account a{};
    a.struct_size = sizeof(a);
    a.id = str(acct.id);
    a.name = str(acct.name);
    a.type = str(acct.type);
    a.base_url = str(acct.baseUrl);
    a.secret = str(acct.secret);
    a.upstream_model = str(acct.upstreamModel);
    a.settings_json = str(acct.settingsJson);
    if (acct.structSize != 0) {
      a.struct_size = acct.structSize;
      // What a minor-0 host leaves past its struct is not there to read: poison it so a plugin
      // that ignores struct_size fails loudly in tests.
      static constexpr std::string_view kGarbage = "<not filled by this host>";
      if (acct.structSize <= offsetof(rg_account, upstream_model)) {
        a.upstream_model = str(kGarbage);
      }
      if (acct.structSize <= offsetof(rg_account, settings_json)) {
        a.settings_json = str(kGarbage);
      }
    }
    rg_host_sink sink;
    begin();
    r.status = vt_->transform_request(inst_, stream_.get(), &b.req, &a, &sink);
    r.error = detail::lastError();
    copySink(sink, &r);
    return r;
  }

  SinkResult responseHeaders(uint32_t status, const HeaderList& headers) {
    SinkResult r;
    r.hookPresent = vt_->on_response_headers != nullptr;
    if (!r.hookPresent) {  // host default: forward unchanged
      r.started = true;
      r.httpStatus = status;
      r.headers = headers;
      return r;
    }
    std::vector<rg_header> hs = toRaw(headers);
    rg_host_sink sink;
    begin();
    r.status = vt_->on_response_headers(inst_, stream_.get(), status, hs.data(), hs.size(), &sink);
    r.error = detail::lastError();
    copySink(sink, &r);
    return r;
  }

  // `raw` is one complete event including its blank line; see FakeHost::sse().
  ReplacementResult sseEvent(std::string_view raw) {
    ReplacementResult r;
    r.hookPresent = vt_->on_sse_event != nullptr;
    r.bytes.assign(raw);
    if (!r.hookPresent) {
      return r;
    }
    std::string event;
    std::string data;
    parseSse(raw, &event, &data);
    rg_sse_event ev{};
    ev.struct_size = sizeof(ev);
    ev.raw = str(raw);
    ev.event = str(event);
    ev.data = str(data);
    rg_host_sink sink;
    begin();
    r.status = vt_->on_sse_event(inst_, stream_.get(), &ev, &sink);
    r.error = detail::lastError();
    applyReplacement(sink, &r);
    return r;
  }

  ReplacementResult bodyChunk(std::string_view chunk, bool endOfStream) {
    ReplacementResult r;
    r.hookPresent = vt_->on_body_chunk != nullptr;
    r.bytes.assign(chunk);
    if (!r.hookPresent) {
      return r;
    }
    rg_host_sink sink;
    begin();
    r.status = vt_->on_body_chunk(inst_, stream_.get(), str(chunk), endOfStream ? 1 : 0, &sink);
    r.error = detail::lastError();
    applyReplacement(sink, &r);
    return r;
  }

  ClassifyResult classify(uint32_t status, const HeaderList& headers, std::string_view body) {
    ClassifyResult r;
    r.hookPresent = vt_->classify_error != nullptr;
    rg_error_info info{};
    info.struct_size = sizeof(info);
    info.cls = defaultErrorClass(status);  // what the host pre-fills
    if (r.hookPresent) {
      begin();  // the hook may create per-stream state: on_stream_done must free it
      std::vector<rg_header> hs = toRaw(headers);
      detail::lastError().clear();
      vt_->classify_error(inst_, stream_.get(), status, hs.data(), hs.size(), str(body), &info);
      r.error = detail::lastError();
    }
    r.cls = info.cls;
    r.retryAfterMs = info.retry_after_ms;
    r.untilUnixMs = info.until_unix_ms;
    r.scope.assign(sv(info.scope));
    r.reason.assign(sv(info.reason));
    return r;
  }

  SinkResult local(const TestRequest& req) {
    SinkResult r;
    r.hookPresent = vt_->handle_local != nullptr;
    if (!r.hookPresent) {
      r.status = RG_E_UNSUPPORTED;
      return r;
    }
    Built b(req);
    rg_host_sink sink;
    begin();
    r.status = vt_->handle_local(inst_, stream_.get(), &b.req, &sink);
    r.error = detail::lastError();
    copySink(sink, &r);
    return r;
  }

  // Ends the current stream (on_stream_done if any hook ran) and starts a fresh one. Usage of the
  // ended stream stays readable through usage() until the next hook call.
  void done() {
    if (stream_ && stream_->hookRan && !stream_->doneCalled) {
      stream_->doneCalled = true;
      if (vt_ != nullptr && vt_->on_stream_done != nullptr) {
        vt_->on_stream_done(inst_, stream_.get());
      }
    }
  }

  const Usage& usage() const { return stream_->usage; }
  bool usageReported() const { return stream_->usageReported; }
  int usageReports() const { return stream_->usageReports; }
  rg_host_stream* stream() { return stream_.get(); }
  void* streamData() const { return stream_->data; }

 private:
  // An rg_request whose views point into a TestRequest.
  struct Built {
    explicit Built(const TestRequest& t) {
      hs = toRaw(t.headers);
      req.struct_size = sizeof(req);
      req.route_id = t.routeId;
      req.method = str(t.method);
      req.path = str(t.path);
      req.query = str(t.query);
      req.headers = hs.data();
      req.header_count = hs.size();
      req.body = str(t.body);
      req.request_id = str(t.requestId);
      req.key_id = str(t.keyId);
      req.key_name = str(t.keyName);
    }
    std::vector<rg_header> hs;
    rg_request req{};
  };

  static std::vector<rg_header> toRaw(const HeaderList& headers) {
    std::vector<rg_header> hs;
    hs.reserve(headers.size());
    for (const auto& h : headers) {
      hs.push_back(rg_header{str(h.first), str(h.second)});
    }
    return hs;
  }
  static void copySink(const rg_host_sink& s, SinkResult* r) {
    r->started = s.started;
    r->httpStatus = s.status;
    r->method = s.method;
    r->url = s.url;
    r->headers = s.headers;
    r->body = s.body;
  }
  static void applyReplacement(const rg_host_sink& s, ReplacementResult* r) {
    if (s.discarded) {
      r->action = SseAction::kDropped;
      r->bytes.clear();
    } else if (s.touched) {
      r->action = SseAction::kReplaced;
      r->bytes = s.body;
    }
  }
  // Before each hook: a fresh stream if the last one is done, clear the error text.
  void begin() {
    if (!stream_ || stream_->doneCalled) {
      stream_ = std::make_unique<rg_host_stream>();
    }
    stream_->hookRan = true;
    detail::lastError().clear();
  }
  void close() {
    if (inst_ != nullptr) {
      done();
      vt_->destroy(inst_);
      inst_ = nullptr;
    }
  }

  FakeHost* host_ = nullptr;
  const rg_provider_vtable* vt_ = nullptr;
  rg_instance inst_ = nullptr;
  HookResult create_;
  std::vector<Route> routes_;
  std::unique_ptr<rg_host_stream> stream_ = std::make_unique<rg_host_stream>();
};

class NotifierHarness {
 public:
  NotifierHarness(FakeHost& host, const rg_notifier_vtable* vt, std::string_view configJson);
  ~NotifierHarness() { close(); }
  NotifierHarness(NotifierHarness&& o) noexcept { *this = std::move(o); }
  NotifierHarness& operator=(NotifierHarness&& o) noexcept {
    if (this != &o) {
      close();
      vt_ = o.vt_;
      inst_ = o.inst_;
      create_ = std::move(o.create_);
      o.inst_ = nullptr;
    }
    return *this;
  }
  bool ok() const { return create_.ok(); }
  const std::string& createError() const { return create_.error; }

  HookResult event(std::string_view type, std::string_view json, std::string_view id = "evt-1",
                   uint64_t unixMs = 0) {
    rg_event ev{};
    ev.struct_size = sizeof(ev);
    ev.type = str(type);
    ev.json = str(json);
    ev.id = str(id);
    ev.unix_ms = unixMs != 0 ? unixMs : detail::fakeNowMs().load();
    detail::lastError().clear();
    HookResult r;
    r.status = vt_->on_event(inst_, &ev);
    r.error = detail::lastError();
    return r;
  }

 private:
  void close() {
    if (inst_ != nullptr) {
      vt_->destroy(inst_);
      inst_ = nullptr;
    }
  }
  const rg_notifier_vtable* vt_ = nullptr;
  rg_instance inst_ = nullptr;
  HookResult create_;
};

// ---- The fake host -----------------------------------------------------------------------------

class FakeHost {
 public:
  explicit FakeHost(std::string pluginName = "test") {
    plugin_.host = this;
    plugin_.name = std::move(pluginName);
    api_.struct_size = sizeof(api_);
    api_.abi_major = RG_ABI_MAJOR;
    api_.abi_minor = RG_ABI_MINOR;
    api_.log = [](rg_host_plugin* p, rg_log_level level, rg_str msg) {
      std::lock_guard<std::mutex> lock(p->host->mu_);
      p->host->logs_.push_back(LogEntry{level, std::string(sv(msg))});
    };
    api_.log_enabled = [](rg_host_plugin* p, rg_log_level level) -> int {
      return level >= p->host->logLevel_ ? 1 : 0;
    };
    api_.set_error = [](rg_host_plugin*, rg_str msg) { detail::lastError().assign(sv(msg)); };
    api_.now_unix_ms = []() -> uint64_t { return detail::fakeNowMs().load(); };
    api_.monotonic_ns = []() -> uint64_t { return detail::fakeMonotonicNs().load(); };
    api_.sink_start = [](rg_host_sink* s, uint32_t status, rg_str method, rg_str url) {
      s->started = true;
      s->status = status;
      s->method.assign(sv(method));
      s->url.assign(sv(url));
    };
    api_.sink_header = [](rg_host_sink* s, rg_str name, rg_str value) {
      s->headers.emplace_back(std::string(sv(name)), std::string(sv(value)));
    };
    api_.sink_append = [](rg_host_sink* s, rg_str bytes) {
      s->touched = true;
      s->body.append(sv(bytes));
    };
    api_.sink_discard = [](rg_host_sink* s) { s->discarded = true; };
    api_.report_usage = [](rg_host_stream* st, const rg_usage* u) {
      st->usageReported = true;
      st->usageReports++;
      st->usage.inputTokens = u->input_tokens;
      st->usage.outputTokens = u->output_tokens;
      st->usage.cacheCreation5mTokens = u->cache_creation_5m_tokens;
      st->usage.cacheCreation1hTokens = u->cache_creation_1h_tokens;
      st->usage.cacheReadTokens = u->cache_read_tokens;
      st->usage.model.assign(sv(u->model));
    };
    api_.stream_set_data = [](rg_host_stream* st, void* data) { st->data = data; };
    api_.stream_get_data = [](rg_host_stream* st) -> void* { return st->data; };
    api_.kv_get = [](rg_host_plugin* p, rg_str key, void* user,
                     void (*onValue)(void*, rg_str)) -> rg_status {
      std::string value;
      {
        FakeHost* h = p->host;
        std::lock_guard<std::mutex> lock(h->mu_);
        if (h->kvFailure_ != RG_OK) {
          return h->kvFailure_;
        }
        auto it = h->kv_.find(std::string(sv(key)));
        if (it == h->kv_.end()) {
          return RG_E_NOT_FOUND;
        }
        if (it->second.expiresMs != 0 && it->second.expiresMs <= detail::fakeNowMs().load()) {
          h->kv_.erase(it);
          return RG_E_NOT_FOUND;
        }
        value = it->second.value;
      }
      onValue(user, str(value));  // outside the lock: the callback may call back into the host
      return RG_OK;
    };
    api_.kv_set = [](rg_host_plugin* p, rg_str key, rg_str value, uint64_t ttlMs) -> rg_status {
      FakeHost* h = p->host;
      std::lock_guard<std::mutex> lock(h->mu_);
      if (h->kvFailure_ != RG_OK) {
        return h->kvFailure_;
      }
      uint64_t exp = ttlMs == 0 ? 0 : detail::fakeNowMs().load() + ttlMs;
      h->kv_[std::string(sv(key))] = KvEntry{std::string(sv(value)), exp};
      return RG_OK;
    };
    api_.kv_del = [](rg_host_plugin* p, rg_str key) -> rg_status {
      FakeHost* h = p->host;
      std::lock_guard<std::mutex> lock(h->mu_);
      if (h->kvFailure_ != RG_OK) {
        return h->kvFailure_;
      }
      h->kv_.erase(std::string(sv(key)));
      return RG_OK;
    };
    api_.counter_add = [](rg_host_plugin* p, rg_str name, uint64_t delta) {
      std::lock_guard<std::mutex> lock(p->host->mu_);
      p->host->counters_[std::string(sv(name))] += delta;
    };
    api_.sha256 = [](rg_str msg, uint8_t out[32]) { detail::sha256(sv(msg), out); };
    api_.hmac_sha256 = [](rg_str key, rg_str msg, uint8_t out[32]) {
      detail::hmacSha256(sv(key), sv(msg), out);
    };
    api_.base64_encode = [](rg_str in, char* out, size_t cap) -> size_t {
      std::string b = detail::base64(sv(in));
      if (out != nullptr && cap >= b.size()) {
        std::memcpy(out, b.data(), b.size());
      }
      return b.size();
    };
    api_.http_call =
        [](rg_host_plugin* p, const rg_http_request* req, void* user,
           void (*onResponse)(void*, uint32_t, const rg_header*, size_t, rg_str)) -> rg_status {
      FakeHost* h = p->host;
      HttpCallRecord rec;
      rec.method.assign(sv(req->method));
      rec.url.assign(sv(req->url));
      for (size_t i = 0; i < req->header_count; ++i) {
        rec.headers.emplace_back(std::string(sv(req->headers[i].name)),
                                 std::string(sv(req->headers[i].value)));
      }
      rec.body.assign(sv(req->body));
      rec.timeoutMs = req->timeout_ms;
      std::function<CannedHttpResponse(const HttpCallRecord&)> handler;
      {
        std::lock_guard<std::mutex> lock(h->mu_);
        h->httpCalls_.push_back(rec);
        handler = h->httpHandler_;
      }
      if (!handler) {
        return RG_E_UNSUPPORTED;
      }
      CannedHttpResponse resp = handler(rec);
      if (resp.result != RG_OK) {
        return resp.result;
      }
      std::vector<rg_header> hs;
      for (const auto& x : resp.headers) {
        hs.push_back(rg_header{str(x.first), str(x.second)});
      }
      onResponse(user, resp.status, hs.data(), hs.size(), str(resp.body));
      return RG_OK;
    };
  }
  ~FakeHost() {
    for (void* lib : libs_) {
      dlclose(lib);
    }
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  // ---- Plugins under test ----
  template <typename C>
  ProviderHarness createProvider(std::string_view configJson = "{}") {
    return ProviderHarness(*this, &sdk::detail::ProviderGlue<C>::kVtable, configJson);
  }
  template <typename C>
  NotifierHarness createNotifier(std::string_view configJson = "{}") {
    return NotifierHarness(*this, &sdk::detail::NotifierGlue<C>::kVtable, configJson);
  }
  // From a manifest, e.g. `extern "C" const rg_plugin_manifest rg_plugin_manifest_v1;` of a
  // plugin linked statically into the test, or the one openLibrary() returned.
  ProviderHarness loadProvider(const rg_plugin_manifest& m, std::string_view configJson = "{}") {
    return ProviderHarness(*this, static_cast<const rg_provider_vtable*>(m.vtable), configJson);
  }
  NotifierHarness loadNotifier(const rg_plugin_manifest& m, std::string_view configJson = "{}") {
    return NotifierHarness(*this, static_cast<const rg_notifier_vtable*>(m.vtable), configJson);
  }
  // dlopen()s a built plugin and returns its manifest (nullptr + *error on failure). The library
  // stays loaded until the FakeHost is destroyed.
  const rg_plugin_manifest* openLibrary(const std::string& path, std::string* error = nullptr) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      if (error != nullptr) {
        *error = dlerror();
      }
      return nullptr;
    }
    libs_.push_back(lib);
    void* sym = dlsym(lib, RG_MANIFEST_SYMBOL);
    if (sym == nullptr && error != nullptr) {
      *error = std::string("no symbol ") + RG_MANIFEST_SYMBOL;
    }
    return static_cast<const rg_plugin_manifest*>(sym);
  }

  // ---- The host side ----
  const rg_host_api* api() const { return &api_; }
  rg_host_plugin* handle() { return &plugin_; }
  Host sdkHost() { return Host(&plugin_, &api_); }

  static void setNowMs(uint64_t ms) { detail::fakeNowMs().store(ms); }
  static uint64_t nowMs() { return detail::fakeNowMs().load(); }
  static void advanceMs(uint64_t ms) {
    detail::fakeNowMs().fetch_add(ms);
    detail::fakeMonotonicNs().fetch_add(ms * 1'000'000ull);
  }

  void setLogLevel(rg_log_level l) { logLevel_ = l; }
  std::vector<LogEntry> logs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }
  // True when some log line contains `needle`.
  bool logged(std::string_view needle) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& l : logs_) {
      if (l.message.find(needle) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  uint64_t counter(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = counters_.find(name);
    return it == counters_.end() ? 0 : it->second;
  }

  std::optional<std::string> kv(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = kv_.find(key);
    if (it == kv_.end() ||
        (it->second.expiresMs != 0 && it->second.expiresMs <= detail::fakeNowMs().load())) {
      return std::nullopt;
    }
    return it->second.value;
  }
  void setKv(const std::string& key, const std::string& value) {
    std::lock_guard<std::mutex> lock(mu_);
    kv_[key] = KvEntry{value, 0};
  }
  // Make every kv_* call fail with `s` (RG_OK restores normal behaviour).
  void failKv(rg_status s) {
    std::lock_guard<std::mutex> lock(mu_);
    kvFailure_ = s;
  }

  void setHttpHandler(std::function<CannedHttpResponse(const HttpCallRecord&)> handler) {
    std::lock_guard<std::mutex> lock(mu_);
    httpHandler_ = std::move(handler);
  }
  std::vector<HttpCallRecord> httpCalls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return httpCalls_;
  }

  // One framed SSE event: "event: <event>\ndata: <data>\n\n" (no event line when empty).
  static std::string sse(std::string_view event, std::string_view data) {
    std::string out;
    if (!event.empty()) {
      out += "event: ";
      out.append(event);
      out += "\n";
    }
    out += "data: ";
    out.append(data);
    out += "\n\n";
    return out;
  }

 private:
  struct KvEntry {
    std::string value;
    uint64_t expiresMs = 0;
  };

  rg_host_api api_{};
  rg_host_plugin plugin_;
  mutable std::mutex mu_;
  std::atomic<int> logLevel_{RG_LOG_TRACE};
  std::vector<LogEntry> logs_;
  std::map<std::string, uint64_t> counters_;
  std::map<std::string, KvEntry> kv_;
  rg_status kvFailure_ = RG_OK;
  std::function<CannedHttpResponse(const HttpCallRecord&)> httpHandler_;
  std::vector<HttpCallRecord> httpCalls_;
  std::vector<void*> libs_;
};

inline ProviderHarness::ProviderHarness(FakeHost& host, const rg_provider_vtable* vt,
                                        std::string_view configJson)
    : host_(&host), vt_(vt) {
  detail::lastError().clear();
  create_.status = vt_->create(host.handle(), host.api(), str(configJson), &inst_);
  create_.error = detail::lastError();
  if (create_.status != RG_OK) {
    inst_ = nullptr;
    return;
  }
  const rg_route* rs = nullptr;
  size_t n = 0;
  detail::lastError().clear();
  rg_status s = vt_->declare_routes(inst_, &rs, &n);
  if (s != RG_OK) {
    create_.status = s;
    create_.error = "declare_routes: " + detail::lastError();
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    Route r;
    r.method.assign(sv(rs[i].method));
    r.path.assign(sv(rs[i].path));
    r.id = rs[i].route_id;
    r.kind = rs[i].kind;
    r.shape = rs[i].shape;
    r.permission.assign(sv(rs[i].permission));
    r.accountTypes.assign(sv(rs[i].account_types));
    r.flags = rs[i].flags;
    routes_.push_back(r);
  }
}

inline NotifierHarness::NotifierHarness(FakeHost& host, const rg_notifier_vtable* vt,
                                        std::string_view configJson)
    : vt_(vt) {
  detail::lastError().clear();
  create_.status = vt_->create(host.handle(), host.api(), str(configJson), &inst_);
  create_.error = detail::lastError();
  if (create_.status != RG_OK) {
    inst_ = nullptr;
  }
}

}  // namespace testing
}  // namespace sdk
}  // namespace rg
