// Accounts on a real embedded store: validation per type, sealing of every secret, masked views,
// updates and status changes, and how they reach the scheduler's choice for a route (priority
// first, then least recently used, and a clear reason when nothing can serve).
#include "accounts/account_service.h"

#include <algorithm>
#include <functional>
#include <set>

#include <gtest/gtest.h>

#include "crypto/crypto.h"
#include "fakes/support.h"
#include "gateway/account_store_fixture.h"
#include "scheduler/scheduler.h"

namespace rg {
namespace {

class AccountServiceTest : public rgtest::AccountStoreTest {
 protected:
  void SetUp() override {
    AccountStoreTest::SetUp();
    svc_ = accounts_.get();
    sched_ =
        std::make_unique<Scheduler>(*svc_, *store_, clock_, SchedulerConfig{}, nullptr, nullptr);
  }
  // The scheduler's choice for a route of `type` (released at once), with its opened secret.
  struct Chosen {
    AccountRecord record;
    std::string secret;
  };
  // `boundTo`: through a key bound to that account (how a dedicated account is reached).
  StatusOr<Chosen> pick(const std::string& type, const std::string& boundTo = "") {
    PickRequest r;
    r.types = {type};
    r.provider = AccountService::providerOf(type);
    r.holder = "test";
    ApiKeyRecord key;
    if (!boundTo.empty()) {
      key.bindings[r.provider] = boundTo;
      r.key = &key;
    }
    auto p = sched_->pick(r);
    if (!p) {
      return p.status();
    }
    sched_->release(*p);
    auto secret = svc_->openPrimaryCached(p->record);
    if (!secret) {
      return secret.status();
    }
    return Chosen{p->record, *secret};
  }
  std::unique_ptr<Scheduler> sched_;
  std::string add(const std::string& name, int64_t priority, const std::string& key) {
    NewAccountOptions o;
    o.type = "claude-console";
    o.name = name;
    o.baseUrl = "https://api.example.com/";
    o.apiKey = key;
    o.priority = priority;
    auto r = svc_->add(o);
    EXPECT_TRUE(r) << r.status().toString();
    clock_.advanceMs(1);
    return r ? r->id : "";
  }
  AccountService* svc_ = nullptr;  // accounts_
};

TEST_F(AccountServiceTest, RotatesWithinATierAndPrefersLowerPriority) {
  add("a", 50, "sk-ant-aaaaaaaaaaaaaaaa");
  add("b", 50, "sk-ant-bbbbbbbbbbbbbbbb");
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    auto p = pick("claude-console");
    ASSERT_TRUE(p) << p.status().toString();
    seen.push_back(p->record.name);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "a", "b"}));
  add("preferred", 10, "sk-ant-pppppppppppppppp");
  for (int i = 0; i < 3; ++i) {
    auto p = pick("claude-console");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->record.name, "preferred");
    EXPECT_EQ(p->secret, "sk-ant-pppppppppppppppp");
  }
}

TEST_F(AccountServiceTest, SecretsAreSealedAndInputIsValidated) {
  std::string id = add("a", 50, "sk-ant-secret-value-123456");
  auto rec = store_->accounts().get(id);
  ASSERT_TRUE(rec);
  ASSERT_TRUE(rec->has_value());
  EXPECT_EQ((*rec)->secretSealed.find("secret-value"), std::string::npos);
  EXPECT_EQ((*rec)->baseUrl, "https://api.example.com");
  EXPECT_EQ(*svc_->maskedSecret(**rec), "sk-a****3456");
  NewAccountOptions bad;
  bad.type = "claude-console";
  bad.name = "x";
  bad.apiKey = "k";
  bad.baseUrl = "ftp://nope";
  EXPECT_EQ(svc_->add(bad).status().code(), Code::kInvalidArgument);
  bad.baseUrl = "https://ok";
  bad.priority = 0;
  EXPECT_EQ(svc_->add(bad).status().code(), Code::kInvalidArgument);
  bad.priority = 5;
  bad.type = "no-such-type";
  EXPECT_EQ(svc_->add(bad).status().code(), Code::kInvalidArgument);
}

TEST_F(AccountServiceTest, NoAccountNamesWhy) {
  auto p = pick("claude-console");
  EXPECT_EQ(p.status().code(), Code::kUnavailable);
  EXPECT_NE(p.status().message().find("claude-console"), std::string::npos);
}

// Full inputs for each type: every secret it can hold, plus a proxy password.
struct TypeCase {
  std::string type;
  AccountFields fields;
  std::string provider;
  std::string primary;  // the secret name expected in secretSealed
};

