#pragma once
// A scripted fake of the Anthropic Messages API for tests: a small HTTP/1.1 server on
// 127.0.0.1:<ephemeral> (POCO Net sockets, our own framing so that every wire detail -- header
// case and order, chunk boundaries, abrupt closes, held-open streams -- is under the test's
// control).
//
// Behaviour:
//  - Every request is recorded (method, uri with query, headers in arrival order and case, body;
//    Content-Length and chunked request bodies are both accepted). Keep-alive is honoured, so a
//    pooling client reuses connections.
//  - Each request consumes the next queued Script; when the queue is empty the default Script
//    (setDefault) answers; without one, the last consumed Script repeats; with none at all a plain
//    canonical 200 answers.
//  - A Script with status 200, empty body, no sseChunks and autoReply=true (the default) answers a
//    canonical message for the request: SSE when the request body has "stream":true, JSON
//    otherwise, echoing the request's model.
//  - Plain responses carry Content-Length; SSE responses use chunked transfer encoding, one HTTP
//    chunk per sseChunks element, each flushed separately (elements may split an event or a UTF-8
//    sequence anywhere; empty elements are skipped, they would end the body).
//  - Several accounts can share one fake: a request's credential is its x-api-key value, else the
//    token of "Authorization: Bearer <token>". Per-credential scripts (enqueueFor / setDefaultFor)
//    take precedence over the global ones; per-credential counters record requests and the
//    current / highest number of requests in flight (received, not yet fully answered).
//  - Scripts can hold a request in flight without the test sleeping: a named gate (Script::gate)
//    that the test opens or passes, or a bounded per-credential latency (setLatencyFor). Both end
//    early on stop() or when the client closes the connection.
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace rgtest {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct RecordedRequest {
  std::string method;
  std::string uri;  // path + "?" + query, as on the request line
  HeaderList headers;
  std::string body;
  std::string credential;  // x-api-key value, else the Bearer token, else ""
  std::string path;        // uri without the query
  std::string model;       // first "model" string value of the body as written (escapes kept)
  std::string beta;        // anthropic-beta header value, "" when absent
  // First value of `name`, compared case-insensitively; "" when absent.
  std::string header(const std::string& name) const;
  bool hasHeader(const std::string& name) const;
};

// What to answer for one request.
struct Script {
  int status = 200;
  HeaderList headers;  // sent as given; Content-Length / Transfer-Encoding are always computed
  std::string body;    // plain response body
  // Non-empty: an SSE response (Content-Type text/event-stream unless `headers` names one).
  std::vector<std::string> sseChunks;
  int firstByteDelayMs = 0;          // wait before the status line (interrupted by stop())
  int dropAfterChunks = -1;          // SSE: close the TCP connection after N chunks, no last chunk
  bool closeBeforeResponse = false;  // accept the request, then close without answering
  // SSE: after the chunks keep the response open until the peer closes, release() or stop().
  bool holdOpenAfterChunks = false;
  std::vector<std::string> afterRelease;  // SSE chunks sent once release() ends a hold
  bool autoReply = true;                  // see the header comment
  // Non-empty: before answering (after any latency), wait at the gate of this name until the test
  // lets the request through (openGate / passGate), stop() or the client closes the connection.
  std::string gate;
};

// Per-credential counters.
struct CredentialStats {
  size_t requests = 0;  // requests received with this credential
  int inFlight = 0;     // received and not yet fully answered (or abandoned)
  int maxInFlight = 0;  // the highest inFlight seen so far
  // Received and not yet answered (no response byte written, not abandoned). Ends before the
  // client can see the answer, so a client that limits its own concurrency never sees this
  // exceed its limit (inFlight ends after the last byte and can lag behind the client).
  int awaiting = 0;
  int maxAwaiting = 0;
};

class FakeAnthropic {
 public:
  using Script = rgtest::Script;

  FakeAnthropic();
  ~FakeAnthropic();  // stops
  FakeAnthropic(const FakeAnthropic&) = delete;
  FakeAnthropic& operator=(const FakeAnthropic&) = delete;

  // Binds 127.0.0.1:0 and starts accepting. Returns false when the socket cannot be bound.
  bool start();
  // Closes the listener and every connection (held streams end abruptly); joins all threads.
  void stop();
  int port() const { return port_; }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void enqueue(Script s);
  void setDefault(Script s);

  // ---- several accounts on one fake (keyed by credential, see the header comment) -------------
  // The credential of a request with these headers.
  static std::string credentialOf(const HeaderList& headers);
  // Requests with `credential` consume its queue first, then its sticky default, then fall back to
  // the global queue / default.
  void enqueueFor(const std::string& credential, Script s);
  void setDefaultFor(const std::string& credential, Script s);
  void clearFor(const std::string& credential);  // drops its queue and sticky default
  // Waits `ms` (bounded) before answering each request with `credential`; 0 = none.
  void setLatencyFor(const std::string& credential, int ms);
  std::vector<RecordedRequest> requestsFor(const std::string& credential) const;
  CredentialStats statsFor(const std::string& credential) const;
  std::map<std::string, CredentialStats> stats() const;  // every credential seen
  // True once `credential` has at least `n` requests received / in flight.
  bool waitForRequestsFor(const std::string& credential, size_t n, int timeoutMs);
  bool waitForInFlight(const std::string& credential, int n, int timeoutMs);
  // True once no request of any credential is in flight.
  bool waitForIdle(int timeoutMs);

  // ---- gates (Script::gate) -------------------------------------------------------------------
  // Gates start closed. openGate lets every current and future waiter through until closeGate;
  // passGate lets `n` waiters (current or future) through.
  void openGate(const std::string& name);
  void closeGate(const std::string& name);
  void passGate(const std::string& name, int n = 1);
  int gateWaiters(const std::string& name) const;  // requests waiting at it now
  bool waitForGateWaiters(const std::string& name, int n, int timeoutMs);  // >= n waiting

  std::vector<RecordedRequest> requests() const;
  size_t requestCount() const;
  // True once at least `n` requests have been fully received.
  bool waitForRequests(size_t n, int timeoutMs);
  // True once a held stream (holdOpenAfterChunks) saw its peer close the connection. Each call
  // consumes one such observation, so two held streams need two calls.
  bool waitForPeerClose(int timeoutMs);
  // Ends every current and future hold: their afterRelease chunks are sent, then the last chunk.
  void release();
  // Connections accepted so far (to check keep-alive reuse).
  int connectionCount() const;

  // ---- canonical Anthropic bodies -------------------------------------------------------------
  // A non-streamed Messages response with one text block and the given usage
  // (cache creation counted as 5-minute cache writes).
  static std::string jsonMessage(const std::string& model, const std::string& text, uint64_t input,
                                 uint64_t output, uint64_t cacheCreation = 0,
                                 uint64_t cacheRead = 0);
  // The same message as a stream, one SSE event per element: message_start (with input and cache
  // usage, output_tokens 1), content_block_start, ping, one text_delta per word of `text`,
  // content_block_stop, message_delta (cumulative output_tokens), message_stop.
  static std::vector<std::string> sseMessage(const std::string& model, const std::string& text,
                                             uint64_t input, uint64_t output,
                                             uint64_t cacheCreation = 0, uint64_t cacheRead = 0);
  // One SSE event in wire form: "event: <name>\ndata: <json>\n\n".
  static std::string sseEvent(const std::string& name, const std::string& json);
  // An Anthropic error response: {"type":"error","error":{"type":...,"message":...},
  // "request_id":...} with the error type of `status` and realistic headers (request-id; 429 adds
  // retry-after and anthropic-ratelimit-requests-remaining; 529/5xx add x-should-retry). Does NOT
  // carry anthropic-ratelimit-unified-reset, so a 429 from it is not an account limit (see
  // rateLimited). Deterministic: equal arguments give equal scripts.
  static Script error(int status, const std::string& message = "");
  // A 429 that IS an account limit: anthropic-ratelimit-unified-reset = resetUnixSeconds and
  // retry-after = retryAfterSeconds (omitted when < 0).
  static Script rateLimited(int64_t resetUnixSeconds, int retryAfterSeconds = 60);

 private:
  struct Connection;
  void acceptLoop();
  void serve(const std::shared_ptr<Connection>& c);
  Script nextScriptLocked(const std::string& credential);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace rgtest
