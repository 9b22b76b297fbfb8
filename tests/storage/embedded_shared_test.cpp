// Several processes on one embedded data dir. Two store objects in one process open their own file
// descriptors, and flock belongs to the open file description, so they exclude each other exactly
// like two processes do (ServeClaimIsExclusive proves that); one test forks a real second process.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fakes/support.h"
#include "storage/store.h"

namespace rgtest {
namespace {

using rg::Code;

bool eventually(const std::function<bool()>& cond, int ms = 20000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::yield();
  }
  return cond();
}

rg::ApiKeyRecord key(const std::string& id, const std::string& hash) {
  rg::ApiKeyRecord r;
  r.id = id;
  r.name = "key " + id;
  r.hash = hash;
  r.createdAtMs = 1000;
  r.updatedAtMs = 1000;
  r.permissions = {"claude"};
  return r;
}

rg::UsageEvent event(const std::string& rid, const std::string& keyId, int64_t tokens) {
  rg::UsageEvent ev;
  ev.requestId = rid;
  ev.keyId = keyId;
  ev.accountId = "acct";
  ev.model = "m";
  ev.day = "2025-01-01";
  ev.unixMs = 1'700'000'000'000;
  ev.counts.requests = 1;
  ev.counts.inputTokens = tokens;
  return ev;
}

class EmbeddedShared : public ::testing::Test {
 protected:
  rg::StorePtr open(int64_t compactBytes = 0) {
    rg::EmbeddedOptions o;
    o.dataDir = dataDir();
    o.compactThresholdBytes = compactBytes;
    auto s = rg::openEmbeddedStore(o, clock_);
    EXPECT_TRUE(s) << s.status().toString();
    return s ? std::move(s.value()) : nullptr;
  }
  std::string dataDir() const { return dir_.file("data"); }
  std::string journal() const { return dataDir() + "/journal.jsonl"; }
  ino_t journalInode() const {
    struct stat st {};
    return ::stat(journal().c_str(), &st) == 0 ? st.st_ino : 0;
  }
  static std::optional<std::string> setting(rg::Store& s, const std::string& k) {
    auto v = s.settings().get(k);
    EXPECT_TRUE(v) << v.status().toString();
    return v ? *v : std::nullopt;
  }
  static int64_t requests(rg::Store& s, const std::string& keyId) {
    auto t = s.usage().keyTotal(keyId);
    EXPECT_TRUE(t) << t.status().toString();
    return t ? t->requests : -1;
  }

  rg::ManualClock clock_;
  TempDir dir_;
};

TEST_F(EmbeddedShared, ChangesAreVisibleToTheOtherStoreOnItsNextRead) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);

  ASSERT_TRUE(a->keys().create(key("k1", "h1")));
  auto seen = b->keys().getByHash("h1");
  ASSERT_TRUE(seen && seen->has_value());
  EXPECT_TRUE((*seen)->enabled);

  rg::ApiKeyRecord disabled = key("k1", "h1");
  disabled.enabled = false;
  ASSERT_TRUE(a->keys().update(disabled));
  seen = b->keys().getByHash("h1");
  ASSERT_TRUE(seen && seen->has_value());
  EXPECT_FALSE((*seen)->enabled);

  // Validation inside a write sees the other store's records.
  auto dupHash = b->keys().create(key("k2", "h1"));
  EXPECT_EQ(dupHash.code(), Code::kAlreadyExists);
  ASSERT_TRUE(b->keys().remove("k1"));
  auto gone = a->keys().getById("k1");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  gone = a->keys().getByHash("h1");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  EXPECT_EQ(a->keys().remove("k1").code(), Code::kNotFound);

  rg::AccountRecord acct;
  acct.id = "a1";
  acct.name = "acct";
  ASSERT_TRUE(b->accounts().create(acct));
  auto accts = a->accounts().list();
  ASSERT_TRUE(accts);
  ASSERT_EQ(accts->size(), 1u);
  EXPECT_EQ(accts->front().id, "a1");
  ASSERT_TRUE(a->accounts().touchLastUsed("a1", 4242));
  auto got = b->accounts().get("a1");
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->lastUsedAtMs, 4242);

  ASSERT_TRUE(a->settings().set("site", "one", 0));
  EXPECT_EQ(setting(*b, "site"), std::optional<std::string>("one"));
  // A delete of a value the deleting store learnt about only by catching up inside the write.
  ASSERT_TRUE(a->pluginKv().set("p/x", "v", 0));
  ASSERT_TRUE(b->pluginKv().del("p/x"));
  auto px = a->pluginKv().get("p/x");
  ASSERT_TRUE(px);
  EXPECT_FALSE(px->has_value());
  EXPECT_EQ(a->errorCount() + b->errorCount(), 0u);
}

