#include "http/router.h"

namespace rg {

bool Router::patternMatches(std::string_view pattern, std::string_view path) {
  size_t pi = 0;
  size_t si = 0;
  while (pi < pattern.size() && si < path.size()) {
    size_t pe = pattern.find('/', pi);
    size_t se = path.find('/', si);
    std::string_view pseg = pattern.substr(pi, pe == std::string_view::npos ? pe : pe - pi);
    std::string_view sseg = path.substr(si, se == std::string_view::npos ? se : se - si);
    bool wildcard = pseg.size() >= 2 && pseg.front() == '{' && pseg.back() == '}';
    if (wildcard ? sseg.empty() : pseg != sseg) {
      return false;
    }
    if ((pe == std::string_view::npos) != (se == std::string_view::npos)) {
      return false;
    }
    if (pe == std::string_view::npos) {
      return true;
    }
    pi = pe + 1;
    si = se + 1;
  }
  return pi >= pattern.size() && si >= path.size();
}

namespace {
std::string ownerName(const ProviderPlugin* p) { return p ? p->manifest().name : "(host)"; }
} // namespace

Status Router::add(ProviderPlugin* plugin, const RouteSpec& spec) {
  std::string key = spec.method + " " + spec.path;
  bool isPattern = spec.path.find('{') != std::string::npos;
  for (const auto& e : ordered_) {
    if (e.spec.method == spec.method && e.spec.path == spec.path) {
      return alreadyExists("route " + key + " is declared by both plugin " +
                           ownerName(e.plugin) + " and plugin " + ownerName(plugin));
    }
  }
  ordered_.push_back(RouteEntry{plugin, spec});
  if (isPattern) {
    patterns_.push_back(ordered_.size() - 1);
  } else {
    exact_.emplace(std::move(key), ordered_.size() - 1);
  }
  return Status::ok();
}

const RouteEntry* Router::match(std::string_view method, std::string_view path,
                                bool* pathExists) const {
  std::string key;
  key.reserve(method.size() + 1 + path.size());
  key.append(method).append(" ").append(path);
  auto it = exact_.find(key);
  if (it != exact_.end()) {
    return &ordered_[it->second];
  }
  for (size_t idx : patterns_) {
    const auto& e = ordered_[idx];
    if (e.spec.method == method && patternMatches(e.spec.path, path)) {
      return &e;
    }
  }
  if (pathExists != nullptr) {
    *pathExists = false;
    for (const auto& e : ordered_) {
      if (e.spec.path == path || patternMatches(e.spec.path, path)) {
        *pathExists = true;
        break;
      }
    }
  }
  return nullptr;
}

} // namespace rg
