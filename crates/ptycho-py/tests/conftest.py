"""Shared fixtures: the real `ptycho` binary and scans it simulates (module-scoped: simulated once)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def ptycho_binary() -> Path:
    """PTYCHO_BIN, else the workspace's debug build (`.ci/run` builds it with the Rust tests)."""
    path = Path(os.environ.get("PTYCHO_BIN", REPO / "target" / "debug" / "ptycho"))
    if not path.is_file():
        pytest.fail(f"{path}: the ptycho binary is missing (cargo build -p ptycho-cli, or set PTYCHO_BIN)")
    return path


def run_ptycho(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(ptycho_binary()), *map(str, args)], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        pytest.fail(f"ptycho {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.npz (seed 1) and test.npz (seed 2): 128 patterns of N = 64, 1e9 photons, Poisson counts."""
    d = tmp_path_factory.mktemp("sim")
    for name, seed in (("train", 1), ("test", 2)):
        run_ptycho("simulate", "--n-images", "128", "--object-size", "160", "--seed", seed, "--output", d / f"{name}.npz")
    return d
