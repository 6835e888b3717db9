r"""Predictions for deep linear and scalar networks, linear grokking and model collapse.

Conventions (this library): a deep linear network :math:`W = W_N \cdots W_1` is
trained on whitened inputs, :math:`L = \tfrac12\|W - \Phi\|_F^2` with target
:math:`\Phi = U \operatorname{diag}(s) V^\top` (Saxe et al. 2014, Sec. 2, with
unit learning rate: their :math:`\tau = 1`); a scalar network is the
one-by-one case :math:`f = w_1 \cdots w_D`, :math:`L = (f - y)^2/2`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
from scipy import integrate, optimize, special

from .convex import check_vector
from ._format import shown

__all__ = [
    "saxe_mode",
    "saxe_learning_time",
    "end_to_end_mode",
    "gfs",
    "gfs_sharpness",
    "scalar_hessian",
    "sam_edge",
    "mp_moments",
    "grokking_losses",
    "grokking_accuracy",
    "grokking_time",
    "grokking_time_asymptote",
    "model_collapse_error",
    "model_collapse_ridge_error_general",
    "MPTraces",
    "mp_resolvent",
    "model_collapse_ridge_error",
    "model_collapse_optimal_ridge",
]


def _positive(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {shown(x)}")
    return float(x)


def saxe_mode(t: Any, s: float, u0: float, tau: float = 1.0) -> np.ndarray:
    r"""Strength of one mode of a two-layer linear network from a small aligned, balanced start.

    .. math:: u(t) = \frac{s\,e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0},

    the solution of :math:`\tau\dot u = 2u(s - u)`, :math:`u(0) = u_0` (Saxe,
    McClelland & Ganguli 2014, Eq. 6). ``t`` may be an array.
    """
    s, u0, tau = _positive("s", s), _positive("u0", u0), _positive("tau", tau)
    arr = np.asarray(t) if not isinstance(t, (str, bytes)) else np.asarray(None)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"t must be a real number or array; got {type(t).__name__}")
    t = arr.astype(float)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t must be finite and >= 0 (time from the start at u0)")
    # Written with exp(-2st/tau) so that large t does not overflow.
    decay = np.exp(-2 * s * t / tau)
    return s / (1 + (s / u0 - 1) * decay)


def saxe_learning_time(s: float, u0: float, uf: float, tau: float = 1.0) -> float:
    r"""Time for a mode to grow from :math:`u_0` to :math:`u_f`:
    :math:`t = \frac{\tau}{2s}\ln\frac{u_f(s - u_0)}{u_0(s - u_f)}` (Saxe et al. 2014, Eq. 7)."""
    s, u0, uf, tau = _positive("s", s), _positive("u0", u0), _positive("uf", uf), _positive("tau", tau)
    if not u0 < uf < s:
        raise ValueError(f"need u0 < uf < s; got u0={u0}, uf={uf}, s={s}")
    return tau / (2 * s) * math.log(uf * (s - u0) / (u0 * (s - uf)))


def end_to_end_mode(t: Any, s: float, sigma0: float, depth: int) -> np.ndarray:
    r"""A mode of a depth-N linear network under balanced initialisation (Arora, Cohen & Hazan 2018, Thm 1).

    The end-to-end matrix follows
    :math:`\dot W = -\sum_{j=1}^N [WW^\top]^{(j-1)/N}\nabla L(W)[W^\top W]^{(N-j)/N}`; on a
    target-aligned mode this is
    :math:`\dot\sigma = N\sigma^{2-2/N}(s - \sigma)`, integrated here to
    round-off (scipy ``solve_ivp``, DOP853, rtol 1e-13). For N = 2 it is
    :func:`saxe_mode`.
    """
    s, sigma0 = _positive("s", s), _positive("sigma0", sigma0)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1; got {shown(depth)}")
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if np.any(t < 0) or np.any(np.diff(t) < 0):
        raise ValueError("t must be non-negative and non-decreasing")
    n = int(depth)
    sol = integrate.solve_ivp(lambda _, x: n * np.abs(x) ** (2 - 2 / n) * (s - x), (0, float(t[-1]) or 1.0),
                              [sigma0], method="DOP853", rtol=1e-13, atol=1e-300, t_eval=t, dense_output=False)
    return sol.y[0]


# ---------------------------------------------------------------------------
# Scalar networks (Kreisler et al. 2023)
# ---------------------------------------------------------------------------
def gfs(w: Any, y: float) -> np.ndarray:
    r"""The gradient-flow solution from ``w`` for the scalar network :math:`f = \prod_i w_i`.

    Gradient flow on :math:`(f - y)^2/2` conserves :math:`w_i^2 - w_j^2`
    (Kreisler, Nacson, Soudry & Carmon 2023, Sec. 3), so its limit is
    :math:`w_i^{*2} = w_i^2 + c` with :math:`c` the root of
    :math:`\prod_i (w_i^2 + c) = y^2`, signs kept. Valid when the signs of ``w``
    make :math:`\operatorname{sign}(\prod w_i) = \operatorname{sign}(y)` reachable
    without crossing zero (``y`` and ``prod(w)`` of the same sign).
    """
    w = check_vector("w", w)
    y = float(y)
    if not math.isfinite(y) or y == 0:
        raise ValueError(f"y must be finite and non-zero; got {y}")
    if np.any(w == 0) or np.sign(np.prod(w)) != np.sign(y):
        raise ValueError("the gradient-flow solution is described for prod(w) of the sign of y, no w_i = 0")
    w2 = w**2

    def excess(c: float) -> float:
        return float(np.sum(np.log(w2 + c)) - 2 * math.log(abs(y)))

    lo = -w2.min() * (1 - 1e-15)
    hi = max(abs(y) ** (2 / len(w)), 1.0)
    while excess(hi) < 0:
        hi *= 2
    c = optimize.brentq(excess, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    return np.sign(w) * np.sqrt(w2 + c)


def gfs_sharpness(w: Any, y: float) -> float:
    r"""Sharpness of the gradient-flow solution from ``w``: :math:`y^2\sum_i 1/(w_i^2 + c)`.

    At a minimum of :math:`(\prod w - y)^2/2` the Hessian is
    :math:`\nabla f\nabla f^\top` with :math:`\partial_i f = y/w_i^*`, so its top
    eigenvalue is :math:`\|\nabla f\|^2 = y^2\sum_i w_i^{*-2}` (Kreisler et al. 2023,
    Lemma 3.2; derived symbolically in :mod:`theory.deep_linear_symbolic`).
    """
    ws = gfs(w, y)
    return float(y**2 * np.sum(1.0 / ws**2))


def scalar_hessian(w: Any, y: float) -> np.ndarray:
    r"""Exact Hessian of :math:`(\prod_i w_i - y)^2/2`:
    :math:`H_{ij} = \partial_i f\,\partial_j f + (f - y)\,\partial_{ij} f`."""
    w = check_vector("w", w)
    d = len(w)
    f = float(np.prod(w))
    grad = np.array([np.prod(np.delete(w, i)) for i in range(d)])
    second = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            if i != j:
                second[i, j] = np.prod(np.delete(w, [i, j]))
    return np.outer(grad, grad) + (f - y) * second


def sam_edge(eta: Any, rho: Any) -> np.ndarray:
    r"""Largest curvature at which unnormalised SAM is linearly stable on a quadratic.

    On :math:`\tfrac{\lambda}{2}x^2`, unnormalised SAM
    :math:`x \leftarrow x - \eta\nabla L(x + \rho\nabla L(x))` multiplies
    :math:`x` by :math:`1 - \eta\lambda(1 + \rho\lambda)`; stability needs
    :math:`\eta\lambda(1 + \rho\lambda) \le 2`, i.e.

    .. math:: \lambda \le \frac{\sqrt{1 + 8\rho/\eta} - 1}{2\rho}

    (Agarwala & Dauphin 2023, Sec. 3; :math:`\rho \to 0` gives GD's :math:`2/\eta`).
    Normalised SAM replaces :math:`\rho` by :math:`\rho/\|g\|` (Long & Bartlett
    2023) and has no fixed edge.
    """
    eta = np.asarray(eta, dtype=float)
    rho = np.asarray(rho, dtype=float)
    if np.any(~np.isfinite(eta)) or np.any(eta <= 0):
        raise ValueError("eta must be finite and > 0")
    if np.any(~np.isfinite(rho)) or np.any(rho < 0):
        raise ValueError("rho must be finite and >= 0")
    safe = np.where(rho > 0, rho, 1.0)
    return np.where(rho > 0, (np.sqrt(1 + 8 * safe / eta) - 1) / (2 * safe), 2 / eta)


# ---------------------------------------------------------------------------
# Grokking in linear estimators (Levi, Beck & Bar-Sinai 2024)
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# Model collapse (Dohmatob, Feng & Kempe 2024)
# ---------------------------------------------------------------------------
def _collapse_args(n_generations: Any, d: Any, T: Any, T0: Any, sigma: Any, sigma0: Any) -> None:
    for name, v in (("n_generations", n_generations), ("d", d), ("T", T), ("T0", T0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer; got {type(v).__name__}")
    if not (0 <= n_generations <= 10**9 and 1 <= d <= 10**9 and 1 <= T <= 10**12 and T0 <= 10**12):
        raise ValueError("need 0 <= n_generations <= 1e9, 1 <= d <= 1e9 and 1 <= T, T0 <= 1e12; got "
                         f"n_generations={n_generations}, d={d}, T={T}, T0={T0}")
    if T0 <= d + 1:
        raise ValueError(f"T0 must exceed d + 1 = {d + 1} (the generators' inverse-Wishart mean is finite only then)")
    for name, v in (("sigma", sigma), ("sigma0", sigma0)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0 <= v <= 1e100:
            raise ValueError(f"{name} must be a number in [0, 1e100]; got {shown(v)}")


def model_collapse_error(n_generations: int, d: int, T: int, sigma: float, T0: int, sigma0: float) -> float:
    r"""Test error of least squares trained on data from the n-th of a chain of self-trained generators.

    Setting of Dohmatob, Feng & Kempe 2024 (Fig. 4, isotropic, ridgeless):
    starting from the truth, each of ``n_generations`` generators is OLS fitted
    on ``T0`` fresh samples labelled by the previous one plus noise ``sigma0``;
    the predictor is OLS fitted on ``T`` samples labelled by the last
    generator plus noise ``sigma``. The fits' errors are independent and
    unbiased, each costing
    :math:`\sigma^2 E\operatorname{tr}(X^\top X)^{-1} = \sigma^2 d/(T - d - 1)`
    (inverse-Wishart mean), so the excess test error
    :math:`E\|\hat w_{pred} - w^*\|^2` grows linearly in n (their Theorem 1):

    .. math:: \frac{\sigma^2 d}{T - d - 1} + n\,\frac{\sigma_0^2 d}{T_0 - d - 1}.
    """
    _collapse_args(n_generations, d, T, T0, sigma, sigma0)
    if T <= d + 1:
        raise ValueError(f"T must exceed d + 1 = {d + 1} (the inverse-Wishart mean is finite only then)")
    return sigma**2 * d / (T - d - 1) + n_generations * sigma0**2 * d / (T0 - d - 1)


class MPTraces(NamedTuple):
    r"""Normalised traces :math:`\lim\tfrac1d\operatorname{tr}f(\hat\Sigma)` at ridge :math:`\lambda` (see :func:`mp_resolvent`)."""

    g1: float  #: :math:`(\hat\Sigma + \lambda)^{-1}`
    g2: float  #: :math:`(\hat\Sigma + \lambda)^{-2}`
    df: float  #: :math:`\hat\Sigma(\hat\Sigma + \lambda)^{-1}`
    v2: float  #: :math:`\hat\Sigma(\hat\Sigma + \lambda)^{-2}`
    v3: float  #: :math:`\hat\Sigma(\hat\Sigma + \lambda)^{-3}`
    r2: float  #: :math:`\hat\Sigma^2(\hat\Sigma + \lambda)^{-2}`


def mp_resolvent(lam: float, gamma: float) -> MPTraces:
    r"""Marchenko-Pastur traces of the ridge resolvent, in closed form.

    For :math:`\hat\Sigma = X^\top X/T` with :math:`X` a :math:`T\times d`
    standard Gaussian matrix and :math:`d/T \to \gamma`, the Stieltjes transform
    :math:`g_1 = \lim\tfrac1d\operatorname{tr}(\hat\Sigma + \lambda)^{-1}` is the
    positive root of :math:`\gamma\lambda g^2 + (1 - \gamma + \lambda)g - 1 = 0`
    (Marchenko & Pastur 1967; Bai & Silverstein 2010, Thm 3.10). Written with
    the effective ridge :math:`\kappa = \lambda g_1/(1 - \lambda g_1)`, the
    positive root of :math:`\kappa^2 + (1 - \lambda - \gamma)\kappa - \lambda = 0`,
    and :math:`S = \sqrt{(\lambda + \gamma - 1)^2 + 4\lambda}`, the traces
    follow by implicit differentiation in :math:`\lambda` (derived here):

    .. math::
        g_1 = \frac{\kappa/\lambda}{1 + \kappa},\quad g_2 = \frac{g_1(\gamma g_1 + 1)}{S},\quad
        \mathrm{df} = \frac{1}{1 + \kappa},\quad v_2 = \frac{1}{(1 + \kappa)S},\quad
        v_3 = \frac{1 + (\lambda + \gamma + 1)/S}{2(1 + \kappa)S^2},\quad
        r_2 = \frac{(\gamma - 1)^2 + 2\lambda(\gamma + 1)}{(1 + \kappa)S(S + \lambda)}.

    Every expression is a ratio of positive terms, so none loses digits to
    cancellation (the atom at 0 of the law when :math:`\gamma > 1` makes the
    textbook differences :math:`g_1 - \lambda g_2` useless at small
    :math:`\lambda`). ``lam = 0`` is allowed for :math:`\gamma < 1`
    (:math:`g_1 = v_2 = 1/(1 - \gamma)`, :math:`v_3 = (1 - \gamma)^{-3}`, :math:`r_2 = 1`).
    """
    gamma = _positive("gamma", gamma)
    if gamma > 1e6:
        raise ValueError(f"gamma = d/T must lie in (0, 1e6]; got {shown(gamma)}")
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)) or not math.isfinite(lam) \
            or not 0 <= lam <= 1e100:
        raise ValueError(f"lam must be a number in [0, 1e100]; got {shown(lam)}")
    lam = float(lam)
    if lam == 0 and gamma >= 1:
        raise ValueError(f"lam = 0 needs gamma = d/T < 1 (the sample covariance is singular); got gamma = {gamma}")
    shift = lam + gamma - 1
    S = math.hypot(shift, 2 * math.sqrt(lam))
    # kappa / lam from the form of the root that has no cancellation on each side of shift = 0
    k_over_lam = 2 / (S - shift) if shift <= 0 else (shift + S) / (2 * lam)
    kappa = k_over_lam * lam
    g1 = k_over_lam / (1 + kappa)
    return MPTraces(
        g1=g1,
        g2=g1 * (gamma * g1 + 1) / S,
        df=1 / (1 + kappa),
        v2=1 / ((1 + kappa) * S),
        v3=(1 + (lam + gamma + 1) / S) / (2 * (1 + kappa) * S * S),
        r2=((gamma - 1) ** 2 + 2 * lam * (gamma + 1)) / ((1 + kappa) * S * (S + lam)),
    )


def _ridge_terms(lam: float, n_generations: int, d: int, T: int, sigma: float, T0: int, sigma0: float,
                 w_norm_sq: float) -> tuple[float, float]:
    """The deterministic-equivalent error and its lambda-derivative (see model_collapse_ridge_error)."""
    m = mp_resolvent(lam, d / T)
    a, b, c = w_norm_sq / d, sigma**2 / T, n_generations * sigma0**2 / (T0 - d - 1)
    err = d * (a * lam**2 * m.g2 + b * m.v2 + c * m.r2)
    # dE/dlam = d [2 v3 ((a + c) lam - b) - 2 c v2]  (theory.deep_linear_symbolic, ridge_stationarity)
    return err, 2 * d * (m.v3 * ((a + c) * lam - b) - c * m.v2)


def model_collapse_ridge_error(n_generations: int, d: int, T: int, sigma: float, T0: int, sigma0: float,
                               lam: float, w_norm_sq: float = 1.0) -> float:
    r"""Test error of a ridge predictor trained on data from the n-th self-trained generator.

    Setting of Dohmatob, Feng & Kempe 2024 (Sec. 4, isotropic covariance; the
    ridge-regularised downstream model of their Fig. 1(a)): the generators are
    OLS chains as in :func:`model_collapse_error`, so the last one is
    :math:`\hat w_n = w^* + e` with :math:`e` independent of the downstream
    data, mean zero and covariance :math:`\tau_n^2 I`,
    :math:`\tau_n^2 = n\sigma_0^2/(T_0 - d - 1)` (exact, inverse-Wishart mean).
    The predictor is ridge on :math:`T` fresh samples labelled by
    :math:`\hat w_n` plus noise :math:`\sigma`,
    :math:`\hat w = (\hat\Sigma + \lambda)^{-1}X^\top y/T`. With
    :math:`R = (\hat\Sigma + \lambda)^{-1}\hat\Sigma`, for :math:`w^*` of
    isotropic direction (derived here):

    .. math::
        E\|\hat w - w^*\|^2 = \underbrace{\tfrac{\|w^*\|^2}{d} E\operatorname{tr}(I - R)^2}_{\text{bias}}
        + \underbrace{\tfrac{\sigma^2}{T} E\operatorname{tr}\hat\Sigma(\hat\Sigma + \lambda)^{-2}}_{\text{variance}}
        + \underbrace{\tau_n^2\, E\operatorname{tr} R^2}_{\text{synthetic data}},

    evaluated by the deterministic equivalents of :func:`mp_resolvent`
    (:math:`d, T \to \infty`, :math:`\gamma = d/T`):
    :math:`\|w^*\|^2\lambda^2 g_2 + \sigma^2\gamma v_2 + \tau_n^2 d\, r_2`.
    Ridge multiplies the paper's linear collapse term :math:`n\sigma_0^2 d/(T_0 - d - 1)`
    by :math:`\tfrac1d\operatorname{tr}R^2 < 1`. At ``lam = 0`` (needs
    :math:`T > d`) the variance is the limit :math:`\sigma^2 d/(T - d)` of the
    exact :math:`\sigma^2 d/(T - d - 1)` of :func:`model_collapse_error`: the
    finite-size relative error is :math:`O(1/(T - d))`.
    """
    _collapse_args(n_generations, d, T, T0, sigma, sigma0)
    w_norm_sq = _positive("w_norm_sq", w_norm_sq)
    if lam == 0 and T <= d:
        raise ValueError(f"lam = 0 needs T > d = {d}; got T = {T}")
    return _ridge_terms(lam, n_generations, d, T, sigma, T0, sigma0, w_norm_sq)[0]


def model_collapse_optimal_ridge(n_generations: int, d: int, T: int, sigma: float, T0: int, sigma0: float,
                                 w_norm_sq: float = 1.0) -> float:
    r"""The ridge parameter minimising :func:`model_collapse_ridge_error`: adaptive regularisation.

    Dohmatob, Feng & Kempe 2024 (Sec. 4, Fig. 1(a)) observe a U-shaped test
    error in :math:`\lambda` and propose regularisation adapted to the amount
    of synthetic data. For the isotropic model the optimum solves (derived
    here, :math:`a = \|w^*\|^2/d`, :math:`b = \sigma^2/T`, :math:`c = \tau_n^2`)

    .. math:: P(\lambda)\,\big((a + c)\lambda - b\big) = 2cQ(\lambda),\qquad
              P = \tfrac2d\operatorname{tr}\hat\Sigma(\hat\Sigma+\lambda)^{-3},\;
              Q = \tfrac1d\operatorname{tr}\hat\Sigma(\hat\Sigma+\lambda)^{-2}.

    With clean data (:math:`n = 0`) it is the classical
    :math:`\lambda^* = \sigma^2 d/(T\|w^*\|^2)` (Dobriban & Wager 2018, Thm 2.1);
    synthetic data push it up, to :math:`\lambda^* \approx d(\tau_n^2(1 + \gamma) + \sigma^2/T)/\|w^*\|^2`
    for large :math:`n` (linear in :math:`n`; from :math:`Q/P \to (\lambda + 1 + \gamma)/2`),
    and the error at :math:`\lambda^*` stays below :math:`\|w^*\|^2`, the zero
    predictor's. Found on a logarithmic grid, then polished by Brent's method
    on the closed-form derivative. Returns 0 when the optimum is unregularised
    (:math:`\sigma = 0`, :math:`n = 0`).
    """
    _collapse_args(n_generations, d, T, T0, sigma, sigma0)
    w_norm_sq = _positive("w_norm_sq", w_norm_sq)
    if sigma == 0 and n_generations == 0:
        return 0.0

    def deriv(log_lam: float) -> float:
        return _ridge_terms(math.exp(log_lam), n_generations, d, T, sigma, T0, sigma0, w_norm_sq)[1]

    # Where the error is U-shaped the derivative changes sign once; bracket it on a grid first.
    grid = np.linspace(math.log(1e-12), math.log(1e12), 481)
    signs = np.array([deriv(x) > 0 for x in grid])
    if signs[0] or not signs[-1]:
        raise ValueError("no interior optimum in lam in [1e-12, 1e12] for these parameters")
    i = int(np.argmax(signs))
    return math.exp(optimize.brentq(deriv, grid[i - 1], grid[i], xtol=1e-14, rtol=4 * np.finfo(float).eps))


def model_collapse_ridge_error_general(n_generations: int, T: int, sigma: float, T0: int, sigma0: float, lam: float,
                                       spectrum: Any, w_star: Any) -> dict[str, float]:
    r"""Test error :math:`E\|\hat w - w^*\|_\Sigma^2` of ridge trained on the n-th self-trained generator's data,
    for a general covariance: Dohmatob, Feng & Kempe 2024's Sec. 5 setting (power-law spectra and source
    conditions), here for any diagonal :math:`\Sigma = \operatorname{diag}(s)` and teacher :math:`w^*`.

    Generators as in :func:`model_collapse_error`: :math:`\hat w_n = w^* + e`, :math:`e` independent of the
    downstream data with covariance :math:`c_0\Sigma^{-1}`, :math:`c_0 = n\sigma_0^2/(T_0 - d - 1)` (exact,
    inverse-Wishart mean of :math:`(X^\top X)^{-1}` for rows :math:`N(0, \Sigma)`). With
    :math:`A = (\hat\Sigma + \lambda)^{-1}\hat\Sigma` (derived here),

    .. math::
        E\|\hat w - w^*\|_\Sigma^2 = \underbrace{E\|(I - A)w^*\|_\Sigma^2}_{\text{bias}}
        + \underbrace{\tfrac{\sigma^2}{T}E\operatorname{tr}\Sigma(\hat\Sigma+\lambda)^{-2}\hat\Sigma}_{\text{variance}}
        + \underbrace{c_0\,E\operatorname{tr}(A^\top\Sigma A\Sigma^{-1})}_{\text{synthetic data}},

    evaluated by the standard deterministic equivalents of ridge regression (Bach 2023, "High-dimensional
    analysis of double descent for linear regression with random projections", Sec. 3; Hastie et al. 2022):
    :math:`\kappa` solves :math:`\lambda = \kappa(1 - \mathrm{df}_1/T)`, :math:`\mathrm{df}_k =
    \operatorname{tr}\Sigma^k(\Sigma+\kappa)^{-k}`, :math:`\lambda(\hat\Sigma+\lambda)^{-1} \approx
    \kappa(\Sigma+\kappa)^{-1}` and :math:`\lambda^2 E(\hat\Sigma+\lambda)^{-1}\Sigma(\hat\Sigma+\lambda)^{-1}
    \approx \kappa^2\Sigma(\Sigma+\kappa)^{-2}/(1 - \mathrm{df}_2/T)`:

    * bias :math:`= \kappa^2\sum_i s_i w_i^2/(s_i+\kappa)^2\,/\,(1 - \mathrm{df}_2/T)`;
    * variance :math:`= \sigma^2\mathrm{df}_2/(T - \mathrm{df}_2)`;
    * synthetic data :math:`= c_0\big[d - 2\kappa\sum_i (s_i+\kappa)^{-1}
      + \kappa^2\sum_i (s_i+\kappa)^{-2}/(1 - \mathrm{df}_2/T)\big]` (from :math:`A = I - \lambda(\hat\Sigma +
      \lambda)^{-1}`).

    At :math:`\Sigma = I` this is :func:`model_collapse_ridge_error` with :math:`\|w^*\|^2` in place of its
    isotropic average. Returns the three terms and their sum, ``"error"``, and :math:`\kappa`.
    """
    s = np.asarray(spectrum, dtype=float)
    w = np.asarray(w_star, dtype=float)
    if s.ndim != 1 or s.size < 1 or np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("spectrum must be a 1-D array of positive eigenvalues")
    if w.shape != s.shape or np.any(~np.isfinite(w)):
        raise ValueError(f"w_star must be finite with the spectrum's shape {s.shape}; got {w.shape}")
    d = s.size
    _collapse_args(n_generations, d, T, T0, sigma, sigma0)
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be finite and >= 0; got {lam}")
    if lam == 0 and T <= d:
        raise ValueError(f"lam = 0 needs T > d = {d}; got T = {T}")

    def gap(kappa: float) -> float:
        return kappa * (1 - np.sum(s / (s + kappa)) / T) - lam

    kappa = 0.0
    if lam > 0:
        # gap(0) = -lam < 0; its slope 1 - df2/T is negative only while df2 > T (small kappa, d > T), then
        # positive for good: one root
        hi = lam
        while gap(hi) < 0:
            hi *= 2
        kappa = optimize.brentq(gap, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    df2 = float(np.sum(s**2 / (s + kappa) ** 2))
    inflate = 1 / (1 - df2 / T)
    bias = kappa**2 * float(np.sum(s * w**2 / (s + kappa) ** 2)) * inflate
    variance = sigma**2 * df2 / (T - df2)
    c0 = n_generations * sigma0**2 / (T0 - d - 1)
    synthetic = c0 * (d - 2 * kappa * float(np.sum(1 / (s + kappa))) + kappa**2 * float(np.sum(1 / (s + kappa) ** 2)) * inflate)
    return {"bias": bias, "variance": variance, "synthetic": synthetic, "error": bias + variance + synthetic,
            "kappa": kappa}
