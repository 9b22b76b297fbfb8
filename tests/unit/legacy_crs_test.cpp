// The CRS secret readers, checked against vectors made independently at runtime by the openssl
// command line (and by Node itself when `node` is installed), never against constants we computed.
#include "crypto/legacy_crs.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "fakes/support.h"

namespace rgtest {
namespace {

using namespace rg::crypto;
using namespace rg::crypto::legacy;

constexpr const char* kEncryptionKey = "CRS-test-ENCRYPTION_KEY-0123456789";
constexpr const char* kIvHex = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

bool haveTool(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs a shell command; its stdout, or nullopt if it could not run or exited non-zero.
std::optional<std::string> run(const std::string& cmd) {
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) {
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    out.append(buf, n);
  }
  if (pclose(f) != 0) {
    return std::nullopt;
  }
  return out;
}

// "FF:61:39 ...\n" or "ff6139...  -\n" -> "ff6139...": keeps only hex digits, lowercased.
std::string normaliseHex(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c >= 'A' && c <= 'F') {
      out += static_cast<char>(c - 'A' + 'a');
    } else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
      out += c;
    } else if (c == ' ' && !out.empty()) {
      break; // sha256sum / dgst -r: the digest, then a space and the file name
    }
  }
  return out;
}

std::string opensslScryptHex(const std::string& pass, const std::string& salt) {
  auto out = run("openssl kdf -keylen 32 -kdfopt " + shellQuote("pass:" + pass) + " -kdfopt " +
                 shellQuote("salt:" + salt) +
                 " -kdfopt n:16384 -kdfopt r:8 -kdfopt p:1 SCRYPT");
  EXPECT_TRUE(out.has_value()) << "openssl kdf failed";
  return out ? normaliseHex(*out) : std::string();
}

// AES-256-CBC/PKCS#7 by the openssl CLI; returns "<iv hex>:<cipher hex>", the CRS stored form.
std::string opensslEncrypt(const TempDir& dir, const std::string& plain, const std::string& key,
                           const std::string& ivHex) {
  writeFile(dir.file("plain"), plain);
  auto out = run("openssl enc -aes-256-cbc -K " + toHex(key) + " -iv " + ivHex + " -in " +
                 shellQuote(dir.file("plain")) + " -out " + shellQuote(dir.file("cipher")));
  EXPECT_TRUE(out.has_value()) << "openssl enc failed";
  return ivHex + ":" + toHex(readFile(dir.file("cipher")));
}

#define RG_REQUIRE_OPENSSL()                                                                       \
  if (!haveTool("openssl")) {                                                                      \
    GTEST_SKIP() << "openssl command line not installed";                                         \
  }

TEST(LegacyCrsTest, ScryptKeyMatchesOpensslKdfForEachSalt) {
  RG_REQUIRE_OPENSSL();
  const std::vector<std::string> saltList = {salts::kClaudeOAuth, salts::kClaudeConsole,
                                             salts::kAzureOpenAiDefault, "custom salt with spaces"};
  std::vector<std::string> seen;
  for (const auto& salt : saltList) {
    std::string ours = toHex(deriveCrsKey(kEncryptionKey, salt));
    EXPECT_EQ(ours.size(), 64u);
    EXPECT_EQ(ours, opensslScryptHex(kEncryptionKey, salt)) << "salt " << salt;
    seen.push_back(ours);
  }
  EXPECT_NE(seen[0], seen[1]); // the salt really takes part
  // And the password: a different ENCRYPTION_KEY gives a different key.
  EXPECT_EQ(toHex(deriveCrsKey("another-key", "salt")), opensslScryptHex("another-key", "salt"));
  EXPECT_NE(toHex(deriveCrsKey("another-key", "salt")), seen[0]);
}

