#include "upstream/http_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include "upstream/proxy_connect.h"

namespace rg {

namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;
constexpr size_t kReadChunk = 32 * 1024;  // on the stack of a relay thread (256 KiB)

int64_t nowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool containsToken(std::string_view list, std::string_view token) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string_view part = trim(list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (iequals(part, token)) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  return false;
}

Poco::Net::Context::Ptr clientContext(bool verify) {
  static Poco::Net::Context::Ptr verified;
  static Poco::Net::Context::Ptr unverified;
  static std::once_flag once;
  std::call_once(once, [] {
    verified = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", "",
                                      Poco::Net::Context::VERIFY_RELAXED, 9, true);
    unverified = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", "",
                                        Poco::Net::Context::VERIFY_NONE, 9, false);
  });
  return verify ? verified : unverified;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

const std::string* findHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequals(h.first, name)) {
      return &h.second;
    }
  }
  return nullptr;
}

std::string ParsedUrl::hostHeader() const {
  bool defaultPort = (tls && port == 443) || (!tls && port == 80);
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return defaultPort ? h : h + ":" + std::to_string(port);
}

std::string ParsedUrl::poolKey() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

StatusOr<ParsedUrl> parseUrl(std::string_view url) {
  ParsedUrl out;
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
    out.port = 80;
  } else if (url.substr(0, 8) == "https://") {
    rest = url.substr(8);
    out.tls = true;
    out.port = 443;
  } else {
    return invalidArgument("upstream URL must start with http:// or https://");
  }
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    return invalidArgument("upstream URL has no host (or has credentials in it)");
  }
  std::string_view hostPart = authority;
  std::string_view portPart;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return invalidArgument("upstream URL has a malformed IPv6 host");
    }
    hostPart = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        return invalidArgument("upstream URL has a malformed port");
      }
      portPart = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      hostPart = authority.substr(0, colon);
      portPart = authority.substr(colon + 1);
    }
  }
  if (!portPart.empty()) {
    uint32_t p = 0;
    for (char c : portPart) {
      if (c < '0' || c > '9' || p > 65535) {
        return invalidArgument("upstream URL has a malformed port");
      }
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p == 0 || p > 65535) {
      return invalidArgument("upstream URL port out of range");
    }
    out.port = static_cast<uint16_t>(p);
  }
  out.host = std::string(hostPart);
  out.target = target.front() == '?' ? "/" + std::string(target) : std::string(target);
  return out;
}

bool ClientWatch::checkGone() {
  if (fd_ < 0 || gone_) {
    return gone_;
  }
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) {
    gone_ = true;
  } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    gone_ = true;
  } else if (n > 0) {
    fd_ = -1;  // a live client sent more (pipelining); stop watching, it is not gone
  }
  return gone_;
}

// ---- Connection --------------------------------------------------------------------------------

class Connection {
 public:
  Connection(std::string key, std::unique_ptr<Poco::Net::StreamSocket> sock, bool tls)
      : key_(std::move(key)), sock_(std::move(sock)), tls_(tls) {}
  ~Connection() { close(); }

  const std::string& key() const { return key_; }
  int fd() const { return sock_ ? static_cast<int>(sock_->impl()->sockfd()) : -1; }
  bool tls() const { return tls_; }
  int64_t idleSinceMs = 0;

  // Bytes the TLS layer already decrypted (no poll needed before reading them).
  int pending() {
    if (!tls_ || !sock_) {
      return 0;
    }
    try {
      return sock_->available();
    } catch (...) {
      return 0;
    }
  }

  Status sendAll(const char* data, size_t len) {
    try {
      while (len > 0) {
        int n = sock_->sendBytes(data, static_cast<int>(std::min<size_t>(len, 1 << 30)));
        if (n <= 0) {
          return unavailable("upstream connection closed while sending");
        }
        data += n;
        len -= static_cast<size_t>(n);
      }
      return Status::ok();
    } catch (const Poco::Exception& e) {
      return unavailable("upstream send failed: " + e.displayText());
    }
  }

  // One recv; returns bytes read, 0 on EOF, -1 on error (message in err).
  int receive(char* buf, int cap, std::string* err) {
    try {
      return sock_->receiveBytes(buf, cap);
    } catch (const Poco::TimeoutException&) {
      *err = "upstream read timed out";
      return -2;
    } catch (const Poco::Exception& e) {
      *err = "upstream read failed: " + e.displayText();
      return -1;
    }
  }

