"""Many scans on a Dask cluster: one model load per worker, scans mapped over the workers.

Reconstruct a list of scans with one trained model on a ``dask.distributed.Client``::

    from dask.distributed import Client, LocalCluster
    import ptycho_rs.dask as prd

    client = Client(LocalCluster(n_workers=4, threads_per_worker=1))
    recs = prd.reconstruct_scans(client, "model/wts.h5.zip", ["a.npz", "b.npz", "c.npz"],
                                 output_dirs=["out/a", "out/b", "out/c"], stitch_crop=20)
    recs[0].object                       # complex64 (H, W), as Model.reconstruct returns it
    prd.worker_stats(client)             # {worker address: {"model_loads": {archive: 1}, ...}}

What travels through the scheduler is small: the archive's **path** (never the model), the scan
paths (or the :class:`~ptycho_rs.Scan` objects, scattered to the workers once), the output
directories and the settings. Every worker process loads the model the first time it meets the
archive and keeps it in a per-process cache keyed by the archive's path (a file replaced at the
same path, i.e. another size or modification time, is loaded again). So the archive, the scan
files and the output directories must be reachable by every worker under the same absolute paths
(a shared file system); relative paths are made absolute on the client.

The cached :class:`~ptycho_rs.Model` keeps its network loaded (per device) after its first
reconstruction, so a worker reads the archive's weights once, whatever the number of scans.

Each task runs the same code as :meth:`ptycho_rs.Model.reconstruct` in one process, so its object
is the same array. The native code is multi-threaded (rayon): with several workers on one machine
give each ``threads_per_worker=1`` and split the cores with ``RAYON_NUM_THREADS`` in the workers'
environment (``LocalCluster(..., env={"RAYON_NUM_THREADS": "2"})``); results do not depend on the
thread count.

Needs ``dask.distributed`` (``pip install "dask[distributed]"``, or the ``dask`` extra of
ptycho-rs); ``import ptycho_rs`` itself never imports Dask.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict, overload

import numpy as np

try:
    from distributed import Client, Future, wait
except ImportError as err:  # no Dask: tests/test_dask.py::test_dask_stays_optional
    raise ImportError(
        'ptycho_rs.dask needs Dask\'s distributed scheduler: pip install "dask[distributed]" '
        "(the dask extra of ptycho-rs installs it)"
    ) from err

from . import ARCHIVE_NAME, Model, PathLike, Reconstruction, Scan, _settings_json, load_model

__all__ = [
    "RECONSTRUCTION_FILE",
    "WorkerStats",
    "clear_worker_cache",
    "reconstruct_scans",
    "submit_scans",
    "worker_stats",
]

#: File each task writes in its output directory (the keys of ``ptycho infer``'s file).
RECONSTRUCTION_FILE = "reconstruction.npz"


class WorkerStats(TypedDict):
    """What one worker process did (see :func:`worker_stats`)."""

    #: Process id of the worker.
    pid: int
    #: Model loads per archive path since the process started (1 each with a warm cache).
    model_loads: dict[str, int]
    #: Archives now held in the cache.
    cached: list[str]
    #: Scans this worker reconstructed successfully.
    scans: int


# Per worker process (module globals live once per process): the model cache and its counters.
# The lock makes one load per archive even with several threads per worker.
_lock = threading.Lock()
_models: dict[str, tuple[tuple[int, int], Model]] = {}
_model_loads: dict[str, int] = {}
_scans_done = 0


def _archive_file(archive: str) -> str:
    """The archive file itself (a model directory holds ``wts.h5.zip``)."""
    path = Path(archive)
    return os.fspath(path / ARCHIVE_NAME if path.is_dir() else path)


def _cached_model(archive: str) -> Model:
    """This process's model for ``archive``, loaded on first use (and again if the file at that
    path was replaced)."""
    path = _archive_file(archive)
    st = os.stat(path)
    stamp = (st.st_size, st.st_mtime_ns)
    with _lock:
        hit = _models.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        model = load_model(path)
        _models[path] = (stamp, model)
        _model_loads[path] = _model_loads.get(path, 0) + 1
        return model


def _write_reconstruction(rec: Reconstruction, output_dir: str) -> None:
    """Write ``output_dir/reconstruction.npz`` atomically with the keys of ``ptycho infer``'s
    file (``ptycho evaluate --reconstruction`` reads it): ``object`` complex64 (H, W),
    ``amplitude`` and ``phase`` float32 (H, W), ``origin`` float64 ``[x, y]`` and
    ``stitch_crop`` int64 (0-d)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ptycho-tmp-", dir=out)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f,
                object=rec.object.astype(np.complex64, copy=False),
                amplitude=rec.amplitude.astype(np.float32, copy=False),
                phase=rec.phase.astype(np.float32, copy=False),
                origin=np.asarray(rec.origin, dtype=np.float64),
                stitch_crop=np.asarray(rec.stitch_crop, dtype=np.int64),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out / RECONSTRUCTION_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _reconstruct_task(
    archive: str, scan: Scan | str, output_dir: str | None, device: str, settings: dict[str, Any]
) -> Reconstruction:
    """One scan on a worker: the cached model, :meth:`Model.reconstruct`, the optional file.

    An exception that is not an ``Exception`` (pyo3's ``PanicException`` for a panic in the
    native code, ``KeyboardInterrupt``) becomes a ``RuntimeError``: Dask reports only
    ``Exception`` to the client, which would otherwise wait for the task forever
    (dask/distributed#5846).
    """
    global _scans_done
    try:
        rec = _cached_model(archive).reconstruct(scan, device=device, **settings)
        if output_dir is not None:
            _write_reconstruction(rec, output_dir)
    except Exception:
        raise
    except BaseException as exc:
        raise RuntimeError(f"{type(exc).__name__} in a ptycho_rs.dask task: {exc}") from None
    with _lock:
        _scans_done += 1
    return rec


