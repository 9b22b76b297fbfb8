// Upstream calls through outbound proxies: HTTP CONNECT and SOCKS5 (rgtest::TestProxy, a real
// relaying proxy on loopback) in front of the fake Anthropic upstream. What the proxy was asked
// for and what the target received are both observed.
#include "upstream/proxy_connect.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "crypto/crypto.h"
#include "fakes/fake_anthropic.h"
#include "fakes/gateway_process.h"
#include "fakes/test_proxy.h"
#include "upstream/http_client.h"

namespace rg {
namespace {

using rgtest::FakeAnthropic;
using rgtest::TestProxy;

// A loopback socket bound to an ephemeral port. listen=false: connecting is refused (nothing
// listens, and holding the binding keeps the port from being reused by a parallel test).
// listen=true: connections complete in the backlog but are never accepted or answered.
class HeldPort {
 public:
  explicit HeldPort(bool listen) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (listen) {
      EXPECT_EQ(::listen(fd_, 16), 0);
    }
  }
  ~HeldPort() { ::close(fd_); }
  int fd() const { return fd_; }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

UpstreamRequest post(const std::string& url, const std::string& body = "{}") {
  UpstreamRequest r;
  r.method = "POST";
  r.url = url;
  r.headers = {{"content-type", "application/json"}};
  r.body = body;
  return r;
}

CallOptions via(const std::string& proxyUrl, const std::string& password = "") {
  CallOptions o;
  o.connectTimeoutMs = 5000;
  o.ioTimeoutMs = 10000;
  o.proxyUrl = proxyUrl;
  o.proxyPassword = password;
  return o;
}

struct Result {
  Status status;
  int httpStatus = 0;
  std::string body;
  size_t pieces = 0;  // readSome results with data
};

// One complete exchange; the call object is destroyed at the end (pooling a finished connection).
Result exchange(UpstreamClient& client, const UpstreamRequest& req, const CallOptions& opts) {
  Result r;
  auto call = client.start(req, opts);
  if (!call) {
    r.status = call.status();
    return r;
  }
  UpstreamResponseHead head;
  r.status = (*call)->readHead(&head);
  if (!r.status) {
    return r;
  }
  r.httpStatus = head.status;
  for (;;) {
    auto n = (*call)->readSome(&r.body, 1 << 20);
    if (!n) {
      r.status = n.status();
      return r;
    }
    if (*n == 0) {
      return r;
    }
    ++r.pieces;
  }
}

FakeAnthropic::Script okBody(const std::string& body) {
  FakeAnthropic::Script s;
  s.headers = {{"Content-Type", "application/json"}};
  s.body = body;
  return s;
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(target_.start());
    target_.setDefault(okBody("{\"ok\":true}"));
  }
  std::string targetUrl(const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(target_.port()) + "/v1/messages?beta=true";
  }
  std::string targetHostPort(const std::string& host = "127.0.0.1") const {
    return host + ":" + std::to_string(target_.port());
  }
  FakeAnthropic target_;
};

TEST_F(ProxyTest, HttpConnectTunnelReachesTheTarget) {
  TestProxy proxy(TestProxy::Mode::kHttpConnect);
  ASSERT_TRUE(proxy.start());
  UpstreamClient client;
  Result r = exchange(client, post(targetUrl(), "{\"a\":1}"), via(proxy.url()));
  ASSERT_TRUE(r.status) << r.status.toString();
  EXPECT_EQ(r.httpStatus, 200);
  EXPECT_EQ(r.body, "{\"ok\":true}");
  ASSERT_EQ(proxy.targets().size(), 1u);
  EXPECT_EQ(proxy.targets()[0].hostPort(), targetHostPort());
  EXPECT_EQ(proxy.tunnelCount(), 1);
  // No credentials configured: no Proxy-Authorization header at all.
  ASSERT_EQ(proxy.proxyAuthorizations().size(), 1u);
  EXPECT_EQ(proxy.proxyAuthorizations()[0], "");
  // The target saw an ordinary origin-form request (the tunnel is transparent).
  ASSERT_EQ(target_.requestCount(), 1u);
  auto req = target_.requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.uri, "/v1/messages?beta=true");
  EXPECT_EQ(req.body, "{\"a\":1}");
  EXPECT_EQ(req.header("host"), targetHostPort());
}

