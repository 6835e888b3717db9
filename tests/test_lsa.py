"""The LSA family: closed forms against independent references, conventions, simulators and their refusals."""

import numpy as np
import pytest

from solvable.sims.engine import flow

from solvable.sims import lsa
from solvable.sims.lsa import softmax as soft
from solvable.theory import lsa as th


LAM = lsa.rotated_covariance([2.0, 1.0, 0.5])


def test_gamma_minimiser_and_min_loss_closed_forms():
    N = 7
    G = th.gamma(LAM, N)
    np.testing.assert_allclose(G, (1 + 1 / N) * LAM + np.trace(LAM) / N * np.eye(3), rtol=1e-15)
    np.testing.assert_allclose(th.minimiser(LAM, N), np.linalg.inv(G), rtol=1e-12)
    lam = np.linalg.eigvalsh(LAM)
    T = lam.sum()
    assert th.min_loss(LAM, N) == pytest.approx(0.5 * np.sum(lam * (lam + T) / ((N + 1) * lam + T)), rel=1e-12)
    # the minimiser minimises: any perturbation raises the quadratic loss
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert th.loss(np.linalg.inv(G) + 1e-3 * rng.standard_normal((3, 3)), LAM, N) > th.min_loss(LAM, N)


def test_loss_matches_monte_carlo():
    rng = np.random.default_rng(1)
    N, P, s = 4, 200000, 0.5
    A = rng.standard_normal((3, 3)) * 0.3
    root = np.linalg.cholesky(LAM)
    X = rng.standard_normal((P, N, 3)) @ root.T
    xq = rng.standard_normal((P, 3)) @ root.T
    w = rng.standard_normal((P, 3))
    y = np.einsum("pnd,pd->pn", X, w) + s * rng.standard_normal((P, N))
    h = np.einsum("pn,pnd->pd", y, X) / N
    err = 0.5 * (np.einsum("pd,de,pe->p", xq, A, h) - np.einsum("pd,pd->p", xq, w)) ** 2
    assert abs(err.mean() - th.loss(A, LAM, N, noise=s)) < 4 * err.std() / np.sqrt(P)


def test_risk_at_training_length_is_twice_the_minimal_loss_and_falls_with_M():
    A = th.minimiser(LAM, 6)
    assert th.test_risk(A, LAM, 6) == pytest.approx(2 * th.min_loss(LAM, 6), rel=1e-12)
    risks = [th.test_risk(A, LAM, M) for M in (1, 2, 5, 50, 500)]
    assert np.all(np.diff(risks) < 0)


def test_one_step_coefficients():
    for s in (0.0, 0.7):
        np.testing.assert_allclose(th.minimiser(np.eye(4), 9, noise=s), th.one_step_coefficient(4, 9, s) * np.eye(4),
                                   rtol=1e-13)
    assert th.one_step_coefficient(4, 9, 0.7) == pytest.approx(9 / (9 + 5 + 0.49))
    np.testing.assert_allclose(th.preconditioned_step(LAM, 9, 0.3), 9 / (9 + 4 + 0.09) * np.linalg.inv(LAM),
                               rtol=1e-12)


def test_random_covariance_coefficient_against_a_sampled_least_squares_fit():
    d, N, P = 2, 6, 100000
    problem = lsa.Problem.random(d, N, n_prompts=P, random_covariance=(0.5, 1.5), seed=3)
    h = np.einsum("pn,pnd->pd", problem.y[:, :N], problem.X[:, :N]) / N
    phi = np.einsum("pd,pe->pde", problem.X[:, N], h).reshape(P, -1)
    A_fit = np.linalg.lstsq(phi, problem.y[:, N], rcond=None)[0].reshape(d, d)
    m = [(1.5 ** (k + 1) - 0.5 ** (k + 1)) / (k + 1) for k in (1, 2, 3)]
    a = th.random_covariance_coefficient(m, d, N)
    # sampling error of a d^2-coefficient fit on 1e5 prompts: a few 1e-3
    np.testing.assert_allclose(A_fit, a * np.eye(d), atol=2e-2)


