#pragma once
// Readers for the secret formats of the Node.js Claude Relay Service (CRS), groundwork for an
// importer that carries an existing CRS Redis over (reference-behaviour.md §2.1, §3.5, §3.6).
// Read-only by design: relaygate never writes these formats, it re-seals imported secrets with
// SecretBox. Nothing here logs, and no error message contains a key or a plaintext.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rg::crypto::legacy {

// Node's crypto.scryptSync defaults, which CRS relies on. (RustCRS used N=32768 and is therefore
// not compatible; do not "fix" N.)
constexpr uint64_t kScryptN = 16384;
constexpr uint64_t kScryptR = 8;
constexpr uint64_t kScryptP = 1;
constexpr size_t kCrsKeyLen = 32;
constexpr size_t kCrsIvLen = 16;

// Per-service scrypt salts (ASCII strings, used verbatim as the salt bytes), §3.6.
namespace salts {
constexpr const char* kClaudeOAuth = "salt";                 // claude:account:{id}
constexpr const char* kClaudeConsole = "claude-console-salt"; // claude_console_account:{id}
constexpr const char* kGeminiOAuth = "gemini-account-salt";  // gemini_account:{id}
constexpr const char* kGeminiApi = "gemini-api-salt";        // gemini_api_account:{id}
constexpr const char* kOpenAi = "openai-account-salt";       // openai:account:{id}
constexpr const char* kOpenAiResponses = "openai-responses-salt"; // openai_responses_account:{id}
constexpr const char* kCcr = "ccr-account-salt";             // ccr_account:{id}
constexpr const char* kDroid = "droid-account-salt";         // droid:account:{id}
// Azure's default; a deployment may override it with config.security.azureOpenaiSalt, so the
// importer must let the operator supply the salt.
constexpr const char* kAzureOpenAiDefault = "azure-openai-account-default-salt";
constexpr const char* kGenericHelper = "claude-relay-salt"; // CRS's generic encrypt helper
} // namespace salts
// Bedrock is the exception: no scrypt, key = SHA-256(ENCRYPTION_KEY); see deriveBedrockKey.

// scrypt(password = encryptionKey, salt, N=16384, r=8, p=1) -> 32 raw bytes (not hex).
// Takes ~50 ms and 16 MiB; derive once per salt (CrsKeyCache). Aborts only on an OpenSSL failure
// (out of memory / broken library), like the other helpers in crypto.h.
std::string deriveCrsKey(std::string_view encryptionKey, std::string_view salt);

// Bedrock's key: SHA-256 of the ENCRYPTION_KEY string, 32 raw bytes.
std::string deriveBedrockKey(std::string_view encryptionKey);

// Decrypts a CRS value stored as "<iv hex, 32 chars>:<ciphertext hex>" (AES-256-CBC, PKCS#7).
// key32 is the raw 32-byte key from deriveCrsKey. Errors (kInvalidArgument) for: empty input, no
// or several ':', iv not 16 bytes, bad hex, ciphertext empty or not a multiple of 16 bytes, and a
// wrong key. A wrong key is detected by bad padding or a plaintext that is not UTF-8 (CRS always
// encrypted JS strings, i.e. UTF-8); CBC has no MAC, so a wrong key can in principle still slip
// through (very unlikely for anything longer than one block). Claude's legacy values without ':'
// (old createDecipher / plaintext) are deliberately NOT guessed at here: they are an error, and
// the importer decides what to do with them.
StatusOr<std::string> decryptCrsSecret(std::string_view stored, std::string_view key32);

// The same cipher with iv and ciphertext given separately: Bedrock's JSON object
// {"encrypted": "<ciphertext hex>", "iv": "<iv hex>"} (key from deriveBedrockKey). The plaintext
// is the JSON text of the credentials object.
StatusOr<std::string> decryptCrsSecret(std::string_view ivHex, std::string_view cipherHex,
                                       std::string_view key32);

// The stored API key hash of CRS: lowercase hex sha256(plainKey + encryptionKey) (§2.1), so keys
// imported from CRS keep authenticating.
std::string crsKeyHash(std::string_view plainKey, std::string_view encryptionKey);

// Derived keys per salt for one ENCRYPTION_KEY: scrypt is deliberately slow, and an import
// decrypts many values under a handful of salts. Thread-safe; bounded (when full, the whole cache
// is dropped: the working set is ~10 salts, so this only guards against unbounded salt inputs).
class CrsKeyCache {
public:
  explicit CrsKeyCache(std::string encryptionKey, size_t maxEntries = 32);
  CrsKeyCache(const CrsKeyCache&) = delete;
  CrsKeyCache& operator=(const CrsKeyCache&) = delete;

  std::string keyFor(std::string_view salt);
  size_t size() const;

private:
  const std::string encryptionKey_;
  const size_t maxEntries_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> keys_;
};

} // namespace rg::crypto::legacy
