#!/usr/bin/env bash
# Installs relaygate's build, test and benchmark dependencies from Debian packages.
# Idempotent: packages already present are skipped; apt is not touched when nothing is missing.
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config git curl
  libpoco-dev libhiredis-dev rapidjson-dev libspdlog-dev libyaml-cpp-dev libssl-dev
  libgtest-dev libgmock-dev redis-server nginx-light wrk microsocks tzdata)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start system services we do not use; relaygate's tests and benchmark
# start their own on free loopback ports.
for svc in redis-server nginx; do
  if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
  fi
done
