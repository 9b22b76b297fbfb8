#pragma once
// Opened (decrypted) account secrets, kept briefly so the request path does not run AES-GCM on
// every request: a bounded LRU keyed by the SHA-256 of the sealed form (so a changed secret is a
// new entry and the sealed text is not kept as a key), each entry living at most ttlMs. Evicted
// and expired plaintexts are wiped. Thread-safe.

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"

namespace rg {

class SecretCache {
 public:
  SecretCache(const Clock& clock, size_t capacity = 1024, int64_t ttlMs = 300000);
  ~SecretCache();
  SecretCache(const SecretCache&) = delete;
  SecretCache& operator=(const SecretCache&) = delete;

  std::optional<std::string> get(const std::string& sealed);
  void put(const std::string& sealed, const std::string& plaintext);
  void clear();
  size_t size() const;

 private:
  struct Entry {
    std::string id;  // sha256(sealed)
    std::string plaintext;
    int64_t expiresMs;
  };
  void evict(std::list<Entry>::iterator it);  // wipes and removes; caller holds mu_

  const Clock& clock_;
  size_t capacity_;
  int64_t ttlMs_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace rg
