// The plugin's pure logic, without any host.
#include "claude_logic.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sse_sample.h"

namespace rg::claude {
namespace {

// ---- header allow-list, URL, auth ---------------------------------------------------------------

TEST(HeaderAllowList, ForwardsListedHeadersCaseInsensitively) {
  for (const char* h :
       {"accept", "X-Stainless-Retry-Count", "x-stainless-timeout", "x-stainless-lang",
        "x-stainless-package-version", "x-stainless-os", "x-stainless-arch", "x-stainless-runtime",
        "x-stainless-runtime-version", "x-stainless-helper-method",
        "anthropic-dangerous-direct-browser-access", "Anthropic-Version", "x-app", "ANTHROPIC-BETA",
        "accept-language", "sec-fetch-mode", "User-Agent", "content-type"}) {
    EXPECT_TRUE(isForwardedHeader(h)) << h;
  }
}

TEST(HeaderAllowList, NeverForwardsCredentialsOrHopByHop) {
  for (const char* h :
       {"x-api-key", "X-Api-Key", "authorization", "cookie", "host", "content-length", "connection",
        "accept-encoding", "transfer-encoding", "x-forwarded-for", "x-unlisted-header",
        "proxy-authorization", "", "x-stainless", "anthropic-beta-x", "accep"}) {
    EXPECT_FALSE(isForwardedHeader(h)) << h;
  }
}

TEST(UpstreamUrl, MessagesAndCountTokensWithQuery) {
  EXPECT_EQ(buildUpstreamUrl("https://api.anthropic.com", false, ""),
            "https://api.anthropic.com/v1/messages");
  EXPECT_EQ(buildUpstreamUrl("https://api.anthropic.com", false, "beta=true"),
            "https://api.anthropic.com/v1/messages?beta=true");
  EXPECT_EQ(buildUpstreamUrl("http://127.0.0.1:9/", true, "beta=true&x=1"),
            "http://127.0.0.1:9/v1/messages/count_tokens?beta=true&x=1");
  EXPECT_EQ(buildUpstreamUrl("https://proxy.example/anthropic", true, ""),
            "https://proxy.example/anthropic/v1/messages/count_tokens");
}

TEST(AuthHeader, ApiKeyOrBearer) {
  EXPECT_EQ(authHeader("sk-ant-api03-abc"),
            (std::pair<std::string, std::string>{"x-api-key", "sk-ant-api03-abc"}));
  EXPECT_EQ(authHeader("sk-ant-oat01-tok"),
            (std::pair<std::string, std::string>{"x-api-key", "sk-ant-oat01-tok"}));
  EXPECT_EQ(authHeader("cr_relaykey"),
            (std::pair<std::string, std::string>{"authorization", "Bearer cr_relaykey"}));
  EXPECT_EQ(authHeader("sk-other"),
            (std::pair<std::string, std::string>{"authorization", "Bearer sk-other"}));
}

TEST(AuthHeader, OfficialAccountsAlwaysSendBearer) {
  using Pair = std::pair<std::string, std::string>;
  // Even a token that looks like an API key: OAuth accounts never send x-api-key.
  EXPECT_EQ(authHeaderFor("claude-official", "sk-ant-oat01-tok"),
            (Pair{"authorization", "Bearer sk-ant-oat01-tok"}));
  EXPECT_EQ(authHeaderFor("claude-official", "opaque"), (Pair{"authorization", "Bearer opaque"}));
  // Console keeps the key-shape rule.
  EXPECT_EQ(authHeaderFor("claude-console", "sk-ant-api03-abc"),
            (Pair{"x-api-key", "sk-ant-api03-abc"}));
  EXPECT_EQ(authHeaderFor("claude-console", "cr_relay"),
            (Pair{"authorization", "Bearer cr_relay"}));
}

TEST(BetaMerge, AddsOAuthFlagKeepsOrderDropsRepeats) {
  EXPECT_EQ(mergeBetas({}, kOAuthBeta), "oauth-2025-04-20");
  EXPECT_EQ(mergeBetas({""}, kOAuthBeta), "oauth-2025-04-20");
  EXPECT_EQ(mergeBetas({"claude-code-20250219,interleaved-thinking-2025-05-14"}, kOAuthBeta),
            "claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20");
  // Already present: kept where the client put it, not added twice.
  EXPECT_EQ(mergeBetas({"claude-code-20250219, oauth-2025-04-20 ,fine-grained-tool-streaming"},
                       kOAuthBeta),
            "claude-code-20250219,oauth-2025-04-20,fine-grained-tool-streaming");
  // Repeats within and across header lines, blanks and stray commas.
  EXPECT_EQ(mergeBetas({"a,b,,a", " b , c", "oauth-2025-04-20,a,"}, kOAuthBeta),
            "a,b,c,oauth-2025-04-20");
  // Flags are compared exactly: a different version is a different flag.
  EXPECT_EQ(mergeBetas({"oauth-2024-01-01"}, kOAuthBeta), "oauth-2024-01-01,oauth-2025-04-20");
}

// ---- model mapping ------------------------------------------------------------------------------

// Checks that `out` is `in` with exactly the byte range [begin, end) replaced by `with`.
void expectSurgical(const std::string& in, const std::string& out, size_t begin, size_t end,
                    const std::string& with) {
  ASSERT_EQ(out.size(), in.size() - (end - begin) + with.size());
  EXPECT_EQ(out.substr(0, begin), in.substr(0, begin));
  EXPECT_EQ(out.substr(begin, with.size()), with);
  EXPECT_EQ(out.substr(begin + with.size()), in.substr(end));
}

TEST(ModelRewrite, ReplacesOnlyTheTopLevelValueBytes) {
  std::string prefix =
      "{ \"max_tokens\" : 10,\n  \"metadata\":{\"model\":\"keep-me\"},\"model\" :\t";
  std::string oldValue = "\"claude-sonnet-4-5\"";
  std::string suffix =
      " ,\"messages\":[{\"role\":\"user\",\"content\":\"model \\\"x\\\" \\u00e9 {[\"}],"
      "\"tools\":[{\"name\":\"model\",\"input_schema\":{\"model\":\"no\"}}],\"n\":1.5e3 }\n";
  std::string body = prefix + oldValue + suffix;
  std::string out;
  ASSERT_TRUE(rewriteTopLevelModel(body, "claude-opus-4-1-20250805", &out));
  expectSurgical(body, out, prefix.size(), prefix.size() + oldValue.size(),
                 "\"claude-opus-4-1-20250805\"");
  // The result is still valid JSON with the new model and the nested ones untouched.
  ParsedRequest p = parseRequestBody(out);
  EXPECT_TRUE(p.validJson);
  EXPECT_EQ(p.model, "claude-opus-4-1-20250805");
  EXPECT_NE(out.find("\"model\":\"keep-me\""), std::string::npos);
}

TEST(ModelRewrite, EscapesTheNewName) {
  std::string body = R"({"model":"a","x":1})";
  std::string out;
  ASSERT_TRUE(rewriteTopLevelModel(body, "we\"ird\\name\n\x01", &out));
  EXPECT_EQ(out, R"({"model":"we\"ird\\name\n\u0001","x":1})");
  EXPECT_EQ(parseRequestBody(out).model, "we\"ird\\name\n\x01");
  // Non-ASCII passes through as UTF-8.
  ASSERT_TRUE(rewriteTopLevelModel(body, "mod\xc3\xa9le", &out));
  EXPECT_EQ(out, "{\"model\":\"mod\xc3\xa9le\",\"x\":1}");
}

TEST(ModelRewrite, EscapedKeysAndValuesAreDecodedBeforeComparing) {
  std::string out;
  // "\u006dodel" is "model".
  ASSERT_TRUE(rewriteTopLevelModel(R"({"\u006dodel":"x"})", "y", &out));
  EXPECT_EQ(out, R"({"\u006dodel":"y"})");
  // The value already names the target (escaped): nothing to do.
  EXPECT_FALSE(rewriteTopLevelModel(R"({"model":"\u0079"})", "y", &out));
  // A value with an escaped quote is skipped as one string.
  ASSERT_TRUE(rewriteTopLevelModel(R"({"model":"a\"b","k":"v"})", "c", &out));
  EXPECT_EQ(out, R"({"model":"c","k":"v"})");
}

TEST(ModelRewrite, NothingToDo) {
  std::string out = "untouched";
  EXPECT_FALSE(rewriteTopLevelModel(R"({"model":"same"})", "same", &out));
  EXPECT_FALSE(rewriteTopLevelModel(R"({"messages":[{"model":"nested"}]})", "x", &out));
  EXPECT_FALSE(rewriteTopLevelModel(R"({"model":null})", "x", &out));
  EXPECT_FALSE(rewriteTopLevelModel(R"({"model":["a"]})", "x", &out));
  EXPECT_FALSE(rewriteTopLevelModel("{}", "x", &out));
  EXPECT_FALSE(rewriteTopLevelModel("", "x", &out));
  EXPECT_FALSE(rewriteTopLevelModel(R"(["model","a"])", "x", &out));
  EXPECT_FALSE(rewriteTopLevelModel(R"({"model":"a")", "x", &out));  // unterminated
  EXPECT_FALSE(rewriteTopLevelModel(R"({"model":"a"} trailing)", "x", &out));
  EXPECT_FALSE(rewriteTopLevelModel(R"({"model" "a"})", "x", &out));  // no colon
  EXPECT_EQ(out, "untouched");
}

TEST(ModelRewrite, EveryTopLevelDuplicateIsMapped) {
  // Parsers disagree on which duplicate wins; mapping both leaves no way to reach the other model.
  std::string out;
  ASSERT_TRUE(rewriteTopLevelModel(R"({"model":"a","x":{"model":"n"},"model":"b"})", "z", &out));
  EXPECT_EQ(out, R"({"model":"z","x":{"model":"n"},"model":"z"})");
}

// ---- request parsing and session source ---------------------------------------------------------

TEST(ParseRequest, ModelAndStreamFlag) {
  auto p = parseRequestBody(R"({"model":"claude-opus-4-1","stream":true,"messages":[]})");
  EXPECT_TRUE(p.validJson);
  EXPECT_EQ(p.model, "claude-opus-4-1");
  EXPECT_TRUE(p.stream);
  EXPECT_FALSE(parseRequestBody(R"({"model":"m","stream":"true"})").stream);
  EXPECT_FALSE(parseRequestBody(R"({"model":"m","stream":false})").stream);
  EXPECT_FALSE(parseRequestBody(R"({"model":"m"})").stream);
}

TEST(ParseRequest, InvalidJsonIsRejected) {
  EXPECT_FALSE(parseRequestBody("{not json").validJson);
  EXPECT_FALSE(parseRequestBody("").validJson);
  EXPECT_FALSE(parseRequestBody("[1,2]").validJson);
  EXPECT_FALSE(parseRequestBody(R"({"model":"m"} trailing)").validJson);
  EXPECT_TRUE(parseRequestBody("{}").validJson);
}

TEST(ParseRequest, MaxTokens) {
  EXPECT_EQ(parseRequestBody(R"({"model":"m","max_tokens":4096})").maxTokens, 4096u);
  EXPECT_EQ(parseRequestBody(R"({"model":"m"})").maxTokens, 0u);
  EXPECT_EQ(parseRequestBody(R"({"max_tokens":"4096"})").maxTokens, 0u);  // not a number
  EXPECT_EQ(parseRequestBody(R"({"max_tokens":-5})").maxTokens, 0u);
  EXPECT_EQ(parseRequestBody(R"({"max_tokens":100.7})").maxTokens, 100u);
  // A client may send any number: clamped, never an undefined conversion.
  EXPECT_EQ(parseRequestBody(R"({"max_tokens":1e300})").maxTokens, UINT64_MAX);
  EXPECT_EQ(parseRequestBody(R"({"max_tokens":18446744073709551615})").maxTokens, UINT64_MAX);
}

TEST(PromptEstimate, CharactersOfStringsAndMemberNamesOverFour) {
  // system "Be brief." = 9; messages: "role"+"user"+"content"+"Hello" = 4+4+7+5 = 20.
  auto p = parseRequestBody(R"({"model":"claude-x","max_tokens":64,"system":"Be brief.",)"
                            R"("messages":[{"role":"user","content":"Hello"}]})");
  EXPECT_EQ(p.prompt.chars, 29u);
  EXPECT_EQ(p.prompt.mediaBlocks, 0u);
  EXPECT_EQ(p.prompt.tokens(), 8u);  // ceil(29 / 4)
  // Members outside system / messages / tools (model, metadata, ...) do not count.
  auto q =
      parseRequestBody(R"({"model":"a-very-long-model-name","metadata":{"user_id":"u"},)"
                       R"("system":"Be brief.","messages":[{"role":"user","content":"Hello"}]})");
  EXPECT_EQ(q.prompt.chars, 29u);
  // Characters, not bytes: "éééé" is 4 characters (8 bytes), 1 token.
  auto u = parseRequestBody("{\"system\":\"\u00e9\u00e9\u00e9\u00e9\"}");
  EXPECT_EQ(u.prompt.chars, 4u);
  EXPECT_EQ(u.prompt.tokens(), 1u);
  EXPECT_EQ(parseRequestBody(R"({"model":"m"})").prompt.tokens(), 0u);
}

TEST(PromptEstimate, ToolsAndSystemBlocksCount) {
  // system blocks: "type"+"text"+"text"+"Rules" = 4+4+4+5 = 17.
  // tools: "name"+"get"+"input_schema"+"type"+"object" = 4+3+12+4+6 = 29; numbers not counted.
  auto p =
      parseRequestBody(R"({"system":[{"type":"text","text":"Rules"}],)"
                       R"("tools":[{"name":"get","input_schema":{"type":"object"},"max":5}]})");
  EXPECT_EQ(p.prompt.chars, 17u + 29u + 3u);  // + "max"
  EXPECT_EQ(p.prompt.tokens(), 13u);          // ceil(49 / 4)
}

TEST(PromptEstimate, MediaBlocksCountAFixedAmountNotTheirBytes) {
  std::string big(40000, 'A');  // 40 KB of base64 would be 10000 "tokens" by size
  std::string body =
      R"({"messages":[{"role":"user","content":[)"
      R"({"type":"image","source":{"type":"base64","media_type":"image/png","data":")" +
      big +
      R"("}},)"
      R"({"type":"document","source":{"type":"base64","media_type":"application/pdf","data":")" +
      big +
      R"("}},)"
      R"({"type":"image","source":{"type":"url","url":"https://example.test/a.png"}},)"
      R"({"type":"document","source":{"type":"text","media_type":"text/plain","data":"abcd"}},)"
      R"({"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{}}]}]}]})";
  auto p = parseRequestBody(body);
  ASSERT_TRUE(p.validJson);
  EXPECT_EQ(p.prompt.mediaBlocks, 4u);  // 2 images, the PDF, the image inside the tool result
  // Text document counted as text: "type"+"document"+"source"+"type"+"text"+"media_type"+
  // "text/plain"+"data"+"abcd" = 4+8+6+4+4+10+10+4+4 = 54; the tool_result wrapper:
  // "type"+"tool_result"+"tool_use_id"+"t"+"content" = 4+11+11+1+7 = 34; the message:
  // "role"+"user"+"content" = 15.
  EXPECT_EQ(p.prompt.chars, 54u + 34u + 15u);
  EXPECT_EQ(p.prompt.tokens(), 4u * kMediaBlockTokens + 26u);  // ceil(103 / 4) = 26
}

