#!/usr/bin/env bash
# Command 2 of the README (and what CI runs): install dependencies, build with warnings as
# errors, run every test (unit, storage conformance on the embedded store and on a real
# redis-server the tests start themselves, plugin loader/ABI, out-of-tree SDK build, Claude plugin,
# end-to-end integration), then build again with AddressSanitizer + UndefinedBehaviorSanitizer
# and run the suite under it. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
JOBS="${JOBS:-$(nproc)}"

echo "== build (warnings as errors)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRG_WERROR=ON >/dev/null
cmake --build build-test -j"$JOBS"
echo "== tests"
ctest --test-dir build-test -j"$JOBS" --output-on-failure --timeout 600

if [ "${RG_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRG_WERROR=ON -DRG_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$JOBS"
  echo "== tests under ASan + UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -j"$JOBS" --output-on-failure --timeout 900
fi
