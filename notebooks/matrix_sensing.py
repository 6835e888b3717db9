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
# # Matrix sensing: what small initialisation, over-parameterisation and preconditioning do
#
# We want a low-rank matrix $M^*$ from linear measurements $y_i = \langle A_i, M^*\rangle$ and fit a
# factorisation $M = XX^\top$ (or $FG^\top$, or a deep product $W_N\cdots W_1$) by gradient descent on
# $f = \tfrac12\|\mathcal A(M) - y\|^2$. The operator is normalised so that $\mathbb E\|\mathcal A(M)\|^2 =
# \|M\|_F^2$; the "population" operator is the identity, where $f = \tfrac12\|M - M^*\|_F^2$ and
# everything has a closed form. Each section states a paper's result, simulates it and checks it with
# `assert`s: if a statement here stopped being true, the notebook would fail.
#
# Set `SOLVABLE_FAST=1` for a small, fast version (the test suite runs it that way).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from solvable.sims import matrix_sensing as ms
from solvable.sims.matrix_sensing.measure import crossing_times, iterations_to
from solvable.theory import matrix_sensing as th

FAST = os.environ.get("SOLVABLE_FAST") == "1"
n = 10 if FAST else 20

# %% [markdown]
# ## 1. Incremental learning (Jin et al. 2023)
#
# From $X_0 = \alpha\bar X$ with small $\alpha$, each eigen-direction of $M^*$ grows like
# $e^{2\sigma_i t}$ until it saturates: the eigenvalues are learned **one at a time, largest first**. In the
# commuting case the energy of mode $i$ is a logistic curve and it is half learned at
# $t_i = \ln(\sigma_i/\alpha^2 - 1)/(4\sigma_i)$: shrinking $\alpha$ by a factor $e$ delays mode $i$ by $1/(2\sigma_i)$.

# %%
sigma = np.array([1.0, 0.5, 0.25])
problem = ms.Problem.random(n, n, 3, symmetric=True, operator="population", singular_values=sigma, seed=0)
alphas = np.array([1e-2, 1e-4, 1e-6])
t_max = 1.2 * float(th.learning_time(sigma[-1], alphas[-1] ** 2))
t = np.linspace(0, t_max, 1500)
traj = ms.simulate(problem, alphas, k=5, t_max=t_max, t_eval=t, rtol=1e-9, loss_tol=0.0)   # one batched call
times = np.array([crossing_times(t, traj.observables["sv"][b], sigma) for b in range(3)])
slopes = (times[2] - times[1]) / np.log(alphas[1] / alphas[2])
print("learning times (rows: alpha):\n", np.round(times, 2))
print("dt_i / d ln(1/alpha):", np.round(slopes, 4), " predicted 1/(2 sigma_i):", th.learning_slope(sigma))
assert np.all(np.diff(times, axis=1) > 0), "largest eigenvalue first"
np.testing.assert_allclose(slopes, th.learning_slope(sigma), rtol=1e-3)

fig, ax = plt.subplots(figsize=(6, 3.5))
for b, a in enumerate(alphas):
    ax.plot(t, traj.observables["sv"][b, :, :3], ("-", "--", ":")[b], label=[f"alpha = {a:g}", None, None])
ax.set_xlabel("t")
ax.set_ylabel("eigenvalues of X X^T")
ax.set_title("the staircase: one eigenvalue at a time")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## 2. Over-parameterisation slows GD down (Xiong, Ding & Du 2023)
#
# With the exact rank ($k = r$) GD converges linearly. With $k > r$ the surplus columns must die out,
# and they do so only like $\dot z = -4z^2$, $z \sim 1/(4t)$: the error decays as $1/T^2$. The asymmetric
# model $FG^\top$ converges linearly again, but at a rate proportional to $\alpha^2$.

# %%
steps, lr = (20_000 if FAST else 60_000), 0.1
T_eval = np.unique(np.geomspace(1, steps, 200).astype(int))
sym = ms.Problem.random(n, n, 2, symmetric=True, operator="population", kappa=2.0, seed=1)
exact = ms.simulate(sym, 0.1, "gd", k=2, lr=lr, steps=steps, t_eval=T_eval, loss_tol=0.0, record_sv=False)
over = ms.simulate(sym, 0.1, "gd", k=4, lr=lr, steps=steps, t_eval=T_eval, loss_tol=0.0, record_sv=False)
err2 = over.observables["rel_error"][0] ** 2 * np.sum(sym.M_star**2)
tail = th.overparam_tail(2, T_eval * lr)
print(f"k > r: T^2 ||E||^2 at the end = {T_eval[-1] ** 2 * err2[-1]:.4f}; predicted 2/(8 s eta)^2 = "
      f"{T_eval[-1] ** 2 * tail[-1]:.4f}")
assert abs(err2[-1] / tail[-1] - 1) < 0.02
assert exact.observables["rel_error"][0, -1] < 1e-12 < over.observables["rel_error"][0, -1]

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(T_eval, exact.observables["rel_error"][0] + 1e-18, label="k = r")
ax.loglog(T_eval, over.observables["rel_error"][0], label="k = r + 2")
ax.loglog(T_eval, np.sqrt(tail / np.sum(sym.M_star**2)), "k:", label="sqrt(p)/(8 s eta T) / ||M*||")
ax.set_xlabel("iteration T")
ax.set_ylabel("relative error")
ax.set_title("exact vs over-parameterised")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## 3. Preconditioning removes the condition number (Xu et al. 2023)
#
# GD needs $\Theta(\kappa)$ iterations: the smallest eigenvalue $\sigma_r = \sigma_1/\kappa$ grows at a rate
# $\propto\sigma_r$ while the step is capped by $\sigma_1$. ScaledGD($\lambda$) multiplies the gradient by
# $(X^\top X + \lambda I)^{-1}$, which equalises the rates.