TEST(PromptEstimate, DeepNestingDoesNotRecurse) {
  // rapidjson parses this (it is within its own limits); the estimate walk must not overflow.
  std::string deep = R"({"tools":)";
  for (int i = 0; i < 5000; ++i) {
    deep += "[";
  }
  deep += R"("abcd")";
  for (int i = 0; i < 5000; ++i) {
    deep += "]";
  }
  deep += "}";
  auto p = parseRequestBody(deep);
  ASSERT_TRUE(p.validJson);
  EXPECT_EQ(p.prompt.chars, 4u);
}

TEST(SessionSource, JsonStringUserIdWins) {
  auto p = parseRequestBody(
      R"({"metadata":{"user_id":"{\"device_id\":\"d\",\"account_uuid\":\"a\",\"session_id\":\"5b1f0c1e-1111-4222-8333-944445555666\"}"},)"
      R"("system":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}],)"
      R"("messages":[{"role":"user","content":"hi"}]})");
  EXPECT_TRUE(p.session.raw);
  EXPECT_EQ(p.session.value, "5b1f0c1e-1111-4222-8333-944445555666");
}

TEST(SessionSource, LegacyUserIdForm) {
  std::string hex(64, 'a');
  auto p = parseRequestBody(R"({"metadata":{"user_id":"user_)" + hex +
                            R"(_account__session_0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},)"
                            R"("messages":[{"role":"user","content":"hi"}]})");
  EXPECT_TRUE(p.session.raw);
  EXPECT_EQ(p.session.value, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  // A user_id without a session falls through to the text sources.
  auto q = parseRequestBody(R"({"metadata":{"user_id":"someone"},)"
                            R"("messages":[{"role":"user","content":"hi"}]})");
  EXPECT_FALSE(q.session.raw);
  EXPECT_EQ(q.session.value, "hi");
}

