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
# # In-context learning with linear self-attention, and attention as a max-margin SVM
#
# A prompt holds $N$ examples $(x_i, y_i)$ with $x_i \sim N(0, \Lambda)$ and $y_i = \langle w, x_i\rangle$ for
# a task $w$ drawn afresh for every prompt, then a query $x_q$. A one-layer linear self-attention (LSA)
# reads the prompt as a matrix $E = [[x_1 \cdots x_N\ x_q], [y_1 \cdots y_N\ 0]]$ and predicts
#
# $$\hat y = x_q^\top A\,h,\qquad h = \tfrac1N\textstyle\sum_i y_ix_i ,$$
#
# where $A$ is built from its weights ($A = uU_{11}^\top$ in Zhang, Frei and Bartlett's notation). Training on
# many prompts decides $A$; nothing is learned at test time, yet the prediction adapts to each prompt's
# task. Each section states a paper's result, simulates it and checks it with `assert`s.
#
# Set `SOLVABLE_FAST=1` for a small, fast version (the test suite runs it that way).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from solvable.sims import lsa
from solvable.sims.lsa import softmax as soft
from solvable.theory import lsa as th

FAST = os.environ.get("SOLVABLE_FAST") == "1"
rng = np.random.default_rng(0)
Lam = lsa.rotated_covariance([2.0, 1.0, 0.5])     # a rotated, non-isotropic covariance

# %% [markdown]
# ## 1. Training finds $\Gamma^{-1}$ (Zhang, Frei, Bartlett 2024, Thm 4.1)
#
# On the population loss $L = \tfrac12\mathbb E(\hat y - \langle w, x_q\rangle)^2$ gradient flow from their
# small initialisation converges to $A = \Gamma^{-1}$ with $\Gamma = (1 + \tfrac1N)\Lambda + \tfrac{\operatorname{tr}\Lambda}{N}I$:
# a *preconditioned* one-step GD predictor that also corrects for the finite prompt length.

# %%
N = 5
traj = lsa.simulate(lsa.Problem(Lambda=Lam, N=N), alpha=0.1, t_max=1e3, grad_tol=1e-9)
A = traj.final["A"][0]
G_inv = np.linalg.inv(th.gamma(Lam, N))
print("flow limit A:\n", np.round(A, 5), "\nGamma^-1:\n", np.round(G_inv, 5))
np.testing.assert_allclose(A, G_inv, atol=1e-7)
print("minimal loss:", round(th.min_loss(Lam, N), 6), " loss at the end:", round(float(traj.observables["loss"][0, -1]), 6))

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(traj.times[1:], traj.observables["loss"][0, 1:] - th.min_loss(Lam, N) + 1e-16)
ax.set_xlabel("t")
ax.set_ylabel("L(t) - min L")
ax.set_title("gradient flow on the population loss converges linearly after a plateau")
plt.show()

# %% [markdown]
# ## 2. The prediction error against the test prompt length (ZFB Thm 4.2)
#
# With $A = \Gamma_N^{-1}$ fixed by training on length $N$, the error on prompts of length $M$ has an exact
# closed form (`theory.lsa.test_risk`): it falls like $1/M$, to a floor of order $1/N^2$.

# %%
Ms = np.array([1, 3, 10, 30, 100])
P = 2000 if FAST else 20000
root = np.linalg.cholesky(Lam)
sim_risk, pred_risk = [], []
for M in Ms:
    X = rng.standard_normal((P, M, 3)) @ root.T
    xq = rng.standard_normal((P, 3)) @ root.T
    w = rng.standard_normal((P, 3))
    h = np.einsum("pn,pnd->pd", np.einsum("pnd,pd->pn", X, w), X) / M
    err = (np.einsum("pd,de,pe->p", xq, A, h) - np.einsum("pd,pd->p", xq, w)) ** 2
    sim_risk.append(err.mean())
    pred_risk.append(th.test_risk(A, Lam, int(M)))
    assert abs(err.mean() - pred_risk[-1]) < 5 * err.std() / np.sqrt(P)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(Ms, pred_risk, "k-", label="closed form")
ax.loglog(Ms, sim_risk, "o", label="simulated")
ax.set_xlabel("test prompt length M")
ax.set_ylabel("mean squared error")
ax.set_title(f"trained on N = {N}")
ax.legend()
plt.show()

