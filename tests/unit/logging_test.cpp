#include "observability/logging.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>

namespace rgtest {
namespace {

// Renders one record through the production formatter into a string.
std::string renderWith(const std::string& format, spdlog::level::level_enum level,
                       const std::string& msg) {
  std::ostringstream os;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
  auto f = rg::makeLogFormatter(format);
  EXPECT_NE(f, nullptr);
  sink->set_formatter(std::move(f));
  spdlog::logger logger("relaygate", sink);
  logger.set_level(spdlog::level::trace);
  logger.log(level, "{}", msg);
  logger.flush();
  return os.str();
}

TEST(LoggingTest, JsonEscapeHandlesQuotesControlsAndBadUtf8) {
  EXPECT_EQ(rg::jsonEscape("plain"), "plain");
  EXPECT_EQ(rg::jsonEscape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(rg::jsonEscape("l1\nl2\r\t"), "l1\\nl2\\r\\t");
  EXPECT_EQ(rg::jsonEscape(std::string("\x01\x1f\x7f", 3)), "\\u0001\\u001f\\u007f");
  EXPECT_EQ(rg::jsonEscape(std::string("nul\0x", 5)), "nul\\u0000x");
  EXPECT_EQ(rg::jsonEscape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
            "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");  // valid UTF-8 passes through
  EXPECT_EQ(rg::jsonEscape("bad \xff end"), "bad \\ufffd end");
  EXPECT_EQ(rg::jsonEscape("trunc \xe2\x82"), "trunc \\ufffd\\ufffd");
  EXPECT_EQ(rg::jsonEscape("overlong \xc0\xaf"), "overlong \\ufffd\\ufffd");
  EXPECT_EQ(rg::jsonEscape("surrogate \xed\xa0\x80"), "surrogate \\ufffd\\ufffd\\ufffd");
}

TEST(LoggingTest, JsonFormatIsOneEscapedObjectPerLine) {
  std::string line = renderWith("json", spdlog::level::warn, "upstream said \"no\"\nretrying");
  const std::regex kLine(
      R"(^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"warn",)"
      R"("msg":"upstream said \\"no\\"\\nretrying","logger":"relaygate"\}\r?\n$)");
  EXPECT_TRUE(std::regex_match(line, kLine)) << line;
}

TEST(LoggingTest, TextFormat) {
  std::string line = renderWith("text", spdlog::level::info, "listening on 127.0.0.1:8787");
  const std::regex kLine(R"(^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] \[info\] )"
                         R"(listening on 127\.0\.0\.1:8787\r?\n$)");
  EXPECT_TRUE(std::regex_match(line, kLine)) << line;
  EXPECT_NE(renderWith("text", spdlog::level::err, "x").find("[error] x"), std::string::npos);
}

TEST(LoggingTest, TimestampIsUtc) {
  std::string line = renderWith("text", spdlog::level::info, "t");
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char date[16];
  std::strftime(date, sizeof(date), "%Y-%m-%d", &utc);
  // Could straddle midnight UTC; accept the date of 2 s ago too.
  std::time_t before = now - 2;
  std::tm utcBefore{};
  gmtime_r(&before, &utcBefore);
  char dateBefore[16];
  std::strftime(dateBefore, sizeof(dateBefore), "%Y-%m-%d", &utcBefore);
  EXPECT_TRUE(line.rfind(std::string("[") + date, 0) == 0 ||
              line.rfind(std::string("[") + dateBefore, 0) == 0)
      << line;
}

TEST(LoggingTest, SetupLoggingConfiguresDefaultLogger) {
  ASSERT_TRUE(rg::setupLogging({"debug", "json"}).isOk());
  EXPECT_EQ(spdlog::default_logger()->name(), "relaygate");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
  ASSERT_TRUE(rg::setupLogging({"warn", "text"}).isOk());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
  auto bad = rg::setupLogging({"verbose", "text"});
  EXPECT_FALSE(bad.isOk());
  EXPECT_NE(bad.message().find("verbose"), std::string::npos);
  EXPECT_FALSE(rg::setupLogging({"info", "xml"}).isOk());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);  // untouched on error
}

TEST(LoggingTest, RedactSecret) {
  EXPECT_EQ(rg::redactSecret(""), "****");
  EXPECT_EQ(rg::redactSecret("short"), "****");
  EXPECT_EQ(rg::redactSecret("elevenchars"), "****");
  EXPECT_EQ(rg::redactSecret("twelve-chars"), "****hars");
  EXPECT_EQ(rg::redactSecret("sk-ant-api03-abcdefWXYZ"), "****WXYZ");
}

}  // namespace
}  // namespace rgtest
