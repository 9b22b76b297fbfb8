#include "fakes/fake_anthropic.h"

#include <sys/socket.h>

#include <Poco/Exception.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <strings.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <regex>

namespace rgtest {
namespace {

constexpr size_t kMaxHeaderBytes = 1 << 20;
constexpr int kPollMs = 20;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) {
    return "";
  }
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

bool hasHeaderCi(const HeaderList& h, const std::string& name) {
  for (const auto& kv : h) {
    if (strcasecmp(kv.first.c_str(), name.c_str()) == 0) {
      return true;
    }
  }
  return false;
}

std::string jsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 413:
      return "Request Entity Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Site Overloaded";
    default:
      return "Status";
  }
}

std::string usageJson(uint64_t input, uint64_t output, uint64_t cacheCreation, uint64_t cacheRead) {
  return "{\"input_tokens\":" + std::to_string(input) +
         ",\"cache_creation_input_tokens\":" + std::to_string(cacheCreation) +
         ",\"cache_read_input_tokens\":" + std::to_string(cacheRead) +
         ",\"cache_creation\":{\"ephemeral_5m_input_tokens\":" + std::to_string(cacheCreation) +
         ",\"ephemeral_1h_input_tokens\":0},\"output_tokens\":" + std::to_string(output) +
         ",\"service_tier\":\"standard\"}";
}

// A message id that is stable for equal inputs, so canonical bodies compare equal.
std::string messageId(const std::string& model, const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : model + "\n" + text) {
    h = (h ^ c) * 1099511628211ull;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "msg_01Fake%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::string RecordedRequest::header(const std::string& name) const {
  for (const auto& kv : headers) {
    if (strcasecmp(kv.first.c_str(), name.c_str()) == 0) {
      return kv.second;
    }
  }
  return "";
}

bool RecordedRequest::hasHeader(const std::string& name) const {
  return hasHeaderCi(headers, name);
}

struct FakeAnthropic::Connection {
  Poco::Net::StreamSocket sock;
  std::thread thread;
};

struct FakeAnthropic::Impl {
  Poco::Net::ServerSocket listener;
  std::thread acceptor;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Script> queue;
  std::optional<Script> fallback;
  std::optional<Script> last;
  std::vector<RecordedRequest> requests;
  std::vector<std::shared_ptr<Connection>> conns;
  bool running = false;
  bool stopping = false;
  bool released = false;
  int peerCloses = 0;
  int peerClosesConsumed = 0;
  int connections = 0;
  // Per credential.
  std::map<std::string, std::deque<Script>> queueFor;
  std::map<std::string, Script> defaultFor;
  std::map<std::string, int> latencyFor;
  std::map<std::string, CredentialStats> stats;
  struct Gate {
    bool open = false;
    int permits = 0;
    int waiters = 0;
  };
  std::map<std::string, Gate> gates;
};

FakeAnthropic::FakeAnthropic() : impl_(std::make_unique<Impl>()) {}

FakeAnthropic::~FakeAnthropic() {
  stop();
}

bool FakeAnthropic::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->running) {
    return true;
  }
  try {
    impl_->listener.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true);
    impl_->listener.listen(64);
  } catch (const Poco::Exception&) {
    return false;
  }
  port_ = impl_->listener.address().port();
  impl_->running = true;
  impl_->stopping = false;
  impl_->acceptor = std::thread([this] { acceptLoop(); });
  return true;
}

void FakeAnthropic::stop() {
  std::vector<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->running) {
      return;
    }
    impl_->stopping = true;
    conns = impl_->conns;
  }
  impl_->cv.notify_all();
  if (impl_->acceptor.joinable()) {
    impl_->acceptor.join();
  }
  // Shutting a socket down wakes a thread blocked in recv on it.
  for (auto& c : conns) {
    try {
      c->sock.shutdown();
    } catch (const Poco::Exception&) {
    }
  }
  for (auto& c : conns) {
    if (c->thread.joinable()) {
      c->thread.join();
    }
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  try {
    impl_->listener.close();
  } catch (const Poco::Exception&) {
  }
  impl_->conns.clear();
  impl_->running = false;
}

void FakeAnthropic::enqueue(Script s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->queue.push_back(std::move(s));
}

void FakeAnthropic::setDefault(Script s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->fallback = std::move(s);
}