def test_conventions_round_trip_and_construction():
    rng = np.random.default_rng(2)
    W_pv, W_kq = rng.standard_normal((2, 4, 4))
    P, Q = th.ahn_from_zfb(W_pv, W_kq)
    np.testing.assert_array_equal(Q, -W_kq)
    back = th.zfb_from_ahn(P, Q)
    np.testing.assert_array_equal(back[0], W_pv)
    np.testing.assert_array_equal(back[1], W_kq)
    problem = lsa.Problem.random(3, 6, n_prompts=40, Lambda=LAM, seed=1)
    W_pv, W_kq = th.gd_construction(0.4, 3)
    pred = lsa.predict({"W_PV": W_pv[None], "W_KQ": W_kq[None]}, problem.X, problem.y, architecture="full")[0]
    gd = th.preconditioned_gd(problem.X[:, :6], problem.y[:, :6], problem.X[:, 6], 0.4 * np.eye(3)[None])
    # unmasked: the query column carries label 0, so it never reaches this construction's prediction
    np.testing.assert_allclose(pred, gd, rtol=1e-12)


def test_ahn_layers_are_preconditioned_gd_and_the_model_loss_is_theirs():
    problem = lsa.Problem.random(3, 5, n_prompts=30, Lambda=LAM, seed=4)
    As = np.random.default_rng(0).standard_normal((1, 2, 3, 3)) * 0.4
    pred = lsa.predict({"A": As}, problem.X, problem.y, architecture="ahn")[0]
    ref = th.preconditioned_gd(problem.X[:, :5], problem.y[:, :5], problem.X[:, 5], As[0])
    np.testing.assert_allclose(pred, ref, rtol=1e-12)
    m = lsa.model(problem, 0.5, architecture="ahn", layers=2)
    loss, _ = m.loss_grad((As,))
    # Ahn et al.'s loss: mean (y_hat - y_q)^2, no 1/2
    assert float(loss[0]) == pytest.approx(np.mean((pred - problem.y[:, 5]) ** 2), rel=1e-12)


def test_full_model_loss_is_zfb_half_mean_square():
    problem = lsa.Problem.random(3, 5, n_prompts=30, Lambda=LAM, seed=5)
    rng = np.random.default_rng(1)
    r, K = rng.standard_normal((1, 4)), rng.standard_normal((1, 4, 4))
    m = lsa.model(problem, 0.5, architecture="full")
    loss, _ = m.loss_grad((r, K))
    W_pv = np.zeros((1, 4, 4))
    W_pv[0, 3] = r[0]
    pred = lsa.predict({"W_PV": W_pv, "W_KQ": K}, problem.X, problem.y, architecture="full")[0]
    assert float(loss[0]) == pytest.approx(0.5 * np.mean((pred - problem.y[:, 5]) ** 2), rel=1e-12)


def test_reduced_flow_reaches_gamma_inverse_balanced():
    traj = lsa.simulate(lsa.Problem(Lambda=LAM, N=5), [0.05, 0.2], t_max=1e3, grad_tol=1e-9)
    for b in range(2):
        np.testing.assert_allclose(traj.final["A"][b], np.linalg.inv(th.gamma(LAM, 5)), atol=1e-7)
    u, U = th.flow_limit(LAM, 5)
    np.testing.assert_allclose(traj.final["u"], u, rtol=1e-7)
    np.testing.assert_allclose(traj.final["U11"][0], U, atol=1e-7)


