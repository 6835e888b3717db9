r"""Linear stability of SGD at a minimum: the exact mean-square criterion and its phase boundary.

Near a minimum :math:`\theta^\star` where every sample's loss is (to second order)
:math:`\ell_i(\theta) = \tfrac12 (\theta - \theta^\star)^\top H_i (\theta - \theta^\star)` (at an
interpolating minimum of the square loss, :math:`H_i = g_ig_i^\top` with :math:`g_i` the gradient of the
sample's output), one SGD step with a mini-batch :math:`S` of :math:`B` of the :math:`n` samples is
:math:`\delta \mapsto (I - \eta H_S)\delta`, :math:`H_S = \frac1B\sum_{i\in S} H_i`, and the second moment
:math:`M = E[\delta\delta^\top]` evolves by the linear map (Wu, Ma & E 2018, "How SGD selects the global
minima in over-parameterized learning", Sec. 3; Ma & Ying 2021)

.. math:: \mathcal T(M) = M - \eta(HM + MH) + \eta^2\big[c\,\tfrac1n\textstyle\sum_i H_i M H_i + (1 - c)\,HMH\big],

:math:`H = \frac1n\sum_i H_i`, with :math:`c = 1/B` for batches drawn with replacement and
:math:`c = (n - B)/(B(n - 1))` without (from :math:`P(i, j \in S) = B(B-1)/(n(n-1))`; :math:`c = 0` at
:math:`B = n` is gradient descent, :math:`c = 1` at :math:`B = 1`). SGD is *linearly stable in mean
square* iff the spectral radius :math:`\rho(\mathcal T) \le 1` on the range of :math:`H` (its null space is
the flat directions along the set of minima, where :math:`\mathcal T` is the identity).

Derived here (the phase boundary in closed form): :math:`\mathcal T = I - \eta\mathcal A + \eta^2\mathcal C`
with :math:`\mathcal A(M) = HM + MH` positive definite on symmetric matrices over the range of :math:`H`
and :math:`\mathcal C` positive semi-definite, both self-adjoint in the Frobenius inner product;
:math:`\mathcal T` maps the positive semi-definite cone into itself, so its spectral radius is its largest
eigenvalue (Krein-Rutman), and that exceeds 1 iff :math:`\langle M, (\eta\mathcal C - \mathcal A)M\rangle > 0`
for some :math:`M`. Hence

.. math:: \eta^\star(B) = 1/\lambda_{\max}(\mathcal C, \mathcal A),

the largest generalised eigenvalue of the pencil: stable for :math:`\eta \le \eta^\star`, unstable above. With
:math:`M = vv^\top` for the top eigenvector of :math:`H`, Jensen gives :math:`\eta^\star \le 2/\lambda_{\max}(H)`,
gradient descent's edge, with equality at :math:`B = n` (Cohen et al. 2021's 2/eta); smaller batches and
Hessians that are less *coherent* across samples (Dexter et al. 2024's notion: their coherence measure is not
reproduced here, its definition could not be read) move the boundary below it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["batch_coefficient", "range_basis", "second_moment_operator", "mean_square_radius", "stability_threshold",
           "second_moment"]


def _hessians(hessians) -> np.ndarray:
    h = np.asarray(hessians, dtype=float)
    if h.ndim != 3 or h.shape[1] != h.shape[2] or h.shape[0] < 1:
        raise ValueError(f"hessians must be an (n, d, d) stack of per-sample Hessians; got shape {h.shape}")
    if not np.all(np.isfinite(h)) or not np.allclose(h, np.swapaxes(h, 1, 2), atol=1e-12 * max(1.0, np.abs(h).max())):
        raise ValueError("hessians must be finite and symmetric")
    return (h + np.swapaxes(h, 1, 2)) / 2


def batch_coefficient(n: int, batch_size: int, replacement: bool = False) -> float:
    """:math:`c` of the module docstring: the weight of :math:`E_i[H_i M H_i]` in :math:`E[H_S M H_S]`."""
    if not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= (10**9 if replacement else n):
        raise ValueError(f"batch_size must be an integer in [1, n = {n}]{' (or above, with replacement)' if replacement else ''}; "
                         f"got {batch_size!r}")
    if replacement:
        return 1.0 / batch_size
    return 0.0 if n == 1 else (n - batch_size) / (batch_size * (n - 1))


def range_basis(h_mean: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis (d, r) of the range of the mean Hessian (eigenvalues above ``rtol`` x the largest):
    the directions the minimum's set does not extend along."""
    evals, evecs = np.linalg.eigh(h_mean)
    keep = evals > rtol * max(float(evals[-1]), np.finfo(float).tiny)
    return evecs[:, keep]


