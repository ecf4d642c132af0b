#!/usr/bin/env bash
# Reconstruct many scans with one trained model on Slurm: one array task per scan.
#
# The manifest lists the scan NPZ files, one path per line (no blank lines; line i is task i).
# Scan file names must be unique: scan /data/a/scan7.npz is written to OUT/scan7/.
#
#   ls /data/run42/*.npz > scans.txt
#   sbatch --array=1-$(wc -l < scans.txt) docs/slurm/reconstruct-array.sh model/wts.h5.zip scans.txt out
#
# Each task runs `ptycho infer` and writes OUT/<name>/reconstruction.npz (object, amplitude, phase,
# origin, stitch_crop), the amplitude and phase PNGs and, when the scan has objectGuess,
# metrics.json. A task that fails exits non-zero and leaves no partial reconstruction.npz;
# `sacct -j JOBID --format=JobID,State,ExitCode` lists which ones to resubmit
# (`sbatch --array=3,17 ...`).
#
# Environment: PTYCHO (the binary; default `ptycho` on PATH), DEVICE (cpu, or cuda with a
# libtorch build: then also ask for a GPU, `sbatch --gres=gpu:1 ...`), and any extra `ptycho
# infer` flags after the three arguments (e.g. `--stitch-crop 20 --batch-size 64`).
#
#SBATCH --job-name=ptycho-infer
#SBATCH --array=1-1
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=00:30:00
#SBATCH --output=ptycho-infer-%A_%a.out

set -euo pipefail

usage="usage: sbatch --array=1-N $0 MODEL MANIFEST [OUT_DIR] [ptycho infer flags...]"
model="${1:?$usage}"
manifest="${2:?$usage}"
out="${3:-out}"
shift $(( $# < 3 ? $# : 3 ))

task="${SLURM_ARRAY_TASK_ID:?not an array task (submit with sbatch --array=1-N)}"
scan="$(sed -n "${task}p" "$manifest")"
if [ -z "$scan" ]; then
    echo "task $task: $manifest has no line $task" >&2
    exit 2
fi
name="$(basename "$scan" .npz)"

# The native code uses one thread per allocated core (results do not depend on the count).
export RAYON_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"

echo "task $task: $scan -> $out/$name"
exec "${PTYCHO:-ptycho}" infer --model "$model" --test-data "$scan" --output-dir "$out/$name" \
    --device "${DEVICE:-cpu}" --quiet "$@"
