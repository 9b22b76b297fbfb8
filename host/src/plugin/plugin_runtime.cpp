// Plugin loading (manifest checks, vtable copy, create, routes) and the exception-safe wrappers
// around every plugin hook.

#include "plugin/plugin_runtime.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <set>

#include <spdlog/spdlog.h>

#include "plugin/host_api.h"

namespace rg {

namespace {

using plugin_detail::hookError;

// Sizes of the v1.0 structs: the least a plugin of any 1.x minor must provide. Later minors only
// append, so these stay correct when the structs grow.
constexpr size_t kProviderVtableV10 =
    offsetof(rg_provider_vtable, on_stream_done) + sizeof(void (*)());
constexpr size_t kNotifierVtableV10 = offsetof(rg_notifier_vtable, on_event) + sizeof(void (*)());
constexpr size_t kRouteV10 = offsetof(rg_route, flags) + sizeof(uint32_t);
constexpr size_t kManifestV10 = offsetof(rg_plugin_manifest, vtable) + sizeof(const void*);
constexpr size_t kMaxRoutes = 1024;

std::string baseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string view(rg_str s) {
  return s.len == 0 || s.ptr == nullptr ? std::string() : std::string(s.ptr, s.len);
}

const char* statusName(rg_status s) {
  switch (s) {
  case RG_OK: return "OK";
  case RG_E_INVALID_ARG: return "RG_E_INVALID_ARG";
  case RG_E_NOT_FOUND: return "RG_E_NOT_FOUND";
  case RG_E_UNSUPPORTED: return "RG_E_UNSUPPORTED";
  case RG_E_CAS_MISMATCH: return "RG_E_CAS_MISMATCH";
  case RG_E_INTERNAL: return "RG_E_INTERNAL";
  case RG_E_UNAVAILABLE: return "RG_E_UNAVAILABLE";
  }
  return "unknown status";
}

Code toCode(rg_status s) {
  switch (s) {
  case RG_OK: return Code::kOk;
  case RG_E_INVALID_ARG: return Code::kInvalidArgument;
  case RG_E_NOT_FOUND: return Code::kNotFound;
  case RG_E_UNSUPPORTED: return Code::kFailedPrecondition;
  case RG_E_CAS_MISMATCH: return Code::kAborted;
  case RG_E_INTERNAL: return Code::kInternal;
  case RG_E_UNAVAILABLE: return Code::kUnavailable;
  }
  return Code::kInternal;
}

// Runs one plugin hook: clears the thread's set_error text, catches anything thrown through the
// C boundary, and turns a failure into "<prefix><hook>: <detail>".
template <typename F>
Status callHook(const std::string& prefix, const char* hook, F&& fn) noexcept {
  rg_status s = RG_E_INTERNAL;
  std::string thrown;
  try {
    hookError().clear();
    s = fn();
  } catch (const std::exception& e) {
    thrown = std::string("threw an exception: ") + e.what();
  } catch (...) {
    thrown = "threw an unknown exception";
  }
  if (thrown.empty() && s == RG_OK) {
    return Status::ok();
  }
  try {
    std::string detail = thrown;
    if (detail.empty()) {
      detail = hookError().empty() ? std::string(statusName(s))
                                   : hookError() + " (" + statusName(s) + ")";
      if (std::strcmp(statusName(s), "unknown status") == 0) {
        detail += " " + std::to_string(static_cast<int>(s));
      }
    }
    hookError().clear();
    return Status(thrown.empty() ? toCode(s) : Code::kInternal, prefix + hook + ": " + detail);
  } catch (...) {
    return Status(Code::kInternal, "plugin hook failed (out of memory)");
  }
}

bool validName(const char* name) {
  if (name == nullptr || name[0] == '\0') {
    return false;
  }
  size_t n = 0;
  for (const char* p = name; *p != '\0'; ++p, ++n) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-') || n >= 64) {
      return false;
    }
  }
  return true;
}

bool validMethod(const std::string& m) {
  static const std::set<std::string> kMethods = {"GET",    "POST", "PUT",    "PATCH",
                                                 "DELETE", "HEAD", "OPTIONS"};
  return kMethods.count(m) != 0;
}

