// The opened-secret cache: hits, TTL expiry on an injected clock, LRU eviction at capacity.
#include "accounts/secret_cache.h"

#include <gtest/gtest.h>

namespace rg {
namespace {

TEST(SecretCacheTest, HitsExpireAfterTheTtl) {
  ManualClock clock;
  SecretCache cache(clock, 4, 1000);
  EXPECT_FALSE(cache.get("v1:k:sealed-a"));
  cache.put("v1:k:sealed-a", "plain-a");
  ASSERT_TRUE(cache.get("v1:k:sealed-a"));
  EXPECT_EQ(*cache.get("v1:k:sealed-a"), "plain-a");
  clock.advanceMs(999);
  EXPECT_TRUE(cache.get("v1:k:sealed-a"));
  clock.advanceMs(1);
  EXPECT_FALSE(cache.get("v1:k:sealed-a"));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(SecretCacheTest, EvictsTheLeastRecentlyUsed) {
  ManualClock clock;
  SecretCache cache(clock, 2, 60000);
  cache.put("a", "1");
  cache.put("b", "2");
  EXPECT_TRUE(cache.get("a"));  // a is now the most recently used
  cache.put("c", "3");          // evicts b
  EXPECT_TRUE(cache.get("a"));
  EXPECT_FALSE(cache.get("b"));
  EXPECT_TRUE(cache.get("c"));
  EXPECT_EQ(cache.size(), 2u);
  // Replacing an entry keeps one copy.
  cache.put("c", "3b");
  EXPECT_EQ(*cache.get("c"), "3b");
  EXPECT_EQ(cache.size(), 2u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace rg