TEST(SessionSource, CacheControlledSystemTextPlusFirstMessage) {
  auto p = parseRequestBody(
      R"({"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.0.1"},)"
      R"({"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral","ttl":"1h"}},)"
      R"({"type":"text","text":"More.","cache_control":{"type":"ephemeral"}}],)"
      R"("messages":[{"role":"user","content":[{"type":"text","text":"first","cache_control":{"type":"ephemeral"}}]},)"
      R"({"role":"user","content":"second"}]})");
  EXPECT_FALSE(p.session.raw);
  // The billing header (no cache_control) is not part of the key, so it may vary per request.
  EXPECT_EQ(p.session.value, "You are Claude Code.More.first");
}

TEST(SessionSource, CachedSystemWithoutCachedMessages) {
  auto p = parseRequestBody(
      R"({"system":[{"type":"text","text":"Cached","cache_control":{"type":"ephemeral"}}],)"
      R"("messages":[{"role":"user","content":"hello"}]})");
  EXPECT_EQ(p.session.value, "Cached");
}

TEST(SessionSource, FullSystemTextThenFirstMessage) {
  EXPECT_EQ(parseRequestBody(R"({"system":"Be brief.","messages":[{"role":"user","content":"x"}]})")
                .session.value,
            "Be brief.");
  EXPECT_EQ(
      parseRequestBody(R"({"system":[{"type":"text","text":"A"},{"type":"text","text":"B"}]})")
          .session.value,
      "AB");
  EXPECT_EQ(
      parseRequestBody(R"({"messages":[{"role":"user","content":[{"type":"image","source":{}},)"
                       R"({"type":"text","text":"look"},{"type":"text","text":" here"}]}]})")
          .session.value,
      "look here");
  auto none = parseRequestBody(R"({"model":"m","messages":[]})");
  EXPECT_FALSE(none.session.raw);
  EXPECT_EQ(none.session.value, "");
}

