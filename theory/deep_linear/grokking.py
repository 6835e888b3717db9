"""Levi, Beck & Bar-Sinai 2024: grokking in linear estimators -- Marchenko-Pastur moments, the train and test losses,
the accuracy and the grokking time.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy import optimize, special

from .._format import shown
from .common import _positive

__all__ = ["grokking_accuracy", "grokking_losses", "grokking_time", "grokking_time_asymptote", "mp_moments"]


def _check_lambda(lam: Any) -> float:
    lam = _positive("lam", lam)
    if lam == 1:
        raise ValueError("lam = d_in / N_tr = 1 is the interpolation threshold, where the spectrum reaches 0")
    return lam


@functools.lru_cache(maxsize=4)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1], computed once (numpy's leggauss refines the roots by Newton
    steps on an n x n companion matrix: 20 ms at n = 400, and the grokking times call it hundreds of times)."""
    x, w = np.polynomial.legendre.leggauss(n)
    x.flags.writeable = w.flags.writeable = False
    return x, w


def mp_moments(lam: float, fn: Any) -> float:
    r""":math:`E_\nu[f(\nu)]` under the Marchenko-Pastur law of ratio :math:`\lambda` (unit variance).

    Density :math:`\sqrt{(\nu_+ - \nu)(\nu - \nu_-)}/(2\pi\lambda\nu)` on
    :math:`[\nu_-, \nu_+] = [(1 \mp \sqrt\lambda)^2]`, plus an atom
    :math:`1 - 1/\lambda` at 0 when :math:`\lambda > 1`. Computed with the
    substitution :math:`\nu = m + r\cos\theta` (smooth integrand) and Gauss-Legendre.
    """
    lam = _check_lambda(lam)
    lo, hi = (1 - math.sqrt(lam)) ** 2, (1 + math.sqrt(lam)) ** 2
    m, r = (hi + lo) / 2, (hi - lo) / 2
    x, wts = _gauss_legendre(400)
    theta = (x + 1) * math.pi / 2
    nu = m + r * np.cos(theta)
    dens = (r * np.sin(theta)) ** 2 / (2 * math.pi * lam * nu)  # density * d(nu)/d(theta)
    val = float(np.sum(wts * dens * np.asarray(fn(nu), dtype=float)) * math.pi / 2)
    if lam > 1:
        val += (1 - 1 / lam) * float(np.asarray(fn(np.zeros(1)), dtype=float)[0])
    return val


