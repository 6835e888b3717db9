"""``solvable info``: the array backends this machine has, their devices, the BLAS in use and its threads.

What a user needs before choosing ``--backend`` and ``--device``, and what a
bug report or a benchmark should carry: every backend of
:data:`solvable.sims.engine.backend.BACKENDS` with its version or why it is missing,
the devices each one sees (GPUs by name and memory), which has a compiled
step (``compile=True``, :mod:`solvable.sims.engine.compiled`), NumPy's BLAS and the
thread pools loaded in the process (read by ``threadpoolctl``), and the
variables that cap threads.
"""

from __future__ import annotations

import importlib
import os
import re
import platform
from typing import Any

__all__ = ["collect", "format_info"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES")


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "?")
    except Exception:  # missing, or present but broken (a CUDA library without a driver)
        return None


def _devices(name: str) -> tuple[list[str], str]:
    """The devices backend ``name`` sees, as ``--device`` values with a description, and a note."""
    if name == "numpy":
        return ["cpu"], ""
    if name == "array_api_strict":
        import array_api_strict

        names = [re.sub(r"^.*\('(.*)'\)$", r"\1", repr(d)) for d in array_api_strict.__array_namespace_info__().devices()]
        return names, "simulated devices, for tests"
    if name == "torch":
        import torch

        out = ["cpu"]
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                out.append(f"cuda:{i} ({p.name}, {p.total_memory / 2**30:.0f} GiB)")
            return out, "default device: cpu; pass --device cuda for the GPU"
        return out, "no CUDA device visible to torch"
    if name == "cupy":
        import cupy

        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver
            return [], f"no CUDA device: {exc}"
        out = []
        for i in range(n):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            out.append(f"{i} ({gpu}, {props['totalGlobalMem'] / 2**30:.0f} GiB)")
        return out, "default device: 0"
    return [], ""


def collect() -> dict[str, Any]:
    """Everything ``solvable info`` prints, as a JSON-serialisable dict."""
    import numpy as np

    from solvable.sims.engine.backend import _UNDERLYING, BACKENDS
    from solvable.sims.engine.compiled import COMPILERS

    backends = {}
    for name in BACKENDS:
        module = _UNDERLYING.get(name, "numpy")
        version = _version(module)
        entry: dict[str, Any] = {"installed": version is not None, "version": version,
                                 "compiler": COMPILERS.get(name)}
        if version is not None:
            try:
                entry["devices"], entry["note"] = _devices(name)
            except Exception as exc:  # a backend that imports but cannot list devices
                entry["devices"], entry["note"] = [], f"could not list devices: {exc}"
        else:
            extra = BACKENDS[name][1]
            entry["note"] = f"pip install 'solvable[{extra}]'"
        backends[name] = entry
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = {k: blas.get(k) for k in ("name", "version", "openblas configuration") if blas.get(k)}
    except Exception:  # older NumPy: no dict mode
        blas = {}
    try:
        from threadpoolctl import threadpool_info

        pools = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "threading_layer")}
                 for p in threadpool_info()]
    except ImportError:
        pools = []
    jax = _version("jax")
    peers = {"jax": jax, "diffrax": _version("diffrax"), "scipy": _version("scipy")}
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "backends": backends,
        "numpy_blas": blas,
        "thread_pools": pools,
        "thread_variables": {k: os.environ[k] for k in _THREAD_VARS if k in os.environ},
        "peers": peers,
    }


def format_info(info: dict[str, Any]) -> str:
    """A human-readable rendering of :func:`collect`."""
    lines = [f"python {info['python']} on {info['machine']}", "", "backends (--backend, --device):"]
    for name, b in info["backends"].items():
        if not b["installed"]:
            lines.append(f"  {name:<17} not installed ({b['note']})")
            continue
        devices = ", ".join(b.get("devices") or []) or "none"
        note = f"  [{b['note']}]" if b.get("note") else ""
        compiled = f"  compile=True: {b['compiler']}" if b.get("compiler") else ""
        lines.append(f"  {name:<17} {b['version']:<10} devices: {devices}{note}{compiled}")
    blas = info["numpy_blas"]
    if blas:
        lines += ["", "numpy BLAS: " + ", ".join(f"{v}" for v in blas.values())]
    if info["thread_pools"]:
        lines.append("thread pools:")
        for p in info["thread_pools"]:
            lines.append(f"  {p['user_api']} ({p['internal_api']} {p.get('version') or ''}): "
                         f"{p['num_threads']} threads")
    if info["thread_variables"]:
        lines.append("thread variables: " + ", ".join(f"{k}={v}" for k, v in info["thread_variables"].items()))
    peers = ", ".join(f"{k} {v}" for k, v in info["peers"].items() if v)
    if peers:
        lines.append(f"peers for the benchmarks: {peers}")
    return "\n".join(lines)
