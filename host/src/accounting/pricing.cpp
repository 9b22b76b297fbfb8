#include "accounting/pricing.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <unordered_set>
#include <vector>

namespace rg {

// GCC/Clang extension; __extension__ keeps -Wpedantic quiet. Rate products need > 64 bits.
__extension__ typedef __int128 Int128;

struct PriceTable::UnknownModels {
  std::mutex mu;
  std::unordered_set<std::string> warned; // guarded by mu
  std::atomic<uint64_t> requests{0};
};

namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
// Bounds the memory a client can make us spend by inventing model names.
constexpr size_t kMaxWarnedUnknownModels = 1000;
constexpr size_t kMaxLoggedModelNameChars = 128;
// 18 decimal digits always fit in int64 (max ~9.22e18).
constexpr size_t kMaxInt64Digits = 18;

constexpr std::string_view kInputField = "input_cost_per_token";
constexpr std::string_view kOutputField = "output_cost_per_token";
constexpr std::string_view kCacheCreateField = "cache_creation_input_token_cost";
constexpr std::string_view kCacheCreate1hField = "cache_creation_input_token_cost_above_1hr";
constexpr std::string_view kCacheReadField = "cache_read_input_token_cost";
constexpr std::string_view kInputAboveField = "input_cost_per_token_above_200k_tokens";
constexpr std::string_view kOutputAboveField = "output_cost_per_token_above_200k_tokens";
constexpr std::string_view kCacheCreateAboveField =
    "cache_creation_input_token_cost_above_200k_tokens";
constexpr std::string_view kCacheReadAboveField = "cache_read_input_token_cost_above_200k_tokens";

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// n / d rounded half up for n >= 0, half away from zero for n < 0; d > 0.
Int128 divRoundHalfUp(Int128 n, Int128 d) {
  if (n < 0) {
    return -((-n + d / 2) / d);
  }
  return (n + d / 2) / d;
}

int64_t saturate(Int128 v) {
  if (v > kInt64Max) {
    return kInt64Max;
  }
  if (v < -kInt64Max) {
    return -kInt64Max;
  }
  return static_cast<int64_t>(v);
}

// Parses an all-digit string of at most 18 digits.
int64_t digitsToInt(std::string_view digits) {
  int64_t v = 0;
  for (char c : digits) {
    v = v * 10 + (c - '0');
  }
  return v;
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool allDigits(std::string_view s) {
  for (char c : s) {
    if (!isDigit(c)) {
      return false;
    }
  }
  return !s.empty();
}

std::string_view stripLongContextSuffix(std::string_view s) {
  if (endsWith(s, "[1m]") || endsWith(s, "[1M]")) {
    return s.substr(0, s.size() - 4);
  }
  return s;
}

std::string_view stripVendorPrefix(std::string_view s) {
  if (startsWith(s, "anthropic/")) {
    return s.substr(10);
  }
  for (std::string_view region : {"us.", "eu.", "apac.", "global."}) {
    if (startsWith(s, region) && startsWith(s.substr(region.size()), "anthropic.")) {
      return s.substr(region.size() + 10);
    }
  }
  if (startsWith(s, "anthropic.")) {
    return s.substr(10);
  }
  return s;
}

// Vertex AI spells dated Claude ids "claude-sonnet-4-5@20250929".
std::string vertexDateToDash(std::string_view s) {
  std::string out(s);
  if (s.size() > 9 && s[s.size() - 9] == '@' && allDigits(s.substr(s.size() - 8))) {
    out[s.size() - 9] = '-';
  }
  return out;
}

// "-v1:0", "-v2:0" (Bedrock model version) or a bare ":0".
std::string_view stripBedrockVersion(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || !allDigits(s.substr(colon + 1))) {
    return s;
  }
  std::string_view head = s.substr(0, colon);
  size_t dashV = head.rfind("-v");
  if (dashV != std::string_view::npos && allDigits(head.substr(dashV + 2))) {
    return head.substr(0, dashV);
  }
  return head;
}

std::string_view stripTrailingDate(std::string_view s) {
  if (s.size() > 9 && s[s.size() - 9] == '-' && allDigits(s.substr(s.size() - 8))) {
    return s.substr(0, s.size() - 9);
  }
  return s;
}

std::vector<std::string> candidateNames(std::string_view model) {
  std::vector<std::string> out;
  auto add = [&out](std::string_view c) {
    if (!c.empty() && (out.empty() || out.back() != c)) {
      out.emplace_back(c);
    }
  };
  add(model);
  std::string_view s = stripLongContextSuffix(model);
  add(s);
  s = stripVendorPrefix(s);
  add(s);
  std::string vertex = vertexDateToDash(s);
  add(vertex);
  std::string_view v = stripBedrockVersion(vertex);
  add(v);
  add(stripTrailingDate(v));
  return out;
}

std::string printableModel(std::string_view model) {
  std::string out(model.substr(0, kMaxLoggedModelNameChars));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '?';
    }
  }
  if (model.size() > kMaxLoggedModelNameChars) {
    out += "...";
  }
  return out;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// tokens x price in femto with overflow detection.
