# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Neural collapse in the unconstrained feature model
#
# Treat the last-layer features $H$ as free parameters, train them together with the classifier
# $W$ under weight decay, and the geometry of the minimum can be computed exactly. This notebook
# checks the main facts with `assert`s; `SOLVABLE_FAST=1` runs a small version.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from solvable.sims import ufm
from solvable.theory import ufm as th

FAST = os.environ.get("SOLVABLE_FAST") == "1"
lam = 5e-3

# %% [markdown]
# ## 1. A nonconvex problem with a convex value
#
# $\lambda_W\|W\|^2 + \lambda_H\|H\|^2 \ge 2\sqrt{\lambda_W\lambda_H}\|WH\|_*$, with equality for balanced
# factors: the MSE problem is soft-thresholding of the label matrix, whose singular values are
# $\sqrt{n_k}$. Gradient flow on the nonconvex problem finds that value.

# %%
n = (20, 10, 5, 3) if FAST else (60, 30, 15, 8, 4)
problem = ufm.Problem(n=n, d=len(n) + 2, loss="mse", lambda_W=lam, lambda_H=lam)
traj = ufm.simulate(problem, alpha=[0.1], t_max=3e4)
value = th.mse_optimal_value(n, lam, lam)
print(f"flow {traj.observables['loss'][0, -1]:.12f}   closed form {value:.12f}")
assert abs(traj.observables["loss"][0, -1] - value) < 1e-9 * value

# %% [markdown]
# ## 2. Imbalance: orthogonal, not equiangular (Dang et al. 2023)
#
# Without a bias, the classifier rows are orthogonal with $\|w_k\|^2 = \sqrt{n_k\lambda_H/\lambda_W} - N\lambda_H$;
# small classes get short vectors and vanish below $n_k \le N^2\lambda_W\lambda_H$.

# %%
geo = th.mse_geometry(n, lam, lam)
W = traj.final["W"][0]
gram = W @ W.T
print("||w_k||^2 simulated:", np.round(np.diag(gram), 6))
print("||w_k||^2 predicted:", np.round(geo.w_norms_sq, 6))
assert np.allclose(np.diag(gram), geo.w_norms_sq, rtol=1e-6)
assert np.allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-8)

# %% [markdown]
# ## 3. Balanced cross-entropy: the simplex ETF (Zhu et al. 2021)

# %%
K, m = 4, 8
ce = ufm.Problem(n=(m,) * K, d=K + 2, loss="ce", lambda_W=lam, lambda_H=lam)
run = ufm.simulate(ce, alpha=[0.1], t_max=1e5)
nc = {k: run.observables[k][0, -1] for k in ("nc1", "nc2", "nc2_w", "nc3", "nc4")}
print({k: f"{v:.1e}" for k, v in nc.items()})
assert max(nc.values()) < 1e-6
Z = run.final["W"][0] @ run.final["H"][0]
print("logit scale", Z[0, 0], "predicted", th.ce_balanced_scale(K, m, lam, lam))
assert abs(Z[0, 0] - th.ce_balanced_scale(K, m, lam, lam)) < 1e-6

fig, ax = plt.subplots(figsize=(5, 3))
for k in ("nc1", "nc2", "nc3"):
    ax.loglog(run.times[1:], np.maximum(run.observables[k][0, 1:], 1e-17), label=k)
ax.set_xlabel("time t (gradient flow)")
ax.set_ylabel("neural-collapse metric")
ax.set_title("Balanced cross-entropy: NC1-NC3 go to zero")
ax.legend()

# %% [markdown]
# ## 4. Minority collapse (Fang et al. 2021)
#
# With two large and two small classes, the two minority classifiers draw together as the imbalance
# grows: their cosine rises.

# %%
cos = []
for r in (1, 4, 16):
    Zc = th.ce_convex_program((2 * r, 2 * r, 2, 2), lam, lam).x
    U, s, _ = np.linalg.svd(Zc, full_matrices=False)
    Wc = U * np.sqrt(s)
    g = Wc @ Wc.T
    cos.append(g[2, 3] / np.sqrt(g[2, 2] * g[3, 3]))
print("minority cosine for ratios 1, 4, 16:", np.round(cos, 4))
assert cos[0] < cos[1] < cos[2]

