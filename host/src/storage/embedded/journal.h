#pragma once
// The embedded store's durable file: an append-only journal of JSON lines in the data dir, plus the
// lock that keeps a second process from opening the same dir. See docs/storage.md.

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

  // Creates dataDir if missing and takes an exclusive flock on dataDir/store.lock. Fails with
  // kFailedPrecondition when another Journal (this or another process) holds it.
  static StatusOr<std::unique_ptr<Journal>> open(const std::string& dataDir, bool fsyncEachWrite);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Every complete line of the journal. A last line without its newline (a crash mid-write) is
  // dropped and cut off the file, so later appends start on a clean line; *tornBytes tells how
  // many bytes were cut.
  Status readAll(std::vector<std::string>* lines, size_t* tornBytes);
  // Appends one line (without '\n') with a single write(); fsyncs when configured. On a short
  // write the file is cut back so that no partial line stays behind.
  Status append(const std::string& line);
  // Atomically replaces the whole journal with `content` (complete lines): temp file, fsync,
  // rename, fsync of the dir. Always fsyncs, whatever fsyncEachWrite says.
  Status rewrite(const std::string& content);
  int64_t sizeBytes() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  Journal(std::string dir, bool fsyncEachWrite) : dir_(std::move(dir)), fsync_(fsyncEachWrite) {}
  Status openAppendFd();

  std::string dir_;
  std::string path_;
  bool fsync_;
  int lockFd_ = -1;
  int fd_ = -1;
  int64_t size_ = 0;
};

}  // namespace rg::storage
