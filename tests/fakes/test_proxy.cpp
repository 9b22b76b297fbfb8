#include "fakes/test_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include <Poco/Base64Encoder.h>

namespace rgtest {
namespace {

constexpr size_t kMaxHead = 16 * 1024;

std::string base64(const std::string& s) {
  std::ostringstream out;
  Poco::Base64Encoder enc(out);
  enc.rdbuf()->setLineLength(0);
  enc << s;
  enc.close();
  return out.str();
}

bool startsWithCi(const std::string& s, const std::string& prefix) {
  if (s.size() < prefix.size()) {
    return false;
  }
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

TestProxy::TestProxy(Mode mode, std::string user, std::string password)
    : mode_(mode), user_(std::move(user)), password_(std::move(password)) {}

TestProxy::~TestProxy() {
  stop();
}

bool TestProxy::start() {
  if (::pipe2(wakePipe_, O_CLOEXEC) != 0) {
    return false;
  }
  listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listenFd_ < 0) {
    return false;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listenFd_, 64) != 0) {
    return false;
  }
  socklen_t len = sizeof a;
  ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
  return true;
}

void TestProxy::stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  if (wakePipe_[1] >= 0) {
    char c = 1;
    (void)!::write(wakePipe_[1], &c, 1);  // never read: the pipe stays readable, waking every poll
  }
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  for (auto& t : workers_) {
    t.join();
  }
  for (int fd : {listenFd_, wakePipe_[0], wakePipe_[1]}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
}

std::string TestProxy::url(bool withUser, const std::string& scheme) const {
  std::string s = !scheme.empty() ? scheme : (mode_ == Mode::kHttpConnect ? "http" : "socks5");
  std::string userPart = withUser && !user_.empty() ? user_ + "@" : "";
  return s + "://" + userPart + "127.0.0.1:" + std::to_string(port_);
}

std::vector<TestProxy::TargetRequest> TestProxy::targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_;
}

std::vector<std::string> TestProxy::proxyAuthorizations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return proxyAuthorizations_;
}

void TestProxy::recordTarget(TargetRequest t) {
  std::lock_guard<std::mutex> lock(mu_);
  targets_.push_back(std::move(t));
}

void TestProxy::acceptLoop() {
  for (;;) {
    pollfd p[2] = {{listenFd_, POLLIN, 0}, {wakePipe_[0], POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0 || p[1].revents != 0) {
      return;
    }
    int c = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      continue;
    }
    ++connections_;
    workers_.emplace_back([this, c] {
      serve(c);
      ::close(c);
    });
  }
}

bool TestProxy::waitReadable(int fd) {
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wakePipe_[0], POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    return r > 0 && p[1].revents == 0;
  }
}

bool TestProxy::readExact(int fd, void* buf, size_t n) {
  char* out = static_cast<char*>(buf);
  size_t got = 0;
  while (got < n) {
    if (!waitReadable(fd)) {
      return false;
    }
    ssize_t r = ::recv(fd, out + got, n - got, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) {
        continue;
      }
      return false;
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

bool TestProxy::writeAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) {
        continue;
      }
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

int TestProxy::connectTarget(const std::string& host, int port, bool* resolved) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  *resolved = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) == 0;
  if (!*resolved) {
    return -1;
  }
  int fd = -1;
  // Try every address ("localhost" may yield ::1 first while the target listens on 127.0.0.1).
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      break;
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

void TestProxy::serve(int fd) {
  int target = -1;
  bool ok = mode_ == Mode::kHttpConnect ? serveHttpConnect(fd, &target) : serveSocks5(fd, &target);
  if (ok) {
    ++tunnels_;
    relay(fd, target);
  }
  if (target >= 0) {
    ::close(target);
  }
}

