#pragma once
// `relaygate usage`: the usage aggregates as readable tables, or as the admin API's JSON.
//
//   relaygate usage (--key ID | --account ID | --model M) [--from T --to T]
//                   [--by hour|day|month] [--by-model] [--json]
//   relaygate usage top [--from T --to T] [--by hour|day|month] [--limit N] [--json]
//   relaygate usage recent --key ID [--limit N] [--json]
//
// Answers come from the same code as GET /admin/usage... (admin/usage_routes.h), against the
// configured store, in accounting.time_zone.

#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace rg {

// `positional` starts with "usage"; `flags` holds the last value of each --flag (switches "1").
// Returns the process exit code (0 ok, 1 failure, 2 usage error).
int runUsageCommand(const Config& cfg, const std::vector<std::string>& positional,
                    const std::map<std::string, std::string>& flags);

// The usage text of the command (for the CLI's help).
const char* usageCommandHelp();

}  // namespace rg
