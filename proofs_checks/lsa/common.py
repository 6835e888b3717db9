"""The sources the attention claims cite, their tolerances and false-alarm level, the sandwich-covariance budget of a
least-squares fit, and the population flows several claims read.
"""

from __future__ import annotations

import numpy as np

from solvable.sims import lsa as sim
from solvable.theory import lsa as th

from ..framework.registry import Context, measurement
from ..framework.stats import bonferroni_level, weighted_chi2_quantile
from ..framework.space import Param, Space

__all__ = ["population_flows"]

ZFB = "Zhang, Frei & Bartlett 2024, Trained Transformers Learn Linear Models In-Context (JMLR 25)"
MHM = "Mahankali, Hashimoto & Ma 2024, One Step of Gradient Descent is Provably the Optimal In-Context Learner"
AHN = "Ahn, Cheng, Daneshmand & Sra 2023, Transformers Learn to Implement Preconditioned Gradient Descent"
VON = "von Oswald et al. 2023, Transformers Learn In-Context by Gradient Descent"
TLTO = "Tarzanagh, Li, Thrampoulidis & Oymak 2023, Transformers as Support Vector Machines"
TLZO = "Tarzanagh, Li, Zhang & Oymak 2023, Max-Margin Token Selection in Attention Mechanism"

RTOL = 1e-10
#: Relative accuracy asked of a population flow limit (see the claims' tolerance reasons).
FLOW_TOL = 1e-7
#: Quantile of a claim's excess budget: with the one-parameter test beside it (Bonferroni over two), a correct
#: prediction fails a claim at rate stats.SIZE = 1e-4.
LEVEL = bonferroni_level(2)


