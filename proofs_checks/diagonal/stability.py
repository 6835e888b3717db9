"""Claim: the mean-square linear stability of SGD at a minimum, on Dexter et al. 2024's synthetic Hessians and
at a diagonal network's interpolating minimum. Registered under ``diagonal`` (imported by
:mod:`proofs_checks.diagonal`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from solvable.sims import deep_linear as dlsim
from solvable.sims import diagonal as dsim
from solvable.sims import quadratic as qsim
from solvable.sims.engine.backend import asarray, namespace
from solvable.sims.engine.driver import train
from solvable.theory import linear_stability as ls

from ..framework.stats import SIZE, bonferroni_z, skew_corrected_t
from ..framework.registry import Context, Evidence, claim
from ..framework.space import Param, Space

DEXTER = "Dexter, Ocejo, Keerthi, Gupta, Acharya & Khanna 2024, A Precise Characterization of SGD Stability " \
         "Using Loss Surface Geometry (ICLR)"
WU = "Wu, Ma & E 2018, How SGD Selects the Global Minima in Over-parameterized Learning"


def _perron(hessians: np.ndarray, lr: float, batch: int) -> tuple[float, np.ndarray]:
    """rho and the PSD top eigenvector M* (d x d, trace 1) of the second-moment operator on the range of H:
    E||delta_t||^2 = rho^t tr M* exactly when delta_0 ~ N(0, M*)."""
    q = ls.range_basis(hessians.mean(axis=0))  # off it T is the identity: the flat directions of the minimum
    hr = np.einsum("ia,nij,jb->nab", q, hessians, q)
    op = ls.second_moment_operator(hr, lr, batch)
    evals, evecs = np.linalg.eigh((op + op.T) / 2)
    r = hr.shape[1]
    m = evecs[:, -1].reshape(r, r)
    m = (m + m.T) / 2
    m = q @ (m if np.trace(m) > 0 else -m) @ q.T
    return float(evals[-1]), m / np.trace(m)


def _draws(m: np.ndarray, runs: int, rng: np.random.Generator) -> np.ndarray:
    """``runs`` draws of N(0, m), m PSD (up to round-off)."""
    evals, evecs = np.linalg.eigh(m)
    root = evecs * np.sqrt(np.maximum(evals, 0.0))
    return rng.standard_normal((runs, m.shape[0])) @ root.T


def _steps(rho: float, run, start_sq: np.ndarray, runs: int) -> tuple[int, np.ndarray]:
    """How many steps the Monte Carlo mean of ||delta_t||^2 can be trusted for, and the run over them.

    The estimator's relative variance is about K_t / runs with K_t = E[X_t^2] / E[X_t]^2, X_t = ||delta_t||^2,
    which grows like K_0 kappa^t: with few, strongly curved samples a batch that holds them multiplies delta by a
    large factor, rarely, and the mean over runs is then carried by rare runs (at 8 steps of Dexter et al.'s
    coherent family with B = 3 one run's spread is 60 times its mean). A one-step pilot estimates kappa; the run
    takes the largest t <= 2 / |ln rho| (a predicted change of e^2) with sqrt(K_0 kappa^t / runs) <= 5 %."""
    k0 = float(np.mean(start_sq**2) / np.mean(start_sq) ** 2)
    one = run(1)
    kappa = max(float(np.mean(one**2) / np.mean(one) ** 2) / k0, 1.0 + 1e-12)
    cap = np.log(0.05**2 * runs / k0) / np.log(kappa)
    steps = int(np.clip(min(np.ceil(2 / abs(np.log(rho))), np.floor(cap)), 1, 2000))
    return steps, (one if steps == 1 else run(steps))


def _judge(sq: np.ndarray, pred: float) -> dict:
    mean, se = float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(sq.size))
    se = max(se, 1e-12 * abs(pred))  # identical runs (every sample's Hessian the same: SGD is GD)
    return {"empirical": mean, "predicted": pred, "z": abs(mean - pred) / se, "standard_error": se, "samples": sq}


def _t(sq: np.ndarray, pred: float) -> float:
    """The skew-corrected t-statistic of the runs' second moments against ``pred`` (0 for identical runs at it)."""
    if np.ptp(sq) <= 1e-12 * abs(pred):  # identical runs: SGD is GD, the mean is exact to round-off
        return 0.0 if abs(sq.mean() - pred) <= 1e-9 * abs(pred) else np.inf
    return skew_corrected_t(sq, pred)


def _quadratic_case(n: int, group: int, batch: int, ratio: float, runs: int, seed: int, ctx: Context) -> dict:
    problem = qsim.Problem.coherent(n, group)
    eta_star = ls.stability_threshold(problem.hessians, batch)
    lr = ratio * eta_star
    rho, m = _perron(problem.hessians, lr, batch)
    theta0 = _draws(m, runs, np.random.default_rng(seed))
    start = np.sum(theta0**2, axis=1)
    diverged = []

    def run(steps: int) -> np.ndarray:
        traj = qsim.simulate(problem, algorithm="sgd", theta0=theta0, lr=lr, steps=steps, batch_size=batch,
                             seed=seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
        diverged.append(int(np.sum(traj.status == "diverged")))
        return np.asarray(traj.observables["norm_sq"][:, -1]) / start.mean()

    steps, sq = _steps(rho, run, start, runs)
    out = _judge(sq, rho**steps)
    out.update(family="quadratic", model=f"quadratic, n = {n}, coherent group {group}", batch=batch, ratio=ratio, lr=lr,
               eta_star=eta_star, gd_edge=2 / float(np.linalg.eigvalsh(problem.mean_hessian)[-1]), rho=rho,
               steps=steps, diverged=sum(diverged))
    return out


def _diagonal_case(batch: int, ratio: float, runs: int, seed: int, ctx: Context, n: int = 8, d: int = 16) -> dict:
    """SGD at an interpolating minimum (u*, v*) of a diagonal network, started at theta* + delta_0,
    delta_0 ~ N(0, eps^2 M*) on the range of the Gauss-Newton Hessians g_i g_i^T, g_i = (2u*x_i, -2v*x_i)."""
    problem = dsim.Problem.random(n, d, 2, seed=seed)
    flow = dsim.simulate(problem, 0.3, t_max=1e5, rtol=1e-12, coordinates="full")
    z = flow.final["z"][0] if "z" in flow.final else np.concatenate([flow.final["u"][0], flow.final["v"][0]])
    u, v = z[:d], z[d:]
    grads = np.concatenate([2 * u * problem.X, -2 * v * problem.X], axis=1)  # (n, 2d): gradients of f_i
    hessians = np.einsum("ni,nj->nij", grads, grads)
    eta_star = ls.stability_threshold(hessians, batch)
    lr = ratio * eta_star
    rho, m = _perron(hessians, lr, batch)
    eps = 1e-6 * float(np.linalg.norm(z))
    delta0 = eps * _draws(m, runs, np.random.default_rng(seed))
    mdl = dsim.model(problem, np.ones(runs) * 0.3, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    start = asarray(z[None, :] + delta0, namespace(ctx.backend), ctx.dtype, ctx.device)
    mdl = dataclasses.replace(mdl, state0=(start,))
    q = ls.range_basis(hessians.mean(axis=0))
    diverged = []

    def run(steps: int) -> np.ndarray:
        # no stopping rule: near the minimum the loss is ~eps^2, far below any convergence threshold
        traj = train(mdl, "sgd", lr=lr, steps=steps, batch_size=batch, seed=seed, loss_tol=0.0, grad_tol=0.0)
        diverged.append(int(np.sum(traj.status == "diverged")))
        zt = traj.final["z"] if "z" in traj.final else np.concatenate([traj.final["u"], traj.final["v"]], axis=1)
        return np.sum(((zt - z[None, :]) @ q) ** 2, axis=1) / eps**2

    steps, sq = _steps(rho, run, np.sum((delta0 @ q) ** 2, axis=1) / eps**2, runs)
    out = _judge(sq, rho**steps)
    out.update(family="diagonal", model=f"diagonal network at its flow limit, n = {n}, d = {d}", batch=batch, ratio=ratio, lr=lr,
               eta_star=eta_star, gd_edge=2 / float(np.linalg.eigvalsh(hessians.mean(axis=0))[-1]), rho=rho,
               steps=steps, diverged=sum(diverged),
               residual=float(np.abs(problem.X @ (u**2 - v**2) - problem.y).max()))
    return out


def _chain(mats: list[np.ndarray], size: int) -> np.ndarray:
    """mats[-1] ... mats[0] (the identity of ``size`` when empty)."""
    out = np.eye(size)
    for w in mats:
        out = w @ out
    return out


def _deep_linear_case(batch: int, ratio: float, runs: int, seed: int, ctx: Context, n: int = 5, d_in: int = 8,
                      hidden: tuple[int, ...] = (4,), d_out: int = 2) -> dict:  # one hidden layer: two factors
    """SGD at an interpolating minimum of a deep linear network on data (n < d_in: a manifold of exact fits),
    with per-sample Gauss-Newton Hessians J_i^T J_i, J_i = d(W x_i)/d(layers): the block of layer j maps
    Delta_j to A_j Delta_j (B_j x_i) (A_j, B_j the products above and below)."""
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))
    problem = dlsim.Problem.from_data(X, Y, hidden)
    # an exact interpolating minimum: W = Y^T X^+^T plus a random part in X's null space, factored balanced
    # through the hidden width on a random frame (no flow needed: any point of the manifold of minima is one)
    pinv = np.linalg.pinv(X)
    w = Y.T @ pinv.T + 0.5 * rng.standard_normal((d_out, d_in)) @ (np.eye(d_in) - pinv @ X)
    u, sv, vt = np.linalg.svd(w, full_matrices=False)
    frame = np.linalg.qr(rng.standard_normal((hidden[0], d_out)))[0]
    layers = [frame @ (np.sqrt(sv)[:, None] * vt), (u * np.sqrt(sv)) @ frame.T]
    blocks = []
    for j in range(problem.depth):
        above, below = _chain(layers[j + 1:], layers[j].shape[0]), _chain(layers[:j], d_in)
        inputs = X @ below.T  # (n, h_{j-1}): B_j x_i
        blocks.append(np.einsum("oa,nb->noab", above, inputs).reshape(n, d_out, -1))
    jac = np.concatenate(blocks, axis=2)  # (n, d_out, P)
    hessians = np.einsum("nop,noq->npq", jac, jac)
    eta_star = ls.stability_threshold(hessians, batch)
    lr = ratio * eta_star
    rho, m = _perron(hessians, lr, batch)
    theta = np.concatenate([w.ravel() for w in layers])
    eps = 1e-6 * float(np.linalg.norm(theta))
    delta0 = eps * _draws(m, runs, np.random.default_rng(seed + 1))
    starts, offset = [], 0
    for w in layers:
        starts.append(w[None] + delta0[:, offset:offset + w.size].reshape((runs,) + w.shape))
        offset += w.size
    q = ls.range_basis(hessians.mean(axis=0))
    diverged = []

    def run(steps: int) -> np.ndarray:
        traj = dlsim.simulate(problem, algorithm="sgd", layers=starts, lr=lr, steps=steps, batch_size=batch,
                              seed=seed, loss_tol=0.0, grad_tol=0.0, backend=ctx.backend, dtype=ctx.dtype,
                              device=ctx.device)
        diverged.append(int(np.sum(traj.status == "diverged")))
        end = np.concatenate([traj.final[f"layer_{j + 1}"].reshape(runs, -1) for j in range(problem.depth)], axis=1)
        return np.sum(((end - theta[None, :]) @ q) ** 2, axis=1) / eps**2

    steps, sq = _steps(rho, run, np.sum((delta0 @ q) ** 2, axis=1) / eps**2, runs)
    out = _judge(sq, rho**steps)
    residual = float(np.abs(X @ _chain(layers, d_in).T - Y).max())
    out.update(family="deep_linear", model=f"deep linear network at an interpolating minimum, n = {n}, widths {(d_in,) + hidden + (d_out,)}",
               batch=batch, ratio=ratio, lr=lr, eta_star=eta_star,
               gd_edge=2 / float(np.linalg.eigvalsh(hessians.mean(axis=0))[-1]), rho=rho, steps=steps,
               diverged=sum(diverged), residual=residual)
    return out


def _draw(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 2, 1)
    for b, curve in d["boundary"].items():
        ax.plot(curve["group"], curve["ratio_to_gd_edge"], "-o", ms=3, label=f"B = {b}")
    ax.axhline(1.0, color="k", lw=0.7, ls="--", label="GD edge 2/lambda_max")
    ax.set_xlabel("coherent group size (of n samples)")
    ax.set_ylabel("eta*(B) / (2 / lambda_max(H))")
    ax.set_title("predicted mean-square boundary, Dexter et al.'s family", fontsize=8)
    ax.legend(fontsize=6)
    ax2 = fig.add_subplot(1, 2, 2)
    cases = d["cases"]
    x = np.arange(len(cases))
    ax2.semilogy(x, [c["predicted"] for c in cases], "_", ms=14, color="C0", label="rho^t (predicted)")
    z = d.get("z", 4.0)
    ax2.errorbar(x, [c["empirical"] for c in cases], yerr=[z * c["standard_error"] for c in cases], fmt=".",
                 color="C3", label=f"SGD, mean over runs (+- {z:.2g} s.e.)")
    ax2.axhline(1.0, color="k", lw=0.6)
    tag = {"quadratic": "Q", "diagonal": "D", "deep_linear": "L"}
    ax2.set_xticks(x, [f"{tag[c['family']]} B{c['batch']} x{c['ratio']:g}" for c in cases],
                   rotation=90, fontsize=5)
    ax2.set_ylabel("E||delta_t||^2 / E||delta_0||^2")
    ax2.set_title("below eta*: decay; above: growth (Q quadratic, D diagonal, L deep linear)", fontsize=7)
    ax2.legend(fontsize=6)


@claim(id="diagonal.sgd_stability_boundary", kind="simulation", figure=_draw,
       formula=r"E\|\delta_t\|^2 = \rho(\mathcal T_{\eta,B})^t\,E\|\delta_0\|^2,\quad "
               r"\eta^\star(B) = 1/\lambda_{\max}(\mathcal C_B, \mathcal A) \le 2/\lambda_{\max}(H)",
       precision=(1e-3, "Monte Carlo over runs"),
       source=f"{DEXTER} (necessary and sufficient conditions for linear stability in the step, the batch size and "
              f"the Hessians; their coherence measure is not reproduced); {WU}, Sec. 3 (the second-moment map); the "
              "closed-form boundary is derived in theory.linear_stability",
       statement="Near a minimum SGD's second moment evolves by the linear map T (step, batch size, per-sample "
                 "Hessians): from its Perron direction E||delta_t||^2 = rho^t E||delta_0||^2, decaying below the "
                 "boundary eta*(B) = 1/lambda_max(C_B, A) and growing above it, on Dexter et al.'s synthetic "
                 "Hessians of tunable coherence and at interpolating minima of a diagonal and of a deep linear "
                 "network; eta* <= 2/lambda_max(H) with equality for full batches.",
       space=Space((Param("ratio", 0.7, 1.3, doc="step over the predicted boundary eta*(B)"),
                    Param("batch", 1, 4, integer=True, doc="mini-batch size B"),
                    Param("group", 1, 12, integer=True, doc="coherent group of the synthetic Hessians (n = 12)")),
                   constraints=(("|ratio - 1| >= 0.05: the predicted change e^2 is reached in at most ~40 / |ratio - 1| "
                                 "steps (the run length grows without bound at the boundary)",
                                 lambda p: abs(p["ratio"] - 1) >= 0.05),), key="ratio"))
def sgd_stability_boundary(ctx: Context) -> Evidence:
    n = 12
    runs = 2000 if ctx.quick else 8000
    given = ctx.param("ratio", None) is not None
    ratios = (float(ctx.param("ratio", 0.9)),) if given else (0.9, 1.1)
    batches = (int(ctx.param("batch", 1)),) if ctx.param("batch", None) is not None else (1, 3)
    groups = (int(ctx.param("group", 4)),) if ctx.param("group", None) is not None else ((1, 4, 12) if not ctx.quick else (4, 12))
    cases = []
    for g in groups:
        for b in batches:
            for r in ratios:
                cases.append(_quadratic_case(n, g, b, r, runs, ctx.seed + 1, ctx))
    for b in batches:
        for r in ratios:
            cases.append(_diagonal_case(b, r, runs, ctx.seed + 2, ctx))
            cases.append(_deep_linear_case(b, r, runs, ctx.seed + 3, ctx))
    boundary = {}
    for b in (1, 2, 4, 12):
        gs = list(range(1, n + 1))
        boundary[b] = {"group": gs, "ratio_to_gd_edge": [
            ls.stability_threshold(qsim.Problem.coherent(n, g).hessians, b) / 1.0 for g in gs]}  # GD edge = 2/2 = 1
    # the headline is the rate rho of the second-moment map: a rate f rho predicts (f rho)^t = f^t rho^t after t steps
    samples = [c.pop("samples") for c in cases]
    z = bonferroni_z(len(cases))
    score = lambda f: max(abs(_t(x, f ** c["steps"] * c["predicted"])) for x, c in zip(samples, cases)) / z  # noqa: E731
    return Evidence(
        score=score, false_alarm=SIZE,
        predicted=[round(c["predicted"], 4) for c in cases], observed=[round(c["empirical"], 4) for c in cases],
        quantity="E||delta_t||^2 / E||delta_0||^2 after t steps (t = 2/|ln rho|, or fewer where the mean over runs "
                 "would be carried by rare runs), per case (quadratic cases, then the "
                 "diagonal and deep linear networks', alternating; steps at 0.9 and 1.1 x eta*)",
        error=score(1.0), tolerance=1.0,
        error_measure=f"worst skew-corrected t-statistic (Hall 1992) of the mean over runs against rho^t, over the "
                      f"cases, in units of {z:.3g} (the resolution is of the rate rho: f rho predicts f^t rho^t)",
        tolerance_reason=f"Monte Carlo: {runs} independent runs a case; {z:.3g} is the two-sided normal quantile at "
                         f"{SIZE:g} / {len(cases)} cases (Bonferroni), and the skew correction keeps the t-statistic "
                         "normal to O(1/runs) for these right-skewed second moments; the run length keeps the "
                         "estimator's relative spread under 5 %; the networks' nonlinearity adds a relative O(1e-6) (the perturbation's "
                         "size) and their residual at the flow limit an O(residual / 1e-6) drift, both far below the "
                         "Monte Carlo error",
        conditions={"below eta*, rho < 1 and the runs' second moment decays": all(
                        (c["rho"] < 1) == (c["ratio"] < 1) and (c["empirical"] < 1) == (c["ratio"] < 1) for c in cases),
                    "eta* <= 2 / lambda_max(H) (GD's edge), with equality for a full batch": all(
                        c["eta_star"] <= c["gd_edge"] * (1 + 1e-10) for c in cases) and abs(
                        ls.stability_threshold(qsim.Problem.coherent(n, 4).hessians, n) - 1.0) < 1e-10,
                    "no run diverged": all(c["diverged"] == 0 for c in cases)},
        details={"cases": cases, "boundary": boundary, "runs": runs, "z": z},
    )
