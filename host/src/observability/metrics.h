#pragma once
// A small Prometheus registry: counters and gauges with fixed label sets, and histograms.
// Hot-path updates are lock-free after the first lookup of a series (cache the returned pointer).

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace rg {

using Labels = std::vector<std::pair<std::string, std::string>>; // ordered as given

class Counter {
public:
  void add(uint64_t d = 1) { v_.fetch_add(d, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
public:
  void add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

private:
  std::atomic<int64_t> v_{0};
};

class Histogram {
public:
  explicit Histogram(std::vector<double> bounds); // upper bounds, ascending (seconds etc.)
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Snapshot: cumulative bucket counts (size bounds()+1, last = +Inf), sum, count.
  void snapshot(std::vector<uint64_t>* cumulative, double* sum, uint64_t* count) const;

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sumMicros_{0}; // sum scaled by 1e6 to stay atomic
};

class MetricsRegistry {
public:
  MetricsRegistry();
  ~MetricsRegistry(); // defined in metrics.cpp (Family is incomplete here)
  // Returned pointers stay valid for the registry's lifetime. Name must be a valid metric name;
  // help is set by the first call for a name.
  Counter* counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge* gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram* histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& bounds, const Labels& labels = {});
  // Prometheus text exposition format 0.0.4.
  std::string render() const;

private:
  struct Family;
  Family& family(const std::string& name, const std::string& help, const char* type);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;
  // Families refused (bad name, type clash, bad label names): usable, never rendered.
  std::vector<std::unique_ptr<Family>> rejected_;
};

// Label value escaping for the text format (backslash, quote, newline).
std::string escapeLabelValue(const std::string& v);

} // namespace rg
