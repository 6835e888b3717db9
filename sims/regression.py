r"""Linear regressions of the deep-linear family: the grokking teacher-student model (Levi, Beck & Bar-Sinai 2024)
and model collapse under self-training (Dohmatob, Feng & Kempe 2024)."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .engine._validate import nonneg_float, positive_array, positive_float, positive_int, real_array
from .engine._validate import shown
from .engine.backend import asarray, check_seed, host_rng, init_rng, namespace
from .engine.driver import Model, train
from .engine.trajectory import Trajectory

__all__ = ["model_collapse", "simulate_teacher_student", "teacher_student_data", "teacher_student_spectrum",
           "wishart_spectrum"]


# ---------------------------------------------------------------------------
# Linear teacher-student regression (Levi, Beck & Bar-Sinai 2024)
# ---------------------------------------------------------------------------
def simulate_teacher_student(d_in: int, lam: float, eta: float, steps: int, *, d_out: int = 1,
                             gamma: float = 0.0, init_scale: float = 0.0, record_at: Any = None, seed: int = 0,
                             backend: str = "numpy", dtype: str = "float64", device: Any = None) -> Trajectory:
    r"""Gradient descent of a linear student on a Gaussian teacher (the grokking model of Levi et al. 2024).

    :math:`N_{tr} = \mathrm{round}(d_{in}/\lambda)` inputs :math:`x \sim N(0, I)`, teacher
    :math:`W^*` with i.i.d. :math:`N(0, 1/d_{in})` entries (so :math:`E\|W^* x\|^2 = d_{out}`), student
    from :math:`W = 0`, or with ``init_scale`` :math:`\sigma_0 > 0` from i.i.d. :math:`N(0, \sigma_0^2/d_{in})`
    entries drawn from :func:`sims.engine.backend.init_rng` (independent of the data and the teacher), loss per output
    :math:`\frac{1}{d_{out}}[\frac{1}{N_{tr}}\sum_j\|Wx_j - W^*x_j\|^2 + \frac{\gamma}{2}\|W\|_F^2]`.
    The gradient uses the empirical covariance :math:`\hat\Sigma = XX^\top/N_{tr}`:
    :math:`\frac{2}{d_{out}}(W - W^*)\hat\Sigma + \frac{\gamma}{d_{out}} W`.

    The student is trained in the eigenbasis :math:`\hat\Sigma = V\,\mathrm{diag}(\nu)\,V^\top`, on
    :math:`U = WV`: gradient descent commutes with an orthogonal change of variables (the loss of :math:`UV^\top`
    has gradient :math:`\nabla_W L\, V` in :math:`U`), so the iterates are exactly :math:`W_t V`, and a step costs
    :math:`O(d_{out} d_{in})` instead of the :math:`O(d_{out} d_{in}^2)` of the product with :math:`\hat\Sigma`
    (a memory-bound :math:`8 d_{in}^2`-byte read per step, 58 000 of them in the grokking claims). ``final``'s
    ``W`` is rotated back.

    Observables ``train_loss`` (:math:`\operatorname{tr}((W-W^*)\hat\Sigma(W-W^*)^\top)/d_{out}`)
    and ``test_loss`` (:math:`\|W - W^*\|_F^2/d_{out}`, exact for isotropic test inputs);
    ``meta["eigenvalues"]`` holds the spectrum of :math:`\hat\Sigma` (ascending) for finite-size predictions.
    """
    d_in = positive_int("d_in", d_in, 1, 5000)
    d_out = positive_int("d_out", d_out, 1, 1000)
    lam, eta = positive_float("lam", lam), positive_float("eta", eta)
    gamma = nonneg_float("gamma", gamma)
    init_scale = nonneg_float("init_scale", init_scale)
    steps = positive_int("steps", steps, 1, 10**8)
    n_train = max(1, int(round(d_in / lam)))
    if n_train * d_in > 10**8:
        raise ValueError("d_in / lam * d_in must be at most 1e8 entries")
    _, w_star, w0 = teacher_student_data(d_in, lam, d_out=d_out, init_scale=init_scale, seed=seed)
    nu, V = teacher_student_spectrum(d_in, lam, seed=seed)
    xp = namespace(backend)
    nu_d, us_d = asarray(nu, xp, dtype, device), asarray((w_star @ V)[None], xp, dtype, device)

    def lg(state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any]]:
        (u,) = state
        e = u - us_d
        ec = e * nu_d
        loss = (xp.sum(ec * e, axis=(1, 2)) + gamma / 2 * xp.sum(u * u, axis=(1, 2))) / d_out
        return loss, ((2 * ec + gamma * u) / d_out,)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        (u,) = state
        e = u - us_d
        e2 = e * e
        return {"train_loss": xp.sum(e2 * nu_d, axis=(1, 2)) / d_out, "test_loss": xp.sum(e2, axis=(1, 2)) / d_out}

    student = Model(
        name="teacher_student", state0=(asarray((w0 @ V)[None], xp, dtype, device),), loss_grad=lg,
        observe=observe, final=lambda host: {"W": host[0] @ V.T},
        meta={"d_in": d_in, "d_out": d_out, "n_train": n_train, "lam": lam, "eta": eta, "gamma": gamma,
              "init_scale": init_scale, "eigenvalues": nu.tolist()},
        backend=backend, dtype=dtype,
    )
    return train(student, "gd", lr=eta, steps=steps, t_eval=record_at, seed=check_seed(seed))


def teacher_student_data(d_in: int, lam: float, *, d_out: int = 1, init_scale: float = 0.0,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The draws of :func:`simulate_teacher_student` at ``seed``: inputs ``X`` ``(d_in, N_tr)``, the teacher
    ``(d_out, d_in)`` and the student's start ``(d_out, d_in)`` (zero at ``init_scale = 0``), so that a prediction
    can be evaluated on the very draw a simulation ran on."""
    n_train = max(1, int(round(d_in / lam)))
    rng = host_rng(seed)
    X = rng.standard_normal((d_in, n_train))
    w_star = rng.standard_normal((d_out, d_in)) / math.sqrt(d_in)
    # the start has its own stream, so that the data and the teacher are the same draws at every init_scale
    w0 = init_scale * init_rng(seed).standard_normal((d_out, d_in)) / math.sqrt(d_in)
    return X, w_star, w0


