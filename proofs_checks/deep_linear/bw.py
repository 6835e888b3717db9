"""Claims about generative deep linear networks trained with the Bures-Wasserstein loss (Bréchet et al. 2023).

Registered under the ``deep_linear`` family (imported by :mod:`proofs_checks.deep_linear`).
"""

from __future__ import annotations

import numpy as np

from solvable.sims.deep_linear import bw as sim
from solvable.theory.deep_linear import bw as th

from ..framework import power
from ..framework.registry import Context, Evidence, claim
from ..framework.space import Param, Space

BRECHET = "Bréchet, Papagiannouli, An & Montúfar 2023, Critical points and convergence analysis of generative deep " \
          "linear networks trained with Bures-Wasserstein loss (ICML)"
EPS = float(np.finfo(float).eps)


def _top(d: int, k: int) -> float:
    """lambda_k of Problem.random's default spectrum, linspace(2, 0.2, d)."""
    return float(np.linspace(2.0, 0.2, d)[k - 1])


SPACE = (Param("d", 3, 8, integer=True, doc="dimension of the target covariance (eigenvalues evenly spaced, 2 to 0.2)"),
         Param("k", 1, 3, integer=True, doc="rank bound: the narrowest width of the generator"),
         Param("tau", 0.0, 0.3, doc="perturbation of the loss, B^2(S0, WW^T + tau I); 0 is the Bures-Wasserstein loss"))
CONSTRAINTS = (("k < d: a rank bound below the dimension (k = d fits S0 exactly)", lambda p: p["k"] < p["d"]),
               ("tau <= lambda_k / 2: every mode of the minimiser escapes the saddle at 0 at a rate "
                "2 (sqrt(lambda/tau) - 1) >= 0.8, so within the horizon",
                lambda p: p["tau"] <= _top(int(p["d"]), int(p["k"])) / 2))