def test_zfb_initialisation():
    problem = lsa.Problem.random(4, 5)
    u, U = lsa.initial_state(problem, 0.3)
    assert float(u[0, 0]) == 0.3 and np.linalg.norm(U[0]) == pytest.approx(0.3)
    np.testing.assert_allclose(U[0], U[0].T)
    assert np.all(np.linalg.eigvalsh(U[0]) >= -1e-15)  # Theta Theta^T: positive semi-definite


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(architecture="full"), ValueError, "needs sampled prompts"),
    (dict(architecture="reduced", layers=2), ValueError, "layers > 1 needs architecture='ahn'"),
    (dict(architecture="reduced", mask_query=True), ValueError, "mask_query applies"),
    (dict(architecture="transformer"), ValueError, "architecture must be one of"),
    (dict(algorithm="sgd", lr=0.1, steps=3), ValueError, "Problem.random"),
    (dict(init="xavier"), ValueError, "init must be one of"),
])
def test_population_refusals(kwargs, error, match):
    with pytest.raises(error, match=match):
        lsa.simulate(lsa.Problem(Lambda=LAM, N=5), 0.1, **kwargs)


def test_problem_refusals():
    with pytest.raises(ValueError, match="link='linear' only"):
        lsa.Problem(Lambda=LAM, N=3, link="tanh")
    with pytest.raises(ValueError, match="random_covariance"):
        lsa.Problem.random(3, 4, n_prompts=5, Lambda=LAM, random_covariance=(0.5, 1.5))
    with pytest.raises(ValueError, match="random_covariance must be"):
        lsa.Problem.random(3, 4, n_prompts=5, random_covariance=(1.5, 0.5))
    with pytest.raises(ValueError, match="N"):
        th.gamma(LAM, 0)
    with pytest.raises(ValueError, match="noise"):
        th.gamma(LAM, 3, noise=-1.0)
    with pytest.raises(ValueError, match="positive definite"):
        th.minimiser(-LAM, 3)


def test_att_svm_is_certified_feasible_and_nuclear_is_low_rank():
    p = soft.Problem.random(6, 8, 10, seed=0)
    alpha = th.optimal_tokens(p.X, p.Y, p.v)
    fro = th.att_svm(p.X, p.z, alpha, "fro")
    nuc = th.att_svm(p.X, p.z, alpha, "nuc")
    for sol in (fro, nuc):
        assert sol.kkt_residual < 1e-6
        margins = np.einsum("itd,de,ie->it", p.X[np.arange(6), alpha][:, None] - p.X, sol.x, p.z)
        mask = np.ones((6, 8), bool)
        mask[np.arange(6), alpha] = False
        assert margins[mask].min() >= 1 - 1e-6
    sv = np.linalg.svd(nuc.x, compute_uv=False)
    assert np.sum(sv > 1e-6 * sv[0]) < np.sum(np.linalg.svd(fro.x, compute_uv=False) > 1e-6 * sv[0])
    # the nuclear solution has the smaller nuclear norm, the Frobenius one the smaller Frobenius norm
    assert nuc.value <= np.linalg.svd(fro.x, compute_uv=False).sum() + 1e-6
    assert fro.value <= np.linalg.norm(nuc.x) + 1e-6
    with pytest.raises(ValueError, match="alpha"):
        th.att_svm(p.X, p.z, alpha + 100)
    with pytest.raises(ValueError, match="norm"):
        th.att_svm(p.X, p.z, alpha, norm="l1")


def test_softmax_gradient_survives_saturation():
    """At a large norm the naive gamma - s^T gamma cancels; the library's form keeps the direction."""
    p = soft.Problem.random(4, 5, 6, seed=1)
    sel = th.optimal_tokens(p.X, p.Y, p.v)
    W = th.att_svm(p.X, p.z, sel).x
    m = soft.model(p, 1.0)
    _, (g_small,) = m.loss_grad((5 * W[None],))
    _, (g_large,) = m.loss_grad((60 * W[None],))
    # along the SVM direction the gradient points back along -W (it only grows the norm), at any scale
    for g in (g_small, g_large):
        cos = -np.sum(g[0] * W) / (np.linalg.norm(g[0]) * np.linalg.norm(W))
        assert cos > 0.5
    assert np.all(np.isfinite(g_large)) and np.linalg.norm(g_large) > 0