std::vector<RecordedRequest> FakeAnthropic::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

size_t FakeAnthropic::requestCount() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests.size();
}

int FakeAnthropic::connectionCount() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->connections;
}

bool FakeAnthropic::waitForRequests(size_t n, int timeoutMs) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeoutMs),
                            [&] { return impl_->requests.size() >= n; });
}

bool FakeAnthropic::waitForPeerClose(int timeoutMs) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  bool seen = impl_->cv.wait_for(lock, std::chrono::milliseconds(timeoutMs),
                                 [&] { return impl_->peerCloses > impl_->peerClosesConsumed; });
  if (seen) {
    ++impl_->peerClosesConsumed;
  }
  return seen;
}

void FakeAnthropic::release() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->released = true;
  }
  impl_->cv.notify_all();
}

std::string FakeAnthropic::credentialOf(const HeaderList& headers) {
  for (const auto& h : headers) {
    if (strcasecmp(h.first.c_str(), "x-api-key") == 0 && !trim(h.second).empty()) {
      return trim(h.second);
    }
  }
  for (const auto& h : headers) {
    std::string v = trim(h.second);
    if (strcasecmp(h.first.c_str(), "authorization") == 0 && v.size() > 7 &&
        strncasecmp(v.c_str(), "bearer ", 7) == 0) {
      return trim(v.substr(7));
    }
  }
  return "";
}

void FakeAnthropic::enqueueFor(const std::string& credential, Script s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->queueFor[credential].push_back(std::move(s));
}

void FakeAnthropic::setDefaultFor(const std::string& credential, Script s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->defaultFor[credential] = std::move(s);
}

void FakeAnthropic::clearFor(const std::string& credential) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->queueFor.erase(credential);
  impl_->defaultFor.erase(credential);
}

void FakeAnthropic::setLatencyFor(const std::string& credential, int ms) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->latencyFor[credential] = ms;
}

std::vector<RecordedRequest> FakeAnthropic::requestsFor(const std::string& credential) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<RecordedRequest> out;
  for (const auto& r : impl_->requests) {
    if (r.credential == credential) {
      out.push_back(r);
    }
  }
  return out;
}

CredentialStats FakeAnthropic::statsFor(const std::string& credential) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->stats.find(credential);
  return it == impl_->stats.end() ? CredentialStats{} : it->second;
}

std::map<std::string, CredentialStats> FakeAnthropic::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

bool FakeAnthropic::waitForRequestsFor(const std::string& credential, size_t n, int timeoutMs) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] {
    auto it = impl_->stats.find(credential);
    return it != impl_->stats.end() && it->second.requests >= n;
  });
}

bool FakeAnthropic::waitForInFlight(const std::string& credential, int n, int timeoutMs) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] {
    auto it = impl_->stats.find(credential);
    return it != impl_->stats.end() && it->second.inFlight >= n;
  });
}

bool FakeAnthropic::waitForIdle(int timeoutMs) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] {
    for (const auto& kv : impl_->stats) {
      if (kv.second.inFlight != 0) {
        return false;
      }
    }
    return true;
  });
}

void FakeAnthropic::openGate(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->gates[name].open = true;
  }
  impl_->cv.notify_all();
}

void FakeAnthropic::closeGate(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->gates[name].open = false;
}

void FakeAnthropic::passGate(const std::string& name, int n) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->gates[name].permits += n;
  }
  impl_->cv.notify_all();
}

int FakeAnthropic::gateWaiters(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->gates.find(name);
  return it == impl_->gates.end() ? 0 : it->second.waiters;
}

bool FakeAnthropic::waitForGateWaiters(const std::string& name, int n, int timeoutMs) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeoutMs),
                            [&] { return impl_->gates[name].waiters >= n; });
}

Script FakeAnthropic::nextScriptLocked(const std::string& credential) {
  auto q = impl_->queueFor.find(credential);
  if (q != impl_->queueFor.end() && !q->second.empty()) {
    Script s = std::move(q->second.front());
    q->second.pop_front();
    return s;
  }
  auto d = impl_->defaultFor.find(credential);
  if (d != impl_->defaultFor.end()) {
    return d->second;
  }
  if (!impl_->queue.empty()) {
    impl_->last = std::move(impl_->queue.front());
    impl_->queue.pop_front();
    return *impl_->last;
  }
  if (impl_->fallback) {
    return *impl_->fallback;
  }
  if (impl_->last) {
    return *impl_->last;
  }
  return Script{};
}