def _sym_basis(r: int) -> np.ndarray:
    """Orthonormal basis (r^2, r(r+1)/2) of the symmetric r x r matrices, flattened row-major."""
    cols = []
    for a in range(r):
        for b in range(a, r):
            e = np.zeros((r, r))
            if a == b:
                e[a, a] = 1.0
            else:
                e[a, b] = e[b, a] = 1 / np.sqrt(2)
            cols.append(e.ravel())
    return np.array(cols).T


def _operators(h: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(A, C) acting on row-major flattened matrices: A(M) = HM + MH, C(M) = c mean(H_i M H_i) + (1 - c) HMH."""
    n, r = h.shape[0], h.shape[1]
    hm = h.mean(axis=0)
    eye = np.eye(r)
    # vec(X M Y) = (X kron Y^T) vec(M) for row-major vec; all matrices here are symmetric
    a_op = np.kron(hm, eye) + np.kron(eye, hm)
    c_op = c * np.einsum("nab,ncd->acbd", h, h).reshape(r * r, r * r) / n + (1 - c) * np.kron(hm, hm)
    return a_op, c_op


def _pencil(hessians, batch_size: int, replacement: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, C, Q): the operators on the symmetric matrices over the range Q of the mean Hessian."""
    h = _hessians(hessians)
    q = range_basis(h.mean(axis=0))
    hr = np.einsum("ia,nij,jb->nab", q, h, q)
    a_op, c_op = _operators(hr, batch_coefficient(h.shape[0], batch_size, replacement))
    s = _sym_basis(q.shape[1])
    return s.T @ a_op @ s, s.T @ c_op @ s, q


def second_moment_operator(hessians, lr: float, batch_size: int, replacement: bool = False) -> np.ndarray:
    r"""The matrix of :math:`\mathcal T` acting on row-major flattened :math:`d\times d` matrices (all of
    :math:`\mathbb R^d`, null space included), for :func:`second_moment`."""
    h = _hessians(hessians)
    a_op, c_op = _operators(h, batch_coefficient(h.shape[0], batch_size, replacement))
    return np.eye(a_op.shape[0]) - lr * a_op + lr**2 * c_op


def second_moment(hessians, lr: float, batch_size: int, m0: np.ndarray, steps: int,
                  replacement: bool = False) -> np.ndarray:
    r""":math:`E[\delta_t\delta_t^\top] = \mathcal T^t(M_0)` for ``t = 0..steps``, shape ``(steps + 1, d, d)``."""
    op = second_moment_operator(hessians, lr, batch_size, replacement)
    m = np.asarray(m0, dtype=float).ravel()
    out = [m]
    for _ in range(int(steps)):
        m = op @ m
        out.append(m)
    d = int(round(np.sqrt(m.size)))
    return np.array(out).reshape(-1, d, d)


def mean_square_radius(hessians, lr: float, batch_size: int, replacement: bool = False) -> float:
    r""":math:`\rho(\mathcal T)` on the range of the mean Hessian: the factor by which :math:`E\|\delta\|^2`
    grows per step in the long run (SGD is stable in mean square iff it is <= 1)."""
    a_op, c_op, _ = _pencil(hessians, batch_size, replacement)
    t = np.eye(a_op.shape[0]) - lr * a_op + lr**2 * c_op
    return float(np.max(np.abs(np.linalg.eigvalsh((t + t.T) / 2))))


def stability_threshold(hessians, batch_size: int, replacement: bool = False) -> float:
    r""":math:`\eta^\star(B) = 1/\lambda_{\max}(\mathcal C, \mathcal A)`: the largest step at which SGD with
    batch ``batch_size`` is linearly stable in mean square (module docstring)."""
    a_op, c_op, _ = _pencil(hessians, batch_size, replacement)
    top = float(scipy.linalg.eigh(c_op, a_op, eigvals_only=True)[-1])
    return 1.0 / top
