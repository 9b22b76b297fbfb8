#include "crypto/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

namespace rg::crypto {

namespace {

constexpr size_t kKeyLen = 32;
constexpr size_t kNonceLen = 12;
constexpr size_t kTagLen = 16;
constexpr const char* kSealVersion = "v1";
constexpr const char* kHexDigits = "0123456789abcdef";
constexpr const char* kB64Std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr const char* kB64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const unsigned char* bytesOf(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytesOf(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// OpenSSL failures here mean a broken library or out-of-memory, not bad input: nothing sensible
// can continue (a "random" key made of zeros would be far worse than stopping).
[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "relaygate: fatal OpenSSL failure in %s\n", what);
  std::abort();
}

std::string base64EncodeWith(std::string_view bytes, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const unsigned char* p = bytesOf(bytes);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t{p[i]} << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (pad) {
      out.append("==");
    }
  } else if (rest == 2) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) {
      out.push_back('=');
    }
  }
  return out;
}

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+' || c == '-') {
    return 62;
  }
  if (c == '/' || c == '_') {
    return 63;
  }
  return -1;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;

// The key id and format version are authenticated (GCM AAD) so a sealed value cannot be
// relabelled as belonging to another key or version.
std::string associatedData(const std::string& keyId) {
  return std::string(kSealVersion) + ":" + keyId;
}

}  // namespace

std::string sha256(std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), bytesOf(out), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size()) {
    fatal("sha256");
  }
  return out;
}

std::string hmacSha256(std::string_view key, std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  // HMAC() rejects a null key pointer even for an empty key, hence the dummy byte.
  static const unsigned char kEmpty = 0;
  const void* keyPtr = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (HMAC(EVP_sha256(), keyPtr, static_cast<int>(key.size()), bytesOf(data), data.size(),
           bytesOf(out), &len) == nullptr ||
      len != out.size()) {
    fatal("hmacSha256");
  }
  return out;
}

std::string toHex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHexDigits[c >> 4]);
    out.push_back(kHexDigits[c & 15]);
  }
  return out;
}

int hexDigitValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::string percentDecode(std::string_view s, bool plusIsSpace) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (plusIsSpace && s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hexDigitValue(s[i + 1]) >= 0 &&
               hexDigitValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexDigitValue(s[i + 1]) * 16 + hexDigitValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

StatusOr<std::string> fromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return invalidArgument("hex string has an odd length");
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hexDigitValue(hex[i]);
    int lo = hexDigitValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return invalidArgument("invalid hex character at offset " +
                             std::to_string(hi < 0 ? i : i + 1));
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::string base64Encode(std::string_view bytes) {
  return base64EncodeWith(bytes, kB64Std, true);
}

std::string base64UrlEncode(std::string_view bytes) {
  return base64EncodeWith(bytes, kB64Url, false);
}

StatusOr<std::string> base64Decode(std::string_view text) {
  // Padding is optional, but if present it must complete the last quantum exactly.
  size_t end = text.size();
  size_t pad = 0;
  while (end > 0 && text[end - 1] == '=' && pad < 2) {
    --end;
    ++pad;
  }
  if (pad > 0 && text.size() % 4 != 0) {
    return invalidArgument("invalid base64 padding");
  }
  if (end % 4 == 1) {
    return invalidArgument("invalid base64 length");
  }
  std::string out;
  out.reserve(end / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < end; ++i) {
    int v = base64Value(text[i]);
    if (v < 0) {
      return invalidArgument("invalid base64 character at offset " + std::to_string(i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero, otherwise two encodings would decode to the same bytes.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return invalidArgument("invalid base64: non-zero trailing bits");
  }
  return out;
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(bytesOf(out), static_cast<int>(n)) != 1) {
    fatal("RAND_bytes");
  }
  return out;
}

std::string uuidV4() {
  std::string b = randomBytes(16);
  b[6] = static_cast<char>((static_cast<unsigned char>(b[6]) & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<char>((static_cast<unsigned char>(b[8]) & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex = toHex(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  // The length is not secret (hashes and tokens have fixed lengths); the content is.
  if (a.size() != b.size()) {
    return false;
  }
  if (a.empty()) {
    return true;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string deriveKey(std::string_view masterKey, std::string_view purpose, size_t len) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) <= 0) {
    fatal("deriveKey init");
  }
  // An empty salt is, per RFC 5869, HashLen zero bytes; OpenSSL uses that when none is set.
  static const unsigned char kEmpty = 0;
  const unsigned char* ikm = masterKey.empty() ? &kEmpty : bytesOf(masterKey);
  if (EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), ikm, static_cast<int>(masterKey.size())) <= 0) {
    fatal("deriveKey key");
  }
  if (!purpose.empty() && EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), bytesOf(purpose),
                                                      static_cast<int>(purpose.size())) <= 0) {
    fatal("deriveKey info");
  }
  std::string out(len, '\0');
  size_t outLen = len;
  if (EVP_PKEY_derive(ctx.get(), bytesOf(out), &outLen) <= 0 || outLen != len) {
    fatal("deriveKey derive");
  }
  return out;
}

SecretBox::SecretBox(std::string key32, std::string keyId)
    : key_(std::move(key32)), keyId_(std::move(keyId)) {
  // A wrong-sized key is a wiring bug, never input: refuse to run rather than seal with it.
  if (key_.size() != kKeyLen) {
    fatal("SecretBox: key must be 32 bytes");
  }
  if (keyId_.empty() || keyId_.find(':') != std::string::npos) {
    fatal("SecretBox: key id must be non-empty and contain no ':'");
  }
}

std::string SecretBox::seal(std::string_view plaintext) const {
  std::string nonce = randomBytes(kNonceLen);
  std::string aad = associatedData(keyId_);
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::string blob(kNonceLen + plaintext.size() + kTagLen, '\0');
  blob.replace(0, kNonceLen, nonce);
  unsigned char* ct = bytesOf(blob) + kNonceLen;
  int len = 0;
  int total = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceLen, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytesOf(key_), bytesOf(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytesOf(aad), static_cast<int>(aad.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, bytesOf(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    fatal("SecretBox::seal");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), ct + total, &len) != 1) {
    fatal("SecretBox::seal final");
  }
  total += len;
  if (static_cast<size_t>(total) != plaintext.size() ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagLen, ct + total) != 1) {
    fatal("SecretBox::seal tag");
  }
  return std::string(kSealVersion) + ":" + keyId_ + ":" + base64Encode(blob);
}

void SecretBox::addDecryptionKey(std::string key32, std::string keyId) {
  if (key32.size() != kKeyLen) {
    fatal("SecretBox::addDecryptionKey: key must be 32 bytes");
  }
  if (keyId.empty() || keyId.find(':') != std::string::npos) {
    fatal("SecretBox::addDecryptionKey: key id must be non-empty and contain no ':'");
  }
  if (keyId == keyId_) {
    return;  // the primary key already opens it
  }
  decryptionKeys_[std::move(keyId)] = std::move(key32);
}

StatusOr<std::string> sealedKeyId(std::string_view sealed) {
  size_t first = sealed.find(':');
  size_t second = first == std::string_view::npos ? first : sealed.find(':', first + 1);
  if (second == std::string_view::npos) {
    return invalidArgument("sealed secret: bad format (expected v1:<keyId>:<data>)");
  }
  if (sealed.substr(0, first) != kSealVersion) {
    return invalidArgument("sealed secret: unsupported version");
  }
  return std::string(sealed.substr(first + 1, second - first - 1));
}

StatusOr<std::string> SecretBox::open(std::string_view sealed) const {
  // Error messages never include the sealed text or any part of a plaintext.
  auto keyId = sealedKeyId(sealed);
  if (!keyId) {
    return keyId.status();
  }
  std::string_view data = sealed.substr(std::string_view(kSealVersion).size() + 2 + keyId->size());
  if (*keyId == keyId_) {
    return openWith(key_, keyId_, data);
  }
  auto it = decryptionKeys_.find(*keyId);
  if (it == decryptionKeys_.end()) {
    return failedPrecondition("sealed secret: sealed under key id \"" + *keyId +
                              "\", this key is \"" + keyId_ + "\"");
  }
  return openWith(it->second, it->first, data);
}

StatusOr<std::string> SecretBox::openWith(const std::string& key, const std::string& keyId,
                                          std::string_view data) const {
  auto blob = base64Decode(data);
  if (!blob) {
    return invalidArgument("sealed secret: bad encoding");
  }
  if (blob->size() < kNonceLen + kTagLen) {
    return invalidArgument("sealed secret: too short");
  }
  const size_t ctLen = blob->size() - kNonceLen - kTagLen;
  unsigned char* nonce = bytesOf(*blob);
  unsigned char* ct = nonce + kNonceLen;
  unsigned char* tag = ct + ctLen;
  std::string aad = associatedData(keyId);
  std::string plain(ctLen, '\0');
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceLen, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytesOf(std::string_view(key)), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytesOf(aad), static_cast<int>(aad.size())) !=
          1 ||
      EVP_DecryptUpdate(ctx.get(), bytesOf(plain), &len, ct, static_cast<int>(ctLen)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagLen, tag) != 1) {
    return internalError("sealed secret: decryption setup failed");
  }
  int total = len;
  std::array<unsigned char, 16> finalBuf{};
  if (EVP_DecryptFinal_ex(ctx.get(), finalBuf.data(), &len) != 1) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return invalidArgument("sealed secret: authentication failed (tampered or wrong key)");
  }
  total += len;
  plain.resize(static_cast<size_t>(total));
  return plain;
}

}  // namespace rg::crypto
