#!/usr/bin/env python3
"""Inference at beamline scale: time and peak memory of `ptycho infer` against the number of
patterns (issue #20). Not run by CI; the numbers go to plans/BENCHMARKS.md.

For each configuration (patterns, N) it simulates a scan with `ptycho simulate` (lines object,
side 4·sqrt(patterns) + N pixels, so that the scan density stays the same and the canvas grows
with the scanned area as on a real scan), then runs `ptycho infer` on it in a child process and
reads that child's peak RSS from the kernel (`os.wait4`). Reports end-to-end patterns/s (wall
time of the whole command: loading and checking the file, grouping, reading, prediction,
stitching, figures, metrics) and prediction patterns/s (the network alone, printed by ptycho).

The models are trained for one short epoch (weights do not change the cost).

    cargo build --release -p ptycho-cli
    python3 plans/experiments/scale-inference/bench.py --work /tmp/scale [--sizes 1024,8192,65536]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def run(cmd: list[str]) -> tuple[float, int, str]:
    """Run `cmd`; return (wall seconds, peak RSS of that child in bytes, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        # Reap the child here: wait4 gives its own rusage (ru_maxrss in KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode()
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read().decode()}")
    return wall, usage.ru_maxrss * 1024, stdout


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ptycho", default=str(REPO / "target/release/ptycho"))
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--sizes", default="1024,8192,65536", help="patterns at N = 64")
    ap.add_argument("--sizes-128", default="8192", help="patterns at N = 128 (empty: none)")
    ap.add_argument("--batch-size", default="32")
    args = ap.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    exe = args.ptycho
    configs = [(int(k), 64) for k in args.sizes.split(",") if k]
    configs += [(int(k), 128) for k in args.sizes_128.split(",") if k]

    models = {}
    for n in sorted({n for _, n in configs}):
        model = work / f"model{n}"
        if not (model / "wts.h5.zip").is_file():
            train = work / f"train{n}.npz"
            run([exe, "simulate", "--n-images", "128", "--N", str(n), "--seed", "7", "--output", str(train), "-q"])
            run([exe, "train", "--train-data", str(train), "--N", str(n), "--nepochs", "1", "--n-groups", "64",
                 "--batch-size", "16", "--output-dir", str(model), "-q"])
        models[n] = model

    print(f"CPU: {lscpu_model()}, {os.cpu_count()} logical CPUs")
    rows = []
    for k, n in configs:
        scan = work / f"scan_{k}_N{n}.npz"
        side = int(4 * math.sqrt(k)) + n
        if not scan.is_file():
            wall, rss, _ = run([exe, "simulate", "--n-images", str(k), "--N", str(n), "--object-size", str(side),
                                "--seed", "11", "--output", str(scan), "-q"])
            print(f"simulated {k} patterns N={n} (object {side}²) in {wall:.1f} s, peak RSS {rss / 2**20:.0f} MiB",
                  flush=True)
        out = work / f"out_{k}_N{n}"
        wall, rss, stdout = run([exe, "infer", "--model", str(models[n]), "--test-data", str(scan),
                                 "--output-dir", str(out), "--batch-size", args.batch_size, "-q"])
        m = re.search(r"in ([0-9.]+) s: ([0-9.]+) patterns/s", stdout)
        pred = float(m.group(2)) if m else float("nan")
        rows.append((k, n, side, wall, k / wall, pred, rss / 2**20, scan.stat().st_size / 2**20))
        print(f"{k} patterns N={n}: {wall:.1f} s, {k / wall:.1f} patterns/s end to end, {pred:.1f} predicting, "
              f"peak RSS {rss / 2**20:.0f} MiB", flush=True)

    print()
    print("| patterns | N | object | file MiB | wall s | patterns/s (end to end) | patterns/s (prediction) | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, n, side, wall, e2e, pred, rss, size in rows:
        print(f"| {k} | {n} | {side}² | {size:.0f} | {wall:.1f} | {e2e:.1f} | {pred:.1f} | {rss:.0f} |")
    base = [r for r in rows if r[1] == 64]
    if len(base) > 1:
        first, last = min(base), max(base)
        print(f"\npeak RSS {last[0]} vs {first[0]} patterns (N=64): {last[6] / first[6]:.2f}x; "
              f"end-to-end patterns/s {last[4] / first[4]:.2f}x, prediction {last[5] / first[5]:.2f}x")


if __name__ == "__main__":
    main()
