"""Claims about matrix sensing with factorised models (incremental learning, over-parameterisation,
preconditioning, implicit low-rank bias, robust recovery).

Conventions: the l2 loss is ``s ||A(M) - y||^2`` with the library's ``s = 1/2`` unless a claim says it uses a
paper's ``s = 1/4``; operators are near-isometric (:mod:`solvable.sims.matrix_sensing.operator`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from solvable.sims import matrix_sensing as sim
from solvable.sims.matrix_sensing.measure import crossing_times, iterations_to, linear_rate, local_exponents
from solvable.theory import matrix_sensing as th

from . import power
from .registry import Context, Evidence, OutOfReach, claim, measurement, symbolic_evidence
from .space import Param, Space

JIN = "Jin, Li, Lyu, Du & Lee 2023, Understanding Incremental Learning of Gradient Descent (matrix sensing)"
LI = "Li, Luo & Lyu 2021, Towards Resolving the Implicit Bias of Gradient Descent for Matrix Factorization"
XIONG = "Xiong, Ding & Du 2023, How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing"
XU = "Xu, Shen, Ma & Chi 2023, The Power of Preconditioning in Overparameterized Low-Rank Matrix Sensing"
GUNASEKAR = "Gunasekar, Woodworth, Bhojanapalli, Neyshabur & Srebro 2017, Implicit Regularization in Matrix Factorization"
ARORA = "Arora, Cohen, Hu & Luo 2019, Implicit Regularization in Deep Matrix Factorization"
MA = "Ma & Fattahi 2023, Global Convergence of Sub-gradient Method for Robust Matrix Recovery"

RTOL = 1e-10
#: Rate constant c = 8 s of the mode equation at the library's loss scale s = 1/2.
C = 8 * 0.5


def _runs_converged(traj, name: str) -> dict[str, bool]:
    return {f"{name}: no run diverged": bool(np.all(traj.status != "diverged"))}


# ---------------------------------------------------------------------------
# Incremental learning (Jin et al. 2023; the commuting case in closed form)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Staircase:
    problem: sim.Problem
    sigma: np.ndarray
    alphas: np.ndarray
    t: np.ndarray
    runs: dict  # name -> (k, init, trajectory, unit-scale factor norm^2)


@measurement
def staircase(ctx: Context) -> Staircase:
    """Population symmetric sensing, geometric spectrum (ratio 2), gradient flow from three scales.

    Runs: aligned k = r (the commuting case), random k = r + 2 and random k = r - 1.
    Quick: n = 10, sigma = (1, 1/2, 1/4); full: n = 30, sigma = (1, 1/2, 1/4, 1/8).
    """
    n, sigma = (10, np.array([1.0, 0.5, 0.25])) if ctx.quick else (30, 1.0 / 2.0 ** np.arange(4))
    if ctx.point:  # a point of the claim's space: n, the rank and the ratio of the geometric spectrum
        n = int(ctx.param("n", n))
        sigma = 1.0 / float(ctx.param("ratio", 2.0)) ** np.arange(int(ctx.param("r", sigma.size)))
    r = sigma.size
    problem = sim.Problem.random(n, n, r, symmetric=True, operator="population", singular_values=sigma, seed=ctx.seed)
    alphas = np.array([1e-3, 1e-5, 1e-7])
    t_max = 1.25 * float(th.learning_time(sigma[-1], alphas[-1] ** 2))
    t = np.linspace(0.0, t_max, 4001)
    runs = {}
    for name, k, init in (("aligned k = r", r, "aligned"), ("random k = r + 2", r + 2, "random"),
                          ("random k = r - 1", r - 1, "random")):
        traj = sim.simulate(problem, alphas, k=k, init=init, t_max=t_max, t_eval=t, rtol=RTOL, loss_tol=0.0,
                            seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
        unit = sim.initial_state(problem, 1.0, k=k, init=init, seed=ctx.seed)[0][0]
        runs[name] = (k, init, traj, float(np.linalg.norm(unit, 2) ** 2))
    return Staircase(problem, sigma, alphas, t, runs)


def _draw_staircase(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    for i, s in enumerate(d["sigma"]):
        ax.plot(d["t"], d["sv"][:, i], color=f"C{i}", label=f"sigma_{i + 1} = {s:g}")
        ax.axvline(d["predicted_times"][i], color=f"C{i}", ls=":", lw=1)
    ax.set_xlabel("t")
    ax.set_ylabel("singular values of X X^T")
    ax.set_title(f"random start, k = r + 2, alpha = {d['alpha']:g}; dotted: (2 ln(1/alpha) + C_i)/(4 sigma_i)",
                 fontsize=8)
    ax.legend(fontsize=7)


@claim(id="matrix_sensing.incremental_learning", kind="simulation", figure=_draw_staircase,
       precision=(RTOL, "the learning times (rtol 1e-10)"),
       formula=r"t_i = \frac{1}{4\sigma_i}\ln\!\Big(\frac{\sigma_i}{\alpha^2} - 1\Big),\qquad "
               r"\frac{d t_i}{d\ln(1/\alpha)} = \frac{1}{2\sigma_i}",
       source=f"{JIN}, Sec. 3 (incremental learning); closed form of the commuting case (theory.matrix_sensing)",
       statement="From a small start gradient flow learns the eigenvalues of M* one at a time, in decreasing order: "
                 "exactly at t_i = ln(sigma_i/alpha^2 - 1)/(4 sigma_i) in the commuting case, and with "
                 "dt_i/dln(1/alpha) = 1/(2 sigma_i) from a random start, over- (k > r) or under- (k < r) parameterised.",
       space=Space((Param("n", 5, 20, integer=True, doc="M* is n x n (PSD)"),
                    Param("r", 2, 4, integer=True, doc="rank of M*"),
                    Param("ratio", 2.0, 4.0, doc="sigma_i / sigma_(i+1) of the geometric spectrum (1, 1/ratio, ...); "
                                                 "at 1.5 the search found the rank-(r - 1) run still 1e-6 away from "
                                                 "the best approximation at t_max = 1.25 t_r: its last approach goes "
                                                 "at the rate of the gap sigma_(r-1) - sigma_r")),
                   constraints=(("r + 2 <= n (the over-parameterised run has k = r + 2 columns)",
                                 lambda p: p["r"] + 2 <= p["n"]),), key="ratio"))
def incremental_learning(ctx: Context) -> Evidence:
    s = staircase(ctx)
    parts, conditions, rows = [], {}, {}
    L = np.log(1 / s.alphas)
    for name, (k, init, traj, unit) in s.runs.items():
        modes = min(k, s.sigma.size)
        sig = s.sigma[:modes]
        times = np.array([crossing_times(s.t, traj.observables["sv"][b], sig) for b in range(s.alphas.size)])
        conditions[f"{name}: no run diverged"] = bool(np.all(traj.status != "diverged"))
        conditions[f"{name}: modes learned in decreasing order"] = bool(np.all(np.diff(times, axis=1) > 0))
        # Integration error of a crossing time: relative error N rtol on x, 2 N rtol on s = x^2, over
        # the slope ds/dt = C sigma^2 / 4 at s = sigma/2: dt = 4 N rtol / (C sigma).
        dt = 4 * traj.stop_step[:, None] * RTOL / (C * sig[None, :])
        if init == "aligned":
            pred = th.learning_time(sig[None, :], s.alphas[:, None] ** 2)
            err = np.abs(times - pred)
            parts.append(power.absolute(times, pred, dt))
            rows[name] = {"predicted": pred, "observed": times, "relative_error": err / pred, "budget": dt / pred}
        else:
            slopes = np.diff(times, axis=0) / np.diff(L)[:, None]
            pred = th.learning_slope(sig)
            rel = np.abs(slopes / pred - 1)
            # Neglected terms of t_i = (2 ln(1/alpha) + C_i)/(4 sigma_i), in units of ln: O(s0/sigma_i) with
            # s0 <= alpha^2 ||X0/alpha||^2 (the expansion of ln(sigma/s0 - 1), the cubic term of the linear
            # phase), and the coupling between modes: when mode j saturates, mode j + 1 has gathered energy
            # alpha^(2(1 - sigma_(j+1)/sigma_j)) ||X0/alpha||^2, which tilts the learned directions and so the
            # offsets C_i of every later mode; the slowest of these, g = min_j (1 - sigma_(j+1)/sigma_j), bounds
            # them all. In slope units divided by 2 dL; plus the two crossings' integration errors.
            g = float(np.min(1 - s.sigma[1:] / s.sigma[:-1]))
            a = s.alphas[:-1, None]
            neglected = unit * (a**2 / sig[None, :] + a ** (2 * g))
            budget = (neglected + 2 * C * sig[None, :] * np.maximum(dt[:-1], dt[1:]) / 2) / (2 * np.diff(L)[:, None])
            parts.append(lambda f, slopes=slopes, pred=pred, budget=budget:
                         float(np.max(np.abs(slopes / (f * pred) - 1) / budget)))
            rows[name] = {"predicted_slope": pred, "observed_slope": slopes, "relative_error": rel, "budget": budget}
            if k < s.sigma.size:
                best = th.greedy_low_rank(s.problem.M_star, max_rank=k).M[-1]
                dist = np.linalg.norm(traj.final["M"] - best, axis=(1, 2)) / np.linalg.norm(best)
                conditions[f"{name}: ends at the best rank-{k} approximation (distance < 1e-6)"] = bool(
                    np.all(dist < 1e-6))
    k_over, _, traj_over, _ = s.runs["random k = r + 2"]
    over = rows["random k = r + 2"]
    alpha = float(s.alphas[-1])
    t_last = crossing_times(s.t, traj_over.observables["sv"][-1], s.sigma)
    offsets = t_last * C * s.sigma - 2 * np.log(1 / alpha)
    score = power.worst(*parts)
    return Evidence(
        score=score, false_alarm=0.0,
        predicted=[float(f"{x:.6g}") for x in over["predicted_slope"]],
        observed=[float(f"{x:.6g}") for x in over["observed_slope"][-1]],
        quantity="dt_i/dln(1/alpha) per mode (random start, k = r + 2)",
        error=score(1.0), tolerance=1.0,
        error_measure="worst ratio to its budget of: |t_i - closed form| (aligned start, every mode and alpha), and "
                      "|slope/prediction - 1| of t_i against ln(1/alpha) (random starts, every mode and alpha pair)",
        tolerance_reason="budgets per number: integration (local error rtol = 1e-10 accumulating over the steps, through "
                         "ds/dt at the crossing), and for the slopes the neglected orders of the small-alpha "
                         "expansion: s0/sigma_i and the coupling alpha^(2 g), g = min_j (1 - sigma_(j+1)/sigma_j), "
                         "through which a mode's energy tilts the directions learned before it; "
                         "the logit interpolation is exact for a logistic mode",
        conditions=conditions,
        details={"sigma": s.sigma, "alpha": alpha, "t": s.t, "sv": traj_over.observables["sv"][-1][:, : s.sigma.size],
                 "predicted_times": (2 * np.log(1 / alpha) + offsets) / (C * s.sigma), "rows": rows},
    )


@measurement
def greedy_runs(ctx: Context) -> tuple:
    """GD on a symmetric Gaussian operator from four scales, with M recorded every other step."""
    n, m, sigma = (10, 400, np.array([1.0, 0.5, 0.25])) if ctx.quick else (16, 1000, 1.0 / 2.0 ** np.arange(4))
    n, m = int(ctx.param("n", n)), int(ctx.param("m", m))
    problem = sim.Problem.random(n, n, sigma.size, m=m, symmetric=True, operator="symmetric", singular_values=sigma,
                                 seed=ctx.seed)
    alphas = np.array([1e-2, 1e-4, 1e-6, 1e-8])
    lr = 0.02
    steps = int(1.1 * th.learning_time(sigma[-1], alphas[-1] ** 2) / lr)
    traj = sim.simulate(problem, alphas, "gd", k=sigma.size + 2, lr=lr, steps=steps,
                        t_eval=np.arange(0, steps + 1, 2), record_M=True, record_sv=False, seed=ctx.seed,
                        backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    stages = th.greedy_low_rank(A=problem.A, y=problem.y, max_rank=sigma.size)
    return problem, alphas, traj, stages


def _draw_greedy(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    for i, dist in enumerate(d["distance"]):
        ax.loglog(d["alpha"], dist, "o-", label=f"stage {i + 1}")
    ax.set_xlabel("alpha")
    ax.set_ylabel("min_t ||X X^T - GLRL stage|| / ||M*||")
    ax.set_title("GD passes ever closer to each greedy low-rank stage as alpha -> 0", fontsize=8)
    ax.legend(fontsize=7)


@claim(id="matrix_sensing.greedy_low_rank", kind="simulation", figure=_draw_greedy,
       formula=r"\alpha \to 0:\quad \min_t \|X_tX_t^\top - \hat M_i\|_F \to 0,\quad "
               r"\hat M_i = \text{GLRL stage } i",
       source=f"{LI}, Algorithm 1 and Thm 5.3; {JIN}, Thm 3.2",
       statement="With small initialisation, GD on a Gaussian sensing problem passes near each stage of greedy "
                 "low-rank learning (rank 1, 2, ...), ever closer as alpha decreases.",
       space=Space((Param("n", 6, 16, integer=True, doc="M* is n x n (PSD, spectrum 1, 1/2, 1/4)"),
                    Param("m", 100, 1000, integer=True, doc="Gaussian measurements")),
                   constraints=(("m >= 8 n r: many more measurements than the n r degrees of freedom (Li et al.'s "
                                 "RIP hypothesis, Thm 5.3)", lambda p: p["m"] >= 8 * 3 * p["n"]),), key="m"))
def greedy_low_rank(ctx: Context) -> Evidence:
    problem, alphas, traj, stages = greedy_runs(ctx)
    M = traj.observables["M"]
    norm = np.linalg.norm(problem.M_star)
    intermediate = stages.M[:-1]  # the last stage is M* itself, reached at the end
    dist = np.array([np.nanmin(np.linalg.norm(M - S, axis=(2, 3)), axis=1) / norm for S in intermediate])
    neighbours = np.concatenate([np.zeros((1,) + stages.M.shape[1:]), stages.M])
    gaps = np.array([min(np.linalg.norm(neighbours[i + 1] - neighbours[j]) for j in range(len(neighbours))
                         if j != i + 1) / norm for i in range(len(intermediate))])
    monotone = np.all(np.diff(dist, axis=1) < 0, axis=1)
    last = M[-1]  # the smallest alpha's path

    def score(f: float) -> float:
        """The closest approach of the smallest alpha's path to f x each stage, in units of the stage gap."""
        return max(float(np.nanmin(np.linalg.norm(last - f * S, axis=(1, 2)))) / norm / g
                   for S, g in zip(intermediate, gaps))

    return Evidence(
        predicted=0.0, observed=[float(f"{x:.3g}") for x in dist[:, -1]],
        quantity=f"min over t of the distance to GLRL stages 1..{len(intermediate)} at alpha = {alphas[-1]:g}",
        unit="fraction of the stage gap",
        error=score(1.0), tolerance=0.1, score=score, false_alarm=0.0,
        error_measure="worst, over the intermediate stages, of the closest approach at the smallest alpha divided by "
                      "the distance from that stage to its nearest other stage (0 and M* included)",
        tolerance_reason="passing a stage means coming closer to it than a tenth of what separates it from any other "
                         "stage; the approach closes slowly (a power of alpha set by the eigen-gaps, about alpha^(1/3) "
                         "here), which is why the smallest alpha is 1e-8",
        conditions={**{f"stage {i + 1}: the closest approach shrinks with every decrease of alpha": bool(ok)
                       for i, ok in enumerate(monotone)},
                    "every GLRL stage converged (L-BFGS)": bool(np.all(stages.converged)),
                    **_runs_converged(traj, "GD")},
        details={"alpha": alphas, "distance": dist, "gap": gaps, "stage_loss": stages.loss},
    )


