"""Dohmatob, Feng & Kempe 2024: the test error of regression on generations of synthetic data, with and without ridge,
and the Marchenko-Pastur resolvent behind it.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from scipy import optimize

from .._format import shown
from .common import _positive

__all__ = ["MPTraces", "model_collapse_error", "model_collapse_optimal_ridge", "model_collapse_ridge_error", "model_collapse_ridge_error_general", "mp_resolvent"]


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
    # dE/dlam = d [2 v3 ((a + c) lam - b) - 2 c v2]  (theory.deep_linear.symbolic, ridge_stationarity)
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