  // True when an idle pooled connection is still usable (nothing readable = no EOF, no junk).
  bool idleHealthy() {
    if (pending() > 0) {
      return false;
    }
    struct pollfd p {
      fd(), POLLIN, 0
    };
    int r = ::poll(&p, 1, 0);
    return r == 0;
  }

  void close() {
    if (sock_) {
      try {
        sock_->close();
      } catch (...) {
      }
      sock_.reset();
    }
  }

 private:
  std::string key_;
  std::unique_ptr<Poco::Net::StreamSocket> sock_;
  bool tls_;
};

// ---- UpstreamCall ------------------------------------------------------------------------------

UpstreamCall::UpstreamCall(UpstreamClient* owner, std::unique_ptr<Connection> conn, bool reused,
                           CallOptions opts, bool headRequest)
    : owner_(owner),
      conn_(std::move(conn)),
      reused_(reused),
      opts_(opts),
      headRequest_(headRequest) {}

UpstreamCall::~UpstreamCall() {
  if (conn_ && state_ == BodyState::kDone && keepAlive_ && pos_ == buf_.size()) {
    owner_->checkin(std::move(conn_));
  }
}

void UpstreamCall::abort() {
  if (conn_) {
    conn_->close();
    conn_.reset();
  }
}

Status UpstreamCall::sendRequest(const std::string& wire) {
  return conn_->sendAll(wire.data(), wire.size());
}

Status UpstreamCall::fill() {
  if (!conn_) {
    return Status(Code::kAborted, "upstream call aborted");
  }
  int64_t deadline = nowMs() + opts_.ioTimeoutMs;
  while (conn_->pending() <= 0) {
    struct pollfd fds[2];
    fds[0] = {conn_->fd(), POLLIN, 0};
    int n = 1;
    ClientWatch* w = opts_.watch;
    if (w != nullptr && w->fd() >= 0) {
      fds[1] = {w->fd(), POLLIN | POLLRDHUP, 0};
      n = 2;
    }
    int64_t left = deadline - nowMs();
    if (left <= 0) {
      return Status(Code::kDeadlineExceeded,
                    "upstream timed out after " + std::to_string(opts_.ioTimeoutMs) + " ms");
    }
    int r = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(std::min<int64_t>(left, 60000)));
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return unavailable(std::string("poll failed: ") + std::strerror(errno));
    }
    if (n == 2 && fds[1].revents != 0 && w->checkGone()) {
      abort();
      return Status(Code::kAborted, "client disconnected");
    }
    if (fds[0].revents != 0) {
      break;
    }
  }
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > kReadChunk) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  std::string err;
  // Receive into a stack buffer and append what arrived: growing buf_ by kReadChunk first would
  // zero-fill 32 KiB per call (measurable at tens of thousands of requests per second).
  char chunk[kReadChunk];
  int got = conn_->receive(chunk, static_cast<int>(kReadChunk), &err);
  if (got > 0) {
    buf_.append(chunk, static_cast<size_t>(got));
    anyResponseByte_ = true;
    return Status::ok();
  }
  if (got == 0) {
    return unavailable("upstream closed the connection");
  }
  if (got == -2) {
    return Status(Code::kDeadlineExceeded, err);
  }
  return unavailable(err);
}