# ---------------------------------------------------------------------------
# Over-parameterisation (Xiong, Ding, Du 2023)
# ---------------------------------------------------------------------------
@measurement
def slowdown_runs(ctx: Context) -> dict:
    """Population GD, lr = 0.1 (s = 1/2): symmetric k = r + 2 and k = r, asymmetric k = r + 2 from four scales.

    Full: n = 50, r = 3 (Xiong et al.'s figure size), asymmetric alpha in {0.01, ..., 0.08}; quick: n = 10,
    r = 2, alpha in {0.04, 0.08, 0.16}. kappa = 2.
    """
    n, r = (10, 2) if ctx.quick else (50, 3)
    lr = 0.1
    sym = sim.Problem.random(n, n, r, symmetric=True, operator="population", kappa=2.0, seed=ctx.seed)
    asym = sim.Problem.random(n, n, r, operator="population", kappa=2.0, seed=ctx.seed)
    kw = dict(record_sv=False, loss_tol=0.0, seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    steps_over = 20_000 if ctx.quick else 200_000
    over = sim.simulate(sym, 0.1, "gd", k=r + 2, lr=lr, steps=steps_over,
                        t_eval=np.unique(np.geomspace(1, steps_over, 400).astype(int)), **kw)
    exact = sim.simulate(sym, 0.1, "gd", k=r, lr=lr, steps=3000, t_eval=np.arange(0, 3001, 5), **kw)
    # quick: larger scales (faster rates, fewer steps); the Richardson budget absorbs their larger corrections
    alphas = np.array([0.04, 0.08, 0.16]) if ctx.quick else np.array([0.01, 0.02, 0.04, 0.08])
    lr_asym, steps_asym = 0.25, (30_000 if ctx.quick else 200_000)
    # every 10 steps: at the largest alpha the error crosses the fit window [1e-12, 1e-5] in a few hundred steps,
    # and outputs every 100 left three points in it (a fitted rate too noisy to compare, or none at all)
    every = 10
    asym_traj = sim.simulate(asym, alphas, "gd", k=r + 2, beta=alphas / 3, lr=lr_asym, steps=steps_asym,
                             t_eval=np.arange(0, steps_asym + 1, every), **kw)
    start = sim.initial_state(asym, alphas, factorisation="asymmetric", k=r + 2, beta=alphas / 3, seed=ctx.seed)
    return {"sym": sym, "r": r, "n": n, "lr": lr, "over": over, "exact": exact, "alphas": alphas,
            "lr_asym": lr_asym, "asym": asym_traj, "asym_start": tuple(np.asarray(x) for x in start)}


def _spurious_rate(d: dict, r: int, s: float, slowest: bool = True) -> np.ndarray:
    r"""The asymmetric model's asymptotic rate per step, from its limit (derived here; Xiong et al., Thm 4.1, give the
    order :math:`e^{-\Theta(\alpha^2 T)}`).

    Near the limit :math:`G` annihilates :math:`k - r` directions, and the error's spurious part
    :math:`F_\perp G_\perp^\top` shrinks by :math:`1 - 2s\eta(\mu + \nu)` a step, :math:`\mu` among the eigenvalues of
    :math:`FF^\top` beyond the r-th and :math:`\nu \to 0` of :math:`GG^\top`: the slowest rate is
    :math:`-\ln(1 - 2s\eta\mu_{\min})`. :math:`\mu` is what the balance :math:`F^\top F - G^\top G` (conserved by the
    flow, :math:`\alpha^2(\bar F^\top\bar F - \bar G^\top\bar G/9)` from :math:`F_0 = \alpha\bar F`,
    :math:`G_0 = (\alpha/3)\bar G`) leaves on the spurious side, hence :math:`\Theta(\alpha^2)`.
    ``slowest=False``: the rate of the fastest spurious mode instead (the k - r spurious modes decay together)."""
    asym = d["asym"]
    out = []
    for b in range(d["alphas"].size):
        F = asym.final["F"][b]
        mu = np.sort(np.linalg.eigvalsh(F @ F.T))[::-1][r:F.shape[1]]
        out.append(-np.log(1 - 2 * s * d["lr_asym"] * float(mu.min() if slowest else mu.max())))
    return np.array(out)


def _draw_slowdown(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 2, 1)
    ax.loglog(d["T_over"], d["err2_over"], label="symmetric, k = r + 2")
    ax.loglog(d["T_over"], d["tail"], "k--", label="p / (8 s eta T)^2")
    ax.set_xlabel("iteration T")
    ax.set_ylabel("||X X^T - M*||_F^2")
    ax.set_title("1/T^2 (population, GD)", fontsize=8)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 2, 2)
    ax.loglog(d["alpha"], d["asym_rate"], "o", label="asymmetric k = r + 2: fitted rate")
    ax.loglog(d["alpha"], d["asym_rate"][0] * (d["alpha"] / d["alpha"][0]) ** 2, "k--", label="slope 2")
    ax.set_xlabel("alpha")
    ax.set_ylabel("linear rate per step")
    ax.set_title("rate ~ alpha^2", fontsize=8)
    ax.legend(fontsize=7)


