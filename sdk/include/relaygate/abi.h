/*
 * relaygate plugin ABI, version 1.2 -- the only contract between the relaygate host and a plugin.
 *
 * Pure C99, <stddef.h> and <stdint.h> only. No C++ type, exception or allocator crosses this line.
 * See docs/plugin-abi.md for the full specification; the rules in short:
 *
 *  - A plugin exports exactly one symbol, the DATA object `rg_plugin_manifest_v1`. The host reads
 * it with dlsym() and checks it before calling any plugin function.
 *  - Every struct that may grow starts with `uint32_t struct_size` (= sizeof as compiled by the
 * side that filled it). Structs and tables only grow at the end; a new behaviour is a new slot.
 *    Minor version bump = appended slots / fields / enum values. Major bump = anything else.
 *  - Optional hooks are NULL. Use RG_HAS() to test a slot of a table filled by the other side.
 *  - rg_str is a borrowed (pointer, length) view, NOT NUL-terminated, valid only for the duration
 * of the call it was passed to unless stated otherwise. Copy what you keep.
 *  - Outputs go to host-owned sinks through the host API; the host copies what is written.
 *  - Every hook returns a status (or void for notifications); on failure a plugin may attach a
 *    message with host->set_error() before returning.
 *  - No hook may let an exception or longjmp escape.
 */
#ifndef RELAYGATE_ABI_H
#define RELAYGATE_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RG_ABI_MAJOR 1 /* bump = breaking change; the host rejects plugins of another major */
#define RG_ABI_MINOR 2 /* bump = appended slots/fields/enum values only */

#if defined(_WIN32)
#define RG_EXPORT __declspec(dllexport)
#else
#define RG_EXPORT __attribute__((visibility("default")))
#endif

/* True when the table `tbl` (filled by the other side, struct_size first) has slot `field` and it
 * is not NULL. Use it for every slot added after minor 0. */
#define RG_HAS(tbl, field)                                                                     \
  ((tbl) != NULL &&                                                                            \
   (size_t)(tbl)->struct_size >= offsetof(__typeof__(*(tbl)), field) + sizeof((tbl)->field) && \
   (tbl)->field != NULL)

/** Like RG_HAS for a data field (not a function slot) appended after minor 0: true when the struct
 * the other side filled is large enough to contain it. */
#define RG_HAS_FIELD(tbl, field) \
  ((tbl) != NULL &&              \
   (size_t)(tbl)->struct_size >= offsetof(__typeof__(*(tbl)), field) + sizeof((tbl)->field))

/* ---------------------------------------------------------------------------------------------- */
/* Basic types                                                                                    */

/** Borrowed byte view. NOT NUL-terminated. OWNERSHIP: the side that passed it. */
typedef struct rg_str {
  const char* ptr;
  size_t len;
} rg_str;

/** One HTTP header; names keep the case they arrived with (compare case-insensitively). */
typedef struct rg_header {
  rg_str name;
  rg_str value;
} rg_header;

/** Opaque host objects. OWNERSHIP: host. */
typedef struct rg_host_plugin rg_host_plugin; /* one per loaded plugin; valid until destroy */
typedef struct rg_host_stream
    rg_host_stream;                       /* one per request; valid until on_stream_done returns */
typedef struct rg_host_sink rg_host_sink; /* an output buffer; valid for the hook call only */

/** Plugin instance. OWNERSHIP: plugin; created by create(), freed by destroy(). */
typedef void* rg_instance;

typedef enum rg_status {
  RG_OK = 0,
  RG_E_INVALID_ARG = 1,  /* the input is malformed (e.g. request body not JSON) -> 400 */
  RG_E_NOT_FOUND = 2,    /* unknown key, route, model -> 404 */
  RG_E_UNSUPPORTED = 3,  /* the plugin cannot do this (e.g. account type) */
  RG_E_CAS_MISMATCH = 4, /* kv_set compare-and-set failed */
  RG_E_INTERNAL = 5,     /* anything else, incl. a caught exception -> 500 */
  RG_E_UNAVAILABLE = 6   /* a dependency (storage, network) is down -> 503 */
} rg_status;