TEST_F(ProxyTest, Socks5SendsTheTargetAsADomainNameForRemoteDns) {
  for (const std::string scheme : {"socks5", "socks5h"}) {
    SCOPED_TRACE(scheme);
    TestProxy proxy(TestProxy::Mode::kSocks5);
    ASSERT_TRUE(proxy.start());
    UpstreamClient client;
    size_t before = target_.requestCount();
    Result r = exchange(client, post(targetUrl("localhost")), via(proxy.url(true, scheme)));
    ASSERT_TRUE(r.status) << r.status.toString();
    EXPECT_EQ(r.body, "{\"ok\":true}");
    ASSERT_EQ(proxy.targets().size(), 1u);
    // The proxy got the NAME (ATYP 3), not an address we resolved ourselves.
    EXPECT_EQ(proxy.targets()[0].socksAddressType, 3);
    EXPECT_EQ(proxy.targets()[0].hostPort(), targetHostPort("localhost"));
    EXPECT_EQ(proxy.tunnelCount(), 1);
    ASSERT_EQ(target_.requestCount(), before + 1);
    EXPECT_EQ(target_.requests().back().header("host"), targetHostPort("localhost"));
  }
}

TEST_F(ProxyTest, Socks5SendsIpLiteralsAsAddresses) {
  TestProxy proxy(TestProxy::Mode::kSocks5);
  ASSERT_TRUE(proxy.start());
  UpstreamClient client;
  Result r = exchange(client, post(targetUrl()), via(proxy.url()));
  ASSERT_TRUE(r.status) << r.status.toString();
  ASSERT_EQ(proxy.targets().size(), 1u);
  EXPECT_EQ(proxy.targets()[0].socksAddressType, 1);
  EXPECT_EQ(proxy.targets()[0].hostPort(), targetHostPort());
  EXPECT_EQ(target_.requestCount(), 1u);
}

TEST_F(ProxyTest, DirectCallIsNotSeenByARunningProxy) {
  TestProxy proxy(TestProxy::Mode::kHttpConnect);
  ASSERT_TRUE(proxy.start());
  UpstreamClient client;
  Result r = exchange(client, post(targetUrl()), via(""));
  ASSERT_TRUE(r.status) << r.status.toString();
  EXPECT_EQ(r.body, "{\"ok\":true}");
  EXPECT_EQ(target_.requestCount(), 1u);
  EXPECT_EQ(proxy.connectionCount(), 0);
  EXPECT_TRUE(proxy.targets().empty());
}

TEST_F(ProxyTest, HttpConnectBasicAuth) {
  const std::string password = "s3cret-proxy-pw";
  const std::string wrong = "wr0ng-guess-pw";
  TestProxy proxy(TestProxy::Mode::kHttpConnect, "alice", password);
  ASSERT_TRUE(proxy.start());
  UpstreamClient client;

  Result bad = exchange(client, post(targetUrl()), via(proxy.url(), wrong));
  ASSERT_FALSE(bad.status);
  EXPECT_EQ(bad.status.code(), Code::kUnavailable);
  EXPECT_NE(bad.status.message().find("proxy refused CONNECT to " + targetHostPort() +
                                      ": 407 Proxy Authentication Required"),
            std::string::npos)
      << bad.status.message();
  EXPECT_NE(bad.status.message().find(proxy.url()), std::string::npos) << bad.status.message();
  EXPECT_EQ(bad.status.message().find(wrong), std::string::npos);
  EXPECT_EQ(bad.status.message().find(password), std::string::npos);
  EXPECT_EQ(proxy.authFailures(), 1);
  EXPECT_EQ(target_.requestCount(), 0u);

  Result good = exchange(client, post(targetUrl()), via(proxy.url(), password));
  ASSERT_TRUE(good.status) << good.status.toString();
  EXPECT_EQ(good.body, "{\"ok\":true}");
  EXPECT_EQ(proxy.tunnelCount(), 1);
  ASSERT_EQ(proxy.proxyAuthorizations().size(), 2u);
  EXPECT_EQ(proxy.proxyAuthorizations()[1], "Basic " + crypto::base64Encode("alice:" + password));
  EXPECT_EQ(target_.requestCount(), 1u);
}

