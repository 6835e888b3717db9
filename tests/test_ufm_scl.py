"""The supervised-contrastive UFM: hand-written gradient against finite differences, with and without ReLU."""

import numpy as np
import pytest

from solvable.sims import ufm


@pytest.mark.parametrize("relu", [True, False])
def test_scl_gradient_matches_finite_differences(relu):
    p = ufm.Problem(n=(3, 2, 2), d=5, relu=relu)
    U = np.random.default_rng(0).uniform(0.1, 1.0, (2, 5, 7)) * np.array([1, -1, 1, 1, -1])[None, :, None]
    _, (g,) = ufm.scl_loss_grad(p, (U,), 0.5)
    eps, fd = 1e-6, np.zeros_like(U)
    for idx in np.ndindex(U.shape[1:]):
        a, b = U.copy(), U.copy()
        a[(slice(None),) + idx] += eps
        b[(slice(None),) + idx] -= eps
        fd[(slice(None),) + idx] = (ufm.scl_loss_grad(p, (a,), 0.5)[0] - ufm.scl_loss_grad(p, (b,), 0.5)[0]) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_scl_rejects_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        ufm.simulate_scl(ufm.Problem(n=(2, 2), d=3), temperature=0.0)
    with pytest.raises(TypeError, match="problem"):
        ufm.simulate_scl("not a problem")
