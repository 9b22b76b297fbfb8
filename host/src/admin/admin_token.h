#pragma once
// The admin API's bearer token: the configured one, else one generated once into the data dir.

#include <string>

#include "common/status.h"

namespace rg {

// `configured` wins when set (at least 32 characters, else kInvalidArgument). Otherwise the token
// is read from <dataDir>/admin.token; on first use it is generated ("rga_" + 64 hex characters),
// written with mode 0600 atomically (a fully written and fsynced file appears under its name or
// nothing does) and *generated is set. A file that is empty or too short is kInvalidArgument (it
// is never silently replaced: an operator may have scripts using it). Never logs the token.
StatusOr<std::string> loadOrCreateAdminToken(const std::string& configured,
                                             const std::string& dataDir, bool* generated);

}  // namespace rg
