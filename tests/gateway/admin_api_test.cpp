// The admin API in-process on a real embedded store with the real key and account services:
// authentication, every endpoint's success and error paths, that no plaintext secret appears in
// any answer, account recovery (reset), the Claude OAuth exchange against a loopback token server,
// and the admin token file.
#include "admin/admin_api.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "admin/admin_token.h"
#include "crypto/crypto.h"
#include "fakes/fake_anthropic.h"
#include "fakes/support.h"
#include "gateway/account_store_fixture.h"
#include "oauth/claude_oauth.h"

namespace rg {
namespace {

const std::string kToken = "admin-token-0123456789abcdef0123456789";

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

std::string errorType(const AdminResponse& r) {
  auto d = parse(r.body);
  if (!d.IsObject() || !d.HasMember("error") || !d["error"].HasMember("type")) {
    return "(no error object: " + r.body + ")";
  }
  return d["error"]["type"].GetString();
}

const std::string* header(const AdminResponse& r, const std::string& name) {
  return findHeader(r.headers, name);
}

class AdminApiTest : public rgtest::AccountStoreTest {
 protected:
  void SetUp() override {
    AccountStoreTest::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    keys_ = std::make_unique<KeyService>(*store_, clock_, "hash-secret", /*cacheTtlMs=*/0);
    api_ = std::make_unique<AdminApi>(deps());
  }

  AdminDeps deps(const std::string& token = kToken) {
    AdminDeps d;
    d.keys = keys_.get();
    d.accounts = accounts_.get();
    d.store = store_.get();
    d.events = &events_;
    d.clock = &clock_;
    d.adminToken = token;
    return d;
  }

  AdminResponse call(const std::string& method, const std::string& path,
                     const std::string& body = "", const std::string& query = "") {
    AdminRequest req;
    req.method = method;
    req.path = path;
    req.query = query;
    req.headers = {{"Authorization", "Bearer " + kToken}, {"Content-Type", "application/json"}};
    req.body = body;
    AdminResponse r = api_->handle(req);
    bodies_.push_back(r.body);
    return r;
  }

  // Adds a claude-console account through the API; returns its id.
  std::string addConsole(const std::string& name, const std::string& apiKey) {
    auto r = call("POST", "/admin/accounts",
                  R"({"type":"claude-console","name":")" + name +
                      R"(","base_url":"https://api.example.com","api_key":")" + apiKey + R"("})");
    EXPECT_EQ(r.status, 201) << r.body;
    auto d = parse(r.body);
    clock_.advanceMs(1);
    return d.IsObject() && d.HasMember("id") ? d["id"].GetString() : "";
  }

  // Fails the test when any answer seen so far contains `secret`.
  void expectNeverShown(const std::string& secret) {
    for (const auto& b : bodies_) {
      EXPECT_EQ(b.find(secret), std::string::npos) << "secret leaked in: " << b;
    }
  }

  std::unique_ptr<KeyService> keys_;
  EventBus events_;
  std::unique_ptr<AdminApi> api_;
  std::vector<std::string> bodies_;
};

// ---- Authentication ------------------------------------------------------------------------

TEST_F(AdminApiTest, AuthenticationMissingWrongAndRight) {
  AdminRequest req;
  req.method = "GET";
  req.path = "/admin/accounts";
  AdminResponse missing = api_->handle(req);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(errorType(missing), "authentication_error");

  req.headers = {{"Authorization", "Bearer " + kToken + "x"}};
  AdminResponse wrong = api_->handle(req);
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.body, missing.body);  // no hint on what was wrong
  req.headers = {{"x-admin-token", kToken.substr(0, kToken.size() - 1) + "Y"}};
  EXPECT_EQ(api_->handle(req).status, 401);
  req.headers = {{"Authorization", "Basic " + kToken}};
  EXPECT_EQ(api_->handle(req).status, 401);
  req.headers = {{"Authorization", "Bearer"}};
  EXPECT_EQ(api_->handle(req).status, 401);

  req.headers = {{"authorization", "bearer " + kToken}};
  EXPECT_EQ(api_->handle(req).status, 200);
  req.headers = {{"X-Admin-Token", kToken}};
  AdminResponse ok = api_->handle(req);
  EXPECT_EQ(ok.status, 200) << ok.body;
  ASSERT_NE(header(ok, "cache-control"), nullptr);
  EXPECT_EQ(*header(ok, "cache-control"), "no-store");
  // Neither answer repeats the token.
  EXPECT_EQ(wrong.body.find(kToken), std::string::npos);
  EXPECT_EQ(ok.body.find(kToken), std::string::npos);
  // Authentication comes before routing: an unknown path does not reveal itself.
  req.headers.clear();
  req.path = "/admin/no-such-thing";
  EXPECT_EQ(api_->handle(req).status, 401);
}

TEST_F(AdminApiTest, EmptyTokenDisablesTheApi) {
  AdminApi disabled(deps(""));
  for (const char* path : {"/admin/accounts", "/admin/keys", "/admin/nothing"}) {
    AdminRequest req;
    req.method = "GET";
    req.path = path;
    req.headers = {{"Authorization", "Bearer "}, {"x-admin-token", ""}};
    AdminResponse r = disabled.handle(req);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(errorType(r), "not_found_error");
  }
}

// ---- Routing and bodies ---------------------------------------------------------------------

TEST_F(AdminApiTest, UnknownPathsAndMethods) {
  EXPECT_EQ(call("GET", "/admin/nope").status, 404);
  EXPECT_EQ(call("GET", "/admin/").status, 404);
  EXPECT_EQ(call("GET", "/admin//accounts").status, 404);
  EXPECT_EQ(call("POST", "/admin/accounts/abc/explode").status, 404);
  EXPECT_EQ(call("GET", "/admin/accounts/a/b/c").status, 404);
  EXPECT_EQ(call("POST", "/admin/oauth/google/start").status, 404);
  EXPECT_EQ(errorType(call("GET", "/admin/nope")), "not_found_error");

  AdminResponse r = call("PUT", "/admin/accounts");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(errorType(r), "invalid_request_error");
  ASSERT_NE(header(r, "allow"), nullptr);
  EXPECT_EQ(*header(r, "allow"), "GET, POST");
  EXPECT_EQ(call("GET", "/admin/accounts/some-id/reset").status, 405);
  EXPECT_EQ(call("POST", "/admin/cooldowns").status, 405);
  EXPECT_EQ(call("DELETE", "/admin/events").status, 405);
  EXPECT_EQ(call("GET", "/admin/oauth/claude/start").status, 405);
  // A trailing slash names the same resource.
  EXPECT_EQ(call("GET", "/admin/accounts/").status, 200);
}

