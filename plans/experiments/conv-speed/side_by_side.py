"""TensorFlow (the Keras model of the spec) against `ptycho` on flex, in one run on one machine:
training epoch time and inference-with-stitching rate on the reference's sim_lines files
(972 training groups, N = 64, gs = 1, B = 16; 512 test patterns), printed as ratios.

usage: side_by_side.py PTYCHO_BINARY OUT_DIR [EPOCHS=2]
Needs python3 with numpy and tensorflow-cpu==2.21.0 (see ../keras-spec-model/README.md) and a
release build of the binary. The epoch compared is the last one (the first carries warm-up).
Not run by CI."""
import csv, json, os, re, subprocess, sys, time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', 'keras-spec-model'))
ptycho, out = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
G = os.environ.get('PTYCHO_GOLDENS', os.path.join(here, '../../../testdata/goldens'))
os.makedirs(out, exist_ok=True)


def cpu_line():
    txt = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
    model = re.search(r'Model name:\s*(.*)', txt).group(1).strip()
    avx512 = 'avx512f' in txt
    return f'{model}; {os.cpu_count()} CPUs; avx512f {"yes" if avx512 else "no"}'


def stitch(patches, xy, M=20):
    """Bilinear splat of the central M×M crops at positions xy (spec 7.2), vectorised numpy."""
    n = patches.shape[1]
    c = patches[:, n // 2 - M // 2:n // 2 + M // 2, n // 2 - M // 2:n // 2 + M // 2]
    a = xy - xy.mean(axis=0)
    pad = int(np.ceil(np.max(np.abs(a)))) + 1
    S = M + 2 * pad
    num = np.zeros((S, S), np.complex64); den = np.zeros((S, S), np.float32)
    i0 = np.floor(a).astype(int); f = (a - i0).astype(np.float32)
    v, u = np.mgrid[0:M, 0:M]
    for dy in (0, 1):
        for dx in (0, 1):
            w = ((f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1]))[:, None, None]
            rows = (pad + v[None] + i0[:, 1, None, None] + dy).ravel()
            cols = (pad + u[None] + i0[:, 0, None, None] + dx).ravel()
            np.add.at(num, (rows, cols), (w * c).ravel())
            np.add.at(den, (rows, cols), np.broadcast_to(w, c.shape).ravel())
    return num / (den + 1e-9)


def tensorflow_run():
    import keras
    import tensorflow as tf
    import train_keras as tk
    keras.utils.set_random_seed(1)
    m = tk.Pinn()
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=tk.nll)

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    times = []
    m.fit(tk.xtr, tk.ytr, batch_size=16, epochs=epochs, shuffle=True, validation_split=0.05,
          verbose=0, callbacks=[Timer()])
    te = np.load(os.path.join(G, 'sim_lines_test.npz'))
    xy = np.stack([te['xcoords'], te['ycoords']], 1).astype(np.float32)
    m.obj(tf.constant(tk.xte[:32]))  # warm-up (graph tracing)
    t = time.perf_counter()
    parts = []
    for b in range(0, len(tk.xte), 32):
        r, i = m.obj(tf.constant(tk.xte[b:b + 32]))
        parts.append(r.numpy()[..., 0] + 1j * i.numpy()[..., 0])
    model_s = time.perf_counter() - t
    stitch(np.concatenate(parts).astype(np.complex64), xy)
    total_s = time.perf_counter() - t
    return {'epoch_s': times, 'infer_patterns': len(tk.xte), 'infer_model_s': model_s,
            'infer_total_s': total_s}


def ptycho_run():
    d = os.path.join(out, 'ptycho-train')
    subprocess.run([ptycho, 'train', '--train-data', os.path.join(G, 'sim_lines_train.npz'),
                    '--n-groups', '1024', '--nepochs', str(epochs), '--batch-size', '16',
                    '--output-dir', d, '--overwrite'], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(d, 'history.csv')) as fh:
        times = [float(r['seconds']) for r in csv.DictReader(fh)]
    t = time.perf_counter()
    subprocess.run([ptycho, 'infer', '--model', d, '--test-data',
                    os.path.join(G, 'sim_lines_test.npz'), '--output-dir',
                    os.path.join(out, 'ptycho-infer')], check=True, stdout=subprocess.DEVNULL)
    total_s = time.perf_counter() - t
    return {'epoch_s': times, 'infer_patterns': 512, 'infer_total_s': total_s}


if __name__ == '__main__':
    report = {'cpu': cpu_line(), 'epochs': epochs, 'ptycho': ptycho}
    report['ptycho_flex'] = ptycho_run()
    report['tensorflow'] = tensorflow_run()
    with open(os.path.join(out, 'side_by_side.json'), 'w') as fh:
        json.dump(report, fh, indent=1)
    tf_r, pt = report['tensorflow'], report['ptycho_flex']
    tf_ep, pt_ep = tf_r['epoch_s'][-1], pt['epoch_s'][-1]
    tf_rate = tf_r['infer_patterns'] / tf_r['infer_total_s']
    pt_rate = pt['infer_patterns'] / pt['infer_total_s']
    print(f"cpu: {report['cpu']}")
    print(f"{'':28}{'TensorFlow':>12}{'ptycho flex':>13}{'ratio':>8}")
    print(f"{'training epoch (s, last)':28}{tf_ep:12.1f}{pt_ep:13.1f}{tf_ep / pt_ep:8.2f}")
    print(f"{'inference+stitch (pat/s)':28}{tf_rate:12.1f}{pt_rate:13.1f}{pt_rate / tf_rate:8.2f}")
    print(f"(TF model only: {tf_r['infer_patterns'] / tf_r['infer_model_s']:.1f} pat/s; "
          f"ptycho: whole `ptycho infer` process, load to written outputs)")
