#include "accounting/pricing.h"

#include "fakes/support.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <string>
#include <vector>

namespace rgtest {
namespace {

using rg::Cost;
using rg::PriceTable;
using rg::Rate;
using rg::TokenUsage;

const std::string kShippedTable =
    std::string(RG_TEST_SOURCE_DIR) + "/config/pricing/model_prices.json";

const PriceTable& shipped() {
  static const PriceTable table = [] {
    auto t = PriceTable::loadFile(kShippedTable);
    if (!t.isOk()) {
      ADD_FAILURE() << t.status().toString();
      return PriceTable::parse(R"({"x":{"input_cost_per_token":0}})").value();
    }
    return std::move(t).value();
  }();
  return table;
}

size_t countOccurrences(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// Routes spdlog's default logger into a string for the lifetime of the object.
class CapturedLog {
public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// ---------------------------------------------------------------------------------------------
// Decimal text -> femto-dollars

TEST(PricingTest, ParsesDecimalTextExactly) {
  struct Case {
    const char* text;
    int64_t femto;
    bool exact;
  };
  const Case cases[] = {
      {"3e-6", 3'000'000'000, true},
      {"0.00000375", 3'750'000'000, true},
      {"1.875E-05", 18'750'000'000, true},
      {"12.5e-7", 1'250'000'000, true},
      {"4.6875e-9", 4'687'500, true}, // 4687.5 pico: the reason the unit is femto
      {"0.000000000000001", 1, true},
      {"0", 0, true},
      {"0.0", 0, true},
      {"999.999", 999'999'000'000'000'000, true},
      {"1e-16", 0, false},           // 0.1 femto rounds down
      {"5e-16", 1, false},           // 0.5 femto rounds half up
      {"1.5e-15", 2, false},
      {"9.9e-16", 1, false},
      {"5e-17", 0, false},           // 0.05 femto
      {"5e-18", 0, false},
      {"1e-1000000000", 0, false},
  };
  for (const Case& c : cases) {
    auto r = rg::parseUsdToFemto(c.text);
    ASSERT_TRUE(r.isOk()) << c.text << ": " << r.status().toString();
    EXPECT_EQ(r->femto, c.femto) << c.text;
    EXPECT_EQ(r->exact, c.exact) << c.text;
  }
  for (const char* bad : {"-1e-6", "1e4", "1000", "1e", "1.", ".5", "abc", "", "1e-6x", "0x10"}) {
    EXPECT_FALSE(rg::parseUsdToFemto(bad).isOk()) << bad;
  }
  EXPECT_NE(rg::parseUsdToFemto("-3e-6").status().message().find("negative"), std::string::npos);
  EXPECT_NE(rg::parseUsdToFemto("1e4").status().message().find("out of range"),
            std::string::npos);
}

// Every billing price in the shipped file converts exactly, and agrees with an independent
// correctly-rounding double parse: femto / 1e15 rounds to the very double the text denotes.
TEST(PricingTest, EveryShippedPriceConvertsExactly) {
  const PriceTable& table = shipped();
  EXPECT_EQ(table.inexactPriceCount(), 0u);
  EXPECT_EQ(table.skippedEntryCount(), 0u);
  std::string text = readFile(kShippedTable);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_EQ(table.size(), doc.MemberCount());

  size_t checked = 0;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string name = it->name.GetString();
    std::string matched;
    const rg::ModelPrice* p = table.lookup(name, &matched);
    ASSERT_NE(p, nullptr) << name;
    ASSERT_EQ(matched, name);
    const std::pair<const char*, std::optional<int64_t>> fields[] = {
        {"input_cost_per_token", p->input},
        {"output_cost_per_token", p->output},
        {"cache_creation_input_token_cost", p->cacheCreate5m},
        {"cache_creation_input_token_cost_above_1hr", p->cacheCreate1h},
        {"cache_read_input_token_cost", p->cacheRead},
        {"input_cost_per_token_above_200k_tokens", p->inputAbove200k},
        {"output_cost_per_token_above_200k_tokens", p->outputAbove200k},
        {"cache_creation_input_token_cost_above_200k_tokens", p->cacheCreateAbove200k},
        {"cache_read_input_token_cost_above_200k_tokens", p->cacheReadAbove200k},
    };
    for (const auto& [key, femto] : fields) {
      auto f = it->value.FindMember(key);
      if (f == it->value.MemberEnd()) {
        if (std::string(key) != "output_cost_per_token") { // image models: output absent = 0
          EXPECT_FALSE(femto.has_value()) << name << " " << key;
        }
        continue;
      }
      ASSERT_TRUE(femto.has_value()) << name << " " << key;
      EXPECT_EQ(static_cast<double>(*femto) / 1e15, f->value.GetDouble()) << name << " " << key;
      ++checked;
    }
  }
  EXPECT_GT(checked, 700u); // 715 billing prices in the 2026-07-23 copy
}

// ---------------------------------------------------------------------------------------------
// Cost

struct CostCase {
  const char* model;
  TokenUsage usage;
  int64_t femto;
  int64_t micro;
  bool longContextPriced;
};

TEST(PricingTest, ClaudeCostsAllFiveKinds) {
  // Prices in micro-dollars per token (shipped table):
  //   claude-sonnet-4-5:           in 3, out 15, cw 3.75, cw1h 6, cr 0.3
  //   claude-opus-4-1:             in 15, out 75, cw 18.75, cw1h 30, cr 1.5
  //   claude-3-5-haiku-20241022:   in 0.8, out 4, cw 1, cw1h 6, cr 0.08
  const CostCase cases[] = {
      // 1234*3 + 567*15 + 890*3.75 + 321*6 + 4567*0.3
      //   = 3702 + 8505 + 3337.5 + 1926 + 1370.1 = 18840.6 -> 18841
      {"claude-sonnet-4-5", {1234, 567, 890, 321, 4567, false}, 18'840'600'000'000, 18841, false},
      // 100*15 + 200*75 + 300*18.75 + 400*30 + 500*1.5 = 1500+15000+5625+12000+750 = 34875
      {"claude-opus-4-1", {100, 200, 300, 400, 500, false}, 34'875'000'000'000, 34875, false},
      // 7*0.8 + 3*4 + 5*1 + 1*6 + 9*0.08 = 5.6 + 12 + 5 + 6 + 0.72 = 29.32 -> 29
      {"claude-3-5-haiku-20241022", {7, 3, 5, 1, 9, false}, 29'320'000'000, 29, false},
      // 5 cache reads * 0.3 = 1.5 -> 2 (half up)
      {"claude-sonnet-4-5", {0, 0, 0, 0, 5, false}, 1'500'000'000, 2, false},
      // 1 input * 0.8 = 0.8 -> 1; 0.4 would round down (next row)
      {"claude-3-5-haiku-20241022", {1, 0, 0, 0, 0, false}, 800'000'000, 1, false},
      // 5 cache reads * 0.08 = 0.4 -> 0
      {"claude-3-5-haiku-20241022", {0, 0, 0, 0, 5, false}, 400'000'000, 0, false},
      // Claude is flat above 200k: 300000*3 + 1000*15 = 900000 + 15000 = 915000
      {"claude-sonnet-4-5", {300'000, 1000, 0, 0, 0, true}, 915'000'000'000'000, 915000, false},
  };
  for (const CostCase& c : cases) {
    Cost cost = shipped().cost(c.model, c.usage);
    EXPECT_TRUE(cost.priced) << c.model;
    EXPECT_EQ(cost.matchedModel, c.model);
    EXPECT_EQ(cost.femtoUsd, c.femto) << c.model;
    EXPECT_EQ(cost.microUsd(), c.micro) << c.model;
    EXPECT_EQ(cost.longContextPriced, c.longContextPriced) << c.model;
  }
  // The breakdown adds up and names each kind (first row).
  Cost cost = shipped().cost("claude-sonnet-4-5", {1234, 567, 890, 321, 4567, false});
  EXPECT_EQ(cost.femto.input, 3'702'000'000'000);
  EXPECT_EQ(cost.femto.output, 8'505'000'000'000);
  EXPECT_EQ(cost.femto.cacheCreate5m, 3'337'500'000'000);
  EXPECT_EQ(cost.femto.cacheCreate1h, 1'926'000'000'000);
  EXPECT_EQ(cost.femto.cacheRead, 1'370'100'000'000);
  EXPECT_EQ(cost.picoUsd(), 18'840'600'000);
  EXPECT_FALSE(cost.overflowed);
}

TEST(PricingTest, MissingCachePricesFallBackToInputMultiples) {
  // gpt-4 has only in 30 and out 60 micro/token: cw = 1.25*30 = 37.5, cw1h = 2*30 = 60,
  // cr = 0.1*30 = 3. 10*30 + 10*60 + 2*37.5 + 1*60 + 100*3 = 300+600+75+60+300 = 1335
  Cost cost = shipped().cost("gpt-4", {10, 10, 2, 1, 100, false});
  ASSERT_TRUE(cost.priced);
  EXPECT_EQ(cost.femto.cacheCreate5m, 75'000'000'000);
  EXPECT_EQ(cost.femto.cacheCreate1h, 60'000'000'000);
  EXPECT_EQ(cost.femto.cacheRead, 300'000'000'000);
  EXPECT_EQ(cost.microUsd(), 1335);

  // Fallbacks round half up to a femto-dollar when the input price is not a multiple of 10:
  // in 3 femto -> cw = 3.75 -> 4, cw1h = 6, cr = 0.3 -> 0. 1000 tokens of each kind:
  // 1000*3 + 1000*4 + 1000*6 + 1000*0 = 13000 femto
  auto tiny = PriceTable::parse(R"({"tiny":{"input_cost_per_token":3e-15}})");
  ASSERT_TRUE(tiny.isOk()) << tiny.status().toString();
  Cost t = tiny->cost("tiny", {1000, 0, 1000, 1000, 1000, false});
  EXPECT_EQ(t.femtoUsd, 13'000);
}

TEST(PricingTest, LongContextPricesForNonClaudeAboveThreshold) {
  // gemini-2.5-pro (micro/token): in 1.25, out 10, cr 0.125; above 200k: in 2.5, out 15,
  // cw 0.25, cr 0.25. The threshold counts input + cache writes + cache reads.
  const CostCase cases[] = {
      // prompt 100000 + 100000 = 200000 (not above): 100000*1.25 + 1000*10 + 100000*0.125
      //   = 125000 + 10000 + 12500 = 147500
      {"gemini-2.5-pro", {100'000, 1000, 0, 0, 100'000, false}, 147'500'000'000'000, 147500,
       false},
      // prompt 200001: 100001*2.5 + 1000*15 + 100000*0.25 = 250002.5 + 15000 + 25000
      //   = 290002.5 -> 290003
      {"gemini-2.5-pro", {100'001, 1000, 0, 0, 100'000, false}, 290'002'500'000'000, 290003,
       true},
      // cache writes count towards the threshold and use cw above 200k (0.25):
      // 200000*2.5 + 10*0.25 = 500000 + 2.5 = 500002.5 -> 500003
      {"gemini-2.5-pro", {200'000, 0, 10, 0, 0, false}, 500'002'500'000'000, 500003, true},
  };
  for (const CostCase& c : cases) {
    Cost cost = shipped().cost(c.model, c.usage);
    EXPECT_EQ(cost.femtoUsd, c.femto);
    EXPECT_EQ(cost.microUsd(), c.micro);
    EXPECT_EQ(cost.longContextPriced, c.longContextPriced);
  }

  // Same prices, one entry Claude and one not: only the non-Claude one switches.
  auto table = PriceTable::parse(R"({
    "claude-x": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                 "input_cost_per_token_above_200k_tokens": 5e-6},
    "other-x":  {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                 "input_cost_per_token_above_200k_tokens": 5e-6},
    "vendor-x": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                 "input_cost_per_token_above_200k_tokens": 5e-6,
                 "litellm_provider": "anthropic"}})");
  ASSERT_TRUE(table.isOk()) << table.status().toString();
  TokenUsage big{250'000, 10, 0, 0, 0, false};
  // claude: 250000*1 + 10*2 = 250020; other: 250000*5 + 10*2 (no out above) = 1250020
  EXPECT_EQ(table->cost("claude-x", big).microUsd(), 250'020);
  EXPECT_EQ(table->cost("vendor-x", big).microUsd(), 250'020); // anthropic provider = Claude
  EXPECT_EQ(table->cost("other-x", big).microUsd(), 1'250'020);

  // longContext (statistics) needs the request to ask for it or a [1m] model.
  EXPECT_FALSE(shipped().cost("claude-sonnet-4-5", big).longContext);
  EXPECT_TRUE(shipped().cost("claude-sonnet-4-5[1m]", big).longContext);
  TokenUsage requested = big;
  requested.longContextRequested = true;
  EXPECT_TRUE(shipped().cost("claude-sonnet-4-5", requested).longContext);
}

TEST(PricingTest, NegativeAndAbsurdTokenCountsAreSafe) {
  Cost neg = shipped().cost("claude-sonnet-4-5", {-5, -1, -1, -1, -1, false});
  EXPECT_TRUE(neg.priced);
  EXPECT_EQ(neg.femtoUsd, 0);
  Cost huge = shipped().cost("claude-opus-4-1", {INT64_MAX / 2, INT64_MAX / 2, 0, 0, 0, false});
  EXPECT_TRUE(huge.overflowed);
  EXPECT_EQ(huge.femtoUsd, INT64_MAX);
}

// ---------------------------------------------------------------------------------------------
// Lookup

TEST(PricingTest, LookupNormalisesKnownForms) {
  const std::pair<const char*, const char*> cases[] = {
      {"claude-opus-4-1-20250805", "claude-opus-4-1-20250805"},           // exact, dated
      {"gpt-4o-2024-08-06", "gpt-4o-2024-08-06"},                         // exact
      {"claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929-v1:0"},
      {"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929-v1:0"},
      {"anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku-20241022"},
      {"global.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1-20250805"},
      {"eu.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"},
      {"apac.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4-20250514"},
      {"anthropic.claude-3-haiku-20240307:0", "claude-3-haiku-20240307"},
      {"claude-sonnet-4-5[1m]", "claude-sonnet-4-5"},
      {"claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4-5-20250929"},
      {"anthropic/claude-opus-4-1", "claude-opus-4-1"},
      {"claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"},       // Vertex AI
      {"claude-opus-4-1-20991231", "claude-opus-4-1"}, // dated tried first, then undated
      {"claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"},       // dated wins
  };
  for (const auto& [model, key] : cases) {
    std::string matched;
    EXPECT_NE(shipped().lookup(model, &matched), nullptr) << model;
    EXPECT_EQ(matched, key) << model;
  }
}

TEST(PricingTest, LookupNeverMatchesSubstrings) {
  for (const char* model :
       {"claude-sonnet-4-5-foo", "my-claude-sonnet-4-5", "claude-sonnet-4", "CLAUDE-SONNET-4-5",
        "claude-sonnet-4-5-2025092", "openai/gpt-4", "us.claude-sonnet-4-5", "sonnet",
        "claude-sonnet-4-5[1m]x", "claude-opus-4-1-v1", "gpt-4o-", ""}) {
    EXPECT_EQ(shipped().lookup(model), nullptr) << model;
  }
}

TEST(PricingTest, UnknownModelCostsZeroCountsAndWarnsOnce) {
  auto table = PriceTable::loadFile(kShippedTable);
  ASSERT_TRUE(table.isOk());
  CapturedLog log;
  for (int i = 0; i < 3; ++i) {
    Cost c = table->cost("mystery-model", {1000, 1000, 0, 0, 0, false});
    EXPECT_FALSE(c.priced);
    EXPECT_EQ(c.femtoUsd, 0);
    EXPECT_EQ(c.microUsd(), 0);
    EXPECT_TRUE(c.matchedModel.empty());
  }
  table->cost("claude-sonnet-4-5-foo", {1, 0, 0, 0, 0, false});
  table->cost("claude-sonnet-4-5", {1, 0, 0, 0, 0, false}); // known: not counted
  EXPECT_EQ(table->unknownModelCount(), 4u);
  const std::string text = log.text();
  EXPECT_EQ(countOccurrences(text, "no price for model 'mystery-model'"), 1u) << text;
  EXPECT_EQ(countOccurrences(text, "no price for model 'claude-sonnet-4-5-foo'"), 1u) << text;
}

// ---------------------------------------------------------------------------------------------
// Overrides and bad files

TEST(PricingTest, OverrideReplacesWholeEntries) {
  TempDir dir;
  writeFile(dir.file("override.json"), R"({
    "claude-sonnet-4-5": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
    "house-model": {"input_cost_per_token": 0.0000005, "output_cost_per_token": 0.000001}})");
  auto merged = PriceTable::withOverridesFile(shipped(), dir.file("override.json"));
  ASSERT_TRUE(merged.isOk()) << merged.status().toString();
  EXPECT_EQ(merged->size(), shipped().size() + 1);
  // Whole entry replaced: the shipped cache prices are gone, cr falls back to 0.1*1 = 0.1.
  // 1000*1 + 1000*2 + 1000*0.1 = 3100
  EXPECT_EQ(merged->cost("claude-sonnet-4-5", {1000, 1000, 0, 0, 1000, false}).microUsd(), 3100);
  // 1000*0.5 + 1000*1 = 1500
  EXPECT_EQ(merged->cost("house-model", {1000, 1000, 0, 0, 0, false}).microUsd(), 1500);
  // Other entries and the base table are untouched: 1000*3 + 1000*15 + 1000*0.3 = 18300
  EXPECT_EQ(shipped().cost("claude-sonnet-4-5", {1000, 1000, 0, 0, 1000, false}).microUsd(),
            18300);
  EXPECT_EQ(merged->cost("claude-opus-4-1", {1000, 0, 0, 0, 0, false}).microUsd(), 15000);

  auto empty = PriceTable::withOverrides(shipped(), "{}");
  ASSERT_TRUE(empty.isOk());
  EXPECT_EQ(empty->size(), shipped().size());
}

TEST(PricingTest, BadFilesAreRejectedWithClearMessages) {
  struct Case {
    const char* text;
    std::vector<std::string> mentions;
  };
  const Case cases[] = {
      {"{\"a\": ", {"bad.json", "not valid JSON", "offset"}},
      {"[1, 2]", {"bad.json", "top level must be an object"}},
      {R"({"m": 3})", {"bad.json", "'m'", "not an object"}},
      {R"({"m": {"input_cost_per_token": "3e-6"}})",
       {"bad.json", "'m'", "'input_cost_per_token'", "not a number"}},
      {R"({"m": {"input_cost_per_token": 1e-6, "cache_read_input_token_cost": true}})",
       {"'cache_read_input_token_cost'", "not a number"}},
      {R"({"m": {"input_cost_per_token": -1e-6}})", {"'m'", "negative"}},
      {R"({"m": {"input_cost_per_token": 1e300}})", {"'m'", "out of range"}},
      {R"({})", {"bad.json", "no model entry"}},
  };
  TempDir dir;
  const std::string path = dir.file("bad.json");
  for (const Case& c : cases) {
    writeFile(path, c.text);
    auto r = PriceTable::loadFile(path);
    ASSERT_FALSE(r.isOk()) << c.text;
    EXPECT_EQ(r.status().code(), rg::Code::kInvalidArgument) << c.text;
    for (const std::string& m : c.mentions) {
      EXPECT_NE(r.status().message().find(m), std::string::npos)
          << c.text << " -> " << r.status().message() << " lacks " << m;
    }
  }
  auto missing = PriceTable::loadFile(dir.file("nope.json"));
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("nope.json"), std::string::npos);

  auto badOverride =
      PriceTable::withOverrides(shipped(), R"({"m": {"output_cost_per_token": "x"}})", "ops.json");
  ASSERT_FALSE(badOverride.isOk());
  EXPECT_NE(badOverride.status().message().find("ops.json"), std::string::npos);
  EXPECT_NE(badOverride.status().message().find("not a number"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Money arithmetic

TEST(PricingTest, NoDriftOverAMillionRequests) {
  // 18840.6 micro-dollars a request (ClaudeCostsAllFiveKinds row 1).
  const Cost one = shipped().cost("claude-sonnet-4-5", {1234, 567, 890, 321, 4567, false});
  ASSERT_EQ(one.picoUsd(), 18'840'600'000);
  int64_t microTotal = 0;
  int64_t picoTotal = 0;
  double floatTotal = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    microTotal += one.microUsd();
    picoTotal += one.picoUsd();
    floatTotal += 0.0188406; // what a float accumulator of USD would do
  }
  EXPECT_EQ(microTotal, int64_t{18841} * 1'000'000);
  EXPECT_EQ(picoTotal, one.picoUsd() * 1'000'000);
  EXPECT_EQ(picoTotal, 18'840'600'000'000'000); // exactly $18,840.60
  EXPECT_NE(floatTotal, 18840.6);               // the drift integers avoid
}

TEST(PricingTest, RatesParseExactlyAndRoundOnce) {
  const std::pair<const char*, int64_t> good[] = {
      {"1", 1'000'000},     {"1.5", 1'500'000},   {"0.25", 250'000}, {"0", 0},
      {"0.000001", 1},      {"1000", 1'000'000'000},
      {"1.50000000", 1'500'000}, {"007.1", 7'100'000},
  };
  for (const auto& [text, ppm] : good) {
    auto r = Rate::parse(text);
    ASSERT_TRUE(r.isOk()) << text << ": " << r.status().toString();
    EXPECT_EQ(r->ppm, ppm) << text;
  }
  for (const char* bad : {"", ".", "-1", "1.2345678", "abc", "1e3", "1000.000001", " 1", "1,5",
                          "+1", "10000", "2.", ".5"}) {
    EXPECT_FALSE(Rate::parse(bad).isOk()) << bad;
  }
  const Rate half = Rate::parse("0.5").value();
  const Rate oneHalf = Rate::parse("1.5").value();
  const Rate seven = Rate::parse("0.7").value();
  EXPECT_EQ(rg::applyRate(1001, oneHalf), 1502);     // 1501.5 -> 1502
  EXPECT_EQ(rg::applyRate(1000, Rate::one()), 1000);
  EXPECT_EQ(rg::applyRates(333, oneHalf, seven), 350); // 333*1.05 = 349.65 -> 350
  // One rounding: 1*0.5*0.5 = 0.25 -> 0, where rounding per step gives 0.5 -> 1, 0.5 -> 1.
  EXPECT_EQ(rg::applyRates(1, half, half), 0);
  EXPECT_EQ(rg::applyRate(rg::applyRate(1, half), half), 1);
  // From the exact cost: 18840.6 * 1.5 = 28260.9 -> 28261; from rounded micro: 18841 * 1.5 =
  // 28261.5 -> 28262.
  const Cost cost = shipped().cost("claude-sonnet-4-5", {1234, 567, 890, 321, 4567, false});
  EXPECT_EQ(rg::billedMicroUsd(cost, oneHalf, Rate::one()), 28261);
  EXPECT_EQ(rg::applyRates(cost.microUsd(), oneHalf, Rate::one()), 28262);
  EXPECT_EQ(rg::billedMicroUsd(cost, Rate::parse("0").value(), oneHalf), 0);
}

} // namespace
} // namespace rgtest
