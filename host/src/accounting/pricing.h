#pragma once
// Model price table and exact per-request cost computation.
//
// Money never goes through floating point. Prices are read from the JSON number *text* of a
// LiteLLM-format price file (model_prices_and_context_window.json) and stored as integer
// femto-dollars (USD x 1e15) per token; costs are integer femto-dollars, exposed as pico- and
// micro-dollars rounded half up once per request.
//
// Why femto and not pico: the shipped table contains 4.6875e-9 USD/token (two Gemini 1.5 flash
// entries), which is 4687.5 pico-dollars, so a pico-dollar unit would not be exact. With femto
// every price in the shipped file converts exactly (proved by tests/unit/pricing_test.cpp), and
// int64 femto still covers $9,223 for a single request: 2M tokens at the dearest shipped price
// ($6e-4/token) is 1.2e18 femto, well inside. Totals across requests must be accumulated in
// micro-dollars (Cost::microUsd()), never in femto.
//
// Thread safety: a PriceTable is immutable after construction, so const methods may be called
// from any thread; the unknown-model warning set and counter are internally synchronised and
// shared between copies of one table.

#include "common/status.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rg {

inline constexpr int64_t kFemtoPerUsd = 1'000'000'000'000'000;
inline constexpr int64_t kFemtoPerPico = 1'000;
inline constexpr int64_t kFemtoPerMicro = 1'000'000'000;
// Prompt size (input + cache writes + cache reads) above which *_above_200k_tokens prices apply.
inline constexpr int64_t kLongContextThresholdTokens = 200'000;
// Rates are integer parts-per-million: 1.0 == 1,000,000.
inline constexpr int64_t kRatePpmOne = 1'000'000;
// Largest accepted rate (x1000): keeps rate arithmetic far from 128-bit overflow.
inline constexpr int64_t kRatePpmMax = 1'000 * kRatePpmOne;

// A decimal USD amount converted to integer femto-dollars. `exact` is false when the text had
// more precision than 1e-15 USD and was rounded half up.
struct FemtoAmount {
  int64_t femto = 0;
  bool exact = true;
};

// Converts a JSON number's text ("3e-6", "0.00000375", "1.875E-05") into femto-dollars without
// floating point. Rejects negative values, malformed text and amounts of $1,000 or more.
StatusOr<FemtoAmount> parseUsdToFemto(std::string_view jsonNumberText);

// Prices of one model, femto-dollars per token. Absent optional fields fall back at cost time.
struct ModelPrice {
  int64_t input = 0;
  int64_t output = 0;
  std::optional<int64_t> cacheCreate5m; // cache_creation_input_token_cost
  std::optional<int64_t> cacheCreate1h; // cache_creation_input_token_cost_above_1hr
  std::optional<int64_t> cacheRead;     // cache_read_input_token_cost
  std::optional<int64_t> inputAbove200k;
  std::optional<int64_t> outputAbove200k;
  std::optional<int64_t> cacheCreateAbove200k;
  std::optional<int64_t> cacheReadAbove200k;
  // Name contains "claude" or litellm_provider is "anthropic": flat-priced (no long-context rate).
  bool isClaude = false;

  bool hasLongContextPrices() const {
    return inputAbove200k || outputAbove200k || cacheCreateAbove200k || cacheReadAbove200k;
  }
};

// Token counts of one request as reported by the upstream. Negative counts (bad upstream data)
// are treated as 0.
struct TokenUsage {
  int64_t input = 0;
  int64_t output = 0;
  int64_t cacheCreate5m = 0; // if the upstream has no split, bill all cache writes here
  int64_t cacheCreate1h = 0;
  int64_t cacheRead = 0;
  // The client asked for a 1M context (`[1m]` model suffix or context-1m beta). Only feeds the
  // Cost::longContext statistics flag; pricing depends on the prompt size (see PriceTable::cost).
  bool longContextRequested = false;
};

// Femto-dollars per token kind.
struct CostBreakdown {
  int64_t input = 0;
  int64_t output = 0;
  int64_t cacheCreate5m = 0;
  int64_t cacheCreate1h = 0;
  int64_t cacheRead = 0;
};

struct Cost {
  int64_t femtoUsd = 0;    // exact total (sum of `femto`)
  CostBreakdown femto;     // per kind
  bool priced = false;     // false: unknown model, every amount is 0
  bool longContextPriced = false; // *_above_200k_tokens prices were used
  bool longContext = false; // statistics: long context requested and prompt > 200k tokens
  bool overflowed = false;  // absurd token counts: amounts saturated at INT64_MAX
  std::string matchedModel; // the table key that priced the request

