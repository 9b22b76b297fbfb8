#pragma once
// UTC time formatting shared by the CLI, the scheduler's log lines and the usage records.

#include <cstdint>
#include <string>

namespace rg {

// "2025-01-31T12:34:56Z" (whole seconds, UTC) for a Unix time in milliseconds.
std::string isoTimeUtc(int64_t unixMs);

// "2025-01-31": the UTC day of a Unix time in milliseconds.
std::string dayUtc(int64_t unixMs);

}  // namespace rg
