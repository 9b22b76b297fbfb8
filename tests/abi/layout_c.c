/* The ABI layout as a C compiler sees it: compile-time checks against the golden values, plus a
 * runtime count the C++ test reads (so a C build that silently skipped the checks fails too). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layout_golden.h"
#include "relaygate/abi.h"

#define S(T, size, align)                                                                        \
  _Static_assert(sizeof(T) == (size), "sizeof(" #T ")");                                         \
  _Static_assert(_Alignof(T) == (align), "alignof(" #T ")");
#define F(T, field, off) _Static_assert(offsetof(T, field) == (off), "offsetof(" #T "." #field ")");
#define E(T, size) _Static_assert(sizeof(T) == (size), "sizeof(enum " #T ")");
RG_LAYOUT_SIZES(S)
RG_LAYOUT_FIELDS(F)
RG_LAYOUT_ENUMS(E)
#undef S
#undef F
#undef E

int rg_layout_checks_c(int* mismatches);

/* Returns how many checks ran; *mismatches gets how many failed at run time. */
int rg_layout_checks_c(int* mismatches) {
  int n = 0;
  int bad = 0;
#define S(T, size, align)                                                                        \
  ++n;                                                                                           \
  bad += sizeof(T) != (size) || _Alignof(T) != (align);
#define F(T, field, off)                                                                         \
  ++n;                                                                                           \
  bad += offsetof(T, field) != (off);
#define E(T, size)                                                                               \
  ++n;                                                                                           \
  bad += sizeof(T) != (size);
#define V(name, value)                                                                           \
  ++n;                                                                                           \
  bad += (long long)(name) != (long long)(value);
  RG_LAYOUT_SIZES(S)
  RG_LAYOUT_FIELDS(F)
  RG_LAYOUT_ENUMS(E)
  RG_LAYOUT_VALUES(V)
  {
    /* RG_HAS: a table whose struct_size ends before a slot does not have it. */
    rg_host_api api;
    memset(&api, 0, sizeof(api));
    api.struct_size = (uint32_t)offsetof(rg_host_api, sha256);
    api.counter_add = (void (*)(rg_host_plugin*, rg_str, uint64_t))0;
    ++n;
    bad += RG_HAS(&api, counter_add) != 0; /* present by size but NULL */
    ++n;
    bad += RG_HAS(&api, http_call) != 0; /* beyond struct_size */
  }
  {
    /* RG_HAS_FIELD: a minor-1 host's rg_request_meta (48 bytes) has no minor-2 field. */
    rg_request_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.struct_size = (uint32_t)offsetof(rg_request_meta, max_output_tokens);
    ++n;
    bad += RG_HAS_FIELD(&meta, max_output_tokens) != 0;
    meta.struct_size = (uint32_t)sizeof(meta);
    ++n;
    bad += RG_HAS_FIELD(&meta, input_tokens_estimate) == 0;
  }
  *mismatches = bad;
  return n;
}
