#pragma once
// Clock interface so that time-dependent logic is testable with an injected clock.

#include <atomic>
#include <cstdint>

namespace rg {

class Clock {
public:
  virtual ~Clock() = default;
  virtual int64_t nowUnixMs() const = 0;  // wall clock
  virtual int64_t monotonicMs() const = 0; // for durations and expiries in memory
};

// The real clocks.
class SystemClock : public Clock {
public:
  int64_t nowUnixMs() const override;
  int64_t monotonicMs() const override;
  static const SystemClock& instance();
};

// A clock tests move by hand.
class ManualClock : public Clock {
public:
  explicit ManualClock(int64_t startUnixMs = 1'700'000'000'000) : now_(startUnixMs) {}
  int64_t nowUnixMs() const override { return now_.load(); }
  int64_t monotonicMs() const override { return now_.load(); }
  void advanceMs(int64_t ms) { now_ += ms; }
  void setUnixMs(int64_t ms) { now_ = ms; }

private:
  std::atomic<int64_t> now_;
};

} // namespace rg
