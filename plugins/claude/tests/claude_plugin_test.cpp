// The built plugin (librg_claude.so, loaded with dlopen exactly as the host does) driven through
// the SDK's FakeHost: routes, parse_request, transform_request, SSE and body usage, classify_error,
// LOCAL routes, per-stream state.
#include <cstddef>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "relaygate/testing/fake_host.hpp"
#include "sse_sample.h"

namespace {

using rg::sdk::testing::FakeHost;
using rg::sdk::testing::ProviderHarness;
using rg::sdk::testing::SseAction;
using rg::sdk::testing::TestAccount;
using rg::sdk::testing::TestRequest;

class ClaudePlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    manifest_ = host_.openLibrary(RG_CLAUDE_PLUGIN_FILE, &err);
    ASSERT_NE(manifest_, nullptr) << err;
    ASSERT_STREQ(manifest_->name, "claude");
    ASSERT_EQ(manifest_->kind, RG_KIND_PROVIDER);
    h_ = std::make_unique<ProviderHarness>(host_.loadProvider(*manifest_, "{}"));
    ASSERT_TRUE(h_->ok()) << h_->createError();
  }
  void TearDown() override { h_.reset(); }

  const rg::sdk::Route* route(const std::string& method, const std::string& path) const {
    for (const auto& r : h_->routes()) {
      if (r.method == method && r.path == path) {
        return &r;
      }
    }
    return nullptr;
  }

  TestRequest request(const std::string& path, const std::string& body,
                      const std::string& method = "POST") {
    const rg::sdk::Route* r = route(method, path);
    EXPECT_NE(r, nullptr) << method << " " << path;
    TestRequest t;
    t.routeId = r != nullptr ? r->id : 9999;
    t.method = method;
    t.path = path;
    t.body = body;
    return t;
  }

  static TestAccount console(const std::string& secret = "sk-ant-api03-SECRET") {
    TestAccount a;
    a.type = "claude-console";
    a.baseUrl = "http://127.0.0.1:4000";
    a.secret = secret;
    return a;
  }

  FakeHost host_{"claude"};
  const rg_plugin_manifest* manifest_ = nullptr;
  std::unique_ptr<ProviderHarness> h_;
};

const std::string kBody = R"({"model":"claude-sonnet-4-5-20250929","max_tokens":64,)"
                          R"("messages":[{"role":"user","content":"Hello"}]})";

TEST_F(ClaudePlugin, DeclaresAllRoutes) {
  for (const char* p :
       {"/api/v1/messages", "/claude/v1/messages", "/v1/messages", "/api/claude/v1/messages"}) {
    const auto* r = route("POST", p);
    ASSERT_NE(r, nullptr) << p;
    EXPECT_EQ(r->kind, RG_ROUTE_RELAY);
    EXPECT_EQ(r->shape, RG_SHAPE_ANTHROPIC);
    EXPECT_EQ(r->permission, "claude");
    EXPECT_EQ(r->accountTypes, "claude-official,claude-console");
    EXPECT_EQ(r->flags, 0u);
  }
  for (const char* p : {"/api/v1/messages/count_tokens", "/claude/v1/messages/count_tokens",
                        "/v1/messages/count_tokens"}) {
    const auto* r = route("POST", p);
    ASSERT_NE(r, nullptr) << p;
    EXPECT_EQ(r->kind, RG_ROUTE_RELAY);
    EXPECT_EQ(r->accountTypes, "claude-official,claude-console");
    EXPECT_EQ(r->flags, RG_ROUTE_SKIP_CONCURRENCY);
  }
  for (const char* p : {"/api/v1/models", "/claude/v1/models", "/v1/models", "/api/v1/me", "/v1/me",
                        "/claude/v1/me"}) {
    const auto* r = route("GET", p);
    ASSERT_NE(r, nullptr) << p;
    EXPECT_EQ(r->kind, RG_ROUTE_LOCAL);
    EXPECT_EQ(r->permission, "claude");
  }
  EXPECT_EQ(h_->routes().size(), 13u);
  // Route ids are unique.
  for (size_t i = 0; i < h_->routes().size(); ++i) {
    for (size_t j = i + 1; j < h_->routes().size(); ++j) {
      EXPECT_NE(h_->routes()[i].id, h_->routes()[j].id);
    }
  }
}