TEST(SessionSource, HexPrefix) {
  uint8_t d[32];
  for (int i = 0; i < 32; ++i) {
    d[i] = static_cast<uint8_t>(i * 17);
  }
  EXPECT_EQ(hexPrefix(d, 16), "00112233445566778899aabbccddeeff");
  EXPECT_EQ(hexPrefix(d, 16).size(), 32u);
}

TEST(ModelFamily, Families) {
  EXPECT_STREQ(modelFamily("claude-opus-4-1-20250805"), "opus");
  EXPECT_STREQ(modelFamily("claude-3-5-Sonnet-latest"), "sonnet");
  EXPECT_STREQ(modelFamily("claude-haiku-4-5"), "haiku");
  EXPECT_STREQ(modelFamily("gpt-4o"), "");
  EXPECT_STREQ(modelFamily(""), "");
}

// ---- SSE usage ----------------------------------------------------------------------------------

Usage track(const std::vector<rgtest::SseSample>& events, int* reports = nullptr) {
  SseUsageTracker t;
  int n = 0;
  for (const auto& e : events) {
    if (t.onEvent(e.event, e.data)) {
      ++n;
    }
  }
  if (reports != nullptr) {
    *reports = n;
  }
  return t.totals();
}

TEST(SseUsage, TextStreamWith5mAnd1hCache) {
  int reports = 0;
  Usage u = track(rgtest::loadSse("text_stream.sse"), &reports);
  EXPECT_EQ(u.input, 472u);
  EXPECT_EQ(u.cache5m, 1024u);  // detailed object replaces the 2048 total
  EXPECT_EQ(u.cache1h, 1024u);
  EXPECT_EQ(u.cacheRead, 15360u);
  EXPECT_EQ(u.output, 15u);
  EXPECT_EQ(u.model, "claude-sonnet-4-5-20250929");
  EXPECT_GE(reports, 2);  // at least after message_start and message_delta
}

