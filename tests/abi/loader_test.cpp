// PluginLoader against real .so fixtures, one per failure mode, plus a good C provider, SDK and
// raw-ABI providers that throw, and a notifier. Host services are real: embedded store in a temp
// dir, the metrics registry, a ManualClock; http_call goes to a function the test supplies.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fakes/support.h"
#include "observability/metrics.h"
#include "plugin/host_objects.h"
#include "plugin/plugin_runtime.h"
#include "storage/store.h"

namespace rgtest {
namespace {

using rg::Code;
using rg::PluginLoader;

std::string fx(const std::string& name) {
  return std::string(RG_FX_DIR) + "/librg_" + name + ".so";
}

rg_str s(const std::string& v) {
  return rg_str{v.data(), v.size()};
}
std::string str(rg_str v) {
  return v.len == 0 ? std::string() : std::string(v.ptr, v.len);
}

struct HttpSeen {
  std::string url;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rg::EmbeddedOptions eo;
    eo.dataDir = dir_.file("data");
    auto st = rg::openEmbeddedStore(eo, clock_);
    ASSERT_TRUE(st.isOk()) << st.status().toString();
    store_ = std::move(st.value());
    loader_ = std::make_unique<PluginLoader>(services(true));
  }

  rg::HostServices services(bool withHttp) {
    rg::HostServices svc;
    svc.clock = &clock_;
    svc.store = store_.get();
    svc.metrics = &metrics_;
    if (withHttp) {
      svc.httpCall = [this](const rg_http_request& req, uint32_t* status,
                            std::vector<std::pair<std::string, std::string>>* headers,
                            std::string* body) {
        HttpSeen seen;
        seen.url = str(req.url);
        seen.body = str(req.body);
        for (size_t i = 0; i < req.header_count; ++i) {
          seen.headers.emplace_back(str(req.headers[i].name), str(req.headers[i].value));
        }
        http_.push_back(seen);
        *status = httpStatus_;
        headers->emplace_back("content-type", "text/plain");
        *body = "ok";
        return RG_OK;
      };
    }
    return svc;
  }

  uint64_t counter(const std::string& name) {
    return metrics_.counter(name, "Counter reported by plugin")->value();
  }

  TempDir dir_;
  rg::ManualClock clock_{1'700'000'123'456};
  rg::StorePtr store_;
  rg::MetricsRegistry metrics_;
  std::unique_ptr<PluginLoader> loader_;
  std::vector<HttpSeen> http_;
  uint32_t httpStatus_ = 200;
};

// ---- Failure modes, each a separate .so --------------------------------------------------------

TEST_F(LoaderTest, MissingFileIsNotFound) {
  auto m = PluginLoader::readManifest(fx("does_not_exist"));
  ASSERT_FALSE(m.isOk());
  EXPECT_EQ(m.status().code(), Code::kNotFound);
  EXPECT_EQ(m.status().message().rfind("librg_does_not_exist.so: cannot load: ", 0), 0u)
      << m.status().message();
}

TEST_F(LoaderTest, NoManifestSymbol) {
  auto m = PluginLoader::readManifest(fx("fx_no_manifest"));
  ASSERT_FALSE(m.isOk());
  EXPECT_EQ(m.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(m.status().message().rfind(
                "librg_fx_no_manifest.so: no exported symbol rg_plugin_manifest_v1", 0),
            0u)
      << m.status().message();
  auto p = loader_->loadProvider(fx("fx_no_manifest"), "{}");
  EXPECT_FALSE(p.isOk());
}

TEST_F(LoaderTest, AbiMajorMismatch) {
  auto p = loader_->loadProvider(fx("fx_abi_major"), "{}");
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().message(),
            "librg_fx_abi_major.so: abi_major: plugin has 2, host supports 1");
}

TEST_F(LoaderTest, MinHostMinorTooNew) {
  auto m = PluginLoader::readManifest(fx("fx_min_minor"));
  ASSERT_FALSE(m.isOk());
  EXPECT_EQ(m.status().message(),
            "librg_fx_min_minor.so: min_host_minor: plugin needs 9, host has " +
                std::to_string(RG_ABI_MINOR));
}

TEST_F(LoaderTest, BadName) {
  auto m = PluginLoader::readManifest(fx("fx_bad_name"));
  ASSERT_FALSE(m.isOk());
  EXPECT_EQ(m.status().message(),
            "librg_fx_bad_name.so: name: plugin has \"Bad Name!\", host "
            "needs 1-64 characters of [a-z0-9_-]");
}

TEST_F(LoaderTest, MissingRequiredHook) {
  // The manifest itself is fine: only loading checks the vtable.
  EXPECT_TRUE(PluginLoader::readManifest(fx("fx_missing_hook")).isOk());
  auto p = loader_->loadProvider(fx("fx_missing_hook"), "{}");
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().message(),
            "librg_fx_missing_hook.so: vtable.declare_routes: plugin has NULL, host requires it");
}

