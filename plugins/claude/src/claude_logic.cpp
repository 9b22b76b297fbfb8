#include "claude_logic.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>

namespace rg::claude {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool icontains(std::string_view hay, std::string_view needle) {
  return lower(hay).find(lower(needle)) != std::string::npos;
}

// The allow-list of §6.1 minus `connection` (hop-by-hop: the host owns the upstream connection).
constexpr std::string_view kForwarded[] = {
    "accept",
    "x-stainless-retry-count",
    "x-stainless-timeout",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-helper-method",
    "anthropic-dangerous-direct-browser-access",
    "anthropic-version",
    "x-app",
    "anthropic-beta",
    "accept-language",
    "sec-fetch-mode",
    "user-agent",
    "content-type",
};

using rapidjson::Value;

const Value* member(const Value& obj, const char* name) {
  if (!obj.IsObject()) {
    return nullptr;
  }
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

uint64_t u64(const Value& obj, const char* name) {
  const Value* v = member(obj, name);
  if (v == nullptr) {
    return 0;
  }
  if (v->IsUint64()) {
    return v->GetUint64();
  }
  if (v->IsNumber() && v->GetDouble() > 0) {
    // A client may send any number (1e300): clamp instead of an undefined conversion.
    double d = v->GetDouble();
    return d >= 18446744073709551615.0 ? UINT64_MAX : static_cast<uint64_t>(d);
  }
  return 0;
}

std::string str(const Value& obj, const char* name) {
  const Value* v = member(obj, name);
  return v != nullptr && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : "";
}

bool isEphemeral(const Value& block) {
  const Value* cc = member(block, "cache_control");
  return cc != nullptr && str(*cc, "type") == "ephemeral";
}

// Text of a `content` or `system` value: a string, or the text of its text blocks, joined.
std::string textOf(const Value& v) {
  if (v.IsString()) {
    return std::string(v.GetString(), v.GetStringLength());
  }
  std::string out;
  if (v.IsArray()) {
    for (const Value& b : v.GetArray()) {
      if (b.IsString()) {
        out.append(b.GetString(), b.GetStringLength());
      } else {
        out += str(b, "text");
      }
    }
  }
  return out;
}

bool hasCacheControlBlock(const Value& messages) {
  for (const Value& m : messages.GetArray()) {
    const Value* c = member(m, "content");
    if (c != nullptr && c->IsArray()) {
      for (const Value& b : c->GetArray()) {
        if (member(b, "cache_control") != nullptr) {
          return true;
        }
      }
    }
  }
  return false;
}

std::string firstMessageText(const Value& messages) {
  for (const Value& m : messages.GetArray()) {
    const Value* c = member(m, "content");
    if (c != nullptr) {
      std::string t = textOf(*c);
      if (!t.empty()) {
        return t;
      }
    }
  }
  return "";
}

// The session id inside metadata.user_id: the JSON-string form first, then the legacy
// `user_<hex>_account_<uuid?>_session_<uuid>` form.
std::string sessionIdFromUserId(const std::string& userId) {
  if (!userId.empty() && userId.front() == '{') {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(userId.data(), userId.size());
    if (!d.HasParseError() && d.IsObject()) {
      std::string sid = str(d, "session_id");
      if (!sid.empty()) {
        return sid;
      }
    }
  }
  size_t p = userId.rfind("_session_");
  if (p != std::string::npos && userId.rfind("user_", 0) == 0) {
    std::string sid = userId.substr(p + 9);
    bool ok = sid.size() == 36;
    for (char c : sid) {
      ok = ok && (std::isxdigit(static_cast<unsigned char>(c)) || c == '-');
    }
    if (ok) {
      return sid;
    }
  }
  return "";
}

SessionSource sessionSource(const Value& doc) {
  SessionSource s;
  if (const Value* meta = member(doc, "metadata")) {
    std::string sid = sessionIdFromUserId(str(*meta, "user_id"));
    if (!sid.empty()) {
      s.raw = true;
      s.value = sid;
      return s;
    }
  }
  const Value* system = member(doc, "system");
  const Value* messages = member(doc, "messages");
  if (messages != nullptr && !messages->IsArray()) {
    messages = nullptr;
  }
  std::string cacheable;
  if (system != nullptr && system->IsArray()) {
    for (const Value& b : system->GetArray()) {
      if (isEphemeral(b)) {
        cacheable += str(b, "text");
      }
    }
  }
  if (messages != nullptr && hasCacheControlBlock(*messages)) {
    cacheable += firstMessageText(*messages);
  }
  if (!cacheable.empty()) {
    s.value = cacheable;
    return s;
  }
  if (system != nullptr) {
    s.value = textOf(*system);
    if (!s.value.empty()) {
      return s;
    }
  }
  if (messages != nullptr) {
    s.value = firstMessageText(*messages);
  }
  return s;
}

size_t utf8Chars(const char* p, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < n; ++i) {
    if ((static_cast<unsigned char>(p[i]) & 0xC0) != 0x80) {
      ++chars;
    }
  }
  return chars;
}

size_t utf8Chars(const Value& v) {
  return v.IsString() ? utf8Chars(v.GetString(), v.GetStringLength()) : 0;
}

// An image, or a block carrying binary media by reference or base64 (a PDF document): its bytes
// say nothing about its token cost, so it counts as a fixed kMediaBlockTokens.
bool isMediaBlock(const Value& obj) {
  if (str(obj, "type") == "image") {
    return true;
  }
  const Value* source = member(obj, "source");
  if (source == nullptr) {
    return false;
  }
  std::string t = str(*source, "type");
  return t == "base64" || t == "url" || t == "file";
}

// Adds the size of `root` to *out. Iterative, so a deeply nested body cannot exhaust the stack.
void measurePrompt(const Value& root, PromptSize* out) {
  std::vector<const Value*> todo{&root};
  while (!todo.empty()) {
    const Value& v = *todo.back();
    todo.pop_back();
    if (v.IsString()) {
      out->chars += utf8Chars(v.GetString(), v.GetStringLength());
    } else if (v.IsArray()) {
      for (const Value& e : v.GetArray()) {
        todo.push_back(&e);
      }
    } else if (v.IsObject()) {
      if (isMediaBlock(v)) {
        ++out->mediaBlocks;
        continue;
      }
      for (const auto& m : v.GetObject()) {
        out->chars += utf8Chars(m.name.GetString(), m.name.GetStringLength());
        todo.push_back(&m.value);
      }
    }
    // Numbers, booleans and null carry (almost) no prompt text: not counted.
  }
}

// Fills cache fields per §6.3: with the detailed cache_creation object, 5m + 1h replace the total.
void readUsage(const Value& u, Usage* out, bool onlyNonZero) {
  auto set = [&](uint64_t* field, uint64_t v) {
    if (!onlyNonZero || v != 0) {
      *field = v;
    }
  };
  set(&out->input, u64(u, "input_tokens"));
  set(&out->cacheRead, u64(u, "cache_read_input_tokens"));
  const Value* detail = member(u, "cache_creation");
  if (detail != nullptr && detail->IsObject()) {
    uint64_t m5 = u64(*detail, "ephemeral_5m_input_tokens");
    uint64_t h1 = u64(*detail, "ephemeral_1h_input_tokens");
    if (!onlyNonZero || m5 + h1 != 0) {
      out->cache5m = m5;
      out->cache1h = h1;
    }
  } else {
    uint64_t total = u64(u, "cache_creation_input_tokens");
    if (!onlyNonZero || total != 0) {
      out->cache5m = total;
      out->cache1h = 0;
    }
  }
}

void add(Usage* to, const Usage& u) {
  to->input += u.input;
  to->output += u.output;
  to->cache5m += u.cache5m;
  to->cache1h += u.cache1h;
  to->cacheRead += u.cacheRead;
  if (!u.model.empty()) {
    to->model = u.model;
  }
}

int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// "YYYYMMDD" at the end of a model id -> unix ms; 0 if none.
uint64_t releaseDateMs(const std::string& id) {
  if (id.size() < 9 || id[id.size() - 9] != '-') {
    return 0;
  }
  std::string d = id.substr(id.size() - 8);
  if (!std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return 0;
  }
  int y = std::stoi(d.substr(0, 4));
  unsigned m = static_cast<unsigned>(std::stoi(d.substr(4, 2)));
  unsigned day = static_cast<unsigned>(std::stoi(d.substr(6, 2)));
  if (m < 1 || m > 12 || day < 1 || day > 31) {
    return 0;
  }
  return static_cast<uint64_t>(daysFromCivil(y, m, day)) * 86400000ull;
}

// Parses an HTTP date (IMF-fixdate, GMT) or an ISO-8601 time (optional fraction; "Z", "+hh:mm",
// "+hhmm" or no zone = UTC) to unix ms; 0 on failure.
uint64_t parseDateMs(std::string_view v) {
  std::string s(v);
  std::tm tm{};
  int64_t offsetSecs = 0;
  uint64_t fractionMs = 0;
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) {
    tm = std::tm{};
    end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == nullptr) {
      return 0;
    }
    if (*end == '.') {
      uint64_t scale = 100;
      for (++end; *end >= '0' && *end <= '9'; ++end) {
        fractionMs += static_cast<uint64_t>(*end - '0') * scale;
        scale /= 10;
      }
    }
    if (*end == '+' || *end == '-') {
      int sign = *end == '+' ? 1 : -1;
      std::string digits;
      for (const char* p = end + 1; *p != '\0'; ++p) {
        if (*p >= '0' && *p <= '9') {
          digits += *p;
        } else if (*p != ':') {
          return 0;
        }
      }
      if (digits.size() != 4) {
        return 0;
      }
      int minutes = std::stoi(digits.substr(0, 2)) * 60 + std::stoi(digits.substr(2));
      offsetSecs = sign * minutes * 60;
    } else if (*end != '\0' && *end != 'Z' && *end != 'z') {
      return 0;
    }
  }
  int64_t days = daysFromCivil(tm.tm_year + 1900, static_cast<unsigned>(tm.tm_mon + 1),
                               static_cast<unsigned>(tm.tm_mday));
  int64_t secs = days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec - offsetSecs;
  return secs > 0 ? static_cast<uint64_t>(secs) * 1000 + fractionMs : 0;
}

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string_view findHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequals(h.first, name)) {
      return trimmed(h.second);
    }
  }
  return {};
}

