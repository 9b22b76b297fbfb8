#pragma once
// A small synchronous Redis client on hiredis 0.14: a bounded connection pool, reconnect with
// backoff, AUTH/SELECT on connect, pipelining. Used only by the redis Store.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "common/status.h"

namespace rg::storage {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // ACL user (Redis 6+); empty = the default user
  std::string password;  // never logged
  int db = 0;
  int connectTimeoutMs = 2000;
  int commandTimeoutMs = 2000;
  int poolSize = 8;
  std::string describe() const {
    return host + ":" + std::to_string(port) + "/" + std::to_string(db);
  }
};

// redis://[[user]:password@]host[:port][/db]; `password` (non-empty) and `db` (>= 0) override.
StatusOr<RedisEndpoint> parseRedisUrl(const std::string& url, const std::string& password, int db);

class RedisClient {
 public:
  explicit RedisClient(RedisEndpoint ep) : ep_(std::move(ep)) {}
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends the commands in one pipeline and returns one reply per command. Error replies (type
  // REDIS_REPLY_ERROR) are returned as replies; connection failures and timeouts are kUnavailable.
  // A pooled connection found broken (e.g. the server restarted) is replaced and the pipeline
  // retried once on a fresh connection.
  StatusOr<std::vector<ReplyPtr>> pipeline(const std::vector<std::vector<std::string>>& cmds);
  StatusOr<ReplyPtr> command(const std::vector<std::string>& argv);
  const RedisEndpoint& endpoint() const { return ep_; }

 private:
  // Takes an idle connection, or a free slot (nullptr) to connect in, waiting for one.
  Status acquire(redisContext** ctx, bool* reused);
  void release(redisContext* ctx, bool broken);
  Status connect(redisContext** out);

  RedisEndpoint ep_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<redisContext*> idle_;
  int open_ = 0;  // connections in use, idle or being connected
  // Reconnect backoff: after a failed connect, new attempts fail fast until nextAttempt_.
  std::chrono::steady_clock::time_point nextAttempt_{};
  int backoffMs_ = 0;
  std::string lastConnectError_;
};

}  // namespace rg::storage
