// Account choice on a real embedded store: priority first, then least recently used (rotation
// within a tier), sealed secrets, and a clear reason when nothing can serve.
#include "accounts/account_service.h"

#include <gtest/gtest.h>

#include "crypto/crypto.h"
#include "fakes/support.h"

namespace rg {
namespace {

class AccountServiceTest : public ::testing::Test {
protected:
  void SetUp() override {
    EmbeddedOptions eo;
    eo.dataDir = dir_.file("data");
    auto s = openEmbeddedStore(eo, clock_);
    ASSERT_TRUE(s) << s.status().toString();
    store_ = std::move(s.value());
    svc_ = std::make_unique<AccountService>(*store_, clock_, box_, /*cacheTtlMs=*/0);
  }
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
  rgtest::TempDir dir_;
  ManualClock clock_;
  crypto::SecretBox box_{std::string(32, 'k'), "test"};
  StorePtr store_;
  std::unique_ptr<AccountService> svc_;
};

TEST_F(AccountServiceTest, RotatesWithinATierAndPrefersLowerPriority) {
  add("a", 50, "sk-ant-aaaaaaaaaaaaaaaa");
  add("b", 50, "sk-ant-bbbbbbbbbbbbbbbb");
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    auto p = svc_->pick({"claude-console"});
    ASSERT_TRUE(p) << p.status().toString();
    seen.push_back(p->record.name);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "a", "b"}));
  add("preferred", 10, "sk-ant-pppppppppppppppp");
  for (int i = 0; i < 3; ++i) {
    auto p = svc_->pick({"claude-console"});
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
  bad.type = "gemini";
  EXPECT_EQ(svc_->add(bad).status().code(), Code::kInvalidArgument);
}

TEST_F(AccountServiceTest, NoAccountNamesWhy) {
  auto p = svc_->pick({"claude-console"});
  EXPECT_EQ(p.status().code(), Code::kUnavailable);
  EXPECT_NE(p.status().message().find("claude-console"), std::string::npos);
}

} // namespace
} // namespace rg