TEST_F(LoaderTest, RelayRouteWithoutTransform) {
  auto p = loader_->loadProvider(fx("fx_missing_transform"), "{}");
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().message(),
            "librg_fx_missing_transform.so: vtable.transform_request: plugin has NULL, host "
            "requires it when a RELAY route is declared");
}

TEST_F(LoaderTest, InvalidRouteMethod) {
  auto p = loader_->loadProvider(fx("fx_bad_route"), "{}");
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().message(),
            "librg_fx_bad_route.so: routes[1].method: plugin has \"FETCH\", host supports GET "
            "POST PUT PATCH DELETE HEAD OPTIONS");
}

TEST_F(LoaderTest, CreateFailureCarriesSetErrorText) {
  auto p = loader_->loadProvider(fx("fx_create_fails"), "{}");
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "librg_fx_create_fails.so: create: config: \"url\" is required (RG_E_INVALID_ARG)");
}

TEST_F(LoaderTest, KindMismatchIsRefused) {
  auto n = loader_->loadNotifier(fx("fx_good"), "{}");
  ASSERT_FALSE(n.isOk());
  EXPECT_EQ(n.status().message(),
            "librg_fx_good.so: kind: plugin has 1, host expected 2 (notifier)");
  auto p = loader_->loadProvider(fx("fx_notifier"), "{}");
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().message(),
            "librg_fx_notifier.so: kind: plugin has 2, host expected 1 (provider)");
}

// ---- A good C provider -------------------------------------------------------------------------

TEST_F(LoaderTest, ReadsManifestOfGoodPlugin) {
  auto m = PluginLoader::readManifest(fx("fx_good"));
  ASSERT_TRUE(m.isOk()) << m.status().message();
  EXPECT_EQ(m->name, "fx_good");
  EXPECT_EQ(m->version, "1.2.3");
  EXPECT_EQ(m->description, "a well-behaved C provider");
  EXPECT_EQ(m->kind, RG_KIND_PROVIDER);
  EXPECT_EQ(m->abiMajor, 1);
  EXPECT_EQ(m->path, fx("fx_good"));
}

TEST_F(LoaderTest, GoodPluginRoutesAreCopied) {
  auto p = loader_->loadProvider(fx("fx_good"), "{}");
  ASSERT_TRUE(p.isOk()) << p.status().message();
  const auto& r = (*p)->routes();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].method, "POST");
  EXPECT_EQ(r[0].path, "/good/v1/messages");
  EXPECT_EQ(r[0].routeId, 1u);
  EXPECT_EQ(r[0].kind, RG_ROUTE_RELAY);
  EXPECT_EQ(r[0].permission, "good");
  EXPECT_EQ(r[0].accountTypes, (std::vector<std::string>{"good-a", "good-b"}));
  EXPECT_EQ(r[0].flags, RG_ROUTE_SKIP_CONCURRENCY);
  EXPECT_EQ(r[1].path, "/good/v1/items/{id}");
  EXPECT_EQ(r[1].kind, RG_ROUTE_LOCAL);
  EXPECT_EQ(r[1].shape, RG_SHAPE_OPENAI);
  EXPECT_EQ(r[1].flags, RG_ROUTE_NO_AUTH);
  EXPECT_TRUE(r[1].accountTypes.empty());
  EXPECT_EQ((*p)->manifest().name, "fx_good");
  EXPECT_NE((*p)->hostHandle(), nullptr);
}

TEST_F(LoaderTest, GoodPluginCreateSeesConfig) {
  auto p = loader_->loadProvider(fx("fx_good"), "[]");
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().message(),
            "librg_fx_good.so: create: config must be a JSON object (RG_E_INVALID_ARG)");
}

