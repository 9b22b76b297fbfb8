#include "observability/metrics.h"

#include "common/number_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <spdlog/spdlog.h>

namespace rg {

namespace {

bool validMetricName(const std::string& n) {
  if (n.empty()) {
    return false;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) {
      return false;
    }
  }
  return true;
}

bool validLabelName(const std::string& n) {
  // Like a metric name without ':'; "le" is reserved for histogram buckets.
  return validMetricName(n) && n.find(':') == std::string::npos && n != "le" &&
         n.rfind("__", 0) != 0;
}

// Shortest text that parses back to the same double, as Prometheus clients print it.
std::string formatDouble(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  return shortestDouble(v);
}

std::string escapeHelp(const std::string& h) {
  std::string out;
  out.reserve(h.size());
  for (char c : h) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `{a="x",b="y"}` plus an optional extra label (le), or "" when there are no labels at all.
std::string renderLabels(const Labels& labels, const char* extraName = nullptr,
                         const std::string& extraValue = {}) {
  if (labels.empty() && extraName == nullptr) {
    return "";
  }
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) {
      out += ',';
    }
    first = false;
    out += k + "=\"" + escapeLabelValue(v) + "\"";
  }
  if (extraName != nullptr) {
    if (!first) {
      out += ',';
    }
    out += std::string(extraName) + "=\"" + escapeLabelValue(extraValue) + "\"";
  }
  out += '}';
  return out;
}

std::vector<double> normaliseBounds(std::vector<double> b) {
  b.erase(std::remove_if(b.begin(), b.end(), [](double x) { return !std::isfinite(x); }), b.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

}  // namespace

std::string escapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(normaliseBounds(std::move(bounds))),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    buckets_[i].store(0, std::memory_order_relaxed);
  }
}

void Histogram::observe(double v) {
  if (std::isnan(v)) {
    return;  // would poison the sum forever
  }
  // First bucket whose upper bound is >= v ("le" semantics); past the end = +Inf.
  size_t idx =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[idx].fetch_add(1, std::memory_order_relaxed);
  // The sum is kept in micro-units as a two's-complement integer so negative observations
  // and concurrent adds stay exact; values beyond ~9e12 saturate.
  double scaled = std::round(v * 1e6);
  constexpr double kMax = 9.0e18;
  scaled = std::max(-kMax, std::min(kMax, scaled));
  sumMicros_.fetch_add(static_cast<uint64_t>(static_cast<int64_t>(scaled)),
                       std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::snapshot(std::vector<uint64_t>* cumulative, double* sum, uint64_t* count) const {
  cumulative->assign(bounds_.size() + 1, 0);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    (*cumulative)[i] = running;
  }
  // The count is derived from the buckets so that count == the +Inf bucket in every snapshot,
  // even while other threads observe concurrently.
  *count = running;
  *sum =
      static_cast<double>(static_cast<int64_t>(sumMicros_.load(std::memory_order_relaxed))) / 1e6;
}

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  std::string type;  // counter | gauge | histogram
  struct Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  std::map<Labels, Series> series;  // sorted: stable, deterministic output
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const std::string& help,
                                                 const char* type) {
  auto it = families_.find(name);
  if (it != families_.end() && it->second->type == type && validMetricName(name)) {
    return *it->second;
  }
  if (it == families_.end() && validMetricName(name)) {
    auto f = std::make_unique<Family>();
    f->name = name;
    f->help = help;
    f->type = type;
    Family& ref = *f;
    families_.emplace(name, std::move(f));
    return ref;
  }
  // A programming error (bad name or a name reused with another type). Callers hold raw
  // pointers on hot paths, so hand back a working but unexported family instead of crashing.
  if (!name.empty()) {  // empty = the caller already reported bad label names
    spdlog::error(
        "metrics: {} \"{}\" rejected: {}", type, name,
        it == families_.end() ? "invalid metric name" : "name registered with another type");
  }
  auto f = std::make_unique<Family>();
  f->name = name;
  f->type = type;
  rejected_.push_back(std::move(f));
  return *rejected_.back();
}

namespace {

bool labelsValid(const std::string& name, const Labels& labels) {
  for (const auto& kv : labels) {
    if (!validLabelName(kv.first)) {
      spdlog::error("metrics: \"{}\" has an invalid label name \"{}\"; series not exported", name,
                    kv.first);
      return false;
    }
  }
  return true;
}

}  // namespace

Counter* MetricsRegistry::counter(const std::string& name, const std::string& help,
                                  const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = labelsValid(name, labels) ? family(name, help, "counter") : family("", "", "counter");
  auto& s = f.series[labels];
  if (!s.counter) {
    s.counter = std::make_unique<Counter>();
  }
  return s.counter.get();
}

Gauge* MetricsRegistry::gauge(const std::string& name, const std::string& help,
                              const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = labelsValid(name, labels) ? family(name, help, "gauge") : family("", "", "gauge");
  auto& s = f.series[labels];
  if (!s.gauge) {
    s.gauge = std::make_unique<Gauge>();
  }
  return s.gauge.get();
}

Histogram* MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f =
      labelsValid(name, labels) ? family(name, help, "histogram") : family("", "", "histogram");
  auto& s = f.series[labels];
  if (!s.histogram) {
    s.histogram = std::make_unique<Histogram>(bounds);
  }
  return s.histogram.get();
}

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  std::vector<uint64_t> cumulative;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + escapeHelp(f->help) + "\n";
    out += "# TYPE " + name + " " + f->type + "\n";
    for (const auto& [labels, s] : f->series) {
      if (s.counter) {
        out += name + renderLabels(labels) + " " + std::to_string(s.counter->value()) + "\n";
      } else if (s.gauge) {
        out += name + renderLabels(labels) + " " + std::to_string(s.gauge->value()) + "\n";
      } else if (s.histogram) {
        double sum = 0;
        uint64_t count = 0;
        s.histogram->snapshot(&cumulative, &sum, &count);
        const auto& bounds = s.histogram->bounds();
        for (size_t i = 0; i < cumulative.size(); ++i) {
          std::string le = i < bounds.size() ? formatDouble(bounds[i]) : "+Inf";
          out += name + "_bucket" + renderLabels(labels, "le", le) + " " +
                 std::to_string(cumulative[i]) + "\n";
        }
        out += name + "_sum" + renderLabels(labels) + " " + formatDouble(sum) + "\n";
        out += name + "_count" + renderLabels(labels) + " " + std::to_string(count) + "\n";
      }
    }
  }
  return out;
}

}  // namespace rg