# %%
kappas = [1.0, 10.0, 100.0]
counts = {"gd": [], "scaledgd": []}
for kappa in kappas:
    p = ms.Problem.random(12, 12, 2, m=400, kappa=kappa, symmetric=True, operator="symmetric", seed=0)
    kw = dict(k=4, loss_scale=0.25, record_sv=False)
    g = ms.simulate(p, 1e-6, "gd", lr=0.2, steps=8000, t_eval=np.arange(0, 8001), **kw)
    s = ms.simulate(p, 1e-6, "scaledgd", lr=0.2, damping=0.1 / kappa, steps=500, t_eval=np.arange(0, 501), **kw)
    counts["gd"].append(iterations_to(g.times, g.observables["rel_error"][0], 1e-3))
    counts["scaledgd"].append(iterations_to(s.times, s.observables["rel_error"][0], 1e-3))
print("iterations to 1e-3:", {k: [int(v) for v in c] for k, c in counts.items()})
assert counts["gd"][-1] > 20 * counts["gd"][0] and counts["scaledgd"][-1] < 2 * counts["scaledgd"][0]

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(kappas, counts["gd"], "o-", label="GD")
ax.loglog(kappas, counts["scaledgd"], "s-", label="ScaledGD(lambda)")
ax.set_xlabel("kappa")
ax.set_ylabel("iterations to relative error 1e-3")
ax.set_title("condition number")
ax.legend()
plt.show()

# %% [markdown]
# ## 4. Implicit low-rank bias: nuclear norm, and what depth adds (Gunasekar et al. 2017; Arora et al. 2019)
#
# With commuting measurements the small-$\alpha$ limit is exactly an entropy-regularised trace minimiser,
# which tends to the minimum nuclear-norm solution. For matrix completion with few entries, deeper
# factorisations find lower-rank solutions than the nuclear norm does, and recover $M^*$ where it fails.

# %%
comp = ms.Problem.random(20, 20, 2, m=160, operator="completion", seed=0)
nuclear = th.min_nuclear_norm(mask=comp.mask, y=comp.M_star[comp.mask])
print(f"nuclear norm: certified (KKT residual {nuclear.kkt_residual:.1e}); error "
      f"{np.linalg.norm(nuclear.x - comp.M_star) / np.linalg.norm(comp.M_star):.3f}, effective rank "
      f"{th.effective_rank(nuclear.x):.2f}")
errors = {}
for depth in (2, 3):
    traj = ms.simulate(comp, 1e-4, "gd", k=20, factorisation="deep", depth=depth, lr=0.5 if depth == 2 else 0.3,
                       steps=8000 if FAST else 20000, t_eval=[0, 8000 if FAST else 20000], record_sv=False)
    M = traj.final["M"][0]
    errors[depth] = np.linalg.norm(M - comp.M_star) / np.linalg.norm(comp.M_star)
    print(f"depth {depth}: error {errors[depth]:.4f}, effective rank {th.effective_rank(M):.3f}")
assert errors[3] < np.linalg.norm(nuclear.x - comp.M_star) / np.linalg.norm(comp.M_star)

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(["nuclear", "depth 2", "depth 3"],
       [np.linalg.norm(nuclear.x - comp.M_star) / np.linalg.norm(comp.M_star), errors[2], errors[3]])
ax.set_yscale("log")
ax.set_xlabel("solution")
ax.set_ylabel("relative error to M*")
ax.set_title("completion, 160 of 400 entries")
plt.show()

# %% [markdown]
# ## 5. Robust recovery with the l1 loss (Ma & Fattahi 2023)
#
# A fifth of the measurements are grossly corrupted. The sub-gradient method on
# $\frac1m\sum_i|\langle A_i, XX^\top\rangle - y_i|$ with geometrically decaying steps, from a small start and
# with the rank over-estimated, still recovers $M^*$; the l2 loss is pulled away by the outliers.

# %%
robust = ms.Problem.random(12, 12, 2, m=500, kappa=2.0, symmetric=True, operator="symmetric", outliers=0.2, seed=0)
l1 = ms.simulate(robust, 1e-3, "subgradient", k=4, loss="l1", lr=0.3, decay=0.998, steps=6000, record_sv=False)
l2 = ms.simulate(robust, 1e-3, "gd", k=4, lr=0.1, steps=3000, record_sv=False)
print(f"l1 sub-gradient: {l1.observables['rel_error'][0, -1]:.2e};  l2 GD: {l2.observables['rel_error'][0, -1]:.2f}")
assert l1.observables["rel_error"][0, -1] < 1e-2 < l2.observables["rel_error"][0, -1]

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogy(l1.times, l1.observables["rel_error"][0], label="l1, sub-gradient")
ax.semilogy(l2.times, l2.observables["rel_error"][0], label="l2, GD")
ax.set_xlabel("iteration")
ax.set_ylabel("relative error")
ax.set_title("20 % outliers")
ax.legend()
plt.show()
