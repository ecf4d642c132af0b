"""Typed stubs of the compiled module ptycho_rs._native (use the documented API in ptycho_rs)."""

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

ScanDict = dict[str, Any]

def simulate(settings_json: str) -> ScanDict:
    """Simulate a lines-object scan; settings are SimulationConfig keys as a JSON object."""

def load_npz(path: str) -> ScanDict:
    """Read a scan NPZ (reference contract) into a scan dict."""

def save_npz(scan: ScanDict, path: str) -> None:
    """Validate a scan dict and write it as an NPZ, atomically."""

def train(
    scan: ScanDict,
    settings_json: str,
    output_dir: str,
    device_name: str = "cpu",
    overwrite: bool = False,
    quiet: bool = True,
    progress: Callable[[str], object] | None = None,
) -> str:
    """Train; `progress(epoch_record_json)` after each epoch (False or an exception stops).
    Returns the run report as JSON text."""

def load_model(path: str) -> str:
    """Load an archive (params first, then the models) and return its summary as JSON text."""

def reconstruct(
    archive: str, scan: ScanDict, settings_json: str, device_name: str = "cpu"
) -> tuple[npt.NDArray[np.complex64], tuple[float, float], int, str]:
    """Returns (object, origin (x, y) in object pixels, stitch_crop, report JSON)."""

class LoadedModel:
    """An archive loaded once onto a device, for many reconstructions (thread-safe)."""

    def __init__(self, archive: str, device_name: str = "cpu") -> None: ...
    def reconstruct(
        self, scan: ScanDict, settings_json: str
    ) -> tuple[npt.NDArray[np.complex64], tuple[float, float], int, str]:
        """Returns (object, origin (x, y) in object pixels, stitch_crop, report JSON)."""

def evaluate(
    object: npt.NDArray[np.complex64],
    origin: tuple[float, float],
    stitch_crop: int | None,
    scan: ScanDict,
    settings_json: str,
) -> str:
    """Metrics against the scan's objectGuess, as JSON text."""
