#pragma once
// What the CLI (`accounts add/update/oauth-exchange`) and the admin API (/admin/accounts,
// /admin/oauth/claude/exchange) share when they turn an operator's input into account options:
// one spelling of the field names, one conversion, one reading of OAuth tokens.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "accounts/account_service.h"
#include "common/status.h"
#include "oauth/claude_oauth.h"

namespace rg {

// The flags (kebab-case, the keys of AccountChanges::fields) that carry type-specific fields and
// credentials and are passed to the account service as they are.
const std::vector<std::string>& accountFieldFlags();

// The fields an OAuth exchange fills in (see setOAuthTokenFields); the admin API also takes them
// on an account it is given directly, the CLI from `accounts add/update` flags.
const std::vector<std::string>& oauthFieldFlags();

// The options of a new account of `type` from the changes an operator gave.
NewAccountOptions newAccountOptions(const std::string& type, const AccountChanges& c);

// The credential fields of an account from the tokens of an OAuth exchange.
void setOAuthTokenFields(const OAuthTokens& tokens, AccountFields* fields);

// "shared" or "dedicated" into *dedicated; otherwise kInvalidArgument naming `label`.
Status readSharing(const std::string& label, const std::string& value,
                   std::optional<bool>* dedicated);

}  // namespace rg
