#!/bin/bash
# Installs the SDK from this build tree into a temp prefix, builds the echo example out of tree
# against it (as a third party would), runs its FakeHost unit tests, and loads the result with the
# real PluginLoader (rg_echo_check).
# Finally a running relaygate loads that out-of-tree build and serves its routes.
#   sdk_install_test.sh <cmake build dir> <source dir> <rg_echo_check> <work dir> <relaygate>
set -euo pipefail
build=$1
src=$2
checker=$3
work=$4
relaygate=$5

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

# A running host loads the out-of-tree plugin (and only it) and serves its local route.
mkdir -p "$work/gw"
cat > "$work/gw/relaygate.yaml" <<YAML
server: {host: 127.0.0.1, port: 0}
storage: {backend: embedded, data_dir: "$work/gw/data"}
security: {master_key: "sdk-install-test-master-key-0123"}
plugins:
  directory: "$work/build"
  enabled:
    - name: echo
      config: {greeting: "hello from out of tree"}
YAML
"$relaygate" plugins list --config "$work/gw/relaygate.yaml" | grep -q "^echo "
key=$("$relaygate" keys create --config "$work/gw/relaygate.yaml" --name sdk-test | tail -n 1)
"$relaygate" serve --config "$work/gw/relaygate.yaml" > "$work/gw/out" 2> "$work/gw/err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$work/gw/out" | head -n 1)
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || { cat "$work/gw/err"; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "relaygate did not start"; cat "$work/gw/err"; exit 1; }
reply=$(curl -sS -X POST -H "x-api-key: $key" -H "content-type: application/json" \
  --data '{"ping":1}' "http://127.0.0.1:$port/echo/v1/echo")
echo "echo route answered: $reply"
case "$reply" in
  *'"echo"'*'ping'*) ;;
  *) echo "unexpected echo reply"; exit 1 ;;
esac
kill -TERM $pid
wait $pid
trap - EXIT
rm -rf "$work"
