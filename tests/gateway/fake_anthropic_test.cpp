// The fake Anthropic upstream itself: recording, scripting, wire framing, faults, canonical bodies.
// Other suites trust it, so it is checked here against independent clients (the raw-socket
// rgtest::httpRequest and POCO's HTTPClientSession).
#include "fakes/fake_anthropic.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fakes/gateway_process.h"

namespace rgtest {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string all;
  for (const auto& s : v) {
    all += s;
  }
  return all;
}

Poco::JSON::Object::Ptr parseObject(const std::string& json) {
  Poco::JSON::Parser p;
  return p.parse(json).extract<Poco::JSON::Object::Ptr>();
}

// A raw client connection, for cases where the test must control when the socket closes.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() { close(); }
  bool connected() const { return connected_; }
  bool send(const std::string& s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // Reads until `needle` was received or the deadline passes.
  bool readUntil(const std::string& needle, int timeoutMs) {
    return waitFor(
        [&] {
          pollfd p{fd_, POLLIN, 0};
          if (::poll(&p, 1, 10) > 0) {
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
              got_.append(buf, static_cast<size_t>(n));
            }
          }
          return got_.find(needle) != std::string::npos;
        },
        timeoutMs);
  }
  void close() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  const std::string& got() const { return got_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string got_;
};

class FakeAnthropicTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fake_.start()); }
  FakeAnthropic fake_;
};

TEST_F(FakeAnthropicTest, RecordsRequestsWithHeaderCaseOrderQueryAndBody) {
  std::string body = R"({"model":"claude-sonnet-4-5","messages":[]})";
  fake_.setDefault(FakeAnthropic::error(400));
  auto r = httpRequest(fake_.port(), "POST", "/v1/messages?beta=true",
                       {{"X-Api-Key", "k1"}, {"anthropic-beta", "a,b"}, {"X-Zeta", "z"}}, body);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 400);
  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].uri, "/v1/messages?beta=true");
  EXPECT_EQ(reqs[0].body, body);
  EXPECT_EQ(reqs[0].header("x-api-key"), "k1");
  EXPECT_EQ(reqs[0].header("ANTHROPIC-BETA"), "a,b");
  EXPECT_EQ(reqs[0].header("absent"), "");
  // Order and case as sent: Host first (added by the client), then ours.
  ASSERT_GE(reqs[0].headers.size(), 4u);
  EXPECT_EQ(reqs[0].headers[1].first, "X-Api-Key");
  EXPECT_EQ(reqs[0].headers[3].first, "X-Zeta");
}

TEST_F(FakeAnthropicTest, ChunkedRequestBodyAndKeepAlive) {
  fake_.setDefault(Script{});
  Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(fake_.port()));
  session.setKeepAlive(true);
  for (int i = 0; i < 2; ++i) {
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, "/v1/messages",
                               Poco::Net::HTTPMessage::HTTP_1_1);
    req.setChunkedTransferEncoding(true);
    req.setKeepAlive(true);
    std::string body = R"({"model":"claude-haiku-4-5","n":)" + std::to_string(i) + "}";
    session.sendRequest(req) << body;
    Poco::Net::HTTPResponse resp;
    std::istream& in = session.receiveResponse(resp);
    std::string got;
    Poco::StreamCopier::copyToString(in, got);
    EXPECT_EQ(resp.getStatus(), 200);
    EXPECT_EQ(resp.getContentLength(), static_cast<std::streamsize>(got.size()));
    // Auto-reply echoes the requested model in a JSON message.
    EXPECT_EQ(parseObject(got)->getValue<std::string>("model"), "claude-haiku-4-5");
  }
  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].body, R"({"model":"claude-haiku-4-5","n":1})");
  EXPECT_EQ(fake_.connectionCount(), 1);
}

TEST_F(FakeAnthropicTest, QueueIsConsumedInOrderThenDefaultOrLastRepeats) {
  fake_.enqueue(FakeAnthropic::error(529));
  fake_.enqueue(FakeAnthropic::error(401));
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}").status, 529);
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}").status, 401);
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}").status, 401);
  fake_.setDefault(FakeAnthropic::error(500));
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}").status, 500);
  EXPECT_TRUE(fake_.waitForRequests(4, 1000));
  EXPECT_FALSE(fake_.waitForRequests(5, 50));
}