def _sandwich(features: np.ndarray, residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H^+ and V of the least-squares fit's sandwich covariance H^+ V H^+ / P (see :func:`_excess_budget`)."""
    P = features.shape[0]
    H = features.T @ features / P
    wf = features * residuals[:, None]
    return np.linalg.pinv(H, rcond=1e-10, hermitian=True), wf.T @ wf / P


def _functional_se(features: np.ndarray, residuals: np.ndarray, c: np.ndarray) -> float:
    """The standard error of c^T theta_fit, a linear functional of the least-squares fit: sqrt(c^T H^+ V H^+ c / P).

    A one-parameter test along the direction of the alternative (a wrong coefficient, a scaled preconditioner)
    has far more power than the excess over every parameter: its statistic is not diluted over the d^2 (or more)
    directions the alternative does not move."""
    Hp, V = _sandwich(features, residuals)
    u = Hp @ c
    return float(np.sqrt(max(u @ V @ u, 0.0) / features.shape[0]))


def _excess_budget(features: np.ndarray, residuals: np.ndarray) -> tuple[float, float]:
    """Mean and LEVEL-quantile of E_test[(y_hat_fit - y_hat*)^2] for a least-squares fit on these samples.

    Asymptotically the fitted parameters are N(theta*, H^+ V H^+ / P) with H = E[phi phi^T] and
    V = E[e^2 phi phi^T] (the sandwich; Gauss-Newton for a model non-linear in its parameters), so the excess
    is sum_i lam_i chi2_1 / P with lam the eigenvalues of H^+ V; its quantile by the saddlepoint approximation
    (:func:`~proofs_checks.framework.stats.weighted_chi2_quantile`: Satterthwaite's scaled chi-square put it 8 % too low here,
    and the sample excess exceeded it in 1 of 400 draws where 1 in 1000 was promised).
    """
    P = features.shape[0]
    Hp, V = _sandwich(features, residuals)
    lam = np.clip(np.real(np.linalg.eigvals(Hp @ V)), 0.0, None)
    return float(np.sum(lam) / P), weighted_chi2_quantile(LEVEL, lam) / P


def _reduced_features(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features vec(x_q h^T) of y_hat = <A, x_q h^T>, and the query labels."""
    N = X.shape[1] - 1
    h = np.einsum("pn,pnd->pd", y[:, :N], X[:, :N]) / N
    return np.einsum("pd,pe->pde", X[:, N], h).reshape(X.shape[0], -1), y[:, N]


def _least_squares_A(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The empirical minimiser of 1/2 mean (x_q^T A h - y_q)^2 over all d x d matrices A."""
    phi, yq = _reduced_features(X, y)
    d = X.shape[2]
    return np.linalg.lstsq(phi, yq, rcond=None)[0].reshape(d, d)


def _flow_to_minimiser(problem: sim.Problem, ctx: Context) -> dict:
    """Population flow of the reduced model from ZFB's start, and an a-posteriori bound on its distance to the
    minimiser: L is strongly convex in A with modulus lambda_min(Lambda) lambda_min(C), so
    ||A - A*||_F <= ||grad_A L||_F / (lambda_min(Lambda) lambda_min(C))."""
    traj = sim.simulate(problem, 0.1, t_max=1e4, rtol=RTOL, grad_tol=1e-9, seed=ctx.seed, backend=ctx.backend,
                        dtype=ctx.dtype, device=ctx.device)
    A = traj.final["A"][0]
    Lam, om = problem.Lambda, problem.task_cov
    C = th.second_moment(Lam, problem.N, om, problem.noise)
    G = Lam @ A @ C - Lam @ om @ Lam
    mu = np.linalg.eigvalsh(Lam)[0] * np.linalg.eigvalsh((C + C.T) / 2)[0]
    A_star = th.minimiser(Lam, problem.N, task_cov=om, noise=problem.noise)
    return {"traj": traj, "A": A, "A_star": A_star, "bound": float(np.linalg.norm(G) / mu),
            "error": float(np.linalg.norm(A - A_star)), "u": float(traj.final["u"][0]),
            # relative to u^2; NaN marks output times after the run stopped
            "balance": float(np.nanmax(np.abs(traj.observables["balance"][0]))) / float(traj.final["u"][0]) ** 2}


#: The population cases ZFB's theorems cover: any covariance Lambda (here a randomly rotated geometric
#: spectrum) and any training prompt length N; shared by the claims that read population_flows.
POPULATION_SPACE = Space((Param("d", 2, 4, integer=True, doc="dimension of the covariates"),
                          Param("N", 2, 200, integer=True, doc="prompt length in training"),
                          Param("kappa", 1.0, 10.0, log=True, doc="condition number of Lambda (geometric spectrum, "
                                                                    "geometric mean 2, randomly rotated)")),
                         key="N")


@measurement
def population_flows(ctx: Context) -> list:
    """Reduced gradient flow on the population loss for several covariance spectra and prompt lengths."""
    cases = [("rotated (2, 1, 0.5), N = 5", sim.rotated_covariance([2.0, 1.0, 0.5], ctx.seed), 5),
             ("identity d = 3, N = 20", np.eye(3), 20)]
    if ctx.point:  # one case: a point of lsa.global_minimiser's space
        d, N, kappa = int(ctx.param("d", 3)), int(ctx.param("N", 5)), float(ctx.param("kappa", 4.0))
        spectrum = np.geomspace(kappa, 1.0, d) * 2.0 / kappa ** 0.5
        Lam = sim.rotated_covariance(spectrum.tolist(), ctx.seed)
        return [(f"rotated spectrum {np.round(spectrum, 3).tolist()}, N = {N}", Lam, N, _with_u(Lam, N, ctx))]
    if not ctx.quick:
        cases += [("rotated (2, 1.5, 1, 0.75, 0.5), N = 10", sim.rotated_covariance([2.0, 1.5, 1.0, 0.75, 0.5], ctx.seed), 10),
                  ("rotated (2, 1, 0.5), N = 100", sim.rotated_covariance([2.0, 1.0, 0.5], ctx.seed), 100),
                  ("diagonal (10, 1), N = 2", np.diag([10.0, 1.0]), 2)]
    return [(name, Lam, N, _with_u(Lam, N, ctx)) for name, Lam, N in cases]


def _with_u(Lam: np.ndarray, N: int, ctx: Context) -> dict:
    res = _flow_to_minimiser(sim.Problem(Lambda=Lam, N=N), ctx)
    res["u_pred"] = th.flow_limit(Lam, N)[0]
    return res
