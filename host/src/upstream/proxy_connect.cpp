#include "upstream/proxy_connect.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <Poco/Exception.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>

#include "crypto/crypto.h"

namespace rg {

namespace {

constexpr size_t kMaxConnectHead = 16 * 1024;

// Proxy-supplied text in our error messages: printable ASCII only, bounded.
std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

std::string authority(const std::string& host, uint16_t port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

// Socket I/O bounded by one deadline for the whole handshake. The socket is blocking; poll
// first so that no single call can outlive the deadline.
class HandshakeIo {
 public:
  HandshakeIo(int fd, int64_t deadlineMs, const ProxySpec& proxy)
      : fd_(fd), deadlineMs_(deadlineMs), proxy_(proxy) {}

  Status wait(short events) {
    for (;;) {
      int64_t left = deadlineMs_ - proxyClockMs();
      if (left <= 0) {
        return Status(Code::kDeadlineExceeded,
                      "proxy " + proxy_.display + " did not complete the handshake in time");
      }
      pollfd p{fd_, events, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60000)));
      if (r > 0) {
        return Status::ok();
      }
      if (r < 0 && errno != EINTR) {
        return unavailable(std::string("poll failed: ") + std::strerror(errno));
      }
    }
  }

  Status sendAll(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      Status s = wait(POLLOUT);
      if (!s) {
        return s;
      }
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
          continue;
        }
        return unavailable("proxy " + proxy_.display + " send failed: " + std::strerror(errno));
      }
      off += static_cast<size_t>(n);
    }
    return Status::ok();
  }

  // Receives up to cap bytes (at least one); flags may be MSG_PEEK.
  StatusOr<size_t> receiveSome(char* buf, size_t cap, int flags) {
    for (;;) {
      Status s = wait(POLLIN);
      if (!s) {
        return s;
      }
      ssize_t n = ::recv(fd_, buf, cap, flags | MSG_DONTWAIT);
      if (n > 0) {
        return static_cast<size_t>(n);
      }
      if (n == 0) {
        return unavailable("proxy " + proxy_.display +
                           " closed the connection during the handshake");
      }
      if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        return unavailable("proxy " + proxy_.display + " read failed: " + std::strerror(errno));
      }
    }
  }

  Status receiveExact(char* buf, size_t n) {
    size_t got = 0;
    while (got < n) {
      auto r = receiveSome(buf + got, n - got, 0);
      if (!r) {
        return r.status();
      }
      got += *r;
    }
    return Status::ok();
  }

 private:
  int fd_;
  int64_t deadlineMs_;
  const ProxySpec& proxy_;
};

Status httpConnect(HandshakeIo& io, const ProxySpec& proxy, const std::string& host,
                   uint16_t port) {
  std::string target = authority(host, port);
  std::string req = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n";
  if (!proxy.user.empty()) {
    req += "Proxy-Authorization: Basic " + crypto::base64Encode(proxy.user + ":" + proxy.password) +
           "\r\n";
  }
  req += "\r\n";
  Status s = io.sendAll(req);
  if (!s) {
    return s;
  }
  // Consume exactly the response head: whatever follows it belongs to the tunnel. Peek, then
  // take only up to the end of the head.
  std::string head;
  char buf[4096];
  for (;;) {
    auto n = io.receiveSome(buf, sizeof buf, MSG_PEEK);
    if (!n) {
      return n.status();
    }
    std::string_view peeked(buf, *n);
    // The terminator may straddle what we already took and what we peeked.
    size_t keep = std::min<size_t>(head.size(), 3);
    std::string window = head.substr(head.size() - keep) + std::string(peeked);
    size_t end = window.find("\r\n\r\n");
    size_t take = end == std::string::npos ? *n : end + 4 - keep;
    s = io.receiveExact(buf, take);
    if (!s) {
      return s;
    }
    head.append(buf, take);
    if (end != std::string::npos) {
      break;
    }
    if (head.size() > kMaxConnectHead) {
      return unavailable("proxy " + proxy.display + " sent an oversized CONNECT response");
    }
  }
  std::string_view line(head.data(), head.find("\r\n"));
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[8] != ' ') {
    return unavailable("proxy " + proxy.display +
                       " sent a malformed CONNECT response: " + sanitize(line));
  }
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      return unavailable("proxy " + proxy.display +
                         " sent a malformed CONNECT response: " + sanitize(line));
    }
    status = status * 10 + (line[i] - '0');
  }
  if (status < 200 || status > 299) {
    std::string reason = line.size() > 13 ? sanitize(line.substr(13)) : "";
    return unavailable("proxy refused CONNECT to " + target + ": " + std::to_string(status) +
                       (reason.empty() ? "" : " " + reason) + " (proxy " + proxy.display + ")");
  }
  return Status::ok();
}

