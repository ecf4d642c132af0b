"""The reference's TF model at any gridsize (N=64, nfs=2, probe_big, object_big with the HEAD
C-channel heads), written in Keras from ../shared/reference/ptychopinn-spec.md (sections 3-6), and
trained on exactly the groups ptycho trains on: the measuring stick of issue #19 part 2.

Unlike the reference's batched ReassemblePatchesLayer (B*C >= 64 sums the whole batch into one
canvas, spec 4.6 D3), every group gets its own P x P canvas (P = N + 4(gs-1) + 10):
    canvas_b = sum_c T(pad_P(Z_bc), -r_bc) / (sum_c T(pad_P(CM), -r_bc) + 0.001)
with bilinear translations written as per-sample interpolation matrices (taps outside contribute
0), then re-extraction trim_N(T(canvas_b, +r_bc)), probe illumination, |FFT|/N, x s, Poisson NLL.
Adam 1e-3, batch 16, validation_split 0.05 (the last 5 % of the groups, as ptycho splits),
ReduceLROnPlateau(val_loss, 0.5, 2, 1e-4), EarlyStopping(loss, 3).

usage: train_keras_gs.py GROUPS.npz SEED OUT_DIR [EPOCHS=24]
GROUPS.npz comes from `cargo run --release -p ptycho-workflows --example export_groups`.
Writes OUT_DIR/keras.json (history, wall time) and OUT_DIR/reconstruction.npz (the test groups'
trimmed objects stitched at their centres, 20-px crop, in `ptycho infer`'s layout) for
`ptycho evaluate`. Not part of the build; see README.md here."""
import os, sys, json, time
import numpy as np
import tensorflow as tf
import keras
from keras import layers


def hat(n_out, n_in, t):
    """(..., n_out, n_in) bilinear shift matrices: out[i] = in[i - t] (ptycho's shift_matrix)."""
    i = tf.range(n_out, dtype=tf.float32)[:, None]
    j = tf.range(n_in, dtype=tf.float32)[None, :]
    return tf.nn.relu(1.0 - tf.abs(j - (i - t[..., None, None])))


def conv(nf, act='relu'):
    return layers.Conv2D(nf, 3, padding='same', activation=act)


class Decoder(keras.layers.Layer):
    def __init__(self, act, c, bm, **kw):
        super().__init__(**kw)
        self.act = act; self.bm = bm
        self.c = [conv(128), conv(128), conv(64), conv(64)]
        self.up = [layers.UpSampling2D(2), layers.UpSampling2D(2), layers.UpSampling2D(2)]
        self.conv1 = conv(c, None)
        self.b = [conv(64), conv(64)]
        self.conv2 = conv(c, None)

    def call(self, z):
        z = self.up[0](self.c[1](self.c[0](z)))
        z = self.up[1](self.c[3](self.c[2](z)))
        x1 = self.act(self.conv1(z[..., :60]))
        q = x1.shape[1] // 2
        x1 = tf.pad(x1, [[0, 0], [q, q], [q, q], [0, 0]])
        x2 = self.up[2](self.b[1](self.b[0](z[..., 60:])))
        x2 = tf.nn.silu(self.conv2(x2))
        return x1 + x2 * self.bm


