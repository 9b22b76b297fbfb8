#include "crypto/crypto.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace rgtest {
namespace {

using namespace rg::crypto;

std::string unhex(const std::string& h) {
  auto r = fromHex(h);
  EXPECT_TRUE(r.isOk()) << h;
  return r.isOk() ? *r : std::string();
}

TEST(CryptoTest, Sha256KnownVector) {
  EXPECT_EQ(toHex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(toHex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(CryptoTest, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(toHex(hmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, HmacSha256Rfc4231Case1) {
  EXPECT_EQ(toHex(hmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(CryptoTest, HkdfRfc5869Case3EmptySaltAndInfo) {
  EXPECT_EQ(toHex(deriveKey(std::string(22, '\x0b'), "", 42)),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
            "9d201395faa4b61a96c8");
}

TEST(CryptoTest, HkdfWithInfoMatchesTheRfcConstructionFromHmac) {
  // RFC 5869 built by hand from HMAC: PRK = HMAC(zeros, IKM); T(i) = HMAC(PRK, T(i-1)|info|i).
  const std::string ikm = "some master key material";
  const std::string info = "relaygate secret box v1";
  std::string prk = hmacSha256(std::string(32, '\0'), ikm);
  std::string t1 = hmacSha256(prk, info + '\x01');
  std::string t2 = hmacSha256(prk, t1 + info + '\x02');
  EXPECT_EQ(toHex(deriveKey(ikm, info, 48)), toHex((t1 + t2).substr(0, 48)));
  EXPECT_EQ(deriveKey(ikm, info).size(), 32u);
  EXPECT_NE(deriveKey(ikm, "purpose a"), deriveKey(ikm, "purpose b"));
}

TEST(CryptoTest, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> kVectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(base64Encode(plain), encoded);
    auto d = base64Decode(encoded);
    ASSERT_TRUE(d.isOk()) << encoded;
    EXPECT_EQ(*d, plain);
    // Unpadded input decodes too.
    std::string unpadded(encoded);
    unpadded.erase(unpadded.find_last_not_of('=') + 1);
    auto u = base64Decode(unpadded);
    ASSERT_TRUE(u.isOk()) << unpadded;
    EXPECT_EQ(*u, plain);
  }
}

TEST(CryptoTest, Base64UrlAndRejects) {
  std::string bytes("\xfb\xff\xbf", 3);
  EXPECT_EQ(base64Encode(bytes), "+/+/");
  EXPECT_EQ(base64UrlEncode(bytes), "-_-_");
  EXPECT_EQ(base64UrlEncode("f"), "Zg");
  auto d = base64Decode("-_-_");
  ASSERT_TRUE(d.isOk());
  EXPECT_EQ(*d, bytes);
  EXPECT_FALSE(base64Decode("Zm9v!").isOk());
  EXPECT_FALSE(base64Decode("Z").isOk());
  EXPECT_FALSE(base64Decode("Zg=").isOk());
  EXPECT_FALSE(base64Decode("Zh==").isOk());  // non-zero trailing bits
}

TEST(CryptoTest, HexRoundTripAndRejects) {
  std::string bytes("\x00\x01\xab\xff", 4);
  EXPECT_EQ(toHex(bytes), "0001abff");
  EXPECT_EQ(unhex("0001ABff"), bytes);
  EXPECT_FALSE(fromHex("abc").isOk());
  EXPECT_FALSE(fromHex("zz").isOk());
}

TEST(CryptoTest, RandomBytesLengthAndDistinct) {
  EXPECT_EQ(randomBytes(0).size(), 0u);
  EXPECT_EQ(randomBytes(33).size(), 33u);
  EXPECT_NE(randomBytes(16), randomBytes(16));
}

TEST(CryptoTest, UuidV4FormatAndUniqueness) {
  const std::regex kUuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string u = uuidV4();
    ASSERT_TRUE(std::regex_match(u, kUuid)) << u;
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(CryptoTest, ConstantTimeEquals) {
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_TRUE(constantTimeEquals("abcdef", "abcdef"));
  EXPECT_FALSE(constantTimeEquals("abcdef", "abcdeg"));
  EXPECT_FALSE(constantTimeEquals("abcdef", "abcde"));
  EXPECT_FALSE(constantTimeEquals("", "a"));
  EXPECT_TRUE(constantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

class SecretBoxTest : public ::testing::Test {
 protected:
  SecretBox box_{deriveKey("master", "box"), "k1"};
};

TEST_F(SecretBoxTest, SealOpenRoundTrip) {
  for (const std::string& plain : {std::string(), std::string("sk-ant-api03-secret"),
                                   std::string(5000, 'x'), std::string("\0\xff\n", 3)}) {
    std::string sealed = box_.seal(plain);
    EXPECT_EQ(sealed.rfind("v1:k1:", 0), 0u) << sealed;
    if (plain.size() > 4) {
      EXPECT_EQ(sealed.find(plain), std::string::npos);
    }
    auto opened = box_.open(sealed);
    ASSERT_TRUE(opened.isOk()) << opened.status().message();
    EXPECT_EQ(*opened, plain);
  }
}

TEST_F(SecretBoxTest, SealedFormIsNonceCiphertextTag) {
  std::string sealed = box_.seal("hello");
  auto blob = base64Decode(sealed.substr(6));
  ASSERT_TRUE(blob.isOk());
  EXPECT_EQ(blob->size(), 12u + 5u + 16u);
  EXPECT_NE(box_.seal("hello"), sealed) << "nonce must be random";
}

TEST_F(SecretBoxTest, TamperingIsDetected) {
  const std::string secret = "a-very-secret-value";
  std::string sealed = box_.seal(secret);
  auto blob = base64Decode(sealed.substr(6));
  ASSERT_TRUE(blob.isOk());
  for (size_t i = 0; i < blob->size(); ++i) {
    std::string b = *blob;
    b[i] = static_cast<char>(b[i] ^ 0x01);
    auto r = box_.open("v1:k1:" + base64Encode(b));
    ASSERT_FALSE(r.isOk()) << "flipped byte " << i;
    EXPECT_EQ(r.status().message().find(secret), std::string::npos);
  }
  // Truncated ciphertext.
  auto r = box_.open("v1:k1:" + base64Encode(blob->substr(0, blob->size() - 1)));
  EXPECT_FALSE(r.isOk());
}

TEST_F(SecretBoxTest, WrongKeyIdAndWrongKeyAreRejected) {
  std::string sealed = box_.seal("x");
  SecretBox other(deriveKey("master", "other"), "k2");
  auto r = other.open(sealed);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("k1"), std::string::npos);
  // Same id, different key: authentication fails.
  SecretBox sameIdOtherKey(deriveKey("master", "other"), "k1");
  EXPECT_FALSE(sameIdOtherKey.open(sealed).isOk());
  // Relabelling the key id is caught by the authenticated data.
  SecretBox relabelled(deriveKey("master", "box"), "k9");
  std::string moved = "v1:k9:" + sealed.substr(6);
  EXPECT_FALSE(relabelled.open(moved).isOk());
}

TEST_F(SecretBoxTest, BadFormatsAreErrorsNotCrashes) {
  for (const char* bad : {"", "v1", "v1:", "v1:k1", "v2:k1:AAAA", "v1:k1:!!!!",
                          "v1:k1:", "v1:k1:AAAA", "garbage without colons"}) {
    auto r = box_.open(bad);
    EXPECT_FALSE(r.isOk()) << bad;
  }
}

}  // namespace
}  // namespace rgtest
