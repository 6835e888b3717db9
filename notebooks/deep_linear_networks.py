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
# # Deep linear networks: exact dynamics, the edge of stability, and grokking without understanding
#
# Linear networks are linear functions with non-linear training dynamics. This notebook follows
# six solvable stories and checks each with `assert`s. `SOLVABLE_FAST=1` runs a small version.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from solvable.sims import deep_linear
from solvable.theory import deep_linear as th

FAST = os.environ.get("SOLVABLE_FAST") == "1"

# %% [markdown]
# ## 1. Modes are learned one by one (Saxe et al. 2014)
#
# With whitened inputs and a small balanced start aligned with the target $\Phi = U S V^\top$, a
# two-layer network learns each singular mode independently along a sigmoid,
# $u(t) = s e^{2st}/(e^{2st} - 1 + s/u_0)$: strong modes first.

# %%
s = np.array([3.0, 2.0, 1.0])
problem = deep_linear.Problem.random(4, 3, (3,), singular_values=s, seed=0)
t = np.linspace(0, 12, 61)
traj = deep_linear.simulate(problem, alpha=1e-3, t_max=12.0, t_eval=t)
pred = np.stack([th.saxe_mode(t, si, 1e-3) for si in s], axis=1)
print("largest deviation from Saxe's solution:", np.abs(traj.observables["modes"][0] - pred).max())
assert np.abs(traj.observables["modes"][0] - pred).max() < 1e-7
half = [th.saxe_learning_time(si, 1e-3, si / 2) for si in s]
print("time to learn half of each mode:", np.round(half, 3))
assert half[0] < half[1] < half[2]
plt.figure(figsize=(5, 3))
plt.plot(t, traj.observables["modes"][0], ".")
plt.plot(t, pred, "k-", alpha=0.3)
plt.xlabel("t")
plt.ylabel("mode strength u_i(t)")
plt.title("dots: gradient flow; lines: Saxe et al.'s solution")

# %% [markdown]
# ## 2. Depth accelerates and sharpens (Arora et al. 2018)
#
# Under balanced initialisation the end-to-end matrix follows its own ODE; a mode obeys
# $\dot\sigma = N\sigma^{2-2/N}(s - \sigma)$. Balancedness is conserved by the flow.

# %%
for depth in (2, 3, 4):
    p = deep_linear.Problem.random(4, 3, (3,) * (depth - 1), singular_values=s, seed=0)
    tr = deep_linear.simulate(p, alpha=1e-2, t_max=12.0, t_eval=t)
    ode = th.end_to_end_mode(t, s[0], 1e-2, depth)
    err = np.abs(tr.observables["modes"][0, :, 0] - ode).max()
    print(f"depth {depth}: max |sigma - ODE| = {err:.1e}, max balancedness {tr.observables['balancedness'].max():.1e}")
    assert err < 1e-6

# %% [markdown]
# ## 3. The edge of stability in a scalar network (Cohen et al. 2021; Kreisler et al. 2023)
#
# $f = w_1 w_2 w_3 w_4$, $L = (f - 1)^2/2$. Gradient flow from $w$ ends at
# $w_i^{*2} = w_i^2 + c$; its sharpness, the *GFS sharpness*, is $\sum_i 1/w_i^{*2}$. With a step
# $\eta$ such that $2/\eta$ is below it, gradient descent cannot settle there: the loss oscillates,
# the GFS sharpness falls monotonically, and GD ends at sharpness just below $2/\eta$.

# %%
w0 = np.array([0.3, 0.4, 0.5, 2.5])
s_gfs = th.gfs_sharpness(w0, 1.0)
eta = 1.2 * 2 / s_gfs
scalar = deep_linear.Problem.scalar(4, 1.0)
steps = 2000 if FAST else 6000
gd = deep_linear.simulate(scalar, layers=[w0[j].reshape(1, 1, 1) for j in range(4)], algorithm="gd", lr=eta,
                          steps=steps, t_eval=np.arange(steps + 1), record_layers=True, record_sharpness=True,
                          sharpness_iters=4)
gfs_path = np.array([th.gfs_sharpness(w, 1.0) for w in gd.observables["params"][0]])
loss = gd.observables["loss"][0]
print(f"2/eta = {2 / eta:.4f}; GFS sharpness {gfs_path[0]:.4f} -> {gfs_path[-1]:.4f}; "
      f"final sharpness {gd.observables['sharpness'][0, -1]:.4f}")
assert np.all(np.diff(gfs_path) <= 1e-12)                      # monotone decrease (Kreisler et al.)
assert np.any(np.diff(loss) > 0)                                # the loss is not monotone
assert 0.99 < gd.observables["sharpness"][0, -1] * eta / 2 <= 1  # ends at the edge

# %% [markdown]
# SAM moves the edge: unnormalised SAM is stable on a quadratic when
# $\eta\lambda(1 + \rho\lambda) \le 2$, so it ends at a *flatter* point.

# %%
rho = 0.05
sam = deep_linear.simulate(scalar, layers=[w0[j].reshape(1, 1, 1) for j in range(4)], algorithm="sam", lr=eta, rho=rho,
                           sam_normalized=False, steps=steps, record_sharpness=True, sharpness_iters=4, t_eval=[0, steps])