def test_normalised_gd_moves_exactly_lr_per_step():
    p = soft.Problem.random(3, 4, 3, seed=2)
    traj = soft.simulate(p, 0.5, "ngd", lr=0.1, steps=5, t_eval=[0, 1, 2, 3, 4, 5])
    steps = np.linalg.norm(np.diff(traj.observables["W"][0], axis=0), axis=(1, 2))
    np.testing.assert_allclose(steps, 0.1, rtol=1e-12)
    assert traj.meta["algorithm"] == "ngd"
    with pytest.raises(ValueError, match="lr is required"):
        soft.simulate(p, 0.5, "ngd", steps=5)
    obj = soft.simulate(p, 0.5, flow.NormalizedGD(lr=0.1), steps=5, t_eval=[0, 5])
    np.testing.assert_array_equal(obj.final["W"], traj.final["W"])


def test_correlation_measure():
    W = np.random.default_rng(0).standard_normal((3, 3))
    assert soft.correlation(2 * W, W) == pytest.approx(1.0)
    assert soft.correlation(-W, W) == pytest.approx(-1.0)


def test_coordinates_choose_zfb_s_reduction_where_it_is_exact():
    import dataclasses

    drawn = lsa.Problem.random(3, 6, n_prompts=16, seed=4)
    sym = dataclasses.replace(drawn, X=np.concatenate([drawn.X, drawn.X]), y=np.concatenate([drawn.y, -drawn.y]))
    assert lsa.label_symmetric(sym) and not lsa.label_symmetric(drawn)
    assert lsa.label_symmetric(lsa.Problem.random(3, 6))  # the population
    t = np.linspace(0, 30, 7)[1:]
    red = lsa.simulate(sym, [0.1, 0.5], coordinates="reduced", t_max=30.0, t_eval=t, rtol=1e-10)
    full = lsa.simulate(sym, [0.1, 0.5], coordinates="full", t_max=30.0, t_eval=t, rtol=1e-10)
    assert red.meta["coordinates"] == "reduced" and full.meta["coordinates"] == "full"
    np.testing.assert_allclose(red.final["A"], full.final["A"], atol=1e-7)
    np.testing.assert_allclose(red.observables["loss"], full.observables["loss"], rtol=1e-6)
    assert lsa.simulate(sym, 0.1, t_max=1.0).meta["coordinates"] == "reduced"  # architecture's default
    with pytest.raises(ValueError, match="not label-symmetric"):
        lsa.simulate(drawn, 0.1, coordinates="reduced", t_max=1.0)
    with pytest.raises(ValueError, match="ZFB's initialisation"):
        lsa.simulate(sym, 0.1, coordinates="reduced", init="random", t_max=1.0)
    with pytest.raises(ValueError, match="gradient flow only"):
        lsa.simulate(sym, 0.1, "gd", lr=0.05, steps=3, coordinates="reduced")
    with pytest.raises(ValueError, match="contradicts"):
        lsa.simulate(sym, 0.1, architecture="full", coordinates="reduced", t_max=1.0)
    with pytest.raises(ValueError, match="one-layer LSA"):
        lsa.simulate(sym, 0.1, architecture="ahn", coordinates="full", t_max=1.0)