TEST_F(EmbeddedShared, UsageRequestIdIsBookedOnceAcrossStores) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  auto first = a->usage().record(event("req-X", "k", 7));
  ASSERT_TRUE(first);
  EXPECT_TRUE(*first);
  auto second = b->usage().record(event("req-X", "k", 7));
  ASSERT_TRUE(second);
  EXPECT_FALSE(*second);
  EXPECT_EQ(requests(*a, "k"), 1);
  EXPECT_EQ(requests(*b, "k"), 1);
  auto acct = b->usage().accountTotal("acct");
  ASSERT_TRUE(acct);
  EXPECT_EQ(acct->inputTokens, 7);
  a.reset();
  b.reset();
  auto c = open();
  ASSERT_TRUE(c);
  EXPECT_EQ(requests(*c, "k"), 1);
}

TEST_F(EmbeddedShared, PartialLineOfAWriterInProgressIsNotApplied) {
  auto b = open();
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->settings().set("before", "1", 0));
  // Another process's write() seen half-way: no newline yet.
  {
    std::ofstream out(journal(), std::ios::app | std::ios::binary);
    out << R"({"op":"set.put","k":"late","v":"2",)";
  }
  auto late = setting(*b, "late");
  EXPECT_FALSE(late.has_value());
  EXPECT_EQ(setting(*b, "before"), std::optional<std::string>("1"));
  // The reader must not have cut it: the writer completes its line.
  {
    std::ofstream out(journal(), std::ios::app | std::ios::binary);
    out << R"("exp":0})" << "\n";
  }
  EXPECT_EQ(setting(*b, "late"), std::optional<std::string>("2"));
  EXPECT_EQ(b->errorCount(), 0u);
}

TEST_F(EmbeddedShared, ConcurrentWritersInTwoStoresLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  std::atomic<int> bookedShared{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int side = 0; side < 2; ++side) {
    rg::Store* s = side == 0 ? a.get() : b.get();
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, s, side, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string id = std::to_string(side) + "-" + std::to_string(t) + "-" + std::to_string(i);
          if (!s->usage().record(event("own-" + id, "k", 1)).isOk() ||
              !s->settings().set("s-" + id, id, 0).isOk()) {
            failures++;
          }
          // Both stores try the same request id: exactly one may book it.
          auto shared = s->usage().record(event("shared-" + std::to_string(t) + "-" +
                                                    std::to_string(i), "shared", 1));
          if (!shared) {
            failures++;
          } else if (*shared) {
            bookedShared++;
          }
        }
      });
    }
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bookedShared.load(), kThreads * kPerThread);
  for (rg::Store* s : {a.get(), b.get()}) {
    EXPECT_EQ(requests(*s, "k"), 2 * kThreads * kPerThread);
    EXPECT_EQ(requests(*s, "shared"), kThreads * kPerThread);
  }
  EXPECT_EQ(setting(*a, "s-1-7-39"), std::optional<std::string>("1-7-39"));
  EXPECT_EQ(setting(*b, "s-0-0-0"), std::optional<std::string>("0-0-0"));
  EXPECT_EQ(a->errorCount() + b->errorCount(), 0u);
  a.reset();
  b.reset();

  // The journal is a valid sequence of whole lines, and a fresh open sees every write once.
  std::string text = readFile(journal());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::istringstream lines(text);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    ++n;
    ASSERT_TRUE(line.size() > 2 && line.front() == '{' && line.back() == '}') << line;
  }
  EXPECT_GT(n, static_cast<size_t>(4 * kThreads * kPerThread));
  auto c = open();
  ASSERT_TRUE(c);
  EXPECT_EQ(requests(*c, "k"), 2 * kThreads * kPerThread);
  EXPECT_EQ(requests(*c, "shared"), kThreads * kPerThread);
  for (int side = 0; side < 2; ++side) {
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = std::to_string(side) + "-" + std::to_string(t) + "-" + std::to_string(i);
        ASSERT_EQ(setting(*c, "s-" + id), std::optional<std::string>(id));
      }
    }
  }
  EXPECT_EQ(c->errorCount(), 0u);
}

