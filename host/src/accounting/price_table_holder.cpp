#include "accounting/price_table_holder.h"

#include <utility>

namespace rg {

StatusOr<std::shared_ptr<const PriceTable>> loadPriceTables(const std::string& file,
                                                            const std::string& overrideFile) {
  auto base = PriceTable::loadFile(file);
  if (!base) {
    return base.status();
  }
  if (overrideFile.empty()) {
    return std::shared_ptr<const PriceTable>(
        std::make_shared<PriceTable>(std::move(base.value())));
  }
  auto layered = PriceTable::withOverridesFile(base.value(), overrideFile);
  if (!layered) {
    return layered.status();
  }
  return std::shared_ptr<const PriceTable>(
      std::make_shared<PriceTable>(std::move(layered.value())));
}

} // namespace rg
