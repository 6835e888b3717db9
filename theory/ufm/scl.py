r"""Supervised contrastive loss on non-negative unit features: the minimum over fixed mini-batches, and when it is an
orthogonal frame.

Kini et al. 2024 (Symmetric Neural-Collapse Representations with Supervised Contrastive Loss: The Impact of ReLU
and Batching, ICLR) prove that with ReLU features the SCL minimisers form an orthogonal frame (OF) whatever the
class sizes, and give necessary and sufficient conditions on the mini-batches for the OF to be the only
minimiser, with batch-binding to meet them. Only their abstract and table of contents could be read here: the
bound, the minimiser set and the batch condition below are derived in this module, for the loss of
``sims.ufm.scl`` (the mean over batches of each batch's mean anchor loss; an anchor without a positive in its
batch adds nothing).

**The bound.** Let anchor :math:`i` have :math:`m \ge 2` samples of its class in batch :math:`b` (so
:math:`m - 1` positives) and :math:`c = |b| - m` others. With unit features that are entrywise non-negative,
every similarity :math:`s = h^\top h'/\tau` lies in :math:`[0, 1/\tau]`, and the anchor's loss

.. math::
    \ell_i = \log\Big(\sum_{p} e^{s_{ip}} + \sum_{j} e^{s_{ij}}\Big) - \frac{1}{m-1}\sum_p s_{ip}
    \;\ge\; \log\big((m-1)e^{1/\tau} + c\big) - \frac1\tau,

since :math:`\ell_i` increases in every negative similarity :math:`s_{ij}` (set to 0), and in the positive ones it
is convex and symmetric, so its minimum over the box is on the diagonal :math:`s_{ip} = s`, where it equals
:math:`\log(m - 1 + ce^{-s})`, decreasing in :math:`s` (set to :math:`1/\tau`). With :math:`c > 0` the function
of the positive similarities is strictly convex (the log-sum-exp has a fixed argument :math:`\log c`), so
equality holds **iff** :math:`h_p = h_i` for every positive and :math:`h_j \perp h_i` for every negative. A batch
of one class (:math:`c = 0`) gives :math:`\ell_i \ge \log(m - 1)` with equality iff the positive similarities are
equal: no collapse is forced there.

**The minimum.** An OF (class :math:`k`'s samples all at :math:`e_k`, :math:`d \ge K`) attains every anchor's
bound in every batch at once, so the minimum of the batched loss is the sum of the bounds
(:func:`scl_batch_minimum`), and the minimisers are the points attaining every bound: the intersection of
the batches' conditions. (One batch of all samples: Kini et al.'s Theorem 1, the OF for any class sizes.)

**The batch condition** (:func:`scl_batch_condition`). The minimiser is an OF — every class collapsed, the
classes pairwise orthogonal — for every minimiser iff

1. for each class, the graph on its samples with an edge between two samples that share a batch holding
   another class is connected (each edge forces equality), and
2. for each pair of classes :math:`k \ne l`, some batch holds a sample of each, with two or more samples of
   :math:`k` or of :math:`l` (an anchor that sees the other as a negative).

Where 1 fails, a class's components are free to differ; where 2 fails, the two classes' angle is free: both are
minimisers that are not OFs. **Batch-binding** (:func:`bind_batches`) adds the same sample of every class to
every batch. When the batches cover every sample (an epoch) and every class has two samples or more, each sample
then shares a batch holding another class with its class's bound sample (1), and every batch holds every class,
one of them twice (2). A sample in no batch is free whatever the binding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._format import shown
from .common import _counts

__all__ = ["BatchCondition", "bind_batches", "scl_batch_condition", "scl_batch_minimum"]


@dataclass(frozen=True)
class BatchCondition:
    """What the batches force at a minimiser (module docstring).

    Attributes
    ----------
    components : tuple of tuple of tuple of int
        Per class, its samples grouped into the components of condition 1 (one group: the class collapses).
    forced : tuple of ((int, int), (int, int))
        The pairs of components ``((k, a), (l, b))``, ``k < l``, forced orthogonal: component ``a`` of class
        ``k`` and component ``b`` of class ``l`` meet in a batch where one of the two samples has a partner of
        its class. (Orthogonality is forced between samples, and spreads to their collapsed components.)
    """

    components: tuple[tuple[tuple[int, ...], ...], ...]
    forced: tuple[tuple[tuple[int, int], tuple[int, int]], ...]

    @property
    def forced_pairs(self) -> tuple[tuple[int, int], ...]:
        """The class pairs whose every pair of components is forced orthogonal."""
        K, have = len(self.components), set(self.forced)
        return tuple((k, l) for k in range(K) for l in range(k + 1, K)
                     if all(((k, a), (l, b)) in have for a in range(len(self.components[k]))
                            for b in range(len(self.components[l]))))

    @property
    def unforced_pairs(self) -> tuple[tuple[int, int], ...]:
        K, forced = len(self.components), set(self.forced_pairs)
        return tuple((k, l) for k in range(K) for l in range(k + 1, K) if (k, l) not in forced)

    @property
    def split_classes(self) -> tuple[int, ...]:
        return tuple(k for k, comp in enumerate(self.components) if len(comp) > 1)

    @property
    def unique(self) -> bool:
        """Every minimiser is an orthogonal frame: every class one component and every pair forced."""
        return not self.split_classes and not self.unforced_pairs


def _batches(n: np.ndarray, batches: Any) -> list[np.ndarray]:
    N = int(n.sum())
    if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
        raise TypeError("batches must be a sequence of index sequences")
    out = []
    for j, batch in enumerate(batches):
        idx = np.asarray(batch)
        if idx.ndim != 1 or idx.dtype.kind not in "iu" or idx.size < 2 or idx.min() < 0 or idx.max() >= N \
                or np.unique(idx).size != idx.size:
            raise ValueError(f"batches[{j}] must hold at least two distinct integer indices in [0, {N - 1}]; "
                             f"got {shown(batch)}")
        out.append(idx)
    if not out:
        raise ValueError("batches must hold at least one batch")
    return out


def scl_batch_condition(n: Any, batches: Any) -> BatchCondition:
    """Which classes collapse and which pairs are orthogonal at every minimiser (derived here; module docstring).

    ``n``: class sizes (samples ordered by class); ``batches``: index sequences into the samples.
    """
    n = _counts(n)
    labels = np.repeat(np.arange(len(n)), n)
    parent = list(range(int(n.sum())))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    kept = []
    for idx in _batches(n, batches):
        classes, counts = np.unique(labels[idx], return_counts=True)
        if classes.size < 2:
            continue  # one class: equal similarities, no collapse
        for k in classes:
            members = idx[labels[idx] == k]
            for i in members[1:]:
                parent[find(int(i))] = find(int(members[0]))
        kept.append((idx, {int(k) for k, c in zip(classes, counts) if c >= 2}))
    bounds = np.concatenate([[0], np.cumsum(n)])
    components, where = [], {}
    for k in range(len(n)):
        groups: dict[int, list[int]] = {}
        for i in range(int(bounds[k]), int(bounds[k + 1])):
            groups.setdefault(find(i), []).append(i)
        for a, g in enumerate(groups.values()):
            where.update({i: (k, a) for i in g})
        components.append(tuple(tuple(g) for g in groups.values()))
    forced = set()
    for idx, many in kept:
        for i in idx:
            for j in idx:
                ci, cj = where[int(i)], where[int(j)]
                if ci[0] < cj[0] and (ci[0] in many or cj[0] in many):
                    forced.add((ci, cj))
    return BatchCondition(components=tuple(components), forced=tuple(sorted(forced)))


def scl_batch_minimum(n: Any, batches: Any, temperature: float) -> float:
    r"""The minimum of the batched SCL loss over non-negative unit features (:math:`d \ge K`): the mean over batches
    of each batch's mean over anchors of :math:`\log((m-1)e^{1/\tau} + c) - 1/\tau` (one class in the batch:
    :math:`\log(m - 1)`), attained by any orthogonal frame (module docstring)."""
    n = _counts(n)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0; got {shown(temperature)}")
    labels = np.repeat(np.arange(len(n)), n)
    inv = 1.0 / float(temperature)
    values = []
    for idx in _batches(n, batches):
        _, counts = np.unique(labels[idx], return_counts=True)
        total = 0.0
        for m in counts[counts >= 2]:
            c = idx.size - m
            # log((m - 1) e^{1/tau} + c) - 1/tau, written without overflow at small tau
            per = math.log(m - 1) if c == 0 else math.log(m - 1) + math.log1p(c * math.exp(-inv) / (m - 1))
            total += m * per
        values.append(total / idx.size)
    return float(np.mean(values))


def bind_batches(n: Any, batches: Any) -> list[list[int]]:
    """Batch-binding: every batch with the first sample of every class added (where it is not already there)."""
    n = _counts(n)
    anchors = np.concatenate([[0], np.cumsum(n)[:-1]]).tolist()
    return [list(map(int, idx)) + [a for a in anchors if a not in set(map(int, idx))] for idx in _batches(n, batches)]
