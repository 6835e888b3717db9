"""Array backends: pick a namespace, move host data onto it, bring results back.

Every simulator is written once against the Python array API standard. This
module is the only place that knows which concrete libraries exist:

* ``"numpy"`` (default) -- ``array_api_compat.numpy``;
* ``"cupy"`` -- ``array_api_compat.cupy`` (extra ``solvable[gpu]``);
* ``"torch"`` -- ``array_api_compat.torch`` (extra ``solvable[torch]``);
* ``"array_api_strict"`` -- the strict reference implementation, used by the
  tests to find anything that would break on a GPU without needing one
  (extra ``solvable[test]``).

Randomness never happens on the backend: draws are made on the host with
:func:`numpy.random.default_rng` and moved with ``xp.asarray``, so a seed gives
bit-identical initial states on every backend.
"""

from __future__ import annotations

import importlib
import numbers
from types import ModuleType
from typing import Any

import numpy as np
from ._validate import shown

__all__ = [
    "BACKENDS",
    "DTYPES",
    "asarray",
    "backend_name",
    "host_to",
    "check_seed",
    "device_of",
    "get_dtype",
    "host_rng",
    "init_rng",
    "namespace",
    "resolve_device",
    "to_numpy",
    "xp_of",
]

# NumPy >= 2 implements the array API itself; using it directly avoids a
# wrapper call on every operation (a third of the time of a small step).
_NUMPY_IS_ARRAY_API = int(np.__version__.split(".")[0]) >= 2

#: Backend names accepted by :func:`namespace`, with the module that provides
#: each and the optional extra that installs it.
BACKENDS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy" if _NUMPY_IS_ARRAY_API else "array_api_compat.numpy", "core"),
    "cupy": ("array_api_compat.cupy", "gpu"),
    "torch": ("array_api_compat.torch", "torch"),
    "array_api_strict": ("array_api_strict", "test"),
}

#: Floating dtypes a simulation may run in.
DTYPES = ("float64", "float32")

# The library each backend wraps; importing the wrapper alone does not prove
# the library itself is installed (array_api_compat.cupy imports lazily).
_UNDERLYING = {"cupy": "cupy", "torch": "torch", "array_api_strict": "array_api_strict"}


def namespace(name: str = "numpy") -> ModuleType:
    """Return the array-API namespace for backend ``name``.

    Parameters
    ----------
    name : {"numpy", "cupy", "torch", "array_api_strict"}
        The backend.

    Returns
    -------
    module
        A namespace following the array API standard.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`BACKENDS`.
    ImportError
        If the backend's library is not installed; the message names the
        optional extra that installs it.

    Examples
    --------
    >>> xp = namespace("numpy")
    >>> float(xp.sum(xp.ones(3)))
    3.0
    """
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, one of {sorted(BACKENDS)}; got {type(name).__name__}")
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}; got {shown(name)}")
    module_name, extra = BACKENDS[name]
    try:
        if name in _UNDERLYING:
            importlib.import_module(_UNDERLYING[name])
        return importlib.import_module(module_name)
    except ImportError as exc:
        hint = "it is a core dependency" if extra == "core" else f"pip install 'solvable[{extra}]'"
        raise ImportError(f"backend {shown(name)} is not installed ({hint}): {exc}") from exc


def xp_of(x: Any) -> ModuleType:
    """The array-API namespace of ``x`` (NumPy itself for NumPy arrays on NumPy >= 2)."""
    if _NUMPY_IS_ARRAY_API and isinstance(x, np.ndarray):
        return np
    from array_api_compat import array_namespace

    if _is_torch(x):
        # torch.compile traces this function; array_namespace's cached type tests would each be a warning there
        if not _TORCH_NS:
            _TORCH_NS.append(array_namespace(x))
        return _TORCH_NS[0]
    return array_namespace(x)


_TORCH_NS: list[ModuleType] = []  # array_api_compat.torch, once a tensor has been seen


def _is_torch(x: Any) -> bool:
    return type(x).__module__.partition(".")[0] == "torch"


def device_of(x: Any) -> Any:
    """The device of array ``x`` (``array_api_compat.device``; a torch tensor's own ``device``, which
    torch.compile traces without array_api_compat's cached type tests)."""
    if _is_torch(x):
        return x.device
    from array_api_compat import device

    return device(x)


def backend_name(xp: ModuleType) -> str:
    """Name under which :func:`namespace` returns ``xp`` (inverse of :func:`namespace`)."""
    mod = getattr(xp, "__name__", "")
    for name, (module_name, _) in BACKENDS.items():
        if mod in (module_name, name, "array_api_compat." + name):
            return name
    return mod


