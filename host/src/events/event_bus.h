#pragma once
// The internal event bus: account state changes (cooldowns, recoveries, blocks, OAuth refresh
// failures) are published here; subscribers (the webhook notifier, the admin API's recent-events
// view, logs) receive them synchronously on the publishing thread, so a subscriber must be quick
// and must not publish itself. Thread-safe.

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace rg {

struct AccountEvent {
  std::string type;  // "account.cooldown" | "account.recovered" | "account.blocked" |
                     // "account.error" | "account.oauth_refreshed" | "account.status"
  std::string accountId;
  std::string accountName;
  std::string oldState;  // "active", "cooling_down", "error", "blocked", "disabled", ...
  std::string newState;
  std::string scope;    // "" = whole account, else a model family
  std::string reason;   // never a secret
  int64_t untilMs = 0;  // end of a cooldown, 0 = none
  int64_t atMs = 0;     // when it happened (unix ms)
};

class EventBus {
 public:
  using Subscriber = std::function<void(const AccountEvent&)>;
  explicit EventBus(size_t keepRecent = 200) : keepRecent_(keepRecent) {}

  // Returns a subscription id for unsubscribe().
  int subscribe(Subscriber fn) {
    std::lock_guard<std::mutex> lock(mu_);
    subs_.push_back({++nextId_, std::move(fn)});
    return nextId_;
  }
  void unsubscribe(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = subs_.begin(); it != subs_.end(); ++it) {
      if (it->first == id) {
        subs_.erase(it);
        return;
      }
    }
  }
  void publish(const AccountEvent& ev) {
    std::vector<std::pair<int, Subscriber>> subs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      recent_.push_back(ev);
      while (recent_.size() > keepRecent_) {
        recent_.pop_front();
      }
      ++published_;
      subs = subs_;
    }
    for (auto& s : subs) {
      s.second(ev);
    }
  }
  // The last keepRecent events, oldest first.
  std::vector<AccountEvent> recent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {recent_.begin(), recent_.end()};
  }
  uint64_t publishedCount() const {
    std::lock_guard<std::mutex> lock(mu_);
    return published_;
  }

 private:
  mutable std::mutex mu_;
  size_t keepRecent_;
  int nextId_ = 0;
  uint64_t published_ = 0;
  std::vector<std::pair<int, Subscriber>> subs_;
  std::deque<AccountEvent> recent_;
};

}  // namespace rg
