"""ptycho_rs: PtychoPINN in Rust, from Python.

Train a physics-informed network on one ptychographic scan and reconstruct the next ones in
seconds, with numpy arrays in and out::

    import ptycho_rs as pr

    train_scan = pr.simulate(n_images=512, seed=1)           # or pr.Scan.load("train.npz")
    model = pr.train(train_scan, nepochs=5, progress=print)  # settings: ptycho's config keys
    model.save("model/wts.h5.zip")

    model = pr.load_model("model/wts.h5.zip")                # params restored, then the model built
    rec = model.reconstruct(pr.simulate(n_images=512, seed=2))
    rec.object                                               # complex64 (H, W)
    pr.evaluate(rec, test_scan)                              # SSIM, PSNR, FRC50, ... vs objectGuess

Units: diffraction in a :class:`Scan` is amplitude (the square root of counts;
:meth:`Scan.from_counts` converts), positions are object pixels with ``x`` = column and
``y`` = row, objects are complex transmission (amplitude · e^{iφ}, φ in radians).

Settings are passed as keyword arguments with the names of ptycho's config files (and the
reference PtychoPINN's spellings, e.g. ``N``, ``gridsize``, ``nepochs``, ``batch_size``,
``nphotons``; model keys at the top level). An unknown key, a wrong type or a value out of range
raises ``ValueError`` naming the key. Files that cannot be read or written raise ``OSError``.
Computation runs with the GIL released.

The package is deliberately not called ``ptycho``: Ptychodus takes an importable ``ptycho`` for
the reference (TensorFlow) PtychoPINN. The Ptychodus reconstructor library is
:mod:`ptycho_rs.ptychodus`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _native

__version__: str = _native.__version__

__all__ = [
    "EpochRecord",
    "Model",
    "Reconstruction",
    "Scan",
    "evaluate",
    "load_model",
    "reconstruct",
    "simulate",
    "train",
]

PathLike = str | os.PathLike[str]

#: Name of the model archive inside a model directory.
ARCHIVE_NAME = "wts.h5.zip"


def _settings_json(settings: Mapping[str, Any]) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"setting value {value!r} is not a number, string, bool or path")

    return json.dumps(dict(settings), default=default)


@dataclass
class Scan:
    """One ptychographic scan, in the reference PtychoPINN's NPZ data contract.

    Attributes:
        xcoords: scan positions, columns, object pixels, ``(M,)`` float64.
        ycoords: scan positions, rows, object pixels, ``(M,)`` float64.
        diff3d: diffraction **amplitudes** (square root of counts), zero frequency at the centre
            (fftshifted), ``(M, N, N)`` float32.
        probe_guess: the probe on the object pixel grid, ``(N, N)`` complex64.
        object_guess: the full object if known (ground truth for metrics), complex64 or None.
        xcoords_start, ycoords_start: nominal positions (default: the positions).
        scan_index: ``(M,)`` int64 or None.
        bad_pixels: ``(N, N)`` bool detector mask or None: masked pixels are zeroed and take no
            part in the training loss.
        nphotons: photons per pattern recorded by a simulator, or None.
    """

    xcoords: np.ndarray
    ycoords: np.ndarray
    diff3d: np.ndarray
    probe_guess: np.ndarray
    object_guess: np.ndarray | None = None
    xcoords_start: np.ndarray | None = None
    ycoords_start: np.ndarray | None = None
    scan_index: np.ndarray | None = None
    bad_pixels: np.ndarray | None = None
    nphotons: float | None = None

    def __post_init__(self) -> None:
        self.xcoords = np.ascontiguousarray(self.xcoords, dtype=np.float64)
        self.ycoords = np.ascontiguousarray(self.ycoords, dtype=np.float64)
        self.diff3d = np.ascontiguousarray(self.diff3d, dtype=np.float32)
        self.probe_guess = np.ascontiguousarray(self.probe_guess, dtype=np.complex64)
        if self.object_guess is not None:
            self.object_guess = np.ascontiguousarray(self.object_guess, dtype=np.complex64)
        for name in ("xcoords_start", "ycoords_start"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.ascontiguousarray(value, dtype=np.float64))
        if self.scan_index is not None:
            self.scan_index = np.ascontiguousarray(self.scan_index, dtype=np.int64)
        if self.bad_pixels is not None:
            self.bad_pixels = np.ascontiguousarray(self.bad_pixels, dtype=np.bool_)

    @property
    def n_points(self) -> int:
        """Number of scan positions M."""
        return int(self.xcoords.shape[0])

    @property
    def n(self) -> int:
        """Diffraction pattern size N (pixels)."""
        return int(self.diff3d.shape[-1])

    @classmethod
    def from_counts(
        cls,
        counts: np.ndarray,
        xcoords: np.ndarray,
        ycoords: np.ndarray,
        probe_guess: np.ndarray,
        object_guess: np.ndarray | None = None,
    ) -> Scan:
        """A scan from measured intensities (photon counts, any integer or float dtype): the
        amplitudes are their square roots. A probe mode stack ``(modes, N, N)`` uses mode 0."""
        counts = np.asarray(counts)
        if counts.ndim != 3:
            raise ValueError(f"counts: expected (M, N, N), got shape {counts.shape}")
        intensity = counts.astype(np.float64)
        if not np.all(np.isfinite(intensity)) or (intensity < 0).any():
            raise ValueError("counts: values must be finite and non-negative")
        return cls(
            xcoords=xcoords,
            ycoords=ycoords,
            diff3d=np.sqrt(intensity).astype(np.float32),
            probe_guess=_probe_mode0(np.asarray(probe_guess)),
            object_guess=object_guess,
        )

    @classmethod
    def load(cls, path: PathLike) -> Scan:
        """Read a scan NPZ (the reference contract: ``xcoords``, ``ycoords``, ``diff3d``
        amplitudes, ``probeGuess``, optional ``objectGuess``, ...)."""
        return cls._from_dict(_native.load_npz(os.fspath(path)))

    def save(self, path: PathLike) -> None:
        """Write the scan as an NPZ in the reference contract (atomically)."""
        _native.save_npz(self._to_dict(), os.fspath(path))

    def _to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "xcoords": _native_array(self.xcoords),
            "ycoords": _native_array(self.ycoords),
            "diff3d": _native_array(self.diff3d),
            "probeGuess": _native_array(self.probe_guess),
            "objectGuess": _native_array(self.object_guess),
            "xcoords_start": _native_array(self.xcoords_start),
            "ycoords_start": _native_array(self.ycoords_start),
            "scan_index": _native_array(self.scan_index),
            "bad_pixels": _native_array(self.bad_pixels),
        }
        if self.nphotons is not None:
            d["nphotons"] = float(self.nphotons)
        return d

    @classmethod
    def _from_dict(cls, d: Mapping[str, Any]) -> Scan:
        return cls(
            xcoords=d["xcoords"],
            ycoords=d["ycoords"],
            diff3d=d["diff3d"],
            probe_guess=d["probeGuess"],
            object_guess=d.get("objectGuess"),
            xcoords_start=d.get("xcoords_start"),
            ycoords_start=d.get("ycoords_start"),
            scan_index=d.get("scan_index"),
            bad_pixels=d.get("bad_pixels"),
            nphotons=d.get("nphotons"),
        )


def _native_array(a: np.ndarray | None) -> np.ndarray | None:
    """``a`` as the native module reads it: C-contiguous and aligned. Arrays rebuilt from a
    pickle or a network buffer (Dask, multiprocessing) can be unaligned, which the native code
    does not accept; only those are copied."""
    return None if a is None else np.require(a, requirements=("C", "A"))


def _probe_mode0(probe: np.ndarray) -> np.ndarray:
    if probe.ndim == 2:
        return probe
    if probe.ndim >= 3:
        return probe.reshape((-1,) + probe.shape[-2:])[0]
    raise ValueError(f"probe: expected (N, N) or a mode stack (..., N, N), got shape {probe.shape}")


def _as_scan(scan: Scan | PathLike) -> Scan:
    return scan if isinstance(scan, Scan) else Scan.load(scan)


def simulate(**settings: Any) -> Scan:
    """Simulate a scan (settings as ``ptycho simulate``: ``object`` = ``lines`` | ``grf`` |
    ``points`` | ``diagonals``, or ``input_file`` = an NPZ whose ``objectGuess`` and
    ``probeGuess`` are used; ``n_images``, ``N``, ``nphotons``, ``seed``, ``object_size``,
    ``noise``)."""
    return Scan._from_dict(_native.simulate(_settings_json(settings)))


@dataclass(frozen=True)
class EpochRecord:
    """One training epoch: sample-weighted mean losses (``loss`` is the weighted total of the
    ``nll``, ``mae`` and ``realspace`` terms), learning rate and speed."""

    epoch: int
    loss: float
    nll: float
    mae: float
    val_loss: float | None
    lr: float
    seconds: float = 0.0
    samples_per_s: float = 0.0
    realspace: float = 0.0


@dataclass
class Reconstruction:
    """A stitched reconstruction.

    Attributes:
        object: complex transmission, ``(H, W)`` complex64.
        origin: ``(x, y)`` object-pixel coordinates of ``object[0, 0]`` in the scan's frame.
        stitch_crop: the central M×M window of each patch that was stitched.
        report: groups, patterns, timing, ``scan_coverage`` (the fraction of the scan's bounding
            box that the stitched canvas covers), and the metrics when the scan had ``objectGuess``.
    """

    object: np.ndarray
    origin: tuple[float, float]
    stitch_crop: int
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def amplitude(self) -> np.ndarray:
        return np.abs(self.object)

    @property
    def phase(self) -> np.ndarray:
        return np.angle(self.object)

    @property
    def metrics(self) -> dict[str, Any] | None:
        """Metrics against the scan's ``objectGuess`` (None when it had none)."""
        return self.report.get("evaluation")