TEST(LegacyCrsTest, DecryptsOpensslCiphertexts) {
  RG_REQUIRE_OPENSSL();
  TempDir dir;
  const std::string key = deriveCrsKey(kEncryptionKey, salts::kClaudeOAuth);
  const std::vector<std::string> plains = {
      "x",                                                       // one byte, 15 bytes of padding
      "0123456789abcdef",                                        // a whole block of padding
      "sk-ant-oat01-AbCdEf_gh-1234567890",                       // a token
      "{\"access_token\":\"ya29.a0\",\"note\":\"gr\xC3\xBC\xC3\x9F\xE2\x82\xAC\"}", // UTF-8
      "",                                                        // only padding
  };
  for (const auto& plain : plains) {
    std::string stored = opensslEncrypt(dir, plain, key, kIvHex);
    auto got = decryptCrsSecret(stored, key);
    ASSERT_TRUE(got.isOk()) << got.status().toString();
    EXPECT_EQ(*got, plain);
  }
  // Hex case does not matter (Node's Buffer.from(hex) accepts both).
  std::string upper = opensslEncrypt(dir, "upper", key, kIvHex);
  for (auto& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  auto got = decryptCrsSecret(upper, key);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(*got, "upper");
}

TEST(LegacyCrsTest, WrongKeyOrSaltIsAnErrorNotGarbage) {
  RG_REQUIRE_OPENSSL();
  TempDir dir;
  const std::string plain = "refresh-token-that-must-not-leak-0123456789";
  const std::string key = deriveCrsKey(kEncryptionKey, salts::kClaudeOAuth);
  const std::string stored = opensslEncrypt(dir, plain, key, kIvHex);
  ASSERT_TRUE(decryptCrsSecret(stored, key).isOk());

  const std::vector<std::string> wrongKeys = {
      deriveCrsKey(kEncryptionKey, salts::kClaudeConsole), // right ENCRYPTION_KEY, wrong salt
      deriveCrsKey("not-the-key", salts::kClaudeOAuth),    // wrong ENCRYPTION_KEY
      deriveBedrockKey(kEncryptionKey),                    // Bedrock's scheme
  };
  for (const auto& wrong : wrongKeys) {
    auto got = decryptCrsSecret(stored, wrong);
    ASSERT_FALSE(got.isOk());
    EXPECT_EQ(got.status().code(), rg::Code::kInvalidArgument);
    const std::string msg = got.status().message();
    EXPECT_NE(msg.find("wrong key"), std::string::npos) << msg;
    EXPECT_EQ(msg.find(plain), std::string::npos);
    EXPECT_EQ(msg.find(toHex(wrong)), std::string::npos);
    EXPECT_EQ(msg.find(kEncryptionKey), std::string::npos);
  }
}

TEST(LegacyCrsTest, MalformedStoredValuesAreErrors) {
  const std::string key = deriveCrsKey(kEncryptionKey, salts::kClaudeOAuth);
  const std::string iv = kIvHex;
  const std::string block(32, 'a'); // one AES block of hex
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"plaintext-token-without-colon", "no ':'"},
      {iv + block, "no ':'"},
      {iv + ":" + block + ":" + block, "more than one"},
      {"0011:" + block, "iv must be 32"},                      // short iv
      {iv + "00:" + block, "iv must be 32"},                   // long iv
      {std::string(31, 'a') + "z:" + block, "iv: invalid hex"}, // bad hex in iv
      {iv + ":", "empty ciphertext"},
      {iv + ":" + block + "a", "ciphertext: hex string has an odd length"},
      {iv + ":" + block.substr(0, 30) + "zz", "ciphertext: invalid hex"},
      {iv + ":" + block.substr(0, 30), "whole number of AES blocks"},
  };
  for (const auto& [stored, expect] : cases) {
    auto got = decryptCrsSecret(stored, key);
    ASSERT_FALSE(got.isOk()) << "accepted: " << stored;
    EXPECT_EQ(got.status().code(), rg::Code::kInvalidArgument);
    EXPECT_NE(got.status().message().find(expect), std::string::npos)
        << stored << " -> " << got.status().message();
    EXPECT_EQ(got.status().message().find(toHex(key)), std::string::npos);
  }
  // A key of the wrong size is refused up front rather than read past its end.
  auto shortKey = decryptCrsSecret(iv + ":" + block, "short");
  ASSERT_FALSE(shortKey.isOk());
  EXPECT_NE(shortKey.status().message().find("key must be 32 bytes"), std::string::npos);
}