void FakeAnthropic::acceptLoop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->stopping) {
        return;
      }
    }
    // Bounded wait so stop() is noticed; accept itself never blocks after a positive poll.
    bool ready = false;
    try {
      ready =
          impl_->listener.poll(Poco::Timespan(0, kPollMs * 1000), Poco::Net::Socket::SELECT_READ);
    } catch (const Poco::Exception&) {
      return;
    }
    if (!ready) {
      continue;
    }
    auto c = std::make_shared<Connection>();
    try {
      c->sock = impl_->listener.acceptConnection();
      c->sock.setNoDelay(true);
    } catch (const Poco::Exception&) {
      continue;
    }
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) {
      return;
    }
    ++impl_->connections;
    impl_->conns.push_back(c);
    c->thread = std::thread([this, c] { serve(c); });
  }
}

namespace {

// Socket I/O helpers for one connection; every failure means "the connection is gone".
class Wire {
 public:
  explicit Wire(Poco::Net::StreamSocket& s) : sock_(s) {}

  // Reads more bytes into buf_; false on EOF or error.
  bool fill() {
    char tmp[16384];
    int n = 0;
    try {
      n = sock_.receiveBytes(tmp, sizeof tmp);
    } catch (const Poco::Exception&) {
      return false;
    }
    if (n <= 0) {
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  bool readLine(std::string* line) {
    for (;;) {
      size_t p = buf_.find("\r\n");
      if (p != std::string::npos) {
        *line = buf_.substr(0, p);
        buf_.erase(0, p + 2);
        return true;
      }
      if (buf_.size() > kMaxHeaderBytes || !fill()) {
        return false;
      }
    }
  }

  bool readExact(size_t n, std::string* out) {
    while (buf_.size() < n) {
      if (!fill()) {
        return false;
      }
    }
    out->append(buf_, 0, n);
    buf_.erase(0, n);
    return true;
  }

  bool send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      int n = 0;
      try {
        n = sock_.sendBytes(data.data() + off, static_cast<int>(data.size() - off), MSG_NOSIGNAL);
      } catch (const Poco::Exception&) {
        return false;
      }
      if (n <= 0) {
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Polls once for `waitMs`: true when the peer closed (EOF or error). Bytes that arrive are kept.
  bool peerClosed(int waitMs = kPollMs) {
    try {
      if (!sock_.poll(Poco::Timespan(0, waitMs * 1000), Poco::Net::Socket::SELECT_READ)) {
        return false;
      }
    } catch (const Poco::Exception&) {
      return true;
    }
    return !fill();
  }

 private:
  Poco::Net::StreamSocket& sock_;
  std::string buf_;
};

std::string chunk(const std::string& data) {
  char hex[20];
  std::snprintf(hex, sizeof hex, "%zx\r\n", data.size());
  return hex + data + "\r\n";
}

bool readRequest(Wire& w, RecordedRequest* req, bool* keepAlive) {
  std::string line;
  do {
    if (!w.readLine(&line)) {
      return false;
    }
  } while (line.empty());  // tolerate stray CRLF between requests
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) {
    return false;
  }
  req->method = line.substr(0, sp1);
  req->uri = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string version = line.substr(sp2 + 1);
  for (;;) {
    if (!w.readLine(&line)) {
      return false;
    }
    if (line.empty()) {
      break;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      return false;
    }
    req->headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
  }
  std::string conn = lower(req->header("connection"));
  *keepAlive = version == "HTTP/1.1" ? conn.find("close") == std::string::npos
                                     : conn.find("keep-alive") != std::string::npos;
  if (lower(req->header("transfer-encoding")).find("chunked") != std::string::npos) {
    for (;;) {
      if (!w.readLine(&line)) {
        return false;
      }
      size_t size = std::strtoul(line.c_str(), nullptr, 16);
      if (size == 0) {
        // Trailer section ends with an empty line.
        do {
          if (!w.readLine(&line)) {
            return false;
          }
        } while (!line.empty());
        break;
      }
      if (!w.readExact(size, &req->body) || !w.readLine(&line)) {
        return false;
      }
    }
  } else if (req->hasHeader("content-length")) {
    size_t len = std::strtoul(req->header("content-length").c_str(), nullptr, 10);
    if (!w.readExact(len, &req->body)) {
      return false;
    }
  }
  return true;
}

}  // namespace

void FakeAnthropic::serve(const std::shared_ptr<Connection>& c) {
  Wire w(c->sock);
  auto stopping = [this] {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->stopping;
  };
  for (;;) {
    RecordedRequest req;
    bool keepAlive = true;
    if (!readRequest(w, &req, &keepAlive)) {
      break;
    }
    req.credential = credentialOf(req.headers);
    req.path = req.uri.substr(0, req.uri.find('?'));
    req.beta = req.header("anthropic-beta");
    {
      static const std::regex kModelValue("\"model\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");
      std::smatch m;
      if (std::regex_search(req.body, m, kModelValue)) {
        req.model = m[1].str();
      }
    }
    Script s;
    int latencyMs = 0;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      s = nextScriptLocked(req.credential);
      impl_->requests.push_back(req);
      CredentialStats& st = impl_->stats[req.credential];
      ++st.requests;
      ++st.inFlight;
      st.maxInFlight = std::max(st.maxInFlight, st.inFlight);
      ++st.awaiting;
      st.maxAwaiting = std::max(st.maxAwaiting, st.awaiting);
      auto lat = impl_->latencyFor.find(req.credential);
      latencyMs = lat == impl_->latencyFor.end() ? 0 : lat->second;
    }
    impl_->cv.notify_all();
    // Ends this request's in-flight time however the iteration ends (answered, dropped, stopped).
    struct InFlight {
      Impl* impl;
      std::string credential;
      bool awaiting = true;
      void answering() {
        std::lock_guard<std::mutex> lock(impl->mu);
        if (awaiting) {
          awaiting = false;
          --impl->stats[credential].awaiting;
        }
      }
      ~InFlight() {
        answering();
        {
          std::lock_guard<std::mutex> lock(impl->mu);
          --impl->stats[credential].inFlight;
        }
        impl->cv.notify_all();
      }
    } inFlight{impl_.get(), req.credential};

    // Waits until `ready()` (checked under the lock) or `deadline`; false when the fake stops or
    // the client closes the connection first. Bounded slices keep both noticed promptly.
    auto waitHere = [&](const std::function<bool()>& ready,
                        std::chrono::steady_clock::time_point deadline) {
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(impl_->mu);
          bool ok = false;  // ready() may consume a gate permit: call it until true, not after
          auto slice = std::min(
              deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(kPollMs));
          impl_->cv.wait_until(lock, slice, [&] {
            if (!ok && !impl_->stopping) {
              ok = ready();
            }
            return ok || impl_->stopping;
          });
          if (impl_->stopping) {
            return false;
          }
          if (ok || std::chrono::steady_clock::now() >= deadline) {
            return true;
          }
        }
        if (w.peerClosed(0)) {
          return false;
        }
      }
    };
    if (latencyMs > 0) {
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(latencyMs);
      if (!waitHere([] { return false; }, until)) {
        break;
      }
    }
    if (!s.gate.empty()) {
      {
        std::lock_guard<std::mutex> lock(impl_->mu);
        ++impl_->gates[s.gate].waiters;
      }
      impl_->cv.notify_all();
      bool passed = waitHere(
          [&] {  // under the lock
            Impl::Gate& g = impl_->gates[s.gate];
            if (g.open) {
              return true;
            }
            if (g.permits > 0) {
              --g.permits;
              return true;
            }
            return false;
          },
          std::chrono::steady_clock::time_point::max());
      {
        std::lock_guard<std::mutex> lock(impl_->mu);
        --impl_->gates[s.gate].waiters;
      }
      impl_->cv.notify_all();
      if (!passed) {
        break;
      }
    }

