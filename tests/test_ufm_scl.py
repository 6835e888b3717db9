"""The supervised-contrastive UFM: hand-written gradient against finite differences, with and without ReLU."""

import numpy as np
import pytest

from solvable.sims import ufm


# a singleton class (an anchor without positives: only a negative) and batches in which some anchors have none
CASES = {"full batch": ((3, 2, 2), None), "singleton class": ((3, 1, 2), None),
         "batches": ((3, 2, 2), [[0, 1, 3, 5], [2, 4, 6], [0, 5, 6], [1, 2]])}


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_scl_gradient_matches_finite_differences(relu, case):
    n, batches = CASES[case]
    p = ufm.Problem(n=n, d=5, relu=relu)
    masks = ufm.batch_masks(p, batches)
    U = np.random.default_rng(0).uniform(0.1, 1.0, (2, 5, p.N)) * np.array([1, -1, 1, 1, -1])[None, :, None]
    _, (g,) = ufm.scl_loss_grad(p, (U,), 0.5, masks=masks)
    eps, fd = 1e-6, np.zeros_like(U)
    for idx in np.ndindex(U.shape[1:]):
        a, b = U.copy(), U.copy()
        a[(slice(None),) + idx] += eps
        b[(slice(None),) + idx] -= eps
        fd[(slice(None),) + idx] = (ufm.scl_loss_grad(p, (a,), 0.5, masks=masks)[0]
                                    - ufm.scl_loss_grad(p, (b,), 0.5, masks=masks)[0]) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_batched_loss_is_the_mean_of_the_batches_losses():
    """Each batch's loss is the full-batch loss of the problem made of that batch's samples alone."""
    n, batches = (3, 2, 2), [[0, 1, 3, 5], [2, 4, 6], [0, 5, 6]]
    p = ufm.Problem(n=n, d=4, relu=True)
    U = np.random.default_rng(1).uniform(0.1, 1.0, (1, 4, 7))
    labels = np.repeat(np.arange(3), n)
    parts = []
    for batch in batches:
        sizes = tuple(int((labels[batch] == k).sum()) for k in range(3) if (labels[batch] == k).any())
        order = sorted(batch, key=lambda i: labels[i])
        sub = ufm.Problem(n=sizes, d=4, relu=True)
        parts.append(float(ufm.scl_loss_grad(sub, (U[:, :, order],), 0.5)[0][0]))
    got = float(ufm.scl_loss_grad(p, (U,), 0.5, masks=ufm.batch_masks(p, batches))[0][0])
    assert got == pytest.approx(np.mean(parts), rel=1e-12)


def test_scl_rejects_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        ufm.simulate_scl(ufm.Problem(n=(2, 2), d=3), temperature=0.0)
    with pytest.raises(TypeError, match="problem"):
        ufm.simulate_scl("not a problem")
    p = ufm.Problem(n=(2, 2), d=3)
    with pytest.raises(ValueError, match="at least two distinct"):
        ufm.simulate_scl(p, batches=[[0, 0, 1]])
    with pytest.raises(ValueError, match="at least two distinct"):
        ufm.simulate_scl(p, batches=[[0, 4]])
    with pytest.raises(ValueError, match="integer sample indices"):
        ufm.simulate_scl(p, batches=[[0.5, 1]])
    with pytest.raises(ValueError, match="at least one batch"):
        ufm.simulate_scl(p, batches=[])
