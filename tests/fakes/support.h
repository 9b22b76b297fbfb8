#pragma once
// Small helpers every test binary may use: temp dirs that clean up, free loopback ports.

#include <string>

namespace rgtest {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

// Reads a whole file; empty string if it cannot be read.
std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content);

} // namespace rgtest
