#!/usr/bin/env bash
# Runs every model-runtime benchmark of auditgap next to its PyTorch baseline, one after the
# other in one invocation (auditgap, then PyTorch, per workload, ROUNDS times), and prints the
# raw lines of both. Needs a release build and a venv with torch + transformers + peft:
#
#   scripts/bench_side_by_side.sh [VENV_PYTHON] [ROUNDS]     # default /work/venv/bin/python, 2
#
# Run it on a quiet machine (check `uptime` first); docs/BENCHMARKS.md records its output.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-/work/venv/bin/python}"
ROUNDS="${2:-2}"
AG="$ROOT/.build/release/auditgap"
[ -x "$AG" ] || { echo "no release build at $AG: run 'swift build -c release' first" >&2; exit 2; }
"$PY" -c 'import torch, transformers, peft' 2>/dev/null || {
    echo "$PY lacks torch/transformers/peft: python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers peft" >&2
    exit 2
}
echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# auditgap $(git -C "$ROOT" rev-parse --short HEAD); $("$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
for round in $(seq 1 "$ROUNDS"); do
    echo "## round $round"
    "$AG" bench forward | tail -1
    "$PY" "$ROOT/scripts/bench_torch_models.py" --only forward | tail -2
    "$AG" bench generate | tail -2
    "$PY" "$ROOT/scripts/bench_torch_models.py" --only generate | tail -2
    "$AG" bench pgd | tail -3
    "$PY" "$ROOT/scripts/bench_torch_pgd.py" | tail -3
    "$AG" bench train | tail -1
    "$PY" "$ROOT/scripts/bench_torch_train.py" full | tail -1
    "$AG" bench lora | tail -1
    "$AG" bench lora --checkpointing | tail -1
    "$PY" "$ROOT/scripts/bench_torch_train.py" lora | tail -1
done
