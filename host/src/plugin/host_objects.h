#pragma once
// Definitions of the opaque host objects of the ABI (rg_host_sink, rg_host_stream, rg_host_plugin).
// Only host code includes this; plugins see them as incomplete types.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "relaygate/abi.h"

namespace rg {
class PluginRuntime; // plugin/plugin_runtime.h
struct HostServices; // plugin/plugin_runtime.h
} // namespace rg

// A host-owned output buffer. What a plugin writes is copied in.
struct rg_host_sink {
  bool started = false;
  uint32_t status = 0;     // response sinks
  std::string method;      // upstream-request sinks
  std::string url;         // upstream-request sinks
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool discarded = false;  // replacement sinks: drop the event / chunk
  bool touched = false;    // anything appended (replacement sinks: replace instead of forward)

  void reset() { *this = rg_host_sink(); }
};

// Per-request state visible to the plugin through the host API.
struct rg_host_stream {
  std::string requestId;
  void* pluginData = nullptr; // stream_set_data / stream_get_data
  bool usageReported = false;
  rg_usage usage{};           // last reported totals (model points into usageModel)
  std::string usageModel;
  bool hookRan = false;       // any hook ran -> on_stream_done owed
  bool doneCalled = false;
};

// One per loaded plugin.
struct rg_host_plugin {
  rg::PluginRuntime* runtime = nullptr; // owner; gives services (logging, kv, metrics)
  std::string name;
  // What the host API serves this plugin (clock, store, metrics, http); shared so that a plugin
  // outliving its PluginLoader still has valid services.
  std::shared_ptr<const rg::HostServices> services;
  // set_error() text is kept per thread by the runtime (hooks of one plugin run concurrently).
};