def test_ahn_gauss_newton_features_against_finite_differences():
    """The claim's sandwich rests on d y_hat / d A_m[i, j]: checked entry by entry against central differences of
    theory.lsa.preconditioned_gd (a polynomial of degree L in the A's: the differences are exact to O(h^2))."""
    from solvable.proofs_checks.lsa.multilayer import _ahn_features

    rng = np.random.default_rng(4)
    P, n, d, L = 7, 6, 3, 3
    X, w = rng.standard_normal((P, n + 1, d)), rng.standard_normal((P, d))
    y = np.einsum("pnd,pd->pn", X, w)
    As = 0.3 * rng.standard_normal((L, d, d))
    phi = _ahn_features(X[:, :n], y[:, :n], X[:, n], As)
    h = 1e-6
    for k in range(As.size):
        e = np.zeros(As.size)
        e[k] = h
        up = th.preconditioned_gd(X[:, :n], y[:, :n], X[:, n], As + e.reshape(As.shape))
        down = th.preconditioned_gd(X[:, :n], y[:, :n], X[:, n], As - e.reshape(As.shape))
        np.testing.assert_allclose(phi[:, k], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


def test_multilayer_claim_rejects_sigma_half_and_the_identity():
    """The old check (3 replicate spreads, 2000 steps at 0.02) passed with the identity or Sigma^-1/2 as its target;
    the Wald test of the trained layers rejects both and accepts Sigma^-1."""
    from solvable.proofs_checks.framework import registry
    from solvable.proofs_checks.framework.registry import Context

    ev = registry.get("lsa.multilayer_preconditioned_gd").run(Context(quick=True))
    assert ev.passed
    assert sorted(ev.rejected_alternatives) == sorted(ev.alternatives) and len(ev.alternatives) == 2
    assert min(ev.alternatives.values()) > 3 * ev.tolerance  # rejected by a wide margin, not at the edge


@pytest.mark.slow  # 12 s each: in the slow step, with the other mutation tests (the default run keeps under 10 min)
@pytest.mark.parametrize("claim, target, factor", [
    ("lsa.one_step_gd", "gamma", 1.10),  # the old check accepted an 11 % wrong preconditioner in quick mode
    ("lsa.random_covariance_shrinkage", "random_covariance_coefficient", 1.08),  # it accepted 8 %
])
def test_a_few_percent_wrong_prediction_fails(claim, target, factor, mutate):
    from solvable.proofs_checks.framework import registry
    from solvable.proofs_checks.framework.runner import run_claim

    original = getattr(th, target)
    registry.clear_measurements()
    mutate(th, target, lambda *a, **k: original(*a, **k) * factor)
    try:
        assert run_claim(registry.get(claim), quick=True).verdict == "failed"
    finally:
        registry.clear_measurements()


def test_global_minimiser_passes_at_the_seed_its_satterthwaite_quantile_failed():
    """Quick seed 1: the sampled excess at 1.0001 of Satterthwaite's 0.999 quantile (a p-value of 1e-3); the
    saddlepoint quantile at the claim's size 1e-4 puts it at 0.8."""
    from solvable.proofs_checks.framework import registry
    from solvable.proofs_checks.framework.runner import run_claim

    result = run_claim(registry.get("lsa.global_minimiser"), quick=True, seed=1)
    assert result.verdict == "passed"
    assert result.evidence.details["sample_excess"] / result.evidence.details["sample_budget"] < 0.9


def test_conditional_monte_carlo_risk_is_calibrated_at_one_example():
    """lsa.test_error at M = 1 (heavy tails): over 600 draws the skew-corrected t of the conditional estimator is
    beyond 3 in under 1 % of them (0.27 % for a normal); the plain estimator's z fell below -3 in 2.4 %."""
    from solvable.proofs_checks.lsa.risk import _mc_risk
    from solvable.proofs_checks.framework.stats import skew_corrected_t

    Lam = lsa.rotated_covariance([2.0, 1.0, 0.5], 0)
    A = th.minimiser(Lam, 5)
    pred = th.test_risk(A, Lam, 1)
    t = np.array([skew_corrected_t(_mc_risk(A, Lam, 1, 4000, seed), pred) for seed in range(600)])
    assert np.mean(np.abs(t) > 3) < 0.01
    assert abs(np.mean(t)) < 0.15 and 0.85 < np.std(t) < 1.15