TEST_F(AdminApiTest, BodyLimitAndMalformedJson) {
  std::string big(AdminApi::kMaxBodyBytes + 1, ' ');
  AdminResponse r = call("POST", "/admin/accounts", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(errorType(r), "invalid_request_error");

  r = call("POST", "/admin/accounts", "{\"type\": ");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(errorType(r), "invalid_request_error");
  EXPECT_NE(r.body.find("malformed JSON"), std::string::npos) << r.body;
  EXPECT_EQ(call("POST", "/admin/keys", "[1,2]").status, 400);
  EXPECT_EQ(call("POST", "/admin/keys", "\"name\"").status, 400);
  // Deep nesting is parsed without recursion and rejected as not an object.
  EXPECT_EQ(call("POST", "/admin/keys", std::string(100000, '[')).status, 400);
  EXPECT_EQ(call("POST", "/admin/keys", std::string(50000, '[') + std::string(50000, ']')).status,
            400);
}

// ---- Accounts ---------------------------------------------------------------------------------

TEST_F(AdminApiTest, AccountLifecycle) {
  const std::string secret = "sk-ant-console-secret-value-42";
  std::string id = addConsole("console one", secret);
  ASSERT_FALSE(id.empty());

  AdminResponse got = call("GET", "/admin/accounts/" + id);
  ASSERT_EQ(got.status, 200) << got.body;
  auto d = parse(got.body);
  EXPECT_STREQ(d["name"].GetString(), "console one");
  EXPECT_STREQ(d["type"].GetString(), "claude-console");
  EXPECT_STREQ(d["provider"].GetString(), "claude");
  EXPECT_STREQ(d["status"].GetString(), "active");
  EXPECT_TRUE(d["schedulable"].GetBool());
  EXPECT_EQ(d["priority"].GetInt64(), 50);
  EXPECT_STREQ(d["base_url"].GetString(), "https://api.example.com");
  ASSERT_EQ(d["secrets"].Size(), 1u);
  EXPECT_STREQ(d["secrets"][0]["name"].GetString(), "api_key");
  EXPECT_STREQ(d["secrets"][0]["masked"].GetString(), "sk-a****e-42");
  EXPECT_TRUE(d["cooldowns"].IsArray());

  AdminResponse patched = call("PATCH", "/admin/accounts/" + id,
                               R"({"name":"renamed","priority":7,"groups":["team-a"],
                                   "model_map":{"claude-x":"claude-y"},"concurrency":3,
                                   "sharing":"dedicated","schedulable":false})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  d = parse(patched.body);
  EXPECT_STREQ(d["name"].GetString(), "renamed");
  EXPECT_EQ(d["priority"].GetInt64(), 7);
  EXPECT_EQ(d["concurrency_limit"].GetInt64(), 3);
  EXPECT_STREQ(d["groups"][0].GetString(), "team-a");
  EXPECT_STREQ(d["model_mapping"]["claude-x"].GetString(), "claude-y");
  EXPECT_STREQ(d["sharing"].GetString(), "dedicated");
  EXPECT_FALSE(d["schedulable"].GetBool());
  auto stored = accounts_->get(id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->name, "renamed");
  EXPECT_EQ(stored->priority, 7);

  // A new secret replaces the old one; both stay hidden.
  const std::string rotated = "sk-ant-rotated-secret-value-99";
  ASSERT_EQ(call("PATCH", "/admin/accounts/" + id, R"({"api_key":")" + rotated + R"("})").status,
            200);
  EXPECT_EQ(*accounts_->openSecret(*accounts_->get(id), "api_key"), rotated);

  AdminResponse list = call("GET", "/admin/accounts");
  ASSERT_EQ(list.status, 200);
  d = parse(list.body);
  ASSERT_EQ(d["accounts"].Size(), 1u);
  EXPECT_STREQ(d["accounts"][0]["id"].GetString(), id.c_str());

  // Errors of PATCH: type is fixed, unknown fields and bad values are named, unknown id is 404.
  AdminResponse r = call("PATCH", "/admin/accounts/" + id, R"({"type":"bedrock"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("type"), std::string::npos);
  r = call("PATCH", "/admin/accounts/" + id, R"({"nmae":"typo"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("nmae"), std::string::npos);
  EXPECT_EQ(call("PATCH", "/admin/accounts/" + id, R"({"priority":"high"})").status, 400);
  EXPECT_EQ(call("PATCH", "/admin/accounts/" + id, R"({"priority":500})").status, 400);
  EXPECT_EQ(
      call("PATCH", "/admin/accounts/" + id, R"({"concurrency":1,"concurrency_limit":2})").status,
      400);
  EXPECT_EQ(call("PATCH", "/admin/accounts/missing", R"({"name":"x"})").status, 404);
  EXPECT_EQ(call("GET", "/admin/accounts/missing").status, 404);

  AdminResponse del = call("DELETE", "/admin/accounts/" + id);
  EXPECT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(call("GET", "/admin/accounts/" + id).status, 404);
  EXPECT_EQ(call("DELETE", "/admin/accounts/" + id).status, 404);
  EXPECT_EQ(parse(call("GET", "/admin/accounts").body)["accounts"].Size(), 0u);
  expectNeverShown(secret);
  expectNeverShown(rotated);
}

TEST_F(AdminApiTest, AddsEveryTypeAndNeverShowsASecret) {
  struct Case {
    std::string type;
    std::string fields;  // JSON members
    std::vector<std::string> secrets;
    std::string provider;
  };
  const std::vector<Case> cases = {
      {"claude-official",
       R"("access_token":"sk-ant-oat01-access-AAAA1111","refresh_token":"sk-ant-ort01-refresh-BBBB2222","token_expires_at":1800000000000,"oauth_scopes":"user:inference")",
       {"sk-ant-oat01-access-AAAA1111", "sk-ant-ort01-refresh-BBBB2222"},
       "claude"},
      {"claude-console",
       R"("base_url":"https://c.example.com","api_key":"sk-console-CCCC3333xyz")",
       {"sk-console-CCCC3333xyz"},
       "claude"},
      {"bedrock",
       R"("region":"us-east-1","aws_access_key_id":"AKIADDDD4444EXAMPLE","aws_secret_access_key":"aws-secret-EEEE5555-abcdef","aws_session_token":"aws-session-FFFF6666-tok")",
       {"AKIADDDD4444EXAMPLE", "aws-secret-EEEE5555-abcdef", "aws-session-FFFF6666-tok"},
       "bedrock"},
      {"bedrock",
       R"("region":"eu-west-1","bearer_token":"bedrock-bearer-GGGG7777-x")",
       {"bedrock-bearer-GGGG7777-x"},
       "bedrock"},
      {"gemini",
       R"("access_token":"ya29.gemini-HHHH8888-access","refresh_token":"1//gemini-IIII9999-refresh","project_id":"my-project-1")",
       {"ya29.gemini-HHHH8888-access", "1//gemini-IIII9999-refresh"},
       "gemini"},
      {"gemini-api",
       R"("api_key":"AIzaJJJJ0000gemini-api-key")",
       {"AIzaJJJJ0000gemini-api-key"},
       "gemini"},
      {"openai",
       R"("access_token":"openai-access-KKKK1212-tok","chatgpt_account_id":"acct-123")",
       {"openai-access-KKKK1212-tok"},
       "openai"},
      {"openai-responses",
       R"("base_url":"https://r.example.com/v1","api_key":"sk-resp-LLLL3434-key")",
       {"sk-resp-LLLL3434-key"},
       "openai"},
      {"azure-openai",
       R"("endpoint":"https://x.openai.azure.com","deployment":"gpt4o","api_version":"2024-10-21","api_key":"azure-key-MMMM5656-abc","proxy":"socks5://user@127.0.0.1:1080","proxy_password":"proxy-pass-NNNN7878")",
       {"azure-key-MMMM5656-abc", "proxy-pass-NNNN7878"},
       "openai"},
  };
  std::vector<std::string> allSecrets;
  for (const auto& c : cases) {
    AdminResponse r =
        call("POST", "/admin/accounts",
             R"({"type":")" + c.type + R"(","name":"acct )" + c.type + R"(",)" + c.fields + "}");
    ASSERT_EQ(r.status, 201) << c.type << ": " << r.body;
    auto d = parse(r.body);
    EXPECT_STREQ(d["type"].GetString(), c.type.c_str());
    EXPECT_STREQ(d["provider"].GetString(), c.provider.c_str());
    EXPECT_EQ(d["secrets"].Size(), c.secrets.size()) << r.body;
    // The stored record opens to the plaintext: the API sealed what it was given.
    auto rec = accounts_->get(d["id"].GetString());
    ASSERT_TRUE(rec);
    std::string primary = AccountService::primarySecretName(*rec);
    auto opened = accounts_->openSecret(*rec, primary);
    ASSERT_TRUE(opened) << opened.status().toString();
    EXPECT_NE(std::find(c.secrets.begin(), c.secrets.end(), *opened), c.secrets.end());
    allSecrets.insert(allSecrets.end(), c.secrets.begin(), c.secrets.end());
    // Settings come back snake_case.
    if (c.type == "gemini") {
      EXPECT_STREQ(d["settings"]["project_id"].GetString(), "my-project-1");
    }
    if (c.type == "claude-official") {
      EXPECT_STREQ(d["settings"]["token_expires_at"].GetString(), "1800000000000");
      EXPECT_STREQ(d["settings"]["scopes"].GetString(), "user:inference");
    }
    if (c.type == "azure-openai") {
      EXPECT_STREQ(d["proxy_url"].GetString(), "socks5://user@127.0.0.1:1080");
    }
    clock_.advanceMs(1);
  }
  AdminResponse list = call("GET", "/admin/accounts");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(parse(list.body)["accounts"].Size(), cases.size());
  for (const auto& s : allSecrets) {
    expectNeverShown(s);
  }
}

TEST_F(AdminApiTest, AddAccountValidation) {
  auto add = [&](const std::string& body) { return call("POST", "/admin/accounts", body); };
  AdminResponse r = add(R"({"name":"x"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("claude-console"), std::string::npos) << r.body;  // lists the types
  EXPECT_EQ(add(R"({"type":"claude-console"})").status, 400);
  EXPECT_EQ(add("").status, 400);
  r = add(R"({"type":"warp-drive","name":"x"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("warp-drive"), std::string::npos);
  // A missing required field is named (in the CLI's flag spelling from the account service).
  r = add(R"({"type":"claude-console","name":"x","base_url":"https://a.example.com"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("api-key"), std::string::npos) << r.body;
  // A valid console account but for one member; the error names what is wrong.
  const std::string valid =
      R"("type":"claude-console","name":"x","base_url":"https://a.example.com")";
  const std::string key = R"("api_key":"sk-some-key-123456")";
  struct {
    std::string members;
    std::string named;
  } bad[] = {
      {key + R"(,"models":["a"],"model_map":{"b":"c"})", "model_map"},
      {key + R"(,"sharing":"sometimes")", "sometimes"},
      {R"("api_key":12345)", "api_key"},
      {key + R"(,"groups":"not-a-list")", "groups"},
      {key + R"(,"expires_at":1000)", "expires"},  // in the past
  };
  for (const auto& b : bad) {
    r = add("{" + valid + "," + b.members + "}");
    EXPECT_EQ(r.status, 400) << b.members;
    EXPECT_NE(r.body.find(b.named), std::string::npos) << r.body;
  }
  EXPECT_EQ(parse(call("GET", "/admin/accounts").body)["accounts"].Size(), 0u);
  // models: a list becomes identity mappings; schedulable false is applied on creation.
  r = add(R"({"type":"claude-console","name":"x","base_url":"https://a.example.com",
              "api_key":"sk-some-key-123456","models":["m1","m2"],"schedulable":false,
              "priority":null})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = parse(r.body);
  EXPECT_STREQ(d["model_mapping"]["m2"].GetString(), "m2");
  EXPECT_FALSE(d["schedulable"].GetBool());
  EXPECT_EQ(d["priority"].GetInt64(), 50);  // null = absent = the default
}

TEST_F(AdminApiTest, EnableDisableAndSchedulable) {
  std::string id = addConsole("a", "sk-ant-aaaaaaaaaaaaaaaa");
  AdminResponse r = call("POST", "/admin/accounts/" + id + "/disable", R"({"reason":"abuse"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse(r.body);
  EXPECT_STREQ(d["status"].GetString(), "disabled");
  EXPECT_STREQ(d["status_reason"].GetString(), "abuse");
  auto ev = events_.recent();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, "account.status");
  EXPECT_EQ(ev[0].oldState, "active");
  EXPECT_EQ(ev[0].newState, "disabled");
  EXPECT_EQ(ev[0].reason, "abuse");
  EXPECT_EQ(ev[0].accountId, id);

  r = call("POST", "/admin/accounts/" + id + "/enable");
  ASSERT_EQ(r.status, 200) << r.body;
  d = parse(r.body);
  EXPECT_STREQ(d["status"].GetString(), "active");
  EXPECT_STREQ(d["status_reason"].GetString(), "");
  EXPECT_EQ(events_.recent().size(), 2u);
  // Enabling an active account changes nothing and tells nobody.
  EXPECT_EQ(call("POST", "/admin/accounts/" + id + "/enable").status, 200);
  EXPECT_EQ(events_.recent().size(), 2u);

  r = call("POST", "/admin/accounts/" + id + "/schedulable", R"({"schedulable":false})");
  ASSERT_EQ(r.status, 200);
  EXPECT_FALSE(parse(r.body)["schedulable"].GetBool());
  EXPECT_FALSE(accounts_->get(id)->schedulable);
  r = call("POST", "/admin/accounts/" + id + "/schedulable", R"({"schedulable":true})");
  EXPECT_TRUE(parse(r.body)["schedulable"].GetBool());
  EXPECT_EQ(call("POST", "/admin/accounts/" + id + "/schedulable", "{}").status, 400);
  EXPECT_EQ(
      call("POST", "/admin/accounts/" + id + "/schedulable", R"({"schedulable":"no"})").status,
      400);
  EXPECT_EQ(call("POST", "/admin/accounts/" + id + "/disable", R"({"reason":7})").status, 400);
  EXPECT_EQ(call("POST", "/admin/accounts/" + id + "/enable", R"({"force":true})").status, 400);

  EXPECT_EQ(call("POST", "/admin/accounts/nope/enable").status, 404);
  EXPECT_EQ(call("POST", "/admin/accounts/nope/disable").status, 404);
  EXPECT_EQ(call("POST", "/admin/accounts/nope/schedulable", R"({"schedulable":true})").status,
            404);
  EXPECT_EQ(call("POST", "/admin/accounts/nope/reset").status, 404);
}

TEST_F(AdminApiTest, ResetClearsCooldownsAndStickyAndPublishes) {
  std::string id = addConsole("hot", "sk-ant-hhhhhhhhhhhhhhhh");
  std::string other = addConsole("other", "sk-ant-oooooooooooooooo");
  int64_t now = clock_.nowUnixMs();
  auto& sched = store_->sched();
  CooldownRecord whole{id, "", now + 60000, now, "rate_limited", "429 from upstream", 429};
  CooldownRecord opus{id, "opus", now + 120000, now, "rate_limited", "opus limit", 429};
  CooldownRecord theirs{other, "", now + 60000, now, "overloaded", "529", 529};
  ASSERT_TRUE(sched.setCooldown(whole));
  ASSERT_TRUE(sched.setCooldown(opus));
  ASSERT_TRUE(sched.setCooldown(theirs));
  ASSERT_TRUE(sched.setSticky("session-1", id, 600000));
  ASSERT_TRUE(sched.setSticky("session-2", other, 600000));
  ASSERT_TRUE(accounts_->setStatus(id, "error", "401 from upstream"));

  // The cooldowns are visible per account and in the global list.
  auto d = parse(call("GET", "/admin/accounts/" + id).body);
  ASSERT_EQ(d["cooldowns"].Size(), 2u);
  EXPECT_STREQ(d["cooldowns"][1]["scope"].GetString(), "opus");
  EXPECT_EQ(d["cooldowns"][1]["until"].GetInt64(), now + 120000);
  EXPECT_STREQ(d["cooldowns"][0]["error_class"].GetString(), "rate_limited");
  d = parse(call("GET", "/admin/cooldowns").body);
  ASSERT_EQ(d["cooldowns"].Size(), 3u);
  EXPECT_STREQ(d["cooldowns"][0]["account_name"].GetString(), id < other ? "hot" : "other");
  d = parse(call("GET", "/admin/accounts").body);
  size_t listed = 0;
  for (const auto& a : d["accounts"].GetArray()) {
    listed += a["cooldowns"].Size();
  }
  EXPECT_EQ(listed, 3u);

  AdminResponse r = call("POST", "/admin/accounts/" + id + "/reset");
  ASSERT_EQ(r.status, 200) << r.body;
  d = parse(r.body);
  EXPECT_EQ(d["cleared_cooldowns"].GetInt64(), 2);
  EXPECT_EQ(d["dropped_sticky_sessions"].GetInt64(), 1);
  EXPECT_STREQ(d["account"]["status"].GetString(), "active");

  auto left = sched.listCooldowns();
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].accountId, other);
  EXPECT_FALSE(sched.getSticky("session-1")->has_value());
  EXPECT_TRUE(sched.getSticky("session-2")->has_value());
  auto rec = accounts_->get(id);
  EXPECT_EQ(rec->status, "active");
  EXPECT_EQ(rec->statusReason, "");

  auto ev = events_.recent();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, "account.recovered");
  EXPECT_EQ(ev[0].accountId, id);
  EXPECT_EQ(ev[0].accountName, "hot");
  EXPECT_EQ(ev[0].oldState, "error");
  EXPECT_EQ(ev[0].newState, "active");
  EXPECT_EQ(ev[0].reason, "reset by an operator");
  EXPECT_EQ(ev[0].atMs, clock_.nowUnixMs());

  // The events endpoint shows it; limit keeps the newest.
  AdminResponse evs = call("GET", "/admin/events");
  ASSERT_EQ(evs.status, 200);
  d = parse(evs.body);
  ASSERT_EQ(d["events"].Size(), 1u);
  EXPECT_STREQ(d["events"][0]["type"].GetString(), "account.recovered");
  EXPECT_STREQ(d["events"][0]["reason"].GetString(), "reset by an operator");
  EXPECT_STREQ(d["events"][0]["account_id"].GetString(), id.c_str());
  // An active account that was only cooling down is reported as such.
  ASSERT_TRUE(sched.setCooldown(theirs));
  ASSERT_EQ(call("POST", "/admin/accounts/" + other + "/reset").status, 200);
  ev = events_.recent();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].oldState, "cooling_down");
  d = parse(call("GET", "/admin/events", "", "limit=1").body);
  ASSERT_EQ(d["events"].Size(), 1u);
  EXPECT_STREQ(d["events"][0]["account_id"].GetString(), other.c_str());
  EXPECT_EQ(parse(call("GET", "/admin/events", "", "limit=0").body)["events"].Size(), 0u);
  EXPECT_EQ(call("GET", "/admin/events", "", "limit=-1").status, 400);
  EXPECT_TRUE(sched.listCooldowns()->empty());
}

