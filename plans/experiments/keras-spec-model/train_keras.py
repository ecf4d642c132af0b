"""The reference's TF model (gs=1, N=64, nfs=2, pad_object, probe_big, object_big), written in Keras
from ../shared/reference/ptychopinn-spec.md (sections 3-6), as a measuring stick: does Keras (its
Glorot init, Adam, callbacks and TF kernels) train this model to the same metrics as our Burn port?
2 331 772 trainable parameters in 44 tensors, as the spec states for the reference. Not part of
the build; see README.md here.

usage: train_keras.py SEED OUT_DIR [EPOCHS=20]   (writes OUT_DIR/patches.npy and keras.json)
Importing it gives the data (xtr, ytr, xte), the model class Pinn and the loss nll without
training (plans/experiments/conv-speed/side_by_side.py times it that way)."""
import os, sys, json, time
import numpy as np
import tensorflow as tf
import keras
from keras import layers

G = os.environ.get('PTYCHO_GOLDENS', os.path.join(os.path.dirname(__file__), '../../../testdata/goldens')) + '/'
tr = np.load(G + 'sim_lines_train.npz'); te = np.load(G + 'sim_lines_test.npz')
N = 64

def normalise(d):
    d = d.astype(np.float64)
    f = np.sqrt((N / 2) ** 2 / np.mean(np.sum(d ** 2, axis=(1, 2))))
    return (f * d).astype(np.float32)[..., None]

s = np.float32(np.sqrt(1e9) / (N / 2))
xtr = s * normalise(tr['diff3d']); xte = s * normalise(te['diff3d'])
ytr = xtr.astype(np.float32) ** 2
ii, jj = np.indices((N, N))
disk = (np.hypot(ii - N / 2 + 0.5, jj - N / 2 + 0.5) < N // 4)
P = tr['probeGuess'].astype(np.complex64)
Pn = P / (4.0 * np.mean(np.abs(disk * P)))
CM = np.zeros((N, N), np.float32); CM[N // 4:3 * N // 4, N // 4:3 * N // 4] = 1
BM = (1 - CM)[None, :, :, None]
PAD = 5  # canvas P = 74 for gs=1
den = np.pad(CM, PAD) + np.float32(0.001)
den_trim = den[PAD:PAD + N, PAD:PAD + N][None, :, :, None]  # gs=1, zero offsets: trim(canvas) = O / den_trim

def conv(nf, act='relu'):
    return layers.Conv2D(nf, 3, padding='same', activation=act)

class Decoder(keras.layers.Layer):
    def __init__(self, act, **kw):
        super().__init__(**kw)
        self.act = act
        self.c = [conv(128), conv(128), conv(64), conv(64)]
        self.up = [layers.UpSampling2D(2), layers.UpSampling2D(2), layers.UpSampling2D(2)]
        self.conv1 = conv(1, None)
        self.b = [conv(64), conv(64)]
        self.conv2 = conv(1, None)
    def call(self, z):
        z = self.up[0](self.c[1](self.c[0](z)))
        z = self.up[1](self.c[3](self.c[2](z)))
        x1 = self.act(self.conv1(z[..., :60]))
        x1 = tf.pad(x1, [[0, 0], [16, 16], [16, 16], [0, 0]])
        x2 = self.up[2](self.b[1](self.b[0](z[..., 60:])))
        x2 = tf.nn.silu(self.conv2(x2))
        return x1 + x2 * BM

class Pinn(keras.Model):
    def __init__(self):
        super().__init__()
        self.enc = [conv(64), conv(64), conv(128), conv(128), conv(256), conv(256)]
        self.pool = [layers.MaxPooling2D(2, padding='same') for _ in range(3)]
        self.amp = Decoder(tf.sigmoid)
        self.phi = Decoder(lambda t: np.pi * tf.tanh(t))
    def obj(self, x):
        z = x / s
        for k in range(3):
            z = self.pool[k](self.enc[2 * k + 1](self.enc[2 * k](z)))
        a = self.amp(z); ph = self.phi(z)
        return a * tf.cos(ph) / den_trim, a * tf.sin(ph) / den_trim
    def call(self, x):
        ore, oim = self.obj(x)
        pr = tf.constant(Pn.real[None, :, :, None]); pi = tf.constant(Pn.imag[None, :, :, None])
        psi = tf.complex(pr * ore - pi * oim, pr * oim + pi * ore)[..., 0]
        f = tf.signal.fft2d(psi)
        inten = tf.signal.fftshift(tf.math.real(f * tf.math.conj(f)) / (N * N), axes=(1, 2))
        amp = tf.sqrt(inten)[..., None]
        return tf.square(s * amp)

def nll(y, lam):
    return tf.reduce_mean(lam - y * tf.math.log(lam))

def main():
    seed = int(sys.argv[1]); out = sys.argv[2]; epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(seed)
    m = Pinn()
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=nll)
    t0 = time.time()
    h = m.fit(xtr, ytr, batch_size=16, epochs=epochs, shuffle=True, validation_split=0.05, verbose=2,
              callbacks=[keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.5, patience=2, min_lr=1e-4),
                         keras.callbacks.EarlyStopping(monitor='loss', patience=3)])
    wall = time.time() - t0
    hist = {k: [float(v) for v in vs] for k, vs in h.history.items()}
    # inference on the test scan, batch 32
    re_l, im_l = [], []
    for b in range(0, len(xte), 32):
        r, i = m.obj(tf.constant(xte[b:b + 32]))
        re_l.append(r.numpy()); im_l.append(i.numpy())
    patches = (np.concatenate(re_l) + 1j * np.concatenate(im_l)).astype(np.complex64)[..., 0]
    np.save(out + '/patches.npy', patches)
    json.dump({'seed': seed, 'wall_s': wall, 'epochs_run': len(hist['loss']), 'history': hist}, open(out + '/keras.json', 'w'), indent=1)
    print('done', wall)


if __name__ == '__main__':
    main()