Status UpstreamCall::readHead(UpstreamResponseHead* out) {
  for (;;) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n", pos_)) == std::string::npos) {
      if (buf_.size() - pos_ > kMaxHeadBytes) {
        abort();
        return unavailable("upstream response head exceeds 64 KiB");
      }
      Status s = fill();
      if (!s && reused_ && !anyResponseByte_ && s.code() == Code::kUnavailable) {
        // The pooled connection had been closed by the server while idle: the request never
        // reached an application. Resend once on a fresh connection.
        reused_ = false;
        auto fresh = owner_->connect(url_, opts_);
        if (!fresh) {
          return fresh.status();
        }
        conn_ = std::move(fresh.value());
        s = sendRequest(wire_);
      }
      if (!s) {
        return s;
      }
    }
    std::string_view head(buf_.data() + pos_, end - pos_);
    pos_ = end + 4;
    size_t lineEnd = head.find("\r\n");
    std::string_view statusLine = head.substr(0, lineEnd);
    // "HTTP/1.1 200 OK"
    if (statusLine.size() < 12 || statusLine.substr(0, 5) != "HTTP/") {
      abort();
      return unavailable("upstream sent a malformed status line");
    }
    bool http10 = statusLine.substr(0, 8) == "HTTP/1.0";
    int status = 0;
    for (size_t i = 9; i < 12; ++i) {
      char c = statusLine[i];
      if (c < '0' || c > '9') {
        abort();
        return unavailable("upstream sent a malformed status code");
      }
      status = status * 10 + (c - '0');
    }
    out->status = status;
    out->reason = statusLine.size() > 13 ? std::string(statusLine.substr(13)) : "";
    out->headers.clear();
    size_t p = lineEnd == std::string_view::npos ? head.size() : lineEnd + 2;
    while (p < head.size()) {
      size_t e = head.find("\r\n", p);
      std::string_view line = head.substr(p, e == std::string_view::npos ? head.size() - p : e - p);
      p = e == std::string_view::npos ? head.size() : e + 2;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        continue;  // tolerate junk lines rather than fail the whole response
      }
      out->headers.emplace_back(std::string(line.substr(0, colon)),
                                std::string(trim(line.substr(colon + 1))));
    }
    if (status >= 100 && status < 200 && status != 101) {
      continue;  // 100 Continue and friends: the real head follows
    }
    const std::string* conn = findHeader(out->headers, "connection");
    keepAlive_ = http10 ? (conn != nullptr && containsToken(*conn, "keep-alive"))
                        : !(conn != nullptr && containsToken(*conn, "close"));
    const std::string* te = findHeader(out->headers, "transfer-encoding");
    const std::string* cl = findHeader(out->headers, "content-length");
    if (headRequest_ || status == 204 || status == 304) {
      state_ = BodyState::kDone;
    } else if (te != nullptr && containsToken(*te, "chunked")) {
      state_ = BodyState::kChunkSize;
    } else if (cl != nullptr) {
      uint64_t n = 0;
      for (char c : *cl) {
        if (c < '0' || c > '9') {
          abort();
          return unavailable("upstream sent a malformed Content-Length");
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      remaining_ = n;
      state_ = n == 0 ? BodyState::kDone : BodyState::kLength;
    } else {
      state_ = BodyState::kUntilClose;
      keepAlive_ = false;
    }
    return Status::ok();
  }
}

StatusOr<size_t> UpstreamCall::takeBody(std::string* out, size_t max) {
  // Consumes from buf_ as far as framing allows; returns data bytes appended (may be 0 while
  // framing bytes were consumed; the caller loops).
  size_t appended = 0;
  // Copies what is buffered of a counted run (Content-Length body or chunk data).
  auto copyCounted = [&](BodyState whenComplete) {
    size_t n =
        static_cast<size_t>(std::min<uint64_t>({remaining_, buf_.size() - pos_, max - appended}));
    out->append(buf_, pos_, n);
    pos_ += n;
    appended += n;
    remaining_ -= n;
    if (remaining_ == 0) {
      state_ = whenComplete;
    }
  };
  while (pos_ < buf_.size() && appended < max && state_ != BodyState::kDone) {
    size_t avail = buf_.size() - pos_;
    switch (state_) {
      case BodyState::kLength:
        copyCounted(BodyState::kDone);
        break;
      case BodyState::kUntilClose: {
        size_t n = std::min(avail, max - appended);
        out->append(buf_, pos_, n);
        pos_ += n;
        appended += n;
        break;
      }
      case BodyState::kChunkSize: {
        size_t e = buf_.find("\r\n", pos_);
        if (e == std::string::npos) {
          if (avail > 1024) {
            return unavailable("upstream sent a malformed chunk header");
          }
          return appended;
        }
        uint64_t size = 0;
        size_t i = pos_;
        bool any = false;
        for (; i < e; ++i) {
          char c = buf_[i];
          int v = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
          if (v < 0) {
            break;  // chunk extensions (";...") or whitespace end the size
          }
          if (size > (UINT64_MAX >> 4)) {
            return unavailable("upstream chunk size overflows");
          }
          size = size * 16 + static_cast<uint64_t>(v);
          any = true;
        }
        if (!any) {
          return unavailable("upstream sent a malformed chunk size");
        }
        pos_ = e + 2;
        remaining_ = size;
        state_ = size == 0 ? BodyState::kTrailers : BodyState::kChunkData;
        break;
      }
      case BodyState::kChunkData:
        copyCounted(BodyState::kChunkDataEnd);
        break;
      case BodyState::kChunkDataEnd: {
        if (avail < 2) {
          return appended;
        }
        if (buf_.compare(pos_, 2, "\r\n") != 0) {
          return unavailable("upstream chunk is not terminated by CRLF");
        }
        pos_ += 2;
        state_ = BodyState::kChunkSize;
        break;
      }
      case BodyState::kTrailers: {
        size_t e = buf_.find("\r\n", pos_);
        if (e == std::string::npos) {
          return appended;
        }
        bool emptyLine = e == pos_;
        pos_ = e + 2;
        if (emptyLine) {
          state_ = BodyState::kDone;
        }
        break;
      }
      case BodyState::kNone:
      case BodyState::kDone:
        break;
    }
  }
  return appended;
}

