#pragma once
// The upstream HTTP/1.1 client: keep-alive connection pool, TLS (POCO NetSSL), deadlines, and
// cancellation when the downstream client goes away. It speaks HTTP framing itself so it can
// stream bodies byte-for-byte, know exactly what is buffered, and poll the upstream socket and
// the client's socket together (a client that disconnects aborts the upstream call at once).

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"

namespace Poco::Net {
class StreamSocket;
}  // namespace Poco::Net

namespace rg {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive header lookup; nullptr when absent.
const std::string* findHeader(const HeaderList& headers, std::string_view name);
bool iequals(std::string_view a, std::string_view b);

struct ParsedUrl {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string target;              // path + query, at least "/"
  std::string hostHeader() const;  // host[:port] with the port only when not the default
  std::string poolKey() const;
};
StatusOr<ParsedUrl> parseUrl(std::string_view url);

struct UpstreamRequest {
  std::string method;
  std::string url;
  HeaderList headers;  // Host, Content-Length and Connection are set by the client
  std::string body;
};

struct UpstreamResponseHead {
  int status = 0;
  std::string reason;
  HeaderList headers;
};

// Watches the downstream client's socket while we wait on upstream. fd < 0 = nothing to watch.
class ClientWatch {
 public:
  explicit ClientWatch(int fd = -1) : fd_(fd) {}
  int fd() const { return gone_ ? -1 : fd_; }
  // Called when the fd is readable: peeks; returns true if the client has closed the connection.
  // Pipelined data from a live client stops the watch (it will be read later), never counts as
  // gone.
  bool checkGone();
  bool gone() const { return gone_; }

 private:
  int fd_;
  bool gone_ = false;
};

struct CallOptions {
  int connectTimeoutMs = 10000;
  int ioTimeoutMs = 600000;  // for the response head and between body bytes
  ClientWatch* watch = nullptr;
  // Outbound proxy for this call: "http://[user@]host:port" (HTTP CONNECT, also for http://
  // targets), "socks5://[user@]host:port" or "socks5h://..." (both resolve the target name at
  // the proxy: remote DNS). "" = direct. The password is kept apart so URLs can be logged.
  // Pooled connections are keyed by target and proxy: a proxied call never reuses a direct
  // connection or one made through another proxy.
  std::string proxyUrl;
  std::string proxyPassword;
};

class Connection;
class UpstreamClient;

// One request/response exchange. Not thread-safe; used by the request's thread.
class UpstreamCall {
 public:
  ~UpstreamCall();
  UpstreamCall(const UpstreamCall&) = delete;
  UpstreamCall& operator=(const UpstreamCall&) = delete;

  // Waits for the response head. kDeadlineExceeded on timeout, kAborted if the client went away,
  // kUnavailable on a connection failure.
  Status readHead(UpstreamResponseHead* out);
  // Appends up to `max` body bytes that are available (waiting for at least one). Returns the
  // count appended; 0 = end of body. Errors as readHead.
  StatusOr<size_t> readSome(std::string* out, size_t max);
  // Drops the connection now (the upstream sees the close).
  void abort();
  bool bodyComplete() const { return state_ == BodyState::kDone; }

 private:
  friend class UpstreamClient;
  enum class BodyState {
    kNone,
    kLength,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kUntilClose,
    kDone
  };
  UpstreamCall(UpstreamClient* owner, std::unique_ptr<Connection> conn, bool reused,
               CallOptions opts, bool headRequest);
  Status fill();  // reads more bytes into buf_ (waits with poll)
  Status sendRequest(const std::string& wire);
  StatusOr<size_t> takeBody(std::string* out, size_t max);

  UpstreamClient* owner_;
  std::unique_ptr<Connection> conn_;
  bool reused_;
  std::string wire_;  // the request bytes, resent once if a reused connection was dead
  ParsedUrl url_;
  CallOptions opts_;
  bool headRequest_;
  std::string buf_;
  size_t pos_ = 0;
  BodyState state_ = BodyState::kNone;
  uint64_t remaining_ = 0;
  bool keepAlive_ = true;
  bool anyResponseByte_ = false;
};
using UpstreamCallPtr = std::unique_ptr<UpstreamCall>;

class UpstreamClient {
 public:
  struct Options {
    // As many as the server has request threads (server.worker_threads defaults to 256): with
    // fewer, every request above the cap closes its connection and the next one reconnects.
    size_t maxIdlePerHost = 512;
    int idleTimeoutMs = 30000;
    bool verifyTls = true;
  };
  UpstreamClient();
  explicit UpstreamClient(Options opts);
  ~UpstreamClient();

  // Connects (or reuses a pooled connection) and sends the request. A reused connection that the
  // server had already closed is retried once on a fresh one (no response byte was seen).
  StatusOr<UpstreamCallPtr> start(const UpstreamRequest& req, const CallOptions& opts);

  size_t idleConnectionsForTest();

 private:
  friend class UpstreamCall;
  // Pool key: the target, plus the proxy (display URL and a password digest) when there is one.
  static StatusOr<std::string> poolKeyFor(const ParsedUrl& url, const CallOptions& opts);
  std::unique_ptr<Connection> checkout(const std::string& key);
  void checkin(std::unique_ptr<Connection> conn);
  StatusOr<std::unique_ptr<Connection>> connect(const ParsedUrl& url, const CallOptions& opts);
  StatusOr<std::unique_ptr<Connection>> connectViaProxy(const ParsedUrl& url,
                                                        const CallOptions& opts);

  Options opts_;
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
};

}  // namespace rg
