#pragma once
// Maps (method, path) to the route a plugin declared. Exact paths are a hash lookup; patterns with
// "{name}" segments are tried in declaration order after that.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "plugin/plugin_runtime.h"

namespace rg {

struct RouteEntry {
  ProviderPlugin* plugin = nullptr;
  RouteSpec spec;
};

class Router {
public:
  // kAlreadyExists when another route already has the same method and path.
  Status add(ProviderPlugin* plugin, const RouteSpec& spec);
  // nullptr when nothing matches. `pathExists` (optional) tells whether the path matched for
  // another method (405 instead of 404).
  const RouteEntry* match(std::string_view method, std::string_view path,
                          bool* pathExists = nullptr) const;
  const std::vector<RouteEntry>& all() const { return ordered_; }

private:
  static bool patternMatches(std::string_view pattern, std::string_view path);
  std::unordered_map<std::string, size_t> exact_; // "METHOD path" -> index in ordered_
  std::vector<size_t> patterns_;
  std::vector<RouteEntry> ordered_;
};

} // namespace rg
