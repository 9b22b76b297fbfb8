#pragma once
// Master-key rotation (`relaygate rotate-master-key`) and what the services need to survive one.
//
// Two things hang off the master key: the SecretBox that seals account secrets (re-sealable) and
// the HMAC secret of gateway key hashes (NOT re-computable: plain keys are never stored). A
// rotation therefore keeps the hash secret and stores it in settings under kKeyHashSecretSetting,
// sealed by the new box; resolveKeyHashSecret() prefers that stored secret over the derived one.
//
// Crash safety (data-dir key): the new key is written to <dataDir>/master.key.next first; every
// secret is re-sealed under it (a box that opens both keys makes re-runs idempotent); only then
// master.key -> master.key.old and master.key.next -> master.key. An interrupted rotation is
// completed by running the command again; until then addRotationDecryptionKeys() lets a starting
// service open values sealed under either key.

#include <memory>
#include <string>

#include "config/config.h"
#include "crypto/crypto.h"
#include "storage/store.h"

namespace rg {

inline constexpr const char* kKeyHashSecretSetting = "security.key_hash_secret";

// The secret box of a master key exactly as the services build it (key id = first 8 hex of
// sha256 of the derived box key).
std::unique_ptr<crypto::SecretBox> secretBoxForMaster(const std::string& master);
// The key-hash secret derived from a master key (before any rotation).
std::string derivedKeyHashSecret(const std::string& master);

// The HMAC secret for gateway key hashes: the one a rotation stored (opened with `box`), else
// derived from `master`. kFailedPrecondition (naming the key ids, never a secret) when a stored
// secret exists that `box` cannot open: deriving instead would silently invalidate every key.
StatusOr<std::string> resolveKeyHashSecret(Store& store, const crypto::SecretBox& box,
                                           const std::string& master);

// Adds to `box`, as a decryption key, the key of a rotation in progress or interrupted
// (<dataDir>/master.key.next), so that values already re-sealed under it still open. No-op when
// there is none. (master.key.old is deliberately not used: a rotated-out key opens nothing.)
void addRotationDecryptionKeys(const Config& cfg, crypto::SecretBox& box);

// If a rotation was interrupted between its two renames (master.key gone, master.key.next and
// master.key.old present), finishes it. Call before loadOrCreateMasterKey (which would otherwise
// generate a fresh key). No-op otherwise.
Status finishInterruptedKeyRename(const std::string& dataDir);

struct ResealCounts {
  int accounts = 0;  // accounts with at least one secret re-sealed
  int secrets = 0;   // sealed values re-sealed
};

// Re-seals every sealed value of one account (secretSealed and each secretsSealed entry) that is
// not yet under box.keyId(); `box` must also open the old key (addDecryptionKey). Idempotent.
Status resealAccount(Store& store, const crypto::SecretBox& box, const std::string& accountId,
                     ResealCounts* counts);
// Stores `hashSecret` sealed by `box` under kKeyHashSecretSetting.
Status storeKeyHashSecret(Store& store, const crypto::SecretBox& box,
                          const std::string& hashSecret);
// The data part of a rotation: keeps the key-hash secret (resolved with `box` from the stored one
// or derived from `oldMaster`), stores it sealed by `box`, re-seals every account. `box` is the
// new key's box with the old key added for decryption.
Status resealAll(Store& store, const crypto::SecretBox& box, const std::string& oldMaster,
                 ResealCounts* counts);

struct RotationOptions {
  std::string newKeyFile;  // "" = generate a random key
};

struct RotationResult {
  bool fromConfig = false;  // the master key is security.master_key: print newMaster once
  std::string newMaster;    // only for fromConfig; empty otherwise
  std::string oldKeyId;
  std::string newKeyId;
  ResealCounts counts;
  bool resumed = false;  // an interrupted rotation was completed
  std::string backend;   // "embedded" | "redis"
};

// The whole rotation, opening the store itself. Refuses (kFailedPrecondition) while a `serve`
// holds an embedded data dir, and holds that claim itself until done.
StatusOr<RotationResult> rotateMasterKey(const Config& cfg, const RotationOptions& opts);

}  // namespace rg