def grokking_losses(t: Any, lam: float, eta: float, gamma: float = 0.0, d_out: int = 1,
                    init_scale: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Training and generalisation losses of the linear teacher-student model under gradient flow.

    Model (Levi, Beck & Bar-Sinai 2024, Sec. 2): student :math:`W` from 0,
    teacher :math:`W^*` with :math:`E\|W^*\|^2 = 1` per output, Gaussian
    inputs, :math:`\lambda = d_{in}/N_{tr}`, loss
    :math:`\frac{1}{N_{tr}}\sum\|Wx - y\|^2 + \frac{\gamma}{2}\|W\|^2` per output, learning rate
    :math:`\eta`. On an eigendirection :math:`\nu` of the empirical
    covariance the error is
    :math:`\frac{\gamma}{2\nu + \gamma} + \frac{2\nu}{2\nu + \gamma}e^{-\eta(2\nu + \gamma)t}`
    (times :math:`-w^*`), so

    .. math::
        L_{gen}(t) = E_\nu[e(\nu, t)^2], \qquad L_{tr}(t) = E_\nu[\nu\, e(\nu, t)^2],

    which for :math:`\gamma = 0` are the paper's
    :math:`E_\nu[e^{-4\eta\nu t}]` and :math:`E_\nu[\nu e^{-4\eta\nu t}]`
    (:math:`\nu` Marchenko-Pastur, :func:`mp_moments`). With :math:`d_{out}`
    outputs the loss is averaged over them (as :func:`sims.deep_linear.simulate_teacher_student`
    does), so each output learns at the rate :math:`\eta/d_{out}`: times scale with :math:`d_{out}`.

    ``init_scale`` :math:`\sigma_0`: a student started at :math:`W_0` with i.i.d.
    :math:`N(0, \sigma_0^2/d_{in})` entries, independent of the teacher (Levi et al. 2024 vary the
    initialisation; this form derived here). The error is then
    :math:`-e(\nu, t)\,w^* + e^{-\eta(2\nu + \gamma)t}w_0` on each direction, and the independent
    initial part adds :math:`\sigma_0^2 E_\nu[e^{-2\eta(2\nu + \gamma)t}]` to :math:`L_{gen}` (times
    :math:`\nu` for :math:`L_{tr}`). Without weight decay both losses are :math:`(1 + \sigma_0^2)` times
    those from 0, so the grokking time at :math:`\epsilon` is the one from 0 at
    :math:`\epsilon/(1 + \sigma_0^2)`: a larger initialisation delays grokking.
    """
    lam, eta = _check_lambda(lam), _positive("eta", eta)
    if isinstance(d_out, bool) or not isinstance(d_out, (int, np.integer)) or d_out < 1:
        raise ValueError(f"d_out must be an integer >= 1; got {shown(d_out)}")
    eta = eta / d_out
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be finite and >= 0; got {shown(gamma)}")
    if not (isinstance(init_scale, (int, float, np.floating)) and math.isfinite(init_scale) and init_scale >= 0):
        raise ValueError(f"init_scale must be a finite number >= 0; got {shown(init_scale)}")
    t = np.atleast_1d(np.asarray(t, dtype=float))
    s2 = float(init_scale) ** 2

    def err2(nu: np.ndarray, tt: float) -> np.ndarray:
        denom = 2 * nu + gamma
        safe = np.where(denom > 0, denom, 1.0)
        decay = np.exp(-eta * denom * tt)
        e = np.where(denom > 0, gamma / safe + 2 * nu / safe * decay, 1.0)
        return e**2 + s2 * decay**2

    gen = np.array([mp_moments(lam, lambda nu, tt=tt: err2(nu, tt)) for tt in t])
    tr = np.array([mp_moments(lam, lambda nu, tt=tt: nu * err2(nu, tt)) for tt in t])
    return tr, gen


def grokking_accuracy(loss: Any, eps: float, d_out: int = 1) -> np.ndarray:
    r"""Fraction of points whose squared error is below ``eps`` when the loss per output is ``loss``.

    With Gaussian errors of variance :math:`L` on each of :math:`d_{out}`
    outputs, :math:`\|e\|^2/L \sim \chi^2_{d_{out}}`, so
    :math:`A = P(\chi^2_{d_{out}} \le \epsilon/L)`; for :math:`d_{out} = 1` this is
    :math:`\operatorname{erf}(\sqrt{\epsilon/2L})` (Levi et al. 2024, Eq. 4).
    """
    eps = _positive("eps", eps)
    loss = np.asarray(loss, dtype=float)
    return special.gammainc(d_out / 2, eps / (2 * np.maximum(loss, 1e-300)))


def grokking_time(lam: float, eta: float, eps: float, d_out: int = 1, gamma: float = 0.0,
                  init_scale: float = 0.0) -> float:
    r"""Grokking time: the delay between training and test accuracy reaching :math:`\operatorname{erf}(\sqrt2)`.

    For :math:`d_{out} = 1` that level is reached when the loss equals
    :math:`\epsilon/4`, the definition of Levi et al. 2024 (Sec. 3): the gap
    :math:`t_{gen} - t_{tr}` between the times the two losses reach
    :math:`\epsilon/4`, from the exact integrals of :func:`grokking_losses`. For
    :math:`d_{out} > 1` the same accuracy level is reached at the loss
    :math:`\epsilon/q` with :math:`q` the :math:`\chi^2_{d_{out}}` quantile, and
    the output-averaged loss slows each output to the rate :math:`\eta/d_{out}`.

    ``init_scale``: the student's initial scale :math:`\sigma_0` (see :func:`grokking_losses`).

    Returns ``inf`` when the generalisation loss never gets there (e.g.
    :math:`\lambda > 1` without weight decay: it plateaus at :math:`1 - 1/\lambda`).
    """
    lam, eta, eps = _check_lambda(lam), _positive("eta", eta), _positive("eps", eps)
    if isinstance(d_out, bool) or not isinstance(d_out, (int, np.integer)) or d_out < 1:
        raise ValueError(f"d_out must be an integer >= 1; got {shown(d_out)}")
    level = special.erf(math.sqrt(2))
    target = eps / special.gammaincinv(d_out / 2, level) / 2  # loss at which the accuracy reaches the level
    times = {}
    for which in (0, 1):
        def gap(t: float, which: int = which) -> float:
            losses = grokking_losses([t], lam, eta, gamma, d_out, init_scale)
            return math.log(max(losses[which][0], 1e-300)) - math.log(target)

        if gap(1e9 * d_out / eta) > 0:
            return math.inf
        hi = d_out / eta
        while gap(hi) > 0:
            hi *= 2
        times[which] = optimize.brentq(gap, 0.0, hi, xtol=1e-12, rtol=1e-12)
    return times[1] - times[0]


def grokking_time_asymptote(lam: float, eta: float) -> float:
    r"""The :math:`\epsilon \to 0` limit of the grokking time for :math:`\lambda < 1`, :math:`\gamma = 0`:
    :math:`\ln(1/(1 - \sqrt\lambda)) / (2\eta(1 - \sqrt\lambda)^2)` (Levi et al. 2024, Eq. 9).

    Both losses then decay like :math:`e^{-4\eta\nu_- t}` with
    :math:`\nu_- = (1 - \sqrt\lambda)^2`, the training loss with an extra factor
    :math:`\nu_-`, whence the delay :math:`\ln(1/\nu_-)/(4\eta\nu_-)`.
    """
    lam, eta = _check_lambda(lam), _positive("eta", eta)
    if lam > 1:
        raise ValueError("the asymptote is for lam < 1 (for lam > 1 the test loss never reaches eps/4)")
    g = 1 - math.sqrt(lam)
    return math.log(1 / g) / (2 * eta * g**2)
