#include "accounts/secret_cache.h"

#include <algorithm>

#include "crypto/crypto.h"

namespace rg {

SecretCache::SecretCache(const Clock& clock, size_t capacity, int64_t ttlMs)
    : clock_(clock), capacity_(std::max<size_t>(1, capacity)), ttlMs_(ttlMs) {}

SecretCache::~SecretCache() {
  clear();
}

void SecretCache::evict(std::list<Entry>::iterator it) {
  std::fill(it->plaintext.begin(), it->plaintext.end(), '\0');
  index_.erase(it->id);
  lru_.erase(it);
}

std::optional<std::string> SecretCache::get(const std::string& sealed) {
  std::string id = crypto::sha256(sealed);
  std::lock_guard<std::mutex> lock(mu_);
  auto found = index_.find(id);
  if (found == index_.end()) {
    return std::nullopt;
  }
  auto it = found->second;
  if (clock_.monotonicMs() >= it->expiresMs) {
    evict(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it);
  return it->plaintext;
}

void SecretCache::put(const std::string& sealed, const std::string& plaintext) {
  std::string id = crypto::sha256(sealed);
  std::lock_guard<std::mutex> lock(mu_);
  auto found = index_.find(id);
  if (found != index_.end()) {
    evict(found->second);
  }
  while (lru_.size() >= capacity_) {
    evict(std::prev(lru_.end()));
  }
  lru_.push_front(Entry{id, plaintext, clock_.monotonicMs() + ttlMs_});
  index_[id] = lru_.begin();
}

void SecretCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!lru_.empty()) {
    evict(lru_.begin());
  }
}

size_t SecretCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

}  // namespace rg