    if (s.firstByteDelayMs > 0) {
      std::unique_lock<std::mutex> lock(impl_->mu);
      impl_->cv.wait_for(lock, std::chrono::milliseconds(s.firstByteDelayMs),
                         [&] { return impl_->stopping; });
    }
    if (s.closeBeforeResponse || stopping()) {
      break;
    }
    if (s.autoReply && s.status == 200 && s.body.empty() && s.sseChunks.empty()) {
      std::smatch m;
      static const std::regex kModel("\"model\"\\s*:\\s*\"([^\"]*)\"");
      static const std::regex kStream("\"stream\"\\s*:\\s*true");
      std::string model =
          std::regex_search(req.body, m, kModel) ? m[1].str() : "claude-sonnet-4-5-20250929";
      if (std::regex_search(req.body, kStream)) {
        s.sseChunks = sseMessage(model, "Hello from the fake", 10, 5);
      } else {
        s.body = jsonMessage(model, "Hello from the fake", 10, 5);
      }
    }

    bool sse = !s.sseChunks.empty() || !s.afterRelease.empty() || s.holdOpenAfterChunks;
    std::string head =
        "HTTP/1.1 " + std::to_string(s.status) + " " + reasonPhrase(s.status) + "\r\n";
    for (const auto& h : s.headers) {
      if (strcasecmp(h.first.c_str(), "content-length") == 0 ||
          strcasecmp(h.first.c_str(), "transfer-encoding") == 0) {
        continue;
      }
      head += h.first + ": " + h.second + "\r\n";
    }
    if (!hasHeaderCi(s.headers, "content-type")) {
      head += sse ? "Content-Type: text/event-stream; charset=utf-8\r\n"
                  : "Content-Type: application/json\r\n";
    }
    if (!hasHeaderCi(s.headers, "request-id")) {
      head += "request-id: req_011CFakeUpstream\r\n";
    }
    if (sse) {
      head += "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
    } else {
      head += "Content-Length: " + std::to_string(s.body.size()) + "\r\n";
    }
    if (!keepAlive) {
      head += "Connection: close\r\n";
    }
    head += "\r\n";
    inFlight.answering();