StatusOr<size_t> UpstreamCall::readSome(std::string* out, size_t max) {
  if (state_ == BodyState::kNone) {
    return failedPrecondition("readSome before readHead");
  }
  for (;;) {
    if (state_ == BodyState::kDone) {
      return static_cast<size_t>(0);
    }
    auto got = takeBody(out, max);
    if (!got) {
      abort();
      return got.status();
    }
    if (*got > 0) {
      return *got;
    }
    if (state_ == BodyState::kDone) {
      return static_cast<size_t>(0);
    }
    Status s = fill();
    if (!s) {
      if (state_ == BodyState::kUntilClose && s.code() == Code::kUnavailable &&
          s.message() == "upstream closed the connection") {
        state_ = BodyState::kDone;  // close-delimited body ends at EOF
        conn_.reset();
        return static_cast<size_t>(0);
      }
      if (s.code() != Code::kAborted) {
        abort();
      }
      return s;
    }
  }
}

// ---- UpstreamClient ----------------------------------------------------------------------------

UpstreamClient::UpstreamClient() : UpstreamClient(Options{}) {}
UpstreamClient::UpstreamClient(Options opts) : opts_(opts) {}
UpstreamClient::~UpstreamClient() = default;

StatusOr<std::string> UpstreamClient::poolKeyFor(const ParsedUrl& url, const CallOptions& opts) {
  if (opts.proxyUrl.empty()) {
    return url.poolKey();
  }
  auto proxy = parseProxyUrl(opts.proxyUrl, opts.proxyPassword);
  if (!proxy) {
    return proxy.status();
  }
  return url.poolKey() + " via " + proxy->poolKey;
}

std::unique_ptr<Connection> UpstreamClient::checkout(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = idle_.find(key);
  if (it == idle_.end()) {
    return nullptr;
  }
  int64_t now = nowMs();
  auto& vec = it->second;
  while (!vec.empty()) {
    std::unique_ptr<Connection> c = std::move(vec.back());
    vec.pop_back();
    if (now - c->idleSinceMs < opts_.idleTimeoutMs && c->idleHealthy()) {
      return c;
    }
  }
  return nullptr;
}

void UpstreamClient::checkin(std::unique_ptr<Connection> conn) {
  conn->idleSinceMs = nowMs();
  std::lock_guard<std::mutex> lock(mu_);
  auto& vec = idle_[conn->key()];
  if (vec.size() < opts_.maxIdlePerHost) {
    vec.push_back(std::move(conn));
  }
}

size_t UpstreamClient::idleConnectionsForTest() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& kv : idle_) {
    n += kv.second.size();
  }
  return n;
}

StatusOr<std::unique_ptr<Connection>> UpstreamClient::connect(const ParsedUrl& url,
                                                              const CallOptions& opts) {
  if (!opts.proxyUrl.empty()) {
    return connectViaProxy(url, opts);
  }
  try {
    Poco::Net::SocketAddress addr(url.host, url.port);
    Poco::Timespan timeout(static_cast<Poco::Timespan::TimeDiff>(opts.connectTimeoutMs) * 1000);
    std::unique_ptr<Poco::Net::StreamSocket> sock;
    if (url.tls) {
      auto s = std::make_unique<Poco::Net::SecureStreamSocket>(clientContext(opts_.verifyTls));
      s->setPeerHostName(url.host);
      s->connect(addr, timeout);
      s->completeHandshake();
      sock = std::move(s);
    } else {
      sock = std::make_unique<Poco::Net::StreamSocket>();
      sock->connect(addr, timeout);
    }
    sock->setNoDelay(true);
    sock->setKeepAlive(true);
    sock->setReceiveTimeout(
        Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(opts.ioTimeoutMs) * 1000));
    sock->setSendTimeout(
        Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(opts.ioTimeoutMs) * 1000));
    return std::make_unique<Connection>(url.poolKey(), std::move(sock), url.tls);
  } catch (const Poco::TimeoutException&) {
    return Status(Code::kDeadlineExceeded, "connecting to " + url.hostHeader() + " timed out");
  } catch (const Poco::Exception& e) {
    return unavailable("cannot connect to " + url.hostHeader() + ": " + e.displayText());
  } catch (const std::exception& e) {
    return unavailable("cannot connect to " + url.hostHeader() + ": " + e.what());
  }
}

