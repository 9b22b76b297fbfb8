#pragma once
// The ABI views the host hands a provider plugin, built the same way by the gateway's relay and
// by the account tester. Every rg_str borrows from the arguments: they must outlive the hook call.

#include <string>
#include <utility>
#include <vector>

#include "relaygate/abi.h"
#include "storage/store.h"

namespace rg {

inline rg_str abiView(const std::string& s) {
  return rg_str{s.data(), s.size()};
}

// The headers as rg_header views (into `headers`).
inline std::vector<rg_header> abiHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<rg_header> out;
  out.reserve(headers.size());
  for (const auto& h : headers) {
    out.push_back(rg_header{abiView(h.first), abiView(h.second)});
  }
  return out;
}

// A request for `routeId`; key_id / key_name are left empty for the caller to set.
inline rg_request abiRequest(uint32_t routeId, const std::string& method, const std::string& path,
                             const std::string& query, const std::vector<rg_header>& headers,
                             const std::string& body, const std::string& requestId) {
  rg_request rq{};
  rq.struct_size = sizeof rq;
  rq.route_id = routeId;
  rq.method = abiView(method);
  rq.path = abiView(path);
  rq.query = abiView(query);
  rq.headers = headers.data();
  rq.header_count = headers.size();
  rq.body = abiView(body);
  rq.request_id = abiView(requestId);
  return rq;
}

// The account a request goes to, with its opened credential; `upstreamModel` is empty when the
// requested model is sent as is.
inline rg_account abiAccount(const AccountRecord& rec, const std::string& secret,
                             const std::string& upstreamModel) {
  rg_account ra{};
  ra.struct_size = sizeof ra;
  ra.id = abiView(rec.id);
  ra.name = abiView(rec.name);
  ra.type = abiView(rec.type);
  ra.base_url = abiView(rec.baseUrl);
  ra.secret = abiView(secret);
  ra.upstream_model = abiView(upstreamModel);
  ra.settings_json = abiView(rec.settingsJson);
  return ra;
}

}  // namespace rg