typedef enum rg_log_level {
  RG_LOG_TRACE = 0,
  RG_LOG_DEBUG = 1,
  RG_LOG_INFO = 2,
  RG_LOG_WARN = 3,
  RG_LOG_ERROR = 4
} rg_log_level;

typedef enum rg_plugin_kind { RG_KIND_PROVIDER = 1, RG_KIND_NOTIFIER = 2 } rg_plugin_kind;

/** How the host answers with its own errors on a route (auth, limits, upstream unreachable). */
typedef enum rg_error_shape {
  RG_SHAPE_ANTHROPIC = 0, /* {"type":"error","error":{"type":...,"message":...}} */
  RG_SHAPE_OPENAI = 1,    /* {"error":{"message":...,"type":...,"code":...}} */
  RG_SHAPE_GEMINI = 2     /* {"error":{"code":...,"message":...,"status":...}} */
} rg_error_shape;

/** Upstream error classes; decide cooldown and failover in the host's scheduler. */
typedef enum rg_error_class {
  RG_EC_NONE = 0,             /* not an error */
  RG_EC_CLIENT = 1,           /* bad request: return as-is, never retried */
  RG_EC_CONTEXT_TOO_LONG = 2, /* return as-is */
  RG_EC_RATE_LIMITED = 3,     /* account limited: cool down, retry elsewhere */
  RG_EC_OVERLOADED = 4,       /* upstream overloaded (529): cool down, retry elsewhere */
  RG_EC_TRANSIENT = 5,        /* 5xx, timeouts: short cooldown, retry elsewhere */
  RG_EC_AUTH = 6,             /* credential rejected: cool down, retry elsewhere */
  RG_EC_QUOTA_EXHAUSTED = 7,  /* account quota used up */
  RG_EC_BLOCKED = 8           /* account disabled by the vendor: operator must reset */
} rg_error_class;

/* ---------------------------------------------------------------------------------------------- */
/* Data passed to hooks                                                                           */

typedef enum rg_route_kind {
  RG_ROUTE_RELAY = 0, /* host picks an account and sends what transform_request wrote upstream */
  RG_ROUTE_LOCAL = 1  /* the plugin answers itself in handle_local (no upstream call) */
} rg_route_kind;

/* rg_route.flags */
#define RG_ROUTE_NO_AUTH 0x1u          /* no gateway key needed (e.g. a telemetry sink) */
#define RG_ROUTE_SKIP_CONCURRENCY 0x2u /* do not take a key concurrency slot (count_tokens) */

/** A route the plugin serves. OWNERSHIP: plugin; must stay valid until destroy(). */
typedef struct rg_route {
  uint32_t struct_size;
  rg_str method;        /* "GET", "POST" */
  rg_str path;          /* exact path; a segment "{name}" matches any one segment. No query. */
  uint32_t route_id;    /* the plugin's own id, handed back in rg_request.route_id */
  rg_route_kind kind;   /* RELAY or LOCAL */
  rg_error_shape shape; /* wire shape of host-generated errors on this route */
  rg_str permission;    /* key permission needed, e.g. "claude"; empty = none */
  rg_str account_types; /* RELAY: comma-separated account types it can use, "claude-console" */
  uint32_t flags;       /* RG_ROUTE_* */
} rg_route;

/** An inbound client request. OWNERSHIP: host; valid for the hook call. */
typedef struct rg_request {
  uint32_t struct_size;
  uint32_t route_id;        /* the rg_route.route_id that matched */
  rg_str method;            /* "POST" */
  rg_str path;              /* "/api/v1/messages" */
  rg_str query;             /* "beta=true" (without '?'), may be empty */
  const rg_header* headers; /* as received, gateway credentials already removed */
  size_t header_count;
  rg_str body;       /* the whole request body */
  rg_str request_id; /* the X-Request-ID the client will see */
  rg_str key_id;     /* the authenticated gateway key's id (empty on NO_AUTH routes) */
  rg_str key_name;   /* its display name */
} rg_request;

/** What parse_request learns about a request. The HOST zeroes it and sets struct_size to the size
 * it was built with; the plugin fills it, never writes struct_size, and writes a field appended
 * after minor 0 only when RG_HAS_FIELD(out, field) (a minor-1 host hands a shorter struct).
 * rg_str fields may point into the request body (borrowed from the host) or plugin memory valid
 * until the next hook call on the same stream; the host copies them. */