// A JSON string literal (with quotes) for `text`, escaped as rapidjson does.
std::string jsonString(std::string_view text) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return std::string(sb.GetString(), sb.GetSize());
}

// The text of a JSON string literal (with quotes); false when it is not one.
bool decodeJsonString(std::string_view literal, std::string* out) {
  if (literal.size() >= 2 && literal.find('\\') == std::string_view::npos) {
    out->assign(literal.substr(1, literal.size() - 2));
    return true;
  }
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(literal.data(), literal.size());
  if (d.HasParseError() || !d.IsString()) {
    return false;
  }
  out->assign(d.GetString(), d.GetStringLength());
  return true;
}

// Walks JSON text without building it, so callers get byte offsets of the values they look for.
// It checks structure (strings, nesting, separators), not the grammar of numbers and literals:
// the body was validated as JSON by parse_request already.
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view s) : s_(s) {}
  size_t pos() const { return p_; }
  bool atEnd() const { return p_ >= s_.size(); }
  char peek() const { return atEnd() ? '\0' : s_[p_]; }
  void skipWs() {
    while (!atEnd() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) {
      ++p_;
    }
  }
  bool consume(char c) {
    skipWs();
    if (peek() != c) {
      return false;
    }
    ++p_;
    return true;
  }
  // At a '"': moves past the closing quote.
  bool skipString() {
    if (peek() != '"') {
      return false;
    }
    for (++p_; p_ < s_.size(); ++p_) {
      if (s_[p_] == '\\') {
        ++p_;  // the escaped character cannot end the string
      } else if (s_[p_] == '"') {
        ++p_;
        return true;
      }
    }
    return false;
  }
  bool skipValue() {
    skipWs();
    char c = peek();
    if (c == '"') {
      return skipString();
    }
    if (c == '{' || c == '[') {
      int depth = 0;
      while (!atEnd()) {
        char x = s_[p_];
        if (x == '"') {
          if (!skipString()) {
            return false;
          }
          continue;
        }
        ++p_;
        if (x == '{' || x == '[') {
          ++depth;
        } else if (x == '}' || x == ']') {
          if (--depth == 0) {
            return true;
          }
        }
      }
      return false;
    }
    size_t start = p_;
    while (!atEnd() && std::strchr(",}] \t\r\n", s_[p_]) == nullptr) {
      ++p_;
    }
    return p_ > start;
  }

 private:
  std::string_view s_;
  size_t p_ = 0;
};

}  // namespace

