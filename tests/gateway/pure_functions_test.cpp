// Small pure pieces of the request path: router, error shapes, key extraction and checks, URLs.
#include <gtest/gtest.h>

#include "auth/key_service.h"
#include "cli/cli.h"
#include "http/error_shapes.h"
#include "http/router.h"
#include "upstream/http_client.h"

namespace rg {
namespace {

RouteSpec route(const std::string& method, const std::string& path, uint32_t id) {
  RouteSpec r;
  r.method = method;
  r.path = path;
  r.routeId = id;
  return r;
}

TEST(Router, ExactPatternMethodAndConflicts) {
  Router r;
  ASSERT_TRUE(r.add(nullptr, route("POST", "/v1/messages", 1)));
  ASSERT_TRUE(r.add(nullptr, route("GET", "/v1/models/{model}", 2)));
  ASSERT_TRUE(r.add(nullptr, route("GET", "/v1/models", 3)));
  EXPECT_FALSE(r.add(nullptr, route("POST", "/v1/messages", 9)));
  ASSERT_NE(r.match("POST", "/v1/messages"), nullptr);
  EXPECT_EQ(r.match("POST", "/v1/messages")->spec.routeId, 1u);
  EXPECT_EQ(r.match("GET", "/v1/models/claude-x")->spec.routeId, 2u);
  EXPECT_EQ(r.match("GET", "/v1/models")->spec.routeId, 3u);
  EXPECT_EQ(r.match("GET", "/v1/models/a/b"), nullptr);
  EXPECT_EQ(r.match("GET", "/v1/models/"), nullptr);
  bool exists = false;
  EXPECT_EQ(r.match("GET", "/v1/messages", &exists), nullptr);
  EXPECT_TRUE(exists);
  EXPECT_EQ(r.match("GET", "/nope", &exists), nullptr);
  EXPECT_FALSE(exists);
}

TEST(ErrorShapes, EachProviderShape) {
  EXPECT_EQ(errorBody(RG_SHAPE_ANTHROPIC, 401, "bad \"key\""),
            R"({"type":"error","error":{"type":"authentication_error","message":"bad \"key\""}})");
  EXPECT_EQ(errorBody(RG_SHAPE_ANTHROPIC, 429, "slow down", "rate_limit_error"),
            R"({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})");
  EXPECT_EQ(errorBody(RG_SHAPE_OPENAI, 403, "no"),
            R"({"error":{"message":"no","type":"permission_denied","code":"permission_denied"}})");
  EXPECT_EQ(errorBody(RG_SHAPE_GEMINI, 404, "missing"),
            R"({"error":{"code":404,"message":"missing","status":"NOT_FOUND"}})");
  EXPECT_EQ(jsonQuote(std::string("a\nb\x01", 4)), "\"a\\nb\\u0001\"");
}

TEST(Keys, FormatExtractionAndStripping) {
  std::string good = "cr_" + std::string(64, 'a');
  EXPECT_TRUE(isWellFormedKey(good));
  EXPECT_FALSE(isWellFormedKey("cr_" + std::string(63, 'a')));
  EXPECT_FALSE(isWellFormedKey("cr_" + std::string(64, 'A')));
  EXPECT_FALSE(isWellFormedKey("sk_" + std::string(64, 'a')));
  EXPECT_EQ(extractKey({{"X-Api-Key", "k1"}, {"Authorization", "Bearer k2"}}, ""), "k1");
  EXPECT_EQ(extractKey({{"authorization", "bearer k2"}}, ""), "k2");
  EXPECT_EQ(extractKey({{"x-goog-api-key", "k3"}, {"api-key", "k4"}}, ""), "k3");
  EXPECT_EQ(extractKey({{"api-key", "k4"}}, ""), "k4");
  EXPECT_EQ(extractKey({}, "alt=sse&key=k5"), "k5");
  EXPECT_EQ(extractKey({{"x-api-key", ""}}, ""), "");
  EXPECT_EQ(stripKeyParam("alt=sse&key=secret&x=1"), "alt=sse&x=1");
  EXPECT_EQ(stripKeyParam("key=secret"), "");
  EXPECT_TRUE(isCredentialHeader("Authorization"));
  EXPECT_FALSE(isCredentialHeader("anthropic-beta"));
}

TEST(Keys, PermissionsAndModelFilters) {
  ApiKeyRecord r;
  EXPECT_TRUE(hasPermission(r, "claude"));
  r.permissions = {"gemini"};
  EXPECT_FALSE(hasPermission(r, "claude"));
  EXPECT_TRUE(hasPermission(r, "gemini"));
  r.modelMode = ModelFilterMode::kDeny;
  r.models = {"claude-opus-*", "claude-3-haiku-20240307"};
  EXPECT_FALSE(modelAllowed(r, "claude-opus-4-1"));
  EXPECT_FALSE(modelAllowed(r, "us.anthropic.claude-opus-4-1-v1:0"));
  EXPECT_FALSE(modelAllowed(r, "CLAUDE-3-HAIKU-20240307"));
  EXPECT_TRUE(modelAllowed(r, "claude-sonnet-4-5"));
  r.modelMode = ModelFilterMode::kAllow;
  r.models = {"claude-sonnet-4-5"};
  EXPECT_TRUE(modelAllowed(r, "claude-sonnet-4-5"));
  EXPECT_TRUE(modelAllowed(r, "anthropic/claude-sonnet-4-5"));
  EXPECT_FALSE(modelAllowed(r, "claude-sonnet-4-5-extra"));
}

TEST(Urls, ParseAndHostHeader) {
  auto u = parseUrl("https://api.anthropic.com/v1/messages?beta=true");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "api.anthropic.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/v1/messages?beta=true");
  EXPECT_EQ(u->hostHeader(), "api.anthropic.com");
  auto v = parseUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->target, "/");
  EXPECT_EQ(v->hostHeader(), "127.0.0.1:8080");
  auto w = parseUrl("http://[::1]:9/x");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->host, "::1");
  EXPECT_EQ(w->hostHeader(), "[::1]:9");
  EXPECT_FALSE(parseUrl("ftp://x"));
  EXPECT_FALSE(parseUrl("http://user:pw@host/"));
  EXPECT_FALSE(parseUrl("http://host:99999/"));
  EXPECT_FALSE(parseUrl("http:///x"));
}

TEST(Cli, Iso8601) {
  EXPECT_EQ(*parseIso8601("1970-01-02"), 86400000);
  EXPECT_EQ(*parseIso8601("2026-01-01T00:00:00Z"), 1767225600000);
  EXPECT_EQ(*parseIso8601("2026-01-01T02:00:00+02:00"), 1767225600000);
  EXPECT_EQ(*parseIso8601("2026-01-01T00:00:00.250Z"), 1767225600000);
  EXPECT_FALSE(parseIso8601("2026-13-01"));
  EXPECT_FALSE(parseIso8601("tomorrow"));
  EXPECT_FALSE(parseIso8601("2026-01-01T00:00:00Zjunk"));
}

} // namespace
} // namespace rg