@claim(id="matrix_sensing.overparam_slowdown", kind="rate_fit", figure=_draw_slowdown,
       formula=r"k>r:\ \|XX^\top - M^*\|_F^2 \simeq \frac{\min(k-r, n-r)}{(8s\eta T)^2};\quad "
               r"k=r:\ e^{-4s\sigma_r\eta T};\quad FG^\top,\,k>r:\ e^{-\Theta(\alpha^2 T)}",
       source=f"{XIONG}, Thms 3.1-3.3 and 4.1 (constants derived here for the population case, theory.matrix_sensing)",
       statement="Symmetric over-parameterised GD converges at Theta(1/T^2) (population constant p/(8 s eta T)^2); "
                 "exact parameterisation converges linearly at rate 4 s sigma_r eta; the asymmetric over-parameterised "
                 "model converges linearly at -ln(1 - 2 s eta mu), mu the smallest spurious eigenvalue of F F^T at "
                 "the limit (derived here), which is Theta(alpha^2); over a finite window the fitted rate lies "
                 "between the slowest and the fastest spurious mode's.")
def overparam_slowdown(ctx: Context) -> Evidence:
    d = slowdown_runs(ctx)
    s, lr, r, n = 0.5, d["lr"], d["r"], d["n"]
    norm = np.linalg.norm(d["sym"].M_star)
    parts = {}
    # (a) 1/sqrt(e^2/p) = 8 s eta T + 1/z0 exactly for the continuous tail: its slope in T is 8 s eta.
    p = min(2, n - r)
    T = d["over"].times
    err2 = (d["over"].observables["rel_error"][0] * norm) ** 2
    late = T >= T[-1] / 10
    slope, intercept = np.polyfit(T[late], 1 / np.sqrt(err2[late] / p), 1)
    rel = abs(slope / (8 * s * lr) - 1)
    # GD adds 2 s eta z per step to the slope (relative; z <= z(T0) ~ 1/(8 s eta T0)); unequal 1/z0 among the
    # p eigenvalues bend the line by at most |intercept| / (8 s eta T0), relative.
    T0 = T[late][0]
    budget_a = 1 / (4 * T0) + abs(intercept) / (8 * s * lr * T0)
    parts["symmetric k = r + 2: slope of (p/e^2)^(1/2) in T vs 8 s eta"] = rel / budget_a
    loglog = float(np.polyfit(np.log(T[late]), np.log(err2[late]), 1)[0])
    # (b) k = r: the tail below alpha^2/100, where the leak out of range(M*) (rate 4 s sigma_r) dominates the
    # in-range modes (rate 8 s sigma_r, started alpha^-2 times larger).
    e = d["exact"].observables["rel_error"][0]
    rate, count = linear_rate(d["exact"].times, e, 1e-13, 0.1**2 / 100)
    sigma_r = float(d["sym"].singular_values[r - 1])
    pred_rate = -np.log(1 - lr * th.exact_rate(sigma_r, s))
    rel_b = abs(rate / pred_rate - 1)
    # A faster component with amplitude <= 1 % at the window start biases the fitted slope by <= 0.01 / ln(range).
    budget_b = 0.01 / np.log(0.1**2 / 100 / 1e-13)
    parts["symmetric k = r: fitted linear rate vs -ln(1 - 4 s eta sigma_r)"] = rel_b / budget_b
    # (c) asymmetric: the rate is alpha^2 times a constant of the problem, through the conserved imbalance.
    asym, alphas, lr_a = d["asym"], d["alphas"], d["lr_asym"]
    # the window [1e-12, 1e-5]: the rate -ln(1 - 2 s eta (mu + nu)) carries G's spurious eigenvalue nu, which falls
    # as the error squared (over [1e-11, 1e-4] full seed 0's rate at alpha = 0.01 read 8e-4 fast), and 1e-12 stays
    # 1e3 above the round-off floor of F G^T - M*
    lo, hi = 1e-12, 1e-5
    fits = [linear_rate(asym.times, asym.observables["rel_error"][b], lo, hi) for b in range(alphas.size)]
    rates = np.array([f[0] for f in fits])
    pred_c = _spurious_rate(d, r, s)
    # The k - r spurious modes decay together, at -ln(1 - 2 s eta mu_i) each: the log of their sum is convex in time,
    # so a log-linear fit over the window reads a rate between the slowest's (the asymptote) and the fastest's. With
    # well separated spurious eigenvalues the fit is the slowest's; with close ones (full seed 5: mu2/mu1 = 1.05-1.1)
    # it reads up to 1 % faster over these windows, which the asymptote alone would call a failure.
    top_c = _spurious_rate(d, r, s, slowest=False)
    # a faster component of <= 1 % at the window's start biases the log-linear fit by <= 0.01 / ln(1e7), as in (b)
    budget_c = 0.01 / np.log(hi / lo)

    def outside(f: float) -> float:
        """How far the fitted rates fall outside [f x slowest, f x fastest spurious rate], over the budget."""
        below, above = f * pred_c - rates, rates - f * top_c
        return float(np.max(np.maximum(np.maximum(below, above), 0.0) / (f * pred_c * budget_c)))

    parts["asymmetric k = r + 2: fitted rate vs the spurious modes' rates -ln(1 - 2 s eta mu_i)"] = outside(1.0)
    local = local_exponents(alphas, pred_c)
    worst = max(parts.values())

    def score(f: float) -> float:
        """The three parts with f x each predicted rate (the slope 8 s eta, the exact rate, the alpha^2 rate)."""
        return max(abs(slope / (f * 8 * s * lr) - 1) / budget_a, abs(rate / (f * pred_rate) - 1) / budget_b,
                   outside(f))

    return Evidence(
        predicted=[8 * s * lr, float(f"{pred_rate:.6g}")] + [float(f"{x:.6g}") for x in pred_c],
        observed=[float(f"{slope:.6g}"), float(f"{rate:.6g}")] + [float(f"{x:.6g}") for x in rates],
        quantity="(a) slope of (p/e^2)^(1/2) in T, (b) linear rate per step at k = r, (c) the asymmetric rate per step "
                 f"at alpha = {', '.join(f'{a:g}' for a in alphas)}",
        error=float(worst), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure="worst ratio, over (a), (b), (c), of the relative departure from the prediction (for (c): from "
                      "the interval between the slowest and the fastest spurious rate) to its budget",
        tolerance_reason="(a) GD's own term 2 s eta z (relative 1/(4 T0)) plus the bending by unequal initial "
                         "eigenvalues, |intercept|/(8 s eta T0); (b) and (c) a faster component of at most 1 % at the "
                         "window start biases a log-linear fit by 0.01/ln(window range); (c) the k - r spurious modes "
                         "decay together, so over a finite window the fitted rate lies between the slowest one's "
                         "(the asymptote, the headline) and the fastest one's (equal when the spurious eigenvalues "
                         "are well apart; 1 % above the slowest at full seed 5, mu2/mu1 = 1.05-1.1), each end "
                         "widened by that budget; the Theta(alpha^2) order "
                         "leaves its constant free, so the alpha dependence is a condition on the smallest pair's local "
                         "exponent (2 +- 0.5: the corrections are O(alpha^2), 0.1-0.5 at alpha = 0.04-0.16)",
        conditions={"(a) the window is past the plateau (>= 10 outputs)": bool(late.sum() >= 10),
                    "(b) the fit window holds >= 5 outputs": count >= 5,
                    "(c) every asymmetric run's fit window holds >= 5 outputs": all(f[1] >= 5 for f in fits),
                    f"(c) Theta(alpha^2): the rate's local exponent between the two smallest alphas within 2 +- 0.5 "
                    f"({local[0]:.3f})": bool(abs(local[0] - 2) <= 0.5),

                    **_runs_converged(d["over"], "symmetric k > r"), **_runs_converged(asym, "asymmetric")},
        details={"parts": parts, "loglog_slope_last_decade": loglog, "T_over": T, "err2_over": err2,
                 "tail": th.overparam_tail(p, np.maximum(T, 1) * lr, s), "alpha": d["alphas"], "asym_rate": rates,
                 "asym_rate_predicted": pred_c, "asym_rate_fastest_spurious": top_c, "local_exponents": local,
                 "intercept": intercept},
        note=f"log-log slope of the squared error over the last decade: {loglog:.4f} (-2 asymptotically); the "
             f"asymmetric rate over alpha^2 is {', '.join(f'{x / a**2:.3g}' for x, a in zip(pred_c, alphas))} at alpha = "
             f"{', '.join(f'{a:g}' for a in alphas)} (local exponents {', '.join(f'{x:.3f}' for x in local)}, tending "
             f"to 2 as alpha -> 0)",
    )


