#pragma once
// The set-up the account service, scheduler and admin API tests share: a real embedded store in a
// temp dir, a test SecretBox and an AccountService with its cache off, so that every read sees
// what the test just wrote. Fixtures that add members derive from it: those are destroyed first,
// before the services they refer to.

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "accounts/account_service.h"
#include "common/clock.h"
#include "crypto/crypto.h"
#include "fakes/support.h"
#include "storage/store.h"

namespace rgtest {

class AccountStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rg::EmbeddedOptions eo;
    eo.dataDir = dir_.file("data");
    auto s = rg::openEmbeddedStore(eo, clock_);
    ASSERT_TRUE(s) << s.status().toString();
    store_ = std::move(s.value());
    accounts_ = std::make_unique<rg::AccountService>(*store_, clock_, box_, /*cacheTtlMs=*/0);
  }

  TempDir dir_;
  rg::ManualClock clock_;
  rg::crypto::SecretBox box_{std::string(32, 'k'), "test"};
  rg::StorePtr store_;
  std::unique_ptr<rg::AccountService> accounts_;
};

}  // namespace rgtest
