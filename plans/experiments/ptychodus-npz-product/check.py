"""Check that a product written by `ptycho infer --product` loads through Ptychodus 1.7's own NPZ
product reader and carries the geometry ptycho promises.

Usage:
    python check.py PRODUCT.npz [TEST_DATA.npz RECONSTRUCTION.npz]

Always: the file loads with `NPZProductFileIO().read`; the object is (1, H, W) complex with
square pixels equal to the probe's; the probe is (1, 1, N, N) complex; every position has a
finite position in metres and indexes 0..M-1; the mean scan position maps (through
`ObjectGeometry.map_probe_positions_to_object_{x,y}_px`, Ptychodus's own mapping) inside the
object; the losses are finite with epochs 0, 1, ..., K-1.

With the test data and `reconstruction.npz` of the same `ptycho infer` run: the object equals the
stitched object, the probe equals probeGuess, and every position maps to the canvas pixel where
ptycho's stitcher put it, `xcoords - origin_x` / `ycoords - origin_y` (to 1e-6 px).

Exits non-zero with one line naming the failed check; prints one summary line on success.
Needs numpy and ptychodus==1.7.0 (no other dependency).
"""

from pathlib import Path
import sys

import numpy
from ptychodus.plugins.npz_product_file import NPZProductFileIO


def check(ok: bool, message: str) -> None:
    if not ok:
        raise SystemExit(f'check.py: {message}')


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 4):
        raise SystemExit('usage: check.py PRODUCT.npz [TEST_DATA.npz RECONSTRUCTION.npz]')
    path = Path(argv[1])
    product = NPZProductFileIO().read(path)

    obj = product.object_.get_array()
    check(obj.ndim == 3 and obj.shape[0] == 1, f'object shape {obj.shape}, expected (1, H, W)')
    check(numpy.iscomplexobj(obj), f'object dtype {obj.dtype} is not complex')
    height, width = obj.shape[1:]
    check(height > 0 and width > 0, f'empty object {obj.shape}')
    geometry = product.object_.get_geometry()
    pixel = geometry.get_pixel_geometry()
    check(pixel.is_square and pixel.width_m > 0, f'object pixels {pixel} not square and positive')

    probe = product.probes.get_array()
    check(probe.ndim == 4 and probe.shape[:2] == (1, 1), f'probe shape {probe.shape}')
    check(numpy.iscomplexobj(probe), f'probe dtype {probe.dtype} is not complex')
    probe_pixel = product.probes.get_pixel_geometry()
    check(probe_pixel == pixel, f'probe pixels {probe_pixel} differ from object pixels {pixel}')

    positions = product.probe_positions
    count = len(positions)
    check(count > 0, 'no probe positions')
    indexes = numpy.asarray(positions.get_indexes())
    check(numpy.array_equal(indexes, numpy.arange(count)), 'position indexes are not 0..M-1')
    x_m = numpy.asarray(positions.get_coordinates_x_m())
    y_m = numpy.asarray(positions.get_coordinates_y_m())
    check(numpy.isfinite(x_m).all() and numpy.isfinite(y_m).all(), 'non-finite positions')
    x_px = geometry.map_probe_positions_to_object_x_px(positions)
    y_px = geometry.map_probe_positions_to_object_y_px(positions)
    mean_x, mean_y = float(numpy.mean(x_px)), float(numpy.mean(y_px))
    check(
        0 <= mean_x <= width - 1 and 0 <= mean_y <= height - 1,
        f'mean position maps to object pixel ({mean_x:.2f}, {mean_y:.2f}), outside {width}x{height}',
    )

    epochs = numpy.array([loss.epoch for loss in product.losses], dtype=numpy.int64)
    values = numpy.array([loss.value for loss in product.losses], dtype=numpy.float64)
    check(numpy.array_equal(epochs, numpy.arange(len(epochs))), f'loss epochs {epochs} not 0..K-1')
    check(numpy.isfinite(values).all(), 'non-finite loss values')

    if len(argv) == 4:
        with numpy.load(argv[2]) as test, numpy.load(argv[3]) as recon:
            xcoords, ycoords = test['xcoords'], test['ycoords']
            probe_guess = test['probeGuess']
            stitched, origin = recon['object'], recon['origin']
        check(numpy.array_equal(obj[0], stitched), 'object differs from reconstruction.npz')
        check(numpy.array_equal(probe[0, 0], probe_guess), 'probe differs from probeGuess')
        check(len(xcoords) == count, f'{count} positions, test data has {len(xcoords)}')
        err_x = float(numpy.max(numpy.abs(x_px - (xcoords - origin[0]))))
        err_y = float(numpy.max(numpy.abs(y_px - (ycoords - origin[1]))))
        check(
            max(err_x, err_y) <= 1e-6,
            f'positions map {err_x:.3g} / {err_y:.3g} px away from the stitched canvas pixels',
        )

    print(
        f'{path}: ok: object {obj.shape} {obj.dtype}, probe {probe.shape}, {count} positions, '
        f'pixel {pixel.width_m:.6g} m, centre ({geometry.center_x_m:.6g}, '
        f'{geometry.center_y_m:.6g}) m, {len(values)} loss epochs'
        + (', geometry matches the stitched canvas' if len(argv) == 4 else '')
    )


if __name__ == '__main__':
    main(sys.argv)
