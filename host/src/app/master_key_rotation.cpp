#include "app/master_key_rotation.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "accounts/account_service.h"
#include "app/app.h"
#include "common/clock.h"

namespace rg {

namespace {

constexpr const char* kSecretBoxPurpose = "relaygate secret box v1";
constexpr const char* kKeyHashPurpose = "relaygate key hash v1";
constexpr size_t kMinFileKeyLength = 32;  // as loadOrCreateMasterKey demands of master.key

std::string boxKeyOf(const std::string& master) {
  return crypto::deriveKey(master, kSecretBoxPurpose);
}

std::string keyIdOf(const std::string& boxKey) {
  return crypto::toHex(crypto::sha256(boxKey)).substr(0, 8);
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The first line of a key file; kNotFound when absent.
StatusOr<std::string> readKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return notFound("cannot read " + path);
  }
  std::string key;
  std::getline(in, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) {
    key.pop_back();
  }
  if (key.size() < kMinFileKeyLength || key.find_first_of(" \t") != std::string::npos) {
    return invalidArgument(path + ": expected a key of at least 32 characters without spaces");
  }
  return key;
}

Status syncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return unavailable("cannot open " + dir + ": " + std::strerror(errno));
  }
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::ok() : unavailable("cannot fsync " + dir);
}

// Writes `content` durably with mode 0600 (temp file, fsync, rename, fsync of the directory).
Status writePrivateFile(const std::string& dir, const std::string& path,
                        const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return unavailable("cannot write " + tmp + ": " + std::strerror(errno));
  }
  bool ok = ::fchmod(fd, 0600) == 0;
  ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) && ok;
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return unavailable("cannot write " + path);
  }
  return syncDir(dir);
}

// Every sealed value of an account opens with `box` (used as the check before the renames).
Status verifyAccounts(Store& store, const crypto::SecretBox& box) {
  auto all = store.accounts().list();
  if (!all) {
    return all.status();
  }
  for (const auto& rec : *all) {
    std::vector<const std::string*> sealed;
    if (!rec.secretSealed.empty()) {
      sealed.push_back(&rec.secretSealed);
    }
    for (const auto& kv : rec.secretsSealed) {
      sealed.push_back(&kv.second);
    }
    for (const std::string* s : sealed) {
      auto opened = box.open(*s);
      if (!opened) {
        return internalError("account " + rec.id + " (" + rec.name +
                             ") does not open with the new key: " + opened.status().message());
      }
    }
  }
  return Status::ok();
}

}  // namespace

std::unique_ptr<crypto::SecretBox> secretBoxForMaster(const std::string& master) {
  std::string key = boxKeyOf(master);
  std::string id = keyIdOf(key);
  return std::make_unique<crypto::SecretBox>(std::move(key), std::move(id));
}

std::string derivedKeyHashSecret(const std::string& master) {
  return crypto::deriveKey(master, kKeyHashPurpose);
}

StatusOr<std::string> resolveKeyHashSecret(Store& store, const crypto::SecretBox& box,
                                           const std::string& master) {
  auto stored = store.settings().get(kKeyHashSecretSetting);
  if (!stored) {
    return stored.status();
  }
  if (!stored->has_value()) {
    return derivedKeyHashSecret(master);
  }
  auto opened = box.open(**stored);
  if (!opened) {
    return failedPrecondition(
        std::string(kKeyHashSecretSetting) +
        " (kept by a master-key rotation) cannot be opened with this master key (key id " +
        box.keyId() + "): " + opened.status().message() +
        ". Use the master key that rotation produced, or finish it with "
        "`relaygate rotate-master-key`.");
  }
  return std::move(*opened);
}

void addRotationDecryptionKeys(const Config& cfg, crypto::SecretBox& box) {
  auto next = readKeyFile(cfg.storage.dataDir + "/master.key.next");
  if (!next) {
    return;
  }
  std::string key = boxKeyOf(*next);
  std::string id = keyIdOf(key);
  box.addDecryptionKey(std::move(key), std::move(id));
}

Status finishInterruptedKeyRename(const std::string& dataDir) {
  std::string cur = dataDir + "/master.key";
  std::string next = cur + ".next";
  std::string old = cur + ".old";
  if (fileExists(cur) || !fileExists(next) || !fileExists(old)) {
    return Status::ok();
  }
  // Only the last rename was missing: everything was re-sealed under .next already.
  if (::rename(next.c_str(), cur.c_str()) != 0) {
    return unavailable("cannot rename " + next + " to " + cur + ": " + std::strerror(errno));
  }
  return syncDir(dataDir);
}

Status resealAccount(Store& store, const crypto::SecretBox& box, const std::string& accountId,
                     ResealCounts* counts) {
  auto got = store.accounts().get(accountId);
  if (!got) {
    return got.status();
  }
  if (!got->has_value()) {
    return Status::ok();  // removed meanwhile: nothing to re-seal
  }
  AccountRecord rec = std::move(**got);
  int changed = 0;
  auto reseal = [&](std::string& sealed, const std::string& what) -> Status {
    if (sealed.empty()) {
      return Status::ok();
    }
    auto kid = crypto::sealedKeyId(sealed);
    if (kid && *kid == box.keyId()) {
      return Status::ok();
    }
    auto plain = box.open(sealed);
    if (!plain) {
      return Status(plain.status().code(), "account " + rec.id + " (" + rec.name + ") secret " +
                                               what + ": " + plain.status().message());
    }
    sealed = box.seal(*plain);
    std::fill(plain->begin(), plain->end(), '\0');
    ++changed;
    return Status::ok();
  };
  Status st = reseal(rec.secretSealed, AccountService::primarySecretName(rec));
  if (!st) {
    return st;
  }
  for (auto& [name, sealed] : rec.secretsSealed) {
    st = reseal(sealed, name);
    if (!st) {
      return st;
    }
  }
  if (changed == 0) {
    return Status::ok();
  }
  st = store.accounts().update(rec);
  if (!st) {
    return st;
  }
  if (counts != nullptr) {
    counts->accounts += 1;
    counts->secrets += changed;
  }
  return Status::ok();
}

