#include "common/number_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace rg {

std::string shortestDouble(double v) {
  char buf[64];
  int prec = 1;
  for (; prec < 17; ++prec) {
    std::snprintf(buf, sizeof(buf), "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) {
      break;
    }
  }
  // %g switches to an exponent once it exceeds the precision; write whole numbers below 1e17
  // out in full, as people and Prometheus clients do.
  double mag = std::fabs(v);
  if (mag >= 1 && mag < 1e17) {
    prec = std::max(prec, static_cast<int>(std::floor(std::log10(mag))) + 1);
  }
  std::snprintf(buf, sizeof(buf), "%.*g", prec, v);
  return buf;
}

} // namespace rg