int64_t mulTokens(int64_t tokens, int64_t price, bool& overflowed) {
  int64_t out = 0;
  if (__builtin_mul_overflow(tokens < 0 ? 0 : tokens, price, &out)) {
    overflowed = true;
    return kInt64Max;
  }
  return out;
}

int64_t addSat(int64_t a, int64_t b, bool& overflowed) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) {
    overflowed = true;
    return kInt64Max;
  }
  return out;
}

} // namespace

StatusOr<FemtoAmount> parseUsdToFemto(std::string_view text) {
  const std::string shown = quoted(text.substr(0, 40));
  size_t i = 0;
  if (i < text.size() && text[i] == '-') {
    return invalidArgument("price " + shown + " is negative");
  }
  std::string mantissa;
  size_t fracLen = 0;
  while (i < text.size() && isDigit(text[i])) {
    mantissa += text[i++];
  }
  if (mantissa.empty()) {
    return invalidArgument("price " + shown + " is not a decimal number");
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t start = i;
    while (i < text.size() && isDigit(text[i])) {
      mantissa += text[i++];
    }
    fracLen = i - start;
    if (fracLen == 0) {
      return invalidArgument("price " + shown + " is not a decimal number");
    }
  }
  int64_t exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool negExp = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
      negExp = text[i] == '-';
      ++i;
    }
    size_t start = i;
    while (i < text.size() && isDigit(text[i])) {
      // Clamp: any exponent beyond +-1e6 is treated as that bound (zero or out of range below).
      if (exponent < 1'000'000) {
        exponent = exponent * 10 + (text[i] - '0');
      }
      ++i;
    }
    if (i == start) {
      return invalidArgument("price " + shown + " is not a decimal number");
    }
    if (negExp) {
      exponent = -exponent;
    }
  }
  if (i != text.size()) {
    return invalidArgument("price " + shown + " is not a decimal number");
  }
  size_t firstNonZero = mantissa.find_first_not_of('0');
  if (firstNonZero == std::string::npos) {
    return FemtoAmount{0, true};
  }
  std::string digits = mantissa.substr(firstNonZero);
  // value = digits x 10^(exponent - fracLen); in femto: x 10^shift.
  const int64_t shift = exponent - static_cast<int64_t>(fracLen) + 15;
  const Status tooLarge = invalidArgument("price " + shown + " is out of range");
  if (shift >= 0) {
    if (static_cast<int64_t>(digits.size()) + shift > static_cast<int64_t>(kMaxInt64Digits)) {
      return tooLarge;
    }
    return FemtoAmount{digitsToInt(digits + std::string(static_cast<size_t>(shift), '0')), true};
  }
  const int64_t keep = static_cast<int64_t>(digits.size()) + shift; // integer digits
  if (keep > static_cast<int64_t>(kMaxInt64Digits)) {
    return tooLarge;
  }
  std::string_view whole;
  std::string rest;
  if (keep > 0) {
    whole = std::string_view(digits).substr(0, static_cast<size_t>(keep));
    rest = digits.substr(static_cast<size_t>(keep));
  } else if (keep > -2) {
    rest = std::string(static_cast<size_t>(-keep), '0') + digits;
  } else {
    rest = "00"; // far below half a femto-dollar: rounds to 0, and is inexact
  }
  FemtoAmount out;
  out.femto = whole.empty() ? 0 : digitsToInt(whole);
  out.exact = rest.find_first_not_of('0') == std::string::npos && keep > -2;
  if (rest[0] >= '5') {
    ++out.femto;
  }
  return out;
}