Status storeKeyHashSecret(Store& store, const crypto::SecretBox& box,
                          const std::string& hashSecret) {
  return store.settings().set(kKeyHashSecretSetting, box.seal(hashSecret), 0);
}

Status resealAll(Store& store, const crypto::SecretBox& box, const std::string& oldMaster,
                 ResealCounts* counts) {
  // The hash secret first: from here on the stored one is authoritative for every instance.
  auto hashSecret = resolveKeyHashSecret(store, box, oldMaster);
  if (!hashSecret) {
    return hashSecret.status();
  }
  Status st = storeKeyHashSecret(store, box, *hashSecret);
  if (!st) {
    return st;
  }
  auto all = store.accounts().list();
  if (!all) {
    return all.status();
  }
  for (const auto& rec : *all) {
    st = resealAccount(store, box, rec.id, counts);
    if (!st) {
      return st;
    }
  }
  return Status::ok();
}

StatusOr<RotationResult> rotateMasterKey(const Config& cfg, const RotationOptions& opts) {
  RotationResult res;
  res.fromConfig = !cfg.security.masterKey.empty();
  const std::string& dir = cfg.storage.dataDir;
  const std::string keyPath = dir + "/master.key";
  const std::string nextPath = keyPath + ".next";
  if (!res.fromConfig) {
    Status fin = finishInterruptedKeyRename(dir);
    if (!fin) {
      return fin;
    }
  }
  bool generated = false;
  auto oldMaster = loadOrCreateMasterKey(cfg, &generated);
  if (!oldMaster) {
    return oldMaster.status();
  }

  std::string newMaster;
  auto pending = readKeyFile(nextPath);
  if (pending) {
    newMaster = *pending;
    res.resumed = true;
  } else if (pending.status().code() != Code::kNotFound) {
    return pending.status();
  }
  if (!opts.newKeyFile.empty()) {
    auto given = readKeyFile(opts.newKeyFile);
    if (!given) {
      return Status(given.status().code(), "--new-key-file: " + given.status().message());
    }
    if (res.resumed && *given != newMaster) {
      return failedPrecondition("an interrupted rotation to another key is pending in " + nextPath +
                                ": run rotate-master-key without --new-key-file "
                                "to complete it first");
    }
    newMaster = *given;
  }
  if (newMaster.empty()) {
    newMaster = crypto::toHex(crypto::randomBytes(32));
  }
  if (newMaster == *oldMaster) {
    return invalidArgument("the new master key is the current one");
  }

  auto store = openStoreFromConfig(cfg, SystemClock::instance(), /*durableWrites=*/true,
                                   /*redisPoolSize=*/2);
  if (!store) {
    return store.status();
  }
  res.backend = (*store)->backendName();
  // A running embedded server keeps sealing with the old key: refuse instead of racing it. The
  // claim also keeps a server from starting until the rotation is done.
  Status claim = (*store)->claimExclusiveServe();
  if (!claim) {
    return failedPrecondition("cannot rotate the master key while a relaygate server uses " + dir +
                              " (" + claim.message() + "): stop it first");
  }
  if (!res.resumed) {
    // The new key is durable before anything is sealed with it.
    Status w = writePrivateFile(dir, nextPath, newMaster + "\n");
    if (!w) {
      return w;
    }
  }
  auto oldBox = secretBoxForMaster(*oldMaster);
  auto newBox = secretBoxForMaster(newMaster);
  res.oldKeyId = oldBox->keyId();
  res.newKeyId = newBox->keyId();
  auto onlyNew = secretBoxForMaster(newMaster);
  newBox->addDecryptionKey(boxKeyOf(*oldMaster), oldBox->keyId());

  Status st = resealAll(**store, *newBox, *oldMaster, &res.counts);
  if (!st) {
    return Status(st.code(), st.message() + " (nothing renamed; fix and rerun to complete)");
  }
  st = verifyAccounts(**store, *onlyNew);
  if (!st) {
    return st;
  }
  auto hashCheck = resolveKeyHashSecret(**store, *onlyNew, newMaster);
  if (!hashCheck) {
    return hashCheck.status();
  }

  if (res.fromConfig) {
    // The operator puts the new key into the config; the data dir keeps no copy.
    ::unlink(nextPath.c_str());
    (void)syncDir(dir);
    res.newMaster = newMaster;
    return res;
  }
  std::string oldPath = keyPath + ".old";
  if (::rename(keyPath.c_str(), oldPath.c_str()) != 0) {
    return unavailable("cannot rename " + keyPath + " to " + oldPath + ": " + std::strerror(errno) +
                       " (rerun to complete)");
  }
  ::chmod(oldPath.c_str(), 0600);
  if (::rename(nextPath.c_str(), keyPath.c_str()) != 0) {
    return unavailable("cannot rename " + nextPath + " to " + keyPath + ": " +
                       std::strerror(errno) + " (rerun to complete)");
  }
  st = syncDir(dir);
  if (!st) {
    return st;
  }
  return res;
}

}  // namespace rg
