#!/bin/bash
# usage: plans/experiments/keras-spec-model/run_gs.sh OUT_ROOT SEED GRIDSIZE... (from the repository root)
# Issue #19 part 2: the Keras model of the spec at gridsize 1 or 2, trained 24 epochs on exactly
# the groups `ptycho bench --quality --long` trains on (seed SEED), then the test scan
# reconstructed from the same inference groups and scored by `ptycho evaluate`.
# Needs python3 with numpy and tensorflow-cpu==2.21.0, and a release build of the workspace.
set -euo pipefail
here=$(dirname "$0"); root=$1; seed=$2; shift 2
cargo build --release -p ptycho-cli -p ptycho-workflows --example export_groups
d=$root/s$seed
for gs in "$@"; do
  target/release/examples/export_groups "$d" "$seed" "$gs"
  python3 "$here/train_keras_gs.py" "$d/groups-gs$gs.npz" "$seed" "$d/keras-gs$gs" 24 > "$d/keras-gs$gs.log" 2>&1
  target/release/ptycho evaluate --reconstruction "$d/keras-gs$gs/reconstruction.npz" \
    --ground-truth "$d/test.npz" --json > "$d/keras-gs$gs/metrics.json"
  if [ -f "$d/keras-gs$gs/reconstruction-members.npz" ]; then
    target/release/ptycho evaluate --reconstruction "$d/keras-gs$gs/reconstruction-members.npz" \
      --ground-truth "$d/test.npz" --json > "$d/keras-gs$gs/metrics-members.json"
  fi
done