def teacher_student_spectrum(d_in: int, lam: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""The eigendecomposition :math:`\hat\Sigma = V\,\mathrm{diag}(\nu)\,V^\top` of the sample covariance
    :math:`XX^\top/N_{tr}` of :func:`teacher_student_data`'s inputs at ``seed`` (which do not depend on
    ``d_out`` or ``init_scale``): ``(nu, V)``, ascending, read-only, with round-off below zero set to zero (a Gram
    matrix). The last few are kept (the data's :math:`O(d_{in}^2 N_{tr})` product and the :math:`O(d_{in}^3)`
    ``eigh`` are most of a run's cost once it steps in this basis, and a paired comparison asks twice)."""
    d_in = positive_int("d_in", d_in, 1, 5000)
    lam = positive_float("lam", lam)
    return _spectrum(d_in, float(lam), check_seed(seed))


@functools.lru_cache(maxsize=4)
def _spectrum(d_in: int, lam: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, _, _ = teacher_student_data(d_in, lam, seed=seed)
    nu, V = np.linalg.eigh(X @ X.T / X.shape[1])
    nu = np.maximum(nu, 0.0)
    nu.flags.writeable = V.flags.writeable = False
    return nu, V


def wishart_spectrum(m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    r"""The eigenvalues (ascending) of :math:`XX^\top` for an :math:`m \times n` matrix :math:`X` of i.i.d.
    :math:`N(0, 1)` entries, :math:`n \ge m`, drawn without :math:`X`.

    Dumitriu & Edelman 2002 (J. Math. Phys. 43, "Matrix models for beta ensembles", the beta-Laguerre model at
    beta = 1): the spectrum is that of :math:`BB^\top` with :math:`B` lower bidiagonal, diagonal
    :math:`\chi_n, \chi_{n-1}, \dots, \chi_{n-m+1}` and subdiagonal :math:`\chi_{m-1}, \dots, \chi_1`, all
    independent; :math:`BB^\top` is tridiagonal, so a draw costs :math:`O(m^2)` (LAPACK's tridiagonal
    eigensolver) instead of the :math:`O(m^2 n)` of forming :math:`XX^\top`.
    """
    from scipy.linalg import eigvalsh_tridiagonal

    m, n = positive_int("m", m, 1, 10**6), positive_int("n", n, 1, 10**9)
    if n < m:
        raise ValueError(f"n must be at least m (a full-rank Wishart); got m = {m}, n = {n}")
    a = np.sqrt(rng.chisquare(n - np.arange(m)))
    b = np.sqrt(rng.chisquare(m - 1 - np.arange(m - 1))) if m > 1 else np.zeros(0)
    diagonal = a**2
    diagonal[1:] += b**2
    return eigvalsh_tridiagonal(diagonal, a[:-1] * b)


# ---------------------------------------------------------------------------
# Model collapse in regression (Dohmatob, Feng & Kempe 2024)
# ---------------------------------------------------------------------------
#: Up to this many ridge parameters a fit is a linear solve per parameter; beyond, one eigendecomposition of the
#: sample covariance serves them all (an eigh costs about as much as a handful of solves).
_SOLVES = 4


def _gram_and_root(rng: np.random.Generator, trials: int, size: int, d: int,
                   scale: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    r"""``trials`` draws of the Gram matrix :math:`A = X^\top X` of ``size`` Gaussian rows with covariance
    :math:`\operatorname{diag}(\text{scale}^2)`, and a square root :math:`L` with :math:`LL^\top = A` (its Cholesky
    factor when ``size >= d``).

    :math:`A \sim W_d(\text{size}, \Sigma)` is drawn directly (Bartlett's decomposition, scipy.stats.wishart) when
    ``size >= d``: O(d^3) a draw, whatever the sample size; below that the Wishart is singular and the rows
    themselves are drawn. Given :math:`A`, :math:`X^\top\varepsilon \sim N(0, A)` for white noise
    :math:`\varepsilon`, which is :math:`Lz` with :math:`z \sim N(0, I_d)`: the regression needs nothing else of X.
    """
    if size >= d:
        from scipy.stats import wishart

        A = wishart(df=size, scale=np.eye(d)).rvs(size=trials, random_state=rng).reshape(trials, d, d)
        if scale is not None:
            A = scale[:, None] * A * scale[None, :]
        return A, np.linalg.cholesky(A)
    X = rng.standard_normal((trials, size, d))
    if scale is not None:
        X = X * scale
    A = np.swapaxes(X, 1, 2) @ X
    # rank size < d: a square root through the eigendecomposition (Cholesky needs A positive definite)
    s, V = np.linalg.eigh(A)
    return A, V * np.sqrt(np.clip(s, 0.0, None))[:, None, :]


def model_collapse(d: int, T: int, sigma: float, T0: int, sigma0: float, n_generations: int, *,
                   n_trials: int = 100, seed: int = 0, ridge: Any = 0.0, spectrum: Any = None,
                   w_star: Any = None) -> np.ndarray:
    r"""Monte Carlo of model collapse in least squares and ridge regression (Dohmatob, Feng & Kempe 2024).

    Starting from the true :math:`w^* \sim N(0, I_d/d)` (so :math:`E\|w^*\|^2 = 1`),
    generator :math:`k` (:math:`k = 1..n`) is OLS fitted on :math:`T_0` fresh
    samples labelled by generator :math:`k-1` plus noise :math:`\sigma_0`; the
    predictor for generation :math:`n` is fitted on :math:`T` fresh samples
    labelled by generator :math:`n` plus noise :math:`\sigma`, by ridge regression

    .. math:: \hat w_{pred} = \arg\min_w \tfrac1T\|Xw - y\|^2 + \lambda\|w\|^2
              = (\hat\Sigma + \lambda I)^{-1} X^\top y / T, \qquad \hat\Sigma = X^\top X/T,

    with :math:`\lambda` = ``ridge`` (0: OLS, the paper's Fig. 4 setting; it
    needs ``T >= d``). Inputs are isotropic Gaussian, or Gaussian with the diagonal covariance
    :math:`\Sigma = \operatorname{diag}` (``spectrum``) (their Sec. 5's general covariance, in its eigenbasis);
    ``w_star`` fixes the teacher (default: drawn per trial as above). Every :math:`\lambda` of
    ``ridge`` is evaluated on the same draws (common random numbers), through
    one eigendecomposition of :math:`\hat\Sigma` per fit.

    Sampled exactly, without the data: a fit needs only :math:`A = X^\top X \sim W_d(T, \Sigma)` and
    :math:`X^\top\varepsilon \mid A \sim N(0, A)`, so OLS on :math:`T_0` samples moves the generator by
    :math:`\sigma_0 A_0^{-1} X_0^\top\varepsilon = \sigma_0 L_0^{-\top} z` (:math:`A_0 = L_0 L_0^\top`), and the
    predictor's right-hand side is :math:`X^\top y = A g + \sigma L z'` (:func:`_gram_and_root`). All trials
    are drawn at once, one stacked LAPACK call a generation. Draw order, for reproducibility: the teachers
    ``(n_trials, d)`` (unless fixed), then per generation the OLS fit's Gram matrices and noise (from generation 1
    on), then the predictor's.

    Returns
    -------
    ndarray
        Test errors :math:`\|\hat w_{pred}(n) - w^*\|_\Sigma^2` (the excess risk; :math:`\Sigma = I` by
        default), shape
        ``(n_trials, n_generations + 1) + np.shape(ridge)`` (host NumPy: the fits
        are small dense LAPACK problems, CPU-only).
    """
    d = positive_int("d", d, 1, 10_000)
    T0 = positive_int("T0", T0, d, 10**7)
    n_generations = positive_int("n_generations", n_generations, 0, 10_000)
    n_trials = positive_int("n_trials", n_trials, 1, 10**6)
    sigma, sigma0 = nonneg_float("sigma", sigma), nonneg_float("sigma0", sigma0)
    if max(sigma, sigma0) > 1e100:
        raise ValueError(f"sigma and sigma0 must lie in [0, 1e100]; got {shown(sigma)}, {shown(sigma0)}")
    lams = real_array("ridge", ridge, (0, 1))
    if np.any(lams < 0) or np.any(lams > 1e12):
        raise ValueError(f"ridge must lie in [0, 1e12]; got min {shown(lams.min())}, max {shown(lams.max())}")
    T = positive_int("T", T, d if np.any(lams == 0) else 1, 10**7)
    if n_trials * d * d > 10**9:
        raise ValueError(f"n_trials * d^2 must be at most 1e9 (the stacked Gram matrices); got {n_trials * d * d}")
    scale = None
    if spectrum is not None:
        spec = positive_array("spectrum", spectrum, 1)
        if spec.shape != (d,):
            raise ValueError(f"spectrum must hold d = {d} positive eigenvalues; got shape {spec.shape}")
        scale = np.sqrt(spec)
    fixed = None
    if w_star is not None:
        fixed = real_array("w_star", w_star, 1)
        if fixed.shape != (d,):
            raise ValueError(f"w_star must have d = {d} entries; got shape {fixed.shape}")
    rng = host_rng(seed)
    flat = lams.reshape(-1)
    out = np.empty((n_trials, n_generations + 1, flat.size))
    weight = np.ones(d) if scale is None else scale**2
    teacher = rng.standard_normal((n_trials, d)) / math.sqrt(d) if fixed is None else np.tile(fixed, (n_trials, 1))
    generator = teacher
    for n in range(n_generations + 1):
        if n:
            _, L0 = _gram_and_root(rng, n_trials, T0, d, scale)
            z = rng.standard_normal((n_trials, d, 1))
            generator = generator + sigma0 * np.linalg.solve(np.swapaxes(L0, 1, 2), z)[..., 0]
        A, L = _gram_and_root(rng, n_trials, T, d, scale)
        rhs = (A @ generator[..., None] + sigma * (L @ rng.standard_normal((n_trials, d, 1))))[..., 0] / T
        if flat.size <= _SOLVES:
            # T >= d when some lambda is 0: A positive definite almost surely
            eye = np.eye(d)
            pred = np.stack([np.linalg.solve(A / T + lam * eye, rhs[..., None])[..., 0] for lam in flat], axis=-1)
        else:  # one eigendecomposition serves every lambda
            s, V = np.linalg.eigh(A / T)
            b = np.einsum("tji,tj->ti", V, rhs)
            pred = np.einsum("tij,tjl->til", V, b[:, :, None] / (s[:, :, None] + flat[None, None, :]))
        out[:, n] = np.sum(weight[None, :, None] * (pred - teacher[:, :, None]) ** 2, axis=1)
    return out.reshape((n_trials, n_generations + 1) + lams.shape)