TEST(LegacyCrsTest, BedrockObjectVariantMatchesOpenssl) {
  RG_REQUIRE_OPENSSL();
  TempDir dir;
  auto digest = run("printf %s " + shellQuote(kEncryptionKey) + " | openssl dgst -sha256 -r");
  ASSERT_TRUE(digest.has_value());
  const std::string key = deriveBedrockKey(kEncryptionKey);
  EXPECT_EQ(toHex(key), normaliseHex(*digest));

  // {encrypted, iv} fields of the JSON record, given separately.
  const std::string creds =
      R"({"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"wJalrXUtnFEMI/K7MDENG","sessionToken":null})";
  const std::string stored = opensslEncrypt(dir, creds, key, kIvHex);
  const std::string cipherHex = stored.substr(stored.find(':') + 1);
  auto got = decryptCrsSecret(kIvHex, cipherHex, key);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(*got, creds);
  // The scrypt key of the other services does not open it.
  EXPECT_FALSE(decryptCrsSecret(kIvHex, cipherHex, deriveCrsKey(kEncryptionKey, "salt")).isOk());
}

TEST(LegacyCrsTest, KeyHashMatchesSha256sumOfKeyPlusEncryptionKey) {
  if (!haveTool("sha256sum")) {
    GTEST_SKIP() << "sha256sum not installed";
  }
  const std::string plainKey = "cr_" + toHex(randomBytes(32));
  auto expected =
      run("printf %s " + shellQuote(plainKey + kEncryptionKey) + " | sha256sum");
  ASSERT_TRUE(expected.has_value());
  const std::string ours = crsKeyHash(plainKey, kEncryptionKey);
  EXPECT_EQ(ours, normaliseHex(*expected));
  EXPECT_EQ(ours.size(), 64u);
  // The pepper matters: the plain sha256 of the key alone is a different value.
  EXPECT_NE(ours, toHex(sha256(plainKey)));
  EXPECT_NE(ours, crsKeyHash(plainKey, "another-encryption-key"));
}

// Node itself, the way CRS does it (scryptSync + createCipheriv with a random iv), if installed.
TEST(LegacyCrsTest, DecryptsWhatNodeEncrypts) {
  if (!haveTool("node")) {
    GTEST_SKIP() << "node not installed";
  }
  TempDir dir;
  const std::string plain = "node-made-secret \xE2\x9C\x93";
  writeFile(dir.file("enc.js"),
            "const c = require('crypto');\n"
            "const [pass, salt, text] = process.argv.slice(2);\n"
            "const key = c.scryptSync(pass, salt, 32);\n"
            "const iv = c.randomBytes(16);\n"
            "const ci = c.createCipheriv('aes-256-cbc', key, iv);\n"
            "let enc = ci.update(text, 'utf8', 'hex'); enc += ci.final('hex');\n"
            "const hash = c.createHash('sha256').update(text + pass).digest('hex');\n"
            "process.stdout.write(iv.toString('hex') + ':' + enc + '\\n' + hash);\n");
  auto out = run("node " + shellQuote(dir.file("enc.js")) + " " + shellQuote(kEncryptionKey) +
                 " " + shellQuote(salts::kGeminiOAuth) + " " + shellQuote(plain));
  ASSERT_TRUE(out.has_value()) << "node failed";
  const size_t nl = out->find('\n');
  ASSERT_NE(nl, std::string::npos);
  const std::string stored = out->substr(0, nl);
  const std::string nodeHash = out->substr(nl + 1);

  auto got = decryptCrsSecret(stored, deriveCrsKey(kEncryptionKey, salts::kGeminiOAuth));
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(*got, plain);
  EXPECT_EQ(crsKeyHash(plain, kEncryptionKey), nodeHash);
}

TEST(LegacyCrsTest, KeyCacheDerivesOncePerSaltAndStaysBounded) {
  CrsKeyCache cache(kEncryptionKey, 2);
  const std::string expectA = deriveCrsKey(kEncryptionKey, "a");
  const std::string expectB = deriveCrsKey(kEncryptionKey, "b");

  // Concurrent first use of the same salts: everyone gets the right key.
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = cache.keyFor(i % 2 == 0 ? "a" : "b"); });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i], i % 2 == 0 ? expectA : expectB) << i;
  }
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.keyFor("a"), expectA);
  EXPECT_EQ(cache.size(), 2u);
  // A third salt does not grow it beyond the bound, and still answers correctly.
  EXPECT_EQ(cache.keyFor("c"), deriveCrsKey(kEncryptionKey, "c"));
  EXPECT_LE(cache.size(), 2u);
  EXPECT_EQ(cache.keyFor("a"), expectA);
  EXPECT_LE(cache.size(), 2u);
}

} // namespace
} // namespace rgtest