def _realise(lam: np.ndarray, vec: np.ndarray, support: tuple[int, ...], tau: float, k: int,
             rng: np.random.Generator, mixed: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Two factors (k, d), (d, k) with W W^T = sum_{i in J} (lambda_i - tau) v_i v_i^T on a random orthonormal
    latent frame; ``mixed``: the hidden units mixed by a random orthogonal matrix (a generic point of the
    critical set, not one aligned with the coordinates)."""
    d = vec.shape[0]
    J = list(support)
    c4 = (lam[J] - tau) ** 0.25
    latent = np.linalg.qr(rng.standard_normal((d, d)))[0][:, :len(J)]
    w2 = np.zeros((d, k))
    w2[:, :len(J)] = vec[:, J] * c4
    w1 = np.zeros((k, d))
    w1[:len(J)] = c4[:, None] * latent.T
    if not mixed:
        return w1, w2
    mix = np.linalg.qr(rng.standard_normal((k, k)))[0]
    return mix.T @ w1, w2 @ mix


def _loss(root: np.ndarray, w1: np.ndarray, w2: np.ndarray, tau: float) -> float:
    return float(sim.loss_grad(root, (w1[None], w2[None]), tau)[0][0])


def _descent(root: np.ndarray, lam: np.ndarray, vec: np.ndarray, support: tuple[int, ...], tau: float, k: int,
             rng: np.random.Generator, eps: float = 1e-2) -> float:
    """The largest decrease of the loss found along the two escape directions of a critical point: a free
    hidden unit growing along an unused mode i (when |J| < k; W gains eps^2 v_i r^T), or a kept mode j's
    column turned by the angle eps toward an unused mode i with lambda_i > lambda_j. Negative: a descent
    direction (the point is a saddle); +inf: neither direction exists (the minimiser)."""
    w1, w2 = _realise(lam, vec, support, tau, k, rng, mixed=False)
    base = _loss(root, w1, w2, tau)
    d, J = vec.shape[0], list(support)
    best = np.inf
    for i in (i for i in range(d) if i not in J and lam[i] > tau):
        if len(J) < k:
            frame = np.column_stack([w1[:len(J)].T, rng.standard_normal(d)])
            r = np.linalg.qr(frame)[0][:, -1]  # a latent direction orthogonal to the kept ones
            u1, u2 = w1.copy(), w2.copy()
            u1[len(J)], u2[:, len(J)] = eps * r, eps * vec[:, i]
            best = min(best, _loss(root, u1, u2, tau) - base)
        for pos, j in enumerate(J):
            if lam[i] > lam[j]:
                u2 = w2.copy()
                col = w2[:, pos]
                u2[:, pos] = np.cos(eps) * col + np.sin(eps) * np.linalg.norm(col) * vec[:, i]
                best = min(best, _loss(root, w1, u2, tau) - base)
    return float(best)


def _budget(lam: np.ndarray, tau: float, d: int) -> tuple[float, float]:
    """Round-off budgets of the loss and of the gradient norm at a critical point Sigma_J (any J).

    The eigendecomposition of M = S0^{1/2}(Sigma + tau I)S0^{1/2} is backward stable: its eigenvalues m_i
    (lambda_i^2 on a kept mode, lambda_i tau on a dropped one) move by at most delta = d eps ||M||. The loss's
    -2 sum sqrt(m_i) then moves by at most 2 sum_i min(delta / (2 sqrt m_i), sqrt delta) (at tau = 0 the
    dropped m_i = 0 are cut exactly); the gradient's M^{-1/2} by at most the largest divided difference of
    m^{-1/2}, delta m_eff^{-3/2} / 2 with m_eff the smallest inverted eigenvalue (not below delta), applied to
    S0^{1/2} W (norm <= ||lambda||_2) and S0^{1/2} (norm sqrt(lambda_1)), times 2 sqrt(d)."""
    kept = lam ** 2
    dropped = lam * tau
    delta = d * EPS * float(lam[0]) * (float(lam[0]) + tau)
    inverted = np.concatenate([kept, dropped]) if tau > 0 else kept
    m_eff = max(float(inverted.min()), delta)
    loss_budget = d * EPS * float(lam.sum() + tau * d) + 2 * float(
        np.sum(np.minimum(delta / (2 * np.sqrt(np.maximum(inverted, delta))), np.sqrt(delta))))
    grad_budget = 2 * np.sqrt(d) * np.sqrt(lam[0]) * float(np.linalg.norm(lam)) * delta * m_eff ** -1.5 / 2
    return float(loss_budget), float(grad_budget)


def _draw_critical(fig, ev: Evidence) -> None:
    rows = ev.details["points"]
    ax = fig.add_subplot(1, 1, 1)
    for n, tau in enumerate(sorted({r["tau"] for r in rows})):
        sub = [r for r in rows if r["tau"] == tau]
        x = np.array([len(r["support"]) for r in sub]) + 0.12 * n
        ax.plot(x, [r["predicted"] for r in sub], "_", ms=14, color=f"C{n}", label=f"predicted, tau = {tau:g}")
        ax.plot(x, [r["observed"] for r in sub], ".", color=f"C{n}", label="loss at the realised point")
        star = [r for r in sub if r["minimiser"]][0]
        ax.plot([len(star["support"]) + 0.12 * n], [star["observed"]], "*", ms=12, color=f"C{n}")
    ax.set_xlabel("rank |J| of the critical covariance")
    ax.set_ylabel("loss")
    ax.set_title("critical points of B^2(S0, WW^T + tau I): every eigen-subset J, |J| <= k (star: the minimum)",
                 fontsize=8)
    ax.legend(fontsize=7)


@claim(id="deep_linear.bw_critical_points", kind="simulation", figure=_draw_critical,
       formula=r"\Sigma_J = \sum_{i\in J}(\lambda_i - \tau)\,v_iv_i^\top,\ |J| \le k:\quad "
               r"\nabla L_\tau = 0,\ L_\tau = \sum_{i\notin J}(\sqrt{\lambda_i} - \sqrt{\tau})^2",
       precision=(1e-12, "round-off of the eigendecompositions"),
       source=f"{BRECHET}, the critical points and minimisers over rank-bounded matrices (the closed form derived "
              "in theory.deep_linear.bw: the paper's own statement could not be read)",
       statement="For a generator of rank <= k, every eigen-subset J of the target with |J| <= k gives a critical point "
                 "of the Bures-Wasserstein loss (and of its perturbation B^2(S0, WW^T + tau I)) at the predicted "
                 "loss; the top-k truncation is a local minimum and every other one is a saddle with a descent "
                 "direction.",
       space=Space(SPACE, constraints=CONSTRAINTS, key="tau"))
def bw_critical_points(ctx: Context) -> Evidence:
    d, k = int(ctx.param("d", 5 if ctx.quick else 7)), int(ctx.param("k", 2))
    taus = (float(ctx.param("tau", 0.0)),) if ctx.param("tau", None) is not None else (0.0, 0.1)
    problem = sim.Problem.random(d, hidden=(k,), latent=d, seed=ctx.seed)
    lam, vec = problem.eigh()
    root = problem.root()
    rng = np.random.default_rng(ctx.seed)
    rows, rises = [], []
    for tau in taus:
        loss_budget, grad_budget = _budget(lam, tau, d)
        star = th.bw_minimiser(problem.covariance, k, tau).support
        for cp in th.bw_critical_points(problem.covariance, k, tau):
            w1, w2 = _realise(lam, vec, cp.support, tau, k, rng)
            loss, grads = sim.loss_grad(root, (w1[None], w2[None]), tau)
            gnorm = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
            rows.append({"tau": tau, "support": list(cp.support), "predicted": cp.loss, "observed": float(loss[0]),
                         "grad_norm": gnorm, "loss_budget": loss_budget, "grad_budget": grad_budget,
                         "minimiser": cp.support == star,
                         "descent": _descent(root, lam, vec, cp.support, tau, k, rng, eps=3e-2)})
        w1, w2 = _realise(lam, vec, star, tau, k, rng)
        base = _loss(root, w1, w2, tau)
        for _ in range(20):  # random perturbations of relative size 1e-3 around the minimiser
            p1 = w1 + 1e-3 * np.linalg.norm(w1) * rng.standard_normal(w1.shape) / np.sqrt(w1.size)
            p2 = w2 + 1e-3 * np.linalg.norm(w2) * rng.standard_normal(w2.shape) / np.sqrt(w2.size)
            rises.append((_loss(root, p1, p2, tau) - base) / loss_budget)
    score = power.worst(power.absolute([r["observed"] for r in rows], [r["predicted"] for r in rows],
                                       [r["loss_budget"] for r in rows]),
                        power.fixed(max(r["grad_norm"] / r["grad_budget"] for r in rows)))
    saddles = [r for r in rows if not r["minimiser"]]
    return Evidence(
        predicted=[round(r["predicted"], 6) for r in rows], observed=[round(r["observed"], 6) for r in rows],
        quantity=f"loss at each critical point (d = {d}, k = {k}, tau = {', then '.join(map(str, taus))}; "
                 f"{len(rows)} points)",
        error=score(1.0), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure="worst ratio, over the critical points realised as factors on random frames, of |loss - "
                      "predicted loss| to the loss's round-off budget and of ||hand-written gradient|| to the "
                      "gradient's",
        tolerance_reason="round-off: a backward-stable eigendecomposition of M moves its eigenvalues by d eps ||M||, "
                         "which the square root and the inverse square root amplify by their divided differences "
                         "at the predicted eigenvalues of M (_budget)",
        conditions={"the top-k truncation is a local minimum: 20 random perturbations per tau (relative size 1e-3) "
                    "do not lower the loss beyond the budget": bool(min(rises) >= -1.0),
                    "every other critical point has a descent direction (a unit growing along an unused mode, or a "
                    "kept mode turning toward a larger one)": all(r["descent"] < -r["loss_budget"] for r in saddles),
                    "the minimiser has neither direction": all(np.isinf(r["descent"]) for r in rows if r["minimiser"])},
        details={"points": rows, "eigenvalues": lam, "k": k, "worst_perturbation_rise": float(min(rises))},
    )


def _margin_start(problem: sim.Problem, tau: float, fraction: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, float, float, float]:
    """An end-to-end start W0 (d, d_0) of rank k whose loss is L* + fraction (L_2 - L*), L_2 the second-lowest
    critical value: W0 on the segment from a minimiser W* to a random rank-k matrix G of three times its norm,
    placed by bisection (the loss is continuous along it; L(W*) = L*, L(G) > L_2 is checked)."""
    lam, vec = problem.eigh()
    k, d, d0 = problem.rank_bound, problem.d, problem.latent
    values = [c.loss for c in th.bw_critical_points(problem.covariance, k, tau)]
    low, second = values[0], values[1]
    target = low + fraction * (second - low)
    frame = np.linalg.qr(rng.standard_normal((d0, d0)))[0][:, :k]
    w_star = (vec[:, :k] * np.sqrt(np.maximum(lam[:k] - tau, 0.0))) @ frame.T
    g = rng.standard_normal((d, k)) @ rng.standard_normal((k, d0))
    g *= 3 * np.linalg.norm(w_star) / np.linalg.norm(g)
    root = problem.root()

    def loss(s: float) -> float:
        w = (1 - s) * w_star + s * g
        return float(sim.loss_grad(root, (w[None],), tau)[0][0])

    if loss(1.0) <= target:
        raise RuntimeError("the random end of the segment is not above the target loss")  # pragma: no cover
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if loss(mid) < target else (lo, mid)
    w0 = (1 - lo) * w_star + lo * g
    return w0, loss(lo), low, second


def _factorise(w0: np.ndarray, widths: tuple[int, ...], balanced: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """Factors (h_j, h_{j-1}) of the rank-k matrix ``w0``: balanced, W_j = O_j S^{1/N} O_{j-1}^T (so
    W_{j+1}^T W_{j+1} = W_j W_j^T), or unbalanced with all of S in the first factor; random frames O_j."""
    n = len(widths) - 1
    k = min(widths)
    u, s, vt = np.linalg.svd(w0)
    u, s, v = u[:, :k], s[:k], vt[:k].T
    frames = [v] + [np.linalg.qr(rng.standard_normal((h, k)))[0] for h in widths[1:-1]] + [u]
    scales = [s ** (1.0 / n)] * n if balanced else [s] + [np.ones(k)] * (n - 1)
    return [(frames[j + 1] * scales[j]) @ frames[j].T for j in range(n)]


def _draw_convergence(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    for n, run in enumerate(d["flows"]):
        gap = np.maximum(np.asarray(run["loss"]) - run["minimum"], 1e-16)
        ax.semilogy(run["t"], gap, color=f"C{n}", label=run["label"])
        for v in run["critical"][1:3]:
            ax.axhline(v - run["minimum"], color=f"C{n}", lw=0.6, ls=":")
    ax.set_xlabel("t")
    ax.set_ylabel("L(t) - L*")
    ax.set_title("gradient flow on B^2(S0, WW^T + tau I); dotted: the next critical values", fontsize=8)
    ax.legend(fontsize=6)


@claim(id="deep_linear.bw_convergence", kind="simulation", figure=_draw_convergence,
       formula=r"L_\tau(W_0) < L_2 \ \Rightarrow\ W(t)W(t)^\top \to \Sigma^\star = \sum_{i\le k}(\lambda_i - \tau)"
               r"\,v_iv_i^\top",
       precision=(1e-10, "the flow at rtol 1e-10; gradient descent to round-off"),
       source=f"{BRECHET}, convergence of gradient flow on the smooth perturbed loss and of gradient descent with a "
              "finite step under assumptions on the initial weights (the margin below, an analogue of Arora et al. "
              "2019's deficiency margin, is derived here: the paper's assumptions could not be read)",
       statement="From a start whose loss lies below the second-lowest critical value L_2 (balanced or not), gradient "
                 "flow and gradient descent (step 0.05) on a deep generator converge to the top-k truncation Sigma*; "
                 "on the unperturbed loss (tau = 0) they do from a small random start too.",
       space=Space(SPACE + (Param("depth", 2, 4, integer=True, doc="number of factors N"),
                            Param("margin", 0.05, 0.95, doc="the start's loss, L* + margin (L_2 - L*)")),
                   constraints=CONSTRAINTS, key="margin"))
def bw_convergence(ctx: Context) -> Evidence:
    d, k = int(ctx.param("d", 5 if ctx.quick else 7)), int(ctx.param("k", 2))
    depth, fraction = int(ctx.param("depth", 3)), float(ctx.param("margin", 0.5))
    taus = (float(ctx.param("tau", 0.0)),) if ctx.param("tau", None) is not None else (0.0, 0.1)
    hidden = (k,) + (k + 1,) * (depth - 2)
    problem = sim.Problem.random(d, hidden=hidden, latent=d, seed=ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    lr, t_max, tol = 0.05, 100.0, 1e-6
    rows, flows, small, covs, targets = [], [], [], [], []
    for tau in taus:
        star = th.bw_minimiser(problem.covariance, k, tau)
        critical = [c.loss for c in th.bw_critical_points(problem.covariance, k, tau)]
        separation = min(np.linalg.norm(c.covariance - star.covariance)
                         for c in th.bw_critical_points(problem.covariance, k, tau)[1:]) / np.linalg.norm(star.covariance)
        w0, l0, _, second = _margin_start(problem, tau, fraction, rng)
        starts = {"balanced": _factorise(w0, problem.widths, True, rng),
                  "unbalanced": _factorise(w0, problem.widths, False, rng)}
        runs = [(f"{name}, {alg}", dict(layers=[w[None] for w in layers]), alg)
                for name, layers in starts.items() for alg in ("flow", "gd")]
        if tau == 0.0:
            runs += [(f"small random (alpha = 1e-2), {alg}", dict(alpha=1e-2, init="random"), alg)
                     for alg in ("flow", "gd")]
        for label, start, alg in runs:
            kw = dict(t_max=t_max, rtol=1e-10, t_eval=np.linspace(0, t_max, 101)) if alg == "flow" else \
                dict(lr=lr, steps=int(t_max / lr))
            traj = sim.simulate(problem, algorithm=alg, tau=tau, seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype,
                                device=ctx.device, **start, **kw)
            cov = traj.final["covariance"][0]
            covs.append(cov), targets.append(star.covariance)
            layers = tuple(traj.final[f"layer_{j + 1}"][:1] for j in range(problem.depth))
            _, grads = sim.loss_grad(problem.root(), layers, tau)
            rows.append({"tau": tau, "run": label, "start_loss": l0 if "random" not in label else None,
                         "second_critical_value": second, "minimum": star.loss,
                         "final_loss": float(traj.observables["loss"][0, -1]), "separation": float(separation),
                         "distance": float(np.linalg.norm(cov - star.covariance) / np.linalg.norm(star.covariance)),
                         "grad_norm": float(np.sqrt(sum(np.sum(g * g) for g in grads))),
                         "status": str(traj.status[0])})
            if alg == "flow" and "unbalanced" not in label:
                flows.append({"label": f"tau = {tau:g}, {label}", "t": traj.times, "loss": traj.observables["loss"][0],
                              "minimum": star.loss, "critical": critical})
        if tau > 0:  # reported, not claimed: a small start of the smooth perturbed loss at depth >= 3
            traj = sim.simulate(problem, 1e-2, "flow", tau=tau, init="random", t_max=t_max, rtol=1e-8,
                                seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
            small.append({"tau": tau, "distance": float(np.linalg.norm(traj.final["covariance"][0] - star.covariance)
                                                         / np.linalg.norm(star.covariance))})
    score = power.relative(np.stack(covs), np.stack(targets), tol, axis=(1, 2))
    note = ""
    if small:
        dists = ", ".join(f"{x['distance']:.3g}" for x in small)
        note = (f"Observed, not claimed: from a small random start (alpha = 1e-2) on the perturbed loss, gradient flow "
                f"at depth {depth} ends at relative distance {dists} from Sigma* at t = 100.")
        if max(x["distance"] for x in small) > tol:
            note += (" Not there yet: a plateau at a saddle, not a stuck point. Near W = 0 the smooth loss is "
                     "quadratic in W (its gradient 2(I - T)W is linear in W), so a unit of per-layer scale s grows "
                     "like s' ~ s^(2N-1) and escapes in a time ~ s0^-(2N-2) (at the quick default, d = 5, the "
                     "same run is within 1e-6 of Sigma* from t = 136, the tau = 0 one from t = 13); on the "
                     "unperturbed loss the nuclear-norm term's gradient "
                     "is O(1) at small W, s' ~ s^(N-1), and the small starts of the claim converge by t = 100.")
    return Evidence(
        predicted=[round(r["minimum"], 8) for r in rows], observed=[round(r["final_loss"], 8) for r in rows],
        quantity=f"final loss of each run (d = {d}, k = {k}, depth {depth}, tau = {', then '.join(map(str, taus))}; "
                 "predicted: L* of Sigma*)",
        error=score(1.0), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure="worst relative distance ||WW^T - Sigma*||_F / ||Sigma*||_F over the runs, in units of 1e-6",
        tolerance_reason="1e-6 separates reaching Sigma* from stopping anywhere else by five orders: every other "
                         f"critical point lies at relative distance >= {min(r['separation'] for r in rows):.2f}; the "
                         "flow's own error at rtol 1e-10 and gradient descent's round-off are ~1e-10 and ~1e-14",
        conditions={"every margin start lies below L_2": all(r["start_loss"] < r["second_critical_value"]
                                                              for r in rows if r["start_loss"] is not None),
                    "every run ends at a critical point (||grad|| <= 1e-6)": all(r["grad_norm"] <= 1e-6 for r in rows),
                    "no run diverged": all(r["status"] != "diverged" for r in rows)},
        details={"runs": rows, "flows": flows, "small_start_perturbed": small, "lr": lr, "t_max": t_max},
        note=note,
    )
