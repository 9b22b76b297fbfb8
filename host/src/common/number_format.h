#pragma once
// Number formatting shared by the config renderer, the config loader and the metrics exporter.

#include <string>

namespace rg {

// The shortest decimal form that reads back as exactly `v` (finite values only); whole numbers
// below 1e17 are written out in full ("2500", not "2.5e+03").
std::string shortestDouble(double v);

} // namespace rg