TEST_F(ClaudePlugin, ParseRequestModelStreamAndSession) {
  auto r = h_->parse(request("/v1/messages",
                             R"({"model":"claude-opus-4-1","stream":true,"system":"Be brief.",)"
                             R"("messages":[{"role":"user","content":"x"}]})"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.model, "claude-opus-4-1");
  EXPECT_TRUE(r.stream);
  // sha256("Be brief.") hex, first 32 characters.
  EXPECT_EQ(r.sessionKey, host_.sdkHost().sha256Hex("Be brief.").substr(0, 32));
  EXPECT_EQ(r.sessionKey.size(), 32u);
  h_->done();

  auto raw = h_->parse(
      request("/api/v1/messages",
              R"({"model":"m","metadata":{"user_id":"{\"device_id\":\"d\",\"account_uuid\":\"\",)"
              R"(\"session_id\":\"5b1f0c1e-1111-4222-8333-944445555666\"}"},"messages":[]})"));
  EXPECT_EQ(raw.sessionKey, "5b1f0c1e-1111-4222-8333-944445555666");
  h_->done();

  auto none = h_->parse(request("/v1/messages", R"({"model":"m","messages":[]})"));
  EXPECT_EQ(none.sessionKey, "");
  EXPECT_FALSE(none.stream);
  h_->done();

  // count_tokens never streams, even if the body says so.
  auto ct = h_->parse(request("/v1/messages/count_tokens", R"({"model":"m","stream":true})"));
  EXPECT_FALSE(ct.stream);
  EXPECT_EQ(ct.model, "m");
}

TEST_F(ClaudePlugin, ParseRequestReportsMaxTokensAndInputEstimate) {
  // kBody: messages "role"+"user"+"content"+"Hello" = 20 characters -> 5 tokens.
  auto r = h_->parse(request("/v1/messages", kBody));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.maxOutputTokens, 64u);
  EXPECT_EQ(r.inputTokensEstimate, 5u);
  EXPECT_FALSE(r.wroteBeyondStructSize);
  h_->done();

  // count_tokens produces no output: no output bound, but the prompt is still estimated.
  auto ct = h_->parse(request("/v1/messages/count_tokens", kBody));
  ASSERT_TRUE(ct.ok()) << ct.error;
  EXPECT_EQ(ct.maxOutputTokens, 0u);
  EXPECT_EQ(ct.inputTokensEstimate, 5u);
  h_->done();

  // An image counts a fixed 1600 tokens whatever its size; no max_tokens = 0.
  std::string img = R"({"model":"m","messages":[{"role":"user","content":[{"type":"image",)"
                    R"("source":{"type":"base64","media_type":"image/png","data":")" +
                    std::string(100000, 'A') + R"("}}]}]})";
  auto im = h_->parse(request("/api/v1/messages", img));
  ASSERT_TRUE(im.ok()) << im.error;
  EXPECT_EQ(im.maxOutputTokens, 0u);
  EXPECT_EQ(im.inputTokensEstimate, 1600u + 4u);  // + ceil(15 characters of role/user/content / 4)
}

TEST_F(ClaudePlugin, MinorOneHostGetsNoMinorTwoFields) {
  // A host built against ABI minor 1 hands a 48-byte rg_request_meta: nothing may be written
  // past it (the fake poisons and checks those bytes).
  auto r = h_->parse(request("/v1/messages", kBody),
                     static_cast<uint32_t>(offsetof(rg_request_meta, max_output_tokens)));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.model, "claude-sonnet-4-5-20250929");
  EXPECT_FALSE(r.wroteBeyondStructSize);
  EXPECT_FALSE(r.structSizeChanged);
  EXPECT_EQ(r.maxOutputTokens, 0u);
}

TEST_F(ClaudePlugin, DeeplyNestedBodyIsParsedWithoutRecursion) {
  // 2,000,000 nested arrays (4 MB): a recursive JSON parser overflows the thread's stack and
  // takes the whole gateway down; the parse must stay iterative. Through transform as well (the
  // body is forwarded, never re-serialised).
  const size_t depth = 2000000;
  std::string body = R"({"model":"claude-sonnet-4-5-20250929","max_tokens":8,"messages":)" +
                     std::string(depth, '[') + std::string(depth, ']') + "}";
  auto r = h_->parse(request("/v1/messages", body));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.model, "claude-sonnet-4-5-20250929");
  EXPECT_EQ(r.maxOutputTokens, 8u);
  auto t = h_->transform(request("/v1/messages", body), console());
  EXPECT_TRUE(t.ok()) << t.error;
  EXPECT_EQ(t.body.size(), body.size());
  h_->done();
}

