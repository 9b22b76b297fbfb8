#pragma once
// Helpers shared by the storage backends (not part of the Store contract).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "storage/store.h"

namespace rg::storage {

// The counters of TokenCounts by name, so that both backends encode them the same way.
struct TokenField {
  const char* name;
  int64_t TokenCounts::*member;
};
inline constexpr TokenField kTokenFields[] = {
    {"requests", &TokenCounts::requests},
    {"inputTokens", &TokenCounts::inputTokens},
    {"outputTokens", &TokenCounts::outputTokens},
    {"cacheCreate5mTokens", &TokenCounts::cacheCreate5mTokens},
    {"cacheCreate1hTokens", &TokenCounts::cacheCreate1hTokens},
    {"cacheReadTokens", &TokenCounts::cacheReadTokens},
    {"costMicroUsd", &TokenCounts::costMicroUsd},
    {"billedMicroUsd", &TokenCounts::billedMicroUsd},
};

// How long usage request ids are remembered for idempotency (both backends). A retry of the same
// request id after this is booked again; failover retries and replayed settles come within
// seconds, so a day is generous, and it bounds the memory (embedded) and keys (Redis) it costs.
inline constexpr int64_t kUsageIdRetentionMs = 24LL * 3600 * 1000;
// Embedded only: a safety cap on the ids remembered (oldest forgotten first), reached only above
// ~23 bookings/s sustained for a day. Each id costs about 150 bytes of memory (hash node, the id's
// heap string, bucket and order entries) and ~70 bytes of snapshot: ~300 MB / ~140 MB at the cap.
inline constexpr size_t kUsageIdMaxCount = 2'000'000;

// list() order of the contract: createdAtMs, then id.
template <typename Rec>
void sortByCreated(std::vector<Rec>* recs) {
  std::sort(recs->begin(), recs->end(), [](const Rec& a, const Rec& b) {
    if (a.createdAtMs != b.createdAtMs) {
      return a.createdAtMs < b.createdAtMs;
    }
    return a.id < b.id;
  });
}

// topKeys() order of the contract: billed cost descending, then key id; at most `limit`.
inline void sortTopKeys(std::vector<UsageStore::KeyCost>* keys, size_t limit) {
  std::sort(keys->begin(), keys->end(),
            [](const UsageStore::KeyCost& a, const UsageStore::KeyCost& b) {
              if (a.billedMicroUsd != b.billedMicroUsd) {
                return a.billedMicroUsd > b.billedMicroUsd;
              }
              return a.keyId < b.keyId;
            });
  if (keys->size() > limit) {
    keys->resize(limit);
  }
}

}  // namespace rg::storage
