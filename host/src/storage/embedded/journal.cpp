#include "storage/embedded/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace rg::storage {

namespace {

std::string errnoText() {
  return std::strerror(errno);
}

Status fsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return unavailable("cannot open data dir " + dir + " to fsync it: " + errnoText());
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    return unavailable("fsync of data dir " + dir + " failed: " + std::strerror(err));
  }
  return Status::ok();
}

Status writeAll(int fd, const char* data, size_t len, const std::string& what) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return unavailable("write to " + what + " failed: " + errnoText());
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return Status::ok();
}

}  // namespace

StatusOr<std::unique_ptr<Journal>> Journal::open(const std::string& dataDir, bool fsyncEachWrite) {
  if (dataDir.empty()) {
    return invalidArgument("embedded store: data dir is empty");
  }
  std::error_code ec;
  std::filesystem::create_directories(dataDir, ec);
  if (ec) {
    return unavailable("embedded store: cannot create data dir " + dataDir + ": " + ec.message());
  }
  std::unique_ptr<Journal> j(new Journal(dataDir, fsyncEachWrite));
  j->path_ = dataDir + "/" + kFileName;
  std::string lockPath = dataDir + "/" + kLockName;
  // Our own open file description: flock on it excludes every other Journal, including ones in
  // this process, and the kernel drops the lock when the process dies (kill -9 included).
  j->lockFd_ = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (j->lockFd_ < 0) {
    return unavailable("embedded store: cannot open lock file " + lockPath + ": " + errnoText());
  }
  return j;
}

Journal::~Journal() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  if (lockFd_ >= 0) {
    ::close(lockFd_);  // releases the writer lock if held
  }
  if (serveFd_ >= 0) {
    ::close(serveFd_);  // releases the serve claim
  }
}

Status Journal::lock() {
  while (::flock(lockFd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      return unavailable("embedded store: cannot lock " + dir_ + "/" + kLockName + ": " +
                         errnoText());
    }
  }
  locked_ = true;
  return Status::ok();
}

void Journal::unlock() {
  if (locked_) {
    ::flock(lockFd_, LOCK_UN);
    locked_ = false;
  }
}

Status Journal::openFd() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return unavailable("embedded store: cannot open journal " + path_ + ": " + errnoText());
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    return unavailable("embedded store: cannot stat journal " + path_ + ": " + errnoText());
  }
  // The identity of the file actually opened (path_ may have been renamed over since a stat).
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  return Status::ok();
}

Status Journal::poll(Delta* out) {
  *out = Delta{};
  bool reopen = false;
  struct stat ps {};
  if (::stat(path_.c_str(), &ps) != 0) {
    if (errno != ENOENT) {
      return unavailable("embedded store: cannot stat journal " + path_ + ": " + errnoText());
    }
    if (!locked_) {
      return Status::ok();  // removed by hand: keep what we have; the next write recreates it
    }
    reopen = true;
  } else if (fd_ < 0 || ps.st_ino != ino_ || ps.st_dev != dev_) {
    reopen = true;  // first poll, or a compaction renamed a new file over the path
  } else if (ps.st_size == offset_) {
    return Status::ok();  // the hot path: nothing new
  } else if (ps.st_size < offset_) {
    reopen = true;  // cut below what we read (outside interference): read it all again
  }
  if (reopen) {
    Status s = openFd();
    if (!s) {
      return s;
    }
    offset_ = 0;
    out->reloaded = true;
  }
  std::string data;
  char buf[65536];
  for (;;) {
    off_t at = static_cast<off_t>(offset_ + static_cast<int64_t>(data.size()));
    ssize_t n = ::pread(fd_, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return unavailable("embedded store: cannot read journal " + path_ + ": " + errnoText());
    }
    if (n == 0) {
      break;
    }
    data.append(buf, static_cast<size_t>(n));
  }
  size_t start = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    if (nl == std::string::npos) {
      break;
    }
    if (nl > start) {
      out->lines.emplace_back(data, start, nl - start);
    }
    start = nl + 1;
  }
  offset_ += static_cast<int64_t>(start);
  if (start < data.size() && locked_) {
    // Every writer holds the lock for its whole write(), so with the lock held a partial line
    // can only be what a crash left. Cut it so that the next append starts on a clean line.
    out->tornBytes = data.size() - start;
    if (::ftruncate(fd_, static_cast<off_t>(offset_)) != 0) {
      return unavailable("embedded store: cannot cut the torn tail of " + path_ + ": " +
                         errnoText());
    }
  }
  return Status::ok();
}

Status Journal::append(const std::string& line) {
  if (!locked_ || fd_ < 0) {
    return internalError("embedded store: journal append without the writer lock");
  }
  std::string buf;
  buf.reserve(line.size() + 1);
  buf.append(line).push_back('\n');
  ssize_t n;
  do {
    n = ::write(fd_, buf.data(), buf.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(buf.size())) {
    std::string why = n < 0 ? errnoText() : "short write (disk full?)";
    // Never leave half a record behind: the next append would glue onto it.
    if (n > 0 && ::ftruncate(fd_, static_cast<off_t>(offset_)) != 0) {
      why += "; cutting the partial line failed too: " + errnoText();
    }
    return unavailable("embedded store: journal write failed: " + why);
  }
  offset_ += n;
  if (fsync_ && ::fdatasync(fd_) != 0) {
    return unavailable("embedded store: journal fsync failed: " + errnoText());
  }
  return Status::ok();
}

Status Journal::rewrite(const std::string& content) {
  if (!locked_) {
    return internalError("embedded store: journal rewrite without the writer lock");
  }
  std::string tmp = dir_ + "/" + kTempName;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return unavailable("embedded store: cannot create " + tmp + ": " + errnoText());
  }
  Status s = writeAll(fd, content.data(), content.size(), tmp);
  if (s && ::fsync(fd) != 0) {
    s = unavailable("embedded store: fsync of " + tmp + " failed: " + errnoText());
  }
  ::close(fd);
  if (!s) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    Status r =
        unavailable("embedded store: cannot rename " + tmp + " to " + path_ + ": " + errnoText());
    ::unlink(tmp.c_str());
    return r;
  }
  // Other processes notice the new inode at their next poll and replay it from the start.
  Status o = openFd();
  if (!o) {
    return o;
  }
  offset_ = static_cast<int64_t>(content.size());
  return fsyncDir(dir_);
}

Status Journal::claimServe() {
  if (serveFd_ >= 0) {
    return Status::ok();
  }
  std::string p = dir_ + "/" + kServeLockName;
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return unavailable("embedded store: cannot open " + p + ": " + errnoText());
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      return unavailable("embedded store: cannot lock " + p + ": " + std::strerror(err));
    }
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) {
      pid.pop_back();
    }
    return failedPrecondition("data dir " + dir_ +
                              " is already served by another relaygate process (pid " +
                              (pid.empty() ? std::string("unknown") : pid) + ")");
  }
  // Only the holder writes the file, so the pid in it always names the current server.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    std::string why = errnoText();
    ::close(fd);
    return unavailable("embedded store: cannot write " + p + ": " + why);
  }
  serveFd_ = fd;
  return Status::ok();
}

}  // namespace rg::storage
