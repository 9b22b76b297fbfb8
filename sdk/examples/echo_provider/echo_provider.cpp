// Exports the manifest that makes librg_echo.so a relaygate plugin.
#include "echo_provider.hpp"

RG_DECLARE_PROVIDER("echo", "1.0.0", "Echoes request bodies (SDK example)", echo::EchoProvider)
