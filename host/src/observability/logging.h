#pragma once
// Process logging: spdlog's default logger writes to stderr as text or JSON lines.

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

#include "common/status.h"
#include "config/config.h"

namespace rg {

// Replaces spdlog's default logger (name "relaygate") with one writing to stderr.
//   text: [2026-11-29T03:40:00.123Z] [info] message
//   json: {"ts":"2026-11-29T03:40:00.123Z","level":"info","msg":"message","logger":"relaygate"}
// Timestamps are UTC. Levels: trace | debug | info | warn | error. Returns InvalidArgument for an
// unknown level or format and leaves the current logger untouched then.
Status setupLogging(const LoggingConfig& cfg);

// The formatter setupLogging installs, for "text" or "json" (nullptr for anything else); exposed
// so tests can render records exactly.
std::unique_ptr<spdlog::formatter> makeLogFormatter(std::string_view format);

// "****" + the last 4 characters, or just "****" for values shorter than 12 characters (too
// short to reveal even 4 characters of).
std::string redactSecret(std::string_view secret);

// The body of a JSON string literal (no surrounding quotes): escapes quote, backslash and
// control characters, and replaces invalid UTF-8 with U+FFFD so each line stays valid JSON.
std::string jsonEscape(std::string_view s);

}  // namespace rg