print(f"SAM edge {float(th.sam_edge(eta, rho)):.4f}, SAM ends at {sam.observables['sharpness'][0, -1]:.4f}")
assert sam.observables["sharpness"][0, -1] < 2 / eta

# %% [markdown]
# ## 4. Grokking without understanding (Levi et al. 2024)
#
# A linear student learns a linear teacher from $N_{tr} = d_{in}/\lambda$ Gaussian samples.
# "Accuracy" counts points with squared error below $\epsilon$; test accuracy jumps long after
# training accuracy -- grokking -- simply because the test loss decays more slowly, by a factor set
# by the Marchenko-Pastur spectrum. Nothing is "understood" suddenly.

# %%
lam, eta_g, eps = 0.3, 0.01, 1e-3
d_in = 200 if FAST else 1000
run = deep_linear.simulate_teacher_student(d_in, lam, eta_g, 3000, record_at=np.arange(3001), seed=0)
tr_l, te_l = run.observables["train_loss"][0], run.observables["test_loss"][0]
t_tr, t_te = np.argmax(tr_l < eps / 4), np.argmax(te_l < eps / 4)
print(f"grokking delay: simulated {t_te - t_tr} steps, Marchenko-Pastur {th.grokking_time(lam, eta_g, eps):.1f}")
assert abs((t_te - t_tr) - th.grokking_time(lam, eta_g, eps)) < 0.25 * th.grokking_time(lam, eta_g, eps)

# %% [markdown]
# ## 5. Model collapse, and adaptive ridge against it (Dohmatob, Feng & Kempe 2024)
#
# Each generation fits least squares to labels made by the previous generation's model. A predictor
# trained on the $n$-th generation pays $n\,\sigma_0^2 d/(T_0 - d - 1)$ extra test error: collapse is
# linear in $n$. Ridge regression shrinks that term by $\tfrac1d\operatorname{tr}R^2 < 1$; the best
# $\lambda$ grows with $n$ (adaptive regularisation) and keeps the error below the zero predictor's.

# %%
d, T, sigma, T0, sigma0 = 50, 100, 1.0, 100, 0.5
trials = 100 if FAST else 1000
for n in (0, 4):
    star = th.model_collapse_optimal_ridge(n, d, T, sigma, T0, sigma0)
    errs = deep_linear.model_collapse(d, T, sigma, T0, sigma0, n, n_trials=trials, seed=0, ridge=[0.0, star])[:, n]
    ols_pred = th.model_collapse_error(n, d, T, sigma, T0, sigma0)  # exact at finite size
    ridge_pred = th.model_collapse_ridge_error(n, d, T, sigma, T0, sigma0, star)
    print(f"n = {n}: lambda* = {star:.3f}; least squares {errs[:, 0].mean():.3f} (predicted {ols_pred:.3f}), "
          f"adaptive ridge {errs[:, 1].mean():.3f} (predicted {ridge_pred:.3f})")
    assert errs[:, 1].mean() < errs[:, 0].mean() and abs(errs[:, 1].mean() - ridge_pred) < 0.1 * ridge_pred

# %% [markdown]
# ## 6. A generative network and the Bures-Wasserstein loss (Bréchet, Papagiannouli, An & Montúfar 2023)
#
# A linear generator $x = W_N\cdots W_1 z$, $z \sim N(0, I)$, has covariance $WW^\top$ of rank at most its
# narrowest width $k$. Fitted to $\Sigma_0 = \sum_i \lambda_i v_i v_i^\top$ by the squared Bures-Wasserstein
# distance $B^2(\Sigma_0, WW^\top)$, its critical points are the eigen-subsets of $\Sigma_0$ of size at most
# $k$, and the minimum keeps the top $k$ (Eckart-Young applied to $\Sigma_0^{1/2}$). From a small start
# the flow visits the saddles in order: the covariance learns $\lambda_1$, then $\lambda_2$, ...

# %%
from solvable.sims.deep_linear import bw as deep_linear_bw
from solvable.theory.deep_linear import bw as bw_theory

gen = deep_linear_bw.Problem.random(6, hidden=(3, 4), latent=6, seed=0)  # depth 3, rank <= 3
t = np.linspace(0, 60, 121)
run = deep_linear_bw.simulate(gen, 1e-4, t_max=60.0, t_eval=t, rtol=1e-8)
lam = gen.eigh()[0]
plt.figure(figsize=(5, 3))
for i in range(6):
    plt.plot(t, run.observables["spectrum"][0][:, i], label=f"lambda = {lam[i]:.2f}")
plt.xlabel("t"); plt.ylabel("v_i^T W W^T v_i"); plt.title("the covariance on the target's eigenvectors", fontsize=8)
plt.legend(fontsize=6); plt.show()
star = bw_theory.bw_minimiser(gen.covariance, 3)
print(f"final loss {run.observables['loss'][0, -1]:.6f}, predicted minimum {star.loss:.6f} (sum of the 3 smallest)")
assert abs(run.final["covariance"][0] - star.covariance).max() < 1e-6

# %% [markdown]
# Every statement here is also a claim of `solvable verify --model deep_linear`, with its tolerance.
