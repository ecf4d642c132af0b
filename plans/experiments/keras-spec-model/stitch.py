"""Stitch OUT_DIR/patches.npy at the test scan's positions (spec 7.2, M = 20) and write
OUT_DIR/reconstruction.npz in `ptycho infer`'s layout, for `ptycho evaluate`.

usage: stitch.py OUT_DIR"""
import os, sys, numpy as np
out = sys.argv[1]; M = 20
G = os.environ.get('PTYCHO_GOLDENS', os.path.join(os.path.dirname(__file__), '../../../testdata/goldens'))
te = np.load(os.path.join(G, 'sim_lines_test.npz'))
p = np.load(out + '/patches.npy')  # (G, N, N) complex, test file order
N = p.shape[1]
def translate(img, dx, dy):
    H, W = img.shape
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing='ij')
    sx = xx - dx; sy = yy - dy
    x0 = np.floor(sx); y0 = np.floor(sy); wx = sx - x0; wy = sy - y0
    def tap(xi, yi):
        ok = (xi >= 0) & (xi <= W - 1) & (yi >= 0) & (yi <= H - 1)
        v = img[np.clip(yi, 0, H - 1).astype(int), np.clip(xi, 0, W - 1).astype(int)]
        return np.where(ok, v, 0)
    return (1 - wx) * (1 - wy) * tap(x0, y0) + wx * (1 - wy) * tap(x0 + 1, y0) + (1 - wx) * wy * tap(x0, y0 + 1) + wx * wy * tap(x0 + 1, y0 + 1)
c = p[:, N // 2 - M // 2:N // 2 + M // 2, N // 2 - M // 2:N // 2 + M // 2]
o = np.stack([te['xcoords'], te['ycoords']], 1).astype(np.float32)
com = o.mean(axis=0, dtype=np.float32); a = o - com
pad = int(np.ceil(np.max(np.abs(a)))); pad += pad % 2
S = M + 2 * pad; num = np.zeros((S, S), complex); den = np.zeros((S, S))
q1 = np.zeros((S, S)); q1[pad:pad + M, pad:pad + M] = 1
for i in range(len(c)):
    q = np.zeros((S, S), complex); q[pad:pad + M, pad:pad + M] = c[i]
    num += translate(q, a[i, 0], a[i, 1]); den += translate(q1, a[i, 0], a[i, 1])
obj = (num / (1e-9 + den)).astype(np.complex64)
origin = np.array([com[0] - M / 2 - pad, com[1] - M / 2 - pad], np.float64)
np.savez(out + '/reconstruction.npz', object=obj, amplitude=np.abs(obj).astype(np.float32),
         phase=np.angle(obj).astype(np.float32), origin=origin, stitch_crop=np.int64(M))
print('canvas', obj.shape, 'origin', origin)