StatusOr<std::unique_ptr<Connection>> UpstreamClient::connectViaProxy(const ParsedUrl& url,
                                                                      const CallOptions& opts) {
  auto proxy = parseProxyUrl(opts.proxyUrl, opts.proxyPassword);
  if (!proxy) {
    return proxy.status();
  }
  std::string key = url.poolKey() + " via " + proxy->poolKey;
  int64_t deadline = proxyClockMs() + opts.connectTimeoutMs;
  auto tunnel = openProxyTunnel(*proxy, url.host, url.port, deadline);
  if (!tunnel) {
    return tunnel.status();
  }
  try {
    std::unique_ptr<Poco::Net::StreamSocket> sock;
    if (url.tls) {
      // The TLS handshake runs inside the tunnel, with SNI and certificate checks against the
      // TARGET host, and within what is left of the connect timeout.
      Poco::Timespan left(
          static_cast<Poco::Timespan::TimeDiff>(std::max<int64_t>(deadline - proxyClockMs(), 1)) *
          1000);
      tunnel->setReceiveTimeout(left);
      tunnel->setSendTimeout(left);
      auto secure = std::make_unique<Poco::Net::SecureStreamSocket>(
          Poco::Net::SecureStreamSocket::attach(*tunnel, url.host, clientContext(opts_.verifyTls)));
      secure->completeHandshake();
      sock = std::move(secure);
    } else {
      sock = std::make_unique<Poco::Net::StreamSocket>(std::move(*tunnel));
    }
    sock->setNoDelay(true);
    sock->setKeepAlive(true);
    sock->setReceiveTimeout(
        Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(opts.ioTimeoutMs) * 1000));
    sock->setSendTimeout(
        Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(opts.ioTimeoutMs) * 1000));
    return std::make_unique<Connection>(key, std::move(sock), url.tls);
  } catch (const Poco::TimeoutException&) {
    return Status(Code::kDeadlineExceeded, "TLS handshake with " + url.hostHeader() +
                                               " through proxy " + proxy->display + " timed out");
  } catch (const Poco::Exception& e) {
    return unavailable("cannot connect to " + url.hostHeader() + " through proxy " +
                       proxy->display + ": " + e.displayText());
  } catch (const std::exception& e) {
    return unavailable("cannot connect to " + url.hostHeader() + " through proxy " +
                       proxy->display + ": " + e.what());
  }
}

StatusOr<UpstreamCallPtr> UpstreamClient::start(const UpstreamRequest& req,
                                                const CallOptions& opts) {
  auto url = parseUrl(req.url);
  if (!url) {
    return url.status();
  }
  std::string wire;
  wire.reserve(512 + req.body.size());
  wire.append(req.method).append(" ").append(url->target).append(" HTTP/1.1\r\n");
  wire.append("Host: ").append(url->hostHeader()).append("\r\n");
  for (const auto& h : req.headers) {
    if (iequals(h.first, "host") || iequals(h.first, "content-length") ||
        iequals(h.first, "connection") || iequals(h.first, "transfer-encoding")) {
      continue;
    }
    wire.append(h.first).append(": ").append(h.second).append("\r\n");
  }
  bool bodyless = req.body.empty() && (req.method == "GET" || req.method == "HEAD");
  if (!bodyless) {
    wire.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
  }
  wire.append("Connection: keep-alive\r\n\r\n");
  wire.append(req.body);
  bool head = req.method == "HEAD";
  auto key = poolKeyFor(*url, opts);
  if (!key) {
    return key.status();
  }

  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> conn = attempt == 0 ? checkout(*key) : nullptr;
    bool reused = conn != nullptr;
    if (!conn) {
      auto c = connect(*url, opts);
      if (!c) {
        return c.status();
      }
      conn = std::move(c.value());
    }
    UpstreamCallPtr call(new UpstreamCall(this, std::move(conn), reused, opts, head));
    call->url_ = *url;
    Status s = call->sendRequest(wire);
    if (!s) {
      if (reused) {
        continue;  // the pooled connection was dead; one fresh try
      }
      return s;
    }
    if (reused) {
      call->wire_ = std::move(wire);
    }
    return call;
  }
  return unavailable("upstream connection failed");
}

}  // namespace rg
