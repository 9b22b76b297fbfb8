#include "relay/sse_framer.h"

#include <gtest/gtest.h>

#include <random>

namespace rg {
namespace {

const char* kStream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12}}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    ": a comment line\n\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"h\xc3\xa9llo \xe2\x9c\x93\"}}\r\n\r\n"
    "data: line one\ndata: line two\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

std::string joinRaw(const std::vector<SseEvent>& evs) {
  std::string s;
  for (const auto& e : evs) {
    s += e.raw;
  }
  return s;
}

TEST(SseFramer, WholeStreamSplitsIntoEvents) {
  SseFramer f;
  std::vector<SseEvent> evs;
  f.feed(kStream, &evs);
  ASSERT_EQ(evs.size(), 6u);
  EXPECT_EQ(evs[0].event, "message_start");
  EXPECT_EQ(evs[0].data, "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12}}}");
  EXPECT_EQ(evs[1].event, "ping");
  EXPECT_EQ(evs[2].event, "");
  EXPECT_EQ(evs[3].event, "content_block_delta");
  EXPECT_EQ(evs[4].data, "line one\nline two");
  EXPECT_EQ(evs[5].event, "message_stop");
  EXPECT_EQ(joinRaw(evs), kStream);
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(SseFramer, EveryByteBoundaryIsByteFaithful) {
  const std::string in = kStream;
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    SseFramer f;
    std::vector<SseEvent> evs;
    f.feed(std::string_view(in).substr(0, cut), &evs);
    f.feed(std::string_view(in).substr(cut), &evs);
    ASSERT_EQ(evs.size(), 6u) << "cut at " << cut;
    ASSERT_EQ(joinRaw(evs) + f.takeRemainder(), in) << "cut at " << cut;
  }
}

TEST(SseFramer, RandomChunkingIsByteFaithful) {
  std::mt19937 rng(42);
  std::string in;
  for (int i = 0; i < 50; ++i) {
    in += kStream;
  }
  for (int round = 0; round < 200; ++round) {
    SseFramer f;
    std::vector<SseEvent> evs;
    size_t p = 0;
    while (p < in.size()) {
      size_t n = std::uniform_int_distribution<size_t>(1, 40)(rng);
      f.feed(std::string_view(in).substr(p, n), &evs);
      p += n;
    }
    ASSERT_EQ(evs.size(), 300u);
    ASSERT_EQ(joinRaw(evs) + f.takeRemainder(), in);
  }
}

TEST(SseFramer, UnterminatedTailIsKeptAsRemainder) {
  SseFramer f;
  std::vector<SseEvent> evs;
  f.feed("event: a\ndata: 1\n\nevent: b\ndata: 2\n", &evs);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(f.takeRemainder(), "event: b\ndata: 2\n");
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(SseFramer, LoneCarriageReturnsTerminateEvents) {
  SseFramer f;
  std::vector<SseEvent> evs;
  f.feed("data: x\r\rdata: y\r\r", &evs);
  // The final "\r\r" may still become "\r\r\n": only the first event is certain.
  ASSERT_GE(evs.size(), 1u);
  EXPECT_EQ(evs[0].data, "x");
  f.feed("data: z\n\n", &evs);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[1].data, "y");
  EXPECT_EQ(evs[2].data, "z");
}

} // namespace
} // namespace rg