TEST_F(FakeAnthropicTest, SseChunksAreSentChunkedAndReassembleExactly) {
  auto events = FakeAnthropic::sseMessage("claude-opus-4-1", "Hello \xf0\x9f\x8c\x8d world", 3, 4);
  std::string all = join(events);
  Script s;
  for (size_t p = 0; p < all.size(); p += 5) {  // splits events and the 4-byte emoji
    s.sseChunks.push_back(all.substr(p, 5));
  }
  fake_.enqueue(s);
  RawClient c(fake_.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  ASSERT_TRUE(c.readUntil("\r\n0\r\n\r\n", 5000));
  EXPECT_NE(c.got().find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(c.got().find("text/event-stream"), std::string::npos);
  // The first body chunk is exactly 5 bytes.
  EXPECT_NE(c.got().find("\r\n\r\n5\r\nevent\r\n"), std::string::npos);
  auto r = httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.body, all);
}

TEST_F(FakeAnthropicTest, AutoReplyStreamsWhenAsked) {
  auto r = httpRequest(fake_.port(), "POST", "/v1/messages", {},
                       R"({"model":"claude-x","stream": true})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.header("content-type").rfind("text/event-stream", 0), 0u);
  EXPECT_EQ(r.body.rfind("event: message_start\n", 0), 0u);
  EXPECT_NE(r.body.find("\"model\":\"claude-x\""), std::string::npos);
}

TEST_F(FakeAnthropicTest, DropAfterChunksCutsTheStream) {
  Script s;
  s.sseChunks = FakeAnthropic::sseMessage("m", "a b c", 1, 2);
  s.dropAfterChunks = 2;
  fake_.enqueue(s);
  auto r = httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, s.sseChunks[0] + s.sseChunks[1]);
}

TEST_F(FakeAnthropicTest, CloseBeforeResponseSendsNothing) {
  Script s;
  s.closeBeforeResponse = true;
  fake_.enqueue(s);
  auto r = httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(fake_.requestCount(), 1u);
}

TEST_F(FakeAnthropicTest, HeldStreamReportsPeerClose) {
  Script s;
  s.sseChunks = {FakeAnthropic::sseEvent("ping", R"({"type": "ping"})")};
  s.holdOpenAfterChunks = true;
  fake_.enqueue(s);
  EXPECT_FALSE(fake_.waitForPeerClose(20));
  RawClient c(fake_.port());
  ASSERT_TRUE(c.send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_TRUE(c.readUntil("ping", 5000));
  EXPECT_FALSE(fake_.waitForPeerClose(50));  // still open
  c.close();
  EXPECT_TRUE(fake_.waitForPeerClose(5000));
  EXPECT_FALSE(fake_.waitForPeerClose(20));  // consumed
}

TEST_F(FakeAnthropicTest, ReleaseCompletesAHeldStream) {
  auto events = FakeAnthropic::sseMessage("m", "x", 1, 1);
  Script s;
  s.sseChunks = {events[0]};
  s.holdOpenAfterChunks = true;
  s.afterRelease.assign(events.begin() + 1, events.end());
  fake_.enqueue(s);
  RawClient c(fake_.port());
  ASSERT_TRUE(c.send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_TRUE(c.readUntil("message_start", 5000));
  EXPECT_FALSE(c.readUntil("message_stop", 100));  // held
  fake_.release();
  EXPECT_TRUE(c.readUntil("\r\n0\r\n\r\n", 5000));
  EXPECT_NE(c.got().find("message_stop"), std::string::npos);
}

TEST_F(FakeAnthropicTest, FirstByteDelayAndStopInterruptsIt) {
  Script s;
  s.firstByteDelayMs = 300;
  fake_.enqueue(s);
  auto t0 = std::chrono::steady_clock::now();
  auto r = httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}");
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_TRUE(r.ok);
  EXPECT_GE(ms, 300);

  Script longDelay;
  longDelay.firstByteDelayMs = 60000;
  fake_.enqueue(longDelay);
  RawClient c(fake_.port());
  ASSERT_TRUE(c.send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_TRUE(fake_.waitForRequests(2, 5000));
  t0 = std::chrono::steady_clock::now();
  fake_.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

// ---- several accounts on one fake ---------------------------------------------------------------

HeaderList apiKey(const std::string& k) {
  return {{"x-api-key", k}};
}
HeaderList bearer(const std::string& t) {
  return {{"Authorization", "Bearer " + t}};
}

TEST(FakeAnthropicCredentials, CredentialOfHeaders) {
  EXPECT_EQ(FakeAnthropic::credentialOf({{"X-Api-Key", " sk-ant-1 "}}), "sk-ant-1");
  EXPECT_EQ(FakeAnthropic::credentialOf({{"authorization", "bearer tok-2"}}), "tok-2");
  // x-api-key wins over a Bearer token.
  EXPECT_EQ(FakeAnthropic::credentialOf({{"Authorization", "Bearer t"}, {"x-api-key", "k"}}), "k");
  EXPECT_EQ(FakeAnthropic::credentialOf({{"Authorization", "Basic abc"}}), "");
  EXPECT_EQ(FakeAnthropic::credentialOf({}), "");
}

TEST_F(FakeAnthropicTest, PerCredentialScriptsRecordsAndCounters) {
  fake_.enqueueFor("key-a", FakeAnthropic::error(529));  // then the global default
  fake_.setDefaultFor("tok-b", FakeAnthropic::rateLimited(1700003600, 5));
  fake_.setDefaultFor("tok-c", FakeAnthropic::error(401));
  fake_.setDefault(Script{});  // canonical 200 for everyone else
  const std::string body = R"({"model":"claude-opus-4-1","x":{"model":"nested"}})";
  HeaderList a = apiKey("key-a");
  a.emplace_back("anthropic-beta", "claude-code-20250219");
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages?beta=true", a, body).status, 529);
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", a, body).status, 200);
  auto b = httpRequest(fake_.port(), "POST", "/v1/messages/count_tokens", bearer("tok-b"), body);
  EXPECT_EQ(b.status, 429);
  EXPECT_EQ(b.header("anthropic-ratelimit-unified-reset"), "1700003600");
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", bearer("tok-b"), "{}").status, 429);
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", bearer("tok-c"), "{}").status, 401);
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", {}, "{}").status, 200);

  auto ra = fake_.requestsFor("key-a");
  ASSERT_EQ(ra.size(), 2u);
  EXPECT_EQ(ra[0].credential, "key-a");
  EXPECT_EQ(ra[0].path, "/v1/messages");
  EXPECT_EQ(ra[0].uri, "/v1/messages?beta=true");
  EXPECT_EQ(ra[0].model, "claude-opus-4-1");
  EXPECT_EQ(ra[0].beta, "claude-code-20250219");
  auto rb = fake_.requestsFor("tok-b");
  ASSERT_EQ(rb.size(), 2u);
  EXPECT_EQ(rb[0].path, "/v1/messages/count_tokens");
  EXPECT_EQ(rb[0].beta, "");
  EXPECT_EQ(rb[1].model, "");
  EXPECT_EQ(fake_.statsFor("key-a").requests, 2u);
  EXPECT_EQ(fake_.statsFor("tok-b").requests, 2u);
  EXPECT_EQ(fake_.statsFor("tok-c").requests, 1u);
  EXPECT_EQ(fake_.statsFor("").requests, 1u);
  EXPECT_EQ(fake_.statsFor("never").requests, 0u);
  EXPECT_FALSE(fake_.waitForRequestsFor("never", 1, 10));
  EXPECT_FALSE(fake_.waitForInFlight("never", 1, 10));
  EXPECT_TRUE(fake_.waitForRequestsFor("tok-b", 2, 10));
  EXPECT_EQ(fake_.stats().size(), 4u);  // waiting on an unseen credential does not add it
  EXPECT_EQ(fake_.requestCount(), 6u);
  ASSERT_TRUE(fake_.waitForIdle(5000));
  for (const auto& kv : fake_.stats()) {
    EXPECT_EQ(kv.second.inFlight, 0) << kv.first;
    EXPECT_EQ(kv.second.maxInFlight, 1) << kv.first;  // sequential requests
  }
  // Clearing a credential's rules falls back to the global ones.
  fake_.clearFor("tok-c");
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", bearer("tok-c"), "{}").status, 200);
}

TEST_F(FakeAnthropicTest, ModelRecordKeepsEscapes) {
  httpRequest(fake_.port(), "POST", "/v1/messages", apiKey("k"), R"({"model" : "a\"b"})");
  auto r = fake_.requestsFor("k");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].model, R"(a\"b)");
}

TEST_F(FakeAnthropicTest, GateHoldsRequestsInFlightUntilPassedOrOpened) {
  Script held;
  held.gate = "a-gate";
  fake_.setDefaultFor("key-a", held);
  std::vector<std::thread> clients;
  std::vector<int> statuses(3, -1);
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] {
      statuses[static_cast<size_t>(i)] =
          httpRequest(fake_.port(), "POST", "/v1/messages", apiKey("key-a"), "{}").status;
    });
  }
  ASSERT_TRUE(fake_.waitForGateWaiters("a-gate", 3, 10000));
  EXPECT_EQ(fake_.statsFor("key-a").inFlight, 3);
  ASSERT_TRUE(fake_.waitForInFlight("key-a", 3, 100));
  // Another credential is not held meanwhile.
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", apiKey("key-b"), "{}").status, 200);
  EXPECT_EQ(fake_.statsFor("key-a").inFlight, 3);
  fake_.passGate("a-gate", 1);
  ASSERT_TRUE(waitFor([&] { return fake_.statsFor("key-a").inFlight == 2; }, 10000));
  EXPECT_EQ(fake_.gateWaiters("a-gate"), 2);
  fake_.openGate("a-gate");
  for (auto& t : clients) {
    t.join();
  }
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 200}));
  ASSERT_TRUE(fake_.waitForIdle(5000));
  auto st = fake_.statsFor("key-a");
  EXPECT_EQ(st.requests, 3u);
  EXPECT_EQ(st.inFlight, 0);
  EXPECT_EQ(st.maxInFlight, 3);
  EXPECT_EQ(fake_.statsFor("key-b").maxInFlight, 1);
  EXPECT_EQ(fake_.gateWaiters("a-gate"), 0);
  // An open gate lets later requests straight through; a closed one holds them again.
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", apiKey("key-a"), "{}").status, 200);
  fake_.closeGate("a-gate");
  RawClient c(fake_.port());
  ASSERT_TRUE(
      c.send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: key-a\r\n"
             "Content-Length: 0\r\n\r\n"));
  ASSERT_TRUE(fake_.waitForGateWaiters("a-gate", 1, 5000));
  EXPECT_FALSE(c.readUntil("HTTP/1.1", 50));
  fake_.passGate("a-gate");
  EXPECT_TRUE(c.readUntil("\r\n\r\n", 5000));
}