typedef struct rg_request_meta {
  uint32_t struct_size;
  rg_str model;       /* requested model, empty if none */
  int32_t stream;     /* non-zero when the client asked for a streamed (SSE) response */
  rg_str session_key; /* stable conversation key for sticky scheduling; empty = none */
  /* minor 2+ (write only when RG_HAS_FIELD(out, field)); the host reserves cost and tokens for the
   * request's worst case from them before the upstream call: */
  uint64_t max_output_tokens;     /* the request's own output bound (Anthropic/OpenAI max_tokens,
                                     max_completion_tokens, max_output_tokens, Gemini
                                     generationConfig.maxOutputTokens); 0 = not given */
  uint64_t input_tokens_estimate; /* the plugin's estimate of the prompt's input tokens; 0 = no
                                     estimate (the host then uses body bytes / 4, rounded up) */
} rg_request_meta;

/** The upstream account chosen for a RELAY request. OWNERSHIP: host; valid for the hook call.
 * `secret` is the decrypted credential: never log it, never keep it past the call. */
typedef struct rg_account {
  uint32_t struct_size;
  rg_str id;
  rg_str name;
  rg_str type;     /* "claude-console", ... */
  rg_str base_url; /* e.g. "https://api.anthropic.com" (no trailing slash) */
  rg_str secret;   /* API key or access token */
  /* minor 1+ (test with RG_HAS): */
  rg_str upstream_model; /* the model name to send upstream (the account's mapping of the
                            requested model); empty = send the requested name unchanged */
  rg_str settings_json;  /* the account's type-specific non-secret settings as a JSON object,
                            e.g. {"region":"us-east-1"}; "{}" when none */
} rg_account;

/** Token usage of one request, as totals so far. The host replaces, never adds. */
typedef struct rg_usage {
  uint32_t struct_size;
  uint64_t input_tokens;
  uint64_t output_tokens;
  uint64_t cache_creation_5m_tokens; /* cache writes with a 5-minute TTL */
  uint64_t cache_creation_1h_tokens; /* cache writes with a 1-hour TTL */
  uint64_t cache_read_tokens;
  rg_str model; /* model the upstream reports; may be empty */
} rg_usage;

/** One server-sent event, framed by the host. OWNERSHIP: host; valid for the hook call. */
typedef struct rg_sse_event {
  uint32_t struct_size;
  rg_str raw;   /* the exact bytes, including the terminating blank line */
  rg_str event; /* value of the `event:` field, empty if none */
  rg_str data;  /* the `data:` field values joined with '\n' (exactly as SSE defines) */
} rg_sse_event;

/** The plugin's verdict on an upstream error response. Filled by the plugin; `reason` may point to
 * static or plugin memory valid until the next hook call on the same stream. */
typedef struct rg_error_info {
  uint32_t struct_size;
  rg_error_class cls;
  uint64_t retry_after_ms; /* 0 = not given */
  uint64_t until_unix_ms;  /* absolute end of a limit (e.g. a rate-limit reset), 0 = unknown */
  rg_str scope;            /* what is limited: "" = the whole account, else a model family */
  rg_str reason;           /* short human-readable reason */
} rg_error_info;

/** An outbound HTTP call (notifiers). OWNERSHIP: caller; valid for the call. */
typedef struct rg_http_request {
  uint32_t struct_size;
  rg_str method;
  rg_str url;
  const rg_header* headers;
  size_t header_count;
  rg_str body;
  uint32_t timeout_ms; /* 0 = host default */
} rg_http_request;

/** An internal event (account state change, security alert, ...) delivered to notifiers. */
typedef struct rg_event {
  uint32_t struct_size;
  rg_str type;      /* "account.cooldown", "key.limit_warning", "test", ... */
  rg_str json;      /* event payload, a JSON object */
  uint64_t unix_ms; /* when it happened */
  rg_str id;        /* unique event id (idempotency key for deliveries) */
} rg_event;

/* ---------------------------------------------------------------------------------------------- */
/* Services the host provides. Append-only. Callable from any hook on any thread unless stated.   */

