#!/usr/bin/env bash
# Command 1 of the README: install dependencies, build (Release) and run the gateway with
# config/relaygate.example.yaml on the embedded store. Extra arguments go to `relaygate serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRG_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
exec ./build/host/relaygate serve --config config/relaygate.example.yaml "$@"