TEST_F(FakeAnthropicTest, PassBeforeArrivalIsKeptAsAPermit) {
  Script held;
  held.gate = "g";
  fake_.enqueueFor("k", held);
  fake_.passGate("g", 1);
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", apiKey("k"), "{}").status, 200);
}

TEST_F(FakeAnthropicTest, ClientCloseAtAGateEndsTheRequest) {
  Script held;
  held.gate = "g";
  fake_.setDefaultFor("k", held);
  RawClient c(fake_.port());
  ASSERT_TRUE(
      c.send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n"
             "Content-Length: 0\r\n\r\n"));
  ASSERT_TRUE(fake_.waitForGateWaiters("g", 1, 5000));
  EXPECT_EQ(fake_.statsFor("k").inFlight, 1);
  c.close();
  // The abandoned request no longer counts as in flight (a gateway slot freed by a client abort
  // must not look like a concurrency overrun later).
  ASSERT_TRUE(fake_.waitForIdle(5000));
  EXPECT_EQ(fake_.gateWaiters("g"), 0);
  EXPECT_EQ(fake_.statsFor("k").maxInFlight, 1);
}

TEST_F(FakeAnthropicTest, StopEndsAGateWait) {
  Script held;
  held.gate = "never";
  fake_.setDefault(held);
  RawClient c(fake_.port());
  ASSERT_TRUE(c.send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_TRUE(fake_.waitForGateWaiters("never", 1, 5000));
  auto t0 = std::chrono::steady_clock::now();
  fake_.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(fake_.statsFor("").inFlight, 0);
}

TEST_F(FakeAnthropicTest, LatencyPerCredentialMakesParallelRequestsOverlap) {
  fake_.setLatencyFor("slow", 1500);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  std::vector<int> statuses(2, -1);
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&, i] {
      statuses[static_cast<size_t>(i)] =
          httpRequest(fake_.port(), "POST", "/v1/messages", bearer("slow"), "{}").status;
    });
  }
  EXPECT_TRUE(fake_.waitForInFlight("slow", 2, 10000));
  // Other credentials are answered without the delay meanwhile.
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", bearer("fast"), "{}").status, 200);
  EXPECT_EQ(fake_.statsFor("slow").inFlight, 2);
  for (auto& t : clients) {
    t.join();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
  EXPECT_EQ(statuses, (std::vector<int>{200, 200}));
  EXPECT_EQ(fake_.statsFor("slow").maxInFlight, 2);
  ASSERT_TRUE(fake_.waitForIdle(5000));
  // Latency composes with the per-credential script; 0 turns it off.
  fake_.setLatencyFor("slow", 0);
  fake_.enqueueFor("slow", FakeAnthropic::error(500));
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", bearer("slow"), "{}").status, 500);
}