int64_t Cost::picoUsd() const { return saturate(divRoundHalfUp(femtoUsd, kFemtoPerPico)); }

int64_t Cost::microUsd() const { return saturate(divRoundHalfUp(femtoUsd, kFemtoPerMicro)); }

StatusOr<Rate> Rate::parse(std::string_view text) {
  const std::string shown = quoted(text.substr(0, 40));
  const Status bad =
      invalidArgument("rate " + shown + " must be a plain decimal between 0 and 1000 with at most "
                      "6 fractional digits");
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (!allDigits(whole) || (dot != std::string_view::npos && !allDigits(frac))) {
    return bad;
  }
  // Trailing zeros past the 6th fractional digit carry no value.
  while (frac.size() > 6 && frac.back() == '0') {
    frac.remove_suffix(1);
  }
  size_t firstNonZero = whole.find_first_not_of('0');
  whole = firstNonZero == std::string_view::npos ? std::string_view() : whole.substr(firstNonZero);
  if (frac.size() > 6 || whole.size() > 4) {
    return bad;
  }
  int64_t ppm = whole.empty() ? 0 : digitsToInt(whole) * kRatePpmOne;
  std::string fracPadded(frac);
  fracPadded.resize(6, '0');
  ppm += digitsToInt(fracPadded);
  if (ppm > kRatePpmMax) {
    return bad;
  }
  return Rate{ppm};
}

int64_t applyRate(int64_t microUsd, Rate rate) {
  return saturate(divRoundHalfUp(static_cast<Int128>(microUsd) * rate.ppm, kRatePpmOne));
}

int64_t applyRates(int64_t microUsd, Rate keyRate, Rate globalRate) {
  Int128 n = static_cast<Int128>(microUsd) * keyRate.ppm * globalRate.ppm;
  return saturate(divRoundHalfUp(n, static_cast<Int128>(kRatePpmOne) * kRatePpmOne));
}

int64_t billedMicroUsd(const Cost& cost, Rate keyRate, Rate globalRate) {
  // femto <= 9.2e18, each rate <= 1e9 ppm: the product stays below 1e37 < 1.7e38.
  Int128 n = static_cast<Int128>(cost.femtoUsd) * keyRate.ppm * globalRate.ppm;
  Int128 d = static_cast<Int128>(kFemtoPerMicro) * kRatePpmOne * kRatePpmOne;
  return saturate(divRoundHalfUp(n, d));
}

PriceTable::PriceTable() : unknown_(std::make_shared<UnknownModels>()) {}

StatusOr<PriceTable> PriceTable::loadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return notFound("price file '" + path + "': cannot be opened");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return unavailable("price file '" + path + "': read error");
  }
  return parse(ss.str(), path);
}

StatusOr<PriceTable> PriceTable::parse(std::string_view text, std::string_view source) {
  PriceTable table;
  table.source_ = std::string(source);
  Status st = parseInto(text, source, /*allowEmpty=*/false, table);
  if (!st.isOk()) {
    return st;
  }
  return table;
}

StatusOr<PriceTable> PriceTable::withOverrides(const PriceTable& base, std::string_view text,
                                               std::string_view source) {
  PriceTable overrides;
  Status st = parseInto(text, source, /*allowEmpty=*/true, overrides);
  if (!st.isOk()) {
    return st;
  }
  PriceTable merged;
  merged.models_ = base.models_;
  merged.inexactPrices_ = base.inexactPrices_ + overrides.inexactPrices_;
  merged.skippedEntries_ = base.skippedEntries_ + overrides.skippedEntries_;
  merged.source_ = base.source_ + " + " + std::string(source);
  for (auto& [name, price] : overrides.models_) {
    merged.models_[name] = price; // whole entry replaced, fields are not merged
  }
  if (!overrides.models_.empty()) {
    spdlog::info("price overrides from '{}' replace {} model entries", std::string(source),
                 overrides.models_.size());
  }
  return merged;
}