const char* socksReplyText(unsigned rep) {
  switch (rep) {
    case 1:
      return "general SOCKS server failure";
    case 2:
      return "connection not allowed by the proxy's rules";
    case 3:
      return "network unreachable";
    case 4:
      return "host unreachable (or its name did not resolve at the proxy)";
    case 5:
      return "connection refused by the target";
    case 6:
      return "TTL expired";
    case 7:
      return "command not supported by the proxy";
    case 8:
      return "address type not supported by the proxy";
    default:
      return "unknown SOCKS error";
  }
}

Status socks5Connect(HandshakeIo& io, const ProxySpec& proxy, const std::string& host,
                     uint16_t port) {
  const std::string name = "socks5 proxy " + proxy.display;
  if (proxy.user.size() > 255 || proxy.password.size() > 255) {
    return invalidArgument(name + ": user name and password must be at most 255 bytes");
  }
  // Offer username/password only when we have one; the proxy may still choose no-auth.
  std::string greeting =
      proxy.user.empty() ? std::string("\x05\x01\x00", 3) : std::string("\x05\x02\x00\x02", 4);
  Status s = io.sendAll(greeting);
  if (!s) {
    return s;
  }
  unsigned char choice[2];
  s = io.receiveExact(reinterpret_cast<char*>(choice), 2);
  if (!s) {
    return s;
  }
  if (choice[0] != 5) {
    return unavailable(name + " is not a SOCKS5 proxy (version byte " + std::to_string(choice[0]) +
                       ")");
  }
  if (choice[1] == 0xFF) {
    return unavailable(name + (proxy.user.empty()
                                   ? " requires authentication (give a user and password)"
                                   : " accepts none of our authentication methods"));
  }
  if (choice[1] == 2 && !proxy.user.empty()) {
    std::string auth;
    auth.push_back('\x01');
    auth.push_back(static_cast<char>(proxy.user.size()));
    auth += proxy.user;
    auth.push_back(static_cast<char>(proxy.password.size()));
    auth += proxy.password;
    s = io.sendAll(auth);
    if (!s) {
      return s;
    }
    unsigned char verdict[2];
    s = io.receiveExact(reinterpret_cast<char*>(verdict), 2);
    if (!s) {
      return s;
    }
    if (verdict[1] != 0) {
      return unavailable(name + " rejected the user name or password for user \"" +
                         sanitize(proxy.user) + "\"");
    }
  } else if (choice[1] != 0) {
    return unavailable(name + " chose an authentication method we did not offer (" +
                       std::to_string(choice[1]) + ")");
  }

  // Connect request. The target goes as a domain name so the proxy resolves it (remote DNS,
  // also for socks5:// as the Node service did); IP literals go as addresses.
  std::string req("\x05\x01\x00", 3);
  unsigned char addr[16];
  if (::inet_pton(AF_INET, host.c_str(), addr) == 1) {
    req.push_back('\x01');
    req.append(reinterpret_cast<char*>(addr), 4);
  } else if (::inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    req.push_back('\x04');
    req.append(reinterpret_cast<char*>(addr), 16);
  } else {
    if (host.empty() || host.size() > 255) {
      return invalidArgument(name + ": target host name must be 1..255 bytes");
    }
    req.push_back('\x03');
    req.push_back(static_cast<char>(host.size()));
    req += host;
  }
  req.push_back(static_cast<char>(port >> 8));
  req.push_back(static_cast<char>(port & 0xFF));
  s = io.sendAll(req);
  if (!s) {
    return s;
  }
  unsigned char rep[4];
  s = io.receiveExact(reinterpret_cast<char*>(rep), 4);
  if (!s) {
    return s;
  }
  if (rep[0] != 5) {
    return unavailable(name + " sent a malformed reply");
  }
  if (rep[1] != 0) {
    return unavailable(name + " could not connect to " + authority(host, port) + ": " +
                       socksReplyText(rep[1]) + " (SOCKS reply " + std::to_string(rep[1]) + ")");
  }
  // Skip the bound address: IPv4, domain (length-prefixed) or IPv6, then the port.
  size_t rest = 0;
  if (rep[3] == 1) {
    rest = 4 + 2;
  } else if (rep[3] == 4) {
    rest = 16 + 2;
  } else if (rep[3] == 3) {
    unsigned char len = 0;
    s = io.receiveExact(reinterpret_cast<char*>(&len), 1);
    if (!s) {
      return s;
    }
    rest = static_cast<size_t>(len) + 2;
  } else {
    return unavailable(name + " sent a reply with an unknown address type");
  }
  char skip[300];
  return io.receiveExact(skip, rest);
}

}  // namespace

