"""What the ``gpu`` tests need: a backend that is installed and sees a GPU (skipped otherwise)."""

from __future__ import annotations

import pytest


def available(backend: str) -> bool:
    """Whether ``backend`` ("cupy" or "torch") is installed and has a CUDA device."""
    try:
        if backend == "cupy":
            import cupy

            return cupy.cuda.runtime.getDeviceCount() > 0
        if backend == "torch":
            import torch

            return torch.cuda.is_available()
    except Exception:  # not installed, or no driver: no GPU for this backend
        return False
    return False


def require(backend: str) -> None:
    """Skip the calling test unless ``backend`` has a GPU."""
    if not available(backend):
        pytest.skip(f"{backend} with a CUDA device is not available here")