std::vector<TypeCase> typeCases() {
  return {
      {"claude-official",
       {{"access-token", "sk-ant-oat01-OFFICIAL-ACCESS"},
        {"refresh-token", "sk-ant-ort01-REFRESH"}},
       "claude",
       "access_token"},
      {"claude-console",
       {{"base-url", "https://console.example.com/"}, {"api-key", "sk-ant-CONSOLE-KEY-123"}},
       "claude",
       "api_key"},
      {"bedrock",
       {{"region", "eu-central-1"},
        {"aws-access-key-id", "AKIAEXAMPLEKEYID0001"},
        {"aws-secret-access-key", "AWS-SECRET-ACCESS-KEY-xyz"},
        {"aws-session-token", "AWS-SESSION-TOKEN-abc"}},
       "bedrock",
       "aws_secret_access_key"},
      {"gemini",
       {{"access-token", "ya29.GEMINI-ACCESS"},
        {"refresh-token", "1//GEMINI-REFRESH"},
        {"project-id", "my-project-123"}},
       "gemini",
       "access_token"},
      {"gemini-api", {{"api-key", "AIzaGEMINI-API-KEY-1"}}, "gemini", "api_key"},
      {"openai",
       {{"access-token", "eyJOPENAI-ACCESS-TOKEN"},
        {"refresh-token", "rt_OPENAI-REFRESH"},
        {"chatgpt-account-id", "acc-1234"}},
       "openai",
       "access_token"},
      {"openai-responses",
       {{"base-url", "https://responses.example.com"}, {"api-key", "sk-RESPONSES-KEY-99"}},
       "openai",
       "api_key"},
      {"azure-openai",
       {{"endpoint", "https://res.openai.azure.com/"},
        {"deployment", "gpt-4o"},
        {"api-version", "2024-10-21"},
        {"api-key", "AZURE-KEY-0123456789"}},
       "openai",
       "api_key"},
  };
}

std::string allStoredText(const AccountRecord& r) {
  std::string t = r.id + r.name + r.type + r.baseUrl + r.secretSealed + r.proxyUrl +
                  r.settingsJson + r.statusReason;
  for (const auto& [k, v] : r.secretsSealed) {
    t += k + v;
  }
  return t;
}

TEST_F(AccountServiceTest, EveryTypeIsAcceptedSealedAndMasked) {
  ASSERT_EQ(AccountService::knownTypes().size(), typeCases().size());
  for (const auto& tc : typeCases()) {
    SCOPED_TRACE(tc.type);
    NewAccountOptions o;
    o.type = tc.type;
    o.name = tc.type + " account";
    o.fields = tc.fields;
    o.fields["proxy-password"] = "PROXY-PASSWORD-42";
    o.proxyUrl = "socks5://user@proxy.example.com:1080";
    auto r = svc_->add(o);
    ASSERT_TRUE(r) << r.status().toString();
    auto stored = store_->accounts().get(r->id);
    ASSERT_TRUE(stored && stored->has_value());
    const AccountRecord& rec = **stored;
    EXPECT_EQ(rec.provider, tc.provider);
    EXPECT_FALSE(rec.baseUrl.empty());
    EXPECT_NE(rec.baseUrl.back(), '/');
    EXPECT_EQ(AccountService::primarySecretName(rec), tc.primary);
    std::string text = allStoredText(rec);
    std::set<std::string> expectedSecrets = {"proxy_password"};
    for (const auto& [flag, value] : o.fields) {
      bool secret = flag.find("key") != std::string::npos ||
                    flag.find("token") != std::string::npos ||
                    flag.find("password") != std::string::npos;
      if (secret) {
        EXPECT_EQ(text.find(value), std::string::npos) << flag << " stored in clear";
        std::string name = flag;
        std::replace(name.begin(), name.end(), '-', '_');
        expectedSecrets.insert(name);
        auto opened = svc_->openSecret(rec, name);
        ASSERT_TRUE(opened) << name << ": " << opened.status().toString();
        EXPECT_EQ(*opened, value);
      } else if (flag != "base-url" && flag != "endpoint") {
        EXPECT_NE(rec.settingsJson.find(value), std::string::npos) << flag;
      }
    }
    auto masked = svc_->maskedSecrets(rec);
    ASSERT_TRUE(masked);
    std::set<std::string> names;
    for (const auto& m : *masked) {
      names.insert(m.name);
      EXPECT_NE(m.masked.find("****"), std::string::npos);
      for (const auto& [flag, value] : o.fields) {
        EXPECT_EQ(m.masked.find(value), std::string::npos) << flag << " shown unmasked";
      }
    }
    EXPECT_EQ(names, expectedSecrets);
    EXPECT_EQ((*masked)[0].name, tc.primary);
  }
}

