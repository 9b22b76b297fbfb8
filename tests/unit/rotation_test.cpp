// SecretBox support for master-key rotation: opening values sealed under a previous key while
// sealing only with the current one. (The rotation itself runs against real stores in
// tests/integration/cli_test.cpp: this binary links only rg_common.)
#include <string>

#include <gtest/gtest.h>

#include "crypto/crypto.h"

namespace {

using rg::crypto::SecretBox;

std::string keyOf(char c) {
  return std::string(32, c);
}

TEST(SecretBoxRotation, OpensValuesOfAnAddedPreviousKeyButSealsWithItsOwn) {
  SecretBox oldBox(keyOf('o'), "old1");
  SecretBox newBox(keyOf('n'), "new1");
  std::string sealedOld = oldBox.seal("sk-ant-old-secret");

  auto before = newBox.open(sealedOld);
  ASSERT_FALSE(before.isOk());
  EXPECT_EQ(before.status().code(), rg::Code::kFailedPrecondition);
  EXPECT_EQ(before.status().message().find("sk-ant"), std::string::npos);

  newBox.addDecryptionKey(keyOf('o'), "old1");
  auto after = newBox.open(sealedOld);
  ASSERT_TRUE(after.isOk()) << after.status().message();
  EXPECT_EQ(*after, "sk-ant-old-secret");

  std::string resealed = newBox.seal(*after);
  auto id = rg::crypto::sealedKeyId(resealed);
  ASSERT_TRUE(id.isOk());
  EXPECT_EQ(*id, "new1");
  EXPECT_FALSE(oldBox.open(resealed).isOk()) << "the old key must not open re-sealed values";
  EXPECT_EQ(*newBox.open(resealed), "sk-ant-old-secret");
}

TEST(SecretBoxRotation, AWrongPreviousKeyUnderTheRightIdFailsAuthentication) {
  SecretBox oldBox(keyOf('o'), "old1");
  SecretBox newBox(keyOf('n'), "new1");
  newBox.addDecryptionKey(keyOf('x'), "old1");  // right id, wrong bytes
  auto r = newBox.open(oldBox.seal("secret"));
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("authentication failed"), std::string::npos);
}

TEST(SecretBoxRotation, AValueCannotBeRelabelledToAnotherKeyId) {
  // Both keys are known to the box; a value sealed under one and relabelled with the other id
  // must fail (the id is authenticated), not open with whichever key.
  SecretBox a(keyOf('a'), "ida");
  SecretBox b(keyOf('a'), "idb");  // same bytes, other id
  a.addDecryptionKey(keyOf('a'), "idb");
  std::string sealed = b.seal("v");
  ASSERT_TRUE(a.open(sealed).isOk());
  std::string relabelled = "v1:ida:" + sealed.substr(std::string("v1:idb:").size());
  EXPECT_FALSE(a.open(relabelled).isOk());
}

TEST(SecretBoxRotation, SealedKeyIdRejectsMalformedValues) {
  EXPECT_FALSE(rg::crypto::sealedKeyId("nonsense").isOk());
  EXPECT_FALSE(rg::crypto::sealedKeyId("v2:abc:xyz").isOk());
  auto id = rg::crypto::sealedKeyId("v1:abcd1234:AAAA");
  ASSERT_TRUE(id.isOk());
  EXPECT_EQ(*id, "abcd1234");
}

}  // namespace
