/* Golden layout of every ABI struct on x86_64 (LP64, SysV). Recorded from abi.h v1.0 (minor 1:
 * rg_account.upstream_model/settings_json; minor 2: rg_request_meta.max_output_tokens/
 * input_tokens_estimate, rg_request_meta grew from 48 to 64 bytes); a change
 * here is an ABI break unless it only appends at the end of a struct that starts with
 * struct_size (then add the new lines, never edit old ones). Included by C and C++ tests.
 *   S(type, sizeof, alignof)   F(type, field, offsetof)   E(enum type, sizeof)            */
#ifndef RG_TEST_LAYOUT_GOLDEN_H
#define RG_TEST_LAYOUT_GOLDEN_H

#define RG_LAYOUT_SIZES(S)     \
  S(rg_str, 16, 8)             \
  S(rg_header, 32, 8)          \
  S(rg_route, 96, 8)           \
  S(rg_request, 136, 8)        \
  S(rg_request_meta, 64, 8)    \
  S(rg_account, 120, 8)        \
  S(rg_usage, 64, 8)           \
  S(rg_sse_event, 56, 8)       \
  S(rg_error_info, 56, 8)      \
  S(rg_http_request, 80, 8)    \
  S(rg_event, 64, 8)           \
  S(rg_host_api, 168, 8)       \
  S(rg_provider_vtable, 96, 8) \
  S(rg_notifier_vtable, 32, 8) \
  S(rg_plugin_manifest, 48, 8)

#define RG_LAYOUT_FIELDS(F)                      \
  F(rg_str, ptr, 0)                              \
  F(rg_str, len, 8)                              \
  F(rg_header, name, 0)                          \
  F(rg_header, value, 16)                        \
  F(rg_route, struct_size, 0)                    \
  F(rg_route, method, 8)                         \
  F(rg_route, path, 24)                          \
  F(rg_route, route_id, 40)                      \
  F(rg_route, kind, 44)                          \
  F(rg_route, shape, 48)                         \
  F(rg_route, permission, 56)                    \
  F(rg_route, account_types, 72)                 \
  F(rg_route, flags, 88)                         \
  F(rg_request, struct_size, 0)                  \
  F(rg_request, route_id, 4)                     \
  F(rg_request, method, 8)                       \
  F(rg_request, path, 24)                        \
  F(rg_request, query, 40)                       \
  F(rg_request, headers, 56)                     \
  F(rg_request, header_count, 64)                \
  F(rg_request, body, 72)                        \
  F(rg_request, request_id, 88)                  \
  F(rg_request, key_id, 104)                     \
  F(rg_request, key_name, 120)                   \
  F(rg_request_meta, struct_size, 0)             \
  F(rg_request_meta, model, 8)                   \
  F(rg_request_meta, stream, 24)                 \
  F(rg_request_meta, session_key, 32)            \
  F(rg_request_meta, max_output_tokens, 48)      \
  F(rg_request_meta, input_tokens_estimate, 56)  \
  F(rg_account, struct_size, 0)                  \
  F(rg_account, id, 8)                           \
  F(rg_account, name, 24)                        \
  F(rg_account, type, 40)                        \
  F(rg_account, base_url, 56)                    \
  F(rg_account, secret, 72)                      \
  F(rg_account, upstream_model, 88)              \
  F(rg_account, settings_json, 104)              \
  F(rg_usage, struct_size, 0)                    \
  F(rg_usage, input_tokens, 8)                   \
  F(rg_usage, output_tokens, 16)                 \
  F(rg_usage, cache_creation_5m_tokens, 24)      \
  F(rg_usage, cache_creation_1h_tokens, 32)      \
  F(rg_usage, cache_read_tokens, 40)             \
  F(rg_usage, model, 48)                         \
  F(rg_sse_event, struct_size, 0)                \
  F(rg_sse_event, raw, 8)                        \
  F(rg_sse_event, event, 24)                     \
  F(rg_sse_event, data, 40)                      \
  F(rg_error_info, struct_size, 0)               \
  F(rg_error_info, cls, 4)                       \
  F(rg_error_info, retry_after_ms, 8)            \
  F(rg_error_info, until_unix_ms, 16)            \
  F(rg_error_info, scope, 24)                    \
  F(rg_error_info, reason, 40)                   \
  F(rg_http_request, struct_size, 0)             \
  F(rg_http_request, method, 8)                  \
  F(rg_http_request, url, 24)                    \
  F(rg_http_request, headers, 40)                \
  F(rg_http_request, header_count, 48)           \
  F(rg_http_request, body, 56)                   \
  F(rg_http_request, timeout_ms, 72)             \
  F(rg_event, struct_size, 0)                    \
  F(rg_event, type, 8)                           \
  F(rg_event, json, 24)                          \
  F(rg_event, unix_ms, 40)                       \
  F(rg_event, id, 48)                            \
  F(rg_host_api, struct_size, 0)                 \
  F(rg_host_api, abi_major, 4)                   \
  F(rg_host_api, abi_minor, 6)                   \
  F(rg_host_api, log, 8)                         \
  F(rg_host_api, log_enabled, 16)                \
  F(rg_host_api, set_error, 24)                  \
  F(rg_host_api, now_unix_ms, 32)                \
  F(rg_host_api, monotonic_ns, 40)               \
  F(rg_host_api, sink_start, 48)                 \
  F(rg_host_api, sink_header, 56)                \
  F(rg_host_api, sink_append, 64)                \
  F(rg_host_api, sink_discard, 72)               \
  F(rg_host_api, report_usage, 80)               \
  F(rg_host_api, stream_set_data, 88)            \
  F(rg_host_api, stream_get_data, 96)            \
  F(rg_host_api, kv_get, 104)                    \
  F(rg_host_api, kv_set, 112)                    \
  F(rg_host_api, kv_del, 120)                    \
  F(rg_host_api, counter_add, 128)               \
  F(rg_host_api, sha256, 136)                    \
  F(rg_host_api, hmac_sha256, 144)               \
  F(rg_host_api, base64_encode, 152)             \
  F(rg_host_api, http_call, 160)                 \
  F(rg_provider_vtable, struct_size, 0)          \
  F(rg_provider_vtable, create, 8)               \
  F(rg_provider_vtable, destroy, 16)             \
  F(rg_provider_vtable, declare_routes, 24)      \
  F(rg_provider_vtable, parse_request, 32)       \
  F(rg_provider_vtable, transform_request, 40)   \
  F(rg_provider_vtable, on_response_headers, 48) \
  F(rg_provider_vtable, on_sse_event, 56)        \
  F(rg_provider_vtable, on_body_chunk, 64)       \
  F(rg_provider_vtable, classify_error, 72)      \
  F(rg_provider_vtable, handle_local, 80)        \
  F(rg_provider_vtable, on_stream_done, 88)      \
  F(rg_notifier_vtable, struct_size, 0)          \
  F(rg_notifier_vtable, create, 8)               \
  F(rg_notifier_vtable, destroy, 16)             \
  F(rg_notifier_vtable, on_event, 24)            \
  F(rg_plugin_manifest, struct_size, 0)          \
  F(rg_plugin_manifest, abi_major, 4)            \
  F(rg_plugin_manifest, abi_minor, 6)            \
  F(rg_plugin_manifest, min_host_minor, 8)       \
  F(rg_plugin_manifest, kind, 10)                \
  F(rg_plugin_manifest, name, 16)                \
  F(rg_plugin_manifest, version, 24)             \
  F(rg_plugin_manifest, description, 32)         \
  F(rg_plugin_manifest, vtable, 40)

