"""Deep linear networks trained on data (X, Y): the target form, the Hessian with an input covariance, SGD."""

import numpy as np
import pytest

from solvable.sims import deep_linear as dl


def _whitened(n=12, d_in=4, d_out=3, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, d_in)))
    X = q * np.sqrt(n)  # X^T X / n = I exactly
    phi = dl.Problem.random(d_in, d_out, (4,), seed=seed).target
    return X, X @ phi.T, phi


def _data(seed=1, n=9):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * np.array([1.5, 1.0, 0.5])
    return dl.Problem.from_data(X, X @ rng.standard_normal((3, 2)), (3,))


def test_whitened_noiseless_data_is_the_target_problem():
    X, Y, phi = _whitened()
    on_data = dl.Problem.from_data(X, Y, (4,))
    np.testing.assert_allclose(on_data.target, phi, atol=1e-13)
    kw = dict(alpha=[1e-2, 0.3], t_max=8.0, t_eval=np.linspace(0, 8, 9), rtol=1e-11)
    a, b = dl.simulate(on_data, **kw), dl.simulate(dl.Problem(phi, (4,)), **kw)
    # noiseless: (1/2n) sum |W x - y|^2 = 1/2 |W - Phi|^2 exactly when X^T X / n = I
    np.testing.assert_allclose(a.observables["loss"], b.observables["loss"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(a.observables["modes"], b.observables["modes"], rtol=1e-8, atol=1e-12)


def test_hessian_with_input_covariance_matches_finite_differences_of_the_data_gradient():
    p = _data()
    rng = np.random.default_rng(3)
    layers = tuple(rng.standard_normal((1, p.widths[j + 1], p.widths[j])) * 0.8 for j in range(p.depth))
    dense = dl.hessian_dense(p.target, layers, p.input_covariance)[0]
    sizes = [w[0].size for w in layers]
    flat = np.concatenate([w.reshape(-1) for w in layers])

    def grad(vec):
        parts, start = [], 0
        for w, size in zip(layers, sizes):
            parts.append(vec[start:start + size].reshape(w.shape))
            start += size
        return np.concatenate([g.reshape(-1) for g in dl.loss_grad(p.target, tuple(parts), None, (p.X, p.Y))[1]])

    h = 1e-6
    fd = np.stack([(grad(flat + h * e) - grad(flat - h * e)) / (2 * h) for e in np.eye(flat.size)], axis=1)
    np.testing.assert_allclose(dense, fd, atol=1e-7)
    top = dl.sharpness(p.target, layers, iters=flat.size, cov=p.input_covariance)[0]
    assert top == pytest.approx(np.linalg.eigvalsh((fd + fd.T) / 2)[-1], rel=1e-7)


def test_sgd_with_every_sample_is_gd():
    p = _data()
    kw = dict(alpha=[0.3], lr=0.05, steps=60, init="random", t_eval=[0, 30, 60])
    gd = dl.simulate(p, algorithm="gd", **kw)
    sgd = dl.simulate(p, algorithm="sgd", batch_size=p.n, **kw)
    np.testing.assert_allclose(sgd.final["product"], gd.final["product"], rtol=1e-12, atol=1e-14)


def test_sgd_interpolates_realisable_data():
    p = _data(n=9)  # noiseless: Y = X M, and least squares recovers M
    truth = np.linalg.lstsq(p.X, p.Y, rcond=None)[0].T
    run = dl.simulate(p, alpha=[0.5], algorithm="sgd", lr=0.02, steps=20_000, batch_size=3, init="random", seed=4)
    np.testing.assert_allclose(run.final["product"][0], truth, atol=1e-6)
    assert run.observables["loss"][0, -1] < 1e-12


def test_sgd_needs_samples_and_batch_size_needs_sgd():
    with pytest.raises(ValueError, match="from_data"):
        dl.simulate(dl.Problem.random(3, 2, (3,)), alpha=[0.1], algorithm="sgd", lr=0.1, steps=5)
    with pytest.raises(ValueError, match="batch_size"):
        dl.simulate(_data(), alpha=[0.1], algorithm="gd", lr=0.1, steps=5, batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        dl.simulate(_data(), alpha=[0.1], algorithm="sgd", lr=0.1, steps=5, batch_size=100)
    with pytest.raises(ValueError, match="target must equal"):
        p = _data()
        dl.Problem(target=p.target * 1.01, hidden=(3,), X=p.X, Y=p.Y)
    with pytest.raises(ValueError, match="together"):
        dl.Problem(hidden=(3,), X=np.ones((4, 3)))
