"""Write `ptychodus_training.npz`: a tiny scan exported by Ptychodus 1.7's own
`ptychodus.api.io.save_ptychopinn_training_data` (the file Ptychodus's PtychoPINN "export
training data" writes, and the `train_data.npz` / `test_data.npz` of its training folder).

What it holds, as Ptychodus writes it: `diff3d` uint16 photon counts (the detector's dtype),
`bad_pixels` bool (N, N) with 3 pixels set (inpainted in `diff3d`), `probeGuess` complex64
(2, N, N) (two probe modes), `objectGuess` complex64, `xcoords`/`ycoords` (and the `_start`
copies) in object pixels, `scan_index` int64 zeros.

The scan is simulated here with numpy (seeded): a smooth random object, a Gaussian-disk probe,
far-field intensities scaled to ~1e5 photons per pattern, Poisson counts.

Run with a Python that has Ptychodus 1.7 and numpy:
    python testdata/ptychodus/make_ptychodus_fixture.py testdata/ptychodus/ptychodus_training.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.io import save_ptychopinn_training_data
from ptychodus.api.object import Object, ObjectCenter
from ptychodus.api.probe import ProbeSequence
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import Product, ProductMetadata
from ptychodus.api.reconstruct import ReconstructInput

N = 64  # detector / probe size, pixels
M = 8  # scan positions
SIDE = 72  # object side, pixels
PIXEL_M = 10e-9
CENTER_M = (1.0e-6, -0.5e-6)
PHOTONS = 1e5


def smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur through the FFT (periodic), to keep this script numpy-only."""
    ky = np.fft.fftfreq(a.shape[0])[:, None]
    kx = np.fft.fftfreq(a.shape[1])[None, :]
    g = np.exp(-2 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
    return np.real(np.fft.ifft2(np.fft.fft2(a) * g))


def main(out: Path) -> None:
    rng = np.random.default_rng(16)
    amp = 0.5 + smooth(rng.random((SIDE, SIDE)), 3.0)
    phase = 0.5 * smooth(rng.standard_normal((SIDE, SIDE)), 4.0)
    obj = (amp * np.exp(1j * phase)).astype(np.complex64)

    yy, xx = np.mgrid[:N, :N] - (N - 1) / 2
    disk = (np.hypot(xx, yy) < N / 6).astype(float)
    probe0 = smooth(disk, 1.0).astype(np.complex64)
    probe1 = (0.3 * probe0 * np.exp(1j * np.arctan2(yy, xx))).astype(np.complex64)
    probes = np.stack([probe0, probe1])[None]  # (OPR = 1, modes = 2, N, N)

    half = N // 2
    xs = rng.uniform(half, SIDE - half, M)
    ys = rng.uniform(half, SIDE - half, M)
    patterns = np.empty((M, N, N), dtype=np.uint16)
    for i, (x, y) in enumerate(zip(xs, ys)):
        r, c = int(round(y)) - half, int(round(x)) - half
        exit_wave = obj[r : r + N, c : c + N] * probe0
        intensity = np.abs(np.fft.fftshift(np.fft.fft2(exit_wave))) ** 2
        intensity *= PHOTONS / intensity.sum()
        patterns[i] = rng.poisson(intensity).clip(0, 65535).astype(np.uint16)
    # Integer pixel centres: the positions are exactly those of the patches cut above.
    xs, ys = np.round(xs), np.round(ys)

    bad = np.zeros((N, N), dtype=bool)
    bad[3, 5] = bad[40, 7] = bad[60, 60] = True

    pixels = PixelGeometry(width_m=PIXEL_M, height_m=PIXEL_M)
    positions = ProbePositionSequence(
        [
            ProbePosition(
                index=i,
                x_m=CENTER_M[0] + (x - (SIDE - 1) / 2) * PIXEL_M,
                y_m=CENTER_M[1] + (y - (SIDE - 1) / 2) * PIXEL_M,
            )
            for i, (x, y) in enumerate(zip(xs, ys))
        ]
    )
    product = Product(
        metadata=ProductMetadata(
            name="ptycho fixture",
            comments="issue 16",
            detector_distance_m=2.0,
            photon_energy_eV=10_000.0,
            probe_photon_count=PHOTONS,
            exposure_time_s=0.1,
            mass_attenuation_m2_per_kg=0.0,
            tomography_angle_deg=0.0,
        ),
        probe_positions=positions,
        probes=ProbeSequence(array=probes, opr_weights=None, pixel_geometry=pixels),
        object_=Object(array=obj, pixel_geometry=pixels, center=ObjectCenter(*CENTER_M)),
        losses=[],
    )
    save_ptychopinn_training_data(out, ReconstructInput(patterns, bad, product))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