typedef struct rg_host_api {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;

  /* Logging. The host adds the plugin name. Never pass secrets. */
  void (*log)(rg_host_plugin* p, rg_log_level level, rg_str msg);
  int (*log_enabled)(rg_host_plugin* p, rg_log_level level);
  /* Detail for the status a hook is about to return; kept until the hook returns. */
  void (*set_error)(rg_host_plugin* p, rg_str msg);

  /* Clocks (tests may inject them). */
  uint64_t (*now_unix_ms)(void);
  uint64_t (*monotonic_ns)(void);

  /* Sinks. An upstream-request sink takes sink_start(sink, 0, method, url); a response sink takes
   * sink_start(sink, status, {0}, {0}). Headers and bytes are copied. */
  void (*sink_start)(rg_host_sink* s, uint32_t http_status, rg_str method, rg_str url);
  void (*sink_header)(rg_host_sink* s, rg_str name, rg_str value);
  void (*sink_append)(rg_host_sink* s, rg_str bytes);
  /* On a replacement sink (on_sse_event / on_body_chunk): drop the event or chunk entirely. */
  void (*sink_discard)(rg_host_sink* s);

  /* Per-request state. THREADING: only from hooks of that stream. */
  void (*report_usage)(rg_host_stream* st, const rg_usage* usage);
  void (*stream_set_data)(rg_host_stream* st,
                          void* data); /* plugin-owned; free in on_stream_done */
  void* (*stream_get_data)(rg_host_stream* st);

  /* Plugin key-value state in the gateway's storage, namespaced per plugin. `on_value` runs inline,
   * before kv_get returns, with a view valid only during the callback. ttl_ms 0 = no expiry. */
  rg_status (*kv_get)(rg_host_plugin* p, rg_str key, void* user,
                      void (*on_value)(void* user, rg_str value));
  rg_status (*kv_set)(rg_host_plugin* p, rg_str key, rg_str value, uint64_t ttl_ms);
  rg_status (*kv_del)(rg_host_plugin* p, rg_str key);

  /* Metrics: exported as relaygate_plugin_<plugin>_<name>_total. */
  void (*counter_add)(rg_host_plugin* p, rg_str name, uint64_t delta);

  /* Crypto helpers. */
  void (*sha256)(rg_str msg, uint8_t out[32]);
  void (*hmac_sha256)(rg_str key, rg_str msg, uint8_t out[32]);
  /* Writes base64 (standard alphabet, padded) of `in` into `out`; returns the length needed.
   * Nothing is written when `cap` is too small. */
  size_t (*base64_encode)(rg_str in, char* out, size_t cap);

  /* Outbound HTTP, blocking (notifiers call it from their own threads). `on_response` runs inline
   * before http_call returns. Returns RG_E_UNAVAILABLE when no response was received. */
  rg_status (*http_call)(rg_host_plugin* p, const rg_http_request* req, void* user,
                         void (*on_response)(void* user, uint32_t status, const rg_header* headers,
                                             size_t header_count, rg_str body));
  /* minor 1+: append below this line only */
} rg_host_api;

/* ---------------------------------------------------------------------------------------------- */
/* Provider plugins                                                                               */

