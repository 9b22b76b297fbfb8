#pragma once
// The host side of the plugin ABI: loading, the host services table, and C++ wrappers that call
// plugin hooks safely (no exception crosses; every failure becomes a Status naming the plugin).

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "plugin/host_objects.h"
#include "relaygate/abi.h"

namespace rg {

class Store;
class MetricsRegistry;

// What the host lends to plugins (see rg_host_api). All references outlive every plugin.
struct HostServices {
  const Clock* clock = nullptr;
  Store* store = nullptr;             // plugin KV (namespaced "plugin:<name>:")
  MetricsRegistry* metrics = nullptr; // relaygate_plugin_<name>_<counter>_total
  // Outbound HTTP for notifiers; may be empty (then http_call returns RG_E_UNSUPPORTED).
  std::function<rg_status(const rg_http_request&, uint32_t* status,
                          std::vector<std::pair<std::string, std::string>>* headers,
                          std::string* body)>
      httpCall;
};

// A route as the host keeps it (copied out of the plugin's rg_route).
struct RouteSpec {
  std::string method;
  std::string path;
  uint32_t routeId = 0;
  rg_route_kind kind = RG_ROUTE_RELAY;
  rg_error_shape shape = RG_SHAPE_ANTHROPIC;
  std::string permission;
  std::vector<std::string> accountTypes;
  uint32_t flags = 0;
};

struct ManifestInfo {
  uint16_t abiMajor = 0;
  uint16_t abiMinor = 0;
  uint16_t minHostMinor = 0;
  rg_plugin_kind kind = RG_KIND_PROVIDER;
  std::string name;
  std::string version;
  std::string description;
  std::string path; // the .so it came from
};

class PluginRuntime {
public:
  virtual ~PluginRuntime() = default;
  const ManifestInfo& manifest() const { return manifest_; }
  rg_host_plugin* hostHandle() { return &handle_; }

protected:
  ManifestInfo manifest_;
  rg_host_plugin handle_;
};

// A loaded provider. Every call is noexcept: a failing or throwing hook becomes a Status whose
// message names the plugin, the hook and the plugin's set_error() text.
class ProviderPlugin : public PluginRuntime {
public:
  ~ProviderPlugin() override;
  const std::vector<RouteSpec>& routes() const { return routes_; }

  // `out` must be zeroed with struct_size set by the caller (the minor-2 fields
  // max_output_tokens / input_tokens_estimate come back in it; see requestBounds()). struct_size is
  // restored after the call, whatever the plugin did to it.
  Status parseRequest(rg_host_stream* st, const rg_request& req, rg_request_meta* out) noexcept;
  bool hasTransform() const;
  Status transformRequest(rg_host_stream* st, const rg_request& req, const rg_account& acct,
                          rg_host_sink* upstreamOut) noexcept;
  bool hasResponseHeaders() const;
  Status onResponseHeaders(rg_host_stream* st, uint32_t status, const rg_header* h, size_t n,
                           rg_host_sink* out) noexcept;
  bool hasSseEvent() const;
  Status onSseEvent(rg_host_stream* st, const rg_sse_event& ev, rg_host_sink* repl) noexcept;
  bool hasBodyChunk() const;
  Status onBodyChunk(rg_host_stream* st, rg_str chunk, bool eos, rg_host_sink* repl) noexcept;
  // Falls back to classifyByStatus() when the hook is NULL or fails.
  rg_error_info classifyError(rg_host_stream* st, uint32_t status, const rg_header* h, size_t n,
                              rg_str body) noexcept;
  Status handleLocal(rg_host_stream* st, const rg_request& req, rg_host_sink* out) noexcept;
  // Calls on_stream_done once if any hook ran on `st` (idempotent).
  void streamDone(rg_host_stream* st) noexcept;

private:
  friend class PluginLoader;
  std::string prefix() const; // "plugin <name>: "
  void* dl_ = nullptr;
  rg_provider_vtable vt_{}; // zero-filled past the plugin's struct_size
  rg_instance inst_ = nullptr;
  bool created_ = false; // create() succeeded: destroy() is owed (even for a NULL instance)
  std::vector<RouteSpec> routes_;
};
using ProviderPluginPtr = std::unique_ptr<ProviderPlugin>;

class NotifierPlugin : public PluginRuntime {
public:
  ~NotifierPlugin() override;
  Status onEvent(const rg_event& ev) noexcept;

private:
  friend class PluginLoader;
  void* dl_ = nullptr;
  rg_notifier_vtable vt_{};
  rg_instance inst_ = nullptr;
  bool created_ = false;
};
using NotifierPluginPtr = std::unique_ptr<NotifierPlugin>;

// Host default classification by HTTP status (used when a plugin has no classify_error).
rg_error_info classifyByStatus(uint32_t status);

// The request's worst-case size as the host reserves it against cost and token limits before
// the upstream call: the ABI minor-2 rg_request_meta fields parse_request filled, with the host's
// fallback applied. A plugin built against minor 0/1 leaves both fields 0 (the host zeroed them).
struct RequestBounds {
  // The request's own output bound (max_tokens & co.); 0 = the client gave none (the caller
  // decides what to reserve then, e.g. a configured default).
  uint64_t maxOutputTokens = 0;
  // The plugin's estimate of the prompt's input tokens, else ceil(body bytes / 4).
  uint64_t inputTokensEstimate = 0;
  bool inputFromPlugin = false; // inputTokensEstimate came from the plugin, not the fallback
};
// Both values are capped at kMaxRequestTokens: a client can put any number in max_tokens, and
// tokens x price (int64 micro-dollars) must not overflow.
constexpr uint64_t kMaxRequestTokens = uint64_t{1} << 40;
RequestBounds requestBounds(const rg_request_meta& meta, size_t bodyBytes);

// Loads plugins. Failure messages name the file and the offending field with both values, e.g.
// "libfoo.so: abi_major: plugin has 2, host has 1".
class PluginLoader {
public:
  explicit PluginLoader(HostServices services);
  ~PluginLoader();

  // Reads and checks the manifest only (no plugin code runs except static initialisers).
  static StatusOr<ManifestInfo> readManifest(const std::string& soPath);
  // dlopen(RTLD_NOW|RTLD_LOCAL) + checks + create() with `configJson` + declare_routes().
  StatusOr<ProviderPluginPtr> loadProvider(const std::string& soPath, const std::string& configJson);
  StatusOr<NotifierPluginPtr> loadNotifier(const std::string& soPath, const std::string& configJson);
  // The table handed to plugins (valid for the loader's lifetime).
  const rg_host_api* hostApi() const;

private:
  // What loadProvider and loadNotifier share: dlopen + manifest checks, the kind, the vtable
  // copy, the required hooks, the host handle and create(). `requiredHooks(vtable)` returns the
  // kind's own required slot as {name, pointer} (create and destroy are checked for every kind).
  template <typename PluginT, typename RequiredHooksFn>
  Status openAndCreate(const std::string& soPath, const std::string& configJson,
                       rg_plugin_kind kind, const char* kindName, size_t minVtableSize,
                       RequiredHooksFn requiredHooks, PluginT* p);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The file name a plugin called `name` has in the plugin directory: "librg_<name>.so".
std::string pluginFileName(const std::string& name);

} // namespace rg
