"""ptycho_rs driven by the real Ptychodus 1.7 client: its data types, its training export, its
HDF5 and NPZ product readers and writers, and its ModelCore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.io import load_product, save_product
from ptychodus.api.object import Object, ObjectCenter
from ptychodus.api.probe import ProbeSequence
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import Product, ProductMetadata
from ptychodus.api.reconstruct import ReconstructInput, TrainableReconstructor
from ptychodus.api.settings import SettingsRegistry
from ptychodus.plugins.npz_product_file import NPZProductFileIO

import ptycho_rs as pr
from ptycho_rs.ptychodus import PtychoRSReconstructorLibrary, register

from conftest import run_ptycho

PIXEL_M = 12.5e-9  # object pixel size of the made-up experiment
CENTER_M = (3.0e-6, -2.0e-6)  # object centre, metres: positions are not around zero


def reconstruct_input(npz: Path) -> ReconstructInput:
    """A Ptychodus input from a `ptycho simulate` file: intensities = amplitude², positions in
    metres through the object geometry, a (1, 1, N, N) probe, the initial object = objectGuess."""
    scan = pr.Scan.load(npz)
    obj = scan.object_guess
    assert obj is not None
    h, w = obj.shape
    positions = ProbePositionSequence(
        [
            ProbePosition(
                index=i,
                x_m=CENTER_M[0] + (x - (w - 1) / 2) * PIXEL_M,
                y_m=CENTER_M[1] + (y - (h - 1) / 2) * PIXEL_M,
            )
            for i, (x, y) in enumerate(zip(scan.xcoords, scan.ycoords))
        ]
    )
    pixels = PixelGeometry(width_m=PIXEL_M, height_m=PIXEL_M)
    product = Product(
        metadata=ProductMetadata(
            name=npz.stem,
            comments="",
            detector_distance_m=2.0,
            photon_energy_eV=10_000.0,
            probe_photon_count=1e9,
            exposure_time_s=0.1,
            mass_attenuation_m2_per_kg=0.0,
            tomography_angle_deg=0.0,
        ),
        probe_positions=positions,
        probes=ProbeSequence(array=scan.probe_guess[None, None], opr_weights=None, pixel_geometry=pixels),
        object_=Object(array=obj, pixel_geometry=pixels, center=ObjectCenter(*CENTER_M)),
        losses=[],
    )
    patterns = (scan.diff3d.astype(np.float64) ** 2).astype(np.float32)
    return ReconstructInput(patterns, np.zeros(patterns.shape[1:], dtype=bool), product)


def pinn(registry: SettingsRegistry, name: str = "PINN") -> TrainableReconstructor:
    library = PtychoRSReconstructorLibrary(registry)
    assert library.name == "PtychoRS"
    reconstructors = {r.name: r for r in library}
    assert set(reconstructors) == {"PINN", "Supervised"}
    reconstructor = reconstructors[name]
    assert isinstance(reconstructor, TrainableReconstructor)
    return reconstructor


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, sim_dir: Path) -> dict[str, object]:
    """Train through the reconstructor on Ptychodus's own training export; save the model."""
    d = tmp_path_factory.mktemp("ptychodus")
    registry = SettingsRegistry()
    r = pinn(registry)
    library_training = registry["PtychoRSTraining"]
    assert library_training is not None
    r._training_settings.nepochs.set_value(2)  # type: ignore[attr-defined]
    r.export_training_data(d / "train_data.npz", reconstruct_input(sim_dir / "train.npz"))
    r.export_training_data(d / "test_data.npz", reconstruct_input(sim_dir / "test.npz"))
    with np.load(d / "train_data.npz") as f:  # Ptychodus's format, not ours: intensities + mask
        assert {"diff3d", "bad_pixels", "probeGuess"} <= set(f.files)
        assert f["probeGuess"].ndim == 3
    outputs = list(r.train(d, d / "run"))
    assert r.is_model_loaded()
    r.save_model(d / "model.zip")
    return {"dir": d, "outputs": outputs}


def test_train_reports_every_epoch(trained: dict[str, object]) -> None:
    outputs = trained["outputs"]
    assert [o.progress for o in outputs] == [1, 2]
    last = outputs[-1]
    assert [v.epoch for v in last.training_loss] == [0, 1]  # Ptychodus counts epochs from 0
    assert all(np.isfinite(v.value) for v in last.training_loss)
    assert [v.epoch for v in last.validation_loss] == [0, 1]
    assert all(np.isfinite(v.value) for v in last.validation_loss)


