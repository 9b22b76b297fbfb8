#pragma once
// A small real forward proxy for tests, on 127.0.0.1:<ephemeral>: HTTP CONNECT (optionally with
// Proxy-Authorization: Basic) or SOCKS5 (RFC 1928; RFC 1929 username/password when a user is
// configured, else no-auth). Each accepted connection runs on its own thread: handshake, connect
// to the requested target, then relay bytes both ways until either side closes.
//
// It records every target it was asked for (as asked: a SOCKS domain name stays a name) and
// counts tunnels, so tests can observe what went through it.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rgtest {

class TestProxy {
 public:
  enum class Mode { kHttpConnect, kSocks5 };

  struct TargetRequest {
    std::string host;  // domain name or IP literal, as the client sent it
    int port = 0;
    // SOCKS5 ATYP of the request: 1 = IPv4, 3 = domain name, 4 = IPv6; 0 for HTTP CONNECT.
    int socksAddressType = 0;
    std::string hostPort() const { return host + ":" + std::to_string(port); }
  };

  // user empty = no authentication required.
  explicit TestProxy(Mode mode, std::string user = "", std::string password = "");
  ~TestProxy();  // stops
  TestProxy(const TestProxy&) = delete;
  TestProxy& operator=(const TestProxy&) = delete;

  // Binds 127.0.0.1:0 and starts accepting. False when the socket cannot be bound.
  bool start();
  // Closes the listener and every tunnel; joins all threads.
  void stop();

  int port() const { return port_; }
  // "http://127.0.0.1:<port>" / "socks5://127.0.0.1:<port>", with "user@" when `withUser`.
  std::string url(bool withUser = true, const std::string& scheme = "") const;

  std::vector<TargetRequest> targets() const;
  int connectionCount() const { return connections_.load(); }  // TCP connections accepted
  int tunnelCount() const { return tunnels_.load(); }          // tunnels established
  int authFailures() const { return authFailures_.load(); }    // bad or missing credentials
  // Proxy-Authorization values received with CONNECT requests ("" when absent).
  std::vector<std::string> proxyAuthorizations() const;

 private:
  void acceptLoop();
  void serve(int fd);
  bool serveHttpConnect(int fd, int* targetFd);
  bool serveSocks5(int fd, int* targetFd);
  void relay(int a, int b);
  bool readExact(int fd, void* buf, size_t n);
  bool writeAll(int fd, const std::string& data);
  bool waitReadable(int fd);
  int connectTarget(const std::string& host, int port, bool* resolved);
  void recordTarget(TargetRequest t);

  Mode mode_;
  std::string user_;
  std::string password_;
  int listenFd_ = -1;
  int wakePipe_[2] = {-1, -1};  // written on stop(): wakes every poll
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> tunnels_{0};
  std::atomic<int> authFailures_{0};
  mutable std::mutex mu_;
  std::vector<TargetRequest> targets_;
  std::vector<std::string> proxyAuthorizations_;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace rgtest