TEST_F(ClaudePlugin, InvalidJsonIsInvalidArg) {
  auto r = h_->parse(request("/v1/messages", "{not json"));
  EXPECT_EQ(r.status, RG_E_INVALID_ARG);
  EXPECT_EQ(r.error, "request body is not valid JSON");
  h_->done();
  auto ct = h_->parse(request("/v1/messages/count_tokens", ""));
  EXPECT_EQ(ct.status, RG_E_INVALID_ARG);
}

TEST_F(ClaudePlugin, TransformForwardsAllowListedHeadersAndBodyUnchanged) {
  // A Claude-Code-shaped body: must reach upstream byte for byte (spacing, key order, escapes).
  std::string big(50000, 'x');
  std::string body =
      R"({"model":"claude-opus-4-1-20250805", "max_tokens":32000,"stream":true,)"
      R"("metadata":{"user_id":"{\"device_id\":\"d1\",\"account_uuid\":\"a1\",\"session_id\":\"s\"}"},)"
      R"("system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.0.1"},)"
      R"({"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral","ttl":"1h"}},)"
      R"({"type":"text","text":")" +
      big +
      R"("}],)"
      R"("messages":[{"role":"system","content":"inline \u00e9 system"},{"role":"user","content":"hi"}],)"
      R"("thinking":{"type":"enabled","budget_tokens":31999},"top_p":1.0,)"
      R"("context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]},)"
      R"("output_config":{"effort":"high"}})";
  TestRequest req = request("/api/v1/messages", body);
  req.query = "beta=true";
  req.withHeader("X-Api-Key", "cr_gatewaykey")
      .withHeader("Authorization", "Bearer cr_gatewaykey")
      .withHeader("Cookie", "a=b")
      .withHeader("Host", "gateway:3000")
      .withHeader("Content-Length", std::to_string(body.size()))
      .withHeader("Connection", "keep-alive")
      .withHeader("Accept-Encoding", "gzip, br")
      .withHeader("X-Unlisted-Header", "nope")
      .withHeader("Anthropic-Beta", "claude-code-20250219,oauth-2025-04-20")
      .withHeader("Anthropic-Version", "2023-06-01")
      .withHeader("X-Stainless-Lang", "js")
      .withHeader("x-app", "cli")
      .withHeader("User-Agent", "claude-cli/2.0.1 (external, cli)")
      .withHeader("Content-Type", "application/json")
      .withHeader("accept", "application/json");
  auto up = h_->transform(req, console());
  ASSERT_TRUE(up.ok()) << up.error;
  EXPECT_EQ(up.method, "POST");
  EXPECT_EQ(up.url, "http://127.0.0.1:4000/v1/messages?beta=true");
  EXPECT_EQ(up.body, body);
  EXPECT_EQ(up.header("x-api-key"), "sk-ant-api03-SECRET");
  EXPECT_FALSE(up.header("authorization").has_value());
  EXPECT_FALSE(up.header("cookie").has_value());
  EXPECT_FALSE(up.header("host").has_value());
  EXPECT_FALSE(up.header("content-length").has_value());
  EXPECT_FALSE(up.header("connection").has_value());
  EXPECT_FALSE(up.header("x-unlisted-header").has_value());
  EXPECT_EQ(up.header("accept-encoding"), "identity");
  EXPECT_EQ(up.header("anthropic-beta"), "claude-code-20250219,oauth-2025-04-20");
  EXPECT_EQ(up.header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(up.header("x-stainless-lang"), "js");
  EXPECT_EQ(up.header("x-app"), "cli");
  EXPECT_EQ(up.header("user-agent"), "claude-cli/2.0.1 (external, cli)");
  EXPECT_EQ(up.header("accept"), "application/json");
  // Exactly one of each header we set.
  int versions = 0;
  int encodings = 0;
  for (const auto& hd : up.headers) {
    versions += rg::sdk::equalsIgnoreCase(hd.first, "anthropic-version") ? 1 : 0;
    encodings += rg::sdk::equalsIgnoreCase(hd.first, "accept-encoding") ? 1 : 0;
    EXPECT_EQ(hd.second.find("cr_gatewaykey"), std::string::npos) << hd.first;
  }
  EXPECT_EQ(versions, 1);
  EXPECT_EQ(encodings, 1);
}