// "/a/{id}/b": starts with '/', no query or fragment, no whitespace or control characters, no
// empty or dot segments, a "{...}" segment is a whole segment.
bool validPath(const std::string& p, std::string* why) {
  if (p.empty() || p[0] != '/') {
    *why = "must start with '/'";
    return false;
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '?' || c == '#') {
      *why = "contains a space, control character, '?' or '#'";
      return false;
    }
  }
  size_t pos = 1;
  while (pos <= p.size()) {
    size_t end = p.find('/', pos);
    if (end == std::string::npos) {
      end = p.size();
    }
    std::string seg = p.substr(pos, end - pos);
    if (seg.empty() && end != p.size()) {
      *why = "has an empty segment";
      return false;
    }
    if (seg == "." || seg == "..") {
      *why = "has a '.' or '..' segment";
      return false;
    }
    bool open = seg.find('{') != std::string::npos;
    bool close = seg.find('}') != std::string::npos;
    if ((open || close) &&
        (seg.size() < 3 || seg.front() != '{' || seg.back() != '}' ||
         seg.find_first_of("{}", 1) != seg.size() - 1)) {
      *why = "has a malformed \"{name}\" segment";
      return false;
    }
    pos = end + 1;
  }
  return true;
}

std::vector<std::string> splitTypes(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) {
      end = s.size();
    }
    std::string t = s.substr(pos, end - pos);
    size_t b = t.find_first_not_of(" \t");
    size_t e = t.find_last_not_of(" \t");
    if (b != std::string::npos) {
      out.push_back(t.substr(b, e - b + 1));
    }
    pos = end + 1;
  }
  return out;
}

struct Library {
  void* handle = nullptr;
  const rg_plugin_manifest* manifest = nullptr;
};

// dlopen + dlsym of the manifest + every check that needs no plugin code.
StatusOr<Library> openAndCheck(const std::string& path, ManifestInfo* info) {
  const std::string file = baseName(path);
  dlerror();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* e = dlerror();
    return notFound(file + ": cannot load: " + (e != nullptr ? e : "dlopen failed"));
  }
  auto fail = [&](std::string msg) -> StatusOr<Library> {
    dlclose(h);
    return invalidArgument(file + ": " + msg);
  };
  dlerror();
  auto* m = static_cast<const rg_plugin_manifest*>(dlsym(h, RG_MANIFEST_SYMBOL));
  if (m == nullptr) {
    return fail(std::string("no exported symbol ") + RG_MANIFEST_SYMBOL +
                " (not a relaygate plugin, or built without RG_DECLARE_PROVIDER/NOTIFIER)");
  }
  if (m->struct_size < kManifestV10) {
    return fail("struct_size: plugin has " + std::to_string(m->struct_size) +
                ", host needs at least " + std::to_string(kManifestV10));
  }
  if (m->abi_major != RG_ABI_MAJOR) {
    return fail("abi_major: plugin has " + std::to_string(m->abi_major) + ", host supports " +
                std::to_string(RG_ABI_MAJOR));
  }
  if (m->min_host_minor > RG_ABI_MINOR) {
    return fail("min_host_minor: plugin needs " + std::to_string(m->min_host_minor) +
                ", host has " + std::to_string(RG_ABI_MINOR));
  }
  if (m->kind != RG_KIND_PROVIDER && m->kind != RG_KIND_NOTIFIER) {
    return fail("kind: plugin has " + std::to_string(m->kind) + ", host supports " +
                std::to_string(RG_KIND_PROVIDER) + " (provider) or " +
                std::to_string(RG_KIND_NOTIFIER) + " (notifier)");
  }
  if (!validName(m->name)) {
    return fail("name: plugin has \"" + std::string(m->name != nullptr ? m->name : "(null)") +
                "\", host needs 1-64 characters of [a-z0-9_-]");
  }
  if (m->vtable == nullptr) {
    return fail("vtable: plugin has NULL, host needs a vtable");
  }
  info->abiMajor = m->abi_major;
  info->abiMinor = m->abi_minor;
  info->minHostMinor = m->min_host_minor;
  info->kind = static_cast<rg_plugin_kind>(m->kind);
  info->name = m->name;
  info->version = m->version != nullptr ? m->version : "";
  info->description = m->description != nullptr ? m->description : "";
  info->path = path;
  return Library{h, m};
}

