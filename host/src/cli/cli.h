#pragma once
// The `relaygate` command line: serve, check-config, keys, accounts, plugins.

#include <cstdint>
#include <string>

#include "common/status.h"

namespace rg {

// Returns the process exit code (0 ok, 1 failure, 2 usage error).
int runCli(int argc, char** argv);
// "2026-01-31", "2026-01-31T10:00:00Z", "2026-01-31T10:00:00+02:00" -> unix ms.
StatusOr<int64_t> parseIso8601(const std::string& text);

} // namespace rg
