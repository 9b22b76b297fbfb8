#pragma once
// relaygate plugin SDK, C++ layer for notifier plugins (header-only, C++17).
//
//   class Hook : public rg::sdk::Notifier {
//   public:
//     Hook(rg::sdk::Host host, std::string_view configJson) : Notifier(host) {}
//     rg::sdk::Status onEvent(const rg::sdk::Event& ev) override { ... }
//   };
//   RG_DECLARE_NOTIFIER("webhook", "1.0.0", "Posts events to a URL", Hook)
//
// Same exception policy as providers: nothing escapes a trampoline.

#include "relaygate/provider.hpp"

namespace rg {
namespace sdk {
namespace detail {

struct NotifierBox {
  Host host;
  std::unique_ptr<Notifier> obj;
};

template <typename C> struct NotifierGlue {
  static_assert(std::is_base_of<Notifier, C>::value, "RG_DECLARE_NOTIFIER: Class must derive "
                                                     "from rg::sdk::Notifier");
  static_assert(std::is_constructible<C, Host, std::string_view>::value,
                "RG_DECLARE_NOTIFIER: Class needs a constructor (rg::sdk::Host, std::string_view)");

  static rg_status create(rg_host_plugin* p, const rg_host_api* api, rg_str config,
                          rg_instance* out) noexcept {
    Host h(p, api);
    try {
      auto b = std::make_unique<NotifierBox>();
      b->host = h;
      b->obj = std::make_unique<C>(h, sv(config));
      *out = b.release();
      return RG_OK;
    } catch (...) {
      return fromCurrentException(h);
    }
  }
  static void destroy(rg_instance inst) noexcept {
    try {
      delete static_cast<NotifierBox*>(inst);
    } catch (...) { // a throwing destructor terminates anyway; nothing to report to
    }
  }
  static rg_status onEvent(rg_instance inst, const rg_event* ev) noexcept {
    auto* b = static_cast<NotifierBox*>(inst);
    try {
      return report(b->host, b->obj->onEvent(Event(ev)));
    } catch (...) {
      return fromCurrentException(b->host);
    }
  }

  static constexpr rg_notifier_vtable kVtable = {sizeof(rg_notifier_vtable), &create, &destroy,
                                                 &onEvent};
};

} // namespace detail
} // namespace sdk
} // namespace rg

// Defines the notifier's manifest. Use once, at global scope, in one source file of the plugin.
#define RG_DECLARE_NOTIFIER(name, version, description, Class)                                   \
  extern "C" RG_EXPORT const rg_plugin_manifest rg_plugin_manifest_v1 = {                        \
      sizeof(rg_plugin_manifest), RG_ABI_MAJOR, RG_ABI_MINOR, 0, RG_KIND_NOTIFIER, (name),        \
      (version), (description), &::rg::sdk::detail::NotifierGlue<Class>::kVtable};