// Copies a plugin-filled table into a zero-filled host-size one (slots the plugin lacks are NULL).
template <typename T>
Status copyTable(const std::string& file, const void* src, size_t minSize, T* dst) {
  uint32_t size = 0;
  std::memcpy(&size, src, sizeof(size));
  if (size < minSize) {
    return invalidArgument(file + ": vtable.struct_size: plugin has " + std::to_string(size) +
                           ", host needs at least " + std::to_string(minSize));
  }
  std::memset(dst, 0, sizeof(T));
  std::memcpy(dst, src, size < sizeof(T) ? size : sizeof(T));
  return Status::ok();
}

Status requireHook(const std::string& file, const char* field, const void* fn,
                   const char* when = nullptr) {
  if (fn != nullptr) {
    return Status::ok();
  }
  return invalidArgument(file + ": vtable." + field + ": plugin has NULL, host requires it" +
                         (when != nullptr ? std::string(" ") + when : std::string()));
}

} // namespace

// ---- ProviderPlugin ----------------------------------------------------------------------------

ProviderPlugin::~ProviderPlugin() {
  if (created_ && vt_.destroy != nullptr) {
    try {
      vt_.destroy(inst_);
    } catch (...) {
      spdlog::error("plugin {}: destroy threw an exception", manifest_.name);
    }
    inst_ = nullptr;
  }
  if (dl_ != nullptr) {
    dlclose(dl_);
  }
}

Status ProviderPlugin::parseRequest(rg_host_stream* st, const rg_request& req,
                                    rg_request_meta* out) noexcept {
  if (vt_.parse_request == nullptr) {
    return Status::ok();
  }
  if (st != nullptr) {
    st->hookRan = true;
  }
  const uint32_t size = out->struct_size;
  Status s = callHook(prefix(), "parse_request",
                      [&] { return vt_.parse_request(inst_, st, &req, out); });
  out->struct_size = size; // callers read fields by it (RG_HAS_FIELD): never the plugin's word
  return s;
}

RequestBounds requestBounds(const rg_request_meta& meta, size_t bodyBytes) {
  // RG_HAS_FIELD without its NULL test (a reference is never null; GCC warns on the test).
  auto has = [&](size_t offset) { return meta.struct_size >= offset + sizeof(uint64_t); };
  RequestBounds b;
  if (has(offsetof(rg_request_meta, max_output_tokens))) {
    b.maxOutputTokens = std::min(meta.max_output_tokens, kMaxRequestTokens);
  }
  if (has(offsetof(rg_request_meta, input_tokens_estimate)) && meta.input_tokens_estimate != 0) {
    b.inputTokensEstimate = std::min(meta.input_tokens_estimate, kMaxRequestTokens);
    b.inputFromPlugin = true;
  } else {
    uint64_t bytes = bodyBytes;
    b.inputTokensEstimate = std::min(bytes / 4 + (bytes % 4 != 0 ? 1 : 0), kMaxRequestTokens);
  }
  return b;
}

bool ProviderPlugin::hasTransform() const { return vt_.transform_request != nullptr; }

Status ProviderPlugin::transformRequest(rg_host_stream* st, const rg_request& req,
                                        const rg_account& acct, rg_host_sink* upstreamOut) noexcept {
  if (vt_.transform_request == nullptr) {
    return Status(Code::kFailedPrecondition, prefix() + "transform_request: not provided");
  }
  if (st != nullptr) {
    st->hookRan = true;
  }
  return callHook(prefix(), "transform_request",
                  [&] { return vt_.transform_request(inst_, st, &req, &acct, upstreamOut); });
}

bool ProviderPlugin::hasResponseHeaders() const { return vt_.on_response_headers != nullptr; }

Status ProviderPlugin::onResponseHeaders(rg_host_stream* st, uint32_t status, const rg_header* h,
                                         size_t n, rg_host_sink* out) noexcept {
  if (vt_.on_response_headers == nullptr) {
    return Status(Code::kFailedPrecondition, prefix() + "on_response_headers: not provided");
  }
  if (st != nullptr) {
    st->hookRan = true;
  }
  return callHook(prefix(), "on_response_headers",
                  [&] { return vt_.on_response_headers(inst_, st, status, h, n, out); });
}