#define RG_LAYOUT_ENUMS(E) \
  E(rg_status, 4)          \
  E(rg_log_level, 4)       \
  E(rg_plugin_kind, 4)     \
  E(rg_error_shape, 4)     \
  E(rg_error_class, 4)     \
  E(rg_route_kind, 4)

#define RG_LAYOUT_VALUES(V)                                                                        \
  V(RG_OK, 0)                                                                                      \
  V(RG_E_INVALID_ARG, 1) V(RG_E_NOT_FOUND, 2) V(RG_E_UNSUPPORTED, 3) V(RG_E_CAS_MISMATCH, 4)       \
      V(RG_E_INTERNAL, 5) V(RG_E_UNAVAILABLE, 6) V(RG_LOG_TRACE, 0) V(RG_LOG_DEBUG, 1)             \
          V(RG_LOG_INFO, 2) V(RG_LOG_WARN, 3) V(RG_LOG_ERROR, 4) V(RG_KIND_PROVIDER, 1)            \
              V(RG_KIND_NOTIFIER, 2) V(RG_SHAPE_ANTHROPIC, 0) V(RG_SHAPE_OPENAI, 1)                \
                  V(RG_SHAPE_GEMINI, 2) V(RG_EC_NONE, 0) V(RG_EC_CLIENT, 1)                        \
                      V(RG_EC_CONTEXT_TOO_LONG, 2) V(RG_EC_RATE_LIMITED, 3) V(RG_EC_OVERLOADED, 4) \
                          V(RG_EC_TRANSIENT, 5) V(RG_EC_AUTH, 6) V(RG_EC_QUOTA_EXHAUSTED, 7)       \
                              V(RG_EC_BLOCKED, 8) V(RG_ROUTE_RELAY, 0) V(RG_ROUTE_LOCAL, 1)        \
                                  V(RG_ROUTE_NO_AUTH, 1) V(RG_ROUTE_SKIP_CONCURRENCY, 2)           \
                                      V(RG_ABI_MAJOR, 1) V(RG_ABI_MINOR, 2)

#endif
