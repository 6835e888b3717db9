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
# # Diagonal linear networks: what gradient descent secretly minimises
#
# A diagonal linear network predicts with $w = u \odot u - v \odot v$ and is trained on the square
# loss $L = \|Xw - y\|^2 / (2n)$ from $u = v = \alpha$. With more coordinates than samples there are
# infinitely many interpolators; which one training finds depends on the **initial scale**
# $\alpha$, the **step size** and the **noise** of the algorithm. This notebook shows each effect
# and checks it against the closed-form prediction, with `assert`s: if a statement here stopped
# being true, the notebook would fail.
#
# Set `SOLVABLE_FAST=1` for a small, fast version (the test suite runs it that way).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from solvable.sims import diagonal
from solvable.theory import diagonal as th

FAST = os.environ.get("SOLVABLE_FAST") == "1"
n, d, k = (20, 40, 3) if FAST else (40, 100, 5)
problem = diagonal.Problem.random(n, d, k, seed=0)
l1 = th.min_l1_interpolator(problem.X, problem.y).x
l2 = th.min_l2_interpolator(problem.X, problem.y).x
print(f"n = {n} samples, d = {d} coordinates, a {k}-sparse teacher")

# %% [markdown]
# ## 1. Kernel and rich regimes (Woodworth et al. 2020)
#
# Along gradient flow, $w(t) = 2\alpha^2 \sinh(X^\top \nu(t))$: a mirror flow. Its limit is
# $\arg\min Q_\alpha(w)$ over the interpolators, with
# $Q_\alpha(w) = \alpha^2 \sum_i q(w_i/\alpha^2)$ and $q(z) = 2 - \sqrt{4+z^2} + z\,\mathrm{arcsinh}(z/2)$.
# Small $\alpha$: $Q_\alpha \approx \|w\|_1 \log(1/\alpha^2)$, the **rich** regime (sparse).
# Large $\alpha$: $Q_\alpha \approx \|w\|_2^2 / (4\alpha^2)$, the **kernel** regime.

# %%
alphas = np.geomspace(1e-2, 10, 4 if FAST else 7)
traj = diagonal.simulate(problem, alphas, t_max=3e5)          # one batched call, one run per alpha
assert set(traj.status) == {"converged"}
rows = []
for a, w in zip(alphas, traj.final["w"]):
    pred = th.implicit_bias(problem.X, problem.y, a).x
    rows.append((a, np.linalg.norm(w - pred) / np.linalg.norm(pred),
                 np.linalg.norm(w - l1) / np.linalg.norm(l1), np.linalg.norm(w - l2) / np.linalg.norm(l2)))
    print(f"alpha={a:8.3g}  |flow - prediction| = {rows[-1][1]:.1e}   to min-l1: {rows[-1][2]:.3f}   "
          f"to min-l2: {rows[-1][3]:.2e}")
rows = np.array(rows)
assert np.all(rows[:, 1] < 1e-5)                    # the flow ends exactly where the theory says
assert np.all(np.diff(rows[:, 2]) >= -1e-6)         # small alpha: closer to the sparsest interpolator
assert np.all(np.diff(rows[:, 3]) <= 1e-6)          # large alpha: closer to the minimum-norm one

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(alphas, rows[:, 2], "o-", label="distance to min-l1")
ax.loglog(alphas, rows[:, 3], "s-", label="distance to min-l2")
ax.set_xlabel("initial scale alpha")
ax.set_ylabel("relative distance")
ax.set_title("Rich (small alpha) to kernel (large alpha)")
ax.legend()

# %% [markdown]
# ## 2. The potential
#
# $q$ is convex, even, minimised at 0, with $q'(z) = \mathrm{arcsinh}(z/2)$; sympy proves it in
# `theory.diagonal.symbolic`. Numerically:

# %%
z = np.linspace(-20, 20, 401)
qz = th.q(z)
assert qz.min() == 0 and np.all(np.diff(qz, 2) > 0)                 # convex, minimum 0
assert np.allclose(np.gradient(qz, z)[1:-1], np.arcsinh(z / 2)[1:-1], atol=1e-2)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(z, qz, label="q(z)")
ax.plot(z, z**2 / 4, "--", label="z^2/4 (kernel)")
ax.plot(z, np.abs(z) * np.log(1 + np.abs(z)), ":", label="|z| log|z| (rich)")
ax.set_ylim(0, 60)
ax.set_xlabel("z")
ax.set_ylabel("potential")
ax.set_title("The potential q interpolates l2 and l1")
ax.legend()

# %% [markdown]
# ## 3. Saddle to saddle (Pesme & Flammarion 2023)
#
# As $\alpha \to 0$, in rescaled time $\tilde t = t / \ln(1/\alpha)$, the flow jumps between saddles
# of the loss. The jump times and saddles come from a LARS-like algorithm; with this library's
# parametrisation the dual variable moves at speed $2\nabla L$ (derived in
# `theory.diagonal.saddle_to_saddle`). The last saddle is the min-l1 interpolator.