  int64_t picoUsd() const;  // rounded half up
  int64_t microUsd() const; // rounded half up: the unit for limits, totals and storage
};

// An exact multiplier (service rate, per-key rate) in parts-per-million.
struct Rate {
  int64_t ppm = kRatePpmOne;

  // Parses a plain decimal ("1", "1.5", "0.25", up to 6 fractional digits, 0..1000).
  static StatusOr<Rate> parse(std::string_view text);
  static Rate one() { return Rate{}; }
};

// microUsd x rate, rounded half up (half away from zero for negative amounts).
int64_t applyRate(int64_t microUsd, Rate rate);
// microUsd x keyRate x globalRate with a single rounding (half up).
int64_t applyRates(int64_t microUsd, Rate keyRate, Rate globalRate);
// Billed micro-dollars from the exact femto cost x keyRate x globalRate, rounded once; prefer
// this over applyRates(cost.microUsd(), ...) which rounds twice.
int64_t billedMicroUsd(const Cost& cost, Rate keyRate, Rate globalRate);

class PriceTable {
public:
  // Reads and parses a LiteLLM-format file. Errors name the file and the problem.
  static StatusOr<PriceTable> loadFile(const std::string& path);
  // Parses LiteLLM-format JSON text; `source` names it in error messages.
  static StatusOr<PriceTable> parse(std::string_view text, std::string_view source = "<inline>");
  // A copy of `base` with every model entry of the override text (same format) replacing the
  // base entry of that name as a whole (fields are not merged). "{}" is a valid empty override.
  static StatusOr<PriceTable> withOverrides(const PriceTable& base, std::string_view text,
                                            std::string_view source = "<override>");
  static StatusOr<PriceTable> withOverridesFile(const PriceTable& base, const std::string& path);

  // Finds the entry for a request's model name: the exact key first, then normalised forms in
  // this order, each applied to the previous one: strip a "[1m]" suffix; strip "anthropic/",
  // "anthropic." or "<region>.anthropic." (region us, eu, apac, global); Vertex "@YYYYMMDD" ->
  // "-YYYYMMDD"; strip a Bedrock version suffix ("-v1:0", ":0"); strip a trailing "-YYYYMMDD".
  // Never a substring / fuzzy match: a wrong price is worse than an unpriced request.
  // `matchedKey` (optional) receives the table key. nullptr when nothing matches.
  const ModelPrice* lookup(std::string_view model, std::string* matchedKey = nullptr) const;

  // Cost of one request:
  //   input*in + output*out + cacheCreate5m*cw + cacheCreate1h*cw1h + cacheRead*cr
  // Missing cache prices derive from the input price in force: cw = 1.25*in, cw1h = 2*in,
  // cr = 0.1*in (rounded half up to a femto-dollar; exact for all shipped prices).
  // Long context: for a non-Claude model with *_above_200k_tokens prices, when
  // input + cacheCreate5m + cacheCreate1h + cacheRead > 200,000, every kind with an above-200k
  // price uses it (Claude is flat-priced, reference §7.2). Unknown model: priced=false, cost 0,
  // one warning per distinct model name, unknownModelCount() incremented.
  Cost cost(std::string_view model, const TokenUsage& usage) const;

  size_t size() const { return models_.size(); }
  // Requests priced as 0 because their model was not found (since this table was built).
  uint64_t unknownModelCount() const;
  // Prices that had more precision than a femto-dollar and were rounded (0 for the shipped file).
  size_t inexactPriceCount() const { return inexactPrices_; }
  // Entries without any per-token price (image / audio-second priced models) that were skipped.
  size_t skippedEntryCount() const { return skippedEntries_; }
  const std::string& source() const { return source_; }

  struct UnknownModels; // shared warning state, defined in pricing.cpp

private:
  PriceTable();
  static Status parseInto(std::string_view text, std::string_view source, bool allowEmpty,
                          PriceTable& out);

  std::map<std::string, ModelPrice, std::less<>> models_;
  size_t inexactPrices_ = 0;
  size_t skippedEntries_ = 0;
  std::string source_;
  std::shared_ptr<UnknownModels> unknown_;
};

} // namespace rg