TEST_F(ProxyTest, Socks5UsernamePasswordAuth) {
  const std::string password = "s3cret-socks-pw";
  const std::string wrong = "wr0ng-socks-guess";
  TestProxy proxy(TestProxy::Mode::kSocks5, "bob", password);
  ASSERT_TRUE(proxy.start());
  UpstreamClient client;

  Result bad = exchange(client, post(targetUrl()), via(proxy.url(), wrong));
  ASSERT_FALSE(bad.status);
  EXPECT_EQ(bad.status.code(), Code::kUnavailable);
  EXPECT_NE(bad.status.message().find("rejected the user name or password"), std::string::npos)
      << bad.status.message();
  EXPECT_NE(bad.status.message().find(proxy.url()), std::string::npos) << bad.status.message();
  EXPECT_EQ(bad.status.message().find(wrong), std::string::npos);
  EXPECT_EQ(bad.status.message().find(password), std::string::npos);

  // Without a user we offer only no-auth, which this proxy refuses.
  Result anon = exchange(client, post(targetUrl()), via(proxy.url(false)));
  ASSERT_FALSE(anon.status);
  EXPECT_NE(anon.status.message().find("requires authentication"), std::string::npos)
      << anon.status.message();
  EXPECT_EQ(proxy.authFailures(), 2);
  EXPECT_EQ(target_.requestCount(), 0u);
  EXPECT_TRUE(proxy.targets().empty());  // refused before the target was named

  Result good = exchange(client, post(targetUrl()), via(proxy.url(), password));
  ASSERT_TRUE(good.status) << good.status.toString();
  EXPECT_EQ(good.body, "{\"ok\":true}");
  EXPECT_EQ(proxy.tunnelCount(), 1);
  EXPECT_EQ(target_.requestCount(), 1u);
}

TEST_F(ProxyTest, ProxyDownIsUnavailableNamingTheProxy) {
  HeldPort refused(false);
  for (const std::string scheme : {"http", "socks5"}) {
    SCOPED_TRACE(scheme);
    std::string proxyUrl = scheme + "://carol@127.0.0.1:" + std::to_string(refused.port());
    UpstreamClient client;
    Result r = exchange(client, post(targetUrl()), via(proxyUrl, "pw-never-shown"));
    ASSERT_FALSE(r.status);
    EXPECT_EQ(r.status.code(), Code::kUnavailable);
    EXPECT_NE(r.status.message().find("cannot connect to proxy " + proxyUrl), std::string::npos)
        << r.status.message();
    EXPECT_EQ(r.status.message().find("pw-never-shown"), std::string::npos);
  }
  EXPECT_EQ(target_.requestCount(), 0u);
}

TEST_F(ProxyTest, SilentProxyObeysTheConnectTimeout) {
  HeldPort silent(true);  // accepts TCP (backlog) but never answers the handshake
  for (const std::string scheme : {"http", "socks5"}) {
    SCOPED_TRACE(scheme);
    std::string proxyUrl = scheme + "://127.0.0.1:" + std::to_string(silent.port());
    CallOptions o = via(proxyUrl);
    o.connectTimeoutMs = 300;
    UpstreamClient client;
    auto t0 = std::chrono::steady_clock::now();
    Result r = exchange(client, post(targetUrl()), o);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    ASSERT_FALSE(r.status);
    EXPECT_EQ(r.status.code(), Code::kDeadlineExceeded) << r.status.toString();
    EXPECT_NE(r.status.message().find(proxyUrl), std::string::npos) << r.status.message();
    EXPECT_GE(ms, 250);
    EXPECT_LT(ms, 3000);
  }
}

