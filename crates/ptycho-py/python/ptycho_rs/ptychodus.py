"""A Ptychodus 1.7 reconstructor library backed by ptycho_rs.

:class:`PtychoRSReconstructorLibrary` is a ``ptychodus.api.reconstruct.ReconstructorLibrary``
holding the trainable reconstructors "PINN" and "Supervised" (the supervised baseline: trained
against the training file's objectGuess patches). Its settings mirror Ptychodus's own PtychoPINN groups
(same parameter names) under the groups ``PtychoRSModel``, ``PtychoRSTraining`` and
``PtychoRSInference``. Ptychodus 1.7 lists its libraries in ``ModelCore``; :func:`register` adds
this one to a running ``ModelCore``, and an upstream registration would take two lines there::

    from ptycho_rs.ptychodus import PtychoRSReconstructorLibrary
    self.ptycho_rs_reconstructor_library = PtychoRSReconstructorLibrary(self.settings_registry, self.is_developer_mode_enabled)

(and the new library added to the list handed to ``ProcessingCore``).

Units at this boundary: Ptychodus's diffraction patterns are intensities (photon counts, the
detector's dtype); ptycho's are amplitudes, so the patterns are square-rooted here. Ptychodus's
bad-pixel mask goes with them: those pixels are zeroed and take no part in the training loss. Positions go through the product's object geometry
(metres → object pixels) and the reconstruction comes back in that geometry: same pixel size,
with the centre placed so that every scan position lands on the pixel ptycho stitched it at.
A probe mode stack uses mode 0 (logged when there are more). Loss epochs handed to Ptychodus
count from 0, as its own reconstructors and its NPZ reader's default do (ptycho counts from 1).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ptychodus.api.io import save_ptychopinn_training_data
from ptychodus.api.object import Object, ObjectCenter
from ptychodus.api.product import LossValue, Product
from ptychodus.api.reconstruct import (
    ReconstructInput,
    ReconstructOutput,
    Reconstructor,
    ReconstructorLibrary,
    TrainableReconstructor,
    TrainOutput,
)
from ptychodus.api.settings import SettingsRegistry

import ptycho_rs

__all__ = [
    "PtychoRSReconstructor",
    "PtychoRSReconstructorLibrary",
    "register",
    "scan_from_reconstruct_input",
    "load_training_file",
]

logger = logging.getLogger("ptycho_rs")

#: Training file names of the reference's Ptychodus training folder.
TRAIN_FILE = "train_data.npz"
TEST_FILE = "test_data.npz"


class PtychoRSModelSettings:
    """Model settings (names as Ptychodus's ``PtychoPINNModel`` group)."""

    def __init__(self, registry: SettingsRegistry) -> None:
        g = registry.create_group("PtychoRSModel")
        self.gridsize = g.create_integer_parameter("GridSize", 1, minimum=1, maximum=5)
        self.n_filters_scale = g.create_integer_parameter("NumFiltersScale", 2, minimum=1, maximum=4)
        self.amp_activation = g.create_string_parameter("AmpActivation", "sigmoid")
        self.object_big = g.create_boolean_parameter("ObjectBig", True)
        self.probe_big = g.create_boolean_parameter("ProbeBig", True)
        self.probe_mask = g.create_boolean_parameter("ProbeMask", False)
        self.pad_object = g.create_boolean_parameter("PadObject", True)
        self.probe_scale = g.create_real_parameter("ProbeScale", 4.0, minimum=0.0)
        self.gaussian_smoothing_sigma = g.create_real_parameter(
            "GaussianSmoothingSigma", 0.0, minimum=0.0
        )

    def as_settings(self) -> dict[str, Any]:
        return {
            "gridsize": self.gridsize.get_value(),
            "n_filters_scale": self.n_filters_scale.get_value(),
            "amp_activation": self.amp_activation.get_value(),
            "object_big": self.object_big.get_value(),
            "probe_big": self.probe_big.get_value(),
            "probe_mask": self.probe_mask.get_value(),
            "pad_object": self.pad_object.get_value(),
            "probe_scale": self.probe_scale.get_value(),
            "gaussian_smoothing_sigma": self.gaussian_smoothing_sigma.get_value(),
        }


class PtychoRSTrainingSettings:
    """Training settings (names as Ptychodus's ``PtychoPINNTraining`` group)."""

    def __init__(self, registry: SettingsRegistry) -> None:
        g = registry.create_group("PtychoRSTraining")
        self.nphotons = g.create_real_parameter("NumPhotons", 1e6, minimum=0.0)
        self.batch_size = g.create_integer_parameter("BatchSize", 16, minimum=1, maximum=1 << 30)
        self.nepochs = g.create_integer_parameter("NumEpochs", 50, minimum=1)
        self.mae_weight = g.create_real_parameter("MAEWeight", 0.0, minimum=0.0, maximum=1.0)
        self.nll_weight = g.create_real_parameter("NLLWeight", 1.0, minimum=0.0, maximum=1.0)
        self.realspace_mae_weight = g.create_real_parameter(
            "RealspaceMAEWeight", 0.0, minimum=0.0, maximum=1.0
        )
        self.realspace_weight = g.create_real_parameter(
            "RealspaceWeight", 0.0, minimum=0.0, maximum=1.0
        )
        self.positions_provided = g.create_boolean_parameter("PositionsProvided", True)
        self.probe_trainable = g.create_boolean_parameter("ProbeTrainable", False)
        self.intensity_scale_trainable = g.create_boolean_parameter("IntensityScaleTrainable", True)
        # Not in Ptychodus's PtychoPINN group: the training groups (0 = one per scan point).
        self.n_groups = g.create_integer_parameter("NumGroups", 0, minimum=0)
        self.seed = g.create_integer_parameter("Seed", 45, minimum=0)

    def as_settings(self, n_points: int, gridsize: int) -> dict[str, Any]:
        return {
            # Ptychodus has no training K; a group of gridsize² members needs at least that many.
            "neighbor_count": max(4, gridsize * gridsize),
            "nphotons": self.nphotons.get_value(),
            "batch_size": self.batch_size.get_value(),
            "nepochs": self.nepochs.get_value(),
            "mae_weight": self.mae_weight.get_value(),
            "nll_weight": self.nll_weight.get_value(),
            "realspace_mae_weight": self.realspace_mae_weight.get_value(),
            "realspace_weight": self.realspace_weight.get_value(),
            "positions_provided": self.positions_provided.get_value(),
            "probe_trainable": self.probe_trainable.get_value(),
            "intensity_scale_trainable": self.intensity_scale_trainable.get_value(),
            "n_groups": self.n_groups.get_value() or n_points,
            "seed": self.seed.get_value(),
        }


class PtychoRSInferenceSettings:
    """Inference settings (names as Ptychodus's ``PtychoPINNInference`` group)."""

    def __init__(self, registry: SettingsRegistry) -> None:
        g = registry.create_group("PtychoRSInference")
        self.model_path = g.create_path_parameter("ModelPath", Path("/path/to/wts.h5.zip"))
        # 0 (the default) = ptycho's default K = max(7, gridsize²) (7 as Ptychodus's PtychoPINN).
        self.n_nearest_neighbors = g.create_integer_parameter("NumNearestNeighbors", 0, minimum=0)
        # Groups to reconstruct; 0 (the default) = ptycho's default: one group per scan point,
        # seeded by it, which covers the scan at any gridsize.
        self.n_samples = g.create_integer_parameter("NumSamples", 0, minimum=0)
        self.batch_size = g.create_integer_parameter("BatchSize", 16, minimum=1)
        self.stitch_crop = g.create_integer_parameter("StitchCrop", 20, minimum=1)
        self.device = g.create_string_parameter("Device", "cpu")

    def as_settings(self) -> dict[str, Any]:
        s: dict[str, Any] = {
            "batch_size": self.batch_size.get_value(),
            "stitch_crop": self.stitch_crop.get_value(),
        }
        if self.n_nearest_neighbors.get_value() > 0:
            s["neighbor_count"] = self.n_nearest_neighbors.get_value()
        if self.n_samples.get_value() > 0:
            s["n_groups"] = self.n_samples.get_value()
        return s


def _probe_mode0(probes: np.ndarray, what: str) -> np.ndarray:
    probes = np.asarray(probes)
    stack = probes.reshape((-1,) + probes.shape[-2:])
    if stack.shape[0] > 1:
        logger.info("%s: %d probe modes; ptycho uses mode 0", what, stack.shape[0])
    return np.ascontiguousarray(stack[0], dtype=np.complex64)


def _amplitudes(counts: np.ndarray, what: str) -> np.ndarray:
    intensity = np.asarray(counts, dtype=np.float64)
    if not np.all(np.isfinite(intensity)) or (intensity < 0).any():
        raise ValueError(f"{what}: diffraction intensities must be finite and non-negative")
    return np.sqrt(intensity).astype(np.float32)


def _mask(bad_pixels: Any) -> np.ndarray | None:
    if bad_pixels is None:
        return None
    mask = np.asarray(bad_pixels, dtype=np.bool_)
    return mask if mask.any() else None


def scan_from_reconstruct_input(parameters: ReconstructInput) -> ptycho_rs.Scan:
    """The ptycho scan of a Ptychodus reconstruct input: intensities → amplitudes, positions in
    the object's pixels, probe mode 0, and the bad-pixel mask (those pixels are zeroed, as in
    training, where they take no part in the loss). The input object is Ptychodus's initial
    guess, not a ground truth, so it is not passed."""
    product = parameters.product
    geometry = product.object_.get_geometry()
    positions = product.probe_positions
    return ptycho_rs.Scan(
        xcoords=geometry.map_probe_positions_to_object_x_px(positions),
        ycoords=geometry.map_probe_positions_to_object_y_px(positions),
        diff3d=_amplitudes(parameters.diffraction_patterns, "diffraction patterns"),
        probe_guess=_probe_mode0(product.probes.get_probe_no_opr().get_array(), "product"),
        bad_pixels=_mask(parameters.bad_pixels),
    )


def load_training_file(path: Path) -> ptycho_rs.Scan:
    """A training NPZ as Ptychodus exports it (``save_ptychopinn_training_data``: ``diff3d``
    intensities in the detector's dtype, ``bad_pixels`` the pixels it filled in, ``probeGuess`` a
    mode stack), or a reference-contract NPZ (``diff3d`` amplitudes, no ``bad_pixels``). Masked
    pixels are zeroed and take no part in the loss."""
    with np.load(path, allow_pickle=False) as f:
        if "bad_pixels" not in f.files:
            return ptycho_rs.Scan.load(path)
        missing = [k for k in ("xcoords", "ycoords", "diff3d", "probeGuess") if k not in f.files]
        if missing:
            raise ValueError(f"{path}: required key `{missing[0]}` is missing")
        return ptycho_rs.Scan(
            xcoords=f["xcoords"],
            ycoords=f["ycoords"],
            diff3d=_amplitudes(f["diff3d"], f"{path}: diff3d"),
            probe_guess=_probe_mode0(f["probeGuess"], str(path)),
            object_guess=f["objectGuess"] if "objectGuess" in f.files else None,
            bad_pixels=_mask(f["bad_pixels"]),
        )


def _training_files(input_path: Path) -> tuple[Path, Path | None]:
    if input_path.is_dir():
        train = input_path / TRAIN_FILE
        if not train.is_file():
            raise FileNotFoundError(f"{train}: not found (a Ptychodus training folder holds {TRAIN_FILE})")
        test = input_path / TEST_FILE
        return train, test if test.is_file() else None
    return input_path, None


class PtychoRSReconstructor(TrainableReconstructor):
    """A trainable reconstructor, "PINN" or "Supervised": ptycho_rs training and inference."""

    def __init__(
        self,
        name: str,
        model_settings: PtychoRSModelSettings,
        training_settings: PtychoRSTrainingSettings,
        inference_settings: PtychoRSInferenceSettings,
    ) -> None:
        self._name = name
        self._model_settings = model_settings
        self._training_settings = training_settings
        self._inference_settings = inference_settings
        self._model: ptycho_rs.Model | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def model_type(self) -> str:
        """ptycho's ``model_type`` for this reconstructor: ``pinn`` or ``supervised``."""
        return "supervised" if self._name == "Supervised" else "pinn"

    @property
    def model(self) -> ptycho_rs.Model | None:
        """The loaded (or last trained) model."""
        return self._model

    def get_progress_goal(self) -> int:
        return int(self._training_settings.nepochs.get_value())

    def reconstruct(self, parameters: ReconstructInput) -> Iterator[ReconstructOutput]:
        if self._model is None:
            raise RuntimeError("Cannot reconstruct: no ptycho_rs model has been loaded.")
        scan = scan_from_reconstruct_input(parameters)
        rec = self._model.reconstruct(
            scan,
            device=self._inference_settings.device.get_value(),
            **self._inference_settings.as_settings(),
        )
        logger.info(
            "reconstructed %d patterns in %.2f s (%.1f patterns/s)",
            rec.report["n_patterns"],
            rec.report["predict_seconds"],
            rec.report["patterns_per_second"],
        )
        product = parameters.product
        object_out = _object_in_geometry(rec, product.object_)
        losses = [LossValue(r.epoch - 1, r.loss) for r in self._model.history]
        yield ReconstructOutput(
            Product(
                metadata=product.metadata,
                probe_positions=product.probe_positions,
                probes=product.probes,
                object_=object_out,
                losses=losses,
            ),
            progress=self.get_progress_goal(),
        )

    def is_model_loaded(self) -> bool:
        return self._model is not None

    def get_model_file_filter(self) -> str:
        return "Zipped Archive (*.zip)"

    def load_model_from_file(self, file_path: Path) -> None:
        model = ptycho_rs.load_model(file_path)
        if model.model_type != self.model_type:
            raise ValueError(
                f"{file_path}: holds a {model.model_type} model; the {self._name} reconstructor "
                f"needs a {self.model_type} one"
            )
        self._model = model
        logger.info("loaded %r", self._model)

    def get_model_file_extension(self) -> str:
        return ".zip"

    def save_model(self, file_path: Path) -> None:
        if self._model is None:
            raise RuntimeError("Cannot save: no ptycho_rs model has been loaded or trained.")
        self._model.save(file_path, overwrite=True)

    def get_training_data_file_filter(self) -> str:
        return "NumPy Zipped Archive (*.npz)"

    def export_training_data(self, file_path: Path, parameters: ReconstructInput) -> None:
        save_ptychopinn_training_data(file_path, parameters)

    def train(self, input_path: Path, output_path: Path) -> Iterator[TrainOutput]:
        """Train on ``input_path`` (a Ptychodus training folder with ``train_data.npz`` and
        optionally ``test_data.npz``, or one training NPZ); ``output_path`` receives
        ``wts.h5.zip`` and the run's files. Yields one :class:`TrainOutput` per epoch; closing
        the generator (Ptychodus's Stop) ends training after the current epoch."""
        train_file, test_file = _training_files(Path(input_path))
        scan = load_training_file(train_file)
        settings = {
            "model_type": self.model_type,
            **self._model_settings.as_settings(),
            **self._training_settings.as_settings(
                scan.n_points, self._model_settings.gridsize.get_value()
            ),
            "N": scan.n,
        }
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def on_epoch(record: ptycho_rs.EpochRecord) -> bool:
            events.put(("epoch", record))
            return not stop.is_set()

        def work() -> None:
            try:
                model = ptycho_rs.train(
                    scan, output_dir=output_path, overwrite=True, progress=on_epoch, **settings
                )
                events.put(("done", model))
            except BaseException as exc:  # handed to the consuming thread
                events.put(("error", exc))

        thread = threading.Thread(target=work, name="ptycho_rs-train", daemon=True)
        thread.start()
        training: list[LossValue] = []
        validation: list[LossValue] = []
        try:
            while True:
                kind, value = events.get()
                if kind == "epoch":
                    training.append(LossValue(value.epoch - 1, value.loss))
                    if value.val_loss is not None:
                        validation.append(LossValue(value.epoch - 1, value.val_loss))
                    yield TrainOutput(list(training), list(validation), progress=value.epoch)
                elif kind == "done":
                    self._model = value
                    break
                else:
                    raise value
        finally:
            stop.set()
            thread.join()
        if test_file is not None and self._model is not None:
            test = load_training_file(test_file)
            rec = self._model.reconstruct(test, **self._inference_settings.as_settings())
            if rec.metrics is not None:
                m = rec.metrics["metrics"]
                logger.info(
                    "test %s: amplitude SSIM %.4f, phase SSIM %.4f",
                    test_file,
                    m["amplitude"]["ssim"],
                    m["phase"]["ssim"],
                )


def _object_in_geometry(rec: ptycho_rs.Reconstruction, reference: Object) -> Object:
    """The stitched object as a Ptychodus Object in ``reference``'s geometry: same pixel size,
    centre such that object pixel (x, y) of the scan frame maps to the same metres."""
    geometry = reference.get_geometry()
    height, width = rec.object.shape
    ox, oy = rec.origin
    center_x = geometry.center_x_m + geometry.pixel_width_m * (
        ox + (width - 1) / 2 - (geometry.width_px - 1) / 2
    )
    center_y = geometry.center_y_m + geometry.pixel_height_m * (
        oy + (height - 1) / 2 - (geometry.height_px - 1) / 2
    )
    return Object(
        array=rec.object,
        pixel_geometry=reference.get_pixel_geometry(),
        center=ObjectCenter(x_m=center_x, y_m=center_y),
    )


class PtychoRSReconstructorLibrary(ReconstructorLibrary):
    """Ptychodus reconstructor library "PtychoRS" with the trainable reconstructors "PINN" and
    "Supervised"."""

    def __init__(
        self, settings_registry: SettingsRegistry, is_developer_mode_enabled: bool = False
    ) -> None:
        super().__init__("ptycho_rs")
        self.model_settings = PtychoRSModelSettings(settings_registry)
        self.training_settings = PtychoRSTrainingSettings(settings_registry)
        self.inference_settings = PtychoRSInferenceSettings(settings_registry)
        self._reconstructors: list[TrainableReconstructor] = [
            PtychoRSReconstructor(
                name, self.model_settings, self.training_settings, self.inference_settings
            )
            for name in ("PINN", "Supervised")
        ]
        logger.info("ptycho_rs %s", ptycho_rs.__version__)

    @property
    def name(self) -> str:
        return "PtychoRS"

    def __iter__(self) -> Iterator[Reconstructor]:
        return iter(self._reconstructors)


def register(model_core: Any) -> PtychoRSReconstructorLibrary:
    """Add the library to a running Ptychodus 1.7 ``ModelCore`` (whose library list is fixed at
    construction): its reconstructors become selectable as ``ptychors_pinn`` and
    ``ptychors_supervised``."""
    library = PtychoRSReconstructorLibrary(
        model_core.settings_registry, getattr(model_core, "is_developer_mode_enabled", False)
    )
    processing = model_core.processing_core
    parameter = processing.algorithm_parameter
    for reconstructor in library:
        key = parameter.generate_key(library.name, reconstructor.name)
        parameter._reconstructor_map[key] = reconstructor
    parameter._libraries = [*parameter._libraries, library]
    library.get_logger().addHandler(processing._task_monitor.get_log_handler())
    return library
