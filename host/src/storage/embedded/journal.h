#pragma once
// The embedded store's durable file: an append-only journal of JSON lines in the data dir, shared
// by every process that opens the dir. Writers serialise on a short flock of store.lock; readers
// take no lock and follow the file (new complete lines, or a new inode after a compaction).
// See docs/storage.md ("Several processes, one data dir").

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace rg::storage {

class Journal {
 public:
  static constexpr const char* kFileName = "journal.jsonl";
  static constexpr const char* kTempName = "journal.jsonl.tmp";
  static constexpr const char* kLockName = "store.lock";
  static constexpr const char* kServeLockName = "serve.lock";

  // Creates dataDir if missing and opens the journal and the lock file. Takes no lock: any number
  // of Journals (in this or other processes) may be open on one dir.
  static StatusOr<std::unique_ptr<Journal>> open(const std::string& dataDir, bool fsyncEachWrite);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // The exclusive writer lock (flock on store.lock, blocking). flock belongs to the open file
  // description, so two Journals in one process exclude each other like two processes do.
  Status lock();
  void unlock();
  bool locked() const { return locked_; }

  // What changed in the file since the last poll.
  struct Delta {
    bool reloaded = false;           // the path names another file now: lines is all of it
    std::vector<std::string> lines;  // complete lines, oldest first
    size_t tornBytes = 0;            // a crash remnant cut off the end (only with the lock held)
  };
  // Cheap when nothing changed: one stat(). Only complete lines are returned. Without the lock a
  // partial last line is another process mid-write and is left for the next poll; with the lock
  // (no writer can be mid-write) it is what a crash left, and it is cut off the file.
  Status poll(Delta* out);
  // Appends one line (without '\n') with a single write(); fsyncs when configured. Requires the
  // lock and a poll() under it, so the file ends where this Journal has read up to. On a short
  // write the file is cut back so that no partial line stays behind.
  Status append(const std::string& line);
  // Atomically replaces the whole journal with `content` (complete lines): temp file, fsync,
  // rename, fsync of the dir. Always fsyncs. Requires the lock.
  Status rewrite(const std::string& content);
  // Bytes of the current file consumed so far (the end of the last complete line read/written).
  int64_t sizeBytes() const { return offset_; }
  const std::string& path() const { return path_; }

  // Takes a non-blocking flock on serve.lock, held until this Journal is destroyed, and writes the
  // pid into it. kFailedPrecondition naming the holder's pid when another one holds it.
  Status claimServe();

 private:
  Journal(std::string dir, bool fsyncEachWrite) : dir_(std::move(dir)), fsync_(fsyncEachWrite) {}
  Status openFd();

  std::string dir_;
  std::string path_;
  bool fsync_;
  int lockFd_ = -1;
  int serveFd_ = -1;
  bool locked_ = false;
  int fd_ = -1;        // O_RDWR | O_APPEND on the file path_ named when it was opened
  dev_t dev_ = 0;      // identity of fd_'s file, to notice a rename over path_
  ino_t ino_ = 0;
  int64_t offset_ = 0;
};

}  // namespace rg::storage
