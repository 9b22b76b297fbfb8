#include "fakes/redis_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace rgtest {

namespace {

using Clock = std::chrono::steady_clock;

std::string serverBinary() {
  const char* env = std::getenv("RG_REDIS_SERVER");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/redis-server";
}

// A port that was free a moment ago (redis cannot bind port 0 and report it back).
int pickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return 0;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// True when something on the port answers a PING with any RESP reply (+PONG, or -NOAUTH when a
// password is required): the server is accepting commands.
bool answersPing(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (::send(fd, ping, sizeof(ping) - 1, MSG_NOSIGNAL) ==
        static_cast<ssize_t>(sizeof(ping) - 1)) {
      pollfd p{fd, POLLIN, 0};
      char c = 0;
      if (::poll(&p, 1, 1000) == 1 && ::recv(fd, &c, 1, 0) == 1) {
        ok = c == '+' || c == '-';
      }
    }
  }
  ::close(fd);
  return ok;
}

std::string tail(const std::string& text, size_t n) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

RedisServer::RedisServer(std::string password)
    : password_(std::move(password)), dir_(std::make_unique<TempDir>()) {
  std::string why;
  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = pickFreePort();
    if (port != 0 && startOn(port, &why)) {
      return;
    }
  }
  throw std::runtime_error("cannot start " + serverBinary() + ": " + why);
}

RedisServer::~RedisServer() {
  stop();
}

std::string RedisServer::url() const {
  std::string auth = password_.empty() ? "" : ":" + password_ + "@";
  return "redis://" + auth + "127.0.0.1:" + std::to_string(port_);
}

std::string RedisServer::urlWithoutPassword() const {
  return "redis://127.0.0.1:" + std::to_string(port_);
}

bool RedisServer::startOn(int port, std::string* why) {
  std::string logPath = dir_->file("redis.log");
  std::vector<std::string> args = {serverBinary(),
                                   "--port",
                                   std::to_string(port),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_->path(),
                                   "--daemonize",
                                   "no",
                                   "--protected-mode",
                                   "no",
                                   "--logfile",
                                   logPath};
  if (!password_.empty()) {
    args.push_back("--requirepass");
    args.push_back(password_);
  }
  // Everything the child touches is prepared before fork(): after it only async-signal-safe calls.
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    *why = "fork failed";
    return false;
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  auto deadline = Clock::now() + std::chrono::seconds(15);
  while (Clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      *why = "redis-server exited during start-up (port " + std::to_string(port) + " taken?); " +
             "log: " + tail(readFile(logPath), 600);
      return false;
    }
    if (answersPing(port)) {
      pid_ = pid;
      port_ = port;
      return true;
    }
    ::poll(nullptr, 0, 10);  // a poll interval while waiting for a condition, not a fixed delay
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  *why = "redis-server did not answer PING within 15 s; log: " + tail(readFile(logPath), 600);
  return false;
}

void RedisServer::stop() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  int st = 0;
  while (::waitpid(pid_, &st, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      break;
    }
    ::poll(nullptr, 0, 10);
  }
  pid_ = -1;
}

void RedisServer::restart() {
  stop();
  std::string why;
  // The old socket may linger briefly; redis uses SO_REUSEADDR, so a few tries are enough.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (startOn(port_, &why)) {
      return;
    }
  }
  throw std::runtime_error("cannot restart redis-server on port " + std::to_string(port_) + ": " +
                           why);
}

}  // namespace rgtest
