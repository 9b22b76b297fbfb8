// The upstream client against a scripted raw-socket server: framing, pooling, dead pooled
// connections, client-gone cancellation, timeouts.
#include "upstream/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "fakes/gateway_process.h"

namespace rg {
namespace {

// Accepts connections on 127.0.0.1:0 and runs `onConn(fd)` for each, one thread per connection.
class ScriptServer {
public:
  explicit ScriptServer(std::function<void(int fd, int connIndex)> onConn)
      : onConn_(std::move(onConn)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    acceptor_ = std::thread([this] {
      for (;;) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) {
          if (stop_) {
            return;
          }
          continue;
        }
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) {
          return;
        }
        int idx = accepted_++;
        workers_.emplace_back([this, c, idx] {
          onConn_(c, idx);
          ::close(c);
        });
      }
    });
  }
  ~ScriptServer() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : workers_) {
      t.join();
    }
    ::close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  std::string url(const std::string& path = "/x") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

private:
  std::function<void(int, int)> onConn_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

// Reads one request head + Content-Length body; returns false on EOF.
bool readRequest(int fd, std::string* head = nullptr) {
  std::string buf;
  char c[4096];
  size_t he;
  while ((he = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, c, sizeof c, 0);
    if (n <= 0) {
      return false;
    }
    buf.append(c, static_cast<size_t>(n));
  }
  size_t cl = 0;
  size_t p = buf.find("Content-Length: ");
  if (p != std::string::npos) {
    cl = std::stoul(buf.substr(p + 16));
  }
  while (buf.size() < he + 4 + cl) {
    ssize_t n = ::recv(fd, c, sizeof c, 0);
    if (n <= 0) {
      return false;
    }
    buf.append(c, static_cast<size_t>(n));
  }
  if (head != nullptr) {
    *head = buf;
  }
  return true;
}

