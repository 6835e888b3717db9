"""Claim: which mini-batches make the orthogonal frame the only SCL minimiser, and batch-binding (Kini et al. 2024).
Registered under ``ufm`` (imported by :mod:`proofs_checks.ufm`)."""

from __future__ import annotations

import textwrap

import numpy as np

from solvable.sims import ufm as sim
from solvable.theory.ufm import scl as th

from ..framework import power
from ..framework.registry import Context, Evidence, claim
from ..framework.space import Param, Space

KINI = ("Kini, Vakilian, Behnia, Gill & Thrampoulidis 2024, Symmetric Neural-Collapse Representations with "
        "Supervised Contrastive Loss: The Impact of ReLU and Batching (ICLR)")
TAU = 0.5
ORTHO_TOL, SPREAD_TOL, GAP_TOL = 1e-4, 1e-3, 1e-8
FREE = 0.1  # what "visibly not an orthogonal frame" means: |cos| or a within-class spread above this

# three classes of four samples (0-3, 4-7, 8-11), batches of four
BATCHINGS = {
    "meets the condition": [[0, 1, 4, 5], [2, 3, 8, 9], [6, 7, 10, 11], [1, 2, 5, 6], [9, 10, 3, 4], [0, 7, 8, 11]],
    "classes 1 and 2 never meet": [[0, 1, 4, 5], [2, 3, 6, 7], [0, 1, 8, 9], [2, 3, 10, 11], [1, 2, 4, 7],
                                   [9, 10, 0, 3]],
    "class 0 in two components": [[0, 1, 4, 5], [2, 3, 8, 9], [6, 7, 10, 11], [5, 6, 9, 10], [4, 7, 8, 11]],
}


def _geometry(H: np.ndarray, n: tuple[int, ...], cond: th.BatchCondition) -> dict:
    bounds = np.concatenate([[0], np.cumsum(n)])
    K = len(n)
    means = np.stack([H[:, bounds[k]:bounds[k + 1]].mean(axis=1) for k in range(K)], axis=1)
    unit = means / np.linalg.norm(means, axis=0)
    gram = unit.T @ unit
    # collapse is judged within each predicted component; orthogonality on the pairs of samples the batches force
    comp_spread = max(float(np.linalg.norm(H[:, list(c)] - H[:, list(c)].mean(axis=1, keepdims=True), axis=0).max())
                      for comps in cond.components for c in comps)
    class_spread = [float(np.linalg.norm(H[:, bounds[k]:bounds[k + 1]] - means[:, [k]], axis=0).max())
                    for k in range(K)]
    sample_cos = H.T @ H
    forced = max([float(np.abs(sample_cos[np.ix_(cond.components[k][a], cond.components[l][b])]).max())
                  for (k, a), (l, b) in cond.forced] or [0.0])
    free = [abs(float(gram[k, l])) for k, l in cond.unforced_pairs] + [class_spread[k] for k in cond.split_classes]
    return {"gram": gram.round(6).tolist(), "component_spread": comp_spread, "class_spread": class_spread,
            "forced_max_cos": forced, "free": free}