TEST(SseUsage, ThinkingAndToolUseWithCacheTotalOnly) {
  Usage u = track(rgtest::loadSse("thinking_tool_stream.sse"));
  EXPECT_EQ(u.input, 1203u);
  EXPECT_EQ(u.cache5m, 300u);  // no detailed object: all creation tokens are 5m
  EXPECT_EQ(u.cache1h, 0u);
  EXPECT_EQ(u.cacheRead, 0u);
  EXPECT_EQ(u.output, 89u);
  EXPECT_EQ(u.model, "claude-opus-4-1-20250805");
}

TEST(SseUsage, CutStreamKeepsInputAndEstimatesOutput) {
  auto events = rgtest::loadSse("cut_stream.sse");
  SseUsageTracker t;
  ASSERT_TRUE(t.onEvent(events[0].event, events[0].data));
  Usage afterStart = t.totals();
  EXPECT_EQ(afterStart.input, 25u);
  EXPECT_EQ(afterStart.cacheRead, 4096u);
  EXPECT_EQ(afterStart.output, 1u);
  for (size_t i = 1; i < events.size(); ++i) {
    t.onEvent(events[i].event, events[i].data);
  }
  // 45 + 36 characters of text deltas -> ceil(81 / 4) = 21.
  EXPECT_EQ(t.totals().output, 21u);
  EXPECT_EQ(t.totals().input, 25u);
}

TEST(SseUsage, EstimateCountsCharactersNotBytesAndRealDeltaWins) {
  SseUsageTracker t;
  t.onEvent("message_start", R"({"type":"message_start","message":{"model":"m","usage":)"
                             R"({"input_tokens":2,"output_tokens":0}}})");
  // 8 characters, 20 bytes.
  t.onEvent("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":)"
                                   R"({"type":"text_delta","text":"ñññ😊😊😊ab"}})");
  EXPECT_EQ(t.totals().output, 2u);
  t.onEvent("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":)"
                                   R"({"type":"thinking_delta","thinking":"abcdefgh"}})");
  EXPECT_EQ(t.totals().output, 4u);
  EXPECT_TRUE(t.onEvent("message_delta", R"({"type":"message_delta","delta":{},"usage":)"
                                         R"({"output_tokens":3}})"));
  EXPECT_EQ(t.totals().output, 3u);
  // After the real count, deltas no longer move it.
  EXPECT_FALSE(t.onEvent("content_block_delta", R"({"type":"content_block_delta","delta":)"
                                                R"({"type":"text_delta","text":"more text"}})"));
  EXPECT_EQ(t.totals().output, 3u);
}

TEST(SseUsage, MultipleMessagesInOneStreamAreSummed) {
  auto a = rgtest::loadSse("text_stream.sse");
  auto b = rgtest::loadSse("thinking_tool_stream.sse");
  std::vector<rgtest::SseSample> both = a;
  both.insert(both.end(), b.begin(), b.end());
  Usage u = track(both);
  EXPECT_EQ(u.input, 472u + 1203u);
  EXPECT_EQ(u.output, 15u + 89u);
  EXPECT_EQ(u.cache5m, 1024u + 300u);
  EXPECT_EQ(u.cache1h, 1024u);
  EXPECT_EQ(u.cacheRead, 15360u);
  EXPECT_EQ(u.model, "claude-opus-4-1-20250805");
}

