#include "observability/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace rgtest {
namespace {

using rg::Counter;
using rg::Labels;
using rg::MetricsRegistry;

TEST(MetricsTest, RendersCounterGaugeHistogramExactly) {
  MetricsRegistry reg;
  reg.counter("rg_requests_total", "Requests handled.",
              {{"route", "/v1/messages"}, {"code", "200"}})
      ->add(3);
  reg.counter("rg_requests_total", "ignored: help comes from the first call",
              {{"route", "/v1/messages"}, {"code", "429"}})
      ->add();
  reg.gauge("rg_inflight", "In-flight requests.")->set(-2);
  auto* h = reg.histogram("rg_latency_seconds", "Latency.", {0.1, 0.5, 1}, {{"plugin", "claude"}});
  h->observe(0.05);
  h->observe(0.1);  // on the bound: counts in le="0.1"
  h->observe(0.7);
  h->observe(30);
  const std::string expected =
      "# HELP rg_inflight In-flight requests.\n"
      "# TYPE rg_inflight gauge\n"
      "rg_inflight -2\n"
      "# HELP rg_latency_seconds Latency.\n"
      "# TYPE rg_latency_seconds histogram\n"
      "rg_latency_seconds_bucket{plugin=\"claude\",le=\"0.1\"} 2\n"
      "rg_latency_seconds_bucket{plugin=\"claude\",le=\"0.5\"} 2\n"
      "rg_latency_seconds_bucket{plugin=\"claude\",le=\"1\"} 3\n"
      "rg_latency_seconds_bucket{plugin=\"claude\",le=\"+Inf\"} 4\n"
      "rg_latency_seconds_sum{plugin=\"claude\"} 30.85\n"
      "rg_latency_seconds_count{plugin=\"claude\"} 4\n"
      "# HELP rg_requests_total Requests handled.\n"
      "# TYPE rg_requests_total counter\n"
      "rg_requests_total{route=\"/v1/messages\",code=\"200\"} 3\n"
      "rg_requests_total{route=\"/v1/messages\",code=\"429\"} 1\n";
  EXPECT_EQ(reg.render(), expected);
}

TEST(MetricsTest, SameSeriesReturnsSamePointer) {
  MetricsRegistry reg;
  auto* a = reg.counter("c_total", "c", {{"k", "v"}});
  auto* b = reg.counter("c_total", "c", {{"k", "v"}});
  auto* c = reg.counter("c_total", "c", {{"k", "w"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(rg::escapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  MetricsRegistry reg;
  reg.counter("x_total", "line one\nback\\slash", {{"path", "say \"hi\"\n"}})->add(1);
  EXPECT_EQ(reg.render(),
            "# HELP x_total line one\\nback\\\\slash\n"
            "# TYPE x_total counter\n"
            "x_total{path=\"say \\\"hi\\\"\\n\"} 1\n");
}

TEST(MetricsTest, InvalidNamesAndTypeClashesAreNotExported) {
  MetricsRegistry reg;
  reg.counter("ok_total", "ok")->add(1);
  Counter* bad = reg.counter("1bad", "bad");
  bad->add(5);  // still usable, never rendered
  EXPECT_EQ(bad->value(), 5u);
  reg.gauge("ok_total", "clash")->set(7);
  reg.counter("lbl_total", "bad label", {{"le", "x"}})->add(1);
  EXPECT_EQ(reg.render(), "# HELP ok_total ok\n# TYPE ok_total counter\nok_total 1\n");
}

TEST(MetricsTest, HistogramSnapshotIsCumulative) {
  rg::Histogram h({1, 0.5, 2, 1});  // unsorted, duplicate: normalised
  EXPECT_EQ(h.bounds(), (std::vector<double>{0.5, 1, 2}));
  h.observe(0.1);
  h.observe(1.5);
  h.observe(-1);
  std::vector<uint64_t> cum;
  double sum = 0;
  uint64_t count = 0;
  h.snapshot(&cum, &sum, &count);
  EXPECT_EQ(cum, (std::vector<uint64_t>{2, 2, 3, 3}));
  EXPECT_EQ(count, 3u);
  EXPECT_DOUBLE_EQ(sum, 0.6);
}

TEST(MetricsTest, ConcurrentUpdatesFromEightThreadsSumExactly) {
  MetricsRegistry reg;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&reg, t] {
      // Lookups race with each other too: each thread resolves the series itself.
      Counter* c = reg.counter("hits_total", "hits", {{"k", "v"}});
      rg::Gauge* g = reg.gauge("level", "level");
      rg::Histogram* h = reg.histogram("lat", "lat", {0.5}, {{"t", t % 2 ? "odd" : "even"}});
      for (int i = 0; i < kPerThread; ++i) {
        c->add();
        g->add(i % 2 ? 1 : -1);
        h->observe(1.0);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(reg.counter("hits_total", "hits", {{"k", "v"}})->value(),
            static_cast<uint64_t>(kThreads) * kPerThread);
  EXPECT_EQ(reg.gauge("level", "level")->value(), 0);
  const std::string text = reg.render();
  EXPECT_NE(text.find("hits_total{k=\"v\"} 800000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_count{t=\"even\"} 400000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_sum{t=\"odd\"} 400000\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace rgtest