typedef struct rg_provider_vtable {
  uint32_t struct_size; /* = sizeof(rg_provider_vtable) as compiled by the plugin */

  /* REQUIRED. Called once at start-up on the main thread. `config_json` is the plugin's config
   * subtree as JSON ("{}" when none). `host` stays valid until destroy(). */
  rg_status (*create)(rg_host_plugin* p, const rg_host_api* host, rg_str config_json,
                      rg_instance* out);
  /* REQUIRED. Called once at shutdown after every stream is done. */
  void (*destroy)(rg_instance inst);
  /* REQUIRED. The routes; the array and its strings are plugin-owned and stay valid. */
  rg_status (*declare_routes)(rg_instance inst, const rg_route** out, size_t* out_count);

  /* Optional. Learn model / stream flag / session key from the request before scheduling.
   * RG_E_INVALID_ARG -> the host answers 400 with the set_error message. */
  rg_status (*parse_request)(rg_instance inst, rg_host_stream* st, const rg_request* req,
                             rg_request_meta* out);
  /* REQUIRED when a RELAY route is declared. Write the upstream request for `account` into
   * `upstream_out` (sink_start with method and absolute URL, headers, body). */
  rg_status (*transform_request)(rg_instance inst, rg_host_stream* st, const rg_request* req,
                                 const rg_account* account, rg_host_sink* upstream_out);
  /* Optional. Upstream status and headers arrived. Write the client's status and headers to
   * `downstream_out`; NULL hook = host forwards status and end-to-end headers unchanged. */
  rg_status (*on_response_headers)(rg_instance inst, rg_host_stream* st, uint32_t status,
                                   const rg_header* headers, size_t header_count,
                                   rg_host_sink* downstream_out);
  /* Optional. One SSE event of a text/event-stream response. Append nothing to `replacement` to
   * forward the raw bytes unchanged; append bytes to send those instead; sink_discard to drop. */
  rg_status (*on_sse_event)(rg_instance inst, rg_host_stream* st, const rg_sse_event* ev,
                            rg_host_sink* replacement);
  /* Optional. A chunk of a non-SSE response body, as it arrives; the last call has
   * end_of_stream != 0 (possibly with an empty chunk). Same replacement rule as on_sse_event. */
  rg_status (*on_body_chunk)(rg_instance inst, rg_host_stream* st, rg_str chunk,
                             int32_t end_of_stream, rg_host_sink* replacement);
  /* Optional. Classify an upstream error response (status >= 400) of the request on `st` (so the
   * plugin can use what it learnt from the request, e.g. the model family); `body` holds up to
   * 64 KiB of it; `out` arrives pre-filled with the host default. NULL hook = host default. */
  void (*classify_error)(rg_instance inst, rg_host_stream* st, uint32_t status,
                         const rg_header* headers, size_t header_count, rg_str body,
                         rg_error_info* out);
  /* Optional. Answer a LOCAL route: write status, headers and body to `response_out`. */
  rg_status (*handle_local)(rg_instance inst, rg_host_stream* st, const rg_request* req,
                            rg_host_sink* response_out);
  /* Optional. Exactly once per stream on which any hook ran, also on abort and error. */
  void (*on_stream_done)(rg_instance inst, rg_host_stream* st);
  /* minor 1+: append below this line only */
} rg_provider_vtable;

/* ---------------------------------------------------------------------------------------------- */
/* Notifier plugins                                                                               */

typedef struct rg_notifier_vtable {
  uint32_t struct_size;
  /* REQUIRED. As for providers. */
  rg_status (*create)(rg_host_plugin* p, const rg_host_api* host, rg_str config_json,
                      rg_instance* out);
  /* REQUIRED. */
  void (*destroy)(rg_instance inst);
  /* REQUIRED. Deliver one event. THREADING: called on the host's notifier thread for this plugin,
   * never on a request thread, one event at a time. RG_E_UNAVAILABLE = retry later. */
  rg_status (*on_event)(rg_instance inst, const rg_event* ev);
  /* minor 1+: append below this line only */
} rg_notifier_vtable;

/* ---------------------------------------------------------------------------------------------- */
/* The manifest: static data, read before any plugin code is called.                              */

typedef struct rg_plugin_manifest {
  uint32_t struct_size;    /* = sizeof(rg_plugin_manifest) */
  uint16_t abi_major;      /* RG_ABI_MAJOR the plugin was built against */
  uint16_t abi_minor;      /* RG_ABI_MINOR the plugin was built against */
  uint16_t min_host_minor; /* the oldest host minor whose services the plugin needs */
  uint16_t kind;           /* rg_plugin_kind */
  const char* name;        /* [a-z0-9_-]+, unique among loaded plugins */
  const char* version;     /* the plugin's own version, free form ("1.2.0") */
  const char* description; /* one line */
  const void* vtable;      /* const rg_provider_vtable* or const rg_notifier_vtable* per `kind` */
} rg_plugin_manifest;

/* The one exported symbol name. A plugin defines:
 *   RG_EXPORT const rg_plugin_manifest rg_plugin_manifest_v1 = { ... };  */
#define RG_MANIFEST_SYMBOL "rg_plugin_manifest_v1"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RELAYGATE_ABI_H */