class Model:
    """A trained model: the archive ``wts.h5.zip`` plus its summary.

    Create one with :func:`train` or :func:`load_model`. The network is loaded from the archive
    (params first, then the weights: CONFIG-001) on the first reconstruction on a device and kept
    for the next ones; a Model is safe to share between threads (reconstructions release the GIL).
    """

    def __init__(self, archive: Path, info: dict[str, Any], history: list[EpochRecord]) -> None:
        self._archive = archive
        self._info = info
        self._history = history
        self._cleanup: weakref.finalize | None = None
        self._loaded: dict[str, _native.LoadedModel] = {}
        self._lock = threading.Lock()
        #: The training report (groups, seconds, final losses) for a model made by :func:`train`.
        self.report: dict[str, Any] | None = None

    @property
    def archive(self) -> Path:
        """Path of the ``wts.h5.zip`` this model reads."""
        return self._archive

    @property
    def info(self) -> dict[str, Any]:
        """The archive summary (what ``ptycho inspect --json`` prints)."""
        return self._info

    @property
    def params(self) -> dict[str, Any]:
        """The restored params (the reference's flat keys, e.g. ``N``, ``gridsize``)."""
        return dict(self._info.get("params", {}))

    @property
    def n(self) -> int:
        return int(self.params["N"])

    @property
    def gridsize(self) -> int:
        return int(self.params["gridsize"])

    @property
    def model_type(self) -> str:
        return str(self.params.get("model_type", "pinn"))

    @property
    def history(self) -> list[EpochRecord]:
        """Per-epoch training history (empty when the archive does not carry one)."""
        return list(self._history)

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Copy the archive to ``path`` (a file, or a directory that gets ``wts.h5.zip``),
        atomically. Returns the file written."""
        dest = Path(path)
        if dest.is_dir():
            dest = dest / ARCHIVE_NAME
        if dest.exists() and not overwrite:
            raise FileExistsError(f"{dest}: exists (pass overwrite=True to replace it)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ptycho-tmp-", dir=dest.parent)
        os.close(fd)
        try:
            shutil.copyfile(self._archive, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def reconstruct(self, scan: Scan | PathLike, *, device: str = "cpu", **settings: Any) -> Reconstruction:
        """Reconstruct a scan (settings: ptycho's inference keys, e.g. ``batch_size``,
        ``stitch_crop``, ``stitch_at`` (``"members"`` or ``"centres"``), ``neighbor_count``,
        ``n_groups``, ``seed``)."""
        scan = _as_scan(scan)
        obj, origin, crop, report = self._network(device).reconstruct(scan._to_dict(), _settings_json(settings))
        return Reconstruction(object=obj, origin=origin, stitch_crop=crop, report=json.loads(report))

    def _network(self, device: str) -> _native.LoadedModel:
        """The network on ``device``, loaded once."""
        with self._lock:
            loaded = self._loaded.get(device)
            if loaded is None:
                loaded = _native.LoadedModel(os.fspath(self._archive), device)
                self._loaded[device] = loaded
            return loaded

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (e.g. sent to another process) without the loaded networks, the lock or the
        # temporary directory's cleanup: the receiver loads the network again from the archive.
        state = dict(self.__dict__)
        state.update(_loaded={}, _lock=None, _cleanup=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Model({str(self._archive)!r}, N={self.n}, gridsize={self.gridsize}, {self.model_type})"


def _history(records: list[Mapping[str, Any]]) -> list[EpochRecord]:
    keys = EpochRecord.__dataclass_fields__.keys()
    return [EpochRecord(**{k: r[k] for k in keys if k in r}) for r in records]


def load_model(path: PathLike) -> Model:
    """Load a model archive (``wts.h5.zip``, or a directory holding one): the params are
    restored first, the network built from them and its weights loaded, so a bad archive fails
    here."""
    info = json.loads(_native.load_model(os.fspath(path)))
    archive = Path(info["path"])
    return Model(archive, info, _history(info.get("history") or []))


def train(
    train_data: Scan | PathLike,
    *,
    output_dir: PathLike | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[EpochRecord], Any] | None = None,
    **settings: Any,
) -> Model:
    """Train PtychoPINN on a scan and return the model.

    Args:
        train_data: the training scan (or the path of its NPZ).
        output_dir: where ``wts.h5.zip``, ``checkpoint.zip``, ``history.csv`` and the loss curve
            go; default: a temporary directory removed with the Model (use :meth:`Model.save`).
        device: ``cpu`` (pure Rust), or ``tch-cpu``/``cuda`` in a build with libtorch.
        overwrite: replace an existing archive in ``output_dir``.
        progress: called with each epoch's :class:`EpochRecord`; returning ``False`` (or raising)
            stops training after that epoch. Ctrl-C stops it too (``KeyboardInterrupt``).
        **settings: training keys (``nepochs``, ``batch_size``, ``N``, ``gridsize``,
            ``nphotons``, ``n_groups``, ``seed``, ...). Without ``nphotons`` a simulated scan's
            photon count is used, as ``ptycho train`` does.
    """
    scan = _as_scan(train_data)
    if "nphotons" not in settings and scan.nphotons is not None:
        settings = {**settings, "nphotons": scan.nphotons}
    temporary = output_dir is None
    out = Path(tempfile.mkdtemp(prefix="ptycho-rs-train-")) if temporary else Path(output_dir)

    def on_epoch(text: str) -> bool:
        if progress is None:
            return True
        return progress(_history([json.loads(text)])[0]) is not False

    try:
        report = json.loads(
            _native.train(
                scan._to_dict(),
                _settings_json(settings),
                os.fspath(out),
                device,
                overwrite,
                True,
                on_epoch,
            )
        )
    except BaseException:
        if temporary:
            shutil.rmtree(out, ignore_errors=True)
        raise
    info = json.loads(_native.load_model(report["archive"]))
    model = Model(Path(report["archive"]), info, _history(report["history"]))
    model.report = report
    if temporary:
        model._cleanup = weakref.finalize(model, shutil.rmtree, out, True)
    return model


def reconstruct(
    model: Model | PathLike, scan: Scan | PathLike, *, device: str = "cpu", **settings: Any
) -> Reconstruction:
    """Reconstruct ``scan`` with ``model`` (a :class:`Model` or an archive path); see
    :meth:`Model.reconstruct`."""
    m = model if isinstance(model, Model) else load_model(model)
    return m.reconstruct(scan, device=device, **settings)


def evaluate(reconstruction: Reconstruction, truth: Scan | PathLike, **settings: Any) -> dict[str, Any]:
    """Metrics of a reconstruction against the ``objectGuess`` of ``truth`` (aligned on the
    scanned region as ``ptycho evaluate``): amplitude and phase MAE, MSE, PSNR, SSIM, MS-SSIM,
    FRC50. Settings: ptycho's evaluation keys (``stitch_crop``)."""
    scan = _as_scan(truth)
    return json.loads(
        _native.evaluate(
            np.require(reconstruction.object, dtype=np.complex64, requirements=("C", "A")),
            tuple(reconstruction.origin),
            reconstruction.stitch_crop,
            scan._to_dict(),
            _settings_json(settings),
        )
    )