TEST_F(EmbeddedShared, CompactionByOneStoreWhileTheOtherReadsAndWrites) {
  constexpr int kWrites = 400;
  auto a = open(1024);  // compacts often
  auto b = open();      // never reaches its own threshold
  ASSERT_TRUE(a && b);
  // Kept open so that its inode cannot be reused by a later journal file.
  int original = ::open(journal().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(original, 0);
  struct stat ost {};
  ASSERT_EQ(::fstat(original, &ost), 0);
  ino_t before = ost.st_ino;
  std::atomic<int> failures{0};
  std::thread writerA([&] {
    for (int i = 0; i < kWrites; ++i) {
      if (!a->settings().set("a" + std::to_string(i), std::to_string(i), 0).isOk() ||
          !a->usage().record(event("ra" + std::to_string(i), "ka", 1)).isOk()) {
        failures++;
      }
    }
  });
  // B interleaves its own writes with reads of A's, across A's compactions.
  int lastSeen = -1;
  for (int i = 0; i < kWrites; ++i) {
    if (!b->settings().set("b" + std::to_string(i), std::to_string(i), 0).isOk()) {
      failures++;
    }
    auto total = b->usage().keyTotal("ka");
    if (!total) {
      failures++;
    } else {
      // A's bookings only ever grow from B's point of view: no reload loses or repeats any.
      EXPECT_GE(total->requests, lastSeen);
      lastSeen = static_cast<int>(total->requests);
    }
  }
  writerA.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_NE(journalInode(), before) << "A never compacted: the test did not test anything";
  ::close(original);
  EXPECT_EQ(requests(*b, "ka"), kWrites);
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_EQ(setting(*b, "a" + std::to_string(i)), std::optional<std::string>(std::to_string(i)));
    ASSERT_EQ(setting(*a, "b" + std::to_string(i)), std::optional<std::string>(std::to_string(i)));
  }
  // B's fd may still point at a replaced file: its next write must land in the current one.
  ASSERT_TRUE(b->settings().set("b-final", "yes", 0));
  EXPECT_EQ(setting(*a, "b-final"), std::optional<std::string>("yes"));
  EXPECT_EQ(a->errorCount() + b->errorCount(), 0u);
  a.reset();
  b.reset();
  auto c = open();
  ASSERT_TRUE(c);
  EXPECT_EQ(setting(*c, "b-final"), std::optional<std::string>("yes"));
  EXPECT_EQ(setting(*c, "b399"), std::optional<std::string>("399"));
  EXPECT_EQ(setting(*c, "a399"), std::optional<std::string>("399"));
  EXPECT_EQ(requests(*c, "ka"), kWrites);
  EXPECT_TRUE(readFile(dataDir() + "/journal.jsonl.tmp").empty());
}

TEST_F(EmbeddedShared, ForkedChildWritesWhileParentReadsAndWrites) {
  constexpr int kKeys = 150;
  auto parent = open(4096);
  ASSERT_TRUE(parent);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // A real second process with its own store (the parent's object is not used here).
    rg::EmbeddedOptions o;
    o.dataDir = dataDir();
    o.compactThresholdBytes = 4096;
    auto s = rg::openEmbeddedStore(o, clock_);
    if (!s) {
      ::_exit(2);
    }
    for (int i = 0; i < kKeys; ++i) {
      std::string n = std::to_string(i);
      if (!(*s)->keys().create(key("c" + n, "hc" + n)).isOk()) {
        ::_exit(3);
      }
      auto booked = (*s)->usage().record(event("c" + n, "shared", 1));
      if (!booked || !*booked) {
        ::_exit(4);
      }
    }
    ::_exit(0);
  }
  // Meanwhile the parent books its own usage on the same key and watches the child's keys appear.
  size_t lastCount = 0;
  int parentBooked = 0;
  bool done = eventually([&] {
    auto booked = parent->usage().record(event("p" + std::to_string(parentBooked), "shared", 1));
    if (booked && *booked) {
      ++parentBooked;
    }
    auto keys = parent->keys().list();
    if (!keys) {
      return false;
    }
    EXPECT_GE(keys->size(), lastCount) << "a key the child created vanished";
    lastCount = keys->size();
    auto last = parent->keys().getByHash("hc" + std::to_string(kKeys - 1));
    return last && last->has_value();
  });
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_TRUE(done);
  auto keys = parent->keys().list();
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(requests(*parent, "shared"), kKeys + parentBooked);
  EXPECT_EQ(parent->errorCount(), 0u);
  parent.reset();
  auto fresh = open();
  ASSERT_TRUE(fresh);
  EXPECT_EQ(requests(*fresh, "shared"), kKeys + parentBooked);
}

TEST_F(EmbeddedShared, ServeClaimIsExclusive) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->claimExclusiveServe());
  EXPECT_TRUE(a->claimExclusiveServe());  // claiming again is a no-op
  auto second = b->claimExclusiveServe();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.code(), Code::kFailedPrecondition);
  EXPECT_NE(second.message().find("already served by another relaygate process (pid " +
                                  std::to_string(::getpid()) + ")"),
            std::string::npos)
      << second.message();
  EXPECT_NE(second.message().find(dataDir()), std::string::npos) << second.message();
  // The non-serving store (a CLI command) still works next to the server.
  ASSERT_TRUE(b->settings().set("cli", "ok", 0));
  EXPECT_EQ(setting(*a, "cli"), std::optional<std::string>("ok"));
  a.reset();  // releases the claim
  EXPECT_TRUE(b->claimExclusiveServe());
  auto c = open();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->claimExclusiveServe().code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace rgtest