TEST_F(AdminApiTest, DeletingAnAccountDropsItsSchedulerState) {
  std::string id = addConsole("gone", "sk-ant-gggggggggggggggg");
  int64_t now = clock_.nowUnixMs();
  ASSERT_TRUE(store_->sched().setCooldown({id, "", now + 60000, now, "rate_limited", "", 429}));
  ASSERT_TRUE(store_->sched().setSticky("s", id, 600000));
  ASSERT_EQ(call("DELETE", "/admin/accounts/" + id).status, 200);
  EXPECT_TRUE(store_->sched().listCooldowns()->empty());
  EXPECT_FALSE(store_->sched().getSticky("s")->has_value());
}

TEST_F(AdminApiTest, TestEndpoint) {
  std::string id = addConsole("t", "sk-ant-tttttttttttttttt");
  EXPECT_EQ(call("POST", "/admin/accounts/" + id + "/test").status, 501);

  std::vector<std::pair<std::string, std::string>> calls;
  AdminDeps d = deps();
  d.testAccount = [&](const AccountRecord& rec,
                      const std::string& model) -> StatusOr<AccountTestResult> {
    calls.emplace_back(rec.id, model);
    if (model == "unmapped") {
      return invalidArgument("model unmapped is not served by this account");
    }
    if (model == "no-plugin") {
      return failedPrecondition("no loaded plugin serves claude-console");
    }
    AccountTestResult res;
    res.ok = true;
    res.status = 200;
    res.latencyMs = 123;
    res.model = model.empty() ? "claude-haiku" : model;
    res.detail = "hi";
    return res;
  };
  api_ = std::make_unique<AdminApi>(d);
  AdminResponse r = call("POST", "/admin/accounts/" + id + "/test", R"({"model":"claude-x"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = parse(r.body);
  EXPECT_TRUE(j["ok"].GetBool());
  EXPECT_EQ(j["status"].GetInt(), 200);
  EXPECT_EQ(j["latency_ms"].GetInt64(), 123);
  EXPECT_STREQ(j["model"].GetString(), "claude-x");
  EXPECT_STREQ(j["detail"].GetString(), "hi");
  r = call("POST", "/admin/accounts/" + id + "/test");
  EXPECT_STREQ(parse(r.body)["model"].GetString(), "claude-haiku");
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], std::make_pair(id, std::string("claude-x")));
  EXPECT_EQ(calls[1].second, "");
  EXPECT_EQ(call("POST", "/admin/accounts/" + id + "/test", R"({"model":"unmapped"})").status, 400);
  EXPECT_EQ(call("POST", "/admin/accounts/" + id + "/test", R"({"model":"no-plugin"})").status,
            409);
  EXPECT_EQ(call("POST", "/admin/accounts/missing/test").status, 404);
  EXPECT_EQ(calls.size(), 4u);
}