    if (!sse) {
      if (!w.send(head + s.body)) {
        break;
      }
      if (!keepAlive) {
        break;
      }
      continue;
    }

    if (!w.send(head)) {
      break;
    }
    bool alive = true;
    int sent = 0;
    for (const auto& piece : s.sseChunks) {
      if (s.dropAfterChunks >= 0 && sent >= s.dropAfterChunks) {
        break;
      }
      if (!piece.empty() && !w.send(chunk(piece))) {
        alive = false;
        break;
      }
      ++sent;
    }
    if (!alive || s.dropAfterChunks >= 0) {
      break;  // abrupt close: no terminating chunk
    }
    if (s.holdOpenAfterChunks) {
      bool peerGone = false;
      for (;;) {
        {
          std::lock_guard<std::mutex> lock(impl_->mu);
          if (impl_->stopping || impl_->released) {
            break;
          }
        }
        if (w.peerClosed()) {
          peerGone = true;
          break;
        }
      }
      if (peerGone) {
        {
          std::lock_guard<std::mutex> lock(impl_->mu);
          ++impl_->peerCloses;
        }
        impl_->cv.notify_all();
        break;
      }
      if (stopping()) {
        break;
      }
      for (const auto& piece : s.afterRelease) {
        if (!piece.empty() && !w.send(chunk(piece))) {
          alive = false;
          break;
        }
      }
      if (!alive) {
        break;
      }
    }
    if (!w.send("0\r\n\r\n") || !keepAlive) {
      break;
    }
  }
  try {
    c->sock.shutdown();
  } catch (const Poco::Exception&) {
  }
  try {
    c->sock.close();
  } catch (const Poco::Exception&) {
  }
}

// ---- canonical bodies ---------------------------------------------------------------------------

std::string FakeAnthropic::jsonMessage(const std::string& model, const std::string& text,
                                       uint64_t input, uint64_t output, uint64_t cacheCreation,
                                       uint64_t cacheRead) {
  return "{\"id\":\"" + messageId(model, text) +
         "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" + jsonEscape(model) +
         "\",\"content\":[{\"type\":\"text\",\"text\":\"" + jsonEscape(text) +
         "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":" +
         usageJson(input, output, cacheCreation, cacheRead) + "}";
}

std::string FakeAnthropic::sseEvent(const std::string& name, const std::string& json) {
  return "event: " + name + "\ndata: " + json + "\n\n";
}

