#include "admin/admin_token.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "crypto/crypto.h"

namespace rg {

namespace {

constexpr size_t kMinTokenLength = 32;

bool printableToken(const std::string& t) {
  return std::all_of(t.begin(), t.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
}

StatusOr<std::string> readToken(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.size() < kMinTokenLength || !printableToken(token)) {
    return invalidArgument(path +
                           " is corrupt (expected one line of at least 32 printable "
                           "characters, as generated: rga_ + 64 hex); fix or delete it");
  }
  return token;
}

}  // namespace

StatusOr<std::string> loadOrCreateAdminToken(const std::string& configured,
                                             const std::string& dataDir, bool* generated) {
  *generated = false;
  if (!configured.empty()) {
    if (configured.size() < kMinTokenLength || !printableToken(configured)) {
      return invalidArgument(
          "the admin token must be at least 32 printable characters "
          "without spaces");
    }
    return configured;
  }
  std::error_code ec;
  std::filesystem::create_directories(dataDir, ec);
  if (ec) {
    return unavailable("cannot create data dir " + dataDir + ": " + ec.message());
  }
  const std::string path = dataDir + "/admin.token";
  if (::access(path.c_str(), F_OK) == 0) {
    return readToken(path);
  }
  std::string token = "rga_" + crypto::toHex(crypto::randomBytes(32));
  // A name of our own for the temporary file, so two processes starting at once do not write
  // into the same one.
  std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + crypto::toHex(crypto::randomBytes(4));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return unavailable("cannot write " + tmp + ": " + std::strerror(errno));
  }
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return unavailable("cannot write " + tmp);
  }
  // link() is the no-clobber form of rename(): equally atomic, but when another process created
  // the token first, both end up using that one instead of the last writer silently winning.
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (err == EEXIST) {
      return readToken(path);
    }
    return unavailable("cannot write " + path + ": " + std::strerror(err));
  }
  int dfd = ::open(dataDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the new name survives a power loss
    ::close(dfd);
  }
  *generated = true;
  return token;
}

}  // namespace rg