std::pair<std::string, std::string> authHeaderFor(std::string_view accountType,
                                                  std::string_view secret) {
  if (accountType == kOfficialType) {
    return {"authorization", "Bearer " + std::string(secret)};
  }
  return authHeader(secret);
}

std::string mergeBetas(const std::vector<std::string_view>& clientValues,
                       std::string_view required) {
  std::vector<std::string_view> flags;
  auto addFlag = [&](std::string_view f) {
    f = trimmed(f);
    if (!f.empty() && std::find(flags.begin(), flags.end(), f) == flags.end()) {
      flags.push_back(f);
    }
  };
  for (std::string_view v : clientValues) {
    size_t pos = 0;
    while (pos <= v.size()) {
      size_t comma = v.find(',', pos);
      size_t end = comma == std::string_view::npos ? v.size() : comma;
      addFlag(v.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  addFlag(required);
  std::string out;
  for (std::string_view f : flags) {
    if (!out.empty()) {
      out += ',';
    }
    out.append(f.data(), f.size());
  }
  return out;
}

bool rewriteTopLevelModel(std::string_view body, std::string_view newModel, std::string* out) {
  JsonScanner sc(body);
  if (!sc.consume('{')) {
    return false;
  }
  std::vector<std::pair<size_t, size_t>> spans;  // [begin, end) of each value to replace
  sc.skipWs();
  if (sc.peek() == '}') {
    return false;
  }
  for (;;) {
    sc.skipWs();
    size_t keyBegin = sc.pos();
    if (!sc.skipString()) {
      return false;
    }
    std::string_view keyLiteral = body.substr(keyBegin, sc.pos() - keyBegin);
    if (!sc.consume(':')) {
      return false;
    }
    sc.skipWs();
    size_t valueBegin = sc.pos();
    bool isString = sc.peek() == '"';
    if (!sc.skipValue()) {
      return false;
    }
    std::string key;
    std::string value;
    if (isString && decodeJsonString(keyLiteral, &key) && key == "model" &&
        decodeJsonString(body.substr(valueBegin, sc.pos() - valueBegin), &value) &&
        value != newModel) {
      spans.emplace_back(valueBegin, sc.pos());
    }
    if (sc.consume(',')) {
      continue;
    }
    if (sc.consume('}')) {
      break;
    }
    return false;
  }
  sc.skipWs();
  if (!sc.atEnd() || spans.empty()) {
    return false;
  }
  std::string quoted = jsonString(newModel);
  std::string result;
  result.reserve(body.size() + quoted.size());
  size_t copied = 0;
  for (const auto& span : spans) {
    result.append(body.data() + copied, span.first - copied);
    result += quoted;
    copied = span.second;
  }
  result.append(body.data() + copied, body.size() - copied);
  *out = std::move(result);
  return true;
}

bool isForwardedHeader(std::string_view name) {
  for (std::string_view allowed : kForwarded) {
    if (iequals(name, allowed)) {
      return true;
    }
  }
  return false;
}

std::string buildUpstreamUrl(std::string_view baseUrl, bool countTokens, std::string_view query) {
  while (!baseUrl.empty() && baseUrl.back() == '/') {
    baseUrl.remove_suffix(1);
  }
  std::string url(baseUrl);
  url += countTokens ? "/v1/messages/count_tokens" : "/v1/messages";
  if (!query.empty()) {
    url += '?';
    url.append(query.data(), query.size());
  }
  return url;
}

std::pair<std::string, std::string> authHeader(std::string_view secret) {
  if (secret.rfind("sk-ant-", 0) == 0) {
    return {"x-api-key", std::string(secret)};
  }
  return {"authorization", "Bearer " + std::string(secret)};
}

ParsedRequest parseRequestBody(std::string_view body) {
  ParsedRequest r;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return r;
  }
  r.validJson = true;
  r.model = str(doc, "model");
  const Value* stream = member(doc, "stream");
  r.stream = stream != nullptr && stream->IsBool() && stream->GetBool();
  r.session = sessionSource(doc);
  r.maxTokens = u64(doc, "max_tokens");
  for (const char* field : {"system", "messages", "tools"}) {
    if (const Value* v = member(doc, field)) {
      measurePrompt(*v, &r.prompt);
    }
  }
  return r;
}

std::string hexPrefix(const uint8_t* digest, size_t bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (size_t i = 0; i < bytes; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

const char* modelFamily(std::string_view model) {
  std::string m = lower(model);
  for (const char* f : {"opus", "sonnet", "haiku", "fable"}) {
    if (m.find(f) != std::string::npos) {
      return f;
    }
  }
  return "";
}

bool SseUsageTracker::onEvent(std::string_view event, std::string_view data) {
  bool isStart = event == "message_start";
  bool isDelta = event == "message_delta";
  bool isBlockDelta = event == "content_block_delta";
  if (!isStart && !isDelta && !isBlockDelta) {
    return false;
  }
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(data.data(), data.size());
  if (d.HasParseError() || !d.IsObject()) {
    return false;
  }
  if (isStart) {
    if (inMessage_) {
      add(&done_, cur_.usage);  // the previous message is complete (or cut): sum it
    }
    cur_ = Message{};
    inMessage_ = true;
    seenStart_ = true;
    const Value* msg = member(d, "message");
    if (msg != nullptr) {
      cur_.usage.model = str(*msg, "model");
      if (const Value* u = member(*msg, "usage")) {
        readUsage(*u, &cur_.usage, false);
        cur_.startOutput = u64(*u, "output_tokens");
        cur_.usage.output = cur_.startOutput;
      }
    }
    return true;
  }
  if (isDelta) {
    seenDelta_ = true;
    inMessage_ = true;
    const Value* u = member(d, "usage");
    if (u == nullptr) {
      return false;
    }
    readUsage(*u, &cur_.usage, true);
    if (member(*u, "output_tokens") != nullptr) {
      cur_.usage.output = u64(*u, "output_tokens");
      cur_.realOutput = true;
    }
    return true;
  }
  // content_block_delta: only feeds the estimate.
  if (cur_.realOutput) {
    return false;
  }
  const Value* delta = member(d, "delta");
  if (delta == nullptr) {
    return false;
  }
  for (const char* field : {"text", "thinking", "partial_json"}) {
    if (const Value* v = member(*delta, field)) {
      cur_.deltaChars += utf8Chars(*v);
    }
  }
  uint64_t estimate = std::max(cur_.startOutput, (cur_.deltaChars + 3) / 4);
  if (estimate != cur_.usage.output) {
    cur_.usage.output = estimate;
    return true;
  }
  return false;
}

Usage SseUsageTracker::totals() const {
  Usage t = done_;
  add(&t, cur_.usage);
  return t;
}

bool parseJsonUsage(std::string_view body, Usage* out) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    return false;
  }
  const Value* u = member(d, "usage");
  if (u == nullptr || !u->IsObject()) {
    return false;
  }
  *out = Usage{};
  readUsage(*u, out, false);
  out->output = u64(*u, "output_tokens");
  out->model = str(d, "model");
  return true;
}

uint64_t parseRetryAfterMs(std::string_view value, uint64_t nowUnixMs) {
  value = trimmed(value);
  if (value.empty()) {
    return 0;
  }
  if (allDigits(value)) {
    return value.size() > 12 ? 0 : std::stoull(std::string(value)) * 1000;
  }
  uint64_t at = parseDateMs(value);
  return at > nowUnixMs ? at - nowUnixMs : 0;
}

ErrorVerdict classifyError(uint32_t status, const HeaderList& headers, std::string_view body,
                           std::string_view requestModel, uint64_t nowUnixMs) {
  ErrorVerdict v;
  v.retryAfterMs = parseRetryAfterMs(findHeader(headers, "retry-after"), nowUnixMs);
  if (status < 400) {
    return v;
  }
  if ((status == 400 || status == 403) &&
      (icontains(body, "organization has been disabled") ||
       icontains(body, "OAuth authentication is currently not allowed"))) {
    v.cls = ErrorClass::kBlocked;
    v.reason = "account disabled by the vendor";
    return v;
  }
  if (status == 402 ||
      ((status == 400 || status == 403) && icontains(body, "credit balance is too low"))) {
    v.cls = ErrorClass::kQuotaExhausted;
    v.reason = "account credit exhausted";
    return v;
  }
  if (status == 400 &&
      (icontains(body, "prompt is too long") || icontains(body, "exceed context limit") ||
       icontains(body, "context window") || icontains(body, "context length"))) {
    v.cls = ErrorClass::kContextTooLong;
    v.reason = "prompt too long";
    return v;
  }
  if (status == 401 || status == 403) {
    v.cls = ErrorClass::kAuth;
    v.reason = status == 401 ? "credential rejected (401)" : "permission denied (403)";
    return v;
  }
  if (status == 429) {
    std::string_view reset = findHeader(headers, "anthropic-ratelimit-unified-reset");
    if (icontains(body, "extra usage") || reset.empty()) {
      // Not an account limit (§4.4): return it to the client as is.
      v.cls = ErrorClass::kClient;
      v.reason = "rate limited (not an account limit)";
      return v;
    }
    v.cls = ErrorClass::kRateLimited;
    v.reason = "account rate limited until the unified reset";
    // The family of the model the client asked for (not the account's upstream mapping): the
    // host keeps per-family limits under the requested name. Unknown family = whole account.
    v.scope = modelFamily(requestModel);
    if (allDigits(reset)) {
      // Unix seconds per the API; a 13-digit value is taken as milliseconds.
      uint64_t n = reset.size() > 13 ? 0 : std::stoull(std::string(reset));
      v.untilUnixMs = n >= 100'000'000'000ull ? n : n * 1000;
    } else {
      v.untilUnixMs = parseDateMs(reset);
    }
    if (v.untilUnixMs == 0 && v.retryAfterMs != 0) {
      v.untilUnixMs = nowUnixMs + v.retryAfterMs;  // unreadable reset: Retry-After still bounds it
    }
    return v;
  }
  if (status == 529) {
    v.cls = ErrorClass::kOverloaded;
    v.reason = "upstream overloaded (529)";
    return v;
  }
  if (status >= 500) {
    v.cls = ErrorClass::kTransient;
    v.reason = "upstream server error";
    return v;
  }
  v.cls = ErrorClass::kClient;
  v.reason = "client error";
  return v;
}

std::vector<ModelEntry> defaultModels() {
  return {
      {"claude-opus-4-5-20251101", "Claude Opus 4.5"},
      {"claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"},
      {"claude-haiku-4-5-20251001", "Claude Haiku 4.5"},
      {"claude-opus-4-1-20250805", "Claude Opus 4.1"},
      {"claude-opus-4-20250514", "Claude Opus 4"},
      {"claude-sonnet-4-20250514", "Claude Sonnet 4"},
      {"claude-3-7-sonnet-20250219", "Claude Sonnet 3.7"},
      {"claude-3-5-haiku-20241022", "Claude Haiku 3.5"},
  };
}

bool parseConfig(std::string_view json, Config* out, std::string* error) {
  *out = Config{};
  out->models = defaultModels();
  if (trimmed(json).empty()) {
    return true;
  }
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    *error = "plugin config is not a JSON object";
    return false;
  }
  if (const Value* models = member(d, "models")) {
    if (!models->IsArray()) {
      *error = "config 'models' must be an array";
      return false;
    }
    std::vector<ModelEntry> list;
    for (const Value& m : models->GetArray()) {
      ModelEntry e;
      if (m.IsString()) {
        e.id.assign(m.GetString(), m.GetStringLength());
      } else if (m.IsObject()) {
        e.id = str(m, "id");
        e.displayName = str(m, "display_name");
      }
      if (e.id.empty()) {
        *error = "config 'models' entries must be ids or objects with an 'id'";
        return false;
      }
      if (e.displayName.empty()) {
        for (const ModelEntry& known : defaultModels()) {
          if (known.id == e.id) {
            e.displayName = known.displayName;
          }
        }
      }
      if (e.displayName.empty()) {
        e.displayName = e.id;
      }
      list.push_back(std::move(e));
    }
    out->models = std::move(list);
  }
  if (const Value* v = member(d, "anthropic_version")) {
    if (!v->IsString() || v->GetStringLength() == 0) {
      *error = "config 'anthropic_version' must be a non-empty string";
      return false;
    }
    out->anthropicVersion.assign(v->GetString(), v->GetStringLength());
  }
  return true;
}

std::string isoTime(uint64_t unixMs) {
  std::time_t t = static_cast<std::time_t>(unixMs / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string modelsJson(const std::vector<ModelEntry>& models, uint64_t nowUnixMs) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.StartArray();
  for (const ModelEntry& m : models) {
    uint64_t created = releaseDateMs(m.id);
    if (created == 0) {
      created = nowUnixMs;
    }
    std::string iso = isoTime(created);
    w.StartObject();
    w.Key("id");
    w.String(m.id.c_str(), static_cast<rapidjson::SizeType>(m.id.size()));
    w.Key("object");
    w.String("model");
    w.Key("type");
    w.String("model");
    w.Key("display_name");
    w.String(m.displayName.c_str(), static_cast<rapidjson::SizeType>(m.displayName.size()));
    w.Key("created");
    w.Uint64(created / 1000);
    w.Key("created_at");
    w.String(iso.c_str(), static_cast<rapidjson::SizeType>(iso.size()));
    w.Key("owned_by");
    w.String("anthropic");
    w.EndObject();
  }
  w.EndArray();
  w.Key("has_more");
  w.Bool(false);
  w.Key("first_id");
  if (models.empty()) {
    w.Null();
  } else {
    w.String(models.front().id.c_str(), static_cast<rapidjson::SizeType>(models.front().id.size()));
  }
  w.Key("last_id");
  if (models.empty()) {
    w.Null();
  } else {
    w.String(models.back().id.c_str(), static_cast<rapidjson::SizeType>(models.back().id.size()));
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string meJson(std::string_view keyId, std::string_view keyName, uint64_t nowUnixMs) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  std::string id = "user_" + std::string(keyId);
  std::string iso = isoTime(nowUnixMs);
  w.StartObject();
  w.Key("id");
  w.String(id.c_str(), static_cast<rapidjson::SizeType>(id.size()));
  w.Key("type");
  w.String("user");
  w.Key("display_name");
  w.String(keyName.data(), static_cast<rapidjson::SizeType>(keyName.size()));
  w.Key("created_at");
  w.String(iso.c_str(), static_cast<rapidjson::SizeType>(iso.size()));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace rg::claude