std::vector<std::string> FakeAnthropic::sseMessage(const std::string& model,
                                                   const std::string& text, uint64_t input,
                                                   uint64_t output, uint64_t cacheCreation,
                                                   uint64_t cacheRead) {
  std::vector<std::string> out;
  out.push_back(sseEvent(
      "message_start",
      "{\"type\":\"message_start\",\"message\":{\"id\":\"" + messageId(model, text) +
          "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" + jsonEscape(model) +
          "\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":" +
          usageJson(input, 1, cacheCreation, cacheRead) + "}}"));
  out.push_back(sseEvent("content_block_start",
                         "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                         "{\"type\":\"text\",\"text\":\"\"}}"));
  out.push_back(sseEvent("ping", "{\"type\": \"ping\"}"));
  // One delta per word, the space kept with the word before it, as the API tends to split.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sp = text.find(' ', pos);
    size_t end = sp == std::string::npos ? text.size() : sp + 1;
    out.push_back(sseEvent("content_block_delta",
                           "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                           "{\"type\":\"text_delta\",\"text\":\"" +
                               jsonEscape(text.substr(pos, end - pos)) + "\"}}"));
    pos = end;
  }
  out.push_back(sseEvent("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"));
  out.push_back(sseEvent("message_delta",
                         "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                         "\"stop_sequence\":null},\"usage\":{\"output_tokens\":" +
                             std::to_string(output) + "}}"));
  out.push_back(sseEvent("message_stop", "{\"type\":\"message_stop\"}"));
  return out;
}

Script FakeAnthropic::error(int status, const std::string& message) {
  std::string type;
  std::string text;
  switch (status) {
    case 400:
      type = "invalid_request_error";
      text = "messages: at least one message is required";
      break;
    case 401:
      type = "authentication_error";
      text = "invalid x-api-key";
      break;
    case 402:
      type = "billing_error";
      text = "Your credit balance is too low to access the Anthropic API.";
      break;
    case 403:
      type = "permission_error";
      text = "Your API key does not have permission to use the specified resource.";
      break;
    case 404:
      type = "not_found_error";
      text = "model: claude-nonexistent";
      break;
    case 413:
      type = "request_too_large";
      text = "Request exceeds the maximum allowed number of bytes.";
      break;
    case 429:
      type = "rate_limit_error";
      text =
          "This request would exceed the rate limit for your organization of 50 requests per "
          "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can "
          "see the response headers for current usage. Please reduce the prompt length or the "
          "maximum tokens requested, or try again later.";
      break;
    case 504:
      type = "timeout_error";
      text = "Request timeout";
      break;
    case 529:
      type = "overloaded_error";
      text = "Overloaded";
      break;
    default:
      type = "api_error";
      text = "Internal server error";
  }
  if (!message.empty()) {
    text = message;
  }
  std::string requestId = "req_011CFakeError" + std::to_string(status);
  Script s;
  s.status = status;
  s.body = "{\"type\":\"error\",\"error\":{\"type\":\"" + type + "\",\"message\":\"" +
           jsonEscape(text) + "\"},\"request_id\":\"" + requestId + "\"}";
  s.headers = {{"content-type", "application/json"}, {"request-id", requestId}};
  if (status == 429) {
    s.headers.emplace_back("retry-after", "17");
    s.headers.emplace_back("anthropic-ratelimit-requests-limit", "50");
    s.headers.emplace_back("anthropic-ratelimit-requests-remaining", "0");
    s.headers.emplace_back("anthropic-ratelimit-requests-reset", "2025-01-01T00:00:17Z");
  }
  if (status >= 500) {
    s.headers.emplace_back("x-should-retry", "true");
  }
  return s;
}

Script FakeAnthropic::rateLimited(int64_t resetUnixSeconds, int retryAfterSeconds) {
  Script s = error(429,
                   "This request would exceed your account's rate limit. Please try again "
                   "later.");
  s.headers.erase(std::remove_if(s.headers.begin(), s.headers.end(),
                                 [](const auto& h) { return h.first == "retry-after"; }),
                  s.headers.end());
  if (retryAfterSeconds >= 0) {
    s.headers.emplace_back("retry-after", std::to_string(retryAfterSeconds));
  }
  s.headers.emplace_back("anthropic-ratelimit-unified-status", "rejected");
  s.headers.emplace_back("anthropic-ratelimit-unified-reset", std::to_string(resetUnixSeconds));
  return s;
}

}  // namespace rgtest
