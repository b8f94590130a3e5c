#!/usr/bin/env python3
"""Times no-op status/run of DVC and Snakemake on the pipeline `auditgap bench pipeline` generates.

The pipeline: N/2 `gen[a,b]` instances (echo into a file) and N/2 `copy[a,b]` instances each
copying one `gen` output, b in 1..10 (the same shape as auditgap's generator). Run once by hand
with a private venv (never in CI):

    python3 -m venv /work/venv-runners && /work/venv-runners/bin/pip install dvc snakemake
    python3 scripts/bench_pipeline_runners.py --venv /work/venv-runners --instances 50 200 500

Prints one line per (tool, size, command) with the median wall time of --repeats runs.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time


def grid(instances):
    b = 10
    a = max(1, instances // (2 * b))
    return a, b


def dvc_project(root, instances):
    a, b = grid(instances)
    os.makedirs(os.path.join(root, "gen"))
    os.makedirs(os.path.join(root, "copy"))
    al = ", ".join(str(i) for i in range(1, a + 1))
    bl = ", ".join(str(i) for i in range(1, b + 1))
    with open(os.path.join(root, "dvc.yaml"), "w") as f:
        f.write(f"""stages:
  gen:
    matrix:
      a: [{al}]
      b: [{bl}]
    cmd: echo hello ${{item.a}} ${{item.b}} > gen/${{item.a}}_${{item.b}}.txt
    outs:
      - gen/${{item.a}}_${{item.b}}.txt
  copy:
    matrix:
      a: [{al}]
      b: [{bl}]
    cmd: cp gen/${{item.a}}_${{item.b}}.txt copy/${{item.a}}_${{item.b}}.txt
    deps:
      - gen/${{item.a}}_${{item.b}}.txt
    outs:
      - copy/${{item.a}}_${{item.b}}.txt
""")


def snakemake_project(root, instances):
    a, b = grid(instances)
    with open(os.path.join(root, "Snakefile"), "w") as f:
        f.write(f"""A = range(1, {a + 1})
B = range(1, {b + 1})

rule all:
    input: expand("copy/{{a}}_{{b}}.txt", a=A, b=B)

rule gen:
    output: "gen/{{a}}_{{b}}.txt"
    shell: "echo hello {{wildcards.a}} {{wildcards.b}} > {{output}}"

rule copy:
    input: "gen/{{a}}_{{b}}.txt"
    output: "copy/{{a}}_{{b}}.txt"
    shell: "cp {{input}} {{output}}"
""")


def child_cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def timed(cmd, cwd, env, with_cpu=False):
    """Wall time (and CPU time, user + system, of the command and its children)."""
    c0 = child_cpu()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    cpu = child_cpu() - c0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}: {r.stderr.decode()[-2000:]}")
    return (dt, cpu) if with_cpu else dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default="/work/venv-runners")
    ap.add_argument("--instances", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tools", nargs="+", default=["dvc", "snakemake"])
    args = ap.parse_args()
    env = dict(os.environ)
    env["PATH"] = os.path.join(args.venv, "bin") + os.pathsep + env["PATH"]
    env["DVC_NO_ANALYTICS"] = "1"
    for n in args.instances:
        for tool in args.tools:
            root = tempfile.mkdtemp(prefix=f"bench-{tool}-{n}-")
            try:
                if tool == "dvc":
                    dvc_project(root, n)
                    timed(["dvc", "init", "--no-scm", "-q"], root, env)
                    first = timed(["dvc", "repro", "-q"], root, env)
                    cmds = {"status": ["dvc", "status"], "no-op run": ["dvc", "repro"]}
                else:
                    snakemake_project(root, n)
                    first = timed(["snakemake", "-c1", "-q"], root, env)
                    cmds = {"status (-n)": ["snakemake", "-n", "-c1"], "no-op run": ["snakemake", "-c1"]}
                print(f"{tool} {n} instances: first run {first:.1f} s", flush=True)
                for label, cmd in cmds.items():
                    runs = [timed(cmd, root, env, with_cpu=True) for _ in range(args.repeats)]
                    wall = statistics.median(t for t, _ in runs)
                    cpu = statistics.median(c for _, c in runs)
                    print(f"{tool} {n} instances: {label} median {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU "
                          f"(walls: {', '.join(f'{t:.2f}' for t, _ in runs)} s; load {os.getloadavg()[0]:.1f})", flush=True)
            finally:
                shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