TEST_F(ClaudePlugin, TransformDefaultsAndBearerAuth) {
  TestRequest req = request("/v1/messages/count_tokens", kBody);
  auto up = h_->transform(req, console("oauth-access-token-xyz"));
  ASSERT_TRUE(up.ok()) << up.error;
  EXPECT_EQ(up.url, "http://127.0.0.1:4000/v1/messages/count_tokens");
  EXPECT_EQ(up.header("authorization"), "Bearer oauth-access-token-xyz");
  EXPECT_FALSE(up.header("x-api-key").has_value());
  EXPECT_EQ(up.header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(up.header("content-type"), "application/json");
  EXPECT_EQ(up.body, kBody);
}

TEST_F(ClaudePlugin, ConfiguredAnthropicVersionAndModels) {
  auto h =
      host_.loadProvider(*manifest_, R"({"anthropic_version":"2099-01-01","models":["claude-x"]})");
  ASSERT_TRUE(h.ok()) << h.createError();
  TestRequest req;
  for (const auto& r : h.routes()) {
    if (r.path == "/v1/messages") {
      req.routeId = r.id;
    }
  }
  req.body = kBody;
  auto up = h.transform(req, console());
  EXPECT_EQ(up.header("anthropic-version"), "2099-01-01");
  TestRequest models;
  models.method = "GET";
  for (const auto& r : h.routes()) {
    if (r.path == "/v1/models") {
      models.routeId = r.id;
    }
  }
  auto m = h.local(models);
  EXPECT_NE(m.body.find(R"("data":[{"id":"claude-x")"), std::string::npos) << m.body;
}

TEST_F(ClaudePlugin, BadConfigFailsCreate) {
  auto h = host_.loadProvider(*manifest_, R"({"models":"nope"})");
  EXPECT_FALSE(h.ok());
  EXPECT_EQ(h.createResult().status, RG_E_INVALID_ARG);
  EXPECT_NE(h.createError().find("models"), std::string::npos);
}

TEST_F(ClaudePlugin, UnsupportedAccountType) {
  TestAccount a = console();
  a.type = "claude-oauth";
  auto up = h_->transform(request("/v1/messages", kBody), a);
  EXPECT_EQ(up.status, RG_E_UNSUPPORTED);
  EXPECT_NE(up.error.find("claude-oauth"), std::string::npos);
  EXPECT_EQ(up.error.find("SECRET"), std::string::npos);
}

TEST_F(ClaudePlugin, OfficialAccountSendsBearerAndMergedOAuthBeta) {
  TestAccount a;
  a.type = "claude-official";
  a.baseUrl = "https://api.anthropic.com";
  a.secret = "sk-ant-oat01-ACCESS";  // looks like an API key: must still go as Bearer
  TestRequest req = request("/v1/messages", kBody);
  req.query = "beta=true";
  req.withHeader("X-Api-Key", "cr_gatewaykey")
      .withHeader("Anthropic-Beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
      .withHeader("anthropic-beta", "claude-code-20250219, fine-grained-tool-streaming-2025-05-14")
      .withHeader("User-Agent", "claude-cli/2.0.1 (external, cli)");
  auto up = h_->transform(req, a);
  ASSERT_TRUE(up.ok()) << up.error;
  EXPECT_EQ(up.url, "https://api.anthropic.com/v1/messages?beta=true");
  EXPECT_EQ(up.header("authorization"), "Bearer sk-ant-oat01-ACCESS");
  EXPECT_FALSE(up.header("x-api-key").has_value());
  int betas = 0;
  for (const auto& hd : up.headers) {
    betas += rg::sdk::equalsIgnoreCase(hd.first, "anthropic-beta") ? 1 : 0;
  }
  EXPECT_EQ(betas, 1);
  EXPECT_EQ(up.header("anthropic-beta"),
            "claude-code-20250219,interleaved-thinking-2025-05-14,"
            "fine-grained-tool-streaming-2025-05-14,oauth-2025-04-20");
  EXPECT_EQ(up.header("user-agent"), "claude-cli/2.0.1 (external, cli)");
  EXPECT_EQ(up.header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(up.header("accept-encoding"), "identity");
  EXPECT_EQ(up.body, kBody);
  h_->done();

  // No client betas: just the OAuth one. Client already sent it: not repeated.
  auto bare = h_->transform(request("/v1/messages/count_tokens", kBody), a);
  ASSERT_TRUE(bare.ok()) << bare.error;
  EXPECT_EQ(bare.url, "https://api.anthropic.com/v1/messages/count_tokens");
  EXPECT_EQ(bare.header("anthropic-beta"), "oauth-2025-04-20");
  EXPECT_EQ(bare.header("authorization"), "Bearer sk-ant-oat01-ACCESS");
  h_->done();
  TestRequest dup = request("/v1/messages", kBody);
  dup.withHeader("anthropic-beta", "oauth-2025-04-20,claude-code-20250219,oauth-2025-04-20");
  EXPECT_EQ(h_->transform(dup, a).header("anthropic-beta"),
            "oauth-2025-04-20,claude-code-20250219");
}

TEST_F(ClaudePlugin, ConsoleBetaIsForwardedAsSent) {
  TestRequest req = request("/v1/messages", kBody);
  req.withHeader("anthropic-beta", "claude-code-20250219");
  auto up = h_->transform(req, console());
  EXPECT_EQ(up.header("anthropic-beta"), "claude-code-20250219");  // no oauth flag added
  EXPECT_EQ(up.header("x-api-key"), "sk-ant-api03-SECRET");
  h_->done();
  auto none = h_->transform(request("/v1/messages", kBody), console());
  EXPECT_FALSE(none.header("anthropic-beta").has_value());
}

TEST_F(ClaudePlugin, UpstreamModelRewritesOnlyTheModelValue) {
  const std::string prefix = "{\"model\": ";
  const std::string oldValue = "\"claude-sonnet-4-5-20250929\"";
  const std::string suffix =
      " , \"max_tokens\":64,\"metadata\":{\"model\":\"x\"},"
      "\"messages\":[{\"role\":\"user\",\"content\":\"\\u00e9 \\\"model\\\"\"}]}";
  const std::string body = prefix + oldValue + suffix;
  ASSERT_TRUE(h_->parse(request("/v1/messages", body)).ok());
  TestAccount a = console();
  a.upstreamModel = "claude-opus-4-1-20250805";
  auto up = h_->transform(request("/v1/messages", body), a);
  ASSERT_TRUE(up.ok()) << up.error;
  const std::string want = "\"claude-opus-4-1-20250805\"";
  ASSERT_EQ(up.body.size(), body.size() - oldValue.size() + want.size());
  EXPECT_EQ(up.body.substr(0, prefix.size()), prefix);
  EXPECT_EQ(up.body.substr(prefix.size(), want.size()), want);
  EXPECT_EQ(up.body.substr(prefix.size() + want.size()), suffix);
  // Usage falls back to the requested name when upstream names no model; upstream's name wins
  // when it does (the host books usage under the requested model itself).
  h_->bodyChunk(R"({"usage":{"input_tokens":3,"output_tokens":4}})", true);
  EXPECT_EQ(h_->usage().model, "claude-sonnet-4-5-20250929");
  h_->done();

  // count_tokens too; the name is JSON-escaped.
  a.upstreamModel = "odd\"name";
  auto ct = h_->transform(request("/v1/messages/count_tokens", kBody), a);
  ASSERT_TRUE(ct.ok()) << ct.error;
  std::string expected = kBody;
  expected.replace(expected.find("\"claude-sonnet-4-5-20250929\""),
                   std::string("\"claude-sonnet-4-5-20250929\"").size(), "\"odd\\\"name\"");
  EXPECT_EQ(ct.body, expected);
  h_->done();

  // Same name or no mapping: body untouched.
  a.upstreamModel = "claude-sonnet-4-5-20250929";
  EXPECT_EQ(h_->transform(request("/v1/messages", kBody), a).body, kBody);
  h_->done();
  a.upstreamModel = "";
  EXPECT_EQ(h_->transform(request("/v1/messages", kBody), a).body, kBody);
}

TEST_F(ClaudePlugin, MinorZeroHostFieldsAreNotRead) {
  // A host built against ABI minor 0 hands a shorter rg_account: the plugin must not read past it.
  TestAccount a = console();
  a.upstreamModel = "claude-opus-4-1-20250805";  // the fake poisons it when the size excludes it
  a.structSize = static_cast<uint32_t>(offsetof(rg_account, upstream_model));
  auto up = h_->transform(request("/v1/messages", kBody), a);
  ASSERT_TRUE(up.ok()) << up.error;
  EXPECT_EQ(up.body, kBody);
}

TEST_F(ClaudePlugin, ClassifyScopesRateLimitToTheRequestedFamily) {
  // The account maps sonnet to opus; the limit is booked on the family the client asked for.
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  TestAccount a = console();
  a.upstreamModel = "claude-opus-4-1-20250805";
  ASSERT_TRUE(h_->transform(request("/v1/messages", kBody), a).ok());
  auto rl = h_->classify(429, {{"anthropic-ratelimit-unified-reset", "2023-11-14T23:13:20Z"}},
                         R"({"type":"error","error":{"type":"rate_limit_error"}})");
  EXPECT_EQ(rl.cls, RG_EC_RATE_LIMITED);
  EXPECT_EQ(rl.scope, "sonnet");
  EXPECT_EQ(rl.untilUnixMs, 1'700'003'600'000ull);
  EXPECT_EQ(h_->classify(429, {{"anthropic-ratelimit-unified-reset", "1700003600"}},
                         "You have run out of extra usage")
                .cls,
            RG_EC_CLIENT);
  EXPECT_EQ(h_->classify(403, {}, "OAuth authentication is currently not allowed").cls,
            RG_EC_BLOCKED);
  EXPECT_EQ(h_->classify(403, {}, "{}").cls, RG_EC_AUTH);
}

TEST_F(ClaudePlugin, StreamUsageIsReportedAndEventsForwardedRaw) {
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  auto events = rgtest::loadSse("text_stream.sse");
  ASSERT_EQ(events.size(), 8u);
  for (const auto& e : events) {
    auto r = h_->sseEvent(e.raw);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.action, SseAction::kForwarded);
    EXPECT_EQ(r.bytes, e.raw);
  }
  EXPECT_EQ(h_->usage().inputTokens, 472u);
  EXPECT_EQ(h_->usage().outputTokens, 15u);
  EXPECT_EQ(h_->usage().cacheCreation5mTokens, 1024u);
  EXPECT_EQ(h_->usage().cacheCreation1hTokens, 1024u);
  EXPECT_EQ(h_->usage().cacheReadTokens, 15360u);
  EXPECT_EQ(h_->usage().model, "claude-sonnet-4-5-20250929");
  EXPECT_NE(h_->streamData(), nullptr);
  h_->done();
  EXPECT_EQ(h_->streamData(), nullptr);  // per-stream state freed
}

TEST_F(ClaudePlugin, CutStreamStillBooksInputAndCache) {
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  auto events = rgtest::loadSse("cut_stream.sse");
  h_->sseEvent(events[0].raw);
  EXPECT_TRUE(h_->usageReported());
  EXPECT_EQ(h_->usage().inputTokens, 25u);
  EXPECT_EQ(h_->usage().cacheReadTokens, 4096u);
  for (size_t i = 1; i < events.size(); ++i) {
    h_->sseEvent(events[i].raw);
  }
  EXPECT_EQ(h_->usage().outputTokens, 21u);  // estimate: ceil(81 chars / 4)
  h_->done();
}

TEST_F(ClaudePlugin, CutStreamReportsTheOutputEstimateAtStreamDone) {
  // The upstream connection dies after two text deltas (no message_delta, no message_stop): the
  // host's last word on this stream, after on_stream_done, is message_start's input and cache
  // plus the output estimated from the deltas, never 0 output.
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  auto events = rgtest::loadSse("cut_stream.sse");
  for (const auto& e : events) {
    h_->sseEvent(e.raw);
  }
  int before = h_->usageReports();
  h_->done();
  EXPECT_GT(h_->usageReports(), before);  // reported again at stream end
  EXPECT_EQ(h_->usage().inputTokens, 25u);
  EXPECT_EQ(h_->usage().cacheReadTokens, 4096u);
  EXPECT_EQ(h_->usage().outputTokens, 21u);  // ceil(81 characters / 4)
  EXPECT_EQ(h_->usage().model, "claude-haiku-4-5-20251001");
}

TEST_F(ClaudePlugin, CutStreamBeforeAnyDeltaKeepsMessageStartOutput) {
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  h_->sseEvent(rgtest::loadSse("cut_stream.sse").at(0).raw);  // message_start only
  h_->done();
  ASSERT_TRUE(h_->usageReported());
  EXPECT_EQ(h_->usage().inputTokens, 25u);
  EXPECT_EQ(h_->usage().outputTokens, 1u);
}

TEST_F(ClaudePlugin, StreamWithoutUsageEventsReportsNothingAtStreamDone) {
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  h_->sseEvent("event: ping\ndata: {\"type\":\"ping\"}\n\n");
  h_->done();
  EXPECT_FALSE(h_->usageReported());
}

TEST_F(ClaudePlugin, ThinkingToolStreamUsage) {
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  for (const auto& e : rgtest::loadSse("thinking_tool_stream.sse")) {
    EXPECT_EQ(h_->sseEvent(e.raw).action, SseAction::kForwarded);
  }
  EXPECT_EQ(h_->usage().inputTokens, 1203u);
  EXPECT_EQ(h_->usage().outputTokens, 89u);
  EXPECT_EQ(h_->usage().cacheCreation5mTokens, 300u);
  EXPECT_EQ(h_->usage().model, "claude-opus-4-1-20250805");
}

TEST_F(ClaudePlugin, NonStreamUsageFromSplitBody) {
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  std::string body =
      R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",)"
      R"("content":[{"type":"text","text":"Hi \u2713"}],"stop_reason":"end_turn",)"
      R"("usage":{"input_tokens":11,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,)"
      R"("output_tokens":7}})";
  size_t third = body.size() / 3;
  for (size_t p = 0; p < body.size(); p += third) {
    auto r = h_->bodyChunk(body.substr(p, third), false);
    EXPECT_EQ(r.action, SseAction::kForwarded);
    EXPECT_EQ(r.bytes, body.substr(p, third));
  }
  EXPECT_FALSE(h_->usageReported());
  h_->bodyChunk("", true);
  ASSERT_TRUE(h_->usageReported());
  EXPECT_EQ(h_->usage().inputTokens, 11u);
  EXPECT_EQ(h_->usage().outputTokens, 7u);
  EXPECT_EQ(h_->usage().cacheCreation5mTokens, 3u);
  EXPECT_EQ(h_->usage().cacheReadTokens, 5u);
  h_->done();
}

TEST_F(ClaudePlugin, WholeJsonBodyWithoutEndMarkerIsBookedAtStreamDone) {
  // A chunked (non-SSE) JSON response arrived whole, but the client left before the host could
  // send the end-of-stream call: the upstream billed it, so on_stream_done still reports it.
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  std::string body = R"({"id":"msg_2","type":"message","model":"claude-haiku-4-5-20251001",)"
                     R"("content":[],"usage":{"input_tokens":13,"output_tokens":9}})";
  h_->bodyChunk(body.substr(0, 20), false);
  h_->bodyChunk(body.substr(20), false);
  EXPECT_FALSE(h_->usageReported());
  h_->done();
  ASSERT_TRUE(h_->usageReported());
  EXPECT_EQ(h_->usage().inputTokens, 13u);
  EXPECT_EQ(h_->usage().outputTokens, 9u);
  EXPECT_EQ(h_->usage().model, "claude-haiku-4-5-20251001");
}

TEST_F(ClaudePlugin, TruncatedJsonBodyReportsNothing) {
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  h_->bodyChunk(R"({"id":"msg_3","usage":{"input_tokens":13,"output)", false);
  h_->done();
  EXPECT_FALSE(h_->usageReported());
}

TEST_F(ClaudePlugin, EndedJsonBodyIsReportedOnce) {
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  h_->bodyChunk(R"({"usage":{"input_tokens":2,"output_tokens":3}})", true);
  EXPECT_EQ(h_->usageReports(), 1);
  h_->done();
  EXPECT_EQ(h_->usageReports(), 1);  // nothing left to parse at stream end
}

TEST_F(ClaudePlugin, ErrorAndCountTokensBodiesReportNoUsage) {
  ASSERT_TRUE(h_->parse(request("/v1/messages/count_tokens", kBody)).ok());
  h_->bodyChunk(R"({"input_tokens":42})", true);
  EXPECT_FALSE(h_->usageReported());
  h_->done();
  ASSERT_TRUE(h_->parse(request("/v1/messages", kBody)).ok());
  h_->bodyChunk(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
                true);
  EXPECT_FALSE(h_->usageReported());
}

TEST_F(ClaudePlugin, ClassifyError) {
  auto rl = h_->classify(
      429, {{"anthropic-ratelimit-unified-reset", "1700003600"}, {"retry-after", "60"}},
      R"({"type":"error","error":{"type":"rate_limit_error"}})");
  ASSERT_TRUE(rl.hookPresent);
  EXPECT_EQ(rl.cls, RG_EC_RATE_LIMITED);
  EXPECT_EQ(rl.untilUnixMs, 1'700'003'600'000ull);
  EXPECT_EQ(rl.retryAfterMs, 60'000u);
  EXPECT_EQ(rl.scope, "");
  EXPECT_FALSE(rl.reason.empty());
  EXPECT_EQ(h_->classify(429, {{"retry-after", "17"}}, "{}").cls, RG_EC_CLIENT);
  EXPECT_EQ(h_->classify(529, {}, "{}").cls, RG_EC_OVERLOADED);
  EXPECT_EQ(h_->classify(503, {}, "").cls, RG_EC_TRANSIENT);
  EXPECT_EQ(h_->classify(401, {}, "").cls, RG_EC_AUTH);
  EXPECT_EQ(h_->classify(400, {}, R"({"error":{"message":"prompt is too long"}})").cls,
            RG_EC_CONTEXT_TOO_LONG);
  EXPECT_EQ(h_->classify(403, {}, "This organization has been disabled.").cls, RG_EC_BLOCKED);
}

TEST_F(ClaudePlugin, ModelsAndMeShapes) {
  auto m = h_->local(request("/v1/models", "", "GET"));
  ASSERT_TRUE(m.ok()) << m.error;
  EXPECT_EQ(m.httpStatus, 200u);
  EXPECT_EQ(m.header("content-type"), "application/json");
  EXPECT_EQ(m.body.rfind(R"({"object":"list","data":[{"id":"claude-)", 0), 0u) << m.body;
  for (const char* field : {R"("object":"model")", R"("type":"model")", R"("display_name":)",
                            R"("created_at":")", R"("owned_by":"anthropic")", R"("created":)",
                            R"("has_more":false)", R"("first_id":"claude-)",
                            R"("last_id":"claude-)", R"("id":"claude-sonnet-4-5-20250929")"}) {
    EXPECT_NE(m.body.find(field), std::string::npos) << field;
  }
  h_->done();
  FakeHost::setNowMs(1'700'000'000'000ull);
  TestRequest me = request("/api/v1/me", "", "GET");
  me.keyId = "3f1c";
  me.keyName = "alice's key";
  auto r = h_->local(me);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.body, R"({"id":"user_3f1c","type":"user","display_name":"alice's key",)"
                    R"("created_at":"2023-11-14T22:13:20Z"})");
}

TEST_F(ClaudePlugin, StaticManifestMatchesTheLibrary) {
  EXPECT_EQ(manifest_->abi_major, RG_ABI_MAJOR);
  EXPECT_EQ(manifest_->struct_size, sizeof(rg_plugin_manifest));
  const auto* vt = static_cast<const rg_provider_vtable*>(manifest_->vtable);
  EXPECT_NE(vt->parse_request, nullptr);
  EXPECT_NE(vt->on_sse_event, nullptr);
  EXPECT_NE(vt->on_body_chunk, nullptr);
  EXPECT_NE(vt->classify_error, nullptr);
  EXPECT_NE(vt->handle_local, nullptr);
  // The host's default forwarding of status and headers is kept.
  EXPECT_EQ(vt->on_response_headers, nullptr);
}

}  // namespace
