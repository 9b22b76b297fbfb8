#pragma once
// A real redis-server for tests: started on a free loopback port in a temp dir, with no
// persistence, optionally with a password; stopped (SIGTERM, then SIGKILL) in the destructor.
// The binary is $RG_REDIS_SERVER or /usr/bin/redis-server.

#include <sys/types.h>

#include <memory>
#include <string>

#include "fakes/support.h"

namespace rgtest {

class RedisServer {
 public:
  // Starts the server and waits until it answers PING; throws std::runtime_error (with the tail
  // of the server log) when it cannot be started.
  explicit RedisServer(std::string password = "");
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // redis://[:password@]127.0.0.1:port
  std::string url() const;
  std::string urlWithoutPassword() const;
  int port() const { return port_; }
  const std::string& password() const { return password_; }
  bool running() const { return pid_ > 0; }

  // Stops the server (its data is gone: no persistence) ...
  void stop();
  // ... and starts it again on the same port (to test reconnects). Throws if it cannot.
  void restart();

 private:
  bool startOn(int port, std::string* why);

  std::string password_;
  std::unique_ptr<TempDir> dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace rgtest
