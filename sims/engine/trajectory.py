"""The result of a simulation: a frozen record, saved as ``.npz`` with JSON metadata.

A :class:`Trajectory` holds a batch of ``B`` independent runs recorded at ``T``
common output times. Everything in it lives on the host (NumPy), whatever
backend produced it, so it can be saved, compared and plotted anywhere.

Files are written with :func:`numpy.savez` and read with
``numpy.load(..., allow_pickle=False)``; the metadata is a JSON string stored
inside the archive. Nothing is ever unpickled or evaluated, so a crafted file
can at worst fail to load.
"""

from __future__ import annotations

import json
import os
import platform
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import shown
from .status import FINAL, Status

__all__ = ["Status", "Trajectory", "environment"]


_FORMAT = "solvable.trajectory/1"


def environment() -> dict[str, str]:
    """Versions of the libraries a result depends on, for provenance."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("solvable", "numpy", "scipy", "sympy", "cvxpy", "clarabel", "array-api-compat"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


@dataclass(frozen=True)
class Trajectory:
    """A batch of simulated runs.

    Attributes
    ----------
    times : ndarray, shape (T,)
        Output times: continuous time for gradient flow, step counts for
        discrete algorithms (``meta["time_unit"]`` says which).
    observables : dict of str -> ndarray, each shape (B, T, ...)
        Recorded quantities. After a run stops, converged runs repeat their
        final value; runs that diverged or failed hold NaN.
    final : dict of str -> ndarray, each shape (B, ...)
        Parameters at each run's stopping point (last finite state for a
        diverged run).
    status : ndarray of str, shape (B,)
        One of :data:`sims.engine.status.FINAL` per run (see :class:`Status` for each one's meaning).
    stop_step : ndarray of int, shape (B,)
        Steps taken by each run when it stopped (for a diverged run: the step
        that produced the first non-finite or blown-up value).
    stop_time : ndarray of float, shape (B,)
        Time at which each run stopped.
    meta : dict
        JSON-serialisable provenance: model, problem parameters, algorithm,
        hyper-parameters, seed, backend, dtype, library versions.
    """

    times: np.ndarray
    observables: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    status: np.ndarray
    stop_step: np.ndarray
    stop_time: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=float)
        if times.ndim != 1:
            raise ValueError(f"times must be 1-D; got shape {times.shape}")
        status = np.asarray(self.status).astype(str)
        if status.ndim != 1:
            raise ValueError(f"status must be 1-D; got shape {status.shape}")
        batch = status.shape[0]
        unknown = set(status.tolist()) - set(FINAL)
        if unknown:
            raise ValueError(f"status values must be in {[str(s) for s in FINAL]}; got {sorted(unknown)}")
        for name, arr in self.observables.items():
            if np.asarray(arr).shape[:2] != (batch, times.shape[0]):
                raise ValueError(
                    f"observable {shown(name)} must have shape (B={batch}, T={times.shape[0]}, ...); "
                    f"got {np.asarray(arr).shape}"
                )
        for name, arr in self.final.items():
            if np.asarray(arr).shape[:1] != (batch,):
                raise ValueError(f"final[{shown(name)}] must have leading batch axis {batch}; got {np.asarray(arr).shape}")
        for name in ("stop_step", "stop_time"):
            if np.asarray(getattr(self, name)).shape != (batch,):
                raise ValueError(f"{name} must have shape ({batch},)")
        json.dumps(self.meta)  # metadata must be JSON: refuse anything that is not
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "stop_step", np.asarray(self.stop_step, dtype=np.int64))
        object.__setattr__(self, "stop_time", np.asarray(self.stop_time, dtype=float))

    @property
    def batch_size(self) -> int:
        """Number of runs ``B``."""
        return int(self.status.shape[0])

    @property
    def converged(self) -> np.ndarray:
        """Boolean mask of runs that converged."""
        return self.status == Status.CONVERGED

    def run(self, i: int) -> "Trajectory":
        """The ``i``-th run alone, as a trajectory of batch size one."""
        sl = slice(i, i + 1) if i != -1 else slice(-1, None)
        return Trajectory(
            times=self.times,
            observables={k: v[sl] for k, v in self.observables.items()},
            final={k: v[sl] for k, v in self.final.items()},
            status=self.status[sl],
            stop_step=self.stop_step[sl],
            stop_time=self.stop_time[sl],
            meta=self.meta,
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the trajectory to ``path`` (``.npz`` is appended if missing)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        arrays: dict[str, np.ndarray] = {
            "format": np.asarray(_FORMAT),
            "meta": np.asarray(json.dumps(self.meta, sort_keys=True)),
            "times": self.times,
            "status": self.status,
            "stop_step": self.stop_step,
            "stop_time": self.stop_time,
        }
        for name, arr in self.observables.items():
            arrays[f"observables.{name}"] = np.asarray(arr)
        for name, arr in self.final.items():
            arrays[f"final.{name}"] = np.asarray(arr)
        for key, arr in arrays.items():
            if arr.dtype.kind == "O":
                raise TypeError(f"{key} has dtype object; only numeric and string arrays are saved")
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Trajectory":
        """Read a trajectory written by :meth:`save` (never unpickles anything).

        Raises
        ------
        ValueError
            If the file is not a solvable trajectory (wrong format tag, object
            arrays, malformed metadata or inconsistent shapes).
        """
        try:
            # the file is opened here, not by np.load, which leaves it open when a zip header is garbage
            with open(path, "rb") as fh:
                data = np.load(fh, allow_pickle=False)
                if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
                    raise ValueError(f"{path} is not a {_FORMAT} file")
                with data:
                    files = set(data.files)
                    if "format" not in files or str(data["format"]) != _FORMAT:
                        raise ValueError(f"{path} is not a {_FORMAT} file")
                    meta = json.loads(str(data["meta"]))
                    if not isinstance(meta, dict):
                        raise ValueError("trajectory metadata must be a JSON object")
                    return cls(
                        times=data["times"],
                        observables={k.split(".", 1)[1]: data[k] for k in files if k.startswith("observables.")},
                        final={k.split(".", 1)[1]: data[k] for k in files if k.startswith("final.")},
                        status=data["status"],
                        stop_step=data["stop_step"],
                        stop_time=data["stop_time"],
                        meta=meta,
                    )
        except (OSError, KeyError, json.JSONDecodeError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"cannot read trajectory {path}: {exc}") from exc
