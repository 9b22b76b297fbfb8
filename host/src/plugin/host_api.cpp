// The rg_host_api table: the services the host lends to plugins. Every function here is called
// from plugin code through a C function pointer, so none may throw.

#include "plugin/host_api.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include "observability/metrics.h"
#include "plugin/plugin_runtime.h"
#include "storage/store.h"

namespace rg {
namespace plugin_detail {

namespace {

// now_unix_ms / monotonic_ns take no context in the ABI, so the clock is process-wide: the last
// PluginLoader constructed sets it (one per process in practice; tests use a ManualClock).
std::atomic<const Clock*> gClock{nullptr};

std::string_view view(rg_str s) {
  return s.len == 0 || s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}

spdlog::level::level_enum toSpd(rg_log_level l) {
  switch (l) {
  case RG_LOG_TRACE: return spdlog::level::trace;
  case RG_LOG_DEBUG: return spdlog::level::debug;
  case RG_LOG_INFO: return spdlog::level::info;
  case RG_LOG_WARN: return spdlog::level::warn;
  case RG_LOG_ERROR: return spdlog::level::err;
  }
  return spdlog::level::err;
}

void hostLog(rg_host_plugin* p, rg_log_level level, rg_str msg) {
  try {
    spdlog::log(toSpd(level), "plugin {}: {}", p != nullptr ? p->name : "?", view(msg));
  } catch (...) { // logging must never take a hook down
  }
}

int hostLogEnabled(rg_host_plugin* /*p*/, rg_log_level level) {
  return spdlog::should_log(toSpd(level)) ? 1 : 0;
}

void hostSetError(rg_host_plugin* /*p*/, rg_str msg) {
  try {
    hookError().assign(view(msg));
  } catch (...) {
  }
}

uint64_t hostNowUnixMs() {
  const Clock* c = gClock.load();
  if (c == nullptr) {
    c = &SystemClock::instance();
  }
  int64_t ms = c->nowUnixMs();
  return ms < 0 ? 0 : static_cast<uint64_t>(ms);
}

uint64_t hostMonotonicNs() {
  const Clock* c = gClock.load();
  if (c == nullptr || c == &SystemClock::instance()) {
    // Full resolution for the real clock; injected clocks only have milliseconds.
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
  int64_t ms = c->monotonicMs();
  return ms < 0 ? 0 : static_cast<uint64_t>(ms) * 1'000'000ull;
}

void sinkStart(rg_host_sink* s, uint32_t status, rg_str method, rg_str url) {
  if (s == nullptr) {
    return;
  }
  try {
    s->started = true;
    s->status = status;
    s->method.assign(view(method));
    s->url.assign(view(url));
  } catch (...) {
  }
}

void sinkHeader(rg_host_sink* s, rg_str name, rg_str value) {
  if (s == nullptr) {
    return;
  }
  try {
    s->headers.emplace_back(std::string(view(name)), std::string(view(value)));
  } catch (...) {
  }
}

void sinkAppend(rg_host_sink* s, rg_str bytes) {
  if (s == nullptr) {
    return;
  }
  try {
    s->touched = true;
    s->body.append(view(bytes));
  } catch (...) {
  }
}

void sinkDiscard(rg_host_sink* s) {
  if (s != nullptr) {
    s->discarded = true;
  }
}

void reportUsage(rg_host_stream* st, const rg_usage* u) {
  if (st == nullptr || u == nullptr) {
    return;
  }
  try {
    // Copy only the fields the plugin's struct has (struct_size), zero the rest.
    rg_usage copy{};
    size_t n = u->struct_size < sizeof(rg_usage) ? u->struct_size : sizeof(rg_usage);
    std::memcpy(&copy, u, n);
    st->usageModel.assign(n >= offsetof(rg_usage, model) + sizeof(rg_str) ? view(copy.model)
                                                                          : std::string_view());
    copy.struct_size = sizeof(rg_usage);
    copy.model = rg_str{st->usageModel.data(), st->usageModel.size()};
    st->usage = copy;
    st->usageReported = true;
  } catch (...) {
  }
}

void streamSetData(rg_host_stream* st, void* data) {
  if (st != nullptr) {
    st->pluginData = data;
  }
}

void* streamGetData(rg_host_stream* st) { return st == nullptr ? nullptr : st->pluginData; }

rg_status fromStoreStatus(const Status& s) {
  switch (s.code()) {
  case Code::kOk: return RG_OK;
  case Code::kNotFound: return RG_E_NOT_FOUND;
  case Code::kInvalidArgument: return RG_E_INVALID_ARG;
  case Code::kUnavailable:
  case Code::kDeadlineExceeded: return RG_E_UNAVAILABLE;
  default: return RG_E_INTERNAL;
  }
}

std::string kvKey(const rg_host_plugin* p, rg_str key) {
  std::string k = "plugin:";
  k += p->name;
  k += ':';
  k.append(view(key));
  return k;
}

rg_status kvGet(rg_host_plugin* p, rg_str key, void* user, void (*onValue)(void*, rg_str)) {
  if (p == nullptr || p->services == nullptr || p->services->store == nullptr) {
    return RG_E_UNAVAILABLE;
  }
  try {
    auto r = p->services->store->pluginKv().get(kvKey(p, key));
    if (!r.isOk()) {
      return fromStoreStatus(r.status());
    }
    if (!r.value().has_value()) {
      return RG_E_NOT_FOUND;
    }
    const std::string& v = *r.value();
    if (onValue != nullptr) {
      onValue(user, rg_str{v.data(), v.size()});
    }
    return RG_OK;
  } catch (...) {
    return RG_E_INTERNAL;
  }
}

rg_status kvSet(rg_host_plugin* p, rg_str key, rg_str value, uint64_t ttlMs) {
  if (p == nullptr || p->services == nullptr || p->services->store == nullptr) {
    return RG_E_UNAVAILABLE;
  }
  try {
    int64_t ttl = ttlMs > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(ttlMs);
    return fromStoreStatus(
        p->services->store->pluginKv().set(kvKey(p, key), std::string(view(value)), ttl));
  } catch (...) {
    return RG_E_INTERNAL;
  }
}

rg_status kvDel(rg_host_plugin* p, rg_str key) {
  if (p == nullptr || p->services == nullptr || p->services->store == nullptr) {
    return RG_E_UNAVAILABLE;
  }
  try {
    return fromStoreStatus(p->services->store->pluginKv().del(kvKey(p, key)));
  } catch (...) {
    return RG_E_INTERNAL;
  }
}

void counterAdd(rg_host_plugin* p, rg_str name, uint64_t delta) {
  if (p == nullptr || p->services == nullptr || p->services->metrics == nullptr) {
    return;
  }
  try {
    std::string metric = "relaygate_plugin_" + metricSafe(p->name) + "_" +
                         metricSafe(view(name)) + "_total";
    p->services->metrics->counter(metric, "Counter reported by plugin " + p->name)->add(delta);
  } catch (...) {
  }
}

void sha256(rg_str msg, uint8_t out[32]) {
  SHA256(reinterpret_cast<const unsigned char*>(msg.ptr != nullptr ? msg.ptr : ""), msg.len, out);
}

void hmacSha256(rg_str key, rg_str msg, uint8_t out[32]) {
  unsigned int len = 32;
  // OpenSSL's HMAC() with a zero-length key needs a non-NULL pointer.
  static const char kEmpty[1] = {0};
  HMAC(EVP_sha256(), key.ptr != nullptr ? key.ptr : kEmpty, static_cast<int>(key.len),
       reinterpret_cast<const unsigned char*>(msg.ptr != nullptr ? msg.ptr : ""), msg.len, out,
       &len);
}

size_t base64Encode(rg_str in, char* out, size_t cap) {
  size_t need = 4 * ((in.len + 2) / 3);
  if (out == nullptr || cap < need) {
    return need;
  }
  try {
    // EVP_EncodeBlock writes a terminating NUL the ABI does not promise room for.
    std::string tmp(need + 1, '\0');
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(tmp.data()),
                    reinterpret_cast<const unsigned char*>(in.ptr != nullptr ? in.ptr : ""),
                    static_cast<int>(in.len));
    std::memcpy(out, tmp.data(), need);
  } catch (...) {
  }
  return need;
}

rg_status httpCall(rg_host_plugin* p, const rg_http_request* req, void* user,
                   void (*onResponse)(void*, uint32_t, const rg_header*, size_t, rg_str)) {
  if (p == nullptr || req == nullptr || p->services == nullptr || !p->services->httpCall) {
    return RG_E_UNSUPPORTED;
  }
  try {
    uint32_t status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    rg_status s = p->services->httpCall(*req, &status, &headers, &body);
    if (s != RG_OK) {
      return s;
    }
    std::vector<rg_header> hv;
    hv.reserve(headers.size());
    for (const auto& h : headers) {
      hv.push_back(rg_header{rg_str{h.first.data(), h.first.size()},
                             rg_str{h.second.data(), h.second.size()}});
    }
    if (onResponse != nullptr) {
      onResponse(user, status, hv.data(), hv.size(), rg_str{body.data(), body.size()});
    }
    return RG_OK;
  } catch (...) {
    return RG_E_INTERNAL;
  }
}

const rg_host_api kApi = {
    sizeof(rg_host_api),
    RG_ABI_MAJOR,
    RG_ABI_MINOR,
    &hostLog,
    &hostLogEnabled,
    &hostSetError,
    &hostNowUnixMs,
    &hostMonotonicNs,
    &sinkStart,
    &sinkHeader,
    &sinkAppend,
    &sinkDiscard,
    &reportUsage,
    &streamSetData,
    &streamGetData,
    &kvGet,
    &kvSet,
    &kvDel,
    &counterAdd,
    &sha256,
    &hmacSha256,
    &base64Encode,
    &httpCall,
};

} // namespace

std::string& hookError() {
  thread_local std::string e;
  return e;
}

std::string metricSafe(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) {
      c = '_';
    }
  }
  return out;
}

const rg_host_api* hostApiTable() { return &kApi; }

void setHostClock(const Clock* clock) { gClock.store(clock); }

} // namespace plugin_detail
} // namespace rg