// ---- Keys ------------------------------------------------------------------------------------

TEST_F(AdminApiTest, KeyLifecycle) {
  AdminResponse r = call("POST", "/admin/keys",
                         R"({"name":"team key","permissions":["claude","openai"],
                             "concurrency":4,"rate_window_min":10,"rate_requests":100,
                             "rate_tokens":5000,"deny_models":["claude-opus-*"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = parse(r.body);
  std::string plain = d["key"].GetString();
  EXPECT_TRUE(isWellFormedKey(plain)) << plain;
  std::string id = d["api_key"]["id"].GetString();
  EXPECT_STREQ(d["api_key"]["name"].GetString(), "team key");
  EXPECT_EQ(d["api_key"]["concurrency_limit"].GetInt64(), 4);
  EXPECT_EQ(d["api_key"]["rate_window_minutes"].GetInt64(), 10);
  EXPECT_STREQ(d["api_key"]["model_mode"].GetString(), "deny");
  EXPECT_EQ(d["api_key"]["permissions"].Size(), 2u);
  EXPECT_FALSE(d["api_key"].HasMember("hash"));
  auto authed = keys_->authenticate(plain);
  ASSERT_TRUE(authed) << authed.status().toString();
  EXPECT_EQ((*authed)->id, id);
  std::string hash = keys_->hashKey(plain);

  // From now on the plain key is never shown again.
  size_t shownOnce = bodies_.size();
  AdminResponse list = call("GET", "/admin/keys");
  ASSERT_EQ(list.status, 200);
  d = parse(list.body);
  ASSERT_EQ(d["api_keys"].Size(), 1u);
  EXPECT_STREQ(d["api_keys"][0]["id"].GetString(), id.c_str());
  EXPECT_TRUE(d["api_keys"][0]["enabled"].GetBool());
  AdminResponse one = call("GET", "/admin/keys/" + id);
  ASSERT_EQ(one.status, 200);
  EXPECT_STREQ(parse(one.body)["name"].GetString(), "team key");

  r = call("POST", "/admin/keys/" + id + "/disable");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(parse(r.body)["enabled"].GetBool());
  EXPECT_FALSE(keys_->authenticate(plain));
  r = call("POST", "/admin/keys/" + id + "/enable");
  EXPECT_TRUE(parse(r.body)["enabled"].GetBool());
  EXPECT_TRUE(keys_->authenticate(plain));
  EXPECT_EQ(call("POST", "/admin/keys/nope/enable").status, 404);
  EXPECT_EQ(call("GET", "/admin/keys/nope").status, 404);

  EXPECT_EQ(call("DELETE", "/admin/keys/" + id).status, 200);
  EXPECT_EQ(call("GET", "/admin/keys/" + id).status, 404);
  EXPECT_EQ(call("DELETE", "/admin/keys/" + id).status, 404);
  EXPECT_FALSE(keys_->authenticate(plain));
  for (size_t i = shownOnce; i < bodies_.size(); ++i) {
    EXPECT_EQ(bodies_[i].find(plain), std::string::npos) << bodies_[i];
  }
  expectNeverShown(hash);
}

TEST_F(AdminApiTest, KeyValidationAndBindings) {
  EXPECT_EQ(call("POST", "/admin/keys", "{}").status, 400);
  EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"x","permissions":["mars"]})").status, 400);
  EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"x","allow_models":["a"],
                                             "deny_models":["b"]})")
                .status,
            400);
  EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"x","rate_requests":5})").status, 400);
  EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"x","expires_at":5})").status, 400);
  EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"x","colour":"red"})").status, 400);
  EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"x","bindings":{"claude":"nobody"}})").status,
            400);
  EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"x","bindings":["claude"]})").status, 400);
  EXPECT_TRUE(keys_->list()->empty());

  std::string acct = addConsole("dedicated", "sk-ant-dddddddddddddddd");
  AdminResponse r =
      call("POST", "/admin/keys",
           R"({"name":"bound","bindings":{"claude":")" + acct + R"(","gemini":"group:g1"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = parse(r.body);
  std::string id = d["api_key"]["id"].GetString();
  EXPECT_STREQ(d["api_key"]["bindings"]["claude"].GetString(), acct.c_str());
  EXPECT_STREQ(d["api_key"]["bindings"]["gemini"].GetString(), "group:g1");
  EXPECT_EQ(keys_->get(id)->bindings.at("claude"), acct);
  // A claude-console account cannot serve an openai binding.
  r = call("PATCH", "/admin/keys/" + id, R"({"bindings":{"openai":")" + acct + R"("}})");
  EXPECT_EQ(r.status, 400) << r.body;
  r = call("PATCH", "/admin/keys/" + id, R"({"bindings":{"openai":"group:ops"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  d = parse(r.body);
  EXPECT_EQ(d["bindings"].MemberCount(), 1u);
  EXPECT_EQ(keys_->get(id)->bindings,
            (std::map<std::string, std::string>{{"openai", "group:ops"}}));
  EXPECT_EQ(call("PATCH", "/admin/keys/" + id, R"({"name":"renamed"})").status, 400);
  EXPECT_EQ(call("PATCH", "/admin/keys/" + id, "{}").status, 400);
  EXPECT_EQ(call("PATCH", "/admin/keys/nope", R"({"bindings":{}})").status, 404);
}

TEST_F(AdminApiTest, KeyLimitsCreatePatchAndShow) {
  // Amounts as strings and as numbers; a number is read from its text, never via a double.
  AdminResponse r = call("POST", "/admin/keys",
                         R"({"name":"limited","rate_window_minutes":60,"rate_cost_usd":"2.5",
                             "daily_cost_usd":10,"total_cost_usd":999999999.999999,
                             "weekly_cost_usd":"0.25","weekly_reset_day":7,
                             "weekly_reset_hour":23,"rate":1.5,"activation_hours":24})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = parse(r.body);
  std::string id = d["api_key"]["id"].GetString();
  std::string plain = d["key"].GetString();
  const auto& k = d["api_key"];
  EXPECT_EQ(k["rate_cost_micro_usd"].GetInt64(), 2'500'000);
  EXPECT_STREQ(k["rate_cost_usd"].GetString(), "2.5");
  EXPECT_EQ(k["daily_cost_micro_usd"].GetInt64(), 10'000'000);
  EXPECT_STREQ(k["daily_cost_usd"].GetString(), "10");
  EXPECT_EQ(k["total_cost_micro_usd"].GetInt64(), 999'999'999'999'999);
  EXPECT_STREQ(k["total_cost_usd"].GetString(), "999999999.999999");
  EXPECT_EQ(k["weekly_cost_micro_usd"].GetInt64(), 250'000);
  EXPECT_EQ(k["weekly_reset_day"].GetInt64(), 7);
  EXPECT_EQ(k["weekly_reset_hour"].GetInt64(), 23);
  EXPECT_STREQ(k["rate"].GetString(), "1.5");
  EXPECT_EQ(k["rate_ppm"].GetInt64(), 1'500'000);
  EXPECT_EQ(k["activation_ms"].GetInt64(), 24 * 3'600'000LL);
  EXPECT_EQ(k["activated_at"].GetInt64(), 0);
  EXPECT_EQ(k["expires_at"].GetInt64(), 0);
  ApiKeyRecord rec = *keys_->get(id);
  EXPECT_EQ(rec.totalCostMicroUsd, 999'999'999'999'999);
  EXPECT_EQ(rec.ratePpm, 1'500'000);

  // A key without limits shows the defaults.
  r = call("POST", "/admin/keys", R"({"name":"plain"})");
  ASSERT_EQ(r.status, 201) << r.body;
  d = parse(r.body);
  EXPECT_STREQ(d["api_key"]["daily_cost_usd"].GetString(), "0");
  EXPECT_STREQ(d["api_key"]["rate"].GetString(), "1");
  EXPECT_EQ(d["api_key"]["weekly_reset_day"].GetInt64(), 1);

  // Partial update: only the given members change.
  clock_.advanceMs(5);
  r = call("PATCH", "/admin/keys/" + id, R"({"daily_cost_usd":"12.345678","rate":"0.5"})");
  ASSERT_EQ(r.status, 200) << r.body;
  d = parse(r.body);
  EXPECT_EQ(d["daily_cost_micro_usd"].GetInt64(), 12'345'678);
  EXPECT_STREQ(d["daily_cost_usd"].GetString(), "12.345678");
  EXPECT_STREQ(d["rate"].GetString(), "0.5");
  EXPECT_EQ(d["total_cost_micro_usd"].GetInt64(), 999'999'999'999'999);
  EXPECT_EQ(d["rate_cost_micro_usd"].GetInt64(), 2'500'000);
  EXPECT_STREQ(d["name"].GetString(), "limited");
  EXPECT_EQ(d["updated_at"].GetInt64(), clock_.nowUnixMs());
  AdminResponse one = call("GET", "/admin/keys/" + id);
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(parse(one.body)["daily_cost_micro_usd"].GetInt64(), 12'345'678);
  AdminResponse list = call("GET", "/admin/keys");
  d = parse(list.body);
  ASSERT_EQ(d["api_keys"].Size(), 2u);
  for (const auto& item : d["api_keys"].GetArray()) {
    EXPECT_STREQ(item["rate"].GetString(), item["id"].GetString() == id ? "0.5" : "1");
  }

  // Refusals name the member and change nothing.
  struct {
    const char* body;
    const char* message;
  } refused[] = {
      {R"({"rate_window_minutes":0})", "rate_cost_usd needs rate_window_minutes"},
      {R"({"daily_cost_usd":"1.1234567"})", "daily_cost_usd: at most 6 decimal places"},
      {R"({"daily_cost_usd":-1})", "daily_cost_usd: must not be negative"},
      {R"({"total_cost_usd":"1000000001"})", "total_cost_usd: at most 1000000000 USD"},
      {R"({"weekly_cost_usd":true})", "weekly_cost_usd: expected a decimal"},
      {R"({"rate":0})", "rate: expected a decimal multiplier"},
      {R"({"weekly_reset_day":8})", "weekly_reset_day: expected 1 (Monday) .. 7 (Sunday)"},
      {R"({"weekly_reset_hour":24})", "weekly_reset_hour: expected 0..23"},
      {R"({"activation_hours":1,"activation_days":1})", "either activation_hours or"},
      {R"({"expires_at":4102444800000})", "expires_at: the key has activation expiry"},
      {R"({"name":"renamed"})", R"(unknown field \"name\")"},
      {"{}", "nothing to change"},
  };
  for (const auto& c : refused) {
    r = call("PATCH", "/admin/keys/" + id, c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.message), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(call("PATCH", "/admin/keys/nope", R"({"rate":"2"})").status, 404);
  ApiKeyRecord after = *keys_->get(id);
  EXPECT_EQ(after.dailyCostMicroUsd, 12'345'678);
  EXPECT_EQ(after.rateWindowMinutes, 60);
  EXPECT_EQ(after.weeklyResetDay, 7);
  EXPECT_EQ(after.activationMs, 24 * 3'600'000LL);

  // Activation: the first authenticated use starts it; the admin view shows it.
  const int64_t firstUse = clock_.nowUnixMs();
  ASSERT_TRUE(keys_->authenticate(plain));
  d = parse(call("GET", "/admin/keys/" + id).body);
  EXPECT_EQ(d["activated_at"].GetInt64(), firstUse);
  EXPECT_EQ(d["expires_at"].GetInt64(), firstUse + 24 * 3'600'000LL);
  // Switched to a fixed expiry in one patch.
  r = call("PATCH", "/admin/keys/" + id, R"({"activation_hours":0,"expires_at":4102444800000})");
  ASSERT_EQ(r.status, 200) << r.body;
  d = parse(r.body);
  EXPECT_EQ(d["activation_ms"].GetInt64(), 0);
  EXPECT_EQ(d["activated_at"].GetInt64(), 0);
  EXPECT_EQ(d["expires_at"].GetInt64(), 4102444800000LL);

  // Create refuses both kinds of expiry together, and a window cost without a window.
  r = call("POST", "/admin/keys", R"({"name":"x","expires_at":4102444800000,"activation_days":2})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("expires_at and activation_hours / activation_days exclude each other"),
            std::string::npos)
      << r.body;
  r = call("POST", "/admin/keys", R"({"name":"x","rate_cost_usd":"1"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("rate_cost_usd needs rate_window_minutes"), std::string::npos) << r.body;
  EXPECT_EQ(keys_->list()->size(), 2u);
}

// ---- Claude OAuth ----------------------------------------------------------------------------

TEST_F(AdminApiTest, OAuthEndpointsWithoutOAuthAnswer501) {
  EXPECT_EQ(call("POST", "/admin/oauth/claude/start", "{}").status, 501);
  EXPECT_EQ(
      call("POST", "/admin/oauth/claude/exchange", R"({"session_id":"s","code":"c","name":"n"})")
          .status,
      501);
  // Input errors are still reported first.
  EXPECT_EQ(call("POST", "/admin/oauth/claude/exchange", R"({"code":"c","name":"n"})").status, 400);
}

class AdminOAuthTest : public AdminApiTest {
 protected:
  void SetUp() override {
    AdminApiTest::SetUp();
    ASSERT_TRUE(fake_.start());
    ClaudeOAuthOptions o;
    o.tokenUrl = fake_.baseUrl() + "/v1/oauth/token";
    o.timeoutMs = 10000;
    oauth_ = std::make_unique<ClaudeOAuth>(o, http_, store_->settings(), clock_);
    AdminDeps d = deps();
    d.claudeOAuth = oauth_.get();
    api_ = std::make_unique<AdminApi>(d);
  }
  std::string startSession(bool setup) {
    AdminResponse r =
        call("POST", "/admin/oauth/claude/start", setup ? R"({"setup_token":true})" : "{}");
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = parse(r.body);
    EXPECT_EQ(d["setup_token"].GetBool(), setup);
    EXPECT_EQ(d["expires_at"].GetInt64(), clock_.nowUnixMs() + 600000);
    std::string url = d["url"].GetString();
    EXPECT_EQ(url.rfind("https://claude.ai/oauth/authorize?", 0), 0u) << url;
    EXPECT_NE(url.find("code_challenge="), std::string::npos);
    return d["session_id"].GetString();
  }
  static rgtest::Script tokenReply(const std::string& json, int status = 200) {
    rgtest::Script s;
    s.status = status;
    s.headers = {{"Content-Type", "application/json"}};
    s.body = json;
    s.autoReply = false;
    return s;
  }
  rgtest::FakeAnthropic fake_;
  UpstreamClient http_;
  std::unique_ptr<ClaudeOAuth> oauth_;
};

TEST_F(AdminOAuthTest, ExchangeCreatesAClaudeOfficialAccount) {
  std::string session = startSession(false);
  const std::string access = "sk-ant-oat01-ACCESS-from-exchange-123";
  const std::string refresh = "sk-ant-ort01-REFRESH-from-exchange-456";
  fake_.enqueue(tokenReply(R"({"access_token":")" + access + R"(","refresh_token":")" + refresh +
                           R"(","expires_in":28800,"scope":"user:inference user:profile"})"));
  int64_t now = clock_.nowUnixMs();
  AdminResponse r = call("POST", "/admin/oauth/claude/exchange",
                         R"({"session_id":")" + session +
                             R"(","code":"the-code-789","name":"max plan","priority":5,
                                 "groups":["pro"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = parse(r.body);
  EXPECT_STREQ(d["type"].GetString(), "claude-official");
  EXPECT_STREQ(d["name"].GetString(), "max plan");
  EXPECT_EQ(d["priority"].GetInt64(), 5);
  EXPECT_STREQ(d["groups"][0].GetString(), "pro");
  EXPECT_STREQ(d["settings"]["token_expires_at"].GetString(),
               std::to_string(now + 28800 * 1000).c_str());
  EXPECT_STREQ(d["settings"]["scopes"].GetString(), "user:inference user:profile");
  EXPECT_EQ(d["secrets"].Size(), 2u);

  auto rec = accounts_->get(d["id"].GetString());
  ASSERT_TRUE(rec);
  EXPECT_EQ(*accounts_->openSecret(*rec, "access_token"), access);
  EXPECT_EQ(*accounts_->openSecret(*rec, "refresh_token"), refresh);
  ASSERT_EQ(fake_.requestCount(), 1u);
  auto req = fake_.requests()[0];
  EXPECT_EQ(req.path, "/v1/oauth/token");
  EXPECT_NE(req.body.find("\"authorization_code\""), std::string::npos);
  EXPECT_NE(req.body.find("the-code-789"), std::string::npos);

  // The session is consumed.
  r = call("POST", "/admin/oauth/claude/exchange",
           R"({"session_id":")" + session + R"(","code":"again","name":"x"})");
  EXPECT_EQ(r.status, 404) << r.body;
  call("GET", "/admin/accounts");
  expectNeverShown(access);
  expectNeverShown(refresh);
}

TEST_F(AdminOAuthTest, SetupTokenAndRefusedCode) {
  std::string session = startSession(true);
  fake_.enqueue(tokenReply(R"({"error":"invalid_grant","error_description":"bad code"})", 400));
  AdminResponse r = call("POST", "/admin/oauth/claude/exchange",
                         R"({"session_id":")" + session + R"(","code":"wrong","name":"n"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("invalid_grant"), std::string::npos) << r.body;
  EXPECT_EQ(parse(call("GET", "/admin/accounts").body)["accounts"].Size(), 0u);

  // A setup token has no refresh token: the account has only its access token.
  session = startSession(true);
  const std::string access = "sk-ant-oat01-SETUP-token-000111";
  fake_.enqueue(tokenReply(R"({"access_token":")" + access +
                           R"(","expires_in":31536000,"scope":"user:inference"})"));
  r = call("POST", "/admin/oauth/claude/exchange",
           R"({"session_id":")" + session + R"(","code":"good","name":"setup"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = parse(r.body);
  ASSERT_EQ(d["secrets"].Size(), 1u);
  EXPECT_STREQ(d["secrets"][0]["name"].GetString(), "access_token");
  expectNeverShown(access);

  // Input that the exchange itself provides is refused before the code is spent.
  session = startSession(false);
  r = call("POST", "/admin/oauth/claude/exchange",
           R"({"session_id":")" + session +
               R"(","code":"c","name":"n","access_token":"sk-mine-123456789"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("access_token"), std::string::npos) << r.body;
  EXPECT_EQ(call("POST", "/admin/oauth/claude/exchange",
                 R"({"session_id":")" + session + R"(","code":"c","name":"n","type":"x"})")
                .status,
            400);
  EXPECT_EQ(call("POST", "/admin/oauth/claude/exchange",
                 R"({"session_id":")" + session + R"(","name":"n"})")
                .status,
            400);
  EXPECT_EQ(call("POST", "/admin/oauth/claude/exchange",
                 R"({"session_id":"unknown-session","code":"c","name":"n"})")
                .status,
            404);
  EXPECT_EQ(fake_.requestCount(), 2u);  // none of the refused inputs reached the server
  EXPECT_EQ(call("POST", "/admin/oauth/claude/start", R"({"setup_token":"yes"})").status, 400);
}

// ---- The admin token file ---------------------------------------------------------------------

TEST(AdminTokenTest, ConfiguredTokenWins) {
  rgtest::TempDir dir;
  bool generated = true;
  auto t = loadOrCreateAdminToken(kToken, dir.file("data"), &generated);
  ASSERT_TRUE(t) << t.status().toString();
  EXPECT_EQ(*t, kToken);
  EXPECT_FALSE(generated);
  EXPECT_FALSE(std::filesystem::exists(dir.file("data/admin.token")));
  auto shortToken = loadOrCreateAdminToken("too-short", dir.file("data"), &generated);
  EXPECT_EQ(shortToken.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(shortToken.status().message().find("too-short"), std::string::npos);
  EXPECT_EQ(loadOrCreateAdminToken(std::string(40, 'a') + " b", dir.file("data"), &generated)
                .status()
                .code(),
            Code::kInvalidArgument);
}

TEST(AdminTokenTest, GeneratedOnceWithMode0600AndReused) {
  rgtest::TempDir dir;
  const std::string data = dir.file("nested/data");
  bool generated = false;
  auto first = loadOrCreateAdminToken("", data, &generated);
  ASSERT_TRUE(first) << first.status().toString();
  EXPECT_TRUE(generated);
  ASSERT_EQ(first->size(), 4u + 64u);
  EXPECT_EQ(first->rfind("rga_", 0), 0u);
  EXPECT_TRUE(crypto::fromHex(first->substr(4)));
  struct stat st {};
  ASSERT_EQ(::stat((data + "/admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(rgtest::readFile(data + "/admin.token"), *first + "\n");
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(data)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);  // no temporary file left behind

  auto second = loadOrCreateAdminToken("", data, &generated);
  ASSERT_TRUE(second);
  EXPECT_FALSE(generated);
  EXPECT_EQ(*second, *first);
  // A fresh data dir gets another token.
  auto other = loadOrCreateAdminToken("", dir.file("other"), &generated);
  ASSERT_TRUE(other);
  EXPECT_NE(*other, *first);
}

TEST(AdminTokenTest, CorruptFileIsAnErrorAndKept) {
  rgtest::TempDir dir;
  std::filesystem::create_directories(dir.file("data"));
  rgtest::writeFile(dir.file("data/admin.token"), "short\n");
  bool generated = true;
  auto t = loadOrCreateAdminToken("", dir.file("data"), &generated);
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
  EXPECT_NE(t.status().message().find("admin.token"), std::string::npos);
  EXPECT_FALSE(generated);
  EXPECT_EQ(rgtest::readFile(dir.file("data/admin.token")), "short\n");
  rgtest::writeFile(dir.file("data/admin.token"), "");
  EXPECT_EQ(loadOrCreateAdminToken("", dir.file("data"), &generated).status().code(),
            Code::kInvalidArgument);
  // An operator-written token of the right length is used as is.
  rgtest::writeFile(dir.file("data/admin.token"), kToken + "\n");
  auto ok = loadOrCreateAdminToken("", dir.file("data"), &generated);
  ASSERT_TRUE(ok) << ok.status().toString();
  EXPECT_EQ(*ok, kToken);
}

// ---- Pricing -----------------------------------------------------------------------------------

TEST_F(AdminApiTest, PricingShowsTheTableAndReloadsItKeepingTheOldOneOnABadFile) {
  rgtest::TempDir dir;
  std::string file = dir.file("prices.json");
  auto write = [&](const std::string& text) {
    FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  write(R"({"m-one":{"input_cost_per_token":3e-6,"output_cost_per_token":0.000015}})");
  auto first = PriceTable::loadFile(file);
  ASSERT_TRUE(first.isOk()) << first.status().message();
  PriceTableHolder prices(std::make_shared<const PriceTable>(std::move(first.value())));
  AdminDeps d = deps();
  d.prices = &prices;
  d.reloadPrices = [&]() -> StatusOr<std::shared_ptr<const PriceTable>> {
    auto t = PriceTable::loadFile(file);
    if (!t) {
      return t.status();
    }
    auto p = std::make_shared<const PriceTable>(std::move(t.value()));
    prices.store(p);
    return std::shared_ptr<const PriceTable>(p);
  };
  api_ = std::make_unique<AdminApi>(d);

  auto shown = call("GET", "/admin/pricing", "", "model=m-one-20250101");
  ASSERT_EQ(shown.status, 200) << shown.body;
  auto j = parse(shown.body);
  EXPECT_EQ(j["models"].GetUint64(), 1u);
  EXPECT_TRUE(j["priced"].GetBool());
  EXPECT_STREQ(j["matched"].GetString(), "m-one");  // the date suffix is normalised away
  EXPECT_STREQ(j["input_usd_per_mtok"].GetString(), "3");
  EXPECT_STREQ(j["output_usd_per_mtok"].GetString(), "15");
  EXPECT_FALSE(j.HasMember("cache_read_usd_per_mtok"));  // not in the file: derived at cost time

  write(R"({"m-one":{"input_cost_per_token":1e-6,"output_cost_per_token":2e-6},)"
        R"("m-two":{"input_cost_per_token":2.5e-7,"output_cost_per_token":1e-6}})");
  auto reloaded = call("POST", "/admin/pricing/reload");
  ASSERT_EQ(reloaded.status, 200) << reloaded.body;
  EXPECT_EQ(parse(reloaded.body)["models"].GetUint64(), 2u);
  auto two = parse(call("GET", "/admin/pricing", "", "model=m-two").body);
  EXPECT_STREQ(two["input_usd_per_mtok"].GetString(), "0.25");
  EXPECT_EQ(prices.load()->size(), 2u);

  write("{ not json");
  auto bad = call("POST", "/admin/pricing/reload");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("keeping the previous one"), std::string::npos) << bad.body;
  EXPECT_EQ(prices.load()->size(), 2u);  // the old table stays in force

  auto unknown = parse(call("GET", "/admin/pricing", "", "model=no-such-model").body);
  EXPECT_FALSE(unknown["priced"].GetBool());
  EXPECT_EQ(call("GET", "/admin/pricing/reload").status, 405);
}

TEST_F(AdminApiTest, PricingWithoutATableIs501) {
  EXPECT_EQ(call("GET", "/admin/pricing").status, 501);
  EXPECT_EQ(call("POST", "/admin/pricing/reload").status, 501);
}

}  // namespace
}  // namespace rg
