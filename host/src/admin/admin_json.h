#pragma once
// JSON answers shared by the admin routes (admin_api.cpp, usage_routes.cpp): one writer type, one
// way to build a body, one error shape {"error": {"type", "message"}}.

#include <string>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "admin/admin_api.h"
#include "common/status.h"

namespace rg::adminjson {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Builds a JSON body with a writer; the callback writes exactly one value.
template <typename Fn>
AdminResponse jsonResponse(int status, Fn&& fn) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  fn(w);
  AdminResponse r;
  r.status = status;
  r.body.assign(sb.GetString(), sb.GetSize());
  return r;
}

inline void str(Writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// The HTTP status for a Status code: 400, 401, 404, 409, 503 or 500.
int httpStatusOf(Code c);
// {"error":{"type":<by status>,"message":...}}.
AdminResponse errorResponse(int status, const std::string& message);
// The same for a Status; internal failures (500) are also logged.
AdminResponse errorResponse(const Status& s);

}  // namespace rg::adminjson