TEST_F(AccountServiceTest, EachTypeNamesItsMissingOrForeignFlag) {
  for (const auto& tc : typeCases()) {
    for (const auto& [flag, value] : tc.fields) {
      if (flag == "refresh-token" || flag == "aws-session-token" || flag == "project-id") {
        continue;  // optional
      }
      SCOPED_TRACE(tc.type + " without --" + flag);
      NewAccountOptions o;
      o.type = tc.type;
      o.name = "n";
      o.fields = tc.fields;
      o.fields.erase(flag);
      if (tc.type == "claude-official" || tc.type == "gemini" || tc.type == "gemini-api") {
        if (flag == "base-url") {
          continue;  // has a default
        }
      }
      auto r = svc_->add(o);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
      EXPECT_NE(r.status().message().find("--" + flag), std::string::npos) << r.status().message();
    }
  }
  NewAccountOptions o;
  o.type = "claude-console";
  o.name = "n";
  o.baseUrl = "https://x.example";
  o.apiKey = "k";
  o.fields["region"] = "us-east-1";
  auto r = svc_->add(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("--region does not apply to account type claude-console"),
            std::string::npos)
      << r.status().message();
  // Bedrock: keys or a bearer token, not both, not neither.
  NewAccountOptions b;
  b.type = "bedrock";
  b.name = "b";
  b.fields = {{"region", "us-west-2"}, {"bearer-token", "BEARER-TOKEN-1234567"}};
  auto bearer = svc_->add(b);
  ASSERT_TRUE(bearer) << bearer.status().toString();
  EXPECT_EQ(AccountService::primarySecretName(*bearer), "bearer_token");
  EXPECT_EQ(*svc_->openSecret(*bearer, "bearer_token"), "BEARER-TOKEN-1234567");
  b.fields["aws-access-key-id"] = "AKIA";
  b.fields["aws-secret-access-key"] = "S";
  EXPECT_FALSE(svc_->add(b));
  b.fields = {{"region", "us-west-2"}, {"aws-access-key-id", "AKIA"}};
  auto half = svc_->add(b);
  ASSERT_FALSE(half);
  EXPECT_NE(half.status().message().find("--aws-secret-access-key"), std::string::npos);
}

TEST_F(AccountServiceTest, FormatsAndRangesAreChecked) {
  auto base = [] {
    NewAccountOptions o;
    o.type = "azure-openai";
    o.name = "az";
    o.fields = {{"endpoint", "https://res.openai.azure.com"},
                {"deployment", "gpt-4o"},
                {"api-version", "2025-04-01-preview"},
                {"api-key", "AZURE-KEY-0123456789"}};
    return o;
  };
  ASSERT_TRUE(svc_->add(base()));
  struct Bad {
    const char* what;
    std::function<void(NewAccountOptions&)> edit;
    const char* mentions;
  };
  std::vector<Bad> bads = {
      {"api version", [](auto& o) { o.fields["api-version"] = "2024-13"; }, "--api-version"},
      {"deployment", [](auto& o) { o.fields["deployment"] = "gpt 4o"; }, "--deployment"},
      {"endpoint", [](auto& o) { o.fields["endpoint"] = "ftp://x"; }, "--endpoint"},
      {"priority 0", [](auto& o) { o.priority = 0; }, "--priority"},
      {"priority 101", [](auto& o) { o.priority = 101; }, "--priority"},
      {"concurrency", [](auto& o) { o.concurrencyLimit = -1; }, "--concurrency"},
      {"proxy scheme", [](auto& o) { o.proxyUrl = "ftp://h:1"; }, "--proxy"},
      {"proxy port", [](auto& o) { o.proxyUrl = "http://h"; }, "--proxy"},
      // The upstream client has no TLS to the proxy: say so rather than fail on every request.
      {"https proxy", [](auto& o) { o.proxyUrl = "https://h:3128"; }, "not supported"},
      {"HTTPS proxy", [](auto& o) { o.proxyUrl = "HTTPS://h:3128"; }, "TLS to the proxy"},
      {"proxy password in url", [](auto& o) { o.proxyUrl = "http://u:p@h:3128"; },
       "--proxy-password"},
      {"password without proxy", [](auto& o) { o.fields["proxy-password"] = "p"; }, "--proxy"},
      {"group name", [](auto& o) { o.groups = {"a b"}; }, "--groups"},
      {"expiry", [this](auto& o) { o.subscriptionExpiresAtMs = clock_.nowUnixMs() - 1; },
       "--expires-at"},
      {"empty name", [](auto& o) { o.name = ""; }, "--name"},
  };
  for (const auto& b : bads) {
    SCOPED_TRACE(b.what);
    auto o = base();
    b.edit(o);
    auto r = svc_->add(o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(b.mentions), std::string::npos) << r.status().message();
  }
  NewAccountOptions br;
  br.type = "bedrock";
  br.name = "b";
  br.fields = {{"region", "US-EAST-1"}, {"bearer-token", "t"}};
  EXPECT_FALSE(svc_->add(br));
  br.fields["region"] = "us-gov-west-1";
  EXPECT_TRUE(svc_->add(br));

  auto m = parseModelMapping("claude-3=claude-3-5, opus = claude-opus-4");
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, (std::map<std::string, std::string>{{"claude-3", "claude-3-5"},
                                                    {"opus", "claude-opus-4"}}));
  auto list = parseModelMapping("a,b");
  ASSERT_TRUE(list);
  EXPECT_EQ(*list, (std::map<std::string, std::string>{{"a", "a"}, {"b", "b"}}));
  EXPECT_FALSE(parseModelMapping("a=,b=c"));
  EXPECT_FALSE(parseModelMapping("a=b,a=c"));
  EXPECT_FALSE(parseModelMapping("a=b=c"));
}

