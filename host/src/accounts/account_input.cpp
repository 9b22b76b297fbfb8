#include "accounts/account_input.h"

namespace rg {

const std::vector<std::string>& accountFieldFlags() {
  static const std::vector<std::string> flags = {
      "base-url",          "endpoint",     "api-key",           "access-token",
      "refresh-token",     "region",       "aws-access-key-id", "aws-secret-access-key",
      "aws-session-token", "bearer-token", "project-id",        "chatgpt-account-id",
      "deployment",        "api-version",  "proxy-password"};
  return flags;
}

const std::vector<std::string>& oauthFieldFlags() {
  static const std::vector<std::string> flags = {"token-expires-at", "oauth-scopes"};
  return flags;
}

NewAccountOptions newAccountOptions(const std::string& type, const AccountChanges& c) {
  NewAccountOptions o;
  o.type = type;
  o.name = c.name.value_or("");
  o.priority = c.priority.value_or(o.priority);
  o.fields = c.fields;
  o.concurrencyLimit = c.concurrencyLimit.value_or(0);
  o.modelMapping = c.modelMapping.value_or(std::map<std::string, std::string>());
  o.proxyUrl = c.proxyUrl.value_or("");
  o.groups = c.groups.value_or(std::vector<std::string>());
  o.dedicated = c.dedicated.value_or(false);
  o.subscriptionExpiresAtMs = c.subscriptionExpiresAtMs.value_or(0);
  return o;
}

void setOAuthTokenFields(const OAuthTokens& tokens, AccountFields* fields) {
  (*fields)["access-token"] = tokens.accessToken;
  if (!tokens.refreshToken.empty()) {
    (*fields)["refresh-token"] = tokens.refreshToken;
  }
  if (tokens.expiresAtMs > 0) {
    (*fields)["token-expires-at"] = std::to_string(tokens.expiresAtMs);
  }
  if (!tokens.scopes.empty()) {
    (*fields)["oauth-scopes"] = tokens.scopes;
  }
}

Status readSharing(const std::string& label, const std::string& value,
                   std::optional<bool>* dedicated) {
  if (value != "shared" && value != "dedicated") {
    return invalidArgument(label + ": expected shared or dedicated, got \"" + value + "\"");
  }
  *dedicated = value == "dedicated";
  return Status::ok();
}

}  // namespace rg
