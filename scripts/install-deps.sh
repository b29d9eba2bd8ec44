#!/usr/bin/env bash
# Installs what infergate needs to build, test and run, from Debian 12 packages only.
# Idempotent: when everything is present it changes nothing and touches no network.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl openssl
  libboost1.81-all-dev libboost-json1.81-dev
  libpqxx-dev libhiredis-dev libssl-dev libtomlplusplus-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 postgresql-client-15 redis-server redis-tools
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "dependencies: all ${#packages[@]} packages present" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "dependencies: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# The Debian postgresql package would start its own cluster on 5432; we run ours from the checkout.
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts a system-wide redis-server/postgresql on install when an init system runs;
# infergate starts its own from the checkout (scripts/services.sh), so stop those if they run.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true
fi
