#include "storage/redis/redis_client.h"

#include <sys/time.h>

#include <algorithm>
#include <cstdlib>

namespace rg::storage {

namespace {

constexpr int kBackoffStartMs = 50;
constexpr int kBackoffMaxMs = 2000;

timeval toTimeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

bool parseInt(const std::string& s, int* out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  *out = std::atoi(s.c_str());
  return true;
}

std::string contextError(const redisContext* c) {
  if (c == nullptr) {
    return "out of memory";
  }
  std::string e = c->errstr;
  return e.empty() ? "connection error " + std::to_string(c->err) : e;
}

}  // namespace

StatusOr<RedisEndpoint> parseRedisUrl(const std::string& url, const std::string& password, int db) {
  RedisEndpoint ep;
  const std::string scheme = "redis://";
  if (url.rfind("rediss://", 0) == 0) {
    return invalidArgument(
        "rediss:// (TLS) is not supported: this build's hiredis (0.14) has no "
        "TLS; use redis:// on a trusted network or a TLS tunnel");
  }
  if (url.compare(0, scheme.size(), scheme) != 0) {
    return invalidArgument("redis url must start with redis:// (got a url with another scheme)");
  }
  std::string rest = url.substr(scheme.size());
  size_t at = rest.rfind('@');
  if (at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = auth.find(':');
    if (colon == std::string::npos) {
      ep.password = auth;  // redis://secret@host is read as a password, like redis-cli does
    } else {
      ep.username = auth.substr(0, colon);
      ep.password = auth.substr(colon + 1);
    }
  }
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    std::string dbText = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!dbText.empty() && !parseInt(dbText, &ep.db)) {
      return invalidArgument("redis url: database '" + dbText + "' is not a number");
    }
  }
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') == std::string::npos) {
    if (!parseInt(rest.substr(colon + 1), &ep.port) || ep.port <= 0 || ep.port > 65535) {
      return invalidArgument("redis url: bad port '" + rest.substr(colon + 1) + "'");
    }
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) {
    ep.host = rest;
  }
  if (!password.empty()) {
    ep.password = password;
  }
  if (db >= 0) {
    ep.db = db;
  }
  return ep;
}

RedisClient::~RedisClient() {
  std::lock_guard<std::mutex> lock(mu_);
  for (redisContext* c : idle_) {
    redisFree(c);
  }
  idle_.clear();
}

Status RedisClient::connect(redisContext** out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (now < nextAttempt_) {
      auto waitMs =
          std::chrono::duration_cast<std::chrono::milliseconds>(nextAttempt_ - now).count();
      return unavailable("redis " + ep_.describe() + " unreachable (" + lastConnectError_ +
                         "); next reconnect attempt in " + std::to_string(waitMs) + " ms");
    }
  }
  std::string err;
  redisContext* c =
      redisConnectWithTimeout(ep_.host.c_str(), ep_.port, toTimeval(ep_.connectTimeoutMs));
  if (c == nullptr || c->err != 0) {
    err = "connect failed: " + contextError(c);
  } else if (redisSetTimeout(c, toTimeval(ep_.commandTimeoutMs)) != REDIS_OK) {
    err = "cannot set the command timeout: " + contextError(c);
  }
  auto step = [&](std::vector<std::string> argv, const char* what) {
    if (!err.empty()) {
      return;
    }
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const std::string& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
    if (!r) {
      err = std::string(what) + " failed: " + contextError(c);
    } else if (r->type == REDIS_REPLY_ERROR) {
      // The server's message (e.g. WRONGPASS) never contains the password itself.
      err = std::string(what) + " rejected: " + std::string(r->str, r->len);
    }
  };
  if (!ep_.password.empty()) {
    if (ep_.username.empty()) {
      step({"AUTH", ep_.password}, "AUTH");
    } else {
      step({"AUTH", ep_.username, ep_.password}, "AUTH");
    }
  }
  if (ep_.db != 0) {
    step({"SELECT", std::to_string(ep_.db)}, "SELECT");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!err.empty()) {
    if (c != nullptr) {
      redisFree(c);
    }
    backoffMs_ = backoffMs_ == 0 ? kBackoffStartMs : std::min(backoffMs_ * 2, kBackoffMaxMs);
    nextAttempt_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoffMs_);
    lastConnectError_ = err;
    return unavailable("redis " + ep_.describe() + ": " + err);
  }
  backoffMs_ = 0;
  nextAttempt_ = {};
  *out = c;
  return Status::ok();
}

Status RedisClient::acquire(redisContext** ctx, bool* reused) {
  std::unique_lock<std::mutex> lock(mu_);
  int poolSize = std::max(1, ep_.poolSize);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(ep_.commandTimeoutMs + ep_.connectTimeoutMs);
  bool ready = cv_.wait_until(lock, deadline, [&] { return !idle_.empty() || open_ < poolSize; });
  if (!ready) {
    return unavailable("redis " + ep_.describe() + ": all " + std::to_string(poolSize) +
                       " pooled connections stayed busy");
  }
  if (!idle_.empty()) {
    *ctx = idle_.back();
    idle_.pop_back();
    *reused = true;
  } else {
    *ctx = nullptr;
    *reused = false;
    open_++;
  }
  return Status::ok();
}

void RedisClient::release(redisContext* ctx, bool broken) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ctx != nullptr && !broken) {
      idle_.push_back(ctx);
    } else {
      if (ctx != nullptr) {
        redisFree(ctx);
      }
      open_--;
    }
  }
  cv_.notify_one();
}

StatusOr<std::vector<ReplyPtr>> RedisClient::pipeline(
    const std::vector<std::vector<std::string>>& cmds) {
  for (int attempt = 0;; ++attempt) {
    redisContext* c = nullptr;
    bool reused = false;
    Status s = acquire(&c, &reused);
    if (!s) {
      return s;
    }
    if (c == nullptr) {
      s = connect(&c);
      if (!s) {
        release(nullptr, true);
        return s;
      }
    }
    bool broken = false;
    for (const auto& argv : cmds) {
      std::vector<const char*> ptrs;
      std::vector<size_t> lens;
      ptrs.reserve(argv.size());
      lens.reserve(argv.size());
      for (const std::string& a : argv) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
      }
      if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data()) !=
          REDIS_OK) {
        broken = true;
        break;
      }
    }
    std::vector<ReplyPtr> replies;
    replies.reserve(cmds.size());
    while (!broken && replies.size() < cmds.size()) {
      void* r = nullptr;
      if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) {
        broken = true;
        break;
      }
      replies.emplace_back(static_cast<redisReply*>(r));
    }
    if (!broken) {
      release(c, false);
      return replies;
    }
    std::string why = contextError(c);
    release(c, true);
    // A pooled connection may have died while idle (server restart, idle timeout): the server
    // closed it, so the commands were not executed; one retry on a fresh connection is safe.
    if (reused && attempt == 0) {
      continue;
    }
    return unavailable("redis " + ep_.describe() + ": command failed: " + why);
  }
}

StatusOr<ReplyPtr> RedisClient::command(const std::vector<std::string>& argv) {
  auto r = pipeline({argv});
  if (!r) {
    return r.status();
  }
  return std::move(r.value().front());
}

}  // namespace rg::storage