void sendStr(int fd, const std::string& s) { ::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

std::string readBody(UpstreamCall& call) {
  std::string body;
  for (;;) {
    auto n = call.readSome(&body, 1 << 20);
    EXPECT_TRUE(n) << n.status().toString();
    if (!n || *n == 0) {
      return body;
    }
  }
}

UpstreamRequest post(const std::string& url, const std::string& body = "{}") {
  UpstreamRequest r;
  r.method = "POST";
  r.url = url;
  r.headers = {{"content-type", "application/json"}};
  r.body = body;
  return r;
}

TEST(HttpClient, ContentLengthAndKeepAliveReuse) {
  std::string seenHead;
  ScriptServer srv([&](int fd, int) {
    while (readRequest(fd, &seenHead)) {
      sendStr(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                  "{\"ok\":true}");
    }
  });
  UpstreamClient client;
  for (int i = 0; i < 3; ++i) {
    auto call = client.start(post(srv.url("/v1/messages?beta=true"), "{\"a\":1}"), {});
    ASSERT_TRUE(call) << call.status().toString();
    UpstreamResponseHead head;
    ASSERT_TRUE((*call)->readHead(&head));
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(*findHeader(head.headers, "content-type"), "application/json");
    EXPECT_EQ(readBody(**call), "{\"ok\":true}");
  }
  EXPECT_EQ(srv.accepted(), 1);
  EXPECT_NE(seenHead.find("POST /v1/messages?beta=true HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(seenHead.find("Content-Length: 7\r\n"), std::string::npos);
  EXPECT_NE(seenHead.find("{\"a\":1}"), std::string::npos);
  EXPECT_EQ(client.idleConnectionsForTest(), 1u);
}

TEST(HttpClient, ChunkedBodySplitAnywhere) {
  ScriptServer srv([&](int fd, int) {
    if (!readRequest(fd)) {
      return;
    }
    const std::string wire =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;ext=1\r\nhello\r\n1\r\n \r\nC\r\nw\xc3\xb6rld 12345\r\n0\r\nX-Trailer: t\r\n\r\n";
    for (char ch : wire) { // one byte per write: every boundary is exercised
      sendStr(fd, std::string(1, ch));
    }
    readRequest(fd); // keep open until the client closes or reuses
  });
  UpstreamClient client;
  auto call = client.start(post(srv.url()), {});
  ASSERT_TRUE(call);
  UpstreamResponseHead head;
  ASSERT_TRUE((*call)->readHead(&head));
  EXPECT_EQ(readBody(**call), "hello w\xc3\xb6rld 12345");
  EXPECT_TRUE((*call)->bodyComplete());
}

TEST(HttpClient, DeadPooledConnectionIsRetriedOnAFreshOne) {
  ScriptServer srv([&](int fd, int) {
    if (readRequest(fd)) {
      // Keep-alive response, then the server closes the idle connection anyway.
      sendStr(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  UpstreamClient client;
  for (int i = 0; i < 2; ++i) {
    auto call = client.start(post(srv.url()), {});
    ASSERT_TRUE(call);
    UpstreamResponseHead head;
    Status s = (*call)->readHead(&head);
    ASSERT_TRUE(s) << s.toString();
    EXPECT_EQ(readBody(**call), "ok");
    call->reset();
    // Wait until the server has closed its side so the pooled socket is really dead.
    ASSERT_TRUE(rgtest::waitFor([&] { return srv.accepted() == i + 1; }, 5000));
  }
  EXPECT_EQ(srv.accepted(), 2);
}

TEST(HttpClient, ClientGoneAbortsTheUpstreamCall) {
  std::atomic<bool> upstreamSawClose{false};
  ScriptServer srv([&](int fd, int) {
    if (!readRequest(fd)) {
      return;
    }
    // Never answer; wait for the gateway to drop the connection.
    char c;
    if (::recv(fd, &c, 1, 0) == 0) {
      upstreamSawClose = true;
    }
  });
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  ClientWatch watch(pair[0]);
  CallOptions opts;
  opts.watch = &watch;
  opts.ioTimeoutMs = 30000;
  UpstreamClient client;
  auto call = client.start(post(srv.url()), opts);
  ASSERT_TRUE(call);
  std::thread closer([&] { ::close(pair[1]); });
  UpstreamResponseHead head;
  Status s = (*call)->readHead(&head);
  closer.join();
  EXPECT_EQ(s.code(), Code::kAborted) << s.toString();
  EXPECT_TRUE(watch.gone());
  EXPECT_TRUE(rgtest::waitFor([&] { return upstreamSawClose.load(); }, 5000));
  ::close(pair[0]);
}

TEST(HttpClient, TimeoutAndRefusedAndCloseDelimited) {
  ScriptServer silent([&](int fd, int) {
    readRequest(fd);
    char c;
    ::recv(fd, &c, 1, 0); // until the client gives up
  });
  UpstreamClient client;
  CallOptions opts;
  opts.ioTimeoutMs = 200;
  auto call = client.start(post(silent.url()), opts);
  ASSERT_TRUE(call);
  UpstreamResponseHead head;
  EXPECT_EQ((*call)->readHead(&head).code(), Code::kDeadlineExceeded);
  call->reset();

  int port = silent.port();
  { ScriptServer tmp([](int, int) {}); port = tmp.port(); } // a port nobody listens on now
  auto refused = client.start(post("http://127.0.0.1:" + std::to_string(port) + "/"), {});
  EXPECT_EQ(refused.status().code(), Code::kUnavailable);

  ScriptServer closer([&](int fd, int) {
    if (readRequest(fd)) {
      sendStr(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
    }
  });
  auto c2 = client.start(post(closer.url()), {});
  ASSERT_TRUE(c2);
  ASSERT_TRUE((*c2)->readHead(&head));
  EXPECT_EQ(readBody(**c2), "until close");
}

} // namespace
} // namespace rg
