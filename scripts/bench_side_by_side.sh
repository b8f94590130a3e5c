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
# Share of CPU time the hypervisor gave to other guests ("steal", /proc/stat) while one
# command ran: on a shared VM a few percent of steal stalls every two-thread split, and the
# figures of that command are not comparable with a quiet run's.
cpu_times() { awk '/^cpu /{ print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
measure() {  # measure N COMMAND...: the command's last N lines, then the steal while it ran
    local lines="$1" before after
    shift
    before="$(cpu_times)"
    "$@" | tail -"$lines"
    after="$(cpu_times)"
    echo "$before $after" | awk '{ d = $4 - $2; printf "# steal %.1f%%\n", (d > 0 ? 100 * ($3 - $1) / d : 0) }'
}
echo "# auditgap $(git -C "$ROOT" rev-parse --short HEAD); $("$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
for round in $(seq 1 "$ROUNDS"); do
    echo "## round $round"
    measure 1 "$AG" bench forward
    measure 2 "$PY" "$ROOT/scripts/bench_torch_models.py" --only forward
    measure 2 "$AG" bench generate
    measure 2 "$PY" "$ROOT/scripts/bench_torch_models.py" --only generate
    measure 3 "$AG" bench pgd
    measure 3 "$PY" "$ROOT/scripts/bench_torch_pgd.py"
    measure 1 "$AG" bench train
    measure 1 "$PY" "$ROOT/scripts/bench_torch_train.py" full
    measure 1 "$AG" bench lora
    measure 1 "$AG" bench lora --checkpointing
    measure 1 "$PY" "$ROOT/scripts/bench_torch_train.py" lora
done