StatusOr<PriceTable> PriceTable::withOverridesFile(const PriceTable& base,
                                                   const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return notFound("price override file '" + path + "': cannot be opened");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return withOverrides(base, ss.str(), path);
}

Status PriceTable::parseInto(std::string_view text, std::string_view source, bool allowEmpty,
                             PriceTable& out) {
  const std::string where = "price file '" + std::string(source) + "'";
  // Two parses of the same text: the typed one says which values are JSON numbers, the raw one
  // keeps each number's original text so prices never pass through a double.
  rapidjson::Document typed;
  typed.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (typed.HasParseError()) {
    return invalidArgument(where + ": not valid JSON: " +
                           rapidjson::GetParseError_En(typed.GetParseError()) + " at offset " +
                           std::to_string(typed.GetErrorOffset()));
  }
  if (!typed.IsObject()) {
    return invalidArgument(where + ": top level must be an object of model entries");
  }
  rapidjson::Document raw;
  raw.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(text.data(), text.size());
  if (raw.HasParseError() || !raw.IsObject() || raw.MemberCount() != typed.MemberCount()) {
    return internalError(where + ": inconsistent JSON parse");
  }

  auto rawIt = raw.MemberBegin();
  for (auto it = typed.MemberBegin(); it != typed.MemberEnd(); ++it, ++rawIt) {
    const std::string name(it->name.GetString(), it->name.GetStringLength());
    const std::string entryWhere = where + ": model " + quoted(name);
    if (!it->value.IsObject() || !rawIt->value.IsObject()) {
      return invalidArgument(entryWhere + ": entry is not an object");
    }
    const auto& entry = it->value;
    const auto& rawEntry = rawIt->value;
    ModelPrice price;

    auto field = [&](std::string_view key, std::optional<int64_t>& dst) -> Status {
      auto f = entry.FindMember(rapidjson::StringRef(key.data(), key.size()));
      if (f == entry.MemberEnd() || f->value.IsNull()) {
        return Status::ok();
      }
      if (!f->value.IsNumber()) {
        return invalidArgument(entryWhere + ": field '" + std::string(key) +
                               "' is not a number");
      }
      auto r = rawEntry.FindMember(rapidjson::StringRef(key.data(), key.size()));
      if (r == rawEntry.MemberEnd() || !r->value.IsString()) {
        return internalError(entryWhere + ": inconsistent JSON parse");
      }
      auto amount = parseUsdToFemto(
          std::string_view(r->value.GetString(), r->value.GetStringLength()));
      if (!amount.isOk()) {
        return invalidArgument(entryWhere + ": field '" + std::string(key) +
                               "': " + amount.status().message());
      }
      if (!amount->exact) {
        ++out.inexactPrices_;
        spdlog::warn("{}: field '{}' has more precision than 1e-15 USD; rounded", entryWhere,
                     std::string(key));
      }
      dst = amount->femto;
      return Status::ok();
    };

    std::optional<int64_t> input;
    std::optional<int64_t> output;
    const std::pair<std::string_view, std::optional<int64_t>*> fields[] = {
        {kInputField, &input},
        {kOutputField, &output},
        {kCacheCreateField, &price.cacheCreate5m},
        {kCacheCreate1hField, &price.cacheCreate1h},
        {kCacheReadField, &price.cacheRead},
        {kInputAboveField, &price.inputAbove200k},
        {kOutputAboveField, &price.outputAbove200k},
        {kCacheCreateAboveField, &price.cacheCreateAbove200k},
        {kCacheReadAboveField, &price.cacheReadAbove200k},
    };
    for (const auto& [key, dst] : fields) {
      Status st = field(key, *dst);
      if (!st.isOk()) {
        return st;
      }
    }
    if (!input && !output) {
      ++out.skippedEntries_; // priced per image / second / character: not a token model
      continue;
    }
    price.input = input.value_or(0);
    price.output = output.value_or(0);
    bool anthropicProvider = false;
    auto provider = entry.FindMember("litellm_provider");
    if (provider != entry.MemberEnd() && provider->value.IsString()) {
      anthropicProvider = std::string_view(provider->value.GetString()) == "anthropic";
    }
    price.isClaude = anthropicProvider || name.find("claude") != std::string::npos;
    out.models_[name] = price; // a duplicated key: the last one wins, as in JSON.parse
  }
  if (out.models_.empty() && !allowEmpty) {
    return invalidArgument(where + ": no model entry has a per-token price");
  }
  return Status::ok();
}