bool TestProxy::serveHttpConnect(int fd, int* targetFd) {
  // One byte at a time, so nothing after the head (the tunnel's first bytes) is swallowed.
  std::string head;
  while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
    char c;
    if (head.size() > kMaxHead || !readExact(fd, &c, 1)) {
      return false;
    }
    head.push_back(c);
  }
  std::istringstream in(head);
  std::string method;
  std::string authority;
  std::string version;
  in >> method >> authority >> version;
  std::string auth;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (startsWithCi(line, "proxy-authorization:")) {
      auth = line.substr(20);
      auth.erase(0, auth.find_first_not_of(' '));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    proxyAuthorizations_.push_back(auth);
  }
  if (method != "CONNECT") {
    writeAll(fd, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
    return false;
  }
  size_t colon = authority.rfind(':');
  if (colon == std::string::npos) {
    writeAll(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    return false;
  }
  TargetRequest t;
  t.host = authority.substr(0, colon);
  if (t.host.size() > 2 && t.host.front() == '[' && t.host.back() == ']') {
    t.host = t.host.substr(1, t.host.size() - 2);
  }
  t.port = std::atoi(authority.c_str() + colon + 1);
  recordTarget(t);
  if (!user_.empty() && auth != "Basic " + base64(user_ + ":" + password_)) {
    ++authFailures_;
    writeAll(fd,
             "HTTP/1.1 407 Proxy Authentication Required\r\n"
             "Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n");
    return false;
  }
  bool resolved = false;
  *targetFd = connectTarget(t.host, t.port, &resolved);
  if (*targetFd < 0) {
    writeAll(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return false;
  }
  return writeAll(fd, "HTTP/1.1 200 Connection established\r\n\r\n");
}

bool TestProxy::serveSocks5(int fd, int* targetFd) {
  unsigned char hello[2];
  if (!readExact(fd, hello, 2) || hello[0] != 5) {
    return false;
  }
  std::string methods(hello[1], '\0');
  if (!readExact(fd, methods.data(), methods.size())) {
    return false;
  }
  const char wanted = user_.empty() ? '\x00' : '\x02';
  if (methods.find(wanted) == std::string::npos) {
    if (!user_.empty()) {
      ++authFailures_;
    }
    writeAll(fd, std::string("\x05\xFF", 2));
    return false;
  }
  if (!writeAll(fd, std::string("\x05", 1) + wanted)) {
    return false;
  }
  if (!user_.empty()) {
    unsigned char v[2];
    if (!readExact(fd, v, 2) || v[0] != 1) {
      return false;
    }
    std::string user(v[1], '\0');
    unsigned char plen = 0;
    if (!readExact(fd, user.data(), user.size()) || !readExact(fd, &plen, 1)) {
      return false;
    }
    std::string pass(plen, '\0');
    if (!readExact(fd, pass.data(), pass.size())) {
      return false;
    }
    if (user != user_ || pass != password_) {
      ++authFailures_;
      writeAll(fd, std::string("\x01\x01", 2));
      return false;
    }
    if (!writeAll(fd, std::string("\x01\x00", 2))) {
      return false;
    }
  }
  unsigned char req[4];
  if (!readExact(fd, req, 4) || req[0] != 5) {
    return false;
  }
  TargetRequest t;
  t.socksAddressType = req[3];
  if (req[3] == 1) {
    unsigned char a[4];
    char text[INET_ADDRSTRLEN];
    if (!readExact(fd, a, 4)) {
      return false;
    }
    t.host = ::inet_ntop(AF_INET, a, text, sizeof text);
  } else if (req[3] == 4) {
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN];
    if (!readExact(fd, a, 16)) {
      return false;
    }
    t.host = ::inet_ntop(AF_INET6, a, text, sizeof text);
  } else if (req[3] == 3) {
    unsigned char len = 0;
    if (!readExact(fd, &len, 1)) {
      return false;
    }
    t.host.assign(len, '\0');
    if (!readExact(fd, t.host.data(), len)) {
      return false;
    }
  } else {
    writeAll(fd, std::string("\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00", 10));
    return false;
  }
  unsigned char portBytes[2];
  if (!readExact(fd, portBytes, 2)) {
    return false;
  }
  t.port = portBytes[0] << 8 | portBytes[1];
  recordTarget(t);
  if (req[1] != 1) {
    writeAll(fd, std::string("\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00", 10));
    return false;
  }
  bool resolved = false;
  *targetFd = connectTarget(t.host, t.port, &resolved);
  if (*targetFd < 0) {
    // 4 = host unreachable (name did not resolve), 5 = connection refused.
    std::string rep("\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10);
    rep[1] = resolved ? '\x05' : '\x04';
    writeAll(fd, rep);
    return false;
  }
  // Success; the bound address is reported as a domain name to exercise that reply form.
  return writeAll(fd, std::string("\x05\x00\x00\x03\x09proxy.box\x00\x00", 16));
}

void TestProxy::relay(int a, int b) {
  char buf[16 * 1024];
  for (;;) {
    pollfd p[3] = {{a, POLLIN, 0}, {b, POLLIN, 0}, {wakePipe_[0], POLLIN, 0}};
    int r = ::poll(p, 3, -1);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (p[2].revents != 0) {
      return;
    }
    for (int i = 0; i < 2; ++i) {
      if (p[i].revents == 0) {
        continue;
      }
      ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
      if (n <= 0) {
        return;  // either side closed: the tunnel ends (the caller closes both)
      }
      if (!writeAll(p[1 - i].fd, std::string(buf, static_cast<size_t>(n)))) {
        return;
      }
    }
  }
}

}  // namespace rgtest