# %%
algo = th.saddle_to_saddle(problem.X, problem.y)
print("jump times:", np.round(algo.times[1:], 4))
print("active sets:", [[int(i) for i in a] for a in algo.active[1:]])
assert np.linalg.norm(algo.saddles[-1] - l1) < 1e-6 * np.linalg.norm(l1)

tau = np.linspace(0, 1.3 * algo.times[-1], 300 if FAST else 800)[1:]
w_small, loss_small, _ = diagonal.simulate_rescaled(problem, [1e-4, 1e-12], tau)
levels = 0.5 * (algo.losses[:-1] + algo.losses[1:])
first_jump = [tau[np.argmax(loss_small[b] < levels[0])] for b in range(2)]
print("first jump: predicted", round(algo.times[1], 3), "simulated", np.round(first_jump, 3))
assert abs(first_jump[1] - algo.times[1]) < abs(first_jump[0] - algo.times[1])   # sharper as alpha -> 0

fig, ax = plt.subplots(figsize=(5, 3))
for i in np.nonzero(np.any(np.abs(algo.saddles) > 1e-9, axis=0))[0]:
    ax.plot(tau, w_small[1, :, i])
    ax.step(algo.times, algo.saddles[:, i], where="post", color="k", alpha=0.3)
ax.set_xlabel("t / ln(1/alpha)")
ax.set_ylabel("coordinates w_i")
ax.set_title("Saddle to saddle: flow (colours) and Algorithm 1 (grey steps)")

# %% [markdown]
# ## 4. What SGD adds (Pesme et al. 2021; Even et al. 2023)
#
# A discrete step multiplies $u$ by $1 - 2\gamma g$ and $v$ by $1 + 2\gamma g$. The product
# $uv$, constant ($=\alpha^2$) along the flow, shrinks: the run behaves like a flow started from
# the smaller **effective scale** $\alpha_\infty = \sqrt{u_\infty v_\infty}$. For SGD the shrinkage
# is spread over all coordinates and the solution gets sparser; for GD it concentrates where
# gradients are large and the solution gets *less* sparse.

# %%
alpha = 0.1
flow_w = diagonal.simulate(problem, alpha, t_max=3e5).final["w"][0]
sgd = diagonal.simulate(problem, alpha, algorithm="sgd", lr=0.05 if FAST else 0.03, batch_size=1,
                        steps=200_000, seed=0)
u, v = sgd.final["u"][0], sgd.final["v"][0]
a_inf = th.effective_alpha(u, v)
pred = th.implicit_bias(problem.X, problem.y, a_inf).x
err = np.linalg.norm(sgd.final["w"][0] - pred) / np.linalg.norm(pred)
print(f"effective alpha: {a_inf.min():.3g} .. {a_inf.max():.3g} (started at {alpha})")
print(f"SGD limit vs argmin Q_alpha_inf: {err:.1e}")
print(f"l1 norm: flow {np.abs(flow_w).sum():.4f}, SGD {np.abs(sgd.final['w'][0]).sum():.4f}")
assert a_inf.max() < alpha
assert err < 0.05
assert np.abs(sgd.final["w"][0]).sum() < np.abs(flow_w).sum()

# %% [markdown]
# ### How much does SGD shrink the scale? The step, the batch and the loss integral
#
# With batches of $B$ of the $n$ samples, the squared batch gradient is on average
# $g^2 + c_B\,\mathrm{Var}_i(r_i x_i)$ with $c_B = (n - B)/(B(n - 1))$: 1 for one sample, 0 for the full batch.
# So, to leading order, $\ln(\alpha_\infty/\alpha) \approx -2\eta^2\sum_k[(1 - c_B)g_k^2 + c_B\,\overline{(r_kx)^2}]$,
# and summed over the coordinates with rows of equal norm $R$ the noise's share is
# $-4\eta c_B R^2\int_0^\infty L\,dt$: the slower the loss falls, the smaller the effective scale (Pesme et al.
# 2021). `th.effective_alpha_sgd` reads the prediction off the iterates.