bool ProviderPlugin::hasSseEvent() const { return vt_.on_sse_event != nullptr; }

Status ProviderPlugin::onSseEvent(rg_host_stream* st, const rg_sse_event& ev,
                                  rg_host_sink* repl) noexcept {
  if (vt_.on_sse_event == nullptr) {
    return Status::ok(); // host default: forward unchanged
  }
  if (st != nullptr) {
    st->hookRan = true;
  }
  return callHook(prefix(), "on_sse_event",
                  [&] { return vt_.on_sse_event(inst_, st, &ev, repl); });
}

bool ProviderPlugin::hasBodyChunk() const { return vt_.on_body_chunk != nullptr; }

Status ProviderPlugin::onBodyChunk(rg_host_stream* st, rg_str chunk, bool eos,
                                   rg_host_sink* repl) noexcept {
  if (vt_.on_body_chunk == nullptr) {
    return Status::ok(); // host default: forward unchanged
  }
  if (st != nullptr) {
    st->hookRan = true;
  }
  return callHook(prefix(), "on_body_chunk",
                  [&] { return vt_.on_body_chunk(inst_, st, chunk, eos ? 1 : 0, repl); });
}

rg_error_info ProviderPlugin::classifyError(rg_host_stream* st, uint32_t status,
                                            const rg_header* h, size_t n, rg_str body) noexcept {
  rg_error_info def = classifyByStatus(status);
  if (vt_.classify_error == nullptr) {
    return def;
  }
  rg_error_info info = def; // the plugin may leave fields as the host prepared them
  if (st != nullptr) {
    st->hookRan = true; // the hook may create per-stream state: on_stream_done must free it
  }
  Status s = callHook(prefix(), "classify_error", [&] {
    vt_.classify_error(inst_, st, status, h, n, body, &info);
    return RG_OK;
  });
  if (!s.isOk()) {
    spdlog::warn("{}; using the default classification for status {}", s.message(), status);
    return def;
  }
  if (static_cast<uint32_t>(info.cls) > static_cast<uint32_t>(RG_EC_BLOCKED)) {
    spdlog::warn("plugin {}: classify_error: unknown class {}; using the default",
                 manifest_.name, static_cast<int>(info.cls));
    return def;
  }
  info.struct_size = sizeof(rg_error_info);
  return info;
}

Status ProviderPlugin::handleLocal(rg_host_stream* st, const rg_request& req,
                                   rg_host_sink* out) noexcept {
  if (vt_.handle_local == nullptr) {
    return Status(Code::kFailedPrecondition, prefix() + "handle_local: not provided");
  }
  if (st != nullptr) {
    st->hookRan = true;
  }
  return callHook(prefix(), "handle_local",
                  [&] { return vt_.handle_local(inst_, st, &req, out); });
}

void ProviderPlugin::streamDone(rg_host_stream* st) noexcept {
  if (st == nullptr || !st->hookRan || st->doneCalled) {
    return;
  }
  st->doneCalled = true;
  if (vt_.on_stream_done == nullptr) {
    return;
  }
  Status s = callHook(prefix(), "on_stream_done", [&] {
    vt_.on_stream_done(inst_, st);
    return RG_OK;
  });
  if (!s.isOk()) {
    spdlog::error("{}", s.message());
  }
}

std::string ProviderPlugin::prefix() const { return "plugin " + manifest_.name + ": "; }

// ---- NotifierPlugin ----------------------------------------------------------------------------

NotifierPlugin::~NotifierPlugin() {
  if (created_ && vt_.destroy != nullptr) {
    try {
      vt_.destroy(inst_);
    } catch (...) {
      spdlog::error("plugin {}: destroy threw an exception", manifest_.name);
    }
    inst_ = nullptr;
  }
  if (dl_ != nullptr) {
    dlclose(dl_);
  }
}

Status NotifierPlugin::onEvent(const rg_event& ev) noexcept {
  return callHook("plugin " + manifest_.name + ": ", "on_event",
                  [&] { return vt_.on_event(inst_, &ev); });
}