TEST_F(FakeAnthropicTest, DropForOneCredentialOnly) {
  Script drop;
  drop.closeBeforeResponse = true;
  fake_.enqueueFor("k", drop);
  auto r = httpRequest(fake_.port(), "POST", "/v1/messages", apiKey("k"), "{}");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", apiKey("other"), "{}").status, 200);
  EXPECT_EQ(httpRequest(fake_.port(), "POST", "/v1/messages", apiKey("k"), "{}").status, 200);
  ASSERT_TRUE(fake_.waitForIdle(5000));
  EXPECT_EQ(fake_.statsFor("k").requests, 2u);
}

TEST(FakeAnthropicBodies, JsonMessageHasAnthropicShape) {
  auto o = parseObject(
      FakeAnthropic::jsonMessage("claude-sonnet-4-5", "a\"b\n\xe2\x9c\x93", 11, 7, 3, 5));
  EXPECT_EQ(o->getValue<std::string>("type"), "message");
  EXPECT_EQ(o->getValue<std::string>("role"), "assistant");
  EXPECT_EQ(o->getValue<std::string>("model"), "claude-sonnet-4-5");
  EXPECT_EQ(o->getArray("content")->getObject(0)->getValue<std::string>("text"),
            "a\"b\n\xe2\x9c\x93");
  auto u = o->getObject("usage");
  EXPECT_EQ(u->getValue<int>("input_tokens"), 11);
  EXPECT_EQ(u->getValue<int>("output_tokens"), 7);
  EXPECT_EQ(u->getValue<int>("cache_creation_input_tokens"), 3);
  EXPECT_EQ(u->getValue<int>("cache_read_input_tokens"), 5);
  EXPECT_EQ(u->getObject("cache_creation")->getValue<int>("ephemeral_5m_input_tokens"), 3);
}