const ModelPrice* PriceTable::lookup(std::string_view model, std::string* matchedKey) const {
  auto exact = models_.find(model);
  if (exact == models_.end()) {
    for (const std::string& candidate : candidateNames(model)) {
      exact = models_.find(candidate);
      if (exact != models_.end()) {
        break;
      }
    }
  }
  if (exact == models_.end()) {
    return nullptr;
  }
  if (matchedKey != nullptr) {
    *matchedKey = exact->first;
  }
  return &exact->second;
}

uint64_t PriceTable::unknownModelCount() const {
  return unknown_->requests.load(std::memory_order_relaxed);
}

Cost PriceTable::cost(std::string_view model, const TokenUsage& usage) const {
  Cost cost;
  const ModelPrice* p = lookup(model, &cost.matchedModel);
  if (p == nullptr) {
    unknown_->requests.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(unknown_->mu);
    if (unknown_->warned.size() < kMaxWarnedUnknownModels &&
        unknown_->warned.emplace(model).second) {
      spdlog::warn("no price for model '{}' (price table '{}'): request cost recorded as 0",
                   printableModel(model), source_);
    }
    return cost;
  }
  cost.priced = true;
  auto nonNeg = [](int64_t v) { return v < 0 ? 0 : v; };
  bool overflowed = false;
  int64_t promptTokens = 0;
  for (int64_t t : {usage.input, usage.cacheCreate5m, usage.cacheCreate1h, usage.cacheRead}) {
    promptTokens = addSat(promptTokens, nonNeg(t), overflowed);
  }
  const bool above = promptTokens > kLongContextThresholdTokens;
  const bool oneMillionSuffix = endsWith(model, "[1m]") || endsWith(model, "[1M]");
  cost.longContext = above && (usage.longContextRequested || oneMillionSuffix);
  cost.longContextPriced = above && !p->isClaude && p->hasLongContextPrices();

  auto pick = [&](const std::optional<int64_t>& normal,
                  const std::optional<int64_t>& longContext) -> std::optional<int64_t> {
    if (cost.longContextPriced && longContext) {
      return longContext;
    }
    return normal;
  };
  const int64_t in = pick(p->input, p->inputAbove200k).value_or(p->input);
  const int64_t out = pick(p->output, p->outputAbove200k).value_or(p->output);
  // Fallbacks derive from the input price in force (divRoundHalfUp is exact for every shipped
  // price, all whole multiples of 100 femto-dollars).
  const int64_t cw = pick(p->cacheCreate5m, p->cacheCreateAbove200k)
                         .value_or(saturate(divRoundHalfUp(static_cast<Int128>(in) * 5, 4)));
  const int64_t cw1h = p->cacheCreate1h.value_or(saturate(static_cast<Int128>(in) * 2));
  const int64_t cr = pick(p->cacheRead, p->cacheReadAbove200k)
                         .value_or(saturate(divRoundHalfUp(in, 10)));

  cost.femto.input = mulTokens(usage.input, in, overflowed);
  cost.femto.output = mulTokens(usage.output, out, overflowed);
  cost.femto.cacheCreate5m = mulTokens(usage.cacheCreate5m, cw, overflowed);
  cost.femto.cacheCreate1h = mulTokens(usage.cacheCreate1h, cw1h, overflowed);
  cost.femto.cacheRead = mulTokens(usage.cacheRead, cr, overflowed);
  int64_t total = 0;
  for (int64_t part : {cost.femto.input, cost.femto.output, cost.femto.cacheCreate5m,
                       cost.femto.cacheCreate1h, cost.femto.cacheRead}) {
    total = addSat(total, part, overflowed);
  }
  cost.femtoUsd = total;
  cost.overflowed = overflowed;
  if (overflowed) {
    spdlog::warn("cost of a '{}' request overflowed (absurd token counts); saturated",
                 printableModel(model));
  }
  return cost;
}

} // namespace rg
