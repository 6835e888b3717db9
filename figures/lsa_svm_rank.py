"""Tarzanagh, Li, Thrampoulidis & Oymak 2023: the rank of the limit, W (Frobenius SVM) vs K Q^T (nuclear SVM).

Normalised singular values of the last iterates of figures.lsa_svm_correlation beside those of the two
Att-SVM solutions: W's limit spreads over many directions like the Frobenius SVM; K Q^T's concentrates on
the few of the nuclear-norm SVM.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import lsa_svm_correlation

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (6, 4)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Singular values of the limits and of the SVMs (the runs of lsa_svm_correlation)."""
    return lsa_svm_correlation.compute(quick=quick, seed=seed, backend=backend, device=device)


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Normalised singular values, log scale."""
    ax = fig.add_subplot(1, 1, 1)
    idx = np.arange(1, data["d"] + 1)
    floor = 1e-16
    for sv, style, label in ((data["W"]["sv"], "C0o-", "W (GD limit)"),
                             (data["W"]["sv_svm"]["fro"], "C0x:", "Frobenius Att-SVM"),
                             (data["KQ"]["sv"], "C1o-", "K Q^T (GD limit)"),
                             (data["KQ"]["sv_svm"]["nuc"], "C1x:", "nuclear Att-SVM")):
        ax.semilogy(idx, np.maximum(sv / sv[0], floor), style, label=label)
    ax.set_xlabel("index $i$")
    ax.set_ylabel(r"$\sigma_i / \sigma_1$")
    ax.set_title(r"rank of the limit: $W$ vs $KQ^\top$ (Tarzanagh et al. 2023)", fontsize=8)
    ax.legend(fontsize=7)
