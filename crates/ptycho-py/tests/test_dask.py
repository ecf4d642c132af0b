"""ptycho_rs.dask on a real two-process LocalCluster: four scans, one model load per worker,
objects identical to Model.reconstruct in this process, files readable by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ptycho_rs as pr
import ptycho_rs.dask as prd
from conftest import REPO, ptycho_binary, run_ptycho
from distributed import Client, LocalCluster

SEEDS = (11, 12, 13, 14)


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four small simulated scans (64 patterns of N = 64 on a 128-px object), other seeds each."""
    d = tmp_path_factory.mktemp("scans")
    paths = [d / f"scan{seed}.npz" for seed in SEEDS]
    for seed, path in zip(SEEDS, paths, strict=True):
        run_ptycho("simulate", "--n-images", "64", "--object-size", "128", "--seed", seed, "--output", path)
    return paths


@pytest.fixture(scope="module")
def archive(sim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained by the CLI: one epoch on 32 groups of the shared training scan."""
    d = tmp_path_factory.mktemp("model")
    run_ptycho(
        "train", "--train-data", sim_dir / "train.npz", "--output-dir", d,
        "--nepochs", "1", "--n-groups", "32", "--quiet",
    )
    return d / "wts.h5.zip"


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes with one thread each over loopback, no dashboard. The native code
    runs one rayon thread per worker (this process keeps the default), so the comparison below
    also holds across thread counts."""
    with LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        env={"RAYON_NUM_THREADS": "1"},
    ) as cluster, Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def test_four_scans_match_one_process_and_load_the_model_once_per_worker(
    client: Client, scans: list[Path], archive: Path, tmp_path: Path
) -> None:
    model = pr.load_model(archive)
    before = prd.worker_stats(client)
    assert len(before) == 2
    # Two scans as paths (read by the workers), two as Scan objects (scattered).
    inputs: list[pr.Scan | Path] = [scans[0], pr.Scan.load(scans[1]), scans[2], pr.Scan.load(scans[3])]
    outs = [tmp_path / f"out{seed}" for seed in SEEDS]

    recs = prd.reconstruct_scans(client, model, inputs, output_dirs=outs)

    expected = [model.reconstruct(path) for path in scans]  # this process, in input order
    assert len(recs) == 4
    for rec, exp, out in zip(recs, expected, outs, strict=True):
        assert rec.object.dtype == np.complex64 and rec.object.shape == exp.object.shape
        assert np.array_equal(rec.object, exp.object)  # bit-identical, not merely close
        assert rec.origin == exp.origin and rec.stitch_crop == exp.stitch_crop == 20
        assert rec.report["n_patterns"] == 64
        assert rec.metrics is not None and rec.metrics["metrics"] == exp.metrics["metrics"]
        with np.load(out / prd.RECONSTRUCTION_FILE) as f:
            assert set(f.files) == {"object", "amplitude", "phase", "origin", "stitch_crop"}
            assert np.array_equal(f["object"], exp.object) and f["object"].dtype == np.complex64
            assert np.array_equal(f["amplitude"], np.abs(exp.object).astype(np.float32))
            assert f["origin"].tolist() == list(exp.origin) and int(f["stitch_crop"]) == 20
    # The scans differ, so input order is really checked.
    assert not np.array_equal(expected[0].object, expected[1].object)

    after = prd.worker_stats(client)
    key = os.fspath(archive)
    pids = {s["pid"] for s in after.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(s["model_loads"] == {key: 1} and s["cached"] == [key] for s in after.values()), after
    done = [after[w]["scans"] - before[w]["scans"] for w in after]
    assert sum(done) == 4 and min(done) >= 1, after  # both workers reconstructed

    # Another batch reuses the cached models: still one load per worker.
    again = prd.reconstruct_scans(client, archive.parent, [scans[0]])
    assert np.array_equal(again[0].object, expected[0].object)
    assert all(s["model_loads"] == {key: 1} for s in prd.worker_stats(client).values())


def test_files_match_the_slurm_script_and_the_cli(
    client: Client, scans: list[Path], archive: Path, tmp_path: Path
) -> None:
    """docs/slurm/reconstruct-array.sh (array task 2 of a manifest: `ptycho infer`) writes the
    object the Dask route writes for that scan; `ptycho evaluate` reads the Dask route's file and
    reports what ptycho_rs.evaluate does."""
    (rec,) = prd.reconstruct_scans(client, archive, [scans[1]], output_dirs=[tmp_path / "dask"])
    manifest = tmp_path / "scans.txt"
    manifest.write_text("".join(f"{p}\n" for p in scans))
    env = {**os.environ, "PTYCHO": str(ptycho_binary()), "SLURM_ARRAY_TASK_ID": "2", "SLURM_CPUS_PER_TASK": "1"}
    script = REPO / "docs" / "slurm" / "reconstruct-array.sh"
    proc = subprocess.run(
        ["bash", str(script), str(archive), str(manifest), str(tmp_path / "slurm")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    ours_path = tmp_path / "dask" / "reconstruction.npz"
    with np.load(ours_path) as ours, np.load(tmp_path / "slurm" / scans[1].stem / "reconstruction.npz") as cli:
        assert np.array_equal(ours["object"], cli["object"])
        assert np.array_equal(ours["origin"], cli["origin"])
        assert int(ours["stitch_crop"]) == int(cli["stitch_crop"])
    printed = run_ptycho("evaluate", "--reconstruction", ours_path, "--ground-truth", scans[1], "--json").stdout
    assert json.loads(printed) == pr.evaluate(rec, scans[1])

    no_line = subprocess.run(
        ["bash", str(script), str(archive), str(manifest)],
        env={**env, "SLURM_ARRAY_TASK_ID": "5"}, capture_output=True, text=True, timeout=60,
    )
    assert no_line.returncode == 2 and "has no line 5" in no_line.stderr


def test_errors_raise_with_the_scan_or_take_its_place(
    client: Client, scans: list[Path], archive: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.npz"
    with pytest.raises(OSError, match=r"missing\.npz") as info:
        prd.reconstruct_scans(client, archive, [scans[0], missing])
    assert any("scan 1" in note and "1 of 2 failed" in note for note in info.value.__notes__)

    got = prd.reconstruct_scans(client, archive, [missing, scans[0]], errors="return")
    assert isinstance(got[0], OSError) and "missing.npz" in str(got[0])
    assert isinstance(got[1], pr.Reconstruction) and got[1].object.dtype == np.complex64

    with pytest.raises(ValueError, match="unknown key `stitch_crap`"):
        prd.reconstruct_scans(client, archive, [scans[0]], stitch_crap=20)
    with pytest.raises(ValueError, match="2 directories for 1 scans"):
        prd.submit_scans(client, archive, [scans[0]], output_dirs=[tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match="more than one scan"):
        prd.submit_scans(client, archive, scans[:2], output_dirs=[tmp_path / "a", tmp_path / "a"])
    with pytest.raises(ValueError, match="errors"):
        prd.reconstruct_scans(client, archive, [scans[0]], errors="ignore")  # type: ignore[call-overload]


def test_dask_stays_optional() -> None:
    """`import ptycho_rs` never imports Dask; without it `import ptycho_rs.dask` says what to install."""
    code = (
        "import sys\n"
        "import ptycho_rs\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules, 'imported dask'\n"
        "sys.modules['distributed'] = None  # as if it were not installed\n"
        "try:\n"
        "    import ptycho_rs.dask\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "dask[distributed]"' in proc.stdout