int64_t proxyClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

StatusOr<ProxySpec> parseProxyUrl(std::string_view url, std::string_view password) {
  // Never echo `url` in errors: a mistaken "user:password@" would leak.
  ProxySpec out;
  std::string scheme;
  size_t sep = url.find("://");
  if (sep != std::string_view::npos) {
    scheme = std::string(url.substr(0, sep));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  }
  if (scheme == "http") {
    out.kind = ProxySpec::Kind::kHttpConnect;
  } else if (scheme == "socks5" || scheme == "socks5h") {
    out.kind = ProxySpec::Kind::kSocks5;
  } else if (scheme == "https") {
    return invalidArgument(
        "proxy URL: https:// proxies (TLS to the proxy) are not supported; "
        "use an http:// CONNECT proxy or socks5://");
  } else {
    return invalidArgument("proxy URL must start with http://, socks5:// or socks5h://");
  }
  std::string_view rest = url.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  if (rest.find_first_of("/?#") != std::string_view::npos) {
    return invalidArgument("proxy URL: expected " + scheme + "://[user@]host:port");
  }
  size_t at = rest.rfind('@');
  std::string urlPassword;
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    size_t colon = userinfo.find(':');
    // User names may be percent-encoded in URLs ("me%40corp").
    out.user = crypto::percentDecode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) {
      urlPassword = crypto::percentDecode(userinfo.substr(colon + 1));
    }
    if (out.user.empty()) {
      return invalidArgument("proxy URL has an empty user name");
    }
    rest = rest.substr(at + 1);
  }
  std::string_view hostPart;
  std::string_view portPart;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return invalidArgument("proxy URL: expected " + scheme + "://[user@]host:port");
    }
    hostPart = rest.substr(1, close - 1);
    portPart = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return invalidArgument("proxy URL needs a port: " + scheme + "://[user@]host:port");
    }
    hostPart = rest.substr(0, colon);
    portPart = rest.substr(colon + 1);
  }
  uint32_t p = 0;
  for (char c : portPart) {
    if (c < '0' || c > '9' || p > 65535) {
      return invalidArgument("proxy URL has a malformed port");
    }
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (hostPart.empty() || portPart.empty() || p == 0 || p > 65535) {
    return invalidArgument("proxy URL: expected " + scheme + "://[user@]host:port");
  }
  out.host = std::string(hostPart);
  out.port = static_cast<uint16_t>(p);
  out.password = password.empty() ? urlPassword : std::string(password);
  out.display = scheme + "://" + (out.user.empty() ? "" : sanitize(out.user) + "@") +
                authority(out.host, out.port);
  // The digest is salted with the user so equal passwords of different users differ too; only
  // its prefix is kept (it identifies, it does not need to resist anything).
  out.poolKey =
      out.display + "#" +
      crypto::toHex(crypto::sha256("relaygate proxy pool\n" + out.user + "\n" + out.password))
          .substr(0, 16);
  return out;
}

StatusOr<Poco::Net::StreamSocket> openProxyTunnel(const ProxySpec& proxy, const std::string& host,
                                                  uint16_t port, int64_t deadlineMs) {
  Poco::Net::StreamSocket sock;
  try {
    Poco::Net::SocketAddress addr(proxy.host, proxy.port);
    int64_t left = std::max<int64_t>(deadlineMs - proxyClockMs(), 1);
    sock.connect(addr, Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(left) * 1000));
  } catch (const Poco::TimeoutException&) {
    return Status(Code::kDeadlineExceeded, "connecting to proxy " + proxy.display + " timed out");
  } catch (const Poco::Exception& e) {
    return unavailable("cannot connect to proxy " + proxy.display + ": " + e.displayText());
  } catch (const std::exception& e) {
    return unavailable("cannot connect to proxy " + proxy.display + ": " + e.what());
  }
  HandshakeIo io(static_cast<int>(sock.impl()->sockfd()), deadlineMs, proxy);
  Status s = proxy.kind == ProxySpec::Kind::kHttpConnect ? httpConnect(io, proxy, host, port)
                                                         : socks5Connect(io, proxy, host, port);
  if (!s) {
    try {
      sock.close();
    } catch (...) {
    }
    return s;
  }
  return sock;
}

}  // namespace rg