def test_reloaded_model_reconstructs_like_the_cli(
    trained: dict[str, object], sim_dir: Path, tmp_path: Path
) -> None:
    d = trained["dir"]
    r = pinn(SettingsRegistry())  # a fresh library: nothing but the model file carries over
    assert not r.is_model_loaded()
    r.load_model_from_file(d / "model.zip")
    (out,) = list(r.reconstruct(reconstruct_input(sim_dir / "test.npz")))

    save_product(tmp_path / "product.h5", out.product)  # Ptychodus's HDF5 writer and reader
    back = load_product(tmp_path / "product.h5")
    ours = back.object_.get_array()[0]

    run_ptycho("infer", "--model", d / "model.zip", "--test-data", sim_dir / "test.npz", "--output-dir", tmp_path / "cli")
    with np.load(tmp_path / "cli" / "reconstruction.npz") as f:
        cli, origin = f["object"], f["origin"]
    assert ours.shape == cli.shape
    rel = np.max(np.abs(ours - cli)) / np.max(np.abs(cli))
    print(f"\nmax relative difference vs ptycho infer: {rel:.3e}")
    assert rel <= 1e-5, rel

    # Geometry: Ptychodus maps each scan position onto the pixel ptycho stitched it at.
    scan = pr.Scan.load(sim_dir / "test.npz")
    geometry = back.object_.get_geometry()
    assert geometry.pixel_width_m == PIXEL_M
    np.testing.assert_allclose(geometry.map_probe_positions_to_object_x_px(back.probe_positions), scan.xcoords - origin[0], atol=1e-6)
    np.testing.assert_allclose(geometry.map_probe_positions_to_object_y_px(back.probe_positions), scan.ycoords - origin[1], atol=1e-6)
    # The loss history travels in the model file.
    assert [v.epoch for v in back.losses] == [0, 1]
    np.testing.assert_allclose([v.value for v in back.losses], [v.value for v in trained["outputs"][-1].training_loss])


def test_cli_npz_product_loads_in_ptychodus(trained: dict[str, object], sim_dir: Path, tmp_path: Path) -> None:
    d = trained["dir"]
    run_ptycho(
        "infer", "--model", d / "model.zip", "--test-data", sim_dir / "test.npz", "--output-dir", tmp_path / "cli",
        "--product", tmp_path / "product.npz", "--pixel-size", PIXEL_M,
        "--photon-energy-ev", "10000", "--detector-distance-m", "2",
    )
    product = NPZProductFileIO().read(tmp_path / "product.npz")
    with np.load(tmp_path / "cli" / "reconstruction.npz") as f:
        np.testing.assert_array_equal(product.object_.get_array()[0], f["object"])
    assert len(product.probe_positions) == 128
    assert product.probes.get_array().shape == (1, 1, 64, 64)
    assert len(product.losses) == 2 and all(np.isfinite(v.value) for v in product.losses)
    assert product.metadata.photon_energy_eV == 10_000.0


def test_registers_into_a_running_model_core() -> None:
    from ptychodus.model.core import ModelCore

    core = ModelCore()
    library = register(core)
    parameter = core.processing_core.algorithm_parameter
    assert {"ptychors_pinn", "ptychors_supervised"} <= set(parameter.available_reconstructors())
    parameter.set_value("ptychors_supervised")
    assert parameter.get_current_reconstructor() is list(library)[1]


def test_reconstruct_input_becomes_amplitudes_with_the_mask(sim_dir: Path, tmp_path: Path) -> None:
    from ptycho_rs.ptychodus import scan_from_reconstruct_input

    inp = reconstruct_input(sim_dir / "test.npz")
    bad = np.zeros(inp.diffraction_patterns.shape[1:], dtype=bool)
    bad[3, 5] = True
    counts = np.rint(inp.diffraction_patterns * 1000).astype(np.uint16)  # detector dtype
    scan = scan_from_reconstruct_input(ReconstructInput(counts, bad, inp.product))
    np.testing.assert_allclose(scan.diff3d, np.sqrt(counts.astype(np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(scan.bad_pixels, bad)
    ref = pr.Scan.load(sim_dir / "test.npz")
    np.testing.assert_allclose(scan.xcoords, ref.xcoords, atol=1e-9)
    np.testing.assert_allclose(scan.ycoords, ref.ycoords, atol=1e-9)
    # The mask survives the NPZ round trip, and the masked pixel is zeroed on the way in.
    scan.save(tmp_path / "masked.npz")
    back = pr.Scan.load(tmp_path / "masked.npz")
    np.testing.assert_array_equal(back.bad_pixels, bad)
    assert (back.diff3d[:, 3, 5] == 0).all() and (back.diff3d[:, 3, 6] == scan.diff3d[:, 3, 6]).all()


def test_supervised_reconstructor_trains_on_the_export_and_reconstructs(
    trained: dict[str, object], sim_dir: Path, tmp_path: Path
) -> None:
    """The supervised baseline through the same Ptychodus calls: it learns from the export's
    objectGuess, saves, reloads (and a PINN model file is refused), reconstructs."""
    d = trained["dir"]
    registry = SettingsRegistry()
    sup = pinn(registry, "Supervised")
    sup._training_settings.nepochs.set_value(1)  # type: ignore[attr-defined]
    outputs = list(sup.train(d, tmp_path / "run"))
    assert [o.progress for o in outputs] == [1] and np.isfinite(outputs[0].training_loss[0].value)
    sup.save_model(tmp_path / "sup.zip")
    assert pr.load_model(tmp_path / "sup.zip").model_type == "supervised"

    again = pinn(SettingsRegistry(), "Supervised")
    with pytest.raises(ValueError, match="holds a pinn model"):
        again.load_model_from_file(d / "model.zip")
    again.load_model_from_file(tmp_path / "sup.zip")
    (out,) = list(again.reconstruct(reconstruct_input(sim_dir / "test.npz")))
    obj = out.product.object_.get_array()[0]
    assert obj.dtype == np.complex64 and np.isfinite(obj).all() and obj.size > 0
