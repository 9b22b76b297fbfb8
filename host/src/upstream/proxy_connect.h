#pragma once
// Outbound proxies for upstream calls: opens a TCP tunnel to host:port through an HTTP CONNECT or
// SOCKS5 proxy. The caller then speaks HTTP (or TLS, verified against the TARGET name) over the
// returned socket exactly as over a direct connection.

#include <cstdint>
#include <string>
#include <string_view>

#include <Poco/Net/StreamSocket.h>

#include "common/status.h"

namespace rg {

struct ProxySpec {
  enum class Kind { kHttpConnect, kSocks5 };
  Kind kind = Kind::kHttpConnect;
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
  std::string user;  // percent-decoded; "" = no authentication
  std::string password;
  // scheme://[user@]host:port, never with a password: safe for logs and error messages.
  std::string display;
  // display + a digest of the password: separates pooled connections made with different
  // credentials without keeping the password in clear in the pool.
  std::string poolKey;
};

// Parses "http://[user@]host:port", "socks5://..." or "socks5h://..." (both SOCKS variants
// resolve the target at the proxy). A password in the URL ("user:pw@") is accepted when
// `password` is empty but never shown in display. kInvalidArgument for anything else.
StatusOr<ProxySpec> parseProxyUrl(std::string_view url, std::string_view password);

// Connects to the proxy and asks it for a tunnel to host:port. Everything (TCP connect and the
// proxy handshake) must finish by deadlineMs (steady clock, ms). Errors: kUnavailable (proxy
// unreachable or refused, with the proxy's reason), kDeadlineExceeded (timeout). Messages name
// the proxy by its display form and never contain the password.
StatusOr<Poco::Net::StreamSocket> openProxyTunnel(const ProxySpec& proxy, const std::string& host,
                                                  uint16_t port, int64_t deadlineMs);

// Steady-clock milliseconds, the clock of deadlineMs.
int64_t proxyClockMs();

}  // namespace rg
