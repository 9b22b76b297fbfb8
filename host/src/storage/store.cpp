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

}  // namespace rg