TEST_F(ProxyTest, TargetRefusalsAreReportedClearly) {
  HeldPort refused(false);
  std::string deadUrl = "http://127.0.0.1:" + std::to_string(refused.port()) + "/x";
  std::string deadHostPort = "127.0.0.1:" + std::to_string(refused.port());
  {
    TestProxy proxy(TestProxy::Mode::kHttpConnect);
    ASSERT_TRUE(proxy.start());
    UpstreamClient client;
    Result r = exchange(client, post(deadUrl), via(proxy.url()));
    ASSERT_FALSE(r.status);
    EXPECT_EQ(r.status.code(), Code::kUnavailable);
    EXPECT_NE(
        r.status.message().find("proxy refused CONNECT to " + deadHostPort + ": 502 Bad Gateway"),
        std::string::npos)
        << r.status.message();
  }
  {
    TestProxy proxy(TestProxy::Mode::kSocks5);
    ASSERT_TRUE(proxy.start());
    UpstreamClient client;
    Result r = exchange(client, post(deadUrl), via(proxy.url()));
    ASSERT_FALSE(r.status);
    EXPECT_EQ(r.status.code(), Code::kUnavailable);
    EXPECT_NE(r.status.message().find("could not connect to " + deadHostPort +
                                      ": connection refused by the target (SOCKS reply 5)"),
              std::string::npos)
        << r.status.message();
    // A name the proxy cannot resolve: reply 4.
    Result n = exchange(client, post("http://no-such-host.invalid:80/x"), via(proxy.url()));
    ASSERT_FALSE(n.status);
    EXPECT_NE(n.status.message().find("(SOCKS reply 4)"), std::string::npos) << n.status.message();
    EXPECT_EQ(proxy.targets().back().hostPort(), "no-such-host.invalid:80");
  }
}

TEST_F(ProxyTest, PooledTunnelsAreReusedAndNeverMixedWithDirectConnections) {
  TestProxy proxy(TestProxy::Mode::kHttpConnect);
  ASSERT_TRUE(proxy.start());
  UpstreamClient client;
  for (int i = 0; i < 3; ++i) {
    Result r = exchange(client, post(targetUrl()), via(proxy.url()));
    ASSERT_TRUE(r.status) << r.status.toString();
  }
  EXPECT_EQ(proxy.tunnelCount(), 1);  // one tunnel carried all three requests
  EXPECT_EQ(target_.connectionCount(), 1);
  EXPECT_EQ(client.idleConnectionsForTest(), 1u);

  // A direct call to the same target must not take the pooled tunnel.
  Result direct = exchange(client, post(targetUrl()), via(""));
  ASSERT_TRUE(direct.status) << direct.status.toString();
  EXPECT_EQ(target_.connectionCount(), 2);
  EXPECT_EQ(proxy.connectionCount(), 1);
  EXPECT_EQ(client.idleConnectionsForTest(), 2u);

  // Each kind then reuses its own connection.
  ASSERT_TRUE(exchange(client, post(targetUrl()), via("")).status);
  ASSERT_TRUE(exchange(client, post(targetUrl()), via(proxy.url())).status);
  EXPECT_EQ(proxy.tunnelCount(), 1);
  EXPECT_EQ(target_.connectionCount(), 2);
  EXPECT_EQ(target_.requestCount(), 6u);

  // Other credentials for the same proxy URL make another pool entry (another tunnel).
  ASSERT_TRUE(exchange(client, post(targetUrl()), via(proxy.url(), "other-pw")).status);
  EXPECT_EQ(proxy.tunnelCount(), 2);
  EXPECT_EQ(client.idleConnectionsForTest(), 3u);
}

TEST_F(ProxyTest, TunnelsClosedByAStoppedProxyAreNotReused) {
  UpstreamClient client;
  std::string proxyUrl;
  {
    TestProxy proxy(TestProxy::Mode::kSocks5);
    ASSERT_TRUE(proxy.start());
    proxyUrl = proxy.url();
    ASSERT_TRUE(exchange(client, post(targetUrl()), via(proxyUrl)).status);
    EXPECT_EQ(client.idleConnectionsForTest(), 1u);
  }  // the proxy stops and closes the pooled tunnel under us
  // The dead pooled tunnel is discarded, and the fresh connect fails at the (gone) proxy rather
  // than falling back to a direct connection.
  Result r = exchange(client, post(targetUrl()), via(proxyUrl));
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.code(), Code::kUnavailable);
  EXPECT_NE(r.status.message().find("cannot connect to proxy " + proxyUrl), std::string::npos)
      << r.status.message();
  EXPECT_EQ(client.idleConnectionsForTest(), 0u);
  EXPECT_EQ(target_.requestCount(), 1u);
}