def get_dtype(xp: ModuleType, dtype: str = "float64") -> Any:
    """The backend's floating dtype object for ``dtype`` ("float64" or "float32")."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {shown(dtype)}")
    return getattr(xp, dtype)


def resolve_device(xp: ModuleType, device: Any) -> Any:
    """The device object of backend ``xp`` that ``device`` names.

    ``None`` is the backend's default device (for torch, the CPU unless
    ``torch.set_default_device`` says otherwise). A string is read as each
    backend reads it: ``"cpu"`` for NumPy; ``"cuda"``, ``"cuda:1"``, ``"cpu"``
    for torch; ``"0"``, ``"cuda:0"`` (an ordinal) for CuPy; a device name
    (``"device1"``) for ``array_api_strict``. Anything else (a device object
    of the backend) is passed through.

    Raises
    ------
    ValueError
        If the string names no device of this backend.
    """
    if device is None or not isinstance(device, str):
        return device
    name = backend_name(xp)
    try:
        if name == "numpy":
            if device != "cpu":
                raise ValueError
            return device
        if name == "torch":
            import torch

            return torch.device(device)
        if name == "cupy":
            import cupy

            ordinal = device.split(":", 1)[1] if device.startswith("cuda:") else ("0" if device == "cuda" else device)
            dev = cupy.cuda.Device(int(ordinal))
            dev.compute_capability  # raises for an ordinal with no device
            return dev
        if name == "array_api_strict":
            import array_api_strict

            return array_api_strict.Device(device)
    except (ValueError, RuntimeError, TypeError):
        pass
    else:
        return device
    forms = {"numpy": '"cpu"', "torch": '"cpu", "cuda", "cuda:N"', "cupy": '"N" or "cuda:N" (an ordinal)',
             "array_api_strict": '"CPU_DEVICE", "device1", "device2"'}.get(name, "a device of the backend")
    raise ValueError(f"device must name a device of backend {shown(name)}: {forms}; got {shown(device)}")


def asarray(x: Any, xp: ModuleType, dtype: str | None = "float64", device: Any = None) -> Any:
    """Move host data ``x`` to backend ``xp`` (on ``device``, its default when None; a string is read by
    :func:`resolve_device`) with an explicit dtype.

    ``dtype=None`` keeps integer and boolean data as they are (used for
    index schedules).
    """
    device = resolve_device(xp, device)
    # contiguous: torch refuses a view with negative strides (a reversed eigenvector order, say)
    host = np.ascontiguousarray(x)
    if dtype is None:
        return xp.asarray(host, device=device)
    return xp.asarray(host.astype(dtype, copy=False), dtype=get_dtype(xp, dtype), device=device)


def host_to(x: Any, like: Any, dtype: Any = None) -> Any:
    """Host data ``x`` as an array of ``like``'s namespace, on ``like``'s device, in ``dtype`` (``like``'s
    dtype when None; ``bool`` for masks). Constants built inside a model's functions go through here, so
    they land where the state is (``array_api_strict`` with two devices tests that)."""
    xp = xp_of(like)
    host = np.ascontiguousarray(x)  # torch refuses negative strides
    dt = like.dtype if dtype is None else dtype
    if dt == xp.bool:
        return xp.asarray(host.astype(bool), dtype=dt, device=device_of(like))
    return xp.asarray(host, dtype=dt, device=device_of(like))


def to_numpy(x: Any) -> np.ndarray:
    """Bring a backend array (or scalar) back to a host :class:`numpy.ndarray`."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (numbers.Number, np.generic, list, tuple)):
        return np.asarray(x)
    module = type(x).__module__.split(".")[0]
    if module == "cupy":
        return x.get()
    if module == "torch":
        return x.detach().cpu().numpy()
    try:
        return np.from_dlpack(x)
    except (TypeError, BufferError, RuntimeError, AttributeError):
        return np.asarray(x)


def check_seed(seed: Any) -> int:
    """Validate a seed: a non-negative integer (``bool`` is refused)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer; got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed}")
    return int(seed)


def host_rng(seed: int) -> np.random.Generator:
    """The host random generator every draw in solvable comes from."""
    return np.random.default_rng(check_seed(seed))


def init_rng(seed: int) -> np.random.Generator:
    """The host generator of random initial states: the stream ``(seed, 1)`` of :class:`numpy.random.SeedSequence`.

    Independent of :func:`host_rng` (``default_rng(seed)``), which makes the problems: with one
    stream for both, a problem and an initialisation drawn from the same seed repeat the same
    numbers whenever their shapes agree (a "random" start inside the target's singular subspace).
    """
    return np.random.default_rng(np.random.SeedSequence(check_seed(seed), spawn_key=(1,)))
