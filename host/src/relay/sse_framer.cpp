#include "relay/sse_framer.h"

namespace rg {

namespace {

// Finds the end (one past) of the first event in buf starting the scan at `from`; npos if none.
// An event ends at a blank line: two consecutive line terminators (\n, \r\n or \r).
size_t findEventEnd(const std::string& buf, size_t from) {
  size_t i = from;
  const size_t n = buf.size();
  while (i < n) {
    char c = buf[i];
    if (c != '\n' && c != '\r') {
      ++i;
      continue;
    }
    // i is the start of a line terminator; find its end.
    size_t eol = i + 1;
    if (c == '\r') {
      if (eol >= n) {
        return std::string::npos; // might be \r\n: wait for more
      }
      if (buf[eol] == '\n') {
        ++eol;
      }
    }
    // Is the next line empty (another terminator right away)?
    if (eol >= n) {
      return std::string::npos;
    }
    char d = buf[eol];
    if (d == '\n') {
      return eol + 1;
    }
    if (d == '\r') {
      if (eol + 1 >= n) {
        return std::string::npos;
      }
      return buf[eol + 1] == '\n' ? eol + 2 : eol + 1;
    }
    i = eol;
  }
  return std::string::npos;
}

} // namespace

void SseFramer::parseFields(std::string_view raw, SseEvent* ev) {
  size_t p = 0;
  bool firstData = true;
  while (p < raw.size()) {
    size_t e = raw.find_first_of("\r\n", p);
    std::string_view line = raw.substr(p, e == std::string_view::npos ? raw.size() - p : e - p);
    if (e == std::string_view::npos) {
      p = raw.size();
    } else {
      p = e + 1;
      if (raw[e] == '\r' && p < raw.size() && raw[p] == '\n') {
        ++p;
      }
    }
    if (line.empty() || line.front() == ':') {
      continue;
    }
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
      }
    }
    if (field == "event") {
      ev->event.assign(value);
    } else if (field == "data") {
      if (!firstData) {
        ev->data.push_back('\n');
      }
      ev->data.append(value);
      firstData = false;
    }
  }
}

void SseFramer::feed(std::string_view bytes, std::vector<SseEvent>* out) {
  buf_.append(bytes);
  size_t start = 0;
  size_t from = scanFrom_;
  for (;;) {
    size_t end = findEventEnd(buf_, from);
    if (end == std::string::npos) {
      break;
    }
    SseEvent ev;
    ev.raw.assign(buf_, start, end - start);
    parseFields(ev.raw, &ev);
    out->push_back(std::move(ev));
    start = end;
    from = end;
  }
  if (start > 0) {
    buf_.erase(0, start);
  }
  // Resume scanning a little before the end: a terminator may straddle reads.
  scanFrom_ = buf_.size() >= 3 ? buf_.size() - 3 : 0;
}

std::string SseFramer::takeRemainder() {
  std::string r;
  r.swap(buf_);
  scanFrom_ = 0;
  return r;
}

} // namespace rg
