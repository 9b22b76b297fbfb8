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
  j->lockFd_ = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (j->lockFd_ < 0) {
    return unavailable("embedded store: cannot open lock file " + lockPath + ": " + errnoText());
  }
  // flock belongs to the open file description: a second open in this process conflicts too, and
  // the kernel drops it when the process dies (kill -9 included), so no stale lock survives.
  if (::flock(j->lockFd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return failedPrecondition("embedded store: data dir " + dataDir +
                                " is in use by another relaygate process (lock " + lockPath +
                                " is held); stop it or use another data dir");
    }
    return unavailable("embedded store: cannot lock " + lockPath + ": " + errnoText());
  }
  Status s = j->openAppendFd();
  if (!s) {
    return s;
  }
  return j;
}

Journal::~Journal() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  if (lockFd_ >= 0) {
    ::close(lockFd_);  // releases the flock
  }
}

Status Journal::openAppendFd() {
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
  size_ = st.st_size;
  return Status::ok();
}

Status Journal::readAll(std::vector<std::string>* lines, size_t* tornBytes) {
  *tornBytes = 0;
  std::string data;
  data.resize(static_cast<size_t>(size_));
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(fd_, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return unavailable("embedded store: cannot read journal " + path_ + ": " + errnoText());
    }
    if (n == 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  size_t start = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    if (nl == std::string::npos) {
      break;
    }
    if (nl > start) {
      lines->emplace_back(data, start, nl - start);
    }
    start = nl + 1;
  }
  if (start < data.size()) {
    *tornBytes = data.size() - start;
    if (::ftruncate(fd_, static_cast<off_t>(start)) != 0) {
      return unavailable("embedded store: cannot cut the torn tail of " + path_ + ": " +
                         errnoText());
    }
    size_ = static_cast<int64_t>(start);
  }
  return Status::ok();
}

Status Journal::append(const std::string& line) {
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
    if (n > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      why += "; cutting the partial line failed too: " + errnoText();
    }
    return unavailable("embedded store: journal write failed: " + why);
  }
  size_ += n;
  if (fsync_ && ::fdatasync(fd_) != 0) {
    return unavailable("embedded store: journal fsync failed: " + errnoText());
  }
  return Status::ok();
}

Status Journal::rewrite(const std::string& content) {
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
  s = fsyncDir(dir_);
  if (!s) {
    return s;
  }
  return openAppendFd();
}

}  // namespace rg::storage