TEST(FakeAnthropicBodies, SseMessageEventsAreWellFormedAndOrdered) {
  auto events = FakeAnthropic::sseMessage("claude-opus-4-1", "one two", 20, 9, 4, 2);
  std::vector<std::string> names;
  for (const auto& e : events) {
    ASSERT_EQ(e.rfind("event: ", 0), 0u) << e;
    ASSERT_GE(e.size(), 2u);
    ASSERT_EQ(e.substr(e.size() - 2), "\n\n");
    size_t nl = e.find('\n');
    names.push_back(e.substr(7, nl - 7));
    ASSERT_EQ(e.compare(nl + 1, 6, "data: "), 0) << e;
    auto data = parseObject(e.substr(nl + 7, e.size() - nl - 9));
    EXPECT_EQ(data->getValue<std::string>("type"), names.back());
  }
  std::vector<std::string> want = {
      "message_start",       "content_block_start", "ping",          "content_block_delta",
      "content_block_delta", "content_block_stop",  "message_delta", "message_stop"};
  EXPECT_EQ(names, want);
  EXPECT_NE(events[0].find("\"input_tokens\":20"), std::string::npos);
  EXPECT_NE(events[0].find("\"cache_read_input_tokens\":2"), std::string::npos);
  EXPECT_NE(events[6].find("\"output_tokens\":9"), std::string::npos);
}

TEST(FakeAnthropicBodies, ErrorsAreDeterministicAndTyped) {
  struct Case {
    int status;
    const char* type;
  };
  for (Case c : {Case{400, "invalid_request_error"}, Case{401, "authentication_error"},
                 Case{403, "permission_error"}, Case{429, "rate_limit_error"},
                 Case{500, "api_error"}, Case{529, "overloaded_error"}}) {
    Script a = FakeAnthropic::error(c.status);
    Script b = FakeAnthropic::error(c.status);
    EXPECT_EQ(a.body, b.body);
    EXPECT_EQ(a.status, c.status);
    auto o = parseObject(a.body);
    EXPECT_EQ(o->getValue<std::string>("type"), "error");
    EXPECT_EQ(o->getObject("error")->getValue<std::string>("type"), c.type);
  }
  Script rl = FakeAnthropic::error(429);
  bool hasRetry = false;
  for (const auto& h : rl.headers) {
    hasRetry = hasRetry || h.first == "retry-after";
    EXPECT_NE(h.first, "anthropic-ratelimit-unified-reset");
  }
  EXPECT_TRUE(hasRetry);
  Script limited = FakeAnthropic::rateLimited(1700000000, -1);
  bool hasReset = false;
  for (const auto& h : limited.headers) {
    hasReset =
        hasReset || (h.first == "anthropic-ratelimit-unified-reset" && h.second == "1700000000");
    EXPECT_NE(h.first, "retry-after");
  }
  EXPECT_TRUE(hasReset);
}

}  // namespace
}  // namespace rgtest
