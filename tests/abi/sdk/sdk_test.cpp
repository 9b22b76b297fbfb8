// The SDK's C++ layer (provider.hpp / notifier.hpp) driven through the FakeHost, exactly as a
// plugin's own unit tests would. This binary must not link host code (see fake_host.hpp).
#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "relaygate/testing/fake_host.hpp"

// The echo example's manifest, linked into this binary from sdk/examples/echo_provider.
extern "C" const rg_plugin_manifest rg_plugin_manifest_v1;

namespace rgtest {
namespace {

using rg::sdk::testing::CannedHttpResponse;
using rg::sdk::testing::FakeHost;
using rg::sdk::testing::HttpCallRecord;
using rg::sdk::testing::SseAction;
using rg::sdk::testing::TestAccount;
using rg::sdk::testing::TestRequest;
namespace sdk = rg::sdk;

// Counts live per-stream states so the test can see the SDK free them.
struct Tally {
  static int& live() {
    static int n = 0;
    return n;
  }
  Tally() { ++live(); }
  ~Tally() { --live(); }
  Tally(const Tally&) = delete;
  Tally& operator=(const Tally&) = delete;
  int events = 0;
  uint64_t outputTokens = 0;
};

class Full : public sdk::Provider {
public:
  Full(sdk::Host host, std::string_view config) : Provider(host), config_(config) {
    host.info("created with " + config_);
  }
  std::vector<sdk::Route> routes() override {
    sdk::Route r;
    r.path = "/full/v1/messages";
    r.id = 3;
    r.permission = "full";
    r.accountTypes = "full-a,full-b";
    r.flags = RG_ROUTE_SKIP_CONCURRENCY;
    return {r};
  }
  sdk::Status parseRequest(sdk::Stream& st, const sdk::Request& req,
                           sdk::RequestMeta& out) override {
    if (req.body().empty()) {
      return sdk::invalidArg("body must not be empty");
    }
    st.state<Tally>();
    out.model = "model-" + std::string(req.body().substr(0, 3)); // not a view into the body
    out.stream = req.header("accept") == std::optional<std::string_view>("text/event-stream");
    out.sessionKey = std::string(req.keyId());
    if (auto max = req.header("x-max-tokens")) {
      out.maxOutputTokens = std::stoull(std::string(*max));
    }
    out.inputTokensEstimate = sdk::tokensForChars(req.body().size());
    return sdk::Status::ok();
  }
  sdk::Status transformRequest(sdk::Stream&, const sdk::Request& req, const sdk::Account& acct,
                               sdk::UpstreamWriter& out) override {
    out.start("POST", std::string(acct.baseUrl()) + "/v1/messages");
    out.header("x-api-key", acct.secret());
    out.header("x-sig", host().sha256Hex(req.body()));
    out.body(req.body());
    return sdk::Status::ok();
  }
  sdk::Status onResponseHeaders(sdk::Stream&, uint32_t status, sdk::Headers headers,
                                sdk::ResponseWriter& out) override {
    out.status(status == 200 ? 200 : 502);
    if (auto ct = headers.get("Content-Type")) {
      out.header("content-type", *ct);
    }
    return sdk::Status::ok();
  }
  sdk::Status onSseEvent(sdk::Stream& st, const sdk::SseEvent& ev,
                         sdk::Replacement& out) override {
    Tally& t = st.state<Tally>();
    ++t.events;
    if (ev.event() == "ping") {
      out.drop();
    } else if (ev.event() == "secret") {
      out.replace("event: secret\n");
      out.replace("data: [redacted]\n\n");
    } else if (ev.event() == "message_delta") {
      t.outputTokens = std::stoull(std::string(ev.data()));
      sdk::Usage u;
      u.inputTokens = 7;
      u.outputTokens = t.outputTokens;
      u.model = "reported-model";
      st.reportUsage(u);
    } else if (ev.event() == "explode") {
      throw std::runtime_error("cannot parse event");
    }
    return sdk::Status::ok();
  }
  sdk::ErrorInfo classifyError(sdk::Stream& /*st*/, uint32_t status, sdk::Headers headers,
                               std::string_view body) override {
    sdk::ErrorInfo e;
    if (status == 400 && body.find("prompt is too long") != std::string_view::npos) {
      e.cls = RG_EC_CONTEXT_TOO_LONG;
      e.reason = "context too long";
      return e;
    }
    if (status == 429) {
      e.cls = RG_EC_RATE_LIMITED;
      e.retryAfterMs = 1000 * std::stoull(std::string(headers.get("retry-after").value_or("0")));
      e.scope = "opus";
      return e;
    }
    throw std::runtime_error("unclassified");
  }
  void onStreamDone(sdk::Stream& st) override {
    if (Tally* t = st.stateIfAny<Tally>()) {
      host().counterAdd("events", static_cast<uint64_t>(t->events));
    }
  }

private:
  std::string config_;
};

class Minimal : public sdk::Provider {
public:
  Minimal(sdk::Host host, std::string_view) : Provider(host) {}
  std::vector<sdk::Route> routes() override { return {}; }
};

class Explicit : public Minimal {
public:
  using Minimal::Minimal;
  static constexpr uint32_t kHooks = sdk::kHookBodyChunk;
};

static_assert(sdk::detail::ProviderGlue<Minimal>::kHooks == 0, "nothing overridden");
static_assert(sdk::detail::ProviderGlue<Full>::kHooks ==
                  (sdk::kHookParseRequest | sdk::kHookResponseHeaders | sdk::kHookSseEvent |
                   sdk::kHookClassifyError),
              "overrides detected");
static_assert(sdk::detail::ProviderGlue<Explicit>::kHooks == sdk::kHookBodyChunk, "kHooks wins");

TEST(SdkProvider, UnoverriddenHooksStayNull) {
  const rg_provider_vtable& vt = sdk::detail::ProviderGlue<Minimal>::kVtable;
  EXPECT_EQ(vt.struct_size, sizeof(rg_provider_vtable));
  EXPECT_NE(vt.create, nullptr);
  EXPECT_NE(vt.destroy, nullptr);
  EXPECT_NE(vt.declare_routes, nullptr);
  EXPECT_NE(vt.transform_request, nullptr);
  EXPECT_NE(vt.on_stream_done, nullptr);
  EXPECT_EQ(vt.parse_request, nullptr);
  EXPECT_EQ(vt.on_response_headers, nullptr);
  EXPECT_EQ(vt.on_sse_event, nullptr);
  EXPECT_EQ(vt.on_body_chunk, nullptr);
  EXPECT_EQ(vt.classify_error, nullptr);
  EXPECT_EQ(vt.handle_local, nullptr);
  EXPECT_NE(sdk::detail::ProviderGlue<Explicit>::kVtable.on_body_chunk, nullptr);

  // The fake applies host defaults for NULL hooks.
  FakeHost host;
  auto h = host.createProvider<Minimal>();
  auto ev = h.sseEvent(FakeHost::sse("x", "{}"));
  EXPECT_FALSE(ev.hookPresent);
  EXPECT_EQ(ev.action, SseAction::kForwarded);
  EXPECT_EQ(h.classify(429, {}, "").cls, RG_EC_RATE_LIMITED);
  EXPECT_EQ(h.responseHeaders(201, {{"a", "b"}}).httpStatus, 201u);
  EXPECT_EQ(h.transform(TestRequest(), TestAccount()).status, RG_E_UNSUPPORTED);
}

TEST(SdkProvider, CreateAndRoutes) {
  FakeHost host;
  auto h = host.createProvider<Full>("{\"a\":1}");
  ASSERT_TRUE(h.ok()) << h.createError();
  EXPECT_TRUE(host.logged("created with {\"a\":1}"));
  ASSERT_EQ(h.routes().size(), 1u);
  EXPECT_EQ(h.routes()[0].id, 3u);
  EXPECT_EQ(h.routes()[0].permission, "full");
  EXPECT_EQ(h.routes()[0].accountTypes, "full-a,full-b");
  EXPECT_EQ(h.routes()[0].flags, RG_ROUTE_SKIP_CONCURRENCY);
}

TEST(SdkProvider, ParseAndTransform) {
  FakeHost host;
  auto h = host.createProvider<Full>();
  TestRequest req;
  req.body = "abcdef";
  req.keyId = "k1";
  req.withHeader("Accept", "text/event-stream");
  auto meta = h.parse(req);
  ASSERT_TRUE(meta.ok()) << meta.error;
  EXPECT_EQ(meta.model, "model-abc");
  EXPECT_TRUE(meta.stream);
  EXPECT_EQ(meta.sessionKey, "k1");

  TestRequest empty;
  auto bad = h.parse(empty);
  EXPECT_EQ(bad.status, RG_E_INVALID_ARG);
  EXPECT_EQ(bad.error, "body must not be empty");

  TestAccount acct;
  acct.baseUrl = "https://api.test";
  acct.secret = "sk-1";
  auto up = h.transform(req, acct);
  ASSERT_TRUE(up.ok()) << up.error;
  EXPECT_EQ(up.url, "https://api.test/v1/messages");
  EXPECT_EQ(up.header("X-API-KEY"), "sk-1");
  // sha256("abcdef")
  EXPECT_EQ(up.header("x-sig"), "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721");
  EXPECT_EQ(up.body, "abcdef");
}

TEST(SdkProvider, TokenEstimateConvention) {
  EXPECT_EQ(sdk::tokensForChars(0), 0u);
  EXPECT_EQ(sdk::tokensForChars(1), 1u);
  EXPECT_EQ(sdk::tokensForChars(4), 1u);
  EXPECT_EQ(sdk::tokensForChars(5), 2u);
  EXPECT_EQ(sdk::tokensForChars(4000), 1000u);
}

TEST(SdkProvider, MinorTwoMetaFieldsReachAMinorTwoHost) {
  FakeHost host;
  auto h = host.createProvider<Full>();
  TestRequest req;
  req.body = "abcdefghi";  // 9 characters: 3 tokens
  req.withHeader("x-max-tokens", "4096");
  auto meta = h.parse(req);
  ASSERT_TRUE(meta.ok()) << meta.error;
  EXPECT_EQ(meta.maxOutputTokens, 4096u);
  EXPECT_EQ(meta.inputTokensEstimate, 3u);
  EXPECT_FALSE(meta.wroteBeyondStructSize);
  EXPECT_FALSE(meta.structSizeChanged);
}

TEST(SdkProvider, MinorTwoMetaFieldsAreNotWrittenPastAMinorOneStruct) {
  FakeHost host;
  auto h = host.createProvider<Full>();
  TestRequest req;
  req.body = "abcdefghi";
  req.withHeader("x-max-tokens", "4096");
  // A minor-1 host: its rg_request_meta ends before the minor-2 fields.
  auto old = h.parse(req, static_cast<uint32_t>(offsetof(rg_request_meta, max_output_tokens)));
  ASSERT_TRUE(old.ok()) << old.error;
  EXPECT_EQ(old.model, "model-abc");  // the minor-0 fields still arrive
  EXPECT_FALSE(old.wroteBeyondStructSize);
  EXPECT_FALSE(old.structSizeChanged);
  EXPECT_EQ(old.maxOutputTokens, 0u);
  h.done();
  // A struct with room for the first minor-2 field only gets that one.
  auto half =
      h.parse(req, static_cast<uint32_t>(offsetof(rg_request_meta, input_tokens_estimate)));
  EXPECT_FALSE(half.wroteBeyondStructSize);
  EXPECT_EQ(half.maxOutputTokens, 4096u);
  EXPECT_EQ(half.inputTokensEstimate, 0u);
}

TEST(SdkProvider, SseForwardDropReplaceUsageAndThrow) {
  FakeHost host;
  auto h = host.createProvider<Full>();
  auto fwd = h.sseEvent(FakeHost::sse("message_start", "{}"));
  EXPECT_EQ(fwd.action, SseAction::kForwarded);
  EXPECT_EQ(fwd.bytes, "event: message_start\ndata: {}\n\n");

  EXPECT_EQ(h.sseEvent(FakeHost::sse("ping", "{}")).action, SseAction::kDropped);

  auto rep = h.sseEvent(FakeHost::sse("secret", "token"));
  EXPECT_EQ(rep.action, SseAction::kReplaced);
  EXPECT_EQ(rep.bytes, "event: secret\ndata: [redacted]\n\n");

  EXPECT_TRUE(h.sseEvent(FakeHost::sse("message_delta", "41")).ok());
  EXPECT_TRUE(h.sseEvent(FakeHost::sse("message_delta", "42")).ok());
  EXPECT_TRUE(h.usageReported());
  EXPECT_EQ(h.usageReports(), 2);
  EXPECT_EQ(h.usage().inputTokens, 7u);
  EXPECT_EQ(h.usage().outputTokens, 42u);
  EXPECT_EQ(h.usage().model, "reported-model");

  auto boom = h.sseEvent(FakeHost::sse("explode", "{}"));
  EXPECT_EQ(boom.status, RG_E_INTERNAL);
  EXPECT_EQ(boom.error, "cannot parse event");

  EXPECT_EQ(Tally::live(), 1);
  h.done();
  EXPECT_EQ(Tally::live(), 0); // per-stream state freed after onStreamDone
  EXPECT_EQ(host.counter("events"), 6u);
}

TEST(SdkProvider, MultiLineSseDataIsJoined) {
  FakeHost host;
  auto h = host.createProvider<Full>();
  // data lines joined with '\n' as SSE defines: "4" + "\n" + "2" is not a number -> stoull
  // reads 4; proves the fake framed the data field.
  EXPECT_TRUE(h.sseEvent("event: message_delta\r\ndata: 4\r\ndata: 2\r\n\r\n").ok());
  EXPECT_EQ(h.usage().outputTokens, 4u);
}

TEST(SdkProvider, ResponseHeadersAndClassify) {
  FakeHost host;
  auto h = host.createProvider<Full>();
  auto r = h.responseHeaders(500, {{"Content-Type", "application/json"}, {"x-other", "1"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.httpStatus, 502u);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.header("content-type"), "application/json");

  auto ctx = h.classify(400, {}, "{\"error\":{\"message\":\"prompt is too long\"}}");
  EXPECT_EQ(ctx.cls, RG_EC_CONTEXT_TOO_LONG);
  EXPECT_EQ(ctx.reason, "context too long");
  auto rl = h.classify(429, {{"Retry-After", "30"}}, "");
  EXPECT_EQ(rl.cls, RG_EC_RATE_LIMITED);
  EXPECT_EQ(rl.retryAfterMs, 30000u);
  EXPECT_EQ(rl.scope, "opus");
  // A throwing classifier leaves the host default in place and reports why.
  auto d = h.classify(503, {}, "");
  EXPECT_EQ(d.cls, RG_EC_TRANSIENT);
  EXPECT_EQ(d.error, "unclassified");
}

TEST(SdkProvider, StreamDoneOnlyAfterAHookAndOnce) {
  FakeHost host;
  auto h = host.createProvider<Full>();
  h.done();
  EXPECT_EQ(host.counter("events"), 0u);
  h.sseEvent(FakeHost::sse("a", "1"));
  h.done();
  h.done();
  EXPECT_EQ(host.counter("events"), 1u);
  h.sseEvent(FakeHost::sse("a", "1")); // a fresh stream
  EXPECT_EQ(h.usageReports(), 0);
}

class BadConfig : public Minimal {
public:
  BadConfig(sdk::Host host, std::string_view config) : Minimal(host, config) {
    throw sdk::Error(RG_E_INVALID_ARG, "config: missing \"region\"");
  }
};

TEST(SdkProvider, ConstructorErrorBecomesCreateStatus) {
  FakeHost host;
  auto h = host.createProvider<BadConfig>();
  EXPECT_FALSE(h.ok());
  EXPECT_EQ(h.createResult().status, RG_E_INVALID_ARG);
  EXPECT_EQ(h.createError(), "config: missing \"region\"");
}

TEST(SdkProvider, LoadsStaticallyLinkedManifest) {
  // rg_plugin_manifest_v1 of the echo example is linked into this binary.
  FakeHost host;
  EXPECT_STREQ(rg_plugin_manifest_v1.name, "echo");
  auto h = host.loadProvider(rg_plugin_manifest_v1);
  ASSERT_TRUE(h.ok()) << h.createError();
  EXPECT_EQ(h.routes().size(), 2u);
}

TEST(SdkProvider, DrivesABuiltLibrary) {
  FakeHost host;
  std::string err;
  const rg_plugin_manifest* m = host.openLibrary(std::string(RG_FX_DIR) + "/librg_fx_good.so", &err);
  ASSERT_NE(m, nullptr) << err;
  auto h = host.loadProvider(*m);
  ASSERT_TRUE(h.ok()) << h.createError();
  EXPECT_TRUE(host.logged("good plugin created"));
  TestRequest req;
  req.path = "/good/v1/items/5";
  auto r = h.local(req);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.body, "item /good/v1/items/5");
  EXPECT_EQ(host.kv("last_path"), "/good/v1/items/5");
  EXPECT_EQ(host.counter("local_hits"), 1u);
  EXPECT_TRUE(h.sseEvent(FakeHost::sse("usage", "{}")).ok());
  EXPECT_EQ(h.usage().outputTokens, 20u);
  EXPECT_EQ(h.usage().model, "good-model-reported");
  h.done();
  EXPECT_EQ(host.counter("streams_done"), 1u);

  host.failKv(RG_E_UNAVAILABLE);
  auto f = h.local(req);
  EXPECT_EQ(f.status, RG_E_UNAVAILABLE);
  EXPECT_EQ(f.error, "kv_set failed");

  EXPECT_EQ(host.openLibrary(std::string(RG_FX_DIR) + "/librg_fx_no_manifest.so", &err), nullptr);
  EXPECT_NE(err.find("rg_plugin_manifest_v1"), std::string::npos);
}

// ---- Host services through the sdk::Host wrapper -----------------------------------------------

TEST(SdkHost, KvWithTtlAgainstTheFakeClock) {
  FakeHost host;
  sdk::Host h = host.sdkHost();
  FakeHost::setNowMs(1'000'000);
  EXPECT_EQ(h.nowUnixMs(), 1'000'000u);
  EXPECT_EQ(h.kvSet("a", "1", 500), RG_OK);
  EXPECT_EQ(h.kvSet("b", "2"), RG_OK);
  EXPECT_EQ(h.kvGet("a"), "1");
  FakeHost::advanceMs(500);
  rg_status st = RG_OK;
  EXPECT_EQ(h.kvGet("a", &st), std::nullopt);
  EXPECT_EQ(st, RG_E_NOT_FOUND);
  EXPECT_EQ(h.kvGet("b"), "2");
  EXPECT_EQ(h.kvDel("b"), RG_OK);
  EXPECT_EQ(host.kv("b"), std::nullopt);
  host.failKv(RG_E_UNAVAILABLE);
  EXPECT_EQ(h.kvSet("c", "3"), RG_E_UNAVAILABLE);
}

TEST(SdkHost, CryptoHelpers) {
  FakeHost host;
  sdk::Host h = host.sdkHost();
  EXPECT_EQ(h.sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // 56-byte message: exercises the padding across two blocks.
  EXPECT_EQ(h.sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  auto mac = h.hmacSha256(std::string(131, '\xaa'),
                          "Test Using Larger Than Block-Size Key - Hash Key First");
  EXPECT_EQ(sdk::toHex(mac.data(), mac.size()),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"); // RFC 4231 #6
  EXPECT_EQ(h.base64(""), "");
  EXPECT_EQ(h.base64("f"), "Zg==");
  EXPECT_EQ(h.base64("fo"), "Zm8=");
  EXPECT_EQ(h.base64("foobar"), "Zm9vYmFy");
}

TEST(SdkHost, JsonQuote) {
  EXPECT_EQ(sdk::jsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(sdk::jsonQuote("h\xc3\xa9"), "\"h\xc3\xa9\"");
}

// ---- Notifiers ---------------------------------------------------------------------------------

class Webhook : public sdk::Notifier {
public:
  Webhook(sdk::Host host, std::string_view) : Notifier(host) {}
  sdk::Status onEvent(const sdk::Event& ev) override {
    sdk::HttpRequest req;
    req.url = "http://127.0.0.1:1/hook";
    req.headers = {{"x-id", std::string(ev.id())}};
    req.body = std::string(ev.json());
    req.timeoutMs = 1500;
    sdk::HttpResponse resp;
    rg_status s = host().httpCall(req, &resp);
    if (s != RG_OK) {
      return sdk::Status(s, "no response");
    }
    if (resp.status != 204) {
      return sdk::unavailable("status " + std::to_string(resp.status) + ": " + resp.body);
    }
    return sdk::Status::ok();
  }
};

TEST(SdkNotifier, DeliversThroughHttpCall) {
  FakeHost host;
  auto n = host.createNotifier<Webhook>();
  ASSERT_TRUE(n.ok()) << n.createError();
  EXPECT_EQ(n.event("test", "{}").status, RG_E_UNSUPPORTED); // no handler set
  host.setHttpHandler([](const HttpCallRecord& rec) {
    CannedHttpResponse r;
    r.status = rec.body == "{\"ok\":true}" ? 204 : 500;
    r.body = "nope";
    return r;
  });
  EXPECT_TRUE(n.event("test", "{\"ok\":true}", "e-1").ok());
  auto bad = n.event("test", "{}", "e-2");
  EXPECT_EQ(bad.status, RG_E_UNAVAILABLE);
  EXPECT_EQ(bad.error, "status 500: nope");
  auto calls = host.httpCalls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[1].url, "http://127.0.0.1:1/hook");
  EXPECT_EQ(calls[1].headers[0].second, "e-1");
  EXPECT_EQ(calls[1].timeoutMs, 1500u);
  host.setHttpHandler([](const HttpCallRecord&) {
    CannedHttpResponse r;
    r.result = RG_E_UNAVAILABLE;
    return r;
  });
  EXPECT_EQ(n.event("test", "{}").error, "no response");
}

} // namespace
} // namespace rgtest
