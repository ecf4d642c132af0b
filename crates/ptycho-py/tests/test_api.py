"""The Python API: simulate, scans, training with progress, save/load, reconstruct, evaluate, errors."""

from __future__ import annotations

import dataclasses
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

import ptycho_rs as pr


def test_simulate_is_seeded_and_typed() -> None:
    a = pr.simulate(n_images=16, object_size=96, seed=3)
    b = pr.simulate(n_images=16, object_size=96, seed=3)
    c = pr.simulate(n_images=16, object_size=96, seed=4)
    assert a.diff3d.shape == (16, 64, 64) and a.diff3d.dtype == np.float32
    assert a.probe_guess.dtype == np.complex64 and a.object_guess.shape == (96, 96)
    assert a.nphotons == 1e9
    np.testing.assert_array_equal(a.diff3d, b.diff3d)
    assert not np.array_equal(a.diff3d, c.diff3d)
    grf = pr.simulate(n_images=16, object_size=96, seed=3, object="grf")
    assert not np.array_equal(grf.object_guess, a.object_guess)
    with pytest.raises(ValueError, match="object"):
        pr.simulate(n_images=4, object="zebra")


def test_scan_round_trips_through_npz(tmp_path: Path, sim_dir: Path) -> None:
    scan = pr.Scan.load(sim_dir / "test.npz")
    assert scan.n_points == 128 and scan.n == 64
    scan.save(tmp_path / "copy.npz")
    again = pr.Scan.load(tmp_path / "copy.npz")
    np.testing.assert_array_equal(again.diff3d, scan.diff3d)
    np.testing.assert_array_equal(again.xcoords, scan.xcoords)
    np.testing.assert_array_equal(again.probe_guess, scan.probe_guess)
    with np.load(tmp_path / "copy.npz") as f:  # the reference contract, readable by numpy
        assert {"xcoords", "ycoords", "diff3d", "probeGuess", "objectGuess"} <= set(f.files)


def test_from_counts_takes_integer_counts_and_a_mode_stack(sim_dir: Path) -> None:
    scan = pr.Scan.load(sim_dir / "test.npz")
    counts = np.random.default_rng(7).poisson(40.0, size=scan.diff3d.shape).astype(np.uint16)
    modes = np.stack([scan.probe_guess, 0.1 * scan.probe_guess])
    again = pr.Scan.from_counts(counts, scan.xcoords, scan.ycoords, modes)
    np.testing.assert_allclose(again.diff3d, np.sqrt(counts.astype(np.float64)), rtol=1e-7)
    np.testing.assert_array_equal(again.probe_guess, scan.probe_guess)
    with pytest.raises(ValueError, match="non-negative"):
        pr.Scan.from_counts(-counts.astype(np.int64) - 1, scan.xcoords, scan.ycoords, modes)


def test_train_save_load_reconstruct_evaluate(tmp_path: Path, sim_dir: Path) -> None:
    records: list[pr.EpochRecord] = []
    threads: set[str] = set()

    def progress(r: pr.EpochRecord) -> None:
        records.append(r)
        threads.add(threading.current_thread().name)

    model = pr.train(
        sim_dir / "train.npz", output_dir=tmp_path / "run", nepochs=2, batch_size=16, progress=progress
    )
    assert [r.epoch for r in records] == [1, 2]
    assert all(np.isfinite(r.loss) and r.val_loss is not None and np.isfinite(r.val_loss) for r in records)
    assert [r.loss for r in model.history] == [r.loss for r in records]
    assert model.n == 64 and model.gridsize == 1 and model.model_type == "pinn"
    assert (tmp_path / "run" / "wts.h5.zip").is_file()

    (tmp_path / "saved").mkdir()
    saved = model.save(tmp_path / "saved")
    assert saved == tmp_path / "saved" / "wts.h5.zip"
    with pytest.raises(FileExistsError):
        model.save(saved)
    loaded = pr.load_model(saved)
    assert loaded.params["N"] == 64 and loaded.params["intensity_scale"] == pytest.approx(model.params["intensity_scale"])

    test = pr.Scan.load(sim_dir / "test.npz")
    rec = loaded.reconstruct(test)
    again = model.reconstruct(sim_dir / "test.npz")
    np.testing.assert_array_equal(rec.object, again.object)  # same weights, same data: same object
    # The network is loaded once per device and kept; a pickled Model loads it again.
    net = model._network("cpu")
    np.testing.assert_array_equal(model.reconstruct(test).object, again.object)
    assert model._network("cpu") is net and list(model._loaded) == ["cpu"]
    clone = pickle.loads(pickle.dumps(model))
    assert clone._loaded == {} and clone.archive == model.archive
    np.testing.assert_array_equal(clone.reconstruct(test).object, again.object)
    assert rec.object.dtype == np.complex64 and rec.object.ndim == 2
    assert rec.report["n_groups"] == 128 and rec.stitch_crop == 20
    assert np.isfinite(rec.object).all()
    metrics = pr.evaluate(rec, test)
    assert metrics["metrics"] == rec.metrics["metrics"]
    assert 0.0 < metrics["metrics"]["amplitude"]["ssim"] <= 1.0