# %% [markdown]
# ## 5. Features that cannot move far: near collapse (Tirer, Huang & Niles-Weed 2023)
#
# Pull the features toward given ones, $\frac{\lambda_H}{2}\|H - H_0\|^2$, instead of toward zero. At any
# critical point the within-class part is exactly $HP = \lambda_H(W^\top W/N + \lambda_H I)^{-1}H_0P$: shrunk
# along the directions the classifier sees, untouched elsewhere. If $H_0$ is nearly collapsed (class means
# $a\,q_k$ plus noise of size $\varepsilon$), the shrink factor $c$ and the new means $t\,q_k$ come from a
# two-variable problem, and NC1 drops by $(ca/t)^2$ up to $O(\varepsilon^2)$
# (`theory.ufm.perturbation`, derived here; claim `ufm.near_collapse`).

# %%
from solvable.theory.ufm import perturbation as tp

K, n_per, d, a = 3, 8, 6, 1.0
rng = np.random.default_rng(0)
Q = np.linalg.qr(rng.standard_normal((d, K)))[0]
E = 0.02 * tp.within_class(rng.standard_normal((d, K * n_per)), (n_per,) * K)
H0 = np.repeat(a * Q, n_per, axis=1) + E
for lw, lh in ((1e-2, 1e-2), (3e-2, 1e-2), (1e-2, 3e-2)):
    pred = tp.near_collapse(K, n_per, lw, lh, a)
    problem = ufm.Problem(n=(n_per,) * K, d=d, loss="mse", lambda_W=lw, lambda_H=lh, anchor=H0)
    run = ufm.simulate(problem, alpha=[0.1], t_max=1e5, rtol=1e-10, grad_tol=1e-10)
    nc1_h0 = float(ufm.metrics(problem, (np.zeros((1, K, d)), H0[None]))["nc1"][0])
    ratio = float(run.observables["nc1"][0, -1]) / nc1_h0
    print(f"lambda_W = {lw:g}, lambda_H = {lh:g}: NC1 ratio {ratio:.5f}, predicted (c a/t)^2 = {pred.nc1_ratio:.5f}")
    assert abs(ratio - pred.nc1_ratio) < 0.05 * pred.nc1_ratio  # O(eps^2) at eps = 0.02
print("d ln ratio / d ln lambda_W, d ln lambda_H:", np.round(tp.near_collapse_elasticities(K, n_per, 1e-2, 1e-2, a), 3))

# %% [markdown]
# ## 6. Supervised contrastive loss: which mini-batches give an orthogonal frame (Kini et al. 2024)
#
# With ReLU features the SCL minimum is an orthogonal frame, but over fixed mini-batches only the pairs that meet
# in a batch are pushed apart. Classes 1 and 2 never meet below: the flow reaches the minimum with the two classes
# on one vector. Binding one sample of each class to every batch fixes it (`theory.ufm.scl`, derived here).

# %%
from solvable.theory.ufm import scl as ts

n_scl = (4, 4, 4)
never_meet = [[0, 1, 4, 5], [2, 3, 6, 7], [0, 1, 8, 9], [2, 3, 10, 11], [1, 2, 4, 7], [9, 10, 0, 3]]
for name, batches in (("1 and 2 never meet", never_meet), ("bound", ts.bind_batches(n_scl, never_meet))):
    cond = ts.scl_batch_condition(n_scl, batches)
    run = ufm.simulate_scl(ufm.Problem(n=n_scl, d=5, relu=True), alpha=[1.0], temperature=0.5, t_max=2e5,
                           batches=batches)
    H = run.final["H"][0]
    means = np.stack([H[:, 4 * k:4 * k + 4].mean(axis=1) for k in range(3)], axis=1)
    unit = means / np.linalg.norm(means, axis=0)
    gap = float(run.observables["loss"][0, -1]) - ts.scl_batch_minimum(n_scl, batches, 0.5)
    print(f"{name}: unique OF predicted {cond.unique}; cosines of the class means\n{np.round(unit.T @ unit, 3)}")
    assert abs(gap) < 1e-8
    assert cond.unique == bool(np.abs(unit.T @ unit - np.eye(3)).max() < 1e-4)