rg_request makeRequest(const std::string& body, const std::string& path = "/good/v1/messages") {
  static thread_local std::string b;
  static thread_local std::string pth;
  b = body;
  pth = path;
  rg_request r{};
  r.struct_size = sizeof(r);
  r.route_id = 1;
  r.method = rg_str{"POST", 4};
  r.path = s(pth);
  r.body = s(b);
  r.request_id = rg_str{"req-9", 5};
  r.key_id = rg_str{"key-7", 5};
  return r;
}

TEST_F(LoaderTest, RequestBoundsFallBackAndStayWithinTheHostStruct) {
  auto lp = loader_->loadProvider(fx("fx_good"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg::ProviderPlugin& p = **lp;

  // A plugin that fills no minor-2 field: no output bound, input = ceil(body bytes / 4).
  rg_host_stream st;
  rg_request req = makeRequest("0123456789");  // '0' = the fixture acts as a minor-1 plugin
  rg_request_meta meta{};
  meta.struct_size = sizeof(meta);
  ASSERT_TRUE(p.parseRequest(&st, req, &meta).isOk());
  rg::RequestBounds b = rg::requestBounds(meta, req.body.len);
  EXPECT_EQ(b.maxOutputTokens, 0u);
  EXPECT_EQ(b.inputTokensEstimate, 3u);  // ceil(10 / 4)
  EXPECT_FALSE(b.inputFromPlugin);
  EXPECT_EQ(rg::requestBounds(meta, 0).inputTokensEstimate, 0u);
  EXPECT_EQ(rg::requestBounds(meta, 8).inputTokensEstimate, 2u);

  // A minor-1-sized struct (as an older caller would pass): nothing written past it.
  struct {
    rg_request_meta meta;
    unsigned char guard[1];
  } small;
  std::memset(&small, 0xA5, sizeof(small));
  small.meta.struct_size = static_cast<uint32_t>(offsetof(rg_request_meta, max_output_tokens));
  rg_request full = makeRequest("Stream please");
  ASSERT_TRUE(p.parseRequest(&st, full, &small.meta).isOk());
  EXPECT_EQ(small.meta.struct_size, offsetof(rg_request_meta, max_output_tokens));
  const auto* bytes = reinterpret_cast<const unsigned char*>(&small.meta);
  for (size_t i = offsetof(rg_request_meta, max_output_tokens); i < sizeof(small); ++i) {
    EXPECT_EQ(bytes[i], 0xA5) << "byte " << i << " written past struct_size";
  }
  EXPECT_EQ(rg::requestBounds(small.meta, 13).maxOutputTokens, 0u);
  EXPECT_EQ(rg::requestBounds(small.meta, 13).inputTokensEstimate, 4u);

  // Absurd client numbers are capped so tokens x price cannot overflow.
  rg_request_meta huge{};
  huge.struct_size = sizeof(huge);
  huge.max_output_tokens = UINT64_MAX;
  huge.input_tokens_estimate = UINT64_MAX;
  EXPECT_EQ(rg::requestBounds(huge, 1).maxOutputTokens, rg::kMaxRequestTokens);
  EXPECT_EQ(rg::requestBounds(huge, 1).inputTokensEstimate, rg::kMaxRequestTokens);
}

TEST_F(LoaderTest, GoodPluginRequestHooks) {
  auto lp = loader_->loadProvider(fx("fx_good"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg::ProviderPlugin& p = **lp;

  rg_host_stream st;
  rg_request req = makeRequest("Stream please");
  rg_request_meta meta{};
  meta.struct_size = sizeof(meta);
  ASSERT_TRUE(p.parseRequest(&st, req, &meta).isOk());
  EXPECT_EQ(str(meta.model), "good-model");
  EXPECT_EQ(meta.stream, 1);
  EXPECT_EQ(str(meta.session_key), "key-7");
  EXPECT_TRUE(st.hookRan);

  // Minor 2: the request's bounds come back in the same struct.
  EXPECT_EQ(meta.max_output_tokens, 512u);
  EXPECT_EQ(meta.input_tokens_estimate, 26u);  // "Stream please" = 13 bytes, x2 by the fixture
  rg::RequestBounds bounds = rg::requestBounds(meta, 13);
  EXPECT_EQ(bounds.maxOutputTokens, 512u);
  EXPECT_EQ(bounds.inputTokensEstimate, 26u);
  EXPECT_TRUE(bounds.inputFromPlugin);

  rg_request empty = makeRequest("");
  rg::Status bad = p.parseRequest(&st, empty, &meta);
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.message(), "plugin fx_good: parse_request: empty body (RG_E_INVALID_ARG)");

  req = makeRequest("{\"hi\":1}");
  std::string base = "https://up.example";
  std::string secret = "sk-live-123";
  rg_account acct{};
  acct.struct_size = sizeof(acct);
  acct.base_url = s(base);
  acct.secret = s(secret);
  rg_host_sink up;
  ASSERT_TRUE(p.hasTransform());
  ASSERT_TRUE(p.transformRequest(&st, req, acct, &up).isOk());
  EXPECT_TRUE(up.started);
  EXPECT_EQ(up.method, "POST");
  EXPECT_EQ(up.url, "https://up.example/v1/messages");
  ASSERT_EQ(up.headers.size(), 2u);
  EXPECT_EQ(up.headers[0], (std::pair<std::string, std::string>{"x-api-key", "sk-live-123"}));
  EXPECT_EQ(up.headers[1].second, "req-9");
  EXPECT_EQ(up.body, "{\"hi\":1}");
  EXPECT_NE(st.pluginData, nullptr);

  EXPECT_FALSE(p.hasResponseHeaders());
  EXPECT_FALSE(p.hasBodyChunk());
  rg_host_sink chunkOut;
  EXPECT_TRUE(p.onBodyChunk(&st, rg_str{"x", 1}, true, &chunkOut).isOk());  // NULL hook: forward
  EXPECT_FALSE(chunkOut.touched);
  p.streamDone(&st);  // frees the plugin's per-stream data
  EXPECT_TRUE(st.doneCalled);
}

rg_sse_event event(const std::string& name) {
  static thread_local std::string n;
  n = name;
  rg_sse_event ev{};
  ev.struct_size = sizeof(ev);
  ev.event = s(n);
  ev.raw = rg_str{"event: x\ndata: {}\n\n", 19};
  ev.data = rg_str{"{}", 2};
  return ev;
}

TEST_F(LoaderTest, GoodPluginSseAndUsage) {
  auto lp = loader_->loadProvider(fx("fx_good"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg::ProviderPlugin& p = **lp;
  ASSERT_TRUE(p.hasSseEvent());
  rg_host_stream st;

  rg_host_sink fwd;
  ASSERT_TRUE(p.onSseEvent(&st, event("message"), &fwd).isOk());
  EXPECT_FALSE(fwd.touched);
  EXPECT_FALSE(fwd.discarded);

  rg_host_sink drop;
  ASSERT_TRUE(p.onSseEvent(&st, event("drop"), &drop).isOk());
  EXPECT_TRUE(drop.discarded);

  rg_host_sink repl;
  ASSERT_TRUE(p.onSseEvent(&st, event("replace"), &repl).isOk());
  EXPECT_TRUE(repl.touched);
  EXPECT_EQ(repl.body, "data: replaced\n\n");

  rg_host_sink usage;
  EXPECT_FALSE(st.usageReported);
  ASSERT_TRUE(p.onSseEvent(&st, event("usage"), &usage).isOk());
  EXPECT_TRUE(st.usageReported);
  EXPECT_EQ(st.usage.input_tokens, 10u);
  EXPECT_EQ(st.usage.output_tokens, 20u);
  EXPECT_EQ(st.usage.cache_read_tokens, 5u);
  // The model string was copied into the stream (the plugin's view is gone after the call).
  EXPECT_EQ(st.usageModel, "good-model-reported");
  EXPECT_EQ(str(st.usage.model), "good-model-reported");
  EXPECT_EQ(st.usage.model.ptr, st.usageModel.data());
}

TEST_F(LoaderTest, GoodPluginClassifiesAndFallsBack) {
  auto lp = loader_->loadProvider(fx("fx_good"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg::ProviderPlugin& p = **lp;
  rg_error_info rl = p.classifyError(nullptr, 429, nullptr, 0, rg_str{"", 0});
  EXPECT_EQ(rl.cls, RG_EC_RATE_LIMITED);
  EXPECT_EQ(rl.retry_after_ms, 1500u);
  EXPECT_EQ(str(rl.reason), "slow down");
  EXPECT_EQ(p.classifyError(nullptr, 400, nullptr, 0, rg_str{"", 0}).cls, RG_EC_CONTEXT_TOO_LONG);
  // The plugin leaves other statuses alone: the host's prefilled default stands.
  EXPECT_EQ(p.classifyError(nullptr, 503, nullptr, 0, rg_str{"", 0}).cls, RG_EC_TRANSIENT);
  EXPECT_EQ(p.classifyError(nullptr, 401, nullptr, 0, rg_str{"", 0}).cls, RG_EC_AUTH);
}

TEST_F(LoaderTest, GoodPluginLocalUsesKvAndCounters) {
  auto lp = loader_->loadProvider(fx("fx_good"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg::ProviderPlugin& p = **lp;
  rg_host_stream st;
  rg_request req = makeRequest("", "/good/v1/items/42");
  rg_host_sink out;
  ASSERT_TRUE(p.handleLocal(&st, req, &out).isOk());
  EXPECT_EQ(out.status, 200u);
  EXPECT_EQ(out.body, "item /good/v1/items/42");
  auto kv = store_->pluginKv().get("plugin:fx_good:last_path");
  ASSERT_TRUE(kv.isOk());
  ASSERT_TRUE(kv.value().has_value());
  EXPECT_EQ(*kv.value(), "/good/v1/items/42");
  EXPECT_EQ(counter("relaygate_plugin_fx_good_local_hits_total"), 1u);
}

TEST_F(LoaderTest, StreamDoneOnceAndOnlyAfterAHook) {
  auto lp = loader_->loadProvider(fx("fx_good"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg::ProviderPlugin& p = **lp;
  const std::string metric = "relaygate_plugin_fx_good_streams_done_total";

  rg_host_stream untouched;
  p.streamDone(&untouched);
  EXPECT_EQ(counter(metric), 0u);
  EXPECT_FALSE(untouched.doneCalled);

  rg_host_stream st;
  rg_request req = makeRequest("x");
  rg_request_meta meta{};
  meta.struct_size = sizeof(meta);
  ASSERT_TRUE(p.parseRequest(&st, req, &meta).isOk());
  p.streamDone(&st);
  p.streamDone(&st);
  EXPECT_EQ(counter(metric), 1u);
  EXPECT_TRUE(st.doneCalled);
}

TEST_F(LoaderTest, KvFailsCleanlyWithoutStore) {
  rg::HostServices svc = services(false);
  svc.store = nullptr;
  PluginLoader noStore(svc);
  auto lp = noStore.loadProvider(fx("fx_good"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg_host_stream st;
  rg_request req = makeRequest("", "/good/v1/items/1");
  rg_host_sink out;
  rg::Status r = (*lp)->handleLocal(&st, req, &out);
  EXPECT_EQ(r.code(), Code::kUnavailable);
  EXPECT_EQ(r.message(), "plugin fx_good: handle_local: kv_set failed (RG_E_UNAVAILABLE)");
}

// ---- Exceptions --------------------------------------------------------------------------------

TEST_F(LoaderTest, SdkLayerTurnsThrowsIntoStatuses) {
  auto lp = loader_->loadProvider(fx("fx_throw_sdk"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg::ProviderPlugin& p = **lp;
  // Not overridden in the class: the SDK leaves the slots NULL.
  EXPECT_FALSE(p.hasResponseHeaders());
  EXPECT_FALSE(p.hasBodyChunk());
  EXPECT_TRUE(p.hasSseEvent());

  rg_host_stream st;
  rg_request req = makeRequest("{}");
  rg_account acct{};
  acct.struct_size = sizeof(acct);
  rg_host_sink up;
  rg::Status t = p.transformRequest(&st, req, acct, &up);
  EXPECT_EQ(t.code(), Code::kInternal);
  EXPECT_EQ(t.message(),
            "plugin fx_throw_sdk: transform_request: boom from the sdk layer (RG_E_INTERNAL)");

  rg_host_sink out;
  rg::Status l = p.handleLocal(&st, req, &out);
  EXPECT_EQ(l.code(), Code::kNotFound);
  EXPECT_EQ(l.message(), "plugin fx_throw_sdk: handle_local: no such item (RG_E_NOT_FOUND)");

  rg_host_sink repl;
  rg::Status e = p.onSseEvent(&st, event("x"), &repl);
  EXPECT_EQ(e.code(), Code::kInvalidArgument);
  EXPECT_EQ(e.message(), "plugin fx_throw_sdk: on_sse_event: bad event (RG_E_INVALID_ARG)");

  // The error text is per call: a later success carries none, a later failure only its own.
  rg_request_meta meta{};
  meta.struct_size = sizeof(meta);
  EXPECT_TRUE(p.parseRequest(&st, req, &meta).isOk());
  p.streamDone(&st);
  EXPECT_TRUE(st.doneCalled);
}

TEST_F(LoaderTest, SdkConstructorThrowFailsCreate) {
  auto lp = loader_->loadProvider(fx("fx_throw_sdk"), "\"throw\"");
  ASSERT_FALSE(lp.isOk());
  EXPECT_EQ(lp.status().code(), Code::kInternal);
  EXPECT_EQ(lp.status().message(),
            "librg_fx_throw_sdk.so: create: constructor refuses this config (RG_E_INTERNAL)");
}

TEST_F(LoaderTest, HostCatchesExceptionsThrownThroughRawCHooks) {
  auto lp = loader_->loadProvider(fx("fx_throw_raw"), "{}");
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  rg::ProviderPlugin& p = **lp;
  rg_host_stream st;
  rg_request req = makeRequest("{}");
  rg_account acct{};
  acct.struct_size = sizeof(acct);
  rg_host_sink up;
  rg::Status t = p.transformRequest(&st, req, acct, &up);
  EXPECT_EQ(t.code(), Code::kInternal);
  EXPECT_EQ(t.message(),
            "plugin fx_throw_raw: transform_request: threw an exception: boom "
            "through the C boundary");

  rg_host_sink repl;
  rg::Status e = p.onSseEvent(&st, event("x"), &repl);
  EXPECT_EQ(e.message(), "plugin fx_throw_raw: on_sse_event: threw an unknown exception");

  // classify_error wrote BLOCKED and then threw: the host default wins.
  EXPECT_EQ(p.classifyError(nullptr, 503, nullptr, 0, rg_str{"", 0}).cls, RG_EC_TRANSIENT);
  EXPECT_EQ(p.classifyError(nullptr, 429, nullptr, 0, rg_str{"", 0}).cls, RG_EC_RATE_LIMITED);

  p.streamDone(&st);  // throws inside: logged, not propagated
  EXPECT_TRUE(st.doneCalled);
}

// ---- Notifier ----------------------------------------------------------------------------------

rg_event makeEvent(const std::string& type, const std::string& json) {
  static thread_local std::string t;
  static thread_local std::string j;
  t = type;
  j = json;
  rg_event ev{};
  ev.struct_size = sizeof(ev);
  ev.type = s(t);
  ev.json = s(j);
  ev.id = rg_str{"evt-1", 5};
  ev.unix_ms = 1;
  return ev;
}

TEST_F(LoaderTest, NotifierLoadsAndReceivesEvents) {
  auto ln = loader_->loadNotifier(fx("fx_notifier"), "{\"u\":1}");
  ASSERT_TRUE(ln.isOk()) << ln.status().message();
  rg::NotifierPlugin& n = **ln;
  EXPECT_EQ(n.manifest().kind, RG_KIND_NOTIFIER);
  EXPECT_EQ(n.manifest().version, "0.1.0");

  ASSERT_TRUE(n.onEvent(makeEvent("account.cooldown", "{\"account\":\"a1\"}")).isOk());
  ASSERT_EQ(http_.size(), 1u);
  EXPECT_EQ(http_[0].url, "http://127.0.0.1:9/hook");
  EXPECT_EQ(http_[0].body, "{\"account\":\"a1\"}");
  EXPECT_EQ(http_[0].headers[1], (std::pair<std::string, std::string>{"x-event-id", "evt-1"}));
  EXPECT_EQ(http_[0].headers[2].second, "account.cooldown");
  EXPECT_EQ(http_[0].headers[3].second, "{\"u\":1}");  // the config reached create()
  EXPECT_EQ(counter("relaygate_plugin_fx_notifier_delivered_total"), 1u);

  rg::Status f = n.onEvent(makeEvent("fail", "{}"));
  EXPECT_EQ(f.code(), Code::kUnavailable);
  EXPECT_EQ(f.message(), "plugin fx_notifier: on_event: receiver is down (RG_E_UNAVAILABLE)");

  httpStatus_ = 502;
  rg::Status r = n.onEvent(makeEvent("test", "{}"));
  EXPECT_EQ(r.message(), "plugin fx_notifier: on_event: receiver answered 502 (RG_E_UNAVAILABLE)");
  EXPECT_EQ(counter("relaygate_plugin_fx_notifier_delivered_total"), 1u);
}

TEST_F(LoaderTest, NotifierWithoutHttpServiceGetsUnsupported) {
  PluginLoader noHttp(services(false));
  auto ln = noHttp.loadNotifier(fx("fx_notifier"), "{}");
  ASSERT_TRUE(ln.isOk()) << ln.status().message();
  rg::Status r = (*ln)->onEvent(makeEvent("test", "{}"));
  EXPECT_EQ(r.code(), Code::kFailedPrecondition);
  EXPECT_EQ(r.message(), "plugin fx_notifier: on_event: delivery failed (RG_E_UNSUPPORTED)");
}

// ---- Host services and defaults ----------------------------------------------------------------

std::string hex(const uint8_t* d, size_t n) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(k[d[i] >> 4]);
    out.push_back(k[d[i] & 15]);
  }
  return out;
}

TEST_F(LoaderTest, HostApiTableServices) {
  const rg_host_api* api = loader_->hostApi();
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->struct_size, sizeof(rg_host_api));
  EXPECT_EQ(api->abi_major, RG_ABI_MAJOR);
  EXPECT_EQ(api->abi_minor, RG_ABI_MINOR);
  EXPECT_EQ(api->now_unix_ms(), 1'700'000'123'456u);
  clock_.advanceMs(5);
  EXPECT_EQ(api->now_unix_ms(), 1'700'000'123'461u);
  EXPECT_EQ(api->monotonic_ns(), 1'700'000'123'461ull * 1'000'000ull);

  std::array<uint8_t, 32> d{};
  api->sha256(rg_str{"abc", 3}, d.data());
  EXPECT_EQ(hex(d.data(), 32), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string msg = "The quick brown fox jumps over the lazy dog";
  api->hmac_sha256(rg_str{"key", 3}, s(msg), d.data());
  EXPECT_EQ(hex(d.data(), 32), "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  api->hmac_sha256(rg_str{nullptr, 0}, rg_str{nullptr, 0}, d.data());
  EXPECT_EQ(hex(d.data(), 32), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");

  char buf[16];
  EXPECT_EQ(api->base64_encode(rg_str{"hello!?", 7}, nullptr, 0), 12u);
  std::memset(buf, '#', sizeof(buf));
  EXPECT_EQ(api->base64_encode(rg_str{"hello!?", 7}, buf, 11), 12u);  // too small: untouched
  EXPECT_EQ(buf[0], '#');
  EXPECT_EQ(api->base64_encode(rg_str{"hello!?", 7}, buf, 12), 12u);
  EXPECT_EQ(std::string(buf, 12), "aGVsbG8hPw==");
  EXPECT_EQ(buf[12], '#');  // no terminator written past the length
  EXPECT_EQ(api->base64_encode(rg_str{nullptr, 0}, buf, 16), 0u);

  rg_host_stream st;
  api->stream_set_data(&st, &st);
  EXPECT_EQ(api->stream_get_data(&st), &st);
}

TEST(ClassifyByStatus, DefaultTable) {
  struct Case {
    uint32_t status;
    rg_error_class cls;
  };
  const Case cases[] = {{200, RG_EC_NONE},       {400, RG_EC_CLIENT},    {404, RG_EC_CLIENT},
                        {413, RG_EC_CLIENT},     {422, RG_EC_CLIENT},    {418, RG_EC_CLIENT},
                        {401, RG_EC_AUTH},       {403, RG_EC_AUTH},      {429, RG_EC_RATE_LIMITED},
                        {529, RG_EC_OVERLOADED}, {500, RG_EC_TRANSIENT}, {502, RG_EC_TRANSIENT},
                        {503, RG_EC_TRANSIENT},  {504, RG_EC_TRANSIENT}, {599, RG_EC_TRANSIENT}};
  for (const Case& c : cases) {
    rg_error_info i = rg::classifyByStatus(c.status);
    EXPECT_EQ(i.cls, c.cls) << c.status;
    EXPECT_EQ(i.struct_size, sizeof(rg_error_info));
  }
}

TEST(PluginFileName, Convention) {
  EXPECT_EQ(rg::pluginFileName("claude"), "librg_claude.so");
}

}  // namespace
}  // namespace rgtest