// ---- Defaults ----------------------------------------------------------------------------------

rg_error_info classifyByStatus(uint32_t status) {
  rg_error_info info{};
  info.struct_size = sizeof(info);
  switch (status) {
  case 400:
  case 404:
  case 413:
  case 422: info.cls = RG_EC_CLIENT; break;
  case 401:
  case 403: info.cls = RG_EC_AUTH; break;
  case 429: info.cls = RG_EC_RATE_LIMITED; break;
  case 529: info.cls = RG_EC_OVERLOADED; break;
  case 500:
  case 502:
  case 503:
  case 504: info.cls = RG_EC_TRANSIENT; break;
  default:
    if (status >= 500) {
      info.cls = RG_EC_TRANSIENT;
    } else if (status >= 400) {
      info.cls = RG_EC_CLIENT;
    } else {
      info.cls = RG_EC_NONE;
    }
  }
  return info;
}

std::string pluginFileName(const std::string& name) { return "librg_" + name + ".so"; }

// ---- PluginLoader ------------------------------------------------------------------------------

struct PluginLoader::Impl {
  std::shared_ptr<const HostServices> services;
};

PluginLoader::PluginLoader(HostServices services) : impl_(std::make_unique<Impl>()) {
  plugin_detail::setHostClock(services.clock);
  impl_->services = std::make_shared<const HostServices>(std::move(services));
}

PluginLoader::~PluginLoader() = default;

const rg_host_api* PluginLoader::hostApi() const { return plugin_detail::hostApiTable(); }

StatusOr<ManifestInfo> PluginLoader::readManifest(const std::string& soPath) {
  ManifestInfo info;
  auto lib = openAndCheck(soPath, &info);
  if (!lib) {
    return lib.status();
  }
  dlclose(lib->handle);
  return info;
}

template <typename PluginT, typename RequiredHooksFn>
Status PluginLoader::openAndCreate(const std::string& soPath, const std::string& configJson,
                                   rg_plugin_kind kind, const char* kindName,
                                   size_t minVtableSize, RequiredHooksFn requiredHooks,
                                   PluginT* p) {
  const std::string file = baseName(soPath);
  auto lib = openAndCheck(soPath, &p->manifest_);
  if (!lib) {
    return lib.status();
  }
  p->dl_ = lib->handle; // from here on the destructor dlcloses
  if (p->manifest_.kind != kind) {
    return invalidArgument(file + ": kind: plugin has " + std::to_string(p->manifest_.kind) +
                           ", host expected " + std::to_string(kind) + " (" + kindName + ")");
  }
  Status s = copyTable(file, lib->manifest->vtable, minVtableSize, &p->vt_);
  // create and destroy are required of every kind; the kind adds its own.
  const std::pair<const char*, const void*> hooks[] = {
      {"create", reinterpret_cast<const void*>(p->vt_.create)},
      {"destroy", reinterpret_cast<const void*>(p->vt_.destroy)},
      requiredHooks(p->vt_)};
  for (const auto& hook : hooks) {
    if (!s.isOk()) {
      break;
    }
    s = requireHook(file, hook.first, hook.second);
  }
  if (!s.isOk()) {
    return s;
  }
  p->handle_.runtime = p;
  p->handle_.name = p->manifest_.name;
  p->handle_.services = impl_->services;
  rg_instance inst = nullptr;
  s = callHook(file + ": ", "create", [&] {
    return p->vt_.create(&p->handle_, hostApi(), rg_str{configJson.data(), configJson.size()},
                         &inst);
  });
  if (!s.isOk()) {
    return s;
  }
  p->inst_ = inst; // may be NULL for a stateless plugin
  p->created_ = true;
  return Status::ok();
}