# %% [markdown]
# ## 3. Distribution shift (ZFB Sec. 4.2)
#
# Any task distribution with $\mathbb E[ww^\top] = I$ gives the same error, but scaling the covariates by
# $c$ scales the prediction by $c^3$ while the target scales by $c$: covariate shift is not tolerated. (At
# $N = 5$ the learned $\Gamma^{-1}$ shrinks so much that the effect hides; we train on $N = 50$ here.)

# %%
A50 = lsa.simulate(lsa.Problem(Lambda=Lam, N=50), alpha=0.1, t_max=1e3, grad_tol=1e-9).final["A"][0]
risks = {c: th.test_risk(A50, c * Lam, 100) for c in (0.5, 1.0, 2.0)}
print({f"covariates x {c}": round(r, 4) for c, r in risks.items()})
print("task shift (Rademacher w, same second moment):", round(th.test_risk(A50, Lam, 100, task_cov=np.eye(3)), 4))
assert risks[2.0] > 10 * risks[1.0] and risks[0.5] > risks[1.0]

# %% [markdown]
# ## 4. One step of GD, with noise (Mahankali, Hashimoto, Ma 2024)
#
# With isotropic $x$ and label noise $s^2$ the optimum is one GD step of size $N/(N + d + 1 + s^2)$: noise
# shrinks the step, as a ridge penalty would.

# %%
for s in (0.0, 0.5, 1.0):
    t = lsa.simulate(lsa.Problem(Lambda=np.eye(3), N=10, noise=s), alpha=0.1, t_max=1e3, grad_tol=1e-9)
    a = th.one_step_coefficient(3, 10, s)
    print(f"s = {s}: learned {np.trace(t.final['A'][0]) / 3:.6f}, predicted {a:.6f}")
    np.testing.assert_allclose(t.final["A"][0], a * np.eye(3), atol=1e-7)

# %% [markdown]
# ## 5. Deeper: each layer is a preconditioned GD step (Ahn, Cheng, Daneshmand, Sra 2023, Lemma 1)
#
# With the query masked and the sparse weights $P_l = [[0,0],[0,1]]$, $Q_l = -[[A_l,0],[0,0]]$, an $L$-layer
# LSA computes $L$ steps $w_{l+1} = w_l - A_l^\top\nabla R(w_l)$ and predicts $\langle w_L, x_q\rangle$, exactly.

# %%
prob = lsa.Problem.random(3, 10, n_prompts=200, Lambda=Lam, seed=1)
As = rng.standard_normal((3, 3, 3)) * 0.3
layers = lsa.predict({"A": As[None]}, prob.X, prob.y, architecture="ahn")[0]
steps = th.preconditioned_gd(prob.X[:, :10], prob.y[:, :10], prob.X[:, 10], As)
print("largest difference:", float(np.abs(layers - steps).max()))
np.testing.assert_allclose(layers, steps, rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## 6. Softmax attention selects tokens like an SVM (Tarzanagh, Li, Thrampoulidis, Oymak 2023)
#
# For $f(X) = v^\top X^\top\operatorname{softmax}(XWz)$ on a logistic loss, $\|W\|$ grows without bound and
# its direction tends to the max-margin separator of the selected tokens from the others:
# $\min\|W\|_F$ s.t. $(x_{i\alpha_i} - x_{it})^\top Wz_i \ge 1$. Trained as $KQ^\top$, the nuclear norm
# replaces the Frobenius norm, and the limit has low rank.

# %%
n, T, d = (4, 5, 6) if FAST else (6, 8, 10)
steps = 5000 if FAST else 30000
p = soft.Problem.random(n, T, d, seed=0)
rec = np.unique(np.geomspace(1, steps, 40).astype(int))
run = soft.simulate(p, 0.01, "ngd", lr=0.05 if FAST else 0.01, steps=steps, t_eval=rec)
sel = run.observables["attention"][0, -1].argmax(axis=1)
svm = th.att_svm(p.X, p.z, sel, norm="fro")
corr = soft.correlation(run.observables["W"][0], svm.x)
print("selected tokens:", sel.tolist(), " globally optimal:", th.optimal_tokens(p.X, p.Y, p.v).tolist())
print("final correlation with the SVM direction:", round(float(corr[-1]), 6), " KKT residual:", svm.kkt_residual)
assert corr[-1] > 0.99

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogx(rec, corr)
ax.set_xlabel("iteration (normalised GD)")
ax.set_ylabel("correlation with W^mm")
ax.set_title("the attention weights align with the Att-SVM direction")
plt.show()