# %%
rng = np.random.default_rng(1)
Xs = rng.standard_normal((10, 20))
Xs *= np.sqrt(20) / np.linalg.norm(Xs, axis=1, keepdims=True)  # rows of equal norm R^2 = 20
teacher = np.zeros(20)
teacher[:2] = (1.0, -1.0)
small = diagonal.Problem(Xs, Xs @ teacher, w_star=teacher)
lr, measured, predicted, budget = 0.015, [], [], []
batches = (1, 10) if FAST else (1, 2, 5, 10)
for B in batches:
    run = diagonal.simulate(small, alpha, "sgd", lr=lr, batch_size=B, steps=100_000, record_w=True,
                            t_eval=np.arange(100_001), seed=0)
    k = int(run.stop_step[0])
    measured.append(np.log(th.effective_alpha(run.final["u"][0], run.final["v"][0]) / alpha).sum())
    p = th.effective_alpha_sgd(small.X, small.y, run.observables["w"][0][:k], lr, B)
    predicted.append(p["gd_part"].sum() - 4 * lr * p["c_B"] * p["row_norm_sq"] * p["loss_integral"])
    # what the leading order drops: each step's Taylor remainder, and 4 standard deviations of the draws' martingale
    budget.append(p["remainder_bound"].sum() + 4 * np.sqrt(p["variance_bound"]).sum())
    print(f"B = {B:2d} (c_B = {p['c_B']:.3f}): sum ln(alpha_inf/alpha) measured {measured[-1]:.4f}, "
          f"predicted {predicted[-1]:.4f} +- {budget[-1]:.4f}")
assert all(np.diff(measured) > 0)  # less noise, less shrinkage
assert all(abs(m - q) <= e for m, q, e in zip(measured, predicted, budget))

# %% [markdown]
# ### Steps beyond the edge of stability
#
# Gradient descent cannot stop at a minimum whose sharpness exceeds $2/\eta$. With a step beyond
# $2/\lambda_{\max}$ of the flow's minimum, GD must leave the flow's path: it oscillates, shrinks the scale
# where it oscillates, and lands on a flatter minimum, at the edge $\eta\lambda_{\max}(H) \approx 2$. Even et
# al. 2023 describe how this window, just below divergence, magnifies GD's loss of sparsity.

# %%
flow = diagonal.simulate(problem, alpha, t_max=3e5)
edge = 2 / th.hessian_top(problem.X, flow.final["u"][0], flow.final["v"][0])
fractions = np.array([0.5, 1.1, 1.2])
gd = diagonal.simulate(problem, alpha, "gd", lr=fractions * edge, steps=100_000)
for b, f in enumerate(fractions):
    u, v = np.abs(gd.final["u"][b]), np.abs(gd.final["v"][b])  # a factor may change sign: w does not see it
    sharp = f * edge * th.hessian_top(problem.X, u, v) / 2
    print(f"eta = {f} x 2/lambda_flow: {gd.status[b]}, eta lambda_max/2 at the limit {sharp:.3f}, "
          f"||w - w*|| = {np.linalg.norm(gd.final['w'][b] - problem.w_star):.3f}")
    assert gd.status[b] == "converged" and sharp <= 1 + 1e-9
print(f"the flow: ||w - w*|| = {np.linalg.norm(flow.final['w'][0] - problem.w_star):.3f}")

# %% [markdown]
# ## When does SGD stay at a minimum? Step, batch size and the coherence of the Hessians
#
# Near a minimum each sample's loss is a quadratic $\tfrac12\delta^\top H_i\delta$ and an SGD step is
# $\delta \mapsto (I - \eta H_S)\delta$. Its second moment evolves by a linear map whose spectral radius
# crosses 1 at $\eta^\star(B)$, a generalised eigenvalue (`theory.linear_stability`). With a full batch it is
# GD's $2/\lambda_{\max}(H)$; smaller batches lower it, the more so when the samples' Hessians point in
# different directions (Dexter et al. 2024). Below, $n = 12$ rank-one Hessians of the same mean sharpness,
# of which the first `group` share a direction.

# %%
from solvable.sims import quadratic
from solvable.theory import linear_stability as ls

plt.figure(figsize=(5, 3))
for b in (1, 2, 4, 12):
    groups = range(1, 13)
    plt.plot(groups, [ls.stability_threshold(quadratic.Problem.coherent(12, g).hessians, b) for g in groups],
             "-o", ms=3, label=f"B = {b}")
plt.xlabel("samples sharing the top direction"); plt.ylabel("eta* x lambda_max(H) / 2")
plt.title("the mean-square stability boundary of SGD", fontsize=8); plt.legend(fontsize=7); plt.show()

hess = quadratic.Problem.coherent(12, 4).hessians
eta = ls.stability_threshold(hess, 1)
for f in (0.9, 1.1):
    theta0 = np.ones((1000 if FAST else 4000, 9)) / 3.0
    run = quadratic.simulate(quadratic.Problem(hess), algorithm="sgd", theta0=theta0, lr=f * eta, steps=20,
                             batch_size=1, seed=0)
    pred = np.trace(ls.second_moment(hess, f * eta, 1, np.outer(theta0[0], theta0[0]), 20)[-1])
    sq = run.observables["norm_sq"][:, -1]
    print(f"step {f} x eta*: mean ||theta_20||^2 = {sq.mean():.3f}, predicted {pred:.3f}")
    assert abs(sq.mean() - pred) < 4 * sq.std() / np.sqrt(sq.size)  # Monte Carlo: four standard errors

# %% [markdown]
# Each of these statements is also a claim checked by `solvable verify --model diagonal`, with the
# tolerance and its reason written next to the result.
