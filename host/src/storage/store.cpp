#include "storage/store.h"

namespace rg {

void TokenCounts::add(const TokenCounts& o) {
  requests += o.requests;
  inputTokens += o.inputTokens;
  outputTokens += o.outputTokens;
  cacheCreate5mTokens += o.cacheCreate5mTokens;
  cacheCreate1hTokens += o.cacheCreate1hTokens;
  cacheReadTokens += o.cacheReadTokens;
  costMicroUsd += o.costMicroUsd;
  billedMicroUsd += o.billedMicroUsd;
}

bool TokenCounts::operator==(const TokenCounts& o) const {
  return requests == o.requests && inputTokens == o.inputTokens && outputTokens == o.outputTokens &&
         cacheCreate5mTokens == o.cacheCreate5mTokens &&
         cacheCreate1hTokens == o.cacheCreate1hTokens && cacheReadTokens == o.cacheReadTokens &&
         costMicroUsd == o.costMicroUsd && billedMicroUsd == o.billedMicroUsd;
}

// ---- UsageStore shorthands over lifetime() / series() ----

StatusOr<TokenCounts> UsageStore::keyTotal(const std::string& keyId) {
  return lifetime(UsageDim::kKey, keyId);
}

StatusOr<TokenCounts> UsageStore::keyDaily(const std::string& keyId, const std::string& day) {
  auto s = series(UsageDim::kKey, keyId, UsageBucket::kDay, {day});
  if (!s) {
    return s.status();
  }
  return s->empty() ? TokenCounts() : s->front().counts;
}

StatusOr<std::map<std::string, TokenCounts>> UsageStore::keyModelsDaily(const std::string& keyId,
                                                                        const std::string& day) {
  auto s = series(UsageDim::kKeyModel, keyId, UsageBucket::kDay, {day});
  if (!s) {
    return s.status();
  }
  std::map<std::string, TokenCounts> out;
  for (const UsagePoint& p : *s) {
    out[p.model].add(p.counts);
  }
  return out;
}

StatusOr<TokenCounts> UsageStore::accountTotal(const std::string& accountId) {
  return lifetime(UsageDim::kAccount, accountId);
}

}  // namespace rg
