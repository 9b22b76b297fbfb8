#pragma once
// Splits a text/event-stream byte stream into events without altering a byte: the concatenation
// of every event's `raw` plus the final remainder equals the input, whatever the read boundaries
// (an event or a UTF-8 sequence split across reads comes out whole).

#include <string>
#include <string_view>
#include <vector>

namespace rg {

struct SseEvent {
  std::string raw;   // exact bytes including the terminating blank line
  std::string event; // `event:` field value
  std::string data;  // `data:` values joined with '\n'
};

class SseFramer {
public:
  // Appends bytes; complete events are appended to `out`.
  void feed(std::string_view bytes, std::vector<SseEvent>* out);
  // Bytes of an unterminated event still buffered (forwarded as-is at end of stream).
  std::string takeRemainder();
  size_t buffered() const { return buf_.size(); }

  // Parses the fields of one complete raw event (exposed for tests).
  static void parseFields(std::string_view raw, SseEvent* ev);

private:
  std::string buf_;
  size_t scanFrom_ = 0;
};

} // namespace rg