def _local_stats() -> WorkerStats:
    with _lock:
        return WorkerStats(
            pid=os.getpid(),
            model_loads=dict(_model_loads),
            cached=sorted(_models),
            scans=_scans_done,
        )


def _local_clear() -> int:
    with _lock:
        n = len(_models)
        _models.clear()
        return n


def worker_stats(client: Client) -> dict[str, WorkerStats]:
    """Per worker address: its process id, model loads per archive, cached archives and the
    number of scans it reconstructed (counters live as long as the worker process)."""
    return client.run(_local_stats)


def clear_worker_cache(client: Client) -> dict[str, int]:
    """Drop the cached models on every worker (the load counters stay); returns how many each
    worker dropped."""
    return client.run(_local_clear)


def _absolute(path: PathLike) -> str:
    return os.path.abspath(os.fspath(path))


def submit_scans(
    client: Client,
    model: Model | PathLike,
    scans: Sequence[Scan | PathLike],
    *,
    output_dirs: Sequence[PathLike] | None = None,
    device: str = "cpu",
    **settings: Any,
) -> list[Future]:
    """Submit one reconstruction task per scan and return their futures, in input order.

    Args:
        client: a connected ``dask.distributed.Client``.
        model: a :class:`~ptycho_rs.Model` or the path of its archive (``wts.h5.zip`` or a
            directory holding one); only the path is sent, so keep a Model made by
            :func:`ptycho_rs.train` without ``output_dir`` alive until the futures are done (its
            temporary archive goes with it).
        scans: scan NPZ paths (read by the workers) or :class:`~ptycho_rs.Scan` objects
            (scattered to the cluster).
        output_dirs: one directory per scan; its task writes ``reconstruction.npz`` there
            (object, amplitude, phase, origin, stitch_crop: the keys of ``ptycho infer``'s file).
        device: the backend on the workers (``cpu``, or ``tch-cpu``/``cuda`` in a build with
            libtorch).
        **settings: inference keys, as :meth:`ptycho_rs.Model.reconstruct` takes them.

    Each future's result is a :class:`~ptycho_rs.Reconstruction`, or it raises the worker's
    exception (``ValueError``, ``OSError``, ... as in one process). With many scans and
    ``output_dirs``, ``distributed.as_completed(futures)`` lets you release each result as it
    arrives instead of holding every object.
    """
    archive = _absolute(model.archive if isinstance(model, Model) else model)
    if output_dirs is not None:
        if len(output_dirs) != len(scans):
            raise ValueError(f"output_dirs: {len(output_dirs)} directories for {len(scans)} scans")
        outs: list[str | None] = [_absolute(d) for d in output_dirs]
        repeated = [d for d, n in Counter(outs).items() if n > 1]
        if repeated:
            raise ValueError(f"output_dirs: {repeated[0]} is given for more than one scan")
    else:
        outs = [None] * len(scans)
    _settings_json(settings)  # a value that is not a number, string, bool or path fails here
    settings = dict(settings)

    args: list[Any] = [s if isinstance(s, Scan) else _absolute(s) for s in scans]
    objects = [i for i, s in enumerate(args) if isinstance(s, Scan)]
    if objects:
        scattered = client.scatter([args[i] for i in objects], hash=False)
        for i, fut in zip(objects, scattered, strict=True):
            args[i] = fut
    return [
        client.submit(_reconstruct_task, archive, scan, out, device, settings, pure=False)
        for scan, out in zip(args, outs, strict=True)
    ]