def _case(name: str, n: tuple[int, ...], batches: list, d: int, ctx: Context) -> dict:
    cond = th.scl_batch_condition(n, batches)
    traj = sim.simulate_scl(sim.Problem(n=n, d=d, relu=True), alpha=[1.0], temperature=TAU, t_max=2e5,
                            batches=batches, seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    value, minimum = float(traj.observables["loss"][0, -1]), th.scl_batch_minimum(n, batches, TAU)
    geo = _geometry(np.asarray(traj.final["H"][0]), n, cond)
    return {"name": name, "batches": [list(map(int, b)) for b in batches], "unique": cond.unique,
            "split_classes": list(cond.split_classes), "unforced_pairs": [list(p) for p in cond.unforced_pairs],
            "minimum": minimum, "value": value, "gap": value - minimum, "status": str(traj.status[0]), **geo}


def _random_batches(n: tuple[int, ...], size: int, epochs: int, seed: int) -> list[list[int]]:
    """``epochs`` shuffles of the samples, each cut into batches of ``size`` (a last batch of one joins the one
    before): every sample is in a batch, as in training by epochs."""
    rng = np.random.default_rng(seed)
    N = sum(n)
    out = []
    for _ in range(epochs):
        order = rng.permutation(N).tolist()
        cut = [order[i:i + size] for i in range(0, N, size)]
        if len(cut) > 1 and len(cut[-1]) < 2:
            cut[-2] += cut.pop()
        out += [sorted(b) for b in cut]
    return out


def _draw(fig, ev: Evidence) -> None:
    cases = ev.details["cases"]
    for j, c in enumerate(cases):
        ax = fig.add_subplot(1, len(cases), j + 1)
        ax.imshow(np.array(c["gram"]), vmin=-1, vmax=1, cmap="RdBu_r")
        for (a, b), v in np.ndenumerate(np.array(c["gram"])):
            ax.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w" if abs(v) > 0.5 else "k")
        ax.set_xticks([])
        ax.set_yticks([])
        verdict = "unique OF" if c["unique"] else "OF not forced"
        ax.set_title(textwrap.fill(c["name"], 16) + f"\n({verdict})", fontsize=6)
    fig.subplots_adjust(bottom=0.14)
    fig.text(0.5, 0.04, "cosines of the class means where gradient flow on the batched SCL (ReLU) ends", ha="center",
             fontsize=8)


@claim(id="ufm.scl_batch_condition", kind="simulation", figure=_draw,
       formula=r"\ell_i \ge \log\big((m-1)e^{1/\tau} + c\big) - \tfrac1\tau,\ = \text{ iff } h_p = h_i,\ "
               r"h_j \perp h_i;\quad \text{OF unique} \iff \text{classes connected and every pair meets}",
       precision=(1e-8, "the minimum's value; the geometry to 1e-4 (orthogonality) and 1e-3 (collapse)"),
       source=f"{KINI}, Sec. 5 (the necessary and sufficient condition on mini-batches, batch-binding); the bound, "
              "the minimiser set and the condition derived in theory.ufm.scl (the paper's own statement could not "
              "be read, only its abstract and contents)",
       statement="With ReLU (non-negative unit) features and fixed mini-batches, gradient flow on the batched SCL "
                 "reaches the predicted minimum (the sum of the anchors' bounds); the samples of a class collapse "
                 "within each component of its same-batch graph (batches holding another class), and components "
                 "that meet in a batch (one of them twice there) are orthogonal; where a batching breaks the condition the end point is a minimiser that is not an "
                 "orthogonal frame (two classes at a free angle, a class in two pieces), and binding one sample of "
                 "each class to every batch restores the orthogonal frame.",
       space=Space((Param("K", 2, 4, integer=True, doc="classes"),
                    Param("n", 2, 5, integer=True, doc="samples per class"),
                    Param("size", 2, 6, integer=True, doc="batch size (random batches)"),
                    Param("epochs", 1, 3, integer=True, doc="shuffled epochs cut into batches")), key="size"))
def scl_batch_condition(ctx: Context) -> Evidence:
    if ctx.point:
        K, n_per = int(ctx.param("K", 3)), int(ctx.param("n", 4))
        n = (n_per,) * K
        batches = _random_batches(n, int(ctx.param("size", 4)), int(ctx.param("epochs", 1)), ctx.seed)
        named = [("random batches", batches), ("random batches, bound", th.bind_batches(n, batches))]
    else:
        n = (4, 4, 4)
        named = list(BATCHINGS.items())
        named += [(f"{name}, bound", th.bind_batches(n, b)) for name, b in BATCHINGS.items() if name != "meets the condition"]
        if ctx.quick:
            named = [c for c in named if c[0] != "meets the condition" and not c[0].startswith("class 0 in two comp")]
    cases = [_case(name, n, b, len(n) + 2, ctx) for name, b in named]
    geometry = max(max(c["forced_max_cos"] / ORTHO_TOL, c["component_spread"] / SPREAD_TOL) for c in cases)
    score = power.worst(power.fixed(geometry), power.absolute([c["value"] for c in cases],
                                                              [c["minimum"] for c in cases], GAP_TOL))
    error = score(1.0)
    conditions = {"no run diverged": all(c["status"] != "diverged" for c in cases),
                  "binding makes the orthogonal frame unique (theory; batches that cover every sample)": all(
                      c["unique"] for c in cases if c["name"].endswith("bound"))}
    if not ctx.point:
        conditions["each batching that breaks the condition ends visibly off an orthogonal frame"] = all(
            max(c["free"]) > FREE for c in cases if not c["unique"])
    return Evidence(
        predicted=[round(c["minimum"], 10) for c in cases],
        observed=[round(c["value"], 10) for c in cases],
        quantity="the batched SCL's minimum per batching (" + "; ".join(c["name"] for c in cases) + ")",
        unit="budget",
        error=error, tolerance=1.0, score=score, false_alarm=0.0,
        error_measure=f"the worst of |value - minimum| in units of {GAP_TOL:g}, the largest |cos| between samples of "
                      f"components the batches force orthogonal in units of {ORTHO_TOL:g}, and the largest spread "
                      f"within a predicted component in units of {SPREAD_TOL:g}",
        tolerance_reason="at the minimum the gap, the forced cosines and the spreads are zero; the flow stops at "
                         "gradient norm 1e-9 (rtol 1e-9), where the metrics, linear in the distance, are far below "
                         "1e-4 and 1e-3 (as for ufm.scl_relu_orthogonal) and the gap, quadratic, below 1e-8. "
                         f"'Visibly off' means a free cosine or a split class's spread above {FREE}: a generic end "
                         "point of the flow among the minimisers the condition leaves free",
        conditions=conditions,
        details={"cases": cases, "n": list(n), "temperature": TAU},
        note="; ".join(f"{c['name']}: free cosines / spreads {np.round(c['free'], 3).tolist()}"
                       for c in cases if not c["unique"]),
    )
