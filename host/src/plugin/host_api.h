#pragma once
// Internal to host/src/plugin: the rg_host_api table and helpers shared by the loader.

#include <string>
#include <string_view>

#include "common/clock.h"
#include "relaygate/abi.h"

namespace rg {
namespace plugin_detail {

// The process-wide table handed to every plugin (static storage, never freed).
const rg_host_api* hostApiTable();
// The clock behind now_unix_ms / monotonic_ns (nullptr = the system clock).
void setHostClock(const Clock* clock);
// set_error() text of the hook running on this thread; cleared before each hook call.
std::string& hookError();
// `s` with every character outside [A-Za-z0-9_] replaced by '_' (Prometheus metric names).
std::string metricSafe(std::string_view s);

} // namespace plugin_detail
} // namespace rg