class Pinn(keras.Model):
    def __init__(self, n, c, s, probe, p_size):
        super().__init__()
        self.n, self.c, self.s, self.p = n, c, np.float32(s), p_size
        self.pad = np.float32((p_size - n) / 2)
        self.lo = (p_size - n) // 2
        cm = np.zeros((n, n), np.float32); cm[n // 4:3 * n // 4, n // 4:3 * n // 4] = 1
        self.cm = tf.constant(cm[None, None])
        bm = (1 - cm)[None, :, :, None]
        self.enc = [conv(64), conv(64), conv(128), conv(128), conv(256), conv(256)]
        self.pool = [layers.MaxPooling2D(2, padding='same') for _ in range(3)]
        self.amp = Decoder(tf.sigmoid, c, bm)
        self.phi = Decoder(lambda t: np.pi * tf.tanh(t), c, bm)
        self.pr = tf.constant(probe.real.astype(np.float32)[None, None])
        self.pi = tf.constant(probe.imag.astype(np.float32)[None, None])

    def canvas(self, x, pos):
        z = x / self.s
        for k in range(3):
            z = self.pool[k](self.enc[2 * k + 1](self.enc[2 * k](z)))
        a = tf.transpose(self.amp(z), [0, 3, 1, 2])  # (B, C, N, N)
        ph = tf.transpose(self.phi(z), [0, 3, 1, 2])
        ly = hat(self.p, self.n, self.pad - pos[..., 1])  # (B, C, P, N)
        lxt = tf.transpose(hat(self.p, self.n, self.pad - pos[..., 0]), [0, 1, 3, 2])
        merge = lambda t: tf.reduce_sum(ly @ t @ lxt, axis=1)  # (B, P, P)
        den = merge(tf.broadcast_to(self.cm, tf.shape(a))) + 0.001
        return merge(a * tf.cos(ph)) / den, merge(a * tf.sin(ph)) / den

    def obj(self, x, pos):
        cre, cim = self.canvas(x, pos)
        sl = slice(self.lo, self.lo + self.n)
        return cre[:, sl, sl], cim[:, sl, sl]

    def call(self, inputs):
        x, pos = inputs
        cre, cim = self.canvas(x, pos)
        ey = hat(self.n, self.p, pos[..., 1] - self.pad)  # (B, C, N, P)
        ext = tf.transpose(hat(self.n, self.p, pos[..., 0] - self.pad), [0, 1, 3, 2])
        ore = ey @ cre[:, None] @ ext  # (B, C, N, N)
        oim = ey @ cim[:, None] @ ext
        psi = tf.complex(self.pr * ore - self.pi * oim, self.pr * oim + self.pi * ore)
        f = tf.signal.fft2d(psi)
        inten = tf.signal.fftshift(tf.math.real(f * tf.math.conj(f)) / (self.n * self.n), axes=(2, 3))
        lam = tf.square(self.s * tf.sqrt(inten))
        return tf.transpose(lam, [0, 2, 3, 1])  # (B, N, N, C)


def nll(y, lam):
    return tf.reduce_mean(lam - y * tf.math.log(tf.maximum(lam, 1e-12)))


def translate(img, dx, dy):
    h, w = img.shape
    return np.asarray(hat(h, h, tf.constant(np.float32(dy)))) @ img @ np.asarray(hat(w, w, tf.constant(np.float32(dx)))).T


def stitch(patches, centres, m=20):
    """Spec 7.2: the central m x m of each trimmed object, averaged on a canvas at the centres;
    returns (object, origin [x, y] of pixel (0, 0) in object pixels)."""
    n = patches.shape[1]
    c = patches[:, n // 2 - m // 2:n // 2 + m // 2, n // 2 - m // 2:n // 2 + m // 2]
    o = centres.astype(np.float32)
    com = o.mean(axis=0, dtype=np.float32); a = o - com
    pad = int(np.ceil(np.max(np.abs(a)))); pad += pad % 2
    S = m + 2 * pad; num = np.zeros((S, S), complex); den = np.zeros((S, S))
    q1 = np.zeros((S, S)); q1[pad:pad + m, pad:pad + m] = 1
    for i in range(len(c)):
        q = np.zeros((S, S), complex); q[pad:pad + m, pad:pad + m] = c[i]
        num += translate(q.real, a[i, 0], a[i, 1]) + 1j * translate(q.imag, a[i, 0], a[i, 1])
        den += translate(q1, a[i, 0], a[i, 1])
    obj = (num / (1e-9 + den)).astype(np.complex64)
    origin = np.array([com[0] - m / 2 - pad, com[1] - m / 2 - pad], np.float64)
    return obj, origin


def main():
    path, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 24
    os.makedirs(out, exist_ok=True)
    d = np.load(path)
    x = np.transpose(d['x_scaled'], (0, 2, 3, 1)).astype(np.float32)  # (G, N, N, C)
    pos = d['positions'].astype(np.float32)
    g, n, _, c = x.shape
    gs = int(round(np.sqrt(c)))
    p_size = n + 4 * (gs - 1) + 10
    s = float(d['s'][0])
    keras.utils.set_random_seed(seed)
    m = Pinn(n, c, s, d['probe'], p_size)
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=nll)
    m((x[:2], pos[:2]))
    n_params = int(sum(np.prod(v.shape) for v in m.trainable_variables))
    print(f'gridsize {gs}, C {c}, P {p_size}, {g} groups, {n_params} trainable parameters', flush=True)
    t0 = time.time()
    h = m.fit((x, pos), x ** 2, batch_size=16, epochs=epochs, shuffle=True, validation_split=0.05, verbose=2,
              callbacks=[keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.5, patience=2, min_lr=1e-4),
                         keras.callbacks.EarlyStopping(monitor='loss', patience=3)])
    wall = time.time() - t0
    hist = {k: [float(v) for v in vs] for k, vs in h.history.items()}
    tx = np.transpose(d['test_x_scaled'], (0, 2, 3, 1)).astype(np.float32)
    tp = d['test_positions'].astype(np.float32)
    re_l, im_l = [], []
    for b in range(0, len(tx), 32):
        r, i = m.obj(tf.constant(tx[b:b + 32]), tf.constant(tp[b:b + 32]))
        re_l.append(r.numpy()); im_l.append(i.numpy())
    patches = np.concatenate(re_l) + 1j * np.concatenate(im_l)
    np.save(out + '/patches.npy', patches.astype(np.complex64))
    centres = d['test_centres']
    obj, origin = stitch(patches, centres)
    np.savez(out + '/reconstruction.npz', object=obj, amplitude=np.abs(obj).astype(np.float32),
             phase=np.angle(obj).astype(np.float32), origin=origin, stitch_crop=np.int64(20))
    if c > 1:  # also stitched at the members, as `ptycho infer --stitch-at members` does
        wins, wc = [], []
        for g in range(len(patches)):
            for k in range(c):
                dx, dy = np.round(-tp[g, k]).astype(int)  # member - centre = -r
                if max(abs(dx), abs(dy)) > (n - 20) // 2:
                    continue
                w = np.zeros((n, n), complex)
                src = patches[g, max(0, dy):n + min(0, dy), max(0, dx):n + min(0, dx)]
                w[max(0, -dy):max(0, -dy) + src.shape[0], max(0, -dx):max(0, -dx) + src.shape[1]] = src
                wins.append(w); wc.append(centres[g] + [dx, dy])
        obj, origin = stitch(np.array(wins), np.array(wc))
        np.savez(out + '/reconstruction-members.npz', object=obj, amplitude=np.abs(obj).astype(np.float32),
                 phase=np.angle(obj).astype(np.float32), origin=origin, stitch_crop=np.int64(20))
    json.dump({'groups': path, 'seed': seed, 'gridsize': gs, 'params': n_params, 'wall_s': wall,
               'epochs_run': len(hist['loss']), 'history': hist}, open(out + '/keras.json', 'w'), indent=1)
    print('done', wall, flush=True)


if __name__ == '__main__':
    main()