# ---------------------------------------------------------------------------
# ScaledGD(lambda) against GD over the condition number (Xu et al. 2023)
# ---------------------------------------------------------------------------
@measurement
def condition_runs(ctx: Context) -> dict:
    """GD and ScaledGD(lambda = sigma_r / 10), both with Xu et al.'s loss (1/4)||A(XX^T) - y||^2 and eta = 0.2,
    over-parameterised (k = r + 2), from alpha = 1e-6, until relative error 1e-3."""
    n, r, m, kappas = (12, 2, 400, np.array([1.0, 10.0, 100.0])) if ctx.quick else (
        20, 3, 800, np.array([1.0, 3.0, 10.0, 30.0, 100.0]))
    alpha, lr, eps = 1e-6, 0.2, 1e-3
    out = {"kappa": kappas, "gd": [], "scaledgd": [], "scaledgd_rate": [], "predicted": [], "n": n, "r": r, "m": m,
           "eps": eps}
    for kappa in kappas:
        problem = sim.Problem.random(n, n, r, m=m, kappa=kappa, symmetric=True, operator="symmetric", seed=ctx.seed)
        sigma = problem.singular_values[:r]
        budget = int(3 * th.gd_iterations(sigma, alpha**2, eps * np.linalg.norm(sigma), lr, 0.25)) + 100
        kw = dict(k=r + 2, loss_scale=0.25, record_sv=False, seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
        gd = sim.simulate(problem, alpha, "gd", lr=lr, steps=budget, t_eval=np.arange(0, budget + 1), **kw)
        sc = sim.simulate(problem, alpha, "scaledgd", lr=lr, damping=float(sigma[-1]) / 10, steps=3000,
                          t_eval=np.arange(0, 3001), **kw)
        out["gd"].append(iterations_to(gd.times, gd.observables["rel_error"][0], eps))
        out["scaledgd"].append(iterations_to(sc.times, sc.observables["rel_error"][0], eps))
        # the linear phase after the first iterations, down to the target: Xu et al.'s constant rate
        out["scaledgd_rate"].append(linear_rate(sc.times, sc.observables["rel_error"][0], eps, 0.1)[0])
        # Prediction: the commuting population count, from the mean initial mode energy alpha^2 k.
        out["predicted"].append(th.gd_iterations(sigma, alpha**2 * (r + 2), eps * np.linalg.norm(sigma), lr, 0.25))
    return {k: np.asarray(v) if isinstance(v, list) else v for k, v in out.items()}


def _draw_condition(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    ax.loglog(d["kappa"], d["gd"], "o-", label="GD")
    ax.loglog(d["kappa"], d["predicted"], "k--", label="GD, commuting closed form")
    ax.loglog(d["kappa"], d["scaledgd"], "s-", label="ScaledGD(lambda)")
    ax.set_xlabel("condition number kappa")
    ax.set_ylabel(f"iterations to relative error {d['eps']:g}")
    ax.set_title("over-parameterised (k = r + 2), Gaussian design", fontsize=8)
    ax.legend(fontsize=7)


@claim(id="matrix_sensing.scaledgd_condition_number", kind="rate_fit", figure=_draw_condition, resolves=None,
       resolves_reason="the headline prediction is an exponent of zero (ScaledGD(lambda)'s rate free of kappa), which "
                       "a relative change leaves zero: it is tested against the named alternative of a rate falling "
                       "like GD's, and GD's own exponent against the commuting closed form",
       formula=r"T_{\rm GD} = \Theta\big(\kappa \ln(\sigma_r/\alpha^2)\big),\qquad "
               r"T_{\rm ScaledGD(\lambda)} = O\big(\log\kappa\cdot\log(\kappa n) + \log(1/\epsilon)\big)",
       source=f"{XU}, Thm 1 and Sec. 1 (GD's polynomial dependence on kappa)",
       statement="Over-parameterised ScaledGD(lambda) converges at a linear rate that does not depend on kappa, while "
                 "over-parameterised GD needs iterations growing like kappa (the exponent predicted by the commuting "
                 "closed form); ScaledGD(lambda)'s count grows at most logarithmically in kappa.")
def scaledgd_condition_number(ctx: Context) -> Evidence:
    d = condition_runs(ctx)
    # Full grid: fit from kappa = 3, where the slow mode has 8 s eta sigma_r <= 0.14 and the continuous closed
    # form describes GD; the quick grid (1, 10, 100) has too few points to drop kappa = 1.
    fit = d["kappa"] >= 3 if d["kappa"].size > 3 else d["kappa"] >= 1
    obs_exp = float(np.polyfit(np.log(d["kappa"][fit]), np.log(d["gd"][fit]), 1)[0])
    pred_exp = float(np.polyfit(np.log(d["kappa"][fit]), np.log(d["predicted"][fit]), 1)[0])
    delta = float(np.sqrt(2 * d["n"] * (d["r"] + 2) / d["m"]))
    span = float(np.log(d["kappa"][fit].max() / d["kappa"][fit].min()))
    tol = 2 * delta / span
    growth = d["scaledgd"] / d["scaledgd"][0]
    log_bound = 1 + np.log(d["kappa"])
    # the headline: ScaledGD(lambda)'s linear rate does not depend on kappa (exponent 0 over the whole grid)
    tol_all = 2 * delta / float(np.log(d["kappa"].max() / d["kappa"].min()))
    sc_exp = float(np.polyfit(np.log(d["kappa"]), np.log(d["scaledgd_rate"]), 1)[0]) if np.all(
        np.isfinite(d["scaledgd_rate"])) else float("nan")
    error = max(abs(sc_exp) / tol_all, abs(obs_exp - pred_exp) / tol)
    return Evidence(
        predicted=[0.0, float(f"{pred_exp:.4g}")], observed=[float(f"{sc_exp:.4g}"), float(f"{obs_exp:.4g}")],
        quantity="exponent in kappa of ScaledGD(lambda)'s linear rate, then of GD's iteration count", unit="budget",
        error=error, tolerance=1.0, false_alarm=0.0,
        alternatives={"ScaledGD's rate falls with kappa as GD's does (rate exponent -GD's count exponent)":
                      abs(sc_exp + pred_exp) / tol_all},
        error_measure="the larger of: |exponent of ScaledGD(lambda)'s fitted linear rate (relative error from 0.1 to "
                      "the target) in kappa| and |fitted exponent of GD's iterations - exponent of the commuting "
                      "closed form|, each over its tolerance",
        tolerance_reason=f"the Gaussian operator's restricted isometry constant delta ~ sqrt(2 n k / m) = {delta:.2f} "
                         f"moves each rate or iteration count by a factor within 1 +- delta, hence an exponent by at "
                         f"most 2 delta / ln(kappa_max/kappa_min) over the fitted range",
        conditions={"ScaledGD(lambda) reaches the target at every kappa": bool(np.all(np.isfinite(d["scaledgd"]))),
                    "ScaledGD(lambda) has a fitted rate at every kappa": bool(np.all(np.isfinite(d["scaledgd_rate"]))),
                    "GD reaches the target at every kappa": bool(np.all(np.isfinite(d["gd"]))),
                    "ScaledGD's count grows at most like 1 + ln(kappa) times its kappa = 1 count":
                        bool(np.all(growth <= log_bound))},
        details={**d, "scaledgd_growth": growth},
        note=f"ScaledGD(lambda) rates {np.round(d['scaledgd_rate'], 4).tolist()} per step; "
             f"ScaledGD(lambda) iterations {d['scaledgd'].astype(int).tolist()} vs GD {d['gd'].astype(int).tolist()} "
             f"over kappa = {d['kappa'].tolist()}; lambda = sigma_r/10 (their analysis takes lambda of the order of "
             f"sigma_r; the factor is ours)",
    )


# ---------------------------------------------------------------------------
# Implicit bias: nuclear norm (Gunasekar et al. 2017) and depth (Arora et al. 2019)
# ---------------------------------------------------------------------------
@measurement
def commuting_runs(ctx: Context) -> dict:
    """Diagonal (commuting) measurements A_i = diag(a_i), m = n/2 < n, from X0 = alpha I, by gradient flow."""
    n = int(ctx.param("n", 8 if ctx.quick else 16))
    m = int(ctx.param("m", n // 2))
    rng = np.random.default_rng(ctx.seed)
    a = rng.standard_normal((m, n))
    w_star = np.sort(rng.uniform(0.2, 1.0, n))[::-1]  # distinct: M*'s eigenvectors are the axes
    A = np.stack([np.diag(row) for row in a])
    problem = sim.Problem(M_star=np.diag(w_star), operator="symmetric", A=A, y=a @ w_star, symmetric=True)
    alphas = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    traj = sim.simulate(problem, alphas, k=n, init="aligned", t_max=1e6, rtol=RTOL, record_sv=False, seed=ctx.seed,
                        backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    limits = [th.commuting_limit(a, problem.y, al) for al in alphas]
    trace_min = th.min_nuclear_norm(A, problem.y, psd=True)
    return {"problem": problem, "a": a, "alphas": alphas, "traj": traj, "limits": limits, "trace_min": trace_min}


def _draw_nuclear(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    ax.loglog(d["alpha"], d["to_limit"], "o", label="flow vs exact commuting limit")
    ax.loglog(d["alpha"], d["budget"], "-", label="error budget")
    ax.loglog(d["alpha"], d["to_trace_min"], "s-", label="flow vs minimum nuclear norm")
    ax.set_xlabel("alpha")
    ax.set_ylabel("relative distance")
    ax.set_title("commuting measurements: the limit is an entropic trace minimiser", fontsize=8)
    ax.legend(fontsize=7)


@claim(id="matrix_sensing.nuclear_norm_bias", kind="simulation", figure=_draw_nuclear,
       precision=(RTOL, "the flow limits (rtol 1e-10)"),
       formula=r"M_\infty = \arg\min_{\mathcal A(M) = y,\ M\succeq 0} \sum_j w_j\ln\frac{w_j}{\alpha^2} - w_j "
               r"\ \xrightarrow[\alpha\to0]{}\ \arg\min_{\mathcal A(M) = y,\ M \succeq 0} \|M\|_*",
       source=f"{GUNASEKAR}, Sec. 4 (commuting measurements); the finite-alpha limit is derived in "
              f"theory.matrix_sensing.commuting_limit",
       statement="With commuting measurements the small-initialisation flow limit is the minimum nuclear-norm "
                 "solution: exactly an entropy-regularised trace minimiser at each alpha, tending to the minimum "
                 "trace as alpha -> 0.",
       space=Space((Param("n", 3, 16, integer=True, doc="M* is n x n diagonal"),
                    Param("m", 1, 15, integer=True, doc="commuting measurements A_i = diag(a_i)")),
                   constraints=(("m < n (under-determined: the bias picks the solution)", lambda p: p["m"] < p["n"]),),
                   key="m"))
def nuclear_norm_bias(ctx: Context) -> Evidence:
    d = commuting_runs(ctx)
    traj, a, y = d["traj"], d["a"], d["problem"].y
    M = traj.final["M"]
    w = np.diagonal(M, axis1=1, axis2=2)
    off = np.max(np.abs(M - np.stack([np.diag(v) for v in w])), axis=(1, 2))
    pred = np.array([lim.x for lim in d["limits"]])
    to_limit = np.linalg.norm(w - pred, axis=1) / np.linalg.norm(pred, axis=1)
    # Budget: integration (relative error N rtol on x, 2 N rtol on w = x^2) + the distance still to travel at the
    # stop, first order in the residual r: ||r|| sqrt(max w / lambda_min(a diag(w) a^T)) (mirror-flow metric w).
    r = np.einsum("mj,bj->bm", a, w) - y
    lam = np.array([max(np.linalg.eigvalsh((a * wb) @ a.T)[0], 1e-300) for wb in w])
    travel = np.linalg.norm(r, axis=1) * np.sqrt(w.max(axis=1) / lam)
    budget = (2 * traj.stop_step * RTOL * np.linalg.norm(w, axis=1) + travel) / np.linalg.norm(pred, axis=1) + 1e-12
    trace_min = np.diag(d["trace_min"].x)
    to_trace = np.linalg.norm(w - trace_min, axis=1) / np.linalg.norm(trace_min)
    score = power.relative(w, pred, budget, axis=1)
    return Evidence(
        predicted=[float(f"{lim.x.sum():.8g}") for lim in d["limits"]],
        observed=[float(f"{x:.8g}") for x in w.sum(axis=1)],
        quantity="trace of the limit, per alpha",
        error=score(1.0), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure="worst ratio, over alpha, of ||diag(M_flow) - w_alpha|| / ||w_alpha|| to that run's budget "
                      "(w_alpha: the entropic minimiser; predicted/observed show the traces)",
        tolerance_reason="a-posteriori budget per run: integration (local rtol 1e-10 on x, doubled for w = x^2, "
                         "accumulating over the steps) + the first-order distance still to travel at the stopping "
                         "residual in the mirror-flow metric diag(w)",
        conditions={"every run converged": bool(np.all(traj.status == "converged")),
                    "the flow stays diagonal (off-diagonal entries < 1e-12)": bool(np.all(off < 1e-12)),
                    # below the runs' own budgets the distance is not resolved: the search found it flat at 1.7e-7
                    # (budget 2e-6) between alpha = 1e-3 and 1e-4 (n = 15, m = 11)
                    "the distance to the minimum-trace solution shrinks as alpha decreases (to within the runs' "
                    "budgets)": bool(np.all(np.diff(to_trace) < budget[1:] + budget[:-1])),
                    "the minimum-trace solution is certified (KKT residual < 1e-6)":
                        d["trace_min"].kkt_residual < 1e-6},
        details={"alpha": d["alphas"], "to_limit": to_limit, "budget": budget, "to_trace_min": to_trace,
                 "off_diagonal": off, "kkt_trace_min": d["trace_min"].residuals},
    )


@measurement
def depth_runs(ctx: Context) -> dict:
    """Arora et al.'s completion setting: depth 2, 3, 4 by GD from a small start, and the nuclear-norm solution.

    Full: 100 x 100, rank 5, 2000 observed entries (about twice the 975 degrees of freedom); quick: 20 x 20,
    rank 2, 160 entries (the same ratio). Arora et al. train with an adaptive step; we use plain GD with a
    constant step (0.5 for depth 2, 0.3 for depths 3 and 4) from end-to-end scale alpha = 1e-4 for a fixed
    budget (full: 10 000 steps, quick: 15 000) and report the final point.
    """
    n, r, m, steps = (20, 2, 160, 15_000) if ctx.quick else (100, 5, 2000, 10_000)
    if ctx.point:  # a point of the claim's space: size, rank, and entries as a multiple of r (2n - r)
        n, r = int(ctx.param("n", n)), int(ctx.param("r", r))
        m = int(round(float(ctx.param("oversampling", 2.05)) * r * (2 * n - r)))
    # Completion's identifiability hypothesis: every row and column observed at least r times (without it no
    # method recovers M*; the search found a 12 x 12 rank-1 mask of 34 entries missing rows, where the deep
    # models fit the entries and err by 1.6). The mask is uniform conditioned on it: redrawn until it holds.
    for attempt in range(1000):
        problem = sim.Problem.random(n, n, r, m=m, operator="completion", seed=ctx.seed + 7919 * attempt)
        if min(problem.mask.sum(axis=0).min(), problem.mask.sum(axis=1).min()) >= r:
            break
    else:
        raise ValueError(f"no mask of {m} entries in 1000 draws observes every row and column {r} times")
    nuclear = th.min_nuclear_norm(mask=problem.mask, y=problem.M_star[problem.mask])
    nuclear_error = float(np.linalg.norm(nuclear.x - problem.M_star) / np.linalg.norm(problem.M_star))
    if nuclear_error < 1e-3:  # the search found 13 x 13, rank 1, 3x oversampling recovered to 1e-8
        raise OutOfReach(f"the minimum nuclear-norm solution already recovers M* (relative error {nuclear_error:.1e}): "
                         f"not the few-entries regime the statement is about, where it does not")
    finals = {}
    for depth in (2, 3, 4):
        traj = sim.simulate(problem, 1e-4, "gd", k=n, factorisation="deep", depth=depth, lr=0.5 if depth == 2 else 0.3,
                            steps=steps, t_eval=[0, steps], record_sv=False, loss_tol=1e-14, seed=ctx.seed,
                            backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
        finals[depth] = (traj.final["M"][0], str(traj.status[0]), float(traj.observables["loss"][0, -1]))
    # depth 2 from smaller starts: the finding that depth 2 is not the nuclear-norm solution, at every alpha
    # (escaping a start at alpha takes steps ~ ln(1/alpha): three times the budget reaches 1e-12)
    smaller = np.array([1e-8]) if ctx.quick else np.array([1e-8, 1e-12])
    more = 1 + smaller.size  # ln(1/alpha) grows by this factor at the smallest start
    sweep = sim.simulate(problem, smaller, "gd", k=n, factorisation="deep", depth=2, lr=0.5, steps=more * steps,
                         t_eval=[0, more * steps], record_sv=False, loss_tol=1e-14, seed=ctx.seed, backend=ctx.backend,
                         dtype=ctx.dtype, device=ctx.device)
    depth2 = {1e-4: finals[2][0], **{float(a): sweep.final["M"][b] for b, a in enumerate(smaller)}}
    return {"problem": problem, "nuclear": nuclear, "finals": finals, "n": n, "r": r, "m": m, "mask_draws": attempt + 1,
            "depth2": depth2, "depth2_status": [str(x) for x in sweep.status]}


def _draw_depth(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 2, 1)
    labels = ["nuclear"] + [f"depth {k}" for k in d["depths"]]
    ax.bar(labels, [d["nuclear_error"]] + list(d["errors"]))
    ax.set_yscale("log")
    ax.set_xlabel("solution")
    ax.set_ylabel("||M - M*||_F / ||M*||_F")
    ax.set_title("reconstruction error", fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    ax.bar(labels, [d["nuclear_rank"]] + list(d["ranks"]))
    ax.set_xlabel("solution")
    ax.set_ylabel("effective rank")
    ax.set_title("effective rank (Roy & Vetterli)", fontsize=8)


def _deep_over_nuclear(d: dict) -> float:
    """The larger of depth 3's and depth 4's reconstruction error over the nuclear-norm solution's."""
    M = d["problem"].M_star
    nuc = np.linalg.norm(d["nuclear"].x - M)
    return float(max(np.linalg.norm(d["finals"][k][0] - M) for k in (3, 4)) / nuc)


@claim(id="matrix_sensing.depth_low_rank", kind="simulation", backends="any", figure=_draw_depth,
       resolves=None, resolves_reason="an inequality between two solutions' reconstruction errors (Arora et al.'s "
                                      "empirical finding), not a predicted value: the evidence is the ratio of the "
                                      "errors, shown with its margin",
       formula=r"\text{depth } N \ge 3:\ \operatorname{erank}(W_N\cdots W_1) < \operatorname{erank}(M_{\|\cdot\|_*}),"
               r"\ \ \|W_N\cdots W_1 - M^*\| < \|M_{\|\cdot\|_*} - M^*\|",
       source=f"{ARORA}, Sec. 4 and Fig. 1 (matrix completion, 100 x 100, rank 5)",
       statement="With few observed entries, deep matrix factorisations (depth 3 and 4) trained from a small start "
                 "reach lower effective rank and lower reconstruction error than the minimum nuclear-norm solution.",
       space=Space((Param("n", 12, 30, integer=True, doc="M* is n x n"),
                    Param("r", 2, 3, integer=True, doc="rank (from 2: at rank 1 the search found depth 4 interpolating "
                                                       "the entries 1.3 from M*, the nuclear norm 0.53; README, "
                                                       "Findings)"),
                    Param("oversampling", 2.0, 3.0, doc="observed entries / degrees of freedom r (2n - r): 'few "
                                                        "entries', where the nuclear norm does not yet recover M*, "
                                                        "from Arora et al.'s 2.05 up. At 1.5 the search found depth 3 "
                                                        "worse than the nuclear norm (README, Findings)")),
                   key="oversampling"))
def depth_low_rank(ctx: Context) -> Evidence:
    if ctx.point:
        # An empirical statement (Arora et al. report the typical instance) is judged at a point of its space on
        # the median of three draws of the instance: single draws can fail (the search found depth 4 at 1.1 from
        # M* on one 18 x 18 rank-2 draw in five, the nuclear norm at 0.38; README, Findings)
        draws = [depth_runs(dataclasses.replace(ctx, seed=ctx.seed + 1000 * k)) for k in range(3)]
        scores = [_deep_over_nuclear(x) for x in draws]
        d = draws[int(np.argsort(scores)[1])]
    else:
        d, scores = depth_runs(ctx), None
    M_star = d["problem"].M_star
    norm = np.linalg.norm(M_star)
    nuc_err = float(np.linalg.norm(d["nuclear"].x - M_star) / norm)
    nuc_rank = th.effective_rank(d["nuclear"].x)
    depths = (2, 3, 4)
    errors = np.array([np.linalg.norm(d["finals"][k][0] - M_star) / norm for k in depths])
    ranks = np.array([th.effective_rank(d["finals"][k][0]) for k in depths])
    deep = np.array(depths) >= 3
    ratio = errors[deep] / nuc_err
    to_nuclear = float(np.linalg.norm(d["finals"][2][0] - d["nuclear"].x) / np.linalg.norm(d["nuclear"].x))
    sweep = {a: (float(np.linalg.norm(M - M_star) / norm),
                 float(np.linalg.norm(M - d["nuclear"].x) / np.linalg.norm(d["nuclear"].x))) for a, M in d["depth2"].items()}
    to_star = [sweep[a][0] for a in sorted(sweep, reverse=True)]
    smallest = sweep[min(sweep)]
    return Evidence(
        alternatives={"depth 2 tends to the minimum nuclear-norm solution as alpha -> 0 (Gunasekar et al.'s "
                      f"conjecture): distance to it over distance to M*, alpha = {min(sweep):g}":
                      smallest[1] / smallest[0]},
        predicted=f"< {nuc_err:.3g} (nuclear norm)", observed=[float(f"{x:.3g}") for x in errors],
        quantity="reconstruction error, depth 2, 3, 4", unit="ratio",
        error=float(ratio.max()), tolerance=1.0,
        # no sampling: the inequality is read off one deterministic instance, whose solutions are certified
        false_alarm=0.0,
        error_measure="largest, over depths 3 and 4, of the reconstruction error divided by that of the minimum "
                      "nuclear-norm solution",
        tolerance_reason="the statement is the inequality itself (error below the nuclear-norm solution's); the "
                         "nuclear-norm solution is certified by its KKT residuals",
        conditions={**{f"depth {k}: effective rank below the nuclear-norm solution's ({nuc_rank:.3g})":
                       bool(rk < nuc_rank) for k, rk in zip(np.array(depths)[deep], ranks[deep])},
                    **{f"depth {k}: did not diverge": d["finals"][k][1] != "diverged" for k in depths},
                    f"depth 2's distance to M* shrinks as alpha falls ({', '.join(f'{a:g}' for a in sorted(sweep, reverse=True))})":
                        bool(np.all(np.diff(to_star) < 0)),
                    f"at alpha = {min(sweep):g} depth 2 is nearer M* than the minimum nuclear-norm solution": bool(
                        smallest[0] < smallest[1]),
                    "nuclear-norm solution certified (KKT residual < 1e-6)": d["nuclear"].kkt_residual < 1e-6},
        details={"depths": list(depths), "errors": errors, "ranks": ranks, "nuclear_error": nuc_err,
                 "draw_ratios": scores,
                 "nuclear_rank": nuc_rank, "status": [d["finals"][k][1] for k in depths],
                 "distance_depth2_to_nuclear": to_nuclear,
                 "depth2_alpha_sweep": {f"{a:g}": {"to_M_star": v[0], "to_nuclear": v[1]} for a, v in sweep.items()}},
        note=(f"depth 2 ends {errors[0]:.3g} from M* and {to_nuclear:.3g} (relative) from the nuclear-norm solution at "
              f"alpha = 1e-4; from smaller starts it ends " + ", ".join(
                  f"{v[0]:.3g} from M* and {v[1]:.3g} from the nuclear-norm solution at alpha = {a:g}"
                  for a, v in sorted(sweep.items(), reverse=True) if a < 1e-4)
              + f": it tends to M*, not to the nuclear-norm solution (itself {nuc_err:.3g} from M*), as Li et al. 2021 "
              "report (greedy rank minimisation); depth 3 and 4's advantage at alpha = 1e-4 is one of speed at that "
              "alpha, which depth 2 makes up from smaller starts"),
    )


# ---------------------------------------------------------------------------
# Robust recovery by the sub-gradient method (Ma & Fattahi 2023)
# ---------------------------------------------------------------------------
@measurement
def robust_runs(ctx: Context) -> dict:
    """20 % gross outliers; l1 sub-gradient (eta_t = 0.3 q^t) vs l2 GD (eta = 0.1), k = r, 2r, n, alpha = 1e-3."""
    n, r, m, q, steps = (12, 2, 500, 0.998, 7500) if ctx.quick else (20, 3, 1000, 0.999, 15000)
    kappa, outliers = float(ctx.param("kappa", 2.0)), float(ctx.param("outliers", 0.2))
    problem = sim.Problem.random(n, n, r, m=m, kappa=kappa, symmetric=True, operator="symmetric", outliers=outliers,
                                 seed=ctx.seed)
    kw = dict(record_sv=False, seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    out = {"problem": problem, "ks": (r, 2 * r, n), "q": q, "l1": [], "l2": []}
    for k in out["ks"]:
        sub = sim.simulate(problem, 1e-3, "subgradient", k=k, loss="l1", lr=0.3, decay=q, steps=steps,
                           t_eval=[0, steps], **kw)
        gd = sim.simulate(problem, 1e-3, "gd", k=k, lr=0.1, steps=4000, t_eval=[0, 4000], **kw)
        out["l1"].append(float(sub.observables["rel_error"][0, -1]))
        out.setdefault("l1_M", []).append(sub.final["M"][0])
        out["l2"].append(float(gd.observables["rel_error"][0, -1]))
    # Ma & Fattahi's dense Gaussian noise model: a fraction p of the measurements carries Gaussian noise; here
    # half of them, ten times a clean measurement, at k = r
    dense = sim.Problem.random(n, n, r, m=m, kappa=2.0, symmetric=True, operator="symmetric", outliers=0.5,
                               seed=ctx.seed)
    sub = sim.simulate(dense, 1e-3, "subgradient", k=r, loss="l1", lr=0.3, decay=q, steps=steps,
                       t_eval=[0, steps], **kw)
    out["dense"] = float(sub.observables["rel_error"][0, -1])
    return out


@claim(id="matrix_sensing.robust_subgradient", kind="simulation",
       formula=r"\min_X \frac1m\sum_i |\langle A_i, XX^\top\rangle - y_i|,\quad "
               r"X_{t+1} = X_t - \eta_0 q^t g_t:\ X_TX_T^\top \to M^*",
       source=f"{MA}, Thms 1-2 (outlier and dense Gaussian noise, small initialisation, over-estimated rank)",
       statement="With 20 % grossly corrupted measurements, the sub-gradient method on the l1 loss from a small start "
                 "recovers M* whatever the over-estimated rank (k = r, 2r, n), where GD on the l2 loss does not; it "
                 "still recovers M* when half the measurements carry the Gaussian noise (their dense noise model).",
       space=Space((Param("outliers", 0.05, 0.3, doc="fraction of grossly corrupted measurements"),
                    Param("kappa", 1.0, 5.0, doc="condition number of M*")), key="outliers"))
def robust_subgradient(ctx: Context) -> Evidence:
    d = robust_runs(ctx)
    l1, l2 = np.array(d["l1"]), np.array(d["l2"])
    M_star = d["problem"].M_star
    # the headline, M*: the sub-gradient limits' distance to f M*, over the best l2 error
    score = lambda f: max(float(np.linalg.norm(M - f * M_star) / np.linalg.norm(f * M_star))  # noqa: E731
                          for M in d["l1_M"]) / float(l2.min())
    return Evidence(
        score=score, false_alarm=0.0,
        predicted="l1 error << l2 error", observed=[float(f"{x:.3g}") for x in l1],
        quantity="relative error of the sub-gradient method, per k", unit="ratio",
        error=score(1.0), tolerance=1e-2,
        error_measure="worst l1 sub-gradient error over k divided by the best l2 GD error over k",
        tolerance_reason="recovery means at least 100 times closer to M* than the l2 fit, whose error is set by the "
                         "outliers (20 % of the measurements, ten times a clean one): the l2 error is O(1), so this "
                         "asks for l1 errors of order 1e-2 or less",
        conditions={**{f"k = {k}: the l1 error is below 1e-2": bool(e < 1e-2) for k, e in zip(d["ks"], l1)},
                    "half the measurements corrupted (dense noise), k = r: the l1 error is below 1e-2":
                        d["dense"] < 1e-2},
        details={"k": list(d["ks"]), "l1_error": l1, "l2_error": l2, "decay": d["q"], "dense_error": d["dense"]},
        note=(f"k = r reaches {l1[0]:.2g}; for k > r the error stops at a floor set by the step decay, not by alpha "
              f"(measured: halving 1 - q halves it), so 'agnostic to the rank' holds to that floor"),
    )


@claim(id="matrix_sensing.gradients_symbolic", kind="symbolic", backends="none",
       formula=r"\nabla_X f = (G + G^\top)X,\ \ G = 2s\sum_i r_iA_i;\qquad \dot e = -8s(e - \sigma)e",
       source=f"{XU}, Eq. (1) (the factorised loss whose gradients sims.matrix_sensing writes by hand); the "
              f"commuting mode equation of theory.matrix_sensing ({JIN}, Sec. 3)",
       statement="sympy proves the symmetric, asymmetric, deep and l1 factorised gradients for general (non-symmetric) "
                 "A_i, the mode equation of the aligned population flow, its logistic solution, the learning time "
                 "and the 1/t tail.")
def gradients_symbolic(ctx: Context) -> Evidence:
    from solvable.theory import matrix_sensing_symbolic as sym

    return symbolic_evidence(sym.verify(), sym.numeric_gap(), "theory.matrix_sensing.mode_energy")


@claim(id="matrix_sensing.reduced_equals_full", kind="simulation",
       precision=(1e-10, "both flows at rtol 1e-10"),
       formula=r"X = U_k\operatorname{diag}(x),\ \dot x = -4c(x^2 - \sigma^*)x;\quad "
               r"\dot p = -2c(pq - \sigma^*)q,\ \dot q = -2c(pq - \sigma^*)p;\quad "
               r"\dot\sigma = -2cN\sigma^{2-2/N}(\sigma - \sigma^*)",
       source=f"{JIN}, Sec. 3 (the commuting case); the per-factorisation mode equations derived in "
              "sims/matrix_sensing_reduced.py",
       statement="On the population operator from the aligned start the factors stay diagonal in M*'s singular "
                 "bases, so the per-mode ODEs are the full flow: for the symmetric, asymmetric and deep (N = 3) "
                 "factorisations with k < r, k = r and k > r, the singular values and M agree at every recorded time.",
       space=Space((Param("factorisation", 0, 2, integer=True, doc="0 symmetric, 1 asymmetric, 2 deep (N = 3)"),
                    Param("k", 1, 7, integer=True, doc="width of the factors (the target has rank 3)"),
                    Param("alpha", 1e-4, 0.5, log=True, doc="initial scale"),
                    Param("kappa", 1.0, 20.0, log=True, doc="condition number of the target")),
                   # found by the slow step's search: the aligned start has at most min(n1, n2) columns
                   constraints=(("k <= min(n1, n2): 8 for the symmetric 8 x 8 target, 6 for the 8 x 6 ones",
                                 lambda p: p["k"] <= (8 if p["factorisation"] == 0 else 6)),),
                   key="alpha"))
def reduced_equals_full(ctx: Context) -> Evidence:
    rtol = 1e-10
    t_max = 100.0 if ctx.quick else 400.0
    t_eval = np.linspace(0, t_max, 41)[1:]
    alphas = np.array([1e-3, 0.1])
    worst, rows, parts = 0.0, [], []
    kinds, widths, kappa = ("symmetric", "asymmetric", "deep"), (2, 3, 5), 3.0
    if ctx.point:
        kinds = (("symmetric", "asymmetric", "deep")[int(ctx.param("factorisation", 0))],)
        widths, alphas = (int(ctx.param("k", 3)),), np.array([float(ctx.param("alpha", 0.1))])
        kappa = float(ctx.param("kappa", 3.0))
    for factorisation in kinds:
        sym = factorisation == "symmetric"
        problem = sim.Problem.random(8, 8 if sym else 6, rank=3, symmetric=sym, operator="population", kappa=kappa,
                                     seed=ctx.seed)
        for k in widths:
            kw = dict(k=k, factorisation=factorisation, init="aligned", t_max=t_max, t_eval=t_eval, rtol=rtol,
                      loss_tol=0.0, record_M=True, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
            red = sim.simulate(problem, alphas, **kw)
            full = sim.simulate(problem, alphas, coordinates="full", **kw)
            steps = np.maximum(red.stop_step, full.stop_step)
            scale = max(float(np.abs(problem.M_star).max()), 1.0)
            # relative error rtol per step on the factors gives 2 rtol on M (a product of 2 or N factors: N rtol),
            # accumulated linearly over the steps
            budget = (3 if factorisation == "deep" else 2) * steps * rtol * scale
            err = np.max(np.abs(red.observables["M"] - full.observables["M"]), axis=(1, 2, 3))
            worst = max(worst, float(np.max(err / budget)))
            parts.append(power.absolute(full.observables["M"], red.observables["M"], budget[:, None, None, None]))
            rows.append({"factorisation": factorisation, "k": k, "max_M_difference": float(err.max()),
                         "budget": float(budget.max()), "status": sorted(set(red.status) | set(full.status))})
    statuses = {s for r in rows for s in r["status"]}
    score = power.worst(*parts)
    return Evidence(
        score=score, false_alarm=0.0,
        predicted=0.0, observed=float(f"{max(r['max_M_difference'] for r in rows):.3g}"),
        quantity="max |M_reduced(t) - M_full(t)| over factorisations, k, alphas and recorded times",
        error=score(1.0), tolerance=1.0,
        error_measure="worst ratio of max |M_reduced - M_full| to its budget, over factorisations, k in {2, 3, 5} "
                      "(rank 3), alpha in {1e-3, 0.1} and recorded times",
        tolerance_reason="each flow controls the relative error of the factors at rtol = 1e-10 per step; M is a "
                         "product of 2 (N = 3) factors, so its error is 2 (3) rtol max|M| per step, accumulated "
                         "linearly over the larger step count",
        conditions={"every run reached t_max": statuses == {"out_of_time"}},
        details={"rows": rows, "alpha": alphas},
    )
