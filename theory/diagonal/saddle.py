"""Pesme & Flammarion 2023: Algorithm 1, the saddle-to-saddle limit of the diagonal flow as alpha -> 0."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..convex import check_matrix, check_vector

__all__ = ["SaddleToSaddle", "saddle_to_saddle"]


@dataclass(frozen=True)
class SaddleToSaddle:
    r"""The alpha -> 0 limit of gradient flow in rescaled time (see :func:`saddle_to_saddle`).

    Attributes
    ----------
    times : ndarray, shape (K + 1,)
        Rescaled jump times :math:`\tilde t_0 = 0 < \tilde t_1 < \dots < \tilde t_K`; the
        flow sits at ``saddles[k]`` on :math:`(\tilde t_k, \tilde t_{k+1})`.
    saddles : ndarray, shape (K + 1, d)
        Visited saddles; ``saddles[0] = 0`` and ``saddles[-1]`` is the min-l1 interpolator.
    s : ndarray, shape (K + 1, d)
        The dual variable :math:`s(\tilde t_k)`, in :math:`[-1, 1]^d`.
    active : list of ndarray
        Coordinates allowed to be non-zero on each plateau (``|s_i| = 1``).
    losses : ndarray, shape (K + 1,)
        Training loss on each plateau.
    """

    times: np.ndarray
    saddles: np.ndarray
    s: np.ndarray
    active: list
    losses: np.ndarray

    def at(self, t: Any) -> np.ndarray:
        """The limiting trajectory at rescaled times ``t``: the saddle of the plateau containing each."""
        idx = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right") - 1
        return self.saddles[np.clip(idx, 0, len(self.times) - 1)]


def _sign_constrained_lstsq(X: np.ndarray, y: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """argmin ||X beta - y||^2 subject to sign(beta_i) in {0, signs[i]} (zero outside the support).

    Flipping the columns by their sign turns it into non-negative least squares,
    solved exactly by the Lawson-Hanson active-set method (scipy.optimize.nnls).
    """
    from scipy.optimize import nnls

    beta = np.zeros(X.shape[1])
    support = np.nonzero(signs)[0]
    if support.size:
        coef, _ = nnls(X[:, support] * signs[support], y, maxiter=50 * max(support.size, 10))
        beta[support] = coef * signs[support]
    return beta


def saddle_to_saddle(X: Any, y: Any, *, max_jumps: int | None = None, tol: float = 1e-10) -> SaddleToSaddle:
    r"""The saddle-to-saddle limit of gradient flow as alpha -> 0 (Pesme & Flammarion 2023, Algorithm 1).

    Parametrisation and time constants, derived for this library's model
    :math:`w = u^2 - v^2`, :math:`u(0) = v(0) = \alpha`,
    :math:`L = \|Xw - y\|^2/(2n)`: along the flow
    :math:`u = \alpha e^{-2G}`, :math:`v = \alpha e^{2G}` with
    :math:`G(t) = \int_0^t \nabla L(w(\tau))\,d\tau`, so
    :math:`w_i = \alpha^2(\alpha^{-2S_i} - \alpha^{2S_i})` with
    :math:`S = -2G/\ln(1/\alpha)`. In rescaled time
    :math:`\tilde t = t/\ln(1/\alpha)` the dual variable obeys
    :math:`dS/d\tilde t = -2\nabla L(\beta)`, and as :math:`\alpha \to 0` a
    coordinate can be non-zero only once :math:`|S_i| = 1`, with the sign of
    :math:`S_i`. Hence the algorithm (Pesme & Flammarion's Algorithm 1 with the
    rate 2 of this parametrisation: their jump times are twice ours):

    from :math:`s = 0, \beta = 0, \tilde t = 0`, repeat

    1. :math:`g = \nabla L(\beta) = X^\top(X\beta - y)/n`; stop when :math:`g = 0`;
    2. :math:`\Delta = \min_i \{(1 - \operatorname{sign}(-g_i) s_i)/(2|g_i|) : |s_i| < 1, g_i \ne 0\}`
       (the first new coordinate to reach the boundary);
    3. :math:`s \leftarrow s - 2\Delta g`, :math:`\tilde t \leftarrow \tilde t + \Delta`;
    4. :math:`\beta \leftarrow \arg\min L` subject to :math:`\beta_i \ge 0` where
       :math:`s_i = 1`, :math:`\beta_i \le 0` where :math:`s_i = -1`,
       :math:`\beta_i = 0` elsewhere (a non-negative least-squares problem).

    The last saddle is the minimum-:math:`\ell_1` interpolator (Pesme &
    Flammarion 2023, Theorem 2), which a test checks against the LP.

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
    max_jumps : int, optional
        Safety bound on the number of jumps (default ``10 * d``).
    tol : float
        Relative tolerance on the gradient below which a saddle is stationary.
    """
    X = check_matrix("X", X)
    y = check_vector("y", y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have length n={X.shape[0]} (rows of X); got {y.shape[0]}")
    n, d = X.shape
    max_jumps = 10 * d if max_jumps is None else int(max_jumps)
    s = np.zeros(d)
    beta = np.zeros(d)
    t = 0.0
    times, saddles, duals, actives, losses = [0.0], [beta.copy()], [s.copy()], [np.array([], dtype=int)], []
    scale = np.linalg.norm(X.T @ y) / n
    for _ in range(max_jumps):
        r = X @ beta - y
        losses.append(float(r @ r / (2 * n)))
        g = X.T @ r / n
        inside = np.abs(s) < 1 - 1e-12
        moving = inside & (np.abs(g) > tol * scale)
        if not moving.any():
            break
        target = np.sign(-g)
        delta = np.full(d, np.inf)
        delta[moving] = (1 - target[moving] * s[moving]) / (2 * np.abs(g[moving]))
        i = int(np.argmin(delta))
        step = delta[i]
        s = np.clip(s - 2 * step * g, -1.0, 1.0)
        s[i] = target[i]
        t += step
        boundary = np.where(np.abs(s) >= 1 - 1e-12, np.sign(s), 0.0)
        beta = _sign_constrained_lstsq(X, y, boundary)
        times.append(t)
        saddles.append(beta.copy())
        duals.append(s.copy())
        actives.append(np.nonzero(boundary)[0])
    else:
        raise RuntimeError(f"saddle_to_saddle did not reach a stationary saddle in {max_jumps} jumps")
    return SaddleToSaddle(times=np.array(times), saddles=np.array(saddles), s=np.array(duals), active=actives,
                          losses=np.array(losses))