TEST_F(ProxyTest, ChunkedStreamingThroughBothProxyKinds) {
  std::vector<std::string> chunks =
      FakeAnthropic::sseMessage("claude-test", "streamed through a tunnel", 10, 5);
  std::string expected;
  for (const auto& c : chunks) {
    expected += c;
  }
  for (auto mode : {TestProxy::Mode::kHttpConnect, TestProxy::Mode::kSocks5}) {
    TestProxy proxy(mode);
    ASSERT_TRUE(proxy.start());
    SCOPED_TRACE(proxy.url());
    FakeAnthropic::Script s;
    s.sseChunks = chunks;
    target_.enqueue(s);
    UpstreamClient client;
    Result r = exchange(client, post(targetUrl(), "{\"stream\":true}"), via(proxy.url()));
    ASSERT_TRUE(r.status) << r.status.toString();
    EXPECT_EQ(r.httpStatus, 200);
    EXPECT_EQ(r.body, expected);
    EXPECT_GE(r.pieces, 1u);
    EXPECT_EQ(proxy.tunnelCount(), 1);
    EXPECT_EQ(client.idleConnectionsForTest(), 1u);  // the chunked body ended cleanly: pooled
  }
}

// No TLS upstream fixture exists (no test CA), so the TLS-inside-the-tunnel path is checked on
// the wire: the bytes that reach the target through the CONNECT tunnel are a TLS ClientHello
// whose SNI is the TARGET host name (not the proxy's).
TEST_F(ProxyTest, TlsIsNegotiatedInsideTheTunnelWithTheTargetName) {
  HeldPort tlsTarget(true);
  std::atomic<bool> done{false};
  std::string hello;
  std::thread acceptor([&] {
    pollfd p{tlsTarget.fd(), POLLIN, 0};
    if (::poll(&p, 1, 10000) > 0) {
      int c = ::accept(tlsTarget.fd(), nullptr, nullptr);
      // A record header (5 bytes) then the length it announces.
      while (c >= 0) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 10000) <= 0) {
          break;
        }
        char buf[4096];
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) {
          break;
        }
        hello.append(buf, static_cast<size_t>(n));
        if (hello.size() >= 5 &&
            hello.size() >= 5 + static_cast<size_t>(static_cast<unsigned char>(hello[3]) << 8 |
                                                    static_cast<unsigned char>(hello[4]))) {
          break;
        }
      }
      if (c >= 0) {
        ::close(c);  // no server hello: the client's handshake fails
      }
    }
    done = true;
  });
  TestProxy proxy(TestProxy::Mode::kHttpConnect);
  ASSERT_TRUE(proxy.start());
  UpstreamClient client;
  std::string url = "https://localhost:" + std::to_string(tlsTarget.port()) + "/v1/messages";
  Result r = exchange(client, post(url), via(proxy.url()));
  acceptor.join();
  ASSERT_TRUE(done.load());
  EXPECT_FALSE(r.status);
  EXPECT_EQ(r.status.code(), Code::kUnavailable) << r.status.toString();
  EXPECT_NE(r.status.message().find("through proxy " + proxy.url()), std::string::npos)
      << r.status.message();
  ASSERT_EQ(proxy.targets().size(), 1u);
  EXPECT_EQ(proxy.targets()[0].hostPort(), "localhost:" + std::to_string(tlsTarget.port()));
  ASSERT_GE(hello.size(), 6u);
  EXPECT_EQ(static_cast<unsigned char>(hello[0]), 0x16);  // TLS handshake record
  EXPECT_EQ(static_cast<unsigned char>(hello[5]), 0x01);  // ClientHello
  // SNI extension (type 0): ... 0x00 host_name type, 2-byte length, "localhost".
  EXPECT_NE(hello.find(std::string("\x00\x00\x09localhost", 12)), std::string::npos);
}

