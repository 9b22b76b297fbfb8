#pragma once
// The price table in force, swappable at runtime (SIGHUP reload) while requests read it.
//
// Readers take a shared_ptr snapshot per request (atomic load), so a reload never frees a table
// a request is still pricing with, and a request never sees half of an old and half of a new
// table. std::atomic<std::shared_ptr> is C++20; the C++11 free-function atomics are used here.

#include <memory>
#include <string>

#include "accounting/pricing.h"
#include "common/status.h"

namespace rg {

class PriceTableHolder {
public:
  explicit PriceTableHolder(std::shared_ptr<const PriceTable> table = nullptr)
      : table_(std::move(table)) {}

  // The current table; nullptr when none was ever stored (every request is then unpriced).
  std::shared_ptr<const PriceTable> load() const { return std::atomic_load(&table_); }
  void store(std::shared_ptr<const PriceTable> table) {
    std::atomic_store(&table_, std::move(table));
  }

private:
  std::shared_ptr<const PriceTable> table_;
};

// Loads `file` and layers `overrideFile` (empty = none) on top of it. Errors name the file.
StatusOr<std::shared_ptr<const PriceTable>> loadPriceTables(const std::string& file,
                                                            const std::string& overrideFile);

} // namespace rg