TEST(SseUsage, MessageDeltaUsageTakesNonZeroInputAndCache) {
  SseUsageTracker t;
  t.onEvent("message_start", R"({"type":"message_start","message":{"model":"m","usage":)"
                             R"({"input_tokens":0,"output_tokens":1}}})");
  t.onEvent("message_delta", R"({"type":"message_delta","usage":{"input_tokens":50,)"
                             R"("cache_read_input_tokens":0,"cache_creation_input_tokens":7,)"
                             R"("output_tokens":12}})");
  Usage u = t.totals();
  EXPECT_EQ(u.input, 50u);
  EXPECT_EQ(u.cache5m, 7u);
  EXPECT_EQ(u.output, 12u);
}

TEST(SseUsage, IgnoresOtherEventsAndGarbage) {
  SseUsageTracker t;
  EXPECT_FALSE(t.onEvent("ping", R"({"type": "ping"})"));
  EXPECT_FALSE(t.onEvent("message_start", "{broken"));
  EXPECT_FALSE(t.onEvent("error", R"({"type":"error","error":{"type":"overloaded_error"}})"));
  EXPECT_FALSE(t.seenAny());
  EXPECT_EQ(t.totals(), Usage{});
}

TEST(JsonUsage, NonStreamBody) {
  Usage u;
  ASSERT_TRUE(parseJsonUsage(
      R"({"id":"msg_1","type":"message","model":"claude-sonnet-4-5","content":[],)"
      R"("usage":{"input_tokens":11,"cache_creation_input_tokens":9,"cache_read_input_tokens":5,)"
      R"("cache_creation":{"ephemeral_5m_input_tokens":3,"ephemeral_1h_input_tokens":6},)"
      R"("output_tokens":7}})",
      &u));
  EXPECT_EQ(u.input, 11u);
  EXPECT_EQ(u.output, 7u);
  EXPECT_EQ(u.cache5m, 3u);
  EXPECT_EQ(u.cache1h, 6u);
  EXPECT_EQ(u.cacheRead, 5u);
  EXPECT_EQ(u.model, "claude-sonnet-4-5");
  EXPECT_FALSE(parseJsonUsage(R"({"input_tokens":12})", &u));  // count_tokens answer
  EXPECT_FALSE(parseJsonUsage(R"({"type":"error","error":{}})", &u));
  EXPECT_FALSE(parseJsonUsage("not json", &u));
}

// ---- error classification -----------------------------------------------------------------------

struct ClassifyCase {
  uint32_t status;
  HeaderList headers;
  std::string body;
  std::string model;
  ErrorClass want;
};

TEST(ClassifyError, Table) {
  const uint64_t now = 1'700'000'000'000ull;
  std::vector<ClassifyCase> cases = {
      {400,
       {},
       R"({"error":{"message":"prompt is too long: 210000 tokens > 200000 maximum"}})",
       "",
       ErrorClass::kContextTooLong},
      {400,
       {},
       R"({"error":{"message":"input length and `max_tokens` exceed context limit"}})",
       "",
       ErrorClass::kContextTooLong},
      {400,
       {},
       R"({"error":{"type":"invalid_request_error","message":"messages: required"}})",
       "",
       ErrorClass::kClient},
      {404, {}, "{}", "", ErrorClass::kClient},
      {413, {}, "{}", "", ErrorClass::kClient},
      {422, {}, "{}", "", ErrorClass::kClient},
      {400,
       {},
       R"({"error":{"message":"This organization has been disabled."}})",
       "",
       ErrorClass::kBlocked},
      {403,
       {},
       R"({"error":{"message":"OAuth authentication is currently not allowed for this organization."}})",
       "",
       ErrorClass::kBlocked},
      {400,
       {},
       R"({"error":{"message":"Your credit balance is too low to access the Anthropic API."}})",
       "",
       ErrorClass::kQuotaExhausted},
      {401, {}, R"({"error":{"type":"authentication_error"}})", "", ErrorClass::kAuth},
      {403, {}, R"({"error":{"type":"permission_error"}})", "", ErrorClass::kAuth},
      {429,
       {{"anthropic-ratelimit-unified-reset", "1700003600"}},
       "{}",
       "claude-opus-4-1",
       ErrorClass::kRateLimited},
      {429, {{"retry-after", "30"}}, "{}", "", ErrorClass::kClient},
      {429,
       {{"anthropic-ratelimit-unified-reset", "1700003600"}},
       R"({"error":{"message":"You're out of extra usage"}})",
       "",
       ErrorClass::kClient},
      {529, {}, R"({"error":{"type":"overloaded_error"}})", "", ErrorClass::kOverloaded},
      {500, {}, "{}", "", ErrorClass::kTransient},
      {502, {}, "", "", ErrorClass::kTransient},
      {503, {}, "", "", ErrorClass::kTransient},
      {504, {}, "", "", ErrorClass::kTransient},
      {418, {}, "", "", ErrorClass::kClient},
  };
  for (const auto& c : cases) {
    ErrorVerdict v = classifyError(c.status, c.headers, c.body, c.model, now);
    EXPECT_EQ(static_cast<int>(v.cls), static_cast<int>(c.want)) << c.status << " " << c.body;
    EXPECT_NE(std::string(v.reason), "") << c.status;
  }
}