def _unaligned(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` one byte off alignment, as arrays rebuilt from a network buffer can be."""
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    odd = np.frombuffer(buf, dtype=np.uint8, count=a.nbytes, offset=1).view(a.dtype).reshape(a.shape)
    odd[...] = a
    return odd


def test_unaligned_arrays_reach_the_native_code(tmp_path: Path, sim_dir: Path) -> None:
    """Dask and multiprocessing can hand over arrays at odd addresses; the native code panicked on
    them (PanicException), so the package copies them first."""
    scan = pr.Scan.load(sim_dir / "test.npz")
    assert scan.object_guess is not None
    odd = dataclasses.replace(
        scan,
        diff3d=_unaligned(scan.diff3d),
        probe_guess=_unaligned(scan.probe_guess),
        object_guess=_unaligned(scan.object_guess),
        xcoords=_unaligned(scan.xcoords),
    )
    assert not (odd.diff3d.flags.aligned or odd.probe_guess.flags.aligned or odd.xcoords.flags.aligned)
    odd.save(tmp_path / "odd.npz")
    again = pr.Scan.load(tmp_path / "odd.npz")
    np.testing.assert_array_equal(again.diff3d, scan.diff3d)
    np.testing.assert_array_equal(again.probe_guess, scan.probe_guess)
    np.testing.assert_array_equal(again.xcoords, scan.xcoords)
    # The ground truth as a stand-in reconstruction: the same metrics from aligned and unaligned.
    truth = pr.Reconstruction(object=scan.object_guess, origin=(0.0, 0.0), stitch_crop=20)
    odd_truth = pr.Reconstruction(object=_unaligned(scan.object_guess), origin=(0.0, 0.0), stitch_crop=20)
    assert not odd_truth.object.flags.aligned
    expected = pr.evaluate(truth, scan)
    assert pr.evaluate(odd_truth, odd) == expected
    assert 0.0 < expected["metrics"]["amplitude"]["ssim"] <= 1.0


def test_progress_callback_can_stop_training(tmp_path: Path, sim_dir: Path) -> None:
    with pytest.raises(KeyboardInterrupt, match="after epoch 1"):
        pr.train(sim_dir / "train.npz", output_dir=tmp_path, nepochs=5, n_groups=32, progress=lambda r: False)
    assert (tmp_path / "checkpoint.zip").is_file()
    assert not (tmp_path / "wts.h5.zip").exists()

    def boom(r: pr.EpochRecord) -> None:
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        pr.train(sim_dir / "train.npz", output_dir=tmp_path / "b", nepochs=5, n_groups=32, progress=boom)


def test_errors_are_one_line_python_exceptions(tmp_path: Path, sim_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown key `nepochz` \(did you mean `nepochs`\?\)"):
        pr.train(sim_dir / "train.npz", nepochz=2)
    with pytest.raises(ValueError, match="batch_size"):
        pr.train(sim_dir / "train.npz", batch_size="sixteen")
    with pytest.raises(OSError, match="missing.npz"):
        pr.Scan.load(tmp_path / "missing.npz")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.zip"):
        pr.load_model(tmp_path / "bad.zip")
    scan = pr.Scan.load(sim_dir / "test.npz")
    scan.diff3d[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        pr.train(scan, nepochs=1)
    with pytest.raises(ValueError, match="quantum") as info:
        pr.train(sim_dir / "train.npz", device="quantum")
    assert "\n" not in str(info.value)


def test_stubs_cover_the_native_module() -> None:
    stub = Path(pr.__file__).with_name("_native.pyi").read_text()
    for name in ("simulate", "load_npz", "save_npz", "train", "load_model", "reconstruct", "evaluate"):
        assert f"def {name}(" in stub
        assert callable(getattr(pr._native, name))
        assert getattr(pr._native, name).__doc__, name
    assert "class LoadedModel:" in stub and "def reconstruct(\n        self" in stub
    assert pr._native.LoadedModel.__doc__ and pr._native.LoadedModel.reconstruct.__doc__


def test_training_releases_the_gil(sim_dir: Path, tmp_path: Path) -> None:
    """Another Python thread keeps running while Rust trains (the GIL is released)."""
    ticks = 0
    done = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            done.wait(0.01)

    t = threading.Thread(target=ticker)
    seen_at_epoch: list[int] = []
    t.start()
    try:
        pr.train(
            sim_dir / "train.npz", output_dir=tmp_path, nepochs=2, n_groups=64,
            progress=lambda r: seen_at_epoch.append(ticks),
        )
    finally:
        done.set()
        t.join()
    # Epochs take seconds here; with the GIL held the ticker would be starved between callbacks.
    assert seen_at_epoch[1] - seen_at_epoch[0] > 20, seen_at_epoch
