// The ABI layout as a C++ compiler sees it, plus the C compiler's view (layout_c.c).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <gtest/gtest.h>

#include "layout_golden.h"
#include "relaygate/abi.h"

extern "C" int rg_layout_checks_c(int* mismatches);

namespace rgtest {
namespace {

#define S(T, size, align)                               \
  static_assert(sizeof(T) == (size), "sizeof(" #T ")"); \
  static_assert(alignof(T) == (align), "alignof(" #T ")");
#define F(T, field, off) static_assert(offsetof(T, field) == (off), "offsetof(" #T "." #field ")");
#define E(T, size) static_assert(sizeof(T) == (size), "sizeof(enum " #T ")");
#define V(name, value) static_assert(static_cast<long long>(name) == (value), #name);
RG_LAYOUT_SIZES(S)
RG_LAYOUT_FIELDS(F)
RG_LAYOUT_ENUMS(E)
RG_LAYOUT_VALUES(V)
#undef S
#undef F
#undef E
#undef V

TEST(AbiLayout, CppMatchesGolden) {
  int checked = 0;
#define S(T, size, align)                                \
  ++checked;                                             \
  EXPECT_EQ(sizeof(T), static_cast<size_t>(size)) << #T; \
  EXPECT_EQ(alignof(T), static_cast<size_t>(align)) << #T;
#define F(T, field, off) \
  ++checked;             \
  EXPECT_EQ(offsetof(T, field), static_cast<size_t>(off)) << #T "." #field;
  RG_LAYOUT_SIZES(S)
  RG_LAYOUT_FIELDS(F)
#undef S
#undef F
  EXPECT_EQ(checked, 15 + 115);
}

TEST(AbiLayout, CMatchesGolden) {
  int mismatches = -1;
  int checked = rg_layout_checks_c(&mismatches);
  EXPECT_EQ(mismatches, 0);
  // sizes + fields + enums + values + 2 RG_HAS + 2 RG_HAS_FIELD checks: all ran in the C
  // translation unit.
  EXPECT_EQ(checked, 15 + 115 + 6 + 32 + 2 + 2);
}

TEST(AbiLayout, RgHasRespectsStructSizeAndNull) {
  rg_provider_vtable vt;
  std::memset(&vt, 0, sizeof(vt));
  vt.struct_size = static_cast<uint32_t>(offsetof(rg_provider_vtable, on_sse_event));
  vt.on_response_headers = [](rg_instance, rg_host_stream*, uint32_t, const rg_header*, size_t,
                              rg_host_sink*) { return RG_OK; };
  vt.on_sse_event = [](rg_instance, rg_host_stream*, const rg_sse_event*, rg_host_sink*) {
    return RG_OK;
  };
  EXPECT_TRUE(RG_HAS(&vt, on_response_headers));
  EXPECT_FALSE(RG_HAS(&vt, on_sse_event));  // set, but beyond the declared size
  EXPECT_FALSE(RG_HAS(&vt, on_body_chunk));
  const rg_provider_vtable* none = nullptr;
  EXPECT_FALSE(RG_HAS(none, create));
}

TEST(AbiLayout, RequestMetaMinorTwoFieldsNeedTheirSize) {
  rg_request_meta meta;
  std::memset(&meta, 0, sizeof(meta));
  // A minor-1 host hands exactly the v1.0 struct: 48 bytes, no room for the minor-2 fields.
  meta.struct_size = static_cast<uint32_t>(offsetof(rg_request_meta, max_output_tokens));
  EXPECT_EQ(meta.struct_size, 48u);
  EXPECT_TRUE(RG_HAS_FIELD(&meta, session_key));
  EXPECT_FALSE(RG_HAS_FIELD(&meta, max_output_tokens));
  EXPECT_FALSE(RG_HAS_FIELD(&meta, input_tokens_estimate));
  // Room for the first minor-2 field only.
  meta.struct_size = static_cast<uint32_t>(offsetof(rg_request_meta, input_tokens_estimate));
  EXPECT_TRUE(RG_HAS_FIELD(&meta, max_output_tokens));
  EXPECT_FALSE(RG_HAS_FIELD(&meta, input_tokens_estimate));
  meta.struct_size = static_cast<uint32_t>(sizeof(meta));
  EXPECT_TRUE(RG_HAS_FIELD(&meta, input_tokens_estimate));
}

}  // namespace
}  // namespace rgtest