// Interoperability with an independent SOCKS5 server (Debian's microsocks), so the client is not
// only checked against our own test proxy. Skipped when the package is not installed.
TEST_F(ProxyTest, Socks5AgainstMicrosocks) {
  const char* bin = "/usr/bin/microsocks";
  if (::access(bin, X_OK) != 0) {
    GTEST_SKIP() << "microsocks is not installed (apt-get install microsocks)";
  }
  const std::string password = "micro-pw-1";
  pid_t pid = -1;
  int port = 0;
  // microsocks needs an explicit port: take a free one, and retry if another process won it.
  for (int attempt = 0; attempt < 5 && pid < 0; ++attempt) {
    port = HeldPort(false).port();
    std::string portText = std::to_string(port);
    std::vector<std::string> args = {bin,  "-i", "127.0.0.1", "-p",    portText,
                                     "-u", "mu", "-P",        password};
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t child = -1;
    ASSERT_EQ(::posix_spawn(&child, bin, nullptr, nullptr, argv.data(), environ), 0);
    bool up = rgtest::waitFor(
        [&] {
          int st = 0;
          if (::waitpid(child, &st, WNOHANG) == child) {
            child = -1;  // exited: the port was taken
            return true;
          }
          int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in a{};
          a.sin_family = AF_INET;
          a.sin_port = htons(static_cast<uint16_t>(port));
          a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
          ::close(fd);
          return ok;
        },
        5000);
    if (up && child > 0) {
      pid = child;
    } else if (child > 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
  }
  ASSERT_GT(pid, 0) << "microsocks did not start";
  std::string proxyUrl = "socks5://mu@127.0.0.1:" + std::to_string(port);
  UpstreamClient client;
  Result bad = exchange(client, post(targetUrl("localhost")), via(proxyUrl, "nope-pw"));
  Result good = exchange(client, post(targetUrl("localhost")), via(proxyUrl, password));
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  ASSERT_FALSE(bad.status);
  EXPECT_EQ(bad.status.code(), Code::kUnavailable);
  EXPECT_EQ(bad.status.message().find("nope-pw"), std::string::npos);
  EXPECT_NE(
      bad.status.message().find("socks5 proxy " + proxyUrl + " rejected the user name or password"),
      std::string::npos)
      << bad.status.message();
  ASSERT_TRUE(good.status) << good.status.toString();
  EXPECT_EQ(good.body, "{\"ok\":true}");
  ASSERT_EQ(target_.requestCount(), 1u);
  EXPECT_EQ(target_.requests()[0].header("host"), targetHostPort("localhost"));
}

TEST(ProxyUrl, ParsingAndRedaction) {
  auto a = parseProxyUrl("socks5h://me%40corp@proxy.example:1080", "pw1");
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->kind, ProxySpec::Kind::kSocks5);
  EXPECT_EQ(a->user, "me@corp");
  EXPECT_EQ(a->password, "pw1");
  EXPECT_EQ(a->host, "proxy.example");
  EXPECT_EQ(a->port, 1080);
  EXPECT_EQ(a->display, "socks5h://me@corp@proxy.example:1080");
  EXPECT_EQ(a->poolKey.find("pw1"), std::string::npos);
  auto b = parseProxyUrl("socks5h://me%40corp@proxy.example:1080", "pw2");
  ASSERT_TRUE(b);
  EXPECT_NE(a->poolKey, b->poolKey);  // other password, other pool entry

  // A password in the URL is used but never displayed.
  auto c = parseProxyUrl("http://u:inline-secret@[::1]:3128/", "");
  ASSERT_TRUE(c) << c.status().toString();
  EXPECT_EQ(c->kind, ProxySpec::Kind::kHttpConnect);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->password, "inline-secret");
  EXPECT_EQ(c->display, "http://u@[::1]:3128");
  EXPECT_EQ(c->poolKey.find("inline-secret"), std::string::npos);

  for (const char* bad : {"ftp://h:1", "http://h", "http://h:0", "http://h:70000", "socks5://:1080",
                          "http://h:12/path", "https://h:443", "http://u:leaky-pw@h"}) {
    auto r = parseProxyUrl(bad, "");
    EXPECT_FALSE(r) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().message().find("leaky-pw"), std::string::npos);
  }
}

TEST_F(ProxyTest, InvalidProxyUrlFailsTheCallWithoutContactingAnything) {
  UpstreamClient client;
  Result r = exchange(client, post(targetUrl()), via("gopher://127.0.0.1:1"));
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.code(), Code::kInvalidArgument);
  EXPECT_EQ(target_.connectionCount(), 0);
}

}  // namespace
}  // namespace rg
