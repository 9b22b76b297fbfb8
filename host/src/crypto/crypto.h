#pragma once
// Cryptographic helpers on OpenSSL. No secret is ever logged by these functions.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rg::crypto {

std::string sha256(std::string_view data);                            // 32 raw bytes
std::string hmacSha256(std::string_view key, std::string_view data);  // 32 raw bytes
std::string toHex(std::string_view bytes);                            // lowercase
StatusOr<std::string> fromHex(std::string_view hex);
int hexDigitValue(char c);  // 0..15, or -1 for a character that is no hex digit
// "%XX" escapes decoded ('+' too, as a space, when plusIsSpace: query strings); a malformed
// escape is kept as is.
std::string percentDecode(std::string_view s, bool plusIsSpace = false);
std::string base64Encode(std::string_view bytes);           // standard, padded
std::string base64UrlEncode(std::string_view bytes);        // no padding
StatusOr<std::string> base64Decode(std::string_view text);  // standard or url-safe
std::string randomBytes(size_t n);                          // CSPRNG (RAND_bytes)
std::string uuidV4();
bool constantTimeEquals(std::string_view a, std::string_view b);
// HKDF-SHA256 (RFC 5869) with empty salt.
std::string deriveKey(std::string_view masterKey, std::string_view purpose, size_t len = 32);

// Authenticated encryption of secrets at rest: AES-256-GCM with a random 96-bit nonce.
// Sealed form: "v1:" + keyId + ":" + base64(nonce || ciphertext || tag). keyId names the key so a
// master-key rotation can re-encrypt.
class SecretBox {
 public:
  SecretBox(std::string key32, std::string keyId);
  std::string seal(std::string_view plaintext) const;
  StatusOr<std::string> open(std::string_view sealed) const;
  const std::string& keyId() const { return keyId_; }
  // Also opens values sealed under `keyId` with `key32` (a previous master key during and after a
  // rotation). seal() always uses the primary key. Call before the box is shared between threads.
  void addDecryptionKey(std::string key32, std::string keyId);

 private:
  StatusOr<std::string> openWith(const std::string& key, const std::string& keyId,
                                 std::string_view data) const;
  std::string key_;
  std::string keyId_;
  std::map<std::string, std::string> decryptionKeys_;  // key id -> key (previous keys)
};

// The key id a sealed value names ("v1:<keyId>:..."); kInvalidArgument when malformed.
StatusOr<std::string> sealedKeyId(std::string_view sealed);

}  // namespace rg::crypto
