#!/usr/bin/env bash
# Installs the system packages auditgap needs on Debian (skips what is present) and builds it.
set -euo pipefail
need=()
for pkg in libopenblas-dev libyaml-dev zlib1g-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
swift build -c release "$@"
