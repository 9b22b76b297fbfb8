#pragma once
// `accounts test`: sends one tiny request through one account (by the provider plugin that serves
// its type, exactly as the request path would: transform_request, the account's proxy, OAuth
// token) and reports the upstream's answer. Used by the CLI and by POST /admin/accounts/{id}/test.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "accounts/account_service.h"
#include "common/status.h"
#include "plugin/plugin_runtime.h"
#include "upstream/http_client.h"

namespace rg {

class TokenManager;

struct AccountTestResult {
  bool ok = false;        // upstream answered 2xx
  int status = 0;         // upstream HTTP status; 0 when no response (see detail)
  int64_t latencyMs = 0;  // from send to the end of the response
  std::string model;      // the model asked for (after the account's mapping)
  std::string detail;     // the upstream's error message, or a short excerpt of the answer
};

struct AccountTesterDeps {
  AccountService* accounts = nullptr;
  UpstreamClient* upstream = nullptr;
  std::vector<ProviderPlugin*> providers;  // loaded provider plugins
  TokenManager* tokens = nullptr;          // for claude-official; nullptr = use the stored token
  int timeoutMs = 60000;
};

// `model` empty = a small default model of the provider. kFailedPrecondition when no loaded
// plugin serves the account's type; kInvalidArgument for a model the account does not map.
StatusOr<AccountTestResult> testAccount(const AccountTesterDeps& deps, const AccountRecord& rec,
                                        const std::string& model);

}  // namespace rg