@overload
def reconstruct_scans(
    client: Client,
    model: Model | PathLike,
    scans: Sequence[Scan | PathLike],
    *,
    output_dirs: Sequence[PathLike] | None = ...,
    device: str = ...,
    errors: Literal["raise"] = ...,
    **settings: Any,
) -> list[Reconstruction]: ...


@overload
def reconstruct_scans(
    client: Client,
    model: Model | PathLike,
    scans: Sequence[Scan | PathLike],
    *,
    output_dirs: Sequence[PathLike] | None = ...,
    device: str = ...,
    errors: Literal["return"],
    **settings: Any,
) -> list[Reconstruction | Exception]: ...


def reconstruct_scans(
    client: Client,
    model: Model | PathLike,
    scans: Sequence[Scan | PathLike],
    *,
    output_dirs: Sequence[PathLike] | None = None,
    device: str = "cpu",
    errors: Literal["raise", "return"] = "raise",
    **settings: Any,
) -> list[Reconstruction] | list[Reconstruction | Exception]:
    """Reconstruct every scan on the cluster and return the reconstructions in input order.

    Arguments as :func:`submit_scans`. With ``errors="raise"`` (default) the exception of the
    first failed scan in input order is raised once all tasks have finished (with a note naming
    the scan); with ``errors="return"`` the failed scans' exceptions take their places in the
    list.
    """
    if errors not in ("raise", "return"):
        raise ValueError(f"errors: expected 'raise' or 'return', got {errors!r}")
    futures = submit_scans(client, model, scans, output_dirs=output_dirs, device=device, **settings)
    try:
        wait(futures)
        failed: dict[int, Exception] = {}
        for i, fut in enumerate(futures):
            if fut.status != "finished":  # "error", or "cancelled" (e.g. by another client)
                try:
                    fut.result()
                except Exception as exc:  # the task's own exception (or CancelledError), kept
                    failed[i] = exc
        if failed and errors == "raise":
            first = min(failed)
            scan = scans[first]
            name = "a Scan object" if isinstance(scan, Scan) else os.fspath(scan)
            error = failed[first]
            error.add_note(f"ptycho_rs.dask: scan {first} ({name}); {len(failed)} of {len(scans)} failed")
            raise error
        results = iter(client.gather([fut for i, fut in enumerate(futures) if i not in failed]))
        return [failed[i] if i in failed else next(results) for i in range(len(futures))]
    finally:
        client.cancel(futures)
