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


def _loss(n, H, batches, tau=0.5):
    p = ufm.Problem(n=n, d=H.shape[0], relu=True)
    return float(ufm.scl_loss_grad(p, (H[None],), tau, masks=ufm.batch_masks(p, batches))[0][0])


def _frame(n, d, vectors=None):
    """Every sample of class k at e_k (or at vectors[k])."""
    vecs = np.eye(d)[:, :len(n)] if vectors is None else np.asarray(vectors, dtype=float)
    return np.repeat(vecs, n, axis=1)


BATCHINGS = {"connected": [[0, 1, 4, 5], [2, 3, 8, 9], [6, 7, 10, 11], [1, 2, 5, 6], [9, 10, 3, 4], [0, 7, 8, 11]],
             "no 1-2": [[0, 1, 4, 5], [2, 3, 6, 7], [0, 1, 8, 9], [2, 3, 10, 11], [1, 2, 4, 7], [9, 10, 0, 3]],
             "split 0": [[0, 1, 4, 5], [2, 3, 8, 9], [6, 7, 10, 11], [5, 6, 9, 10], [4, 7, 8, 11]]}


@pytest.mark.parametrize("name", list(BATCHINGS) + ["full", "one class and singletons"])
def test_the_minimum_is_attained_by_an_orthogonal_frame_and_bounds_every_point(name):
    from solvable.theory.ufm import scl as ts

    n = (4, 4, 4)
    batches = {"full": [list(range(12))], "one class and singletons": [[0, 1, 2], [0, 4, 8], [4, 5, 9]]}.get(
        name, BATCHINGS.get(name))
    minimum = ts.scl_batch_minimum(n, batches, 0.5)
    assert _loss(n, _frame(n, 5), batches) == pytest.approx(minimum, rel=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(300):  # random non-negative unit features, some near collapse
        H = np.abs(rng.standard_normal((5, 12))) ** rng.uniform(0.2, 8)
        assert _loss(n, H / np.linalg.norm(H, axis=0), batches) >= minimum - 1e-12


def test_batch_condition_on_hand_checked_batchings():
    from solvable.theory.ufm import scl as ts

    n = (4, 4, 4)
    assert ts.scl_batch_condition(n, BATCHINGS["connected"]).unique
    assert ts.scl_batch_condition(n, [list(range(12))]).unique
    c = ts.scl_batch_condition(n, BATCHINGS["no 1-2"])
    assert (c.unique, c.split_classes, c.unforced_pairs) == (False, (), ((1, 2),))
    c = ts.scl_batch_condition(n, BATCHINGS["split 0"])
    assert c.components[0] == ((0, 1), (2, 3)) and c.split_classes == (0,)
    assert c.unforced_pairs == ((0, 1), (0, 2))  # each half of class 0 meets only one other class
    # a batch of one class forces nothing; two singletons of different classes force nothing
    c = ts.scl_batch_condition((2, 2), [[0, 1], [0, 2]])
    assert c.components == (((0,), (1,)), ((2,), (3,))) and c.forced == ()
    for name in ("no 1-2", "split 0"):
        assert ts.scl_batch_condition(n, ts.bind_batches(n, BATCHINGS[name])).unique


def test_the_minimisers_the_condition_leaves_free_attain_the_minimum():
    """Not orthogonal frames, yet at the minimum: classes 1 and 2 on one vector when they never meet; class 0's
    halves on two vectors when it is split."""
    from solvable.theory.ufm import scl as ts

    n = (4, 4, 4)
    H = _frame(n, 5, np.eye(5)[:, [0, 1, 1]])
    assert _loss(n, H, BATCHINGS["no 1-2"]) == pytest.approx(ts.scl_batch_minimum(n, BATCHINGS["no 1-2"], 0.5), rel=1e-12)
    assert _loss(n, H, BATCHINGS["connected"]) > ts.scl_batch_minimum(n, BATCHINGS["connected"], 0.5) + 1e-3
    H = _frame(n, 5)
    # class 0's second half (it meets class 2 only): orthogonal to e_2, at 45 degrees to class 1's e_1
    H[:, 2:4] = (np.eye(5)[:, [1]] + np.eye(5)[:, [3]]) / np.sqrt(2)
    assert _loss(n, H, BATCHINGS["split 0"]) == pytest.approx(ts.scl_batch_minimum(n, BATCHINGS["split 0"], 0.5),
                                                              rel=1e-12)


def test_batch_theory_refuses_bad_batches():
    from solvable.theory.ufm import scl as ts

    with pytest.raises(ValueError, match="at least two distinct"):
        ts.scl_batch_condition((2, 2), [[0, 0]])
    with pytest.raises(ValueError, match="at least one batch"):
        ts.scl_batch_minimum((2, 2), [], 0.5)
    with pytest.raises(ValueError, match="temperature"):
        ts.scl_batch_minimum((2, 2), [[0, 1]], 0.0)


def test_binding_needs_batches_that_cover_every_sample():
    from solvable.theory.ufm import scl as ts

    n = (3, 3)
    c = ts.scl_batch_condition(n, ts.bind_batches(n, [[1, 4]]))  # samples 2 and 5 in no batch: free
    assert c.split_classes == (0, 1) and not c.unique
    assert ts.scl_batch_condition(n, ts.bind_batches(n, [[1, 4], [2, 5]])).unique  # 0 and 3 bound: all covered


def test_two_singleton_classes_are_not_forced_apart():
    """A class of one sample is only a negative: with two such classes the full batch leaves their angle free, and
    a point with both on one vector attains the minimum (the old gradient, which pushed singletons apart through a
    softmax term that is not in the loss, hid it)."""
    from solvable.theory.ufm import scl as ts

    n, full = (3, 2, 1, 1), [list(range(7))]
    assert ts.scl_batch_condition(n, full).unforced_pairs == ((2, 3),)
    assert ts.scl_batch_condition((3, 2, 1), [list(range(6))]).unique  # one singleton is still forced apart
    H = _frame(n, 5, np.eye(5)[:, [0, 1, 2, 2]])
    assert _loss(n, H, full) == pytest.approx(ts.scl_batch_minimum(n, full, 0.5), rel=1e-12)