TEST_F(AccountServiceTest, UpdateEnableDisableAndTheirEffectOnPick) {
  NewAccountOptions o;
  o.type = "openai-responses";
  o.name = "resp";
  o.baseUrl = "https://r.example.com";
  o.apiKey = "sk-OLD-KEY-000000000";
  o.modelMapping = {{"gpt-4", "gpt-4"}};
  auto r = svc_->add(o);
  ASSERT_TRUE(r) << r.status().toString();
  std::string oldSealed = r->secretSealed;
  clock_.advanceMs(5);

  AccountChanges c;
  c.name = "renamed";
  c.priority = 7;
  c.concurrencyLimit = 2;
  c.groups = std::vector<std::string>{"b", "a", "b"};
  c.dedicated = true;
  c.proxyUrl = "http://proxy.example.com:3128";
  c.fields = {{"proxy-password", "PROXY-PW-123456"}};
  auto u = svc_->update(r->id, c);
  ASSERT_TRUE(u) << u.status().toString();
  auto got = svc_->get(r->id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "renamed");
  EXPECT_EQ(got->priority, 7);
  EXPECT_EQ(got->concurrencyLimit, 2);
  EXPECT_EQ(got->groups, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(got->sharing, "dedicated");
  EXPECT_EQ(got->secretSealed, oldSealed) << "an update without --api-key keeps the key";
  EXPECT_EQ(got->modelMapping.size(), 1u);
  EXPECT_EQ(got->updatedAtMs, r->createdAtMs + 5);
  EXPECT_EQ(*svc_->openSecret(*got, "proxy_password"), "PROXY-PW-123456");

  AccountChanges key;
  key.fields = {{"api-key", "sk-NEW-KEY-111111111"}};
  ASSERT_TRUE(svc_->update(r->id, key));
  auto p = pick("openai-responses", r->id);
  ASSERT_TRUE(p) << p.status().toString();
  EXPECT_EQ(p->secret, "sk-NEW-KEY-111111111");

  AccountChanges foreign;
  foreign.fields = {{"deployment", "x"}};
  auto f = svc_->update(r->id, foreign);
  ASSERT_FALSE(f);
  EXPECT_NE(f.status().message().find("--deployment"), std::string::npos);
  AccountChanges noProxy;
  noProxy.proxyUrl = "";
  auto np = svc_->update(r->id, noProxy);
  ASSERT_TRUE(np);
  EXPECT_TRUE(np->proxyUrl.empty());
  EXPECT_EQ(np->secretsSealed.count("proxy_password"), 0u) << "the password goes with the proxy";
  EXPECT_EQ(svc_->update("missing", c).status().code(), Code::kNotFound);

  ASSERT_TRUE(svc_->disable(r->id, "quota exhausted"));
  got = svc_->get(r->id);
  EXPECT_EQ(got->status, "disabled");
  EXPECT_EQ(got->statusReason, "quota exhausted");
  EXPECT_EQ(pick("openai-responses", r->id).status().code(), Code::kUnavailable);
  ASSERT_TRUE(svc_->enable(r->id));
  got = svc_->get(r->id);
  EXPECT_EQ(got->status, "active");
  EXPECT_EQ(got->statusReason, "");
  EXPECT_TRUE(pick("openai-responses", r->id));
  ASSERT_TRUE(svc_->setSchedulable(r->id, false));
  EXPECT_EQ(pick("openai-responses", r->id).status().code(), Code::kUnavailable);
  EXPECT_EQ(svc_->enable("missing").code(), Code::kNotFound);
}

TEST_F(AccountServiceTest, RecordsWrittenBeforeTheFullModelGetTheirProvider) {
  AccountRecord old;
  old.id = "old-1";
  old.name = "legacy";
  old.type = "claude-console";
  old.baseUrl = "https://x.example";
  old.secretSealed = box_.seal("sk-LEGACY-0000000000");
  ASSERT_TRUE(store_->accounts().create(old));
  auto got = svc_->get("old-1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->provider, "claude");
  auto all = svc_->list();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].provider, "claude");
  EXPECT_EQ(svc_->get("nope").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace rg
