#!/bin/bash
# Installs the SDK from this build tree into a temp prefix, builds the echo example out of tree
# against it (as a third party would), runs its FakeHost unit tests, and loads the result with the
# real PluginLoader (rg_echo_check).
#   sdk_install_test.sh <cmake build dir> <source dir> <rg_echo_check> <work dir>
set -euo pipefail
build=$1
src=$2
checker=$3
work=$4

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build/sdk" --prefix "$work/prefix"
test -f "$work/prefix/include/relaygate/abi.h"
test -f "$work/prefix/include/relaygate/testing/fake_host.hpp"

cmake -S "$src/sdk/examples/echo_provider" -B "$work/build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror"
cmake --build "$work/build" -j2
test -f "$work/build/librg_echo.so"

# Only the manifest may be exported.
exported=$(nm -D --defined-only "$work/build/librg_echo.so" | awk '{print $3}' | sort | tr '\n' ' ')
if [ "$exported" != "rg_plugin_manifest_v1 " ]; then
  echo "unexpected exported symbols: $exported"
  exit 1
fi

if [ -x "$work/build/echo_test" ]; then
  "$work/build/echo_test"
else
  echo "echo_test was not built (GoogleTest not found by the example)"
  exit 1
fi
"$checker" "$work/build/librg_echo.so"
rm -rf "$work"
