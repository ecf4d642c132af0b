#!/bin/bash
# usage: plans/experiments/keras-spec-model/run.sh OUT_ROOT SEED...   (from the repository root)
# Needs python3 with numpy and tensorflow-cpu==2.21.0, and target/release/ptycho.
set -euo pipefail
here=$(dirname "$0"); root=$1; shift
gold=${PTYCHO_GOLDENS:-testdata/goldens}
for s in "$@"; do
  d=$root/s$s
  python3 "$here/train_keras.py" "$s" "$d" 20 > "$root/s$s.log" 2>&1
  python3 "$here/stitch.py" "$d" >> "$root/s$s.log" 2>&1
  target/release/ptycho evaluate --reconstruction "$d/reconstruction.npz" \
    --ground-truth "$gold/sim_lines_test.npz" --json > "$d/metrics.json"
done
