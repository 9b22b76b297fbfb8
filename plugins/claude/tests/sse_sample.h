#pragma once
// Loads a recorded SSE stream from plugins/claude/testdata and frames it into events the way the
// SSE spec (and the host's framer) does: events end at a blank line, `data:` lines join with '\n',
// one optional space after the colon is dropped, CRLF and LF both end lines.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace rgtest {

struct SseSample {
  std::string raw;  // exact bytes including the terminating blank line
  std::string event;
  std::string data;
};

inline std::string readTestdata(const std::string& name) {
  std::ifstream in(std::string(RG_CLAUDE_TESTDATA_DIR) + "/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<SseSample> frameSse(const std::string& all) {
  std::vector<SseSample> out;
  SseSample cur;
  bool hasData = false;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t eol = all.find('\n', pos);
    size_t next = eol == std::string::npos ? all.size() : eol + 1;
    std::string line = all.substr(pos, (eol == std::string::npos ? all.size() : eol) - pos);
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    cur.raw += all.substr(pos, next - pos);
    pos = next;
    if (line.empty()) {
      if (!cur.event.empty() || hasData) {
        out.push_back(cur);
      }
      cur = SseSample{};
      hasData = false;
      continue;
    }
    size_t colon = line.find(':');
    std::string field = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') {
      value.erase(0, 1);
    }
    if (field == "event") {
      cur.event = value;
    } else if (field == "data") {
      cur.data += (hasData ? "\n" : "") + value;
      hasData = true;
    }
  }
  return out;
}

inline std::vector<SseSample> loadSse(const std::string& name) {
  return frameSse(readTestdata(name));
}

}  // namespace rgtest