TEST(ClassifyError, RateLimitCarriesResetAndFamily) {
  const uint64_t now = 1'700'000'000'000ull;
  ErrorVerdict v = classifyError(
      429, {{"Anthropic-Ratelimit-Unified-Reset", "1700003600"}, {"Retry-After", "120"}}, "{}",
      "claude-opus-4-1-20250805", now);
  EXPECT_EQ(v.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(v.untilUnixMs, 1'700'003'600'000ull);
  EXPECT_EQ(v.retryAfterMs, 120'000u);
  EXPECT_STREQ(v.scope, "opus");
  ErrorVerdict unknown =
      classifyError(429, {{"anthropic-ratelimit-unified-reset", "1700003600"}}, "{}", "", now);
  EXPECT_STREQ(unknown.scope, "");
  ErrorVerdict iso = classifyError(
      429, {{"anthropic-ratelimit-unified-reset", "2023-11-14T23:13:20Z"}}, "{}", "", now);
  EXPECT_EQ(iso.untilUnixMs, 1'700'003'600'000ull);
}

TEST(ClassifyError, OAuthReferenceTable) {
  // §4.4 row by row, for an OAuth (claude-official) account.
  const uint64_t now = 1'700'000'000'000ull;
  const HeaderList reset = {{"anthropic-ratelimit-unified-reset", "1700003600"}};
  EXPECT_EQ(classifyError(401, {}, "{}", "claude-opus-4-1", now).cls, ErrorClass::kAuth);
  EXPECT_EQ(classifyError(400, {}, "This organization has been disabled.", "", now).cls,
            ErrorClass::kBlocked);
  EXPECT_EQ(classifyError(403, {}, "this ORGANIZATION HAS BEEN DISABLED", "", now).cls,
            ErrorClass::kBlocked);
  EXPECT_EQ(classifyError(400, {}, "OAuth authentication is currently not allowed", "", now).cls,
            ErrorClass::kBlocked);
  EXPECT_EQ(classifyError(403, {}, R"({"error":{"message":"Request not allowed"}})", "", now).cls,
            ErrorClass::kAuth);
  // 401 stays auth whatever the body says (blocking needs 400/403).
  EXPECT_EQ(classifyError(401, {}, "This organization has been disabled.", "", now).cls,
            ErrorClass::kAuth);
  for (const char* m : {"claude-opus-4-1", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"}) {
    ErrorVerdict v = classifyError(429, reset, "{}", m, now);
    EXPECT_EQ(v.cls, ErrorClass::kRateLimited) << m;
    EXPECT_STREQ(v.scope, modelFamily(m)) << m;
    EXPECT_NE(std::string(v.scope), "") << m;
    EXPECT_EQ(v.untilUnixMs, 1'700'003'600'000ull) << m;
  }
  ErrorVerdict unknown = classifyError(429, reset, "{}", "my-custom-model", now);
  EXPECT_EQ(unknown.cls, ErrorClass::kRateLimited);
  EXPECT_STREQ(unknown.scope, "");  // whole account
  EXPECT_EQ(classifyError(429, reset, R"({"error":{"message":"Extra usage is required"}})",
                          "claude-opus-4-1", now)
                .cls,
            ErrorClass::kClient);
  ErrorVerdict noReset = classifyError(429, {{"retry-after", "9"}}, "{}", "claude-opus-4-1", now);
  EXPECT_EQ(noReset.cls, ErrorClass::kClient);
  EXPECT_EQ(noReset.retryAfterMs, 9'000u);
  EXPECT_EQ(classifyError(529, {}, "{}", "", now).cls, ErrorClass::kOverloaded);
  for (uint32_t s : {500u, 502u, 503u, 504u, 599u}) {
    EXPECT_EQ(classifyError(s, {}, "", "", now).cls, ErrorClass::kTransient) << s;
  }
  EXPECT_EQ(classifyError(200, {}, "", "", now).cls, ErrorClass::kNone);
}

TEST(ClassifyError, ResetHeaderForms) {
  const uint64_t now = 1'700'000'000'000ull;  // 2023-11-14T22:13:20Z
  auto until = [&](const char* v, const HeaderList& extra = {}) {
    HeaderList hs = extra;
    hs.emplace_back("anthropic-ratelimit-unified-reset", v);
    ErrorVerdict r = classifyError(429, hs, "{}", "claude-sonnet-4-5", now);
    EXPECT_EQ(r.cls, ErrorClass::kRateLimited) << v;
    return r.untilUnixMs;
  };
  EXPECT_EQ(until("1700003600"), 1'700'003'600'000ull);
  EXPECT_EQ(until(" 1700003600 "), 1'700'003'600'000ull);
  EXPECT_EQ(until("1700003600123"), 1'700'003'600'123ull);  // milliseconds
  EXPECT_EQ(until("2023-11-14T23:13:20Z"), 1'700'003'600'000ull);
  EXPECT_EQ(until("2023-11-14T23:13:20"), 1'700'003'600'000ull);
  EXPECT_EQ(until("2023-11-14T23:13:20.250Z"), 1'700'003'600'250ull);
  EXPECT_EQ(until("2023-11-15T00:13:20+01:00"), 1'700'003'600'000ull);
  EXPECT_EQ(until("2023-11-14T22:13:20-0100"), 1'700'003'600'000ull);
  // Unreadable reset: still an account limit, bounded by Retry-After when given.
  EXPECT_EQ(until("soon", {{"retry-after", "30"}}), now + 30'000);
  EXPECT_EQ(until("2023-11-14T23:13:20 garbage"), 0u);
}

TEST(ClassifyError, RetryAfterSecondsOrHttpDate) {
  const uint64_t now = 1'700'000'000'000ull;  // Tue, 14 Nov 2023 22:13:20 GMT
  EXPECT_EQ(parseRetryAfterMs("17", now), 17'000u);
  EXPECT_EQ(parseRetryAfterMs(" 5 ", now), 5'000u);
  EXPECT_EQ(parseRetryAfterMs("Tue, 14 Nov 2023 22:14:20 GMT", now), 60'000u);
  EXPECT_EQ(parseRetryAfterMs("Tue, 14 Nov 2023 22:00:00 GMT", now), 0u);  // in the past
  EXPECT_EQ(parseRetryAfterMs("", now), 0u);
  EXPECT_EQ(parseRetryAfterMs("soon", now), 0u);
  EXPECT_EQ(classifyError(529, {{"retry-after", "10"}}, "", "", now).retryAfterMs, 10'000u);
}

// ---- LOCAL bodies and config --------------------------------------------------------------------

TEST(LocalBodies, ModelsHasOpenAiAndAnthropicFields) {
  std::vector<ModelEntry> models = {{"claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"},
                                    {"custom-model", "custom-model"}};
  std::string j = modelsJson(models, 1'700'000'000'000ull);
  EXPECT_EQ(
      j, R"({"object":"list","data":[)"
         R"({"id":"claude-sonnet-4-5-20250929","object":"model","type":"model",)"
         R"("display_name":"Claude Sonnet 4.5","created":1759104000,)"
         R"("created_at":"2025-09-29T00:00:00Z","owned_by":"anthropic"},)"
         R"({"id":"custom-model","object":"model","type":"model","display_name":"custom-model",)"
         R"("created":1700000000,"created_at":"2023-11-14T22:13:20Z","owned_by":"anthropic"}],)"
         R"("has_more":false,"first_id":"claude-sonnet-4-5-20250929","last_id":"custom-model"})");
  EXPECT_EQ(modelsJson({}, 0), R"({"object":"list","data":[],"has_more":false,)"
                               R"("first_id":null,"last_id":null})");
}

TEST(LocalBodies, Me) {
  EXPECT_EQ(meJson("k-123", "Team \"A\"", 1'700'000'000'000ull),
            R"({"id":"user_k-123","type":"user","display_name":"Team \"A\"",)"
            R"("created_at":"2023-11-14T22:13:20Z"})");
}

TEST(Config, DefaultsAndOverrides) {
  Config c;
  std::string err;
  ASSERT_TRUE(parseConfig("{}", &c, &err));
  EXPECT_EQ(c.anthropicVersion, "2023-06-01");
  ASSERT_FALSE(c.models.empty());
  bool hasSonnet = false;
  for (const auto& m : c.models) {
    hasSonnet = hasSonnet || m.id == "claude-sonnet-4-5-20250929";
  }
  EXPECT_TRUE(hasSonnet);

  ASSERT_TRUE(parseConfig(R"({"models":["claude-opus-4-1-20250805",{"id":"x","display_name":"X"},)"
                          R"("y"],"anthropic_version":"2024-01-01"})",
                          &c, &err))
      << err;
  ASSERT_EQ(c.models.size(), 3u);
  EXPECT_EQ(c.models[0].displayName, "Claude Opus 4.1");
  EXPECT_EQ(c.models[1].displayName, "X");
  EXPECT_EQ(c.models[2].displayName, "y");
  EXPECT_EQ(c.anthropicVersion, "2024-01-01");

  EXPECT_FALSE(parseConfig("[]", &c, &err));
  EXPECT_FALSE(parseConfig(R"({"models":"claude"})", &c, &err));
  EXPECT_FALSE(parseConfig(R"({"models":[1]})", &c, &err));
  EXPECT_FALSE(parseConfig(R"({"anthropic_version":""})", &c, &err));
  EXPECT_FALSE(err.empty());
}

}  // namespace
}  // namespace rg::claude
