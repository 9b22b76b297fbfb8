#include "crypto/legacy_crs.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "crypto/crypto.h"

namespace rg::crypto::legacy {

namespace {

// scrypt needs 128 * N * r * p bytes (16 MiB here); OpenSSL's default cap is 32 MiB, which is just
// enough, but state it so a change of parameters cannot fail with an opaque "memory limit" error.
constexpr uint64_t kScryptMaxMem = 64ull * 1024 * 1024;
constexpr size_t kBlockLen = 16;

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "relaygate: fatal OpenSSL failure in %s\n", what);
  std::abort();
}

const unsigned char* bytesOf(std::string_view s) {
  // An empty string_view may carry a null pointer; OpenSSL wants a valid one even for length 0.
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). CRS encrypted JavaScript
// strings, which Node always encodes as valid UTF-8, so anything else means a wrong key.
bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t minCp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
      minCp = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
      minCp = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
      minCp = 0x10000;
    } else {
      return false;
    }
    if (n - i < len) {
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < minCp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

} // namespace

std::string deriveCrsKey(std::string_view encryptionKey, std::string_view salt) {
  std::string key(kCrsKeyLen, '\0');
  if (EVP_PBE_scrypt(reinterpret_cast<const char*>(bytesOf(encryptionKey)), encryptionKey.size(),
                     bytesOf(salt), salt.size(), kScryptN, kScryptR, kScryptP, kScryptMaxMem,
                     reinterpret_cast<unsigned char*>(key.data()), key.size()) != 1) {
    fatal("EVP_PBE_scrypt");
  }
  return key;
}

std::string deriveBedrockKey(std::string_view encryptionKey) {
  return sha256(encryptionKey);
}

StatusOr<std::string> decryptCrsSecret(std::string_view stored, std::string_view key32) {
  if (stored.empty()) {
    return invalidArgument("legacy secret: empty value");
  }
  const size_t colon = stored.find(':');
  if (colon == std::string_view::npos) {
    return invalidArgument("legacy secret: no ':' separating iv and ciphertext");
  }
  if (stored.find(':', colon + 1) != std::string_view::npos) {
    return invalidArgument("legacy secret: more than one ':'");
  }
  return decryptCrsSecret(stored.substr(0, colon), stored.substr(colon + 1), key32);
}

StatusOr<std::string> decryptCrsSecret(std::string_view ivHex, std::string_view cipherHex,
                                       std::string_view key32) {
  if (key32.size() != kCrsKeyLen) {
    return invalidArgument("legacy secret: key must be 32 bytes, got " +
                           std::to_string(key32.size()));
  }
  if (ivHex.size() != kCrsIvLen * 2) {
    return invalidArgument("legacy secret: iv must be 32 hex characters, got " +
                           std::to_string(ivHex.size()));
  }
  auto iv = fromHex(ivHex);
  if (!iv.isOk()) {
    return invalidArgument("legacy secret: iv: " + iv.status().message());
  }
  if (cipherHex.empty()) {
    return invalidArgument("legacy secret: empty ciphertext");
  }
  auto cipher = fromHex(cipherHex);
  if (!cipher.isOk()) {
    return invalidArgument("legacy secret: ciphertext: " + cipher.status().message());
  }
  if (cipher->size() % kBlockLen != 0) {
    return invalidArgument("legacy secret: ciphertext is not a whole number of AES blocks (" +
                           std::to_string(cipher->size()) + " bytes)");
  }

  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) {
    fatal("EVP_CIPHER_CTX_new");
  }
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, bytesOf(key32), bytesOf(*iv)) !=
      1) {
    fatal("EVP_DecryptInit_ex");
  }
  std::string plain(cipher->size() + kBlockLen, '\0');
  int outLen = 0;
  int finalLen = 0;
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  if (EVP_DecryptUpdate(ctx.get(), out, &outLen, bytesOf(*cipher),
                        static_cast<int>(cipher->size())) != 1) {
    fatal("EVP_DecryptUpdate");
  }
  const bool padOk = EVP_DecryptFinal_ex(ctx.get(), out + outLen, &finalLen) == 1;
  if (padOk) {
    plain.resize(static_cast<size_t>(outLen + finalLen));
  }
  if (!padOk || !isValidUtf8(plain)) {
    // Garbage from a wrong key is still secret-derived material: wipe it, say nothing about it.
    OPENSSL_cleanse(plain.data(), plain.size());
    return invalidArgument(padOk ? "legacy secret: decrypted value is not UTF-8 (wrong key or salt?)"
                                 : "legacy secret: bad padding (wrong key or salt?)");
  }
  return plain;
}

std::string crsKeyHash(std::string_view plainKey, std::string_view encryptionKey) {
  std::string input;
  input.reserve(plainKey.size() + encryptionKey.size());
  input.append(plainKey);
  input.append(encryptionKey);
  std::string hash = toHex(sha256(input));
  OPENSSL_cleanse(input.data(), input.size());
  return hash;
}

CrsKeyCache::CrsKeyCache(std::string encryptionKey, size_t maxEntries)
    : encryptionKey_(std::move(encryptionKey)), maxEntries_(maxEntries == 0 ? 1 : maxEntries) {}

std::string CrsKeyCache::keyFor(std::string_view salt) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = keys_.find(salt);
    if (it != keys_.end()) {
      return it->second;
    }
  }
  // Derive without the lock: scrypt takes tens of milliseconds and other salts need not wait.
  // Two threads may race to derive the same salt; both get the same bytes, one insert wins.
  std::string key = deriveCrsKey(encryptionKey_, salt);
  std::lock_guard<std::mutex> lock(mutex_);
  if (keys_.size() >= maxEntries_ && keys_.find(salt) == keys_.end()) {
    for (auto& entry : keys_) {
      OPENSSL_cleanse(entry.second.data(), entry.second.size());
    }
    keys_.clear();
  }
  keys_.emplace(std::string(salt), key);
  return key;
}

size_t CrsKeyCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return keys_.size();
}

} // namespace rg::crypto::legacy
