#include "auth/key_input.h"

namespace rg {

StatusOr<NewKeyOptions> newKeyOptions(const KeyInput& in, int64_t nowMs, InputSpelling spelling) {
  const bool cli = spelling == InputSpelling::kCliFlags;
  if (in.allowModels && in.denyModels) {
    return invalidArgument(cli ? "use either --deny-models or --allow-models, not both"
                               : "give either allow_models or deny_models, not both");
  }
  if (!in.name) {
    return invalidArgument(cli ? "keys create needs --name NAME" : "name: required");
  }
  if (in.expiresAtMs && *in.expiresAtMs != 0 && *in.expiresAtMs <= nowMs) {
    return invalidArgument(std::string(cli ? "--expires-at" : "expires_at") + " is in the past");
  }
  NewKeyOptions o;
  o.name = *in.name;
  o.permissions = in.permissions.value_or(std::vector<std::string>());
  o.expiresAtMs = in.expiresAtMs.value_or(0);
  o.concurrencyLimit = in.concurrencyLimit.value_or(0);
  o.rateWindowMinutes = in.rateWindowMinutes.value_or(0);
  o.rateRequests = in.rateRequests.value_or(0);
  o.rateTokens = in.rateTokens.value_or(0);
  if (in.allowModels) {
    o.modelMode = ModelFilterMode::kAllow;
    o.models = *in.allowModels;
  } else if (in.denyModels) {
    o.modelMode = ModelFilterMode::kDeny;
    o.models = *in.denyModels;
  }
  o.bindings = in.bindings.value_or(std::map<std::string, std::string>());
  return o;
}

}  // namespace rg