StatusOr<ProviderPluginPtr> PluginLoader::loadProvider(const std::string& soPath,
                                                       const std::string& configJson) {
  ProviderPluginPtr p(new ProviderPlugin());
  Status s = openAndCreate(
      soPath, configJson, RG_KIND_PROVIDER, "provider", kProviderVtableV10,
      [](const rg_provider_vtable& vt) {
        return std::make_pair("declare_routes", reinterpret_cast<const void*>(vt.declare_routes));
      },
      p.get());
  if (!s.isOk()) {
    return s;
  }
  const std::string file = baseName(soPath);
  const std::string fp = file + ": ";
  rg_instance inst = p->inst_;

  const rg_route* rs = nullptr;
  size_t n = 0;
  s = callHook(fp, "declare_routes", [&] { return p->vt_.declare_routes(inst, &rs, &n); });
  if (!s.isOk()) {
    return s;
  }
  if (n > kMaxRoutes || (n > 0 && rs == nullptr)) {
    return invalidArgument(fp + "declare_routes: plugin returned " + std::to_string(n) +
                           " routes at " + (rs == nullptr ? "NULL" : "an array") +
                           ", host accepts up to " + std::to_string(kMaxRoutes));
  }
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t i = 0; i < n; ++i) {
    const rg_route& r = rs[i];
    const std::string at = fp + "routes[" + std::to_string(i) + "].";
    if (r.struct_size < kRouteV10) {
      return invalidArgument(at + "struct_size: plugin has " + std::to_string(r.struct_size) +
                             ", host needs at least " + std::to_string(kRouteV10));
    }
    RouteSpec spec;
    spec.method = view(r.method);
    spec.path = view(r.path);
    spec.routeId = r.route_id;
    spec.kind = r.kind;
    spec.shape = r.shape;
    spec.permission = view(r.permission);
    spec.accountTypes = splitTypes(view(r.account_types));
    spec.flags = r.flags;
    if (!validMethod(spec.method)) {
      return invalidArgument(at + "method: plugin has \"" + spec.method +
                             "\", host supports GET POST PUT PATCH DELETE HEAD OPTIONS");
    }
    std::string why;
    if (!validPath(spec.path, &why)) {
      return invalidArgument(at + "path: \"" + spec.path + "\" " + why);
    }
    if (spec.kind != RG_ROUTE_RELAY && spec.kind != RG_ROUTE_LOCAL) {
      return invalidArgument(at + "kind: plugin has " + std::to_string(spec.kind) +
                             ", host supports 0 (relay) or 1 (local)");
    }
    if (spec.shape != RG_SHAPE_ANTHROPIC && spec.shape != RG_SHAPE_OPENAI &&
        spec.shape != RG_SHAPE_GEMINI) {
      return invalidArgument(at + "shape: plugin has " + std::to_string(spec.shape) +
                             ", host supports 0..2");
    }
    if (spec.kind == RG_ROUTE_RELAY) {
      s = requireHook(file, "transform_request",
                      reinterpret_cast<const void*>(p->vt_.transform_request),
                      "when a RELAY route is declared");
      if (!s.isOk()) {
        return s;
      }
      if (spec.accountTypes.empty()) {
        return invalidArgument(at + "account_types: empty, a RELAY route needs at least one");
      }
    } else {
      s = requireHook(file, "handle_local", reinterpret_cast<const void*>(p->vt_.handle_local),
                      "when a LOCAL route is declared");
      if (!s.isOk()) {
        return s;
      }
    }
    if (!seen.insert({spec.method, spec.path}).second) {
      return invalidArgument(at + "path: " + spec.method + " " + spec.path +
                             " is declared twice");
    }
    p->routes_.push_back(std::move(spec));
  }
  spdlog::info("plugin {} {} loaded from {} ({} routes)", p->manifest_.name, p->manifest_.version,
               soPath, p->routes_.size());
  return p;
}

StatusOr<NotifierPluginPtr> PluginLoader::loadNotifier(const std::string& soPath,
                                                       const std::string& configJson) {
  NotifierPluginPtr p(new NotifierPlugin());
  Status s = openAndCreate(
      soPath, configJson, RG_KIND_NOTIFIER, "notifier", kNotifierVtableV10,
      [](const rg_notifier_vtable& vt) {
        return std::make_pair("on_event", reinterpret_cast<const void*>(vt.on_event));
      },
      p.get());
  if (!s.isOk()) {
    return s;
  }
  spdlog::info("plugin {} {} loaded from {} (notifier)", p->manifest_.name,
               p->manifest_.version, soPath);
  return p;
}

} // namespace rg
