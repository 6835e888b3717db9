r"""Generative deep linear networks trained with the Bures-Wasserstein loss: critical points and minimisers.

Bréchet, Papagiannouli, An & Montúfar 2023 ("Critical points and convergence analysis of generative
deep linear networks trained with Bures-Wasserstein loss", ICML 2023) fit a target covariance
:math:`\Sigma_0` by the covariance :math:`\Sigma = WW^\top` of a deep linear generator
:math:`x = W_N\cdots W_1 z`, :math:`z \sim N(0, I)`, whose rank is at most the narrowest width
:math:`k`, with the squared Bures-Wasserstein distance (the 2-Wasserstein distance of the two centred
Gaussians)

.. math:: B^2(\Sigma_0, \Sigma) = \operatorname{tr}\Sigma_0 + \operatorname{tr}\Sigma
          - 2\operatorname{tr}\big(\Sigma_0^{1/2}\Sigma\,\Sigma_0^{1/2}\big)^{1/2},

and, because its Hessian can blow up at rank-deficient :math:`\Sigma`, with a smooth perturbation of
it. The paper's text could not be read here beyond its abstract; the closed forms below are derived
in this module's docstrings, from two standard facts, and the claims check them against simulation:

* (Eckart-Young, :math:`\tau = 0`.) :math:`B^2(\Sigma_0, WW^\top) = \min_{U \in O}
  \|\Sigma_0^{1/2} - WU\|_F^2`, so over rank-:math:`k` covariances the minimum is the best rank-:math:`k`
  approximation of :math:`\Sigma_0^{1/2}`: keep the top :math:`k` eigenpairs of :math:`\Sigma_0`.
* (Fixed points of the Brenier map.) The gradient in :math:`W` is :math:`2(I - T)W` with
  :math:`T = \Sigma_0^{1/2}(\Sigma_0^{1/2}(\Sigma + \tau I)\Sigma_0^{1/2})^{-1/2}\Sigma_0^{1/2}` the
  optimal transport map from :math:`N(0, \Sigma + \tau I)` to :math:`N(0, \Sigma_0)`, so a critical point
  has :math:`T = I` on the range of :math:`W`.

The perturbation used here is :math:`B^2(\Sigma_0, WW^\top + \tau I)` (a latent noise of variance
:math:`\tau` added to the generator's output): smooth for :math:`\tau > 0` and :math:`\Sigma_0 \succ 0`,
and :math:`B^2` itself at :math:`\tau = 0`. That this is the paper's exact perturbation is an assumption
(their abstract says "a smooth perturbative version of the loss"); every statement below is proved for
this form.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.linalg

__all__ = ["CriticalPoint", "bw_distance_sq", "bw_critical_points", "bw_minimiser"]

SOURCE = ("Bréchet, Papagiannouli, An & Montúfar 2023, 'Critical points and convergence analysis of generative "
          "deep linear networks trained with Bures-Wasserstein loss' (ICML)")


@dataclass(frozen=True)
class CriticalPoint:
    """A critical covariance :math:`\\Sigma_J` of the (perturbed) Bures-Wasserstein loss over rank <= k.

    Attributes
    ----------
    support : tuple of int
        The eigenpairs of :math:`\\Sigma_0` it keeps (indices into the eigenvalues sorted decreasingly).
    covariance : ndarray (d, d)
        :math:`\\Sigma_J = \\sum_{i \\in J} (\\lambda_i - \\tau) v_i v_i^\\top`.
    loss : float
        :math:`\\sum_{i \\notin J} (\\sqrt{\\lambda_i} - \\sqrt{\\tau})^2`.
    """

    support: tuple[int, ...]
    covariance: np.ndarray
    loss: float


def _eig(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s0 = np.asarray(target, dtype=float)
    if s0.ndim != 2 or s0.shape[0] != s0.shape[1] or not np.allclose(s0, s0.T, atol=1e-12 * max(1.0, np.abs(s0).max())):
        raise ValueError(f"target must be a symmetric (d, d) matrix; got shape {s0.shape}")
    lam, vec = np.linalg.eigh((s0 + s0.T) / 2)
    if lam[0] < -1e-12 * max(1.0, lam[-1]):
        raise ValueError(f"target must be positive semi-definite; its smallest eigenvalue is {lam[0]:.3g}")
    return np.maximum(lam[::-1], 0.0), vec[:, ::-1]


def _check_k_tau(k: int, tau: float, d: int) -> tuple[int, float]:
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= d:
        raise ValueError(f"k (the rank bound, the narrowest width) must be an integer in [1, d = {d}]; got {k!r}")
    tau = float(tau)
    if not np.isfinite(tau) or tau < 0:
        raise ValueError(f"tau (the perturbation) must be finite and >= 0; got {tau}")
    return int(k), tau


def bw_distance_sq(target: np.ndarray, cov: np.ndarray) -> float:
    r""":math:`B^2(\Sigma_0, \Sigma) = \operatorname{tr}\Sigma_0 + \operatorname{tr}\Sigma
    - 2\operatorname{tr}(\Sigma_0^{1/2}\Sigma\Sigma_0^{1/2})^{1/2}` (Bures 1969; the 2-Wasserstein distance
    of :math:`N(0, \Sigma_0)` and :math:`N(0, \Sigma)`, Bréchet et al. 2023, Sec. 2), by Schur-based
    matrix square roots (``scipy.linalg.sqrtm``): independent of the eigendecompositions the simulator uses."""
    a = np.asarray(target, dtype=float)
    b = np.asarray(cov, dtype=float)
    root = np.real(scipy.linalg.sqrtm(a))
    inner = np.real(scipy.linalg.sqrtm(root @ b @ root))
    return float(np.trace(a) + np.trace(b) - 2 * np.trace(inner))


def bw_critical_points(target: np.ndarray, k: int, tau: float = 0.0) -> list[CriticalPoint]:
    r"""The critical covariances over rank <= ``k`` that commute with :math:`\Sigma_0`, with their losses.

    With :math:`\Sigma_0 = \sum_i \lambda_i v_i v_i^\top` (:math:`\lambda_1 > \dots > \lambda_d`), a
    covariance :math:`\Sigma = \sum_i \sigma_i v_i v_i^\top` has the transport map
    :math:`T = \sum_i \sqrt{\lambda_i/(\sigma_i + \tau)}\, v_i v_i^\top`; the gradient :math:`2(I - T)W`
    vanishes iff :math:`\lambda_i = \sigma_i + \tau` wherever :math:`\sigma_i > 0`. So the critical points
    are :math:`\Sigma_J = \sum_{i\in J}(\lambda_i - \tau) v_i v_i^\top` for every subset :math:`J` of at most
    :math:`k` indices with :math:`\lambda_i > \tau` (:math:`J = \emptyset` is :math:`W = 0`, where the
    gradient :math:`2(I - T)W` vanishes), with loss
    :math:`\sum_{i\notin J}(\sqrt{\lambda_i} - \sqrt{\tau})^2`. At :math:`\tau = 0` these are Bréchet et
    al.'s critical points of :math:`B^2` over rank-bounded matrices (the eigen-subsets of :math:`\Sigma_0`,
    as for Eckart-Young); derived here, see the module docstring.

    Returns the points sorted by loss (the first is :func:`bw_minimiser`'s).
    """
    lam, vec = _eig(target)
    k, tau = _check_k_tau(k, tau, lam.size)
    alive = [i for i in range(lam.size) if lam[i] > tau]
    gaps = (np.sqrt(lam) - np.sqrt(tau)) ** 2
    out = []
    for size in range(0, min(k, len(alive)) + 1):
        for J in combinations(alive, size):
            idx = list(J)
            cov = (vec[:, idx] * (lam[idx] - tau)) @ vec[:, idx].T
            loss = float(sum(gaps[i] for i in range(lam.size) if i not in J))
            out.append(CriticalPoint(tuple(J), cov, loss))
    return sorted(out, key=lambda c: c.loss)


def bw_minimiser(target: np.ndarray, k: int, tau: float = 0.0) -> CriticalPoint:
    r"""The global minimiser over rank <= ``k``: :math:`\Sigma^\star = \sum_{i \le k,\ \lambda_i > \tau}
    (\lambda_i - \tau) v_i v_i^\top`, loss :math:`\sum_{i > k}(\sqrt{\lambda_i} - \sqrt{\tau})^2` (plus the
    kept modes with :math:`\lambda_i \le \tau`).

    At :math:`\tau = 0`: the top-:math:`k` truncation of :math:`\Sigma_0` with loss
    :math:`\sum_{i>k}\lambda_i`, by Eckart-Young applied to :math:`\Sigma_0^{1/2}` (module docstring);
    unique when :math:`\lambda_k > \lambda_{k+1}`. For :math:`\tau > 0` the best commuting critical point
    (each kept mode gains :math:`(\sqrt{\lambda_i} - \sqrt{\tau})^2`, increasing in :math:`\lambda_i`); that
    no non-commuting point does better is what ``deep_linear.bw_minimiser`` checks by simulation.
    """
    lam, vec = _eig(target)
    k, tau = _check_k_tau(k, tau, lam.size)
    J = tuple(i for i in range(k) if lam[i] > tau)
    idx = list(J)
    cov = (vec[:, idx] * (lam[idx] - tau)) @ vec[:, idx].T
    loss = float(np.sum((np.sqrt(np.delete(lam, idx)) - np.sqrt(tau)) ** 2))
    return CriticalPoint(J, cov, loss)
